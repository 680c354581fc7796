//! What the master shows of itself and its workers: the run's state, each worker's state,
//! users and requests, and the merged live table. `run` writes it, the CLI and the page read it.

use std::net::SocketAddr;

use crate::engine::RunState;

/// What the master shows about its workers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Status {
    pub state: Option<RunState>,
    /// Second 0 of the run, once it has begun: the workers count its seconds from here.
    pub started: Option<tokio::time::Instant>,
    pub workers: Vec<WorkerStatus>,
    pub users: u64,
    /// The merged live table (`stats::report::live_table`), as of the last second.
    pub table: String,
    /// The `--monitor`s' newest points (and the master's own CPU and memory), sampled by the
    /// master, with its saturation and notices: what the page's System tab shows.
    pub monitors: crate::monitor::Look,
}

impl Status {
    /// The workers that can take a run: ready, or finished with the last one.
    pub fn ready_workers(&self) -> usize {
        self.workers
            .iter()
            .filter(|w| matches!(w.state, WorkerState::Ready | WorkerState::Finished))
            .count()
    }
}

/// One worker as the master sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerStatus {
    pub id: u32,
    pub name: String,
    pub peer: SocketAddr,
    pub state: WorkerState,
    pub users: u64,
    pub requests: u64,
    /// Its own CPU and memory as it sent them last (none before its first sample).
    pub load: Option<super::watch::WorkerLoad>,
}

/// Where a worker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerState {
    /// Joined; loading the scenario.
    Loading,
    Ready,
    Running,
    Stopping,
    Finished,
    Missing,
}

impl WorkerState {
    /// As the page and the terminal show it.
    pub fn name(self) -> &'static str {
        match self {
            WorkerState::Loading => "loading",
            WorkerState::Ready => "ready",
            WorkerState::Running => "running",
            WorkerState::Stopping => "stopping",
            WorkerState::Finished => "finished",
            WorkerState::Missing => "missing",
        }
    }
}

impl std::fmt::Display for WorkerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
