//! What a capacity search (`chorus run --find-capacity`) found, as the result carries it: the
//! highest arrival rate at which every condition held, and the curve of its steps (rate
//! against p50/p95/p99, failures and dropped iterations). Plain data; `crate::capacity` runs
//! the search, the report writers show it.

use serde::{Deserialize, Serialize};

/// The outcome of a capacity search.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    /// The conditions every step was judged on, as written (`p95<300ms`, `failures<1%`).
    pub conditions: Vec<String>,
    /// The highest rate (iterations per second) at which every condition held; `None` when
    /// none did.
    pub per_second: Option<f64>,
    /// Why the search ended, in a sentence.
    pub ended: String,
    /// Every step, in the order run.
    pub steps: Vec<CapacityStep>,
}

/// One step of the search: a rate held for a while, measured after a short settling time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityStep {
    /// Iterations started per second in this step.
    pub per_second: f64,
    /// The seconds of the run measured (after the settling time).
    pub first_second: u64,
    pub seconds: u64,
    pub requests: u64,
    pub failures: u64,
    /// Iterations the open model could not start (every user busy and the backlog full).
    pub dropped_iterations: u64,
    pub p50_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    /// Whether every condition held (and the rate was delivered).
    pub held: bool,
    /// What did not hold, e.g. `p95<300ms (observed 412.0 ms)`; empty when it held.
    pub why: String,
}

impl CapacityStep {
    /// `held`, or `did not hold: ` and why.
    pub fn verdict(&self) -> String {
        if self.held {
            "held".to_owned()
        } else {
            format!("did not hold: {}", self.why)
        }
    }

    /// Requests answered per second over the step's measured seconds.
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds.max(1) as f64
    }

    /// Failed requests as a percentage of the step's requests.
    pub fn failure_percent(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.failures as f64 * 100.0 / self.requests as f64
        }
    }
}

/// A rate as people read it: `187.5`, `200`, `0.25`.
pub fn show_rate(rate: f64) -> String {
    let text = format!("{rate:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}
