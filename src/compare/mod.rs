//! `chorus compare`: whether a run got slower than a baseline, per request and in aggregate,
//! decided by a statistical test on the HDR histograms the JSON results hold (docs/compare.md
//! explains the method and its limits).
//!
//! Plain functions, no IO but reading the result files: [`read`] reads and pools results,
//! [`compare`] tests every metric of every request (`significance` holds the statistics),
//! [`gate`] judges the changes against the limits a user set, [`render`] writes the terminal
//! table, Markdown and JUnit XML, [`html`] the page with the percentile curves.

pub mod gate;
pub mod html;
pub mod read;
pub mod render;
mod significance;

pub use gate::{Breach, Limits};
pub use read::{Pooled, ReadError, pool, read_result};

use crate::stats::{EntryStats, RunResult};

/// The smallest relative change of a latency or the throughput that counts, unless told
/// otherwise (`--min-effect`): a significant 0.3 % is no regression.
pub const DEFAULT_MIN_EFFECT: f64 = 0.05;
/// The smallest change of a failure rate that counts, in percentage points.
pub const MIN_FAILURE_RATE_CHANGE: f64 = 0.1;
/// The confidence that not one verdict of a comparison is wrong: each of the k metrics
/// compared gets an interval at `1 - (1 - CONFIDENCE) / k` (Bonferroni), so a table of many
/// requests raises no more false alarms than a table of one.
pub const CONFIDENCE: f64 = 0.95;
/// Below this many samples on a side a metric gets no verdict.
pub const MIN_SAMPLES: u64 = 20;

/// What is compared for each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    P50,
    P90,
    P95,
    P99,
    /// The exact mean latency.
    Mean,
    /// Requests per second over the run(s).
    Throughput,
    /// Failed requests in percent of those sent.
    FailureRate,
}

impl Metric {
    /// Every metric, in the order reports show them.
    pub const ALL: [Metric; 7] = [
        Metric::P50,
        Metric::P90,
        Metric::P95,
        Metric::P99,
        Metric::Mean,
        Metric::Throughput,
        Metric::FailureRate,
    ];

    /// The short name reports and flags use: `p95`, `mean`, `req/s`, `failures`.
    pub fn label(self) -> &'static str {
        match self {
            Metric::P50 => "p50",
            Metric::P90 => "p90",
            Metric::P95 => "p95",
            Metric::P99 => "p99",
            Metric::Mean => "mean",
            Metric::Throughput => "req/s",
            Metric::FailureRate => "failures",
        }
    }

    /// The percentile (0..100) of a percentile metric.
    pub fn percentile(self) -> Option<f64> {
        match self {
            Metric::P50 => Some(50.0),
            Metric::P90 => Some(90.0),
            Metric::P95 => Some(95.0),
            Metric::P99 => Some(99.0),
            _ => None,
        }
    }

    /// Whether the metric is a latency (lower is better, shown in ms).
    pub fn is_latency(self) -> bool {
        matches!(
            self,
            Metric::P50 | Metric::P90 | Metric::P95 | Metric::P99 | Metric::Mean
        )
    }
}

/// What the test says about one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Significantly better by at least the minimum effect: faster, more throughput, fewer
    /// failures.
    Better,
    /// Significantly worse by at least the minimum effect.
    Worse,
    /// Within the noise, or smaller than the minimum effect.
    NoChange,
    /// Too few samples on a side to say anything.
    NotEnoughData,
}

impl Verdict {
    /// The verdict in words, for `metric`: `faster`/`slower` for latencies and the
    /// throughput, `fewer failures`/`more failures` for the failure rate.
    pub fn word(self, metric: Metric) -> &'static str {
        match (self, metric) {
            (Verdict::Better, Metric::FailureRate) => "fewer failures",
            (Verdict::Worse, Metric::FailureRate) => "more failures",
            (Verdict::Better, _) => "faster",
            (Verdict::Worse, _) => "slower",
            (Verdict::NoChange, _) => "no significant change",
            (Verdict::NotEnoughData, _) => "too few samples",
        }
    }
}

/// One metric of one request, on both sides.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub metric: Metric,
    /// Latencies in ms, throughput in requests/s, failure rate in percent.
    pub base: f64,
    pub new: f64,
    /// `new / base - 1` for latencies and throughput (0.2 is 20 % more); percentage points
    /// for the failure rate.
    pub change: f64,
    /// The confidence interval of `change`, in the same unit.
    pub low: f64,
    pub high: f64,
    pub verdict: Verdict,
}

/// Where a request was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Both,
    /// Only in the baseline.
    Gone,
    /// Only in the new run(s).
    New,
}

