//! What a monitor's series measures, and how its values read.

use serde::{Deserialize, Serialize};

/// What a series measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Percent (of one core for a process's CPU, of the machine for the host's).
    Percent,
    Bytes,
    BytesPerSecond,
    Count,
    Number,
    /// A counter's rate (a Prometheus counter that is not bytes).
    PerSecond,
}

impl Unit {
    /// A value of this unit as people read it: `12.5 %`, `18.8 MiB`, `2.1 MiB/s`, `7`.
    pub fn show(self, value: f64) -> String {
        match self {
            Unit::Percent => format!("{value:.1} %"),
            Unit::Bytes => crate::size::format(value as u64),
            Unit::BytesPerSecond => format!("{}/s", crate::size::format(value as u64)),
            Unit::Count => format!("{value:.0}"),
            Unit::Number => format!("{value:.2}"),
            Unit::PerSecond => format!("{value:.2}/s"),
        }
    }
}
