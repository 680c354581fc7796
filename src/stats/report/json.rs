//! `--json FILE`: the complete result, versioned, with every histogram serialised, so results
//! read back ([`RunResult::from_json`]) and merge ([`RunResult::merge`]) exactly.
//!
//! # Format (version 1)
//!
//! One JSON object:
//!
//! - `"format": "chorus-result"`, `"version": 1` — readers refuse anything else.
//! - `meta`: `scenario`, `host`, `start_unix_ms`, `end_unix_ms`, `users`, `spawn_rate`,
//!   `thresholds` (the expressions as written).
//! - `entries`: one per (method, name), by name then method, and `total` (the `Aggregated`
//!   row, `method` empty). Each has `requests` (failed ones included), `failures`,
//!   `untimed` (requests without a latency: connect failures and requests cut at the stop;
//!   the latency fields cover the others), `latency_sum_us`, `min_us`, `max_us`,
//!   `content_bytes`, `histogram` and
//!   `failures_by_kind` (`kind` — `"timeout"`, `{"status": 503}`, … — `count`, one sample
//!   `message`, `first_seen_unix_ms`, `last_seen_unix_ms`), and `phases` when measured:
//!   `dns`, `connect`, `tls`, `ttfb`, `download` (those with samples), each `count`,
//!   `sum_us`, `min_us`, `max_us` and `histogram` (see [`PhaseStats`](crate::stats::PhaseStats);
//!   `dns`, `connect` and `tls` only of requests that opened a connection).
//! - `histogram`: base64 of the HDR histogram's V2 deflate serialisation (the format of
//!   HdrHistogram's `HistogramLogProcessor`), values in microseconds, 1 µs to 1 h, three
//!   significant digits.
//! - `history`: one point per second (older than an hour: per minute, see
//!   [`HistoryPoint`](crate::stats::HistoryPoint)) with `unix_seconds`, `span_seconds`,
//!   `users`, `requests`, `failures`, `rps`, `failures_per_sec`, `percentiles_us` (of that
//!   point, at 50, 66, 75, 80, 90, 95, 98, 99, 99.9, 99.99, 100 %), `total_percentiles_us`
//!   and the cumulative `total_*` counters.
//! - `errors`: exceptions, `message` and `count`.
//! - `dropped_iterations`, `cut_iterations` (iterations the stop cut short), and `verdicts` (`expression`, `observed`, `observed_text`,
//!   `passed`) — derived data, computed again when a file is read.
//! - `capacity` (only after `--find-capacity`, see docs/capacity.md): `conditions` (as
//!   written), `per_second` (the highest rate that held, or null), `ended` (why the search
//!   ended) and `steps`, each with `per_second`, `first_second`, `seconds` (what was
//!   measured), `requests`, `failures`, `dropped_iterations`, `p50_us`, `p95_us`, `p99_us`,
//!   `held` and `why` (what did not hold).

use std::io;
use std::path::Path;

use crate::stats::RunResult;

/// The JSON text of `result`.
pub fn to_string(result: &RunResult) -> String {
    result.to_json()
}

/// Writes `result` as JSON to `path`.
pub fn write(result: &RunResult, path: &Path) -> io::Result<()> {
    std::fs::write(path, to_string(result)).map_err(|err| {
        io::Error::new(
            err.kind(),
            format!("cannot write {}: {err}", path.display()),
        )
    })
}
