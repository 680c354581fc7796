//! [`RunResult`], what every report writer takes, and [`RunMeta`], what the caller knows about
//! the run. A result reads back from its JSON and merges with another one exactly.

use serde::{Deserialize, Serialize};

use crate::monitor::Monitored;

use super::entry::{EntryStats, ErrorCount, add_error, merge_entries, sort_entries};
use super::history::{HistoryPoint, max_each};
use super::thresholds::{Threshold, Verdict};

/// The `"format"` of a result file.
pub const FORMAT: &str = "chorus-result";
/// The `"version"` of the result format this build writes and reads.
pub const VERSION: u32 = 1;

/// The exit status of a run whose thresholds all held.
pub const EXIT_PASSED: u8 = 0;
/// The exit status of a run that crossed a threshold.
pub const EXIT_FAILED: u8 = 1;

/// What the caller knows about a run (the engine and CLI fill it in).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    /// The scenario file (or another name for what ran).
    pub scenario: String,
    /// The base URL the run targeted.
    pub host: Option<String>,
    /// Unix time in ms when load started.
    pub start_unix_ms: u64,
    /// Unix time in ms when the run ended.
    pub end_unix_ms: u64,
    /// The number of users asked for (peak).
    pub users: u64,
    /// Users started per second, if a rate was given.
    pub spawn_rate: Option<f64>,
    /// The thresholds to evaluate (from the CLI and the scenario's `thresholds:`).
    pub thresholds: Vec<Threshold>,
}

/// Everything a run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub meta: RunMeta,
    /// Per (method, name), by name then method.
    pub entries: Vec<EntryStats>,
    /// The `Aggregated` row: every request.
    pub total: EntryStats,
    /// One point per second (older ones folded, see [`HistoryPoint`]).
    pub history: Vec<HistoryPoint>,
    /// Exceptions: errors not tied to a request, by message.
    pub errors: Vec<ErrorCount>,
    /// Iterations the open model could not start in time.
    pub dropped_iterations: u64,
    /// Iterations the stop cut short: their users did not finish them within the stop
    /// timeout (or the run stopped at once).
    #[serde(default)]
    pub cut_iterations: u64,
    /// One per threshold in `meta.thresholds`.
    pub verdicts: Vec<Verdict>,
    /// The monitors' series (`--monitor`) and chorus's own CPU and memory, on the run's
    /// seconds.
    #[serde(default, skip_serializing_if = "Monitored::is_empty")]
    pub monitors: Monitored,
    /// `--find-capacity`: the highest rate at which the conditions held, and the curve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<super::capacity::Capacity>,
}

/// Why a result file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    #[error("line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "this is not a chorus result: \"format\" is {found:?}, expected \"chorus-result\" (write one with `chorus run --json FILE`)"
    )]
    Format { found: String },
    #[error(
        "result format version {found} is not supported: this chorus reads version 1 (re-run with this chorus or use the chorus that wrote it)"
    )]
    Version { found: u64 },
}

#[derive(Serialize)]
struct Tagged<'a> {
    format: &'static str,
    version: u32,
    #[serde(flatten)]
    result: &'a RunResult,
}

#[derive(Deserialize)]
struct Header {
    format: Option<String>,
    version: Option<u64>,
}

impl RunResult {
    /// An empty result (no requests) for `meta`.
    pub fn empty(meta: RunMeta) -> Self {
        let mut result = Self {
            meta,
            entries: Vec::new(),
            total: EntryStats::new("", "Aggregated"),
            history: Vec::new(),
            errors: Vec::new(),
            dropped_iterations: 0,
            cut_iterations: 0,
            verdicts: Vec::new(),
            monitors: Default::default(),
            capacity: None,
        };
        result.evaluate_thresholds();
        result
    }

    /// Seconds between start and end (at least one millisecond, so rates stay finite). A run
    /// still going (`end_unix_ms` 0, e.g. a report taken from the live page) counts until now.
    pub fn duration_secs(&self) -> f64 {
        let end = match self.meta.end_unix_ms {
            0 => super::entry::now_unix_ms(),
            end => end,
        };
        let ms = end.saturating_sub(self.meta.start_unix_ms).max(1);
        ms as f64 / 1000.0
    }

