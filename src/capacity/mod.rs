//! The capacity search (`chorus run --find-capacity 'p95<300ms'`): an open-model run whose
//! arrival rate goes up in steps while the conditions hold, then bisects between the last rate
//! that held and the first that did not, and reports the highest rate that held with the curve
//! of every step. docs/capacity.md has the schedule and the stopping rule.
//!
//! - [`search`]: the search as a plain state machine fed with each step's measurements, and
//!   the judging of one step (no IO, unit-tested).
//! - [`drive`]: runs the steps on an engine (sets the rate, waits, reads each step's seconds
//!   from the engine's tap, pauses to let a queue drain after a step that did not hold).

pub mod drive;
pub mod search;

pub use drive::{SearchSettings, run, run_watched};
pub use search::{Next, Search, judge_step};
