//! What an HTTP/2 request's failure is called and said: a stream reset, a GOAWAY, a
//! connection closed, a broken protocol, a flow-control stall, with the server's error code
//! by name and a sentence a person can act on.

use std::time::Duration;

use super::state::Failure;
use crate::engine::http::TransportError;
use crate::stats::FailureKind;

/// An HTTP/2 error code's name (RFC 9113 §7).
fn reason(code: u32) -> String {
    const NAMES: [&str; 14] = [
        "NO_ERROR",
        "PROTOCOL_ERROR",
        "INTERNAL_ERROR",
        "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT",
        "STREAM_CLOSED",
        "FRAME_SIZE_ERROR",
        "REFUSED_STREAM",
        "CANCEL",
        "COMPRESSION_ERROR",
        "CONNECT_ERROR",
        "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY",
        "HTTP_1_1_REQUIRED",
    ];
    NAMES.get(code as usize).map_or_else(
        || format!("error code {code:#x}"),
        |name| (*name).to_owned(),
    )
}

/// Maps why a stream failed onto a kind and a sentence a person can act on.
pub(super) fn failure_text(failure: &Failure, target: &str) -> (FailureKind, String) {
    match failure {
        Failure::GoAway(code) => (
            FailureKind::GoAway,
            format!(
                "{target} sent GOAWAY ({}) before this request's response was complete: the server closed the HTTP/2 connection under it (restarting or reloading, or at its limit of requests per connection, e.g. nginx's keepalive_requests); the next request opens a new connection",
                reason(*code)
            ),
        ),
        Failure::Reset(code) => {
            let advice = match *code {
                7 => {
                    "the server refused it unprocessed (too many streams at once: lower `parallel:`, or raise the server's max_concurrent_streams)"
                }
                8 => "the server cancelled it",
                _ => "the server gave up on it (look in the server's error log for this request)",
            };
            (
                FailureKind::StreamReset,
                format!(
                    "{target} reset the HTTP/2 stream ({}) before the response was complete: {advice}",
                    reason(*code)
                ),
            )
        }
        Failure::ClosedAfterGoAway { last, code, detail } => (
            FailureKind::GoAway,
            format!(
                "{target} sent GOAWAY ({}, last stream {last}) and then the HTTP/2 connection closed ({detail}) before this request's response was complete: the server gave up on the connection with the request on it (look in the server's error log); the next request opens a new connection",
                reason(*code)
            ),
        ),
        Failure::Closed(detail) => (
            FailureKind::ConnectionClosed,
            format!("the HTTP/2 connection to {target} failed: {detail}"),
        ),
        Failure::Protocol(detail) => (
            FailureKind::InvalidResponse,
            format!("{target} broke the HTTP/2 protocol: {detail}"),
        ),
    }
}

/// The failure of a request whose body waited on the server's flow-control window until the
/// timeout.
pub(in crate::engine::http) fn stall(
    target: &str,
    timeout: Duration,
    latency: Duration,
) -> TransportError {
    TransportError {
        kind: FailureKind::FlowControlStall,
        message: format!(
            "{target} did not open its HTTP/2 flow-control window for this request's body within the timeout of {}: the server stopped reading it (too slow, or its window settings too small for this body)",
            humantime::format_duration(timeout)
        ),
        latency,
    }
}
