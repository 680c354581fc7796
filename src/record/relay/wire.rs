//! HTTP/1.1 as the relay passes it through: request and response heads parsed (`httparse`)
//! into offsets over the bytes that came, how each body is framed (bodies pass unchanged;
//! [`crate::http1`] finds where a chunked one ends), and the heads the relay writes on
//! either side (hop-by-hop headers dropped, `Host` and reverse-mode headers rewritten). Plain
//! functions over buffers, no IO: `super` reads and writes the sockets.

use bytes::{Bytes, BytesMut};

use crate::http1::HeadFacts;
pub(crate) use crate::http1::{Chunk, Framing, HeadScan, scan_chunks};
use crate::http1::{MAX_HEADERS, push_decimal, span};
use crate::record::rewrite::ReverseRewrite;

/// The largest head accepted (request or status line and headers).
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// Where a header's name and value are in its head's bytes.
#[derive(Debug, Clone, Copy)]
struct HeaderAt {
    name: (u32, u32),
    value: (u32, u32),
}

/// A parsed head: the bytes as they came (through the blank line) and where things are.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub(crate) bytes: Bytes,
    headers: Vec<HeaderAt>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub(crate) version: u8,
    /// The method and request target of a request; the reason phrase of a response (first
    /// range).
    first: (u32, u32),
    second: (u32, u32),
    /// A response's status; 0 for a request.
    pub(crate) status: u16,
    pub(crate) facts: HeadFacts,
    /// A request's `Upgrade: websocket`.
    pub(crate) upgrade_websocket: bool,
    pub(crate) expect_continue: bool,
}

/// Why a head could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeadError(pub(crate) String);

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Head {
    fn range(&self, (start, end): (u32, u32)) -> &[u8] {
        &self.bytes[start as usize..end as usize]
    }

    /// A request's method, e.g. `GET`.
    pub(crate) fn method(&self) -> &str {
        std::str::from_utf8(self.range(self.first)).unwrap_or_default()
    }

    /// A request's target: a path (origin form), an absolute URL (forward proxies) or
    /// `host:port` (CONNECT).
    pub(crate) fn target(&self) -> &str {
        std::str::from_utf8(self.range(self.second)).unwrap_or_default()
    }

    /// A response's reason phrase.
    pub(crate) fn reason(&self) -> &[u8] {
        self.range(self.first)
    }

    /// The headers in order, names as they came.
    pub(crate) fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.headers
            .iter()
            .map(|at| (self.range(at.name), self.range(at.value)))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    pub(crate) fn is_head_request(&self) -> bool {
        self.method() == "HEAD"
    }
}

/// Parses a request head at the start of `buffer`; once complete, takes it out. `scan`
/// follows the buffer from call to call (bytes without a line end are not parsed again).
pub(crate) fn parse_request(
    buffer: &mut BytesMut,
    scan: &mut HeadScan,
) -> Result<Option<Head>, HeadError> {
    if !scan.worth_parsing(buffer) {
        return unchanged(buffer);
    }
    let mut storage = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut request,
        buffer,
        &mut storage,
    );
    let Some(length) = complete(parsed, buffer, "request")? else {
        return Ok(None);
    };
    let at = |part: &[u8]| span(buffer, part);
    let method = at(request.method.unwrap_or_default().as_bytes());
    let target = at(request.path.unwrap_or_default().as_bytes());
    let headers = offsets(request.headers, &at);
    let version = request.version.unwrap_or(1);
    let bytes = buffer.split_to(length).freeze();
    scan.restart();
    finish(bytes, headers, version, method, target, 0)
}

/// Parses a response head at the start of `buffer`; once complete, takes it out (`scan` as
/// for [`parse_request`]).
pub(crate) fn parse_response(
    buffer: &mut BytesMut,
    scan: &mut HeadScan,
) -> Result<Option<Head>, HeadError> {
    if !scan.worth_parsing(buffer) {
        return unchanged(buffer);
    }
    let mut storage = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buffer,
        &mut storage,
    );
    let Some(length) = complete(parsed, buffer, "response")? else {
        return Ok(None);
    };
    let at = |part: &[u8]| span(buffer, part);
    let reason = at(response.reason.unwrap_or_default().as_bytes());
    let headers = offsets(response.headers, &at);
    let (version, status) = (response.version.unwrap_or(1), response.code.unwrap_or(0));
    let bytes = buffer.split_to(length).freeze();
    scan.restart();
    finish(bytes, headers, version, reason, (0, 0), status)
}

/// The answer for a buffer that gained no line end since it was last parsed: still
/// incomplete, unless it is already longer than any head may be.
fn unchanged(buffer: &BytesMut) -> Result<Option<Head>, HeadError> {
    complete(Ok(httparse::Status::Partial), buffer, "head").map(|_| None)
}

