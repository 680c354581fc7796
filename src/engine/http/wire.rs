//! The HTTP/1.1 wire format as the engine's client speaks it: a request written out as bytes,
//! a response head parsed (`httparse`) into a `HeaderMap` that shares the read buffer's bytes,
//! how a body is framed and whether the connection stays open, and chunked decoding. Plain
//! functions over buffers, no IO: `super` reads and writes the socket.

use std::io;

use bytes::{Buf as _, BytesMut};
use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use super::Endpoint;
use crate::http1::HeadFacts;
pub(super) use crate::http1::{Chunk, Framing, HeadScan};
use crate::http1::{push_decimal, scan_chunks, span};

/// What reading a response can run into.
#[derive(Debug)]
pub(super) enum ReadError {
    Io(io::Error),
    /// The server closed the connection before the response was complete.
    Closed,
    /// What came is not an HTTP/1.1 response.
    Invalid(String),
    /// The body is larger than the limit (`Some`: the length the head announced).
    TooLarge {
        limit: usize,
        announced: Option<u64>,
    },
}

impl From<io::Error> for ReadError {
    fn from(err: io::Error) -> Self {
        ReadError::Io(err)
    }
}

/// The largest response head accepted (status line and headers).
const MAX_HEAD: usize = 64 * 1024;
/// The most response headers accepted.
const MAX_HEADERS: usize = 100;
/// Response headers parsed without the room for `MAX_HEADERS`.
const FEW_HEADERS: usize = 24;

