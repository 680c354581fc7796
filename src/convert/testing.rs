//! Builders for the unit tests of the convert passes.

use super::model::{Exchange, RecordedBody};

/// An exchange with JSON bodies (or none when empty), recorded at a fixed wall-clock time.
pub(crate) fn exchange(
    method: &str,
    url: &str,
    status: u16,
    request_body: &str,
    response_body: &str,
) -> Exchange {
    Exchange {
        entry: 0,
        started_ms: 0.0,
        wall_ms: 1_700_000_000_000.0,
        duration_ms: 5.0,
        method: method.to_owned(),
        url: url.parse().expect("test URL"),
        request_headers: Vec::new(),
        request_body: (!request_body.is_empty()).then(|| RecordedBody {
            mime: "application/json".to_owned(),
            text: request_body.to_owned(),
        }),
        status,
        response_headers: Vec::new(),
        response_mime: if response_body.is_empty() {
            String::new()
        } else {
            "application/json".to_owned()
        },
        response_body: (!response_body.is_empty()).then(|| response_body.to_owned()),
        page: Default::default(),
        socket: None,
    }
}

/// Numbers the entries and spaces them `gap_ms` apart.
pub(crate) fn sequence(mut list: Vec<Exchange>, gap_ms: f64) -> Vec<Exchange> {
    for (index, exchange) in list.iter_mut().enumerate() {
        exchange.entry = index;
        exchange.started_ms = index as f64 * gap_ms;
        exchange.wall_ms = 1_700_000_000_000.0 + exchange.started_ms;
    }
    list
}