/// The head's length once `httparse` found it whole; `None` while it is still coming.
fn complete(
    parsed: httparse::Result<usize>,
    buffer: &BytesMut,
    what: &str,
) -> Result<Option<usize>, HeadError> {
    match parsed {
        Ok(httparse::Status::Complete(length)) => Ok(Some(length)),
        Ok(httparse::Status::Partial) if buffer.len() > MAX_HEAD => Err(HeadError(format!(
            "a head longer than {} KiB",
            MAX_HEAD / 1024
        ))),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(err) => Err(HeadError(format!("not an HTTP/1.1 {what} ({err})"))),
    }
}

fn offsets(headers: &[httparse::Header<'_>], at: &impl Fn(&[u8]) -> (u32, u32)) -> Vec<HeaderAt> {
    headers
        .iter()
        .map(|header| HeaderAt {
            name: at(header.name.as_bytes()),
            value: at(header.value),
        })
        .collect()
}

fn finish(
    bytes: Bytes,
    headers: Vec<HeaderAt>,
    version: u8,
    first: (u32, u32),
    second: (u32, u32),
    status: u16,
) -> Result<Option<Head>, HeadError> {
    let mut head = Head {
        bytes,
        headers,
        version,
        first,
        second,
        status,
        facts: HeadFacts::default(),
        upgrade_websocket: false,
        expect_continue: false,
    };
    let (mut facts, mut upgrade_websocket, mut expect_continue) =
        (HeadFacts::default(), false, false);
    for (name, value) in head.headers() {
        facts.note(name, value).map_err(HeadError)?;
        if name.eq_ignore_ascii_case(b"upgrade") {
            upgrade_websocket |= value.trim_ascii().eq_ignore_ascii_case(b"websocket");
        } else if name.eq_ignore_ascii_case(b"expect") {
            expect_continue |= value.trim_ascii().eq_ignore_ascii_case(b"100-continue");
        }
    }
    if facts.content_length.is_some() && facts.transfer_encoding.is_some() {
        return Err(HeadError(
            "both Content-Length and Transfer-Encoding (refused: the two could disagree on where the body ends)"
                .to_owned(),
        ));
    }
    (head.facts, head.upgrade_websocket, head.expect_continue) =
        (facts, upgrade_websocket, expect_continue);
    Ok(Some(head))
}

/// What the start of an answer that came during an upload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Peek {
    /// Not a whole head yet.
    Incomplete,
    /// A whole interim (1xx, not 101) head of this many bytes.
    Interim(usize),
    /// The final answer (or something that is not HTTP: reading it says so).
    Final,
}

/// Looks at the head at the start of `buffer` without taking it out.
pub(crate) fn peek_response(buffer: &[u8]) -> Peek {
    let mut storage = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buffer,
        &mut storage,
    );
    match parsed {
        Ok(httparse::Status::Complete(length)) => match response.code {
            Some(code) if (100..200).contains(&code) && code != 101 => Peek::Interim(length),
            _ => Peek::Final,
        },
        Ok(httparse::Status::Partial) if buffer.len() <= MAX_HEAD => Peek::Incomplete,
        _ => Peek::Final,
    }
}

/// A request body's framing; a transfer coding other than chunked cannot be framed.
pub(crate) fn request_framing(head: &Head) -> Result<Framing, HeadError> {
    match (head.facts.transfer_encoding, head.facts.content_length) {
        (Some(true), _) => Ok(Framing::Chunked),
        (Some(false), _) => Err(HeadError(
            "a Transfer-Encoding that does not end in chunked".to_owned(),
        )),
        (None, length) => Ok(Framing::Length(length.unwrap_or(0))),
    }
}

/// A response body's framing; `head_request` when it answers a HEAD.
pub(crate) fn response_framing(head: &Head, head_request: bool) -> Framing {
    head.facts.response_framing(head.status, head_request)
}

/// Whether the connection that carried `head` stays open after its message.
pub(crate) fn keep_alive(head: &Head, framing: Framing) -> bool {
    head.facts.keep_alive(head.version, head.status, framing)
}

/// Headers that belong to one connection, never passed on (`Transfer-Encoding` is, because
/// bodies pass through with their framing).
const HOP_BY_HOP: [&[u8]; 7] = [
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"proxy-authenticate",
    b"proxy-authorization",
    b"te",
    b"trailer",
];

