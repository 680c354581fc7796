//! What a step makes of a response before it reads it: whether the status is one it expects,
//! whether anything reads the body (so that it is kept whole, up to the body limit, rather
//! than counted and dropped), and which failures happened before anything was sent. Plain
//! functions over the scenario's request; `step` and `http` do the IO.

use crate::scenario::{CheckKind, ExtractKind, Request};
use crate::stats::FailureKind;

/// Whether a status is one the request expects (by default: below 400).
pub(super) fn status_expected(request: &Request, status: u16) -> bool {
    match &request.expect_status {
        Some(statuses) => statuses.contains(&status),
        None => status < 400,
    }
}

/// Whether a final response with `status` has its body kept whole (up to the body limit):
/// when the step's checks or extracts read it, or `--check` compares it with the recording.
pub(super) fn keeps_body(observing: bool, request: &Request, status: u16) -> bool {
    observing || (status_expected(request, status) && reads_body(request))
}

/// Whether anything of the step reads the response body (a check or an extract on it).
/// Other bodies are only counted, never kept whole. The matches list every kind, so that a
/// new kind of check or extract has to say whether it reads the body.
fn reads_body(request: &Request) -> bool {
    let check_reads = |kind: &CheckKind| match kind {
        CheckKind::Status(_)
        | CheckKind::Header { .. }
        | CheckKind::Redirect(_)
        | CheckKind::Url(_) => false,
        CheckKind::JsonPath { .. }
        | CheckKind::BodyContains(_)
        | CheckKind::BodyNotContains(_)
        | CheckKind::Title(_)
        | CheckKind::JsonKeys(_)
        | CheckKind::Script(_) => true,
    };
    let extract_reads = |kind: &ExtractKind| match kind {
        ExtractKind::Header(_) | ExtractKind::HeaderRegex { .. } | ExtractKind::Cookie(_) => false,
        ExtractKind::JsonPath { .. }
        | ExtractKind::Regex(_)
        | ExtractKind::FormField(_)
        | ExtractKind::Meta(_)
        | ExtractKind::Link { .. } => true,
    };
    request.check.iter().any(|check| check_reads(&check.kind))
        || request
            .extract
            .iter()
            .any(|extract| extract_reads(&extract.kind))
}

/// Transport failures a setup run retries.
pub(super) fn is_transport(kind: FailureKind) -> bool {
    is_connect(kind) || matches!(kind, FailureKind::Timeout | FailureKind::ConnectionClosed)
}

/// Failures before anything was sent: connecting (and the TLS handshake).
pub(super) fn is_connect(kind: FailureKind) -> bool {
    matches!(
        kind,
        FailureKind::ConnectRefused
            | FailureKind::ConnectTimeout
            | FailureKind::Connect
            | FailureKind::Tls
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Check, Template};

    fn request(check: Vec<CheckKind>, expect_status: Option<Vec<u16>>) -> Request {
        Request {
            name: "/x".to_owned(),
            method: http::Method::GET,
            url: Template::literal("/x"),
            headers: Vec::new(),
            body: None,
            extract: Vec::new(),
            check: check.into_iter().map(|kind| Check { kind }).collect(),
            expect_status,
            recorded: None,
            http: None,
        }
    }

    #[test]
    fn a_body_is_kept_only_when_something_reads_it() {
        let status_only = request(vec![CheckKind::Status(vec![200])], None);
        assert!(!reads_body(&status_only));
        assert!(!keeps_body(false, &status_only, 200));
        let contains = request(vec![CheckKind::BodyContains("ok".to_owned())], None);
        assert!(reads_body(&contains));
        assert!(keeps_body(false, &contains, 200));
        // An unexpected status is a failure whatever the body says: only its start is kept.
        assert!(!keeps_body(false, &contains, 500));
        assert!(!keeps_body(false, &request(vec![], Some(vec![500])), 500));
        // `--check` compares every body with the recording.
        assert!(keeps_body(true, &status_only, 500));
    }

    #[test]
    fn connect_failures_are_those_before_anything_was_sent() {
        assert!(is_connect(FailureKind::ConnectRefused) && is_connect(FailureKind::Tls));
        assert!(!is_connect(FailureKind::Timeout) && is_transport(FailureKind::Timeout));
        assert!(!is_transport(FailureKind::BodyTooLarge));
        assert!(!is_transport(FailureKind::CutAtStop));
    }
}
