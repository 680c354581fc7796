//! Measurements: HDR histograms per request name, counters, failures by kind, the time series,
//! exact merging, thresholds and the report writers (CSV, JSON, HTML, terminal summary).
//!
//! Data flows one way through this module:
//!
//! ```text
//! engine worker: Tally::record(..)  --take()-->  Snapshot  --absorb_second(worker, second)-->  Aggregate
//! Aggregate::close_seconds(..) as the seconds' reports are in (history)  ...  Aggregate::finish(RunMeta) -> RunResult
//! RunResult -> report::{csv, json, html, summary}; thresholds evaluate a RunResult
//! ```
//!
//! Nothing here is shared per request: each worker owns a [`Tally`], and merging two
//! snapshots or two results is exact (the merged percentiles are those of one histogram
//! holding every sample). Latencies are microseconds everywhere inside; reports show
//! milliseconds like Locust.

mod aggregate;
pub mod capacity;
mod entry;
mod histogram;
mod history;
mod phases;
pub mod report;
mod result;
mod tally;
pub mod thresholds;
mod timeline;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

pub use aggregate::{Aggregate, LiveRow};
pub(crate) use entry::now_unix_ms;
pub use entry::{EntryStats, ErrorCount, FailureCount, MAX_DISTINCT_ERRORS, OTHER_ERRORS};
pub use histogram::{Histogram, MAX_MICROS};
pub use history::{COARSE_SPAN_SECONDS, FULL_RESOLUTION_SECONDS, HistoryPoint, PERCENTILES};
pub use phases::{PHASE_NAMES, PhaseStats, PhaseTimes, Phases, Setup};
pub use result::{EXIT_FAILED, EXIT_PASSED, FORMAT, ResultError, RunMeta, RunResult, VERSION};
pub use tally::{Snapshot, Tally};
pub use thresholds::{Threshold, ThresholdError, Verdict};
pub use timeline::{GRACE, SecondsTap};

/// Why a request failed: a small closed set, so failures are counted by kind and never keyed
/// by a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The server refused the connection.
    ConnectRefused,
    /// Connecting took longer than the connect timeout.
    ConnectTimeout,
    /// Any other connect error (DNS, unreachable, ...).
    Connect,
    /// The TLS handshake failed.
    Tls,
    /// The response did not complete within the request timeout.
    Timeout,
    /// The server closed the connection before a complete response.
    ConnectionClosed,
    /// The response was not valid HTTP (or its body could not be decoded).
    InvalidResponse,
    /// The status was not one the step expects (by default: >= 400).
    Status(u16),
    /// A `check:` on the response failed.
    CheckFailed,
    /// An `extract:` found nothing to extract.
    ExtractFailed,
    /// A redirect pointed at a host the scenario does not name.
    OffHostRedirect,
    /// Rendering the request (URL, header, body) failed.
    Template,
    /// The response body was larger than the body limit (`--max-body`, `max_body:`) and
    /// something had to read it; the rest was not read.
    BodyTooLarge,
    /// The request was in flight when the run stopped (the stop timeout ran out, or a stop at
    /// once): sent, never answered. It has no latency sample.
    CutAtStop,
    /// A script (`scripts:`) threw, or returned what the request cannot use, in a hook.
    ScriptError,
    /// A script call ran past the script time limit and was stopped.
    ScriptTimeout,
    /// A `receive:` saw no matching message on its socket within its timeout.
    MessageTimeout,
    /// The socket (WebSocket, event stream) was closed when a step needed it open, or closed
    /// while a `receive:` waited.
    SocketClosed,
    /// The server broke the WebSocket or event-stream protocol (a bad frame, a handshake
    /// answered with something else).
    ProtocolError,
    /// The server reset the request's HTTP/2 stream (RST_STREAM) before its response was
    /// complete; the connection itself stayed up.
    StreamReset,
    /// The server sent an HTTP/2 GOAWAY that did not cover this request: the connection
    /// closed under it (the server restarting, reloading, or limiting requests per
    /// connection).
    GoAway,
    /// The request's body could not be sent within the timeout because the server's HTTP/2
    /// flow-control window stayed closed.
    FlowControlStall,
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureKind::ConnectRefused => f.write_str("connection refused"),
            FailureKind::ConnectTimeout => f.write_str("connect timeout"),
            FailureKind::Connect => f.write_str("connect error"),
            FailureKind::Tls => f.write_str("TLS error"),
            FailureKind::Timeout => f.write_str("timeout"),
            FailureKind::ConnectionClosed => f.write_str("connection closed"),
            FailureKind::InvalidResponse => f.write_str("invalid response"),
            FailureKind::Status(code) => write!(f, "HTTP {code}"),
            FailureKind::CheckFailed => f.write_str("check failed"),
            FailureKind::ExtractFailed => f.write_str("extract failed"),
            FailureKind::OffHostRedirect => f.write_str("off-host redirect"),
            FailureKind::Template => f.write_str("template error"),
            FailureKind::BodyTooLarge => f.write_str("body too large"),
            FailureKind::CutAtStop => f.write_str("cut at stop"),
            FailureKind::ScriptError => f.write_str("script error"),
            FailureKind::ScriptTimeout => f.write_str("script time limit"),
            FailureKind::MessageTimeout => f.write_str("message timeout"),
            FailureKind::SocketClosed => f.write_str("socket closed"),
            FailureKind::ProtocolError => f.write_str("protocol error"),
            FailureKind::StreamReset => f.write_str("stream reset"),
            FailureKind::GoAway => f.write_str("GOAWAY"),
            FailureKind::FlowControlStall => f.write_str("flow-control stall"),
        }
    }
}

/// A failed request: its kind (what is counted) and a message (one sample is kept per
/// (method, name, kind)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure<'a> {
    pub kind: FailureKind,
    pub message: &'a str,
}

/// One request that was sent, as the engine saw it. Borrowed so that recording allocates
/// nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestSample<'a> {
    /// The HTTP method (Locust's "Type" column), e.g. `"GET"`.
    pub method: &'a str,
    /// The name the request is counted under, e.g. `"/api/course"`.
    pub name: &'a str,
    /// From just before the request is written to the end of the response body (open model:
    /// from the intended start).
    pub latency: Duration,
    /// Response body length in bytes (Locust's content size).
    pub response_bytes: u64,
    /// `None` for a success.
    pub failure: Option<Failure<'a>>,
}