/// The names a `Connection` header lists, which are hop-by-hop too (`Upgrade` is decided
/// apart).
fn connection_listed(head: &Head) -> Vec<&[u8]> {
    head.headers()
        .filter(|(name, _)| name.eq_ignore_ascii_case(b"connection"))
        .flat_map(|(_, value)| value.split(|&byte| byte == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|token| !token.is_empty() && !token.eq_ignore_ascii_case(b"upgrade"))
        .collect()
}

fn is_hop_by_hop(name: &[u8], listed: &[&[u8]], upgrade: bool) -> bool {
    HOP_BY_HOP.iter().any(|hop| name.eq_ignore_ascii_case(hop))
        || (!upgrade && name.eq_ignore_ascii_case(b"upgrade"))
        || listed.iter().any(|token| name.eq_ignore_ascii_case(token))
}

fn push_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The head sent to the application: `METHOD path HTTP/1.1`, `Host: authority`, the
/// browser's end-to-end headers (reverse mode: `Origin` and `Referer` pointed at the
/// target), `Connection: upgrade` for a WebSocket upgrade. `Expect` is answered by the relay
/// itself, and a WebSocket's compression extensions are refused so its frames can be read.
/// The header named `ours` (the recorder's own credentials) is left out.
pub(crate) fn upstream_request_head(
    out: &mut Vec<u8>,
    head: &Head,
    path: &str,
    authority: &str,
    rewrite: Option<&ReverseRewrite>,
    ours: Option<&str>,
) {
    let upgrade = head.upgrade_websocket && head.facts.connection_upgrade;
    let listed = connection_listed(head);
    out.extend_from_slice(head.method().as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    push_header(out, b"host", authority.as_bytes());
    for (name, value) in head.headers() {
        if name.eq_ignore_ascii_case(b"host")
            || name.eq_ignore_ascii_case(b"expect")
            || (upgrade && name.eq_ignore_ascii_case(b"sec-websocket-extensions"))
            || is_hop_by_hop(name, &listed, upgrade)
            || ours.is_some_and(|ours| name.eq_ignore_ascii_case(ours.as_bytes()))
        {
            continue;
        }
        match rewrite.and_then(|rewrite| rewrite.request_value(name, value)) {
            Some(new) => push_header(out, name, new.as_bytes()),
            None => push_header(out, name, value),
        }
    }
    if upgrade {
        push_header(out, b"connection", b"upgrade");
    }
    out.extend_from_slice(b"\r\n");
}

/// The head sent to the browser: `HTTP/1.1 STATUS REASON`, the application's end-to-end
/// headers (reverse mode: `Location` and cookies pointed back at the proxy), `Connection:
/// upgrade` for a 101, else `connection` when given (`close` when the connection ends after
/// the response, `keep-alive` for an HTTP/1.0 browser that keeps it).
pub(crate) fn browser_response_head(
    out: &mut Vec<u8>,
    head: &Head,
    connection: Option<&str>,
    rewrite: Option<&ReverseRewrite>,
) {
    let upgrade = head.status == 101;
    let listed = connection_listed(head);
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, head.status.into());
    out.push(b' ');
    out.extend_from_slice(head.reason());
    out.extend_from_slice(b"\r\n");
    for (name, value) in head.headers() {
        if is_hop_by_hop(name, &listed, upgrade) {
            continue;
        }
        match rewrite.and_then(|rewrite| rewrite.response_value(name, value)) {
            Some(new) => push_header(out, name, new.as_bytes()),
            None => push_header(out, name, value),
        }
    }
    match (upgrade, connection) {
        (true, _) => push_header(out, b"connection", b"upgrade"),
        (false, Some(value)) => push_header(out, b"connection", value.as_bytes()),
        (false, None) => {}
    }
    out.extend_from_slice(b"\r\n");
}

/// A complete answer from the proxy itself (a 502 page, a refusal).
pub(crate) fn answer(status: u16, reason: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + body.len());
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(&mut out, status.into());
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    push_header(&mut out, b"content-type", content_type.as_bytes());
    out.extend_from_slice(b"content-length: ");
    push_decimal(&mut out, body.len() as u64);
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str) -> Head {
        parse_request(
            &mut BytesMut::from(text.as_bytes()),
            &mut HeadScan::default(),
        )
        .unwrap()
        .unwrap()
    }

    fn response(text: &str) -> Head {
        parse_response(
            &mut BytesMut::from(text.as_bytes()),
            &mut HeadScan::default(),
        )
        .unwrap()
        .unwrap()
    }

    #[test]
    fn requests_are_parsed_once_complete_and_leave_the_body() {
        let mut buffer = BytesMut::from(&b"POST /api/x?y=1 HTTP/1.1\r\nHost: a\r\nContent-Le"[..]);
        assert!(
            parse_request(&mut buffer, &mut HeadScan::default())
                .unwrap()
                .is_none()
        );
        buffer.extend_from_slice(b"ngth: 2\r\nCookie: s=1\r\n\r\n{}");
        let head = parse_request(&mut buffer, &mut HeadScan::default())
            .unwrap()
            .unwrap();
        assert_eq!((head.method(), head.target()), ("POST", "/api/x?y=1"));
        assert_eq!(head.header("cookie"), Some(&b"s=1"[..]));
        assert_eq!(&buffer[..], b"{}");
        assert_eq!(request_framing(&head), Ok(Framing::Length(2)));
        assert!(keep_alive(&head, Framing::Length(2)));

        let head = request("GET / HTTP/1.0\r\n\r\n");
        assert_eq!(request_framing(&head), Ok(Framing::Length(0)));
        assert!(!keep_alive(&head, Framing::Length(0)));
        let head = request("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(request_framing(&head), Ok(Framing::Chunked));

        for bad in [
            "GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET\x01/ HTTP/1.1\r\n\r\n",
        ] {
            assert!(
                parse_request(
                    &mut BytesMut::from(bad.as_bytes()),
                    &mut HeadScan::default()
                )
                .is_err(),
                "{bad:?}"
            );
        }
        let mut endless = BytesMut::from(&b"GET / HTTP/1.1\r\nX: "[..]);
        endless.extend_from_slice(&vec![b'a'; MAX_HEAD + 1]);
        assert!(parse_request(&mut endless, &mut HeadScan::default()).is_err());
    }

    #[test]
    fn answers_during_an_upload_are_told_apart() {
        assert_eq!(
            peek_response(b"HTTP/1.1 413 Payload Too Large\r\n"),
            Peek::Incomplete
        );
        assert_eq!(
            peek_response(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 2"),
            Peek::Interim(25)
        );
        assert_eq!(
            peek_response(b"HTTP/1.1 413 Too Large\r\n\r\n"),
            Peek::Final
        );
        assert_eq!(peek_response(b"SSH-2.0-OpenSSH_9.2\r\n"), Peek::Final);
    }

    #[test]
    fn responses_frame_their_bodies() {
        let head = response("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n");
        assert_eq!(response_framing(&head, false), Framing::Length(3));
        assert_eq!(response_framing(&head, true), Framing::Length(0));
        let head = response("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
        assert_eq!(response_framing(&head, false), Framing::Chunked);
        let head = response("HTTP/1.0 200 OK\r\n\r\n");
        assert_eq!(response_framing(&head, false), Framing::Close);
        assert!(!keep_alive(&head, Framing::Close));
        let head = response("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n");
        assert_eq!(response_framing(&head, false), Framing::Length(0));
        let head = response("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        assert!(!keep_alive(&head, Framing::Length(0)));
    }

    #[test]
    fn heads_drop_hop_by_hop_headers_and_point_at_the_right_place() {
        let head = request(
            "POST /login HTTP/1.1\r\nHost: 127.0.0.1:9090\r\nConnection: keep-alive, X-Private\r\n\
             X-Private: 1\r\nOrigin: http://127.0.0.1:9090\r\nExpect: 100-continue\r\n\
             Content-Length: 0\r\nProxy-Authorization: x\r\n\r\n",
        );
        assert!(head.expect_continue);
        let rewrite = ReverseRewrite {
            target_origin: "http://127.0.0.1:8001".to_owned(),
            target_host: "127.0.0.1".to_owned(),
            browser_origin: "http://127.0.0.1:9090".to_owned(),
            strip_secure: false,
        };
        let mut out = Vec::new();
        upstream_request_head(
            &mut out,
            &head,
            "/app/login",
            "127.0.0.1:8001",
            Some(&rewrite),
            None,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST /app/login HTTP/1.1\r\nhost: 127.0.0.1:8001\r\nOrigin: http://127.0.0.1:8001\r\n\
             Content-Length: 0\r\n\r\n"
        );

        let head = request(
            "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Extensions: permessage-deflate\r\nSec-WebSocket-Key: k\r\n\r\n",
        );
        let mut out = Vec::new();
        upstream_request_head(&mut out, &head, "/ws", "b", None, None);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET /ws HTTP/1.1\r\nhost: b\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\
             connection: upgrade\r\n\r\n"
        );

        // Reverse mode's --proxy-auth credentials stay with the recorder.
        let head = request(
            "GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Basic eDp5\r\nAccept: */*\r\n\r\n",
        );
        let mut out = Vec::new();
        upstream_request_head(&mut out, &head, "/", "b", None, Some("authorization"));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET / HTTP/1.1\r\nhost: b\r\nAccept: */*\r\n\r\n"
        );

        let head = response(
            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:8001/student\r\n\
             Transfer-Encoding: chunked\r\nKeep-Alive: timeout=5\r\n\r\n",
        );
        let mut out = Vec::new();
        browser_response_head(&mut out, &head, Some("close"), Some(&rewrite));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9090/student\r\n\
             Transfer-Encoding: chunked\r\nconnection: close\r\n\r\n"
        );
        assert_eq!(
            answer(502, "Bad Gateway", "text/plain", b"no"),
            b"HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nno"
        );
    }
}
