//! The counters of one (method, name) — or of the `Aggregated` row — and of exceptions: the
//! unit that snapshots, aggregates and results are made of, with its exact merge.

use serde::{Deserialize, Serialize};

use super::phases::{PhaseStats, Phases};
use super::{FailureKind, Histogram};

/// At most this many distinct exception messages are kept; the rest are counted together
/// under [`OTHER_ERRORS`] so a message with a varying part cannot grow memory without bound.
pub const MAX_DISTINCT_ERRORS: usize = 100;
/// The message under which exceptions beyond [`MAX_DISTINCT_ERRORS`] are counted.
pub const OTHER_ERRORS: &str = "(other messages: more than 100 distinct exception messages)";

/// Everything measured for one (method, name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryStats {
    /// HTTP method; empty for the `Aggregated` row.
    pub method: String,
    /// Request name; `Aggregated` for the total row.
    pub name: String,
    /// Requests sent (failed ones included), exactly.
    pub requests: u64,
    /// Requests that failed.
    pub failures: u64,
    /// Requests counted without a latency: a connect failure (nothing was sent) or a request
    /// cut at the stop (sent, never answered). The latency figures are those of the others.
    #[serde(default)]
    pub untimed: u64,
    /// Sum of all latencies in µs (an exact average, not the histogram's).
    pub latency_sum_us: u64,
    /// Smallest latency in µs, exact; 0 when there is no latency sample.
    pub min_us: u64,
    /// Largest latency in µs, exact.
    pub max_us: u64,
    /// Sum of response body sizes in bytes.
    pub content_bytes: u64,
    /// Every latency (µs).
    pub histogram: Histogram,
    /// Failures by kind, each with the first message seen.
    pub failures_by_kind: Vec<FailureCount>,
    /// Where the answered requests' time went (DNS, connect, TLS, time to first byte,
    /// download); absent when nothing was measured (a socket's steps, a file written before).
    #[serde(default, skip_serializing_if = "PhaseStats::is_empty")]
    pub phases: PhaseStats,
}

/// How often one kind of failure happened to one (method, name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureCount {
    pub kind: FailureKind,
    pub count: u64,
    /// One message of this kind (the first one seen).
    pub message: String,
    /// Unix ms of the first failure of this kind (0: unknown).
    #[serde(default)]
    pub first_seen_unix_ms: u64,
    /// Unix ms of the last one, to the tally's interval (0: unknown).
    #[serde(default)]
    pub last_seen_unix_ms: u64,
}

/// How often one exception message (an error not tied to a request) happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCount {
    pub message: String,
    pub count: u64,
}

impl EntryStats {
    /// An empty entry.
    pub fn new(method: &str, name: &str) -> Self {
        Self {
            method: method.to_owned(),
            name: name.to_owned(),
            requests: 0,
            failures: 0,
            untimed: 0,
            latency_sum_us: 0,
            min_us: 0,
            max_us: 0,
            content_bytes: 0,
            histogram: Histogram::new(),
            failures_by_kind: Vec::new(),
            phases: PhaseStats::default(),
        }
    }

    /// Counts one request.
    #[inline]
    pub(crate) fn record(&mut self, micros: u64, bytes: u64) {
        self.min_us = if self.timed() == 0 {
            micros
        } else {
            self.min_us.min(micros)
        };
        self.requests += 1;
        self.latency_sum_us = self.latency_sum_us.saturating_add(micros);
        self.max_us = self.max_us.max(micros);
        self.content_bytes = self.content_bytes.saturating_add(bytes);
        self.histogram.record_micros(micros);
    }

    /// Counts where one request's time went.
    #[inline]
    pub(crate) fn record_phases(&mut self, phases: &Phases) {
        self.phases.record(phases);
    }

    /// Counts one request that has no latency (see [`EntryStats::untimed`]).
    #[inline]
    pub(crate) fn record_untimed(&mut self, bytes: u64) {
        self.requests += 1;
        self.untimed += 1;
        self.content_bytes = self.content_bytes.saturating_add(bytes);
    }

    /// Requests with a latency sample.
    pub fn timed(&self) -> u64 {
        self.requests.saturating_sub(self.untimed)
    }

    /// Counts one failure of `kind`, keeping `message` if it is the first of its kind (only
    /// then is the clock read).
    #[inline]
    pub(crate) fn record_failure(&mut self, kind: FailureKind, message: &str) {
        self.failures += 1;
        match self.failures_by_kind.iter_mut().find(|f| f.kind == kind) {
            Some(existing) => existing.count += 1,
            None => {
                let now = now_unix_ms();
                self.failures_by_kind.push(FailureCount {
                    kind,
                    count: 1,
                    message: message.to_owned(),
                    first_seen_unix_ms: now,
                    last_seen_unix_ms: now,
                });
            }
        }
    }