    /// Requests per second of `entry` over the whole run.
    pub fn rps(&self, entry: &EntryStats) -> f64 {
        entry.requests as f64 / self.duration_secs()
    }

    /// Failures per second of `entry` over the whole run.
    pub fn failures_per_sec(&self, entry: &EntryStats) -> f64 {
        entry.failures as f64 / self.duration_secs()
    }

    /// Failed requests plus errors outside requests (Locust's exceptions).
    pub fn failures_and_errors(&self) -> u64 {
        self.total.failures + self.errors.iter().map(|e| e.count).sum::<u64>()
    }

    /// Whether every threshold held.
    pub fn passed(&self) -> bool {
        self.verdicts.iter().all(|v| v.passed)
    }

    /// What the process that ran it exits with: [`EXIT_PASSED`] or [`EXIT_FAILED`]. (Failed
    /// requests alone do not fail a run, as in k6: a threshold does.)
    pub fn exit_code(&self) -> u8 {
        if self.passed() {
            EXIT_PASSED
        } else {
            EXIT_FAILED
        }
    }

    /// The entries named `name` (any method) merged into one, if there are any.
    pub fn entries_named(&self, name: &str) -> Option<EntryStats> {
        let mut found: Option<EntryStats> = None;
        for entry in self.entries.iter().filter(|e| e.name == name) {
            match &mut found {
                Some(merged) => merged.merge(entry),
                None => {
                    let mut first = entry.clone();
                    first.method = String::new();
                    found = Some(first);
                }
            }
        }
        found
    }

    /// Recomputes `verdicts` from `meta.thresholds`.
    pub fn evaluate_thresholds(&mut self) {
        self.verdicts = self
            .meta
            .thresholds
            .iter()
            .map(|t| t.evaluate(self))
            .collect();
    }

    /// The versioned JSON document (`"format": "chorus-result", "version": 1`).
    pub fn to_json(&self) -> String {
        let tagged = Tagged {
            format: FORMAT,
            version: VERSION,
            result: self,
        };
        // Every field serialises (strings, numbers, base64 histograms).
        serde_json::to_string_pretty(&tagged).unwrap_or_default()
    }

    /// Reads what [`RunResult::to_json`] wrote.
    pub fn from_json(text: &str) -> Result<Self, ResultError> {
        let json_error = |err: serde_json::Error| ResultError::Json {
            line: err.line(),
            column: err.column(),
            message: err.to_string(),
        };
        let header: Header = serde_json::from_str(text).map_err(json_error)?;
        match header.format.as_deref() {
            Some(FORMAT) => {}
            other => {
                return Err(ResultError::Format {
                    found: other.unwrap_or("missing").to_owned(),
                });
            }
        }
        if header.version != Some(u64::from(VERSION)) {
            return Err(ResultError::Version {
                found: header.version.unwrap_or(0),
            });
        }
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let result: RunResult =
            serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
                let path = err.path().to_string();
                let inner = err.into_inner();
                ResultError::Json {
                    line: inner.line(),
                    column: inner.column(),
                    message: format!("{path}: {inner}"),
                }
            })?;
        Ok(result)
    }

    /// Adds `other` as another part of the same run (e.g. a second load generator): counts and
    /// histograms add exactly, the time span is the union, users add, history points of the
    /// same second add their counts and users (their percentiles take the larger: an upper
    /// bound), and the thresholds of both are evaluated again on the sum.
    pub fn merge(&mut self, other: &RunResult) {
        merge_entries(&mut self.entries, &other.entries);
        sort_entries(&mut self.entries);
        self.total.merge(&other.total);
        for error in &other.errors {
            add_error(&mut self.errors, &error.message, error.count);
        }
        self.dropped_iterations += other.dropped_iterations;
        self.cut_iterations += other.cut_iterations;

        let meta = &mut self.meta;
        meta.start_unix_ms = match (meta.start_unix_ms, other.meta.start_unix_ms) {
            (0, theirs) => theirs,
            (mine, 0) => mine,
            (mine, theirs) => mine.min(theirs),
        };
        meta.end_unix_ms = meta.end_unix_ms.max(other.meta.end_unix_ms);
        meta.users += other.meta.users;
        if meta.host.is_none() {
            meta.host.clone_from(&other.meta.host);
        }
        for threshold in &other.meta.thresholds {
            if !meta.thresholds.contains(threshold) {
                meta.thresholds.push(threshold.clone());
            }
        }
        merge_history(&mut self.history, &other.history);
        self.evaluate_thresholds();
    }
}

