//! The heads of an HTTP/2 exchange, pure: what goes to the application (HTTP/2 or HTTP/1.1:
//! connection-specific fields out, `Host` and joined cookies for HTTP/1.1), what goes back to
//! the browser, and the text the capture reads (`GET /x HTTP/2` then `:authority`, `:method`,
//! `:path`, `:scheme` as Chromium's HAR lists them, then the fields as the browser sent them).

use http::header::{CONNECTION, COOKIE, HOST, TE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};

use crate::record::upstream::Origin;

/// Fields that belong to one HTTP/1.1 connection and may not appear in HTTP/2 (RFC 9113
/// 8.2.2), and a proxy's own (the recorder's `--proxy-auth` credentials are never passed on);
/// `te` is allowed with the value `trailers` only, and is left out for HTTP/1.1.
const CONNECTION_SPECIFIC: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "transfer-encoding",
    "upgrade",
    "host",
];

/// Removes connection-specific fields (and those the `Connection` field names), keeping
/// `te: trailers` when `keep_te_trailers`.
pub(super) fn strip_connection_fields(headers: &mut HeaderMap, keep_te_trailers: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in CONNECTION_SPECIFIC {
        headers.remove(name);
    }
    let trailers_only = headers
        .get_all(TE)
        .iter()
        .all(|value| value.as_bytes().eq_ignore_ascii_case(b"trailers"));
    if !(keep_te_trailers && trailers_only) {
        headers.remove(TE);
    }
}

/// The request for the application: to `origin`, the browser's path and fields, as HTTP/2
/// (an absolute URI, from which the client writes `:scheme` and `:authority`) or HTTP/1.1
/// (origin-form, a `Host`, the cookie crumbs joined into one field as RFC 9113 8.2.3 says).
pub(super) fn for_application<B>(
    method: &Method,
    path: &str,
    browser: &HeaderMap,
    origin: &Origin,
    http2: bool,
    body: B,
) -> Result<Request<B>, String> {
    let mut headers = browser.clone();
    strip_connection_fields(&mut headers, http2);
    let uri = if http2 {
        format!("{}{path}", origin.url_prefix())
    } else {
        path.to_owned()
    };
    let uri: Uri = uri
        .parse()
        .map_err(|err| format!("the path {path:?} is not a valid request target ({err})"))?;
    if !http2 {
        let host = HeaderValue::from_str(origin.authority())
            .map_err(|err| format!("the host {:?} cannot be sent ({err})", origin.authority()))?;
        headers.insert(HOST, host);
        let crumbs: Vec<&[u8]> = headers
            .get_all(COOKIE)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect();
        if crumbs.len() > 1 {
            let joined = HeaderValue::from_bytes(&crumbs.join(&b"; "[..]))
                .map_err(|err| format!("the cookies cannot be joined ({err})"))?;
            headers.insert(COOKIE, joined);
        }
    }
    let mut request = Request::new(body);
    *request.method_mut() = method.clone();
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    Ok(request)
}

/// The capture's text of the browser's request: `METHOD PATH HTTP/2`, the pseudo-header
/// fields in the order Chromium's HAR lists them, then the fields as they came.
pub(super) fn recorded_request(
    method: &Method,
    uri: &Uri,
    fallback_authority: &str,
    headers: &HeaderMap,
) -> Vec<u8> {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let authority = uri.authority().map_or(fallback_authority, |a| a.as_str());
    let scheme = uri.scheme_str().unwrap_or("https");
    let mut head = Vec::with_capacity(256);
    for part in [method.as_str(), " ", path, " HTTP/2\r\n"] {
        head.extend_from_slice(part.as_bytes());
    }
    for (name, value) in [
        (":authority", authority),
        (":method", method.as_str()),
        (":path", path),
        (":scheme", scheme),
    ] {
        field(&mut head, name, value.as_bytes());
    }
    fields(&mut head, headers);
    head.extend_from_slice(b"\r\n");
    head
}

/// The capture's text of the answer as the browser got it: `HTTP/2 STATUS` and its fields
/// (Chromium's HAR lists no `:status`).
pub(super) fn recorded_response(status: u16, headers: &HeaderMap) -> Vec<u8> {
    let mut head = format!("HTTP/2 {status}\r\n").into_bytes();
    fields(&mut head, headers);
    head.extend_from_slice(b"\r\n");
    head
}

fn fields(head: &mut Vec<u8>, headers: &HeaderMap) {
    for (name, value) in headers {
        field(head, name.as_str(), value.as_bytes());
    }
}

fn field(head: &mut Vec<u8>, name: &str, value: &[u8]) {
    // HTTP/2 field values cannot hold CR or LF; a line break would end the head early.
    if value.iter().any(|&b| b == b'\r' || b == b'\n') {
        return;
    }
    head.extend_from_slice(name.as_bytes());
    head.extend_from_slice(b": ");
    head.extend_from_slice(value);
    head.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(fields: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in fields {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn the_browsers_head_is_recorded_with_chromiums_pseudo_header_fields() {
        let uri: Uri = "https://app.test:8443/api/x?y=1".parse().unwrap();
        let browser = headers(&[("accept", "*/*"), ("cookie", "a=1"), ("cookie", "b=2")]);
        let head = recorded_request(&Method::POST, &uri, "unused", &browser);
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "POST /api/x?y=1 HTTP/2\r\n:authority: app.test:8443\r\n:method: POST\r\n\
             :path: /api/x?y=1\r\n:scheme: https\r\naccept: */*\r\ncookie: a=1\r\ncookie: b=2\r\n\r\n"
        );
        let answer = headers(&[("content-type", "text/plain"), ("set-cookie", "s=1")]);
        assert_eq!(
            recorded_response(204, &answer),
            b"HTTP/2 204\r\ncontent-type: text/plain\r\nset-cookie: s=1\r\n\r\n"
        );
    }

    #[test]
    fn http1_applications_get_a_host_joined_cookies_and_no_connection_fields() {
        let origin = Origin::new(true, "app.test:8443").unwrap();
        let browser = headers(&[
            ("accept", "*/*"),
            ("cookie", "a=1"),
            ("cookie", "b=2"),
            ("te", "trailers"),
            ("connection", "x-private"),
            ("x-private", "1"),
            ("proxy-authorization", "Basic c2VjcmV0"),
        ]);
        let request = for_application(&Method::GET, "/a?b", &browser, &origin, false, ()).unwrap();
        assert_eq!(request.uri(), "/a?b");
        assert_eq!(request.headers()["host"], "app.test:8443");
        assert_eq!(request.headers()["cookie"], "a=1; b=2");
        assert!(request.headers().get("te").is_none());
        assert!(request.headers().get("x-private").is_none());
        assert!(request.headers().get("connection").is_none());
        assert!(request.headers().get("proxy-authorization").is_none());

        let request = for_application(&Method::GET, "/a?b", &browser, &origin, true, ()).unwrap();
        assert_eq!(request.uri(), "https://app.test:8443/a?b");
        assert!(request.headers().get("host").is_none());
        assert_eq!(request.headers()["te"], "trailers");
        assert_eq!(request.headers().get_all("cookie").iter().count(), 2);
    }

    #[test]
    fn answers_lose_their_connection_fields_on_the_way_to_the_browser() {
        let mut answer = headers(&[
            ("content-type", "text/plain"),
            ("transfer-encoding", "chunked"),
            ("connection", "keep-alive, x-hop"),
            ("keep-alive", "timeout=5"),
            ("x-hop", "1"),
            ("te", "gzip"),
        ]);
        strip_connection_fields(&mut answer, true);
        let names: Vec<&str> = answer.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["content-type"]);
    }
}
