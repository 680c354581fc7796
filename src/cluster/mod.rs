//! Distributed runs: one master and many workers on the stack chorus already uses (tokio and
//! serde over TCP). The master holds the plan, shares out users, spawn rate and `unique`
//! data rows, merges the workers' statistics exactly and writes the reports; a worker needs
//! only the binary: the master sends it the scenario and the data files.
//!
//! - [`protocol`]: the messages and their framing (JSON frames; HDR histograms in V2 form).
//! - [`auth`]: the shared token (HMAC proofs both ways), versions, scenario pins, binding rules.
//! - [`bundle`]: the scenario as it travels, and the slice of rows a worker keeps.
//! - [`share`]: splitting users, rates and rows (plain functions).
//! - [`master`] and [`worker`]: the two ends; IO lives there and only there.
//! - `watch`: each worker's own CPU and memory as the master keeps them.
//!
//! Heartbeats go both ways every second; a side that hears nothing for [`MISSING_AFTER`]
//! counts the other as lost. `docs/cluster.md` describes the protocol and the flags.

pub mod auth;
pub mod bundle;
mod link;
pub mod master;
pub mod protocol;
mod run;
pub mod share;
mod status;
mod watch;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

pub use master::{Master, MasterControl};
pub use run::MasterConfig;
pub use status::{Status, WorkerState, WorkerStatus};
pub use watch::WorkerLoad;
pub use worker::{WorkerConfig, run_worker};

/// How often each side says it is there (with statistics, from a worker that runs users).
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// Silence after which the other side counts as lost: within 3 s of its last word.
pub const MISSING_AFTER: Duration = Duration::from_millis(2500);

/// Where the master and the worker say what happens (joins, losses, refusals); the CLI
/// prints these lines.
pub type Notify = Arc<dyn Fn(&str) + Send + Sync>;

/// Why a master or a worker could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A refusal (bad token, other version, other scenario) or a setting that cannot work.
    #[error("{0}")]
    Refused(String),
    #[error("could not listen for workers on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Plan(String),
}