fn merge_history(mine: &mut Vec<HistoryPoint>, theirs: &[HistoryPoint]) {
    for point in theirs {
        let same = mine
            .iter_mut()
            .find(|p| p.unix_seconds == point.unix_seconds && p.span_seconds == point.span_seconds);
        let Some(existing) = same else {
            mine.push(point.clone());
            continue;
        };
        existing.users += point.users;
        existing.requests += point.requests;
        existing.failures += point.failures;
        max_each(&mut existing.percentiles_us, &point.percentiles_us);
        max_each(
            &mut existing.total_percentiles_us,
            &point.total_percentiles_us,
        );
        existing.total_min_us = match (existing.total_requests, point.total_requests) {
            (0, _) => point.total_min_us,
            (_, 0) => existing.total_min_us,
            _ => existing.total_min_us.min(point.total_min_us),
        };
        existing.total_requests += point.total_requests;
        existing.total_failures += point.total_failures;
        existing.total_latency_sum_us += point.total_latency_sum_us;
        existing.total_max_us = existing.total_max_us.max(point.total_max_us);
        existing.total_content_bytes += point.total_content_bytes;
        existing.derive_rates();
    }
    mine.sort_by_key(|p| p.unix_seconds);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::stats::{Aggregate, Failure, FailureKind, Histogram, RequestSample, Tally};

    /// A run of `n` requests with latencies drawn from `seed`, plus the one histogram of all.
    fn run(seed: u64, n: u64, start_s: u64, thresholds: &[&str]) -> (RunResult, Histogram) {
        let mut tally = Tally::new();
        let mut aggregate = Aggregate::new();
        let mut all = Histogram::new();
        let mut x = seed;
        for i in 0..n {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let micros = 50 + (x >> 35) % 2_000_000;
            tally.record(&RequestSample {
                method: if i % 4 == 0 { "POST" } else { "GET" },
                name: if i % 3 == 0 { "/a" } else { "/b" },
                latency: Duration::from_micros(micros),
                response_bytes: i % 1000,
                failure: (i % 50 == 0).then_some(Failure {
                    kind: FailureKind::Timeout,
                    message: "timed out",
                }),
            });
            all.record_micros(micros);
            if i % 1000 == 999 {
                aggregate.absorb(tally.take());
                aggregate.tick(start_s + i / 1000, 10);
            }
        }
        tally.record_error("boom");
        aggregate.absorb(tally.take());
        let result = aggregate.finish(RunMeta {
            scenario: "s.yaml".to_owned(),
            host: Some("http://127.0.0.1:1".to_owned()),
            start_unix_ms: start_s * 1000,
            end_unix_ms: (start_s + n / 1000) * 1000,
            users: 10,
            spawn_rate: Some(5.0),
            thresholds: crate::stats::thresholds::parse_all(thresholds).unwrap(),
        });
        (result, all)
    }

    #[test]
    fn json_round_trips_exactly() {
        let (result, _) = run(1, 5_000, 1_700_000_000, &["p95<1s", "/a: failures<5%"]);
        let text = result.to_json();
        assert!(text.contains("\"format\": \"chorus-result\""));
        assert!(text.contains("\"version\": 1"));
        let back = RunResult::from_json(&text).unwrap();
        assert_eq!(back, result);
        assert_eq!(back.history.len(), 5);
    }

    #[test]
    fn merged_results_have_the_percentiles_of_one_histogram() {
        let (mut a, all_a) = run(7, 6_000, 1_700_000_000, &["p99<1500ms"]);
        let (b, all_b) = run(99, 4_000, 1_700_000_002, &["rps>1"]);
        let all_max = a.total.max_us.max(b.total.max_us);
        let mut all = all_a;
        all.add(&all_b);
        let b = RunResult::from_json(&b.to_json()).unwrap();
        a.merge(&b);
        assert_eq!(a.total.requests, 10_000);
        assert_eq!(a.total.failures, 200);
        assert_eq!(a.total.histogram, all);
        // exact max = the larger of the two runs' exact maxima
        assert_eq!(a.total.max_us, all_max);
        for p in [50.0, 66.0, 90.0, 95.0, 99.0, 99.9, 99.99] {
            let one_histogram = all.percentile_micros(p).min(all_max);
            assert_eq!(a.total.percentile_us(p), one_histogram, "p{p}");
        }
        let per_name: u64 = a.entries.iter().map(|e| e.requests).sum();
        assert_eq!(per_name, 10_000);
        assert_eq!(a.entries.len(), 4);
        assert_eq!(a.errors[0].count, 2);
        assert_eq!(a.meta.start_unix_ms, 1_700_000_000_000);
        assert_eq!(a.meta.end_unix_ms, 1_700_000_006_000);
        assert_eq!(a.meta.users, 20);
        assert_eq!(a.verdicts.len(), 2);
        // history: seconds 0..5 from a, 2..5 from b, overlapping seconds add
        assert_eq!(a.history.len(), 6);
        assert_eq!(a.history[2].rps, 2000.0);
    }

    /// Issue 14 row 81: a result without requests says 0, not u64::MAX, for its minimum; and
    /// an empty entry merged into another does not pull its minimum down.
    #[test]
    fn an_empty_result_has_no_sentinel_minimum() {
        let empty = RunResult::empty(RunMeta::default());
        let text = empty.to_json();
        assert!(text.contains("\"min_us\": 0"), "{text}");
        assert!(!text.contains(&u64::MAX.to_string()), "{text}");
        let (mut some, _) = run(3, 20, 1_700_000_000, &[]);
        let min = some.total.min_us;
        assert!(min > 0);
        some.merge(&RunResult::from_json(&text).unwrap());
        assert_eq!(some.total.min_us, min);
        let mut none = crate::stats::EntryStats::new("GET", "/a");
        none.merge(&some.total);
        assert_eq!(none.min_us, min);
        // A request without a latency (a connect failure) first: the next one is the minimum.
        let mut entry = crate::stats::EntryStats::new("GET", "/b");
        entry.record_untimed(0);
        entry.record(7_000, 10);
        entry.record(9_000, 10);
        assert_eq!(entry.min_us, 7_000);
        let mut untimed_only = crate::stats::EntryStats::new("GET", "/b");
        untimed_only.record_untimed(0);
        entry.merge(&untimed_only);
        assert_eq!(entry.min_us, 7_000);
    }

    #[test]
    fn foreign_files_are_refused_with_advice() {
        let err = RunResult::from_json("{\"format\": \"k6\"}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "this is not a chorus result: \"format\" is \"k6\", expected \"chorus-result\" (write one with `chorus run --json FILE`)"
        );
        let err =
            RunResult::from_json("{\"format\": \"chorus-result\", \"version\": 2}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "result format version 2 is not supported: this chorus reads version 1 (re-run with this chorus or use the chorus that wrote it)"
        );
        let err = RunResult::from_json("{\"format\": ").unwrap_err();
        assert!(err.to_string().starts_with("line 1, column 11:"), "{err}");
        let (result, _) = run(1, 10, 1, &[]);
        let broken = result
            .to_json()
            .replacen("\"histogram\": \"", "\"histogram\": \"!!", 1);
        let err = RunResult::from_json(&broken).unwrap_err().to_string();
        assert!(err.contains("entries[0].histogram"), "{err}");
        assert!(err.contains("base64"), "{err}");
    }
}
