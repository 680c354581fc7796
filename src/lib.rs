//! chorus records real user sessions through a proxy, turns a recording into a readable
//! scenario, provisions the test accounts it needs, and replays it with thousands of virtual
//! users while a web page shows live statistics.
//!
//! Data flows one way:
//! `record -> har -> convert -> scenario -> engine -> stats -> (cli | web)`.
//! `provision` is the engine running a setup scenario once.

// The terminal may be a pipe that closes early (`chorus run ... | head`): std's `println!`
// then panics and the run's reports are lost. These shadow std's four printing macros in
// every module below (textual scope): a line that cannot be written is dropped, the work goes
// on. See `terminal`.
macro_rules! println {
    () => { $crate::terminal::write_line(&mut ::std::io::stdout(), format_args!("")) };
    ($($arg:tt)*) => { $crate::terminal::write_line(&mut ::std::io::stdout(), format_args!($($arg)*)) };
}
macro_rules! print {
    ($($arg:tt)*) => { $crate::terminal::write(&mut ::std::io::stdout(), format_args!($($arg)*)) };
}
macro_rules! eprintln {
    () => { $crate::terminal::write_line(&mut ::std::io::stderr(), format_args!("")) };
    ($($arg:tt)*) => { $crate::terminal::write_line(&mut ::std::io::stderr(), format_args!($($arg)*)) };
}
#[allow(unused_macros)]
macro_rules! eprint {
    ($($arg:tt)*) => { $crate::terminal::write(&mut ::std::io::stderr(), format_args!($($arg)*)) };
}

pub mod capacity;
pub mod cli;
pub mod cluster;
pub mod compare;
pub mod convert;
pub mod data;
pub mod demo;
pub mod engine;
mod event_stream;
pub mod fidelity;
pub mod files;
mod forms;
#[cfg(test)]
mod fuzzing;
pub mod har;
pub mod html;
mod http1;
pub mod monitor;
pub mod otlp;
pub mod provision;
pub mod record;
pub mod scenario;
pub mod script;
mod server;
mod side_http;
pub mod size;
pub mod stats;
pub mod terminal;
mod tls;
pub mod units;
mod values;
pub mod web;
