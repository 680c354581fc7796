//! Monitors: what the system under test and chorus itself use while a run goes on —
//! a process's CPU, memory, threads, open files and disk I/O, this machine's CPU, memory,
//! load, network and disk — sampled once a second on the run's time axis
//! (`--monitor process:PID|process:NAME|host`; Linux `/proc`), and any Prometheus
//! text-format endpoint (`--monitor prometheus:URL#series`).

pub mod procfs;
mod prometheus;
mod sampler;
mod scrape;
mod spec;
mod unit;

pub use sampler::{Look, Monitored, Notice, SATURATED_FOR, Sampler, Series};
pub use spec::Spec;
pub use unit::Unit;
