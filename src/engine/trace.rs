//! W3C trace context on every request (`--trace-headers`, or `trace_headers: true` in the
//! scenario): a `traceparent` naming a trace per user iteration and a span per request, and
//! a `baggage` with the virtual user's number, its flow and its account, so that a failure in
//! chorus's report can be found in the application's traces. The trace id is derived, not
//! stored: a random number of this process's run in its upper half and the user's number
//! and iteration in its lower half, so a user costs nothing more and a failure's message can
//! name the trace its request was part of.

use std::sync::OnceLock;

use http::HeaderValue;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

/// The lower 24 bits of a trace id for `on_start` (0) and `on_stop` (all ones); iterations
/// are numbered from 1 between them (wrapping past 16 million, where ids repeat only with
/// the user's number and this run's random half too).
const ON_START: u64 = 0;
const ON_STOP: u64 = 0xff_ffff;

/// What a baggage value cannot hold as is (W3C baggage: printable ASCII but for these), and
/// `%` itself.
const NOT_BAGGAGE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b',')
    .add(b';')
    .add(b'\\')
    .add(b'%');

/// Where in its life a user sends a request, as the trace id tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    OnStart,
    /// A flow iteration, from 0.
    Iteration(u64),
    OnStop,
}

/// This process's random half of every trace id (never zero: an all-zero trace id is
/// invalid).
fn run_half() -> u64 {
    static HALF: OnceLock<u64> = OnceLock::new();
    *HALF.get_or_init(|| rand::random::<u64>() | 1)
}

/// The trace id of user `user`'s requests at `stage`.
pub(super) fn trace_id(user: u64, stage: Stage) -> u128 {
    let low_stage = match stage {
        Stage::OnStart => ON_START,
        Stage::Iteration(number) => (number % (ON_STOP - 1)) + 1,
        Stage::OnStop => ON_STOP,
    };
    let low = (user << 24) | low_stage;
    (u128::from(run_half()) << 64) | u128::from(low)
}

/// `traceparent: 00-<trace id>-<span id>-01` (sampled), with a fresh random span id.
pub(super) fn traceparent(trace: u128) -> HeaderValue {
    let span = rand::random::<u64>() | 1;
    let text = format!("00-{trace:032x}-{span:016x}-01");
    HeaderValue::from_str(&text).expect("hex digits and dashes are a header value")
}

/// `baggage: chorus.vu=3,chorus.flow=browse,chorus.account=user07` (values percent-encoded,
/// as the W3C baggage format asks).
pub(super) fn baggage(user: u64, flow: &str, account: Option<&str>) -> HeaderValue {
    let mut text = format!(
        "chorus.vu={user},chorus.flow={}",
        utf8_percent_encode(flow, NOT_BAGGAGE)
    );
    if let Some(account) = account {
        text.push_str(&format!(
            ",chorus.account={}",
            utf8_percent_encode(account, NOT_BAGGAGE)
        ));
    }
    HeaderValue::from_str(&text).expect("percent-encoded text is a header value")
}

/// A failure's message with the trace its request was part of.
pub(super) fn with_trace(message: &str, trace: u128) -> String {
    format!("{message} (trace {trace:032x})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_per_user_and_iteration_and_a_span_per_request() {
        let first = trace_id(3, Stage::Iteration(0));
        assert_eq!(first, trace_id(3, Stage::Iteration(0)));
        let others = [
            trace_id(3, Stage::Iteration(1)),
            trace_id(4, Stage::Iteration(0)),
            trace_id(3, Stage::OnStart),
            trace_id(3, Stage::OnStop),
        ];
        assert!(others.iter().all(|&other| other != first));
        assert_ne!(first as u64 >> 24, 0, "the user's number is in the id");

        let a = traceparent(first);
        let b = traceparent(first);
        assert_ne!(a, b, "a span per request");
        let text = a.to_str().unwrap();
        let parts: Vec<&str> = text.split('-').collect();
        assert_eq!(parts.len(), 4, "{text}");
        assert_eq!((parts[0], parts[3]), ("00", "01"));
        assert_eq!(parts[1], format!("{first:032x}"));
        assert_eq!(parts[2].len(), 16);
        assert_ne!(parts[2], "0000000000000000");
    }

    #[test]
    fn baggage_values_are_percent_encoded() {
        assert_eq!(
            baggage(7, "check out", Some("a,b@x%")).to_str().unwrap(),
            "chorus.vu=7,chorus.flow=check%20out,chorus.account=a%2Cb@x%25"
        );
        assert_eq!(
            baggage(0, "f", None).to_str().unwrap(),
            "chorus.vu=0,chorus.flow=f"
        );
    }
}
