//! Fuzz properties of the relay's (the recorder's) HTTP/1.1 reading and writing
//! (docs/security.md, "Fuzzing"): request and response heads of any bytes in any pieces give
//! the head they give whole, what the relay writes from a head it accepted is one well-formed
//! head (nothing injected), and bodies pass through unchanged within the capture limit.

use bytes::BytesMut;
use proptest::collection::vec;
use proptest::prelude::*;

use super::body::BodyReader;
use super::wire::{
    Framing, Head, HeadScan, MAX_HEAD, Peek, browser_response_head, keep_alive, parse_request,
    parse_response, peek_response, request_framing, response_framing, upstream_request_head,
};
use crate::fuzzing::{
    a_head_in_pieces_is_the_head_whole, config, http_bytes, parse_in_pieces, pieces,
    the_same_whole_and_in_pieces,
};
use crate::record::capture::CapturedBody;
use crate::record::rewrite::ReverseRewrite;

fn headers(head: &Head) -> Vec<(Vec<u8>, Vec<u8>)> {
    head.headers()
        .map(|(name, value)| (name.to_vec(), value.to_vec()))
        .collect()
}

/// A request head of random parts, most of them what browsers send, then some body.
fn request_head() -> impl Strategy<Value = Vec<u8>> {
    let method = prop::sample::select(vec![
        "GET", "POST", "HEAD", "CONNECT", "OPTIONS", "get", "G\u{e9}T", "",
    ]);
    let target = prop::sample::select(vec![
        "/",
        "/a?b=1&c=%20",
        "http://127.0.0.1:8001/x",
        "127.0.0.1:443",
        "*",
        "/\u{e9}",
        "",
        "//x",
    ]);
    let version = prop::sample::select(vec!["HTTP/1.1", "HTTP/1.0", "HTTP/1.2", "HTTP/2.0"]);
    let name = prop::sample::select(vec![
        "Host",
        "Content-Length",
        "Transfer-Encoding",
        "Connection",
        "Upgrade",
        "Expect",
        "Proxy-Authorization",
        "Sec-WebSocket-Extensions",
        "Cookie",
        "Origin",
        "Referer",
        "X-Private",
        "Content-Length ",
        "",
    ]);
    let value = prop_oneof![
        prop::sample::select(vec![
            "0",
            "3",
            "x",
            "chunked",
            "gzip",
            "close",
            "keep-alive, X-Private",
            "Upgrade",
            "websocket",
            "100-continue",
            "http://127.0.0.1:9090/p",
        ])
        .prop_map(str::to_owned),
        "[ -~]{0,16}",
        vec(any::<u8>(), 0..6).prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
    ];
    let line_end = prop::sample::select(vec!["\r\n", "\n", "\r\n\t"]);
    (
        method,
        target,
        version,
        vec(((name, value), line_end.clone()), 0..20),
        line_end,
        http_bytes(4),
    )
        .prop_map(|(method, target, version, headers, end, body)| {
            let mut head = format!("{method} {target} {version}\r\n").into_bytes();
            for ((name, value), end) in headers {
                head.extend_from_slice(format!("{name}: {value}{end}").as_bytes());
            }
            head.extend_from_slice(end.as_bytes());
            head.extend_from_slice(&body);
            head
        })
}

fn rewrite() -> ReverseRewrite {
    ReverseRewrite {
        target_origin: "http://127.0.0.1:8001".to_owned(),
        target_host: "127.0.0.1".to_owned(),
        browser_origin: "http://127.0.0.1:9090".to_owned(),
        strip_secure: true,
    }
}