/// The request as HTTP/1.1 bytes: request line, `Host` (unless given), the headers,
/// `Content-Length` when there is a body (or the method expects one), the body.
pub(super) fn write_request(
    out: &mut Vec<u8>,
    origin: &Endpoint,
    parts: &http::request::Parts,
    body: &[u8],
) {
    use std::io::Write as _;
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    match parts.uri.path_and_query().map(|target| target.as_str()) {
        Some(target) if !target.is_empty() => out.extend_from_slice(target.as_bytes()),
        _ => out.push(b'/'),
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if !parts.headers.contains_key(HOST) {
        out.extend_from_slice(b"host: ");
        if origin.host.contains(':') {
            let _ = write!(out, "[{}]", origin.host);
        } else {
            out.extend_from_slice(origin.host.as_bytes());
        }
        if origin.port != if origin.https { 443 } else { 80 } {
            out.push(b':');
            push_decimal(out, origin.port.into());
        }
        out.extend_from_slice(b"\r\n");
    }
    let mut chunked = false;
    for (name, value) in &parts.headers {
        if name == CONTENT_LENGTH {
            // Written below from the body itself, so it cannot disagree with it.
            continue;
        }
        if name == TRANSFER_ENCODING {
            chunked = true;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if chunked {
        out.extend_from_slice(b"\r\n");
        if !body.is_empty() {
            let _ = write!(out, "{:x}\r\n", body.len());
            out.extend_from_slice(body);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        return;
    }
    let expects_body = matches!(parts.method, Method::POST | Method::PUT | Method::PATCH);
    if !body.is_empty() || expects_body {
        out.extend_from_slice(b"content-length: ");
        push_decimal(out, body.len() as u64);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

/// A response head: status, version (0 for HTTP/1.0, 1 for HTTP/1.1) and headers, and what
/// its framing headers said (noted while parsing, so framing needs no lookups).
pub(super) struct Head {
    pub(super) status: u16,
    pub(super) version: u8,
    pub(super) headers: HeaderMap,
    facts: HeadFacts,
}

/// Parses a response head at the start of `buffer`; when it is complete, takes it out of the
/// buffer (header values share its bytes; nothing is copied). `scan` follows the buffer from
/// call to call, so that bytes without a line end are not parsed again.
pub(super) fn parse_head(
    buffer: &mut BytesMut,
    scan: &mut HeadScan,
) -> Result<Option<Head>, ReadError> {
    if buffer.is_empty() {
        return Ok(None);
    }
    if !scan.worth_parsing(buffer) {
        return if buffer.len() > MAX_HEAD {
            Err(head_too_long())
        } else {
            Ok(None)
        };
    }
    // Most responses have a handful of headers: room for a few on the stack is cheaper to
    // set up per response than room for the most accepted.
    let head = parse_head_with::<FEW_HEADERS>(buffer)?;
    if head.is_some() {
        scan.restart();
    }
    Ok(head)
}

fn head_too_long() -> ReadError {
    ReadError::Invalid(format!(
        "the response head is longer than {} KiB",
        MAX_HEAD / 1024
    ))
}

fn parse_head_with<const N: usize>(buffer: &mut BytesMut) -> Result<Option<Head>, ReadError> {
    let mut storage = [const { std::mem::MaybeUninit::uninit() }; N];
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buffer,
        &mut storage,
    );
    let length = match parsed {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) if buffer.len() > MAX_HEAD => return Err(head_too_long()),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) if N < MAX_HEADERS => {
            return parse_head_with::<MAX_HEADERS>(buffer);
        }
        Err(err) => return Err(ReadError::Invalid(err.to_string())),
    };
    let status = response.code.unwrap_or(0);
    let version = response.version.unwrap_or(1);
    let mut ranges = [(0u32, 0u32, 0u32, 0u32); N];
    let count = response.headers.len();
    for (range, header) in ranges.iter_mut().zip(response.headers.iter()) {
        let (name, value) = (
            span(buffer, header.name.as_bytes()),
            span(buffer, header.value),
        );
        *range = (name.0, name.1, value.0, value.1);
    }
    let bytes = buffer.split_to(length).freeze();
    let mut head = Head {
        status,
        version,
        headers: HeaderMap::with_capacity(count),
        facts: HeadFacts::default(),
    };
    for &(name_start, name_end, value_start, value_end) in &ranges[..count] {
        let name = HeaderName::from_bytes(&bytes[name_start as usize..name_end as usize])
            .map_err(|_| ReadError::Invalid("a header name is not valid".to_owned()))?;
        let value = bytes.slice(value_start as usize..value_end as usize);
        head.facts
            .note(name.as_str().as_bytes(), &value)
            .map_err(ReadError::Invalid)?;
        let value = HeaderValue::from_maybe_shared(value)
            .map_err(|_| ReadError::Invalid(format!("the {name} header's value is not valid")))?;
        head.headers.append(name, value);
    }
    Ok(Some(head))
}

pub(super) fn framing(head: &Head, head_only: bool) -> Framing {
    head.facts.response_framing(head.status, head_only)
}

/// Whether the connection stays open after this response.
pub(super) fn keep_alive(head: &Head, framing: Framing) -> bool {
    head.facts.keep_alive(head.version, head.status, framing)
}

/// Decodes what `buffer` holds of a chunked body, handing each piece of data to `sink`;
/// `Ok(true)` once the body is complete. What it consumed leaves the buffer.
pub(super) fn decode_chunks(
    buffer: &mut BytesMut,
    state: &mut Chunk,
    sink: impl FnMut(&[u8]),
) -> Result<bool, ReadError> {
    let (used, done) = scan_chunks(buffer, state, sink).map_err(ReadError::Invalid)?;
    buffer.advance(used);
    Ok(done)
}

#[cfg(test)]
mod tests {
    use http::Request;

    use super::*;

    fn request(method: Method, uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
        let mut builder = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn requests_are_written_as_http_1_1() {
        let origin = Endpoint::of(&url::Url::parse("http://127.0.0.1:8001/").unwrap()).unwrap();
        let mut out = Vec::new();
        let parts = request(Method::GET, "/a?b=1", &[("user-agent", "chorus")]);
        write_request(&mut out, &origin, &parts, b"");
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "GET /a?b=1 HTTP/1.1\r\nhost: 127.0.0.1:8001\r\nuser-agent: chorus\r\n\r\n"
        );
        out.clear();
        let parts = request(
            Method::POST,
            "/p",
            &[("host", "x"), ("content-length", "99")],
        );
        write_request(&mut out, &origin, &parts, b"{}");
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "POST /p HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}"
        );
        out.clear();
        let https = Endpoint::of(&url::Url::parse("https://[::1]/").unwrap()).unwrap();
        write_request(&mut out, &https, &request(Method::PUT, "/", &[]), b"");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "PUT / HTTP/1.1\r\nhost: [::1]\r\ncontent-length: 0\r\n\r\n"
        );
    }

    #[test]
    fn heads_are_parsed_once_complete_and_frame_the_body() {
        let mut buffer = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A: "[..]);
        assert!(
            parse_head(&mut buffer, &mut HeadScan::default())
                .unwrap()
                .is_none()
        );
        buffer.extend_from_slice(b"1\r\nX-A: 2\r\n\r\nok\n");
        let head = parse_head(&mut buffer, &mut HeadScan::default())
            .unwrap()
            .unwrap();
        assert_eq!((head.status, head.version), (200, 1));
        assert_eq!(head.headers.get_all("x-a").iter().count(), 2);
        assert_eq!(&buffer[..], b"ok\n");
        assert_eq!(framing(&head, false), Framing::Length(3));
        assert_eq!(framing(&head, true), Framing::Length(0));
        assert!(keep_alive(&head, Framing::Length(3)));

        let mut buffer = BytesMut::from(&b"HTTP/1.0 200 OK\r\n\r\nrest"[..]);
        let head = parse_head(&mut buffer, &mut HeadScan::default())
            .unwrap()
            .unwrap();
        assert_eq!(framing(&head, false), Framing::Close);
        assert!(!keep_alive(&head, Framing::Length(0)));

        let mut buffer = BytesMut::from(
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n"[..],
        );
        let head = parse_head(&mut buffer, &mut HeadScan::default())
            .unwrap()
            .unwrap();
        assert_eq!(framing(&head, false), Framing::Chunked);
        assert!(!keep_alive(&head, Framing::Chunked));

        let mut buffer = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"[..]);
        assert!(matches!(
            parse_head(&mut buffer, &mut HeadScan::default()),
            Err(ReadError::Invalid(_))
        ));
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for n in 0..FEW_HEADERS + 5 {
            many.extend_from_slice(format!("x-{n}: {n}\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        let head = parse_head(&mut BytesMut::from(&many[..]), &mut HeadScan::default())
            .unwrap()
            .unwrap();
        assert_eq!(head.headers.len(), FEW_HEADERS + 5);
        let mut buffer = BytesMut::from(&b"SSH-2.0-OpenSSH_9.2\r\n"[..]);
        assert!(matches!(
            parse_head(&mut buffer, &mut HeadScan::default()),
            Err(ReadError::Invalid(_))
        ));
    }

    #[test]
    fn chunked_bodies_decode_across_reads() {
        let wire = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        for split in 0..wire.len() {
            let mut buffer = BytesMut::from(&wire[..split]);
            let mut state = Chunk::default();
            let mut body = Vec::new();
            let mut sink = |data: &[u8]| body.extend_from_slice(data);
            let done = decode_chunks(&mut buffer, &mut state, &mut sink).unwrap();
            buffer.extend_from_slice(&wire[split..]);
            if !done {
                assert!(decode_chunks(&mut buffer, &mut state, &mut sink).unwrap());
            }
            assert_eq!(body, b"Wikipedia", "split at {split}");
            assert_eq!(&buffer[..], b"NEXT", "split at {split}");
        }
        let mut buffer = BytesMut::from(&b"zz\r\n"[..]);
        let result = decode_chunks(&mut buffer, &mut Chunk::default(), |_| {});
        assert!(matches!(result, Err(ReadError::Invalid(_))));
    }
}
