//! [`RunResult`], what every report writer takes, and [`RunMeta`], what the caller knows about
//! the run. A result reads back from its JSON and merges with another one exactly.

use serde::{Deserialize, Serialize};

use super::entry::{EntryStats, ErrorCount, add_error, entry_mut, sort_entries};
use super::history::HistoryPoint;
use super::thresholds::{Threshold, Verdict};

/// The `"format"` of a result file.
pub const FORMAT: &str = "chorus-result";
/// The `"version"` of the result format this build writes and reads.
pub const VERSION: u32 = 1;

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
    /// One per threshold in `meta.thresholds`.
    pub verdicts: Vec<Verdict>,
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
            verdicts: Vec::new(),
        };
        result.evaluate_thresholds();
        result
    }

    /// Seconds between start and end (at least one millisecond, so rates stay finite).
    pub fn duration_secs(&self) -> f64 {
        let ms = self
            .meta
            .end_unix_ms
            .saturating_sub(self.meta.start_unix_ms)
            .max(1);
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

    /// Whether every threshold held.
    pub fn passed(&self) -> bool {
        self.verdicts.iter().all(|v| v.passed)
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
    /// same second add their rates and users (their percentiles take the larger: an upper
    /// bound), and the thresholds of both are evaluated again on the sum.
    pub fn merge(&mut self, other: &RunResult) {
        for entry in &other.entries {
            entry_mut(&mut self.entries, &entry.method, &entry.name).merge(entry);
        }
        sort_entries(&mut self.entries);
        self.total.merge(&other.total);
        for error in &other.errors {
            add_error(&mut self.errors, &error.message, error.count);
        }
        self.dropped_iterations += other.dropped_iterations;

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
        match mine
            .iter_mut()
            .find(|p| p.unix_seconds == point.unix_seconds && p.span_seconds == point.span_seconds)
        {
            Some(existing) => {
                existing.users += point.users;
                existing.rps += point.rps;
                existing.failures_per_sec += point.failures_per_sec;
                existing.requests += point.requests;
                for (a, b) in existing
                    .percentiles_us
                    .iter_mut()
                    .zip(&point.percentiles_us)
                {
                    *a = (*a).max(*b);
                }
                let (na, nb) = (existing.total_requests, point.total_requests);
                if na + nb > 0 {
                    existing.total_avg_ms = (existing.total_avg_ms * na as f64
                        + point.total_avg_ms * nb as f64)
                        / (na + nb) as f64;
                    existing.total_avg_content_bytes = (existing.total_avg_content_bytes
                        * na as f64
                        + point.total_avg_content_bytes * nb as f64)
                        / (na + nb) as f64;
                }
                existing.total_requests += point.total_requests;
                existing.total_failures += point.total_failures;
                existing.total_median_us = existing.total_median_us.max(point.total_median_us);
                for (a, b) in existing
                    .total_percentiles_us
                    .iter_mut()
                    .zip(&point.total_percentiles_us)
                {
                    *a = (*a).max(*b);
                }
                existing.total_min_us = match (na, nb) {
                    (0, _) => point.total_min_us,
                    (_, 0) => existing.total_min_us,
                    _ => existing.total_min_us.min(point.total_min_us),
                };
                existing.total_max_us = existing.total_max_us.max(point.total_max_us);
            }
            None => mine.push(point.clone()),
        }
    }
    mine.sort_by_key(|p| p.unix_seconds);
}