/// One request (method and name), or the aggregate of all of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Empty for the aggregate.
    pub method: String,
    pub name: String,
    pub presence: Presence,
    pub base_requests: u64,
    pub new_requests: u64,
    /// One per [`Metric::ALL`] when the request is on both sides; empty otherwise.
    pub changes: Vec<Change>,
    /// Latency (µs) at percentiles (0..100) of each side, for the HTML curves.
    pub base_curve: Vec<(f64, u64)>,
    pub new_curve: Vec<(f64, u64)>,
}

impl Row {
    /// `GET /api/course`, or `Aggregated`.
    pub fn label(&self) -> String {
        if self.method.is_empty() {
            self.name.clone()
        } else {
            format!("{} {}", self.method, self.name)
        }
    }

    /// The change of `metric`, if the request is on both sides.
    pub fn change(&self, metric: Metric) -> Option<&Change> {
        self.changes.iter().find(|c| c.metric == metric)
    }
}

/// What one side of a comparison was made of.
#[derive(Debug, Clone, PartialEq)]
pub struct SideInfo {
    pub files: Vec<String>,
    pub requests: u64,
    /// The runs' durations added.
    pub seconds: f64,
    /// How many independent samples one sample is worth, inverted (see docs/compare.md).
    pub design_effect: f64,
}

/// Everything `chorus compare` found.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub base: SideInfo,
    pub new: SideInfo,
    pub min_effect: f64,
    /// The confidence of each interval (see [`CONFIDENCE`]).
    pub confidence_each: f64,
    /// Per request: on both sides first (by name, then method), then gone, then new.
    pub rows: Vec<Row>,
    /// Every request of each side.
    pub total: Row,
}

impl Comparison {
    /// The requests and then the aggregate.
    pub fn all_rows(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().chain(std::iter::once(&self.total))
    }
}

/// Compares the pooled new run(s) with the pooled baseline. Deterministic: the bootstrap of
/// each metric is seeded from the request's name.
pub fn compare(base: &Pooled, new: &Pooled, min_effect: f64) -> Comparison {
    let shared = (base.result.entries.iter())
        .filter(|e| find(&new.result, e).is_some())
        .count();
    let tests = (shared + 1) * Metric::ALL.len();
    let confidence_each = 1.0 - (1.0 - CONFIDENCE) / tests as f64;
    let test = Test {
        min_effect,
        z: significance::normal_quantile(1.0 - (1.0 - confidence_each) / 2.0),
    };
    let mut both = Vec::new();
    let mut gone = Vec::new();
    for entry in &base.result.entries {
        match find(&new.result, entry) {
            Some(other) => both.push(row(base, entry, new, other, &test)),
            None => gone.push(lonely(entry, Presence::Gone)),
        }
    }
    let fresh = new
        .result
        .entries
        .iter()
        .filter(|e| find(&base.result, e).is_none())
        .map(|e| lonely(e, Presence::New));
    let mut rows = both;
    rows.extend(gone);
    rows.extend(fresh);
    let total = row(base, &base.result.total, new, &new.result.total, &test);
    Comparison {
        base: base.info(),
        new: new.info(),
        min_effect,
        confidence_each,
        rows,
        total,
    }
}

fn find<'a>(result: &'a RunResult, entry: &EntryStats) -> Option<&'a EntryStats> {
    (result.entries.iter()).find(|e| e.method == entry.method && e.name == entry.name)
}

fn lonely(entry: &EntryStats, presence: Presence) -> Row {
    let (base_requests, new_requests) = match presence {
        Presence::Gone => (entry.requests, 0),
        _ => (0, entry.requests),
    };
    Row {
        method: entry.method.clone(),
        name: entry.name.clone(),
        presence,
        base_requests,
        new_requests,
        changes: Vec::new(),
        base_curve: Vec::new(),
        new_curve: Vec::new(),
    }
}

/// How every metric of a comparison is tested.
struct Test {
    min_effect: f64,
    z: f64,
}

fn row(base: &Pooled, old: &EntryStats, new: &Pooled, now: &EntryStats, test: &Test) -> Row {
    let sides = significance::Sides {
        base: significance::Side::of(old, base.design_effect, base.seconds),
        new: significance::Side::of(now, new.design_effect, new.seconds),
        seed: seed_of(&old.method, &old.name),
        min_effect: test.min_effect,
        z: test.z,
    };
    Row {
        method: old.method.clone(),
        name: old.name.clone(),
        presence: Presence::Both,
        base_requests: old.requests,
        new_requests: now.requests,
        changes: Metric::ALL.iter().map(|m| sides.change(*m)).collect(),
        base_curve: significance::curve(old),
        new_curve: significance::curve(now),
    }
}

/// FNV-1a of the request, so a request's verdicts do not depend on the others.
fn seed_of(method: &str, name: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in method.bytes().chain([b' ']).chain(name.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests;
