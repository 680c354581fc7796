//! Terminal tables: the final [`summary`] (like Locust's) and the compact [`live_table`]
//! printed every few seconds during a run.

use crate::stats::{Aggregate, RunResult};

/// The final report: statistics, percentiles, failures, thresholds.
pub fn summary(result: &RunResult) -> String {
    let _ = result;
    String::new()
}

/// A compact table of the run so far.
pub fn live_table(aggregate: &Aggregate) -> String {
    let _ = aggregate;
    String::new()
}
