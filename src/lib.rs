//! chorus records real user sessions through a proxy, turns a recording into a readable
//! scenario, provisions the test accounts it needs, and replays it with thousands of virtual
//! users while a web page shows live statistics.
//!
//! Data flows one way:
//! `record -> har -> convert -> scenario -> engine -> stats -> (cli | web)`.
//! `provision` is the engine running a setup scenario once.

pub mod cli;
pub mod cluster;
pub mod convert;
pub mod data;
pub mod demo;
pub mod engine;
pub mod fidelity;
pub mod files;
mod forms;
#[cfg(test)]
mod fuzzing;
pub mod har;
pub mod html;
mod http1;
pub mod provision;
pub mod record;
pub mod scenario;
mod server;
pub mod size;
pub mod stats;
mod tls;
pub mod units;
mod values;
pub mod web;
