//! Redirects as the engine follows them: which responses send the request on and where,
//! which of those it refuses although the host is allowed, and the name each hop is counted
//! under. Plain functions over URLs and headers; `step` does the sending and the counting.

use http::HeaderMap;
use http::header::LOCATION;

use super::http::Endpoint;
use crate::scenario::Request;

/// Where a response redirects the request to, when it is a redirect the step follows (a 3xx
/// the step does not expect, with a `Location`).
pub(super) fn redirect_to(
    request: &Request,
    status: u16,
    headers: &HeaderMap,
    base: &url::Url,
) -> Option<url::Url> {
    let followed = matches!(status, 301 | 302 | 303 | 307 | 308)
        && !request
            .expect_status
            .as_ref()
            .is_some_and(|expected| expected.contains(&status));
    if !followed {
        return None;
    }
    let location = headers.get(LOCATION)?.to_str().ok()?;
    base.join(location).ok()
}

/// Why a redirect to `next` is not followed although the scenario names its host: the same
/// host and port with TLS where the request had none (or the other way round). A port does
/// not speak both; a handshake with a plain server only waits for the connect timeout.
pub(super) fn scheme_switch(from: &url::Url, next: &url::Url, status: u16) -> Option<String> {
    let (here, there) = (Endpoint::of(from)?, Endpoint::of(next)?);
    let switched = here.host == there.host && here.port == there.port && here.https != there.https;
    switched.then(|| {
        format!(
            "HTTP {status} redirected to {next}: the same host and port as {from}, but {}; a port does not speak both, so it was not followed (is the scenario's host meant to be {}://?)",
            if there.https { "with TLS" } else { "without TLS" },
            next.scheme()
        )
    })
}

/// The name a redirect hop is counted under: its path, with the segments that look like ids
/// (digits, UUIDs, long mixes of letters and digits) shown as `[id]`, so that one endpoint is
/// one line however many ids it sees.
pub(super) fn hop_name(url: &url::Url) -> String {
    let segments: Vec<&str> = url
        .path()
        .split('/')
        .map(|segment| {
            if looks_like_id(segment) {
                "[id]"
            } else {
                segment
            }
        })
        .collect();
    segments.join("/")
}

fn looks_like_id(segment: &str) -> bool {
    let digits = segment.chars().filter(char::is_ascii_digit).count();
    !segment.is_empty()
        && (digits == segment.len()
            || (segment.len() >= 8
                && digits > 0
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_hops_are_named_by_their_path_with_ids_generalised() {
        let name = |url: &str| hop_name(&url::Url::parse(url).unwrap());
        assert_eq!(name("http://h/ticket/6?x=1"), "/ticket/[id]");
        assert_eq!(name("http://h/admin/login/"), "/admin/login/");
        assert_eq!(
            name("http://h/o/4f1c2a9e-77aa-4b51-9f3e-0c1d2e3f4a5b/items/a1b2c3d4e5"),
            "/o/[id]/items/[id]"
        );
        assert_eq!(name("http://h/posts/hello-world"), "/posts/hello-world");
    }

    #[test]
    fn a_switch_of_scheme_on_the_same_port_is_refused_with_the_reason() {
        let url = |text: &str| url::Url::parse(text).unwrap();
        let message =
            scheme_switch(&url("http://h:8080/a"), &url("https://h:8080/b"), 302).expect("refused");
        assert_eq!(
            message,
            "HTTP 302 redirected to https://h:8080/b: the same host and port as http://h:8080/a, but with TLS; a port does not speak both, so it was not followed (is the scenario's host meant to be https://?)"
        );
        assert_eq!(
            scheme_switch(&url("http://h/a"), &url("https://h/b"), 301),
            None
        );
        assert_eq!(
            scheme_switch(&url("http://h:1/a"), &url("http://h:1/b"), 302),
            None
        );
    }
}