proptest! {
    #![proptest_config(config(1536))]

    #[test]
    fn a_request_in_any_pieces_is_the_request_it_is_whole(
        bytes in prop_oneof![request_head(), http_bytes(24)],
        cuts in vec(any::<usize>(), 0..12),
    ) {
        a_head_in_pieces_is_the_head_whole(parse_request, &bytes, &cuts, MAX_HEAD, |whole, split| {
            prop_assert_eq!(whole.method(), split.method());
            prop_assert_eq!(whole.target(), split.target());
            prop_assert_eq!(whole.version, split.version);
            prop_assert_eq!(headers(whole), headers(split));
            prop_assert_eq!(whole.facts, split.facts);
            Ok(())
        })?;
    }

    #[test]
    fn what_the_relay_writes_from_a_request_it_accepted_is_one_clean_head(
        bytes in request_head(),
        reverse in any::<bool>(),
        ours in prop::option::of(prop::sample::select(vec!["authorization", "proxy-authorization"])),
    ) {
        let Ok(Some(head)) = parse_request(&mut BytesMut::from(&bytes[..]), &mut HeadScan::default()) else {
            return Ok(());
        };
        let _ = (request_framing(&head), head.is_head_request(), head.header("host"));
        if let Ok(framing) = request_framing(&head) {
            let _ = keep_alive(&head, framing);
        }
        let path = if head.target().starts_with('/') { head.target() } else { "/" };
        let rewrite = rewrite();
        let mut out = Vec::new();
        upstream_request_head(&mut out, &head, path, "127.0.0.1:8001", reverse.then_some(&rewrite), ours);
        let mut buffer = BytesMut::from(&out[..]);
        let written = parse_request(&mut buffer, &mut HeadScan::default());
        let Ok(Some(written)) = written else {
            return Err(TestCaseError::fail(format!("{written:?} for {:?}", String::from_utf8_lossy(&out))));
        };
        prop_assert!(buffer.is_empty(), "bytes after the head: {:?}", buffer);
        prop_assert_eq!(written.method(), head.method());
        prop_assert_eq!(written.target(), path);
        // Nothing the browser sent becomes a header of its own: every header written is the
        // relay's own or one the browser sent.
        let sent = headers(&head);
        for (name, value) in headers(&written) {
            let own = [&b"host"[..], b"connection"].contains(&name.as_slice());
            prop_assert!(
                own || sent.iter().any(|(sent_name, _)| *sent_name == name),
                "{:?}: {:?}", String::from_utf8_lossy(&name), String::from_utf8_lossy(&value)
            );
        }
    }

    #[test]
    fn what_the_relay_writes_from_a_response_it_accepted_is_one_clean_head(
        bytes in prop_oneof![
            request_head().prop_map(|mut head| {
                // The same header soup under a status line.
                let at = head.iter().position(|byte| *byte == b'\n').map_or(0, |at| at + 1);
                let mut response = b"HTTP/1.1 200 OK\r\n".to_vec();
                response.extend(head.drain(at..));
                response
            }),
            http_bytes(24),
        ],
        cuts in vec(any::<usize>(), 0..8),
        connection in prop::option::of(prop::sample::select(vec!["close", "keep-alive"])),
    ) {
        let _ = peek_response(&bytes);
        if let Peek::Interim(length) = peek_response(&bytes) {
            prop_assert!(length <= bytes.len());
        }
        let (whole, _, _) = parse_in_pieces(parse_response, &[&bytes]);
        let (split, _, _) = parse_in_pieces(parse_response, &pieces(&bytes, &cuts));
        let Ok(Some(head)) = whole else {
            prop_assert!(!matches!(split, Ok(Some(_))));
            return Ok(());
        };
        let split = split.ok().flatten().expect("the head whole is the head in pieces");
        prop_assert_eq!(headers(&head), headers(&split));
        for head_request in [false, true] {
            let _ = keep_alive(&head, response_framing(&head, head_request));
        }
        let rewrite = rewrite();
        let mut out = Vec::new();
        browser_response_head(&mut out, &head, connection, Some(&rewrite));
        let mut buffer = BytesMut::from(&out[..]);
        let written = parse_response(&mut buffer, &mut HeadScan::default());
        let Ok(Some(written)) = written else {
            return Err(TestCaseError::fail(format!("{written:?} for {:?}", String::from_utf8_lossy(&out))));
        };
        prop_assert!(buffer.is_empty());
        prop_assert_eq!(written.status, head.status);
    }

    #[test]
    fn bodies_pass_through_unchanged_and_are_kept_within_the_limit(
        bytes in http_bytes(24),
        framing in prop_oneof![
            Just(Framing::Chunked),
            Just(Framing::Close),
            (0u64..200).prop_map(Framing::Length),
        ],
        cuts in vec(any::<usize>(), 0..8),
        limit in 0usize..64,
    ) {
        let follow = |pieces: &[&[u8]]| {
            let mut reader = BodyReader::new(framing, limit);
            let mut buffer = BytesMut::new();
            let mut out = Vec::new();
            let mut captured = CapturedBody::default();
            for piece in pieces {
                buffer.extend_from_slice(piece);
                match reader.take(&mut buffer, &mut out, Some(&mut captured)) {
                    Ok(true) => return Ok((out, captured.bytes, captured.total, true)),
                    Ok(false) => {}
                    Err(err) => return Err(err),
                }
            }
            Ok((out, captured.bytes, captured.total, false))
        };
        let whole = follow(&[&bytes]);
        let split = follow(&pieces(&bytes, &cuts));
        if let Some((out, kept, _, _)) = the_same_whole_and_in_pieces(&whole, &split)? {
            prop_assert!(bytes.starts_with(out));
            prop_assert!(kept.len() <= limit);
        }
    }
}

#[test]
fn a_status_line_without_a_reason_is_relayed() {
    // Regression (found by the property above): httparse gives a status line without a
    // reason a `""` of its own, outside the buffer, and the offset of it underflowed (a panic
    // in a debug build, a reason read from anywhere in a release build).
    for text in [
        "HTTP/1.1 101\r\n\r\n",
        "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
    ] {
        let mut buffer = BytesMut::from(text.as_bytes());
        let head = parse_response(&mut buffer, &mut HeadScan::default())
            .unwrap()
            .expect("a whole head");
        assert_eq!(head.reason(), b"");
        let mut out = Vec::new();
        browser_response_head(&mut out, &head, None, None);
        assert!(
            out.starts_with(b"HTTP/1.1 "),
            "{:?}",
            String::from_utf8_lossy(&out)
        );
    }
}

#[test]
fn a_request_head_sent_a_byte_at_a_time_is_parsed_once_per_line() {
    // Regression: every read parsed the whole buffer again (quadratic in the head's length).
    let mut head = b"GET / HTTP/1.1\r\nCookie: ".to_vec();
    head.extend(std::iter::repeat_n(b'c', 60_000));
    head.extend_from_slice(b"\r\nHost: a\r\n\r\n");
    let bytes: Vec<&[u8]> = head.chunks(1).collect();
    let (result, rest, scan) = parse_in_pieces(parse_request, &bytes);
    let head = result.unwrap().expect("a whole head");
    assert_eq!(head.header("cookie").map(<[u8]>::len), Some(60_000));
    assert!(rest.is_empty());
    assert!(scan.parses <= 6, "{} parses", scan.parses);
}
