//! Where requests go: reverse mode's one target (with its path prefix), forward mode's
//! absolute URLs, and the HTTPS origin of an intercepted CONNECT tunnel.

use std::borrow::Cow;

use super::wire::Head;
use crate::record::upstream::Origin;

/// Where a browser connection's requests go.
pub(crate) enum Route {
    /// Reverse mode: every request to the target, whose path prefix (no trailing slash) goes
    /// before the request's path.
    Reverse { origin: Origin, prefix: String },
    /// Forward mode: each request names its URL; CONNECT ends the relay.
    Forward,
    /// Inside an intercepted CONNECT tunnel: every request to this HTTPS origin.
    Intercepted { origin: Origin },
}

impl Route {
    /// Reverse mode's route to `target` (validated: http or https, with a host).
    pub(crate) fn reverse(target: &url::Url) -> Route {
        let authority = &target[url::Position::BeforeHost..url::Position::AfterPort];
        let origin = Origin::new(target.scheme() == "https", authority)
            .expect("a validated target has a host");
        Route::Reverse {
            origin,
            prefix: target.path().trim_end_matches('/').to_owned(),
        }
    }
}

/// Where one request goes.
pub(super) struct Destination<'a> {
    pub(super) origin: Cow<'a, Origin>,
    /// The absolute URL, as recorded.
    pub(super) url: String,
    /// The request target sent to the application.
    pub(super) path: String,
}

/// Where the request `head` goes on `route`; an error says what the browser should do.
pub(super) fn destination<'a>(route: &'a Route, head: &Head) -> Result<Destination<'a>, String> {
    let target = head.target();
    match route {
        Route::Reverse { origin, prefix } => {
            let path = if prefix.is_empty() {
                target.to_owned()
            } else {
                format!("{prefix}{target}")
            };
            Ok(Destination {
                url: format!("{}{path}", origin.url_prefix()),
                origin: Cow::Borrowed(origin),
                path,
            })
        }
        Route::Intercepted { origin } => Ok(Destination {
            url: format!("{}{target}", origin.url_prefix()),
            origin: Cow::Borrowed(origin),
            path: target.to_owned(),
        }),
        Route::Forward => {
            let not_a_proxy_request = || {
                "this is chorus record --forward, an HTTP proxy: set it as the browser's HTTP and HTTPS proxy \
                 instead of opening it as a page (or record with --target URL for reverse mode)"
                    .to_owned()
            };
            let (scheme, rest) = target.split_once("://").ok_or_else(not_a_proxy_request)?;
            let https = match scheme.to_ascii_lowercase().as_str() {
                "http" => false,
                "https" => true,
                _ => return Err(not_a_proxy_request()),
            };
            let end = rest.find(['/', '?']).unwrap_or(rest.len());
            let (authority, path) = rest.split_at(end);
            let origin = Origin::new(https, authority)?;
            let path = match path {
                "" => "/".to_owned(),
                query if query.starts_with('?') => format!("/{query}"),
                path => path.to_owned(),
            };
            Ok(Destination {
                url: format!("{}{path}", origin.url_prefix()),
                origin: Cow::Owned(origin),
                path,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::relay::wire;
    use bytes::BytesMut;

    fn destination_of(route: &Route, request: &str) -> Result<(String, String, String), String> {
        let head = wire::parse_request(
            &mut BytesMut::from(request.as_bytes()),
            &mut wire::HeadScan::default(),
        )
        .unwrap()
        .unwrap();
        destination(route, &head).map(|d| (d.url, d.path, d.origin.authority().to_owned()))
    }

    #[test]
    fn requests_go_where_the_mode_says() {
        let target = url::Url::parse("http://127.0.0.1:8001/app/").unwrap();
        assert_eq!(
            destination_of(&Route::reverse(&target), "GET /api/x?y=1 HTTP/1.1\r\n\r\n"),
            Ok((
                "http://127.0.0.1:8001/app/api/x?y=1".to_owned(),
                "/app/api/x?y=1".to_owned(),
                "127.0.0.1:8001".to_owned()
            ))
        );
        let target = url::Url::parse("https://example.org").unwrap();
        assert_eq!(
            destination_of(&Route::reverse(&target), "GET / HTTP/1.1\r\n\r\n")
                .unwrap()
                .0,
            "https://example.org/"
        );
        assert_eq!(
            destination_of(
                &Route::Forward,
                "GET http://[::1]:8080?q=1 HTTP/1.1\r\n\r\n"
            ),
            Ok((
                "http://[::1]:8080/?q=1".to_owned(),
                "/?q=1".to_owned(),
                "[::1]:8080".to_owned()
            ))
        );
        assert_eq!(
            destination_of(
                &Route::Forward,
                "GET http://example.org:80/a HTTP/1.1\r\n\r\n"
            )
            .unwrap()
            .0,
            "http://example.org/a"
        );
        let refused = destination_of(&Route::Forward, "GET /a HTTP/1.1\r\n\r\n").unwrap_err();
        assert!(
            refused.contains("set it as the browser's HTTP and HTTPS proxy"),
            "{refused}"
        );
        let origin = Origin::new(true, "example.org:443").unwrap();
        assert_eq!(
            destination_of(&Route::Intercepted { origin }, "GET /p HTTP/1.1\r\n\r\n")
                .unwrap()
                .0,
            "https://example.org/p"
        );
    }
}
