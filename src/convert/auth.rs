//! HTTP authentication in a capture (`Authorization: Basic` or `Digest`): the engine answers
//! the server's challenges itself (the scenario's `auth:`), with each user's own credentials,
//! so the recorded headers leave the requests, and the browser's first try without
//! credentials (the 401 it got before it asked the person) leaves the scenario.

use base64::Engine as _;

use super::model::Exchange;

/// What the capture shows of HTTP authentication.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HttpAuth {
    /// The recorded user name.
    pub(crate) username: String,
    /// The recorded password (Basic only: Digest never sends it).
    pub(crate) password: Option<String>,
    /// Positions of the exchanges that are a challenge the engine answers by itself: a 401
    /// asking for credentials, followed by the same request with them.
    pub(crate) challenges: Vec<usize>,
}

/// `Authorization` values the engine makes itself.
pub(crate) fn is_http_auth(value: &str) -> bool {
    let scheme = value.split_whitespace().next().unwrap_or_default();
    scheme.eq_ignore_ascii_case("basic") || scheme.eq_ignore_ascii_case("digest")
}

/// The HTTP authentication of the capture, when a request sent credentials.
pub(crate) fn detect(exchanges: &[Exchange]) -> Option<HttpAuth> {
    let credentials = exchanges.iter().find_map(|e| {
        e.request_header("authorization")
            .filter(|v| is_http_auth(v))
    })?;
    let (username, password) = credentials_of(credentials)?;
    let challenges = (0..exchanges.len().saturating_sub(1))
        .filter(|&i| {
            let (asked, answered) = (&exchanges[i], &exchanges[i + 1]);
            asked.status == 401
                && asked.response_header("www-authenticate").is_some()
                && asked.request_header("authorization").is_none()
                && answered.method == asked.method
                && answered.url == asked.url
                && answered
                    .request_header("authorization")
                    .is_some_and(is_http_auth)
        })
        .collect();
    Some(HttpAuth {
        username,
        password,
        challenges,
    })
}

/// (user name, password) of a Basic header; (user name, None) of a Digest one.
fn credentials_of(value: &str) -> Option<(String, Option<String>)> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        return Some((user.to_owned(), Some(password.to_owned())));
    }
    // Digest: username="..." among the parameters.
    rest.split(',').find_map(|param| {
        let (key, value) = param.trim().split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("username")
            .then(|| (value.trim().trim_matches('"').to_owned(), None))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::testing::exchange;

    #[test]
    fn a_basic_login_after_a_challenge() {
        let mut challenge = exchange("GET", "http://trac/login", 401, "", "");
        challenge.response_headers.push((
            "WWW-Authenticate".to_owned(),
            "Basic realm=\"x\"".to_owned(),
        ));
        let mut login = exchange("GET", "http://trac/login", 302, "", "");
        // "user01:pw-01-Secret!"
        login.request_headers.push((
            "Authorization".to_owned(),
            "Basic dXNlcjAxOnB3LTAxLVNlY3JldCE=".to_owned(),
        ));
        let found = detect(&[
            exchange("GET", "http://trac/", 200, "", ""),
            challenge,
            login,
        ])
        .unwrap();
        assert_eq!(
            found,
            HttpAuth {
                username: "user01".to_owned(),
                password: Some("pw-01-Secret!".to_owned()),
                challenges: vec![1]
            }
        );
        assert_eq!(
            credentials_of(r#"Digest username="Mufasa", realm="x", nonce="n""#),
            Some(("Mufasa".to_owned(), None))
        );
        assert!(!is_http_auth("Bearer abc"));
    }
}