    fn merge_failure(&mut self, other: &FailureCount) {
        self.failures = self.failures.saturating_add(other.count);
        match self
            .failures_by_kind
            .iter_mut()
            .find(|f| f.kind == other.kind)
        {
            Some(existing) => {
                existing.count = existing.count.saturating_add(other.count);
                existing.first_seen_unix_ms =
                    min_known(existing.first_seen_unix_ms, other.first_seen_unix_ms);
                existing.last_seen_unix_ms =
                    existing.last_seen_unix_ms.max(other.last_seen_unix_ms);
            }
            None => self.failures_by_kind.push(other.clone()),
        }
    }

    /// Adds every count of `other` (exact; names are not compared).
    pub fn merge(&mut self, other: &EntryStats) {
        // An entry without latency samples has no minimum (0 stands for none).
        if other.timed() > 0 {
            self.min_us = if self.timed() == 0 {
                other.min_us
            } else {
                self.min_us.min(other.min_us)
            };
        }
        // A cluster worker's counts are whatever it sent: they saturate.
        self.requests = self.requests.saturating_add(other.requests);
        self.untimed = self.untimed.saturating_add(other.untimed);
        self.latency_sum_us = self.latency_sum_us.saturating_add(other.latency_sum_us);
        self.max_us = self.max_us.max(other.max_us);
        self.content_bytes = self.content_bytes.saturating_add(other.content_bytes);
        self.histogram.add(&other.histogram);
        self.phases.merge(&other.phases);
        for failure in &other.failures_by_kind {
            self.merge_failure(failure);
        }
        // Failures are counted through `failures_by_kind`; keep any remainder a producer
        // recorded without a kind.
        let by_kind =
            (other.failures_by_kind.iter()).fold(0u64, |sum, f| sum.saturating_add(f.count));
        self.failures = (self.failures).saturating_add(other.failures.saturating_sub(by_kind));
    }

    /// Mean latency in ms (exact), 0 without latency samples.
    pub fn avg_ms(&self) -> f64 {
        if self.timed() == 0 {
            0.0
        } else {
            self.latency_sum_us as f64 / self.timed() as f64 / 1000.0
        }
    }

    /// Smallest latency in ms, 0 without latency samples.
    pub fn min_ms(&self) -> f64 {
        if self.timed() == 0 {
            0.0
        } else {
            self.min_us as f64 / 1000.0
        }
    }

    /// Largest latency in ms.
    pub fn max_ms(&self) -> f64 {
        self.max_us as f64 / 1000.0
    }

    /// Latency at `percentile` (0..=100) in µs from the histogram, kept within the exact min
    /// and max (a histogram bucket's upper end can pass the largest sample); the exact max for
    /// 100.
    pub fn percentile_us(&self, percentile: f64) -> u64 {
        if self.timed() == 0 {
            return 0;
        }
        if percentile >= 100.0 {
            return self.max_us;
        }
        let value = self.histogram.percentile_micros(percentile);
        if self.min_us <= self.max_us {
            value.clamp(self.min_us, self.max_us)
        } else {
            value
        }
    }

    /// Mean response size in bytes, 0 without requests.
    pub fn avg_content_bytes(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.content_bytes as f64 / self.requests as f64
        }
    }

    /// Failed share of requests in percent.
    pub fn failure_percent(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.failures as f64 * 100.0 / self.requests as f64
        }
    }
}

/// The smaller of two timestamps where 0 means unknown.
fn min_known(a: u64, b: u64) -> u64 {
    match (a, b) {
        (0, x) | (x, 0) => x,
        (a, b) => a.min(b),
    }
}

/// Now, in Unix milliseconds.
pub(crate) fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Adds `count` occurrences of `message` to `errors`, capping distinct messages.
pub(crate) fn add_error(errors: &mut Vec<ErrorCount>, message: &str, count: u64) {
    if let Some(existing) = errors.iter_mut().find(|e| e.message == message) {
        existing.count = existing.count.saturating_add(count);
        return;
    }
    let distinct = errors.iter().filter(|e| e.message != OTHER_ERRORS).count();
    let key = if distinct >= MAX_DISTINCT_ERRORS {
        OTHER_ERRORS
    } else {
        message
    };
    match errors.iter_mut().find(|e| e.message == key) {
        Some(existing) => existing.count = existing.count.saturating_add(count),
        None => errors.push(ErrorCount {
            message: key.to_owned(),
            count,
        }),
    }
}

/// Merges every entry of `theirs` into the entry of the same (method, name) in `mine`,
/// adding entries `mine` lacks. Linear in the number of entries.
pub(crate) fn merge_entries(mine: &mut Vec<EntryStats>, theirs: &[EntryStats]) {
    let mut index: std::collections::HashMap<(String, String), usize> = mine
        .iter()
        .enumerate()
        .map(|(i, e)| ((e.method.clone(), e.name.clone()), i))
        .collect();
    for entry in theirs {
        let key = (entry.method.clone(), entry.name.clone());
        match index.get(&key) {
            Some(i) => mine[*i].merge(entry),
            None => {
                index.insert(key, mine.len());
                mine.push(entry.clone());
            }
        }
    }
}

/// Locust's order: by name, then method.
pub(crate) fn sort_entries(entries: &mut [EntryStats]) {
    entries.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.method.cmp(&b.method)));
}
