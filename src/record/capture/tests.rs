//! The entries `write_entry` writes, read back as `har::Entry` (so the real bytes are checked).

use std::io::Write as _;

use super::*;
use crate::har::Entry;

#[test]
fn urls_are_split_and_hosts_read_without_a_full_parse() {
    assert_eq!(
        split_url("http://127.0.0.1:8001/api/x?a=1&b=two%20words#frag"),
        Some(("http", "127.0.0.1:8001", "/api/x?a=1&b=two%20words#frag"))
    );
    assert_eq!(
        split_url("https://example.org"),
        Some(("https", "example.org", "/"))
    );
    assert_eq!(
        split_url("https://example.org?q=1"),
        Some(("https", "example.org", "?q=1"))
    );
    assert_eq!(split_url("not a url"), None);
    assert_eq!(host_of("http://Example.org:80/x?y"), "example.org");
    assert!(matches!(
        host_of("http://a.org:8080/"),
        Cow::Borrowed("a.org:8080")
    ));
    assert_eq!(host_of("https://example.org:443"), "example.org");
    assert_eq!(host_of("https://127.0.0.1:8443/"), "127.0.0.1:8443");
    assert_eq!(host_of("http://user@[::1]:8001/"), "[::1]:8001");
    assert_eq!(host_of("garbage"), "");
}

fn body(bytes: &[u8]) -> CapturedBody {
    let mut body = CapturedBody::default();
    body.push(bytes, 1 << 20);
    body
}

fn timing() -> Timing {
    Timing {
        started: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        send: Duration::from_micros(500),
        wait: Duration::from_millis(3),
        receive: Duration::from_micros(1250),
    }
}

fn head(start: &str, headers: &[(&str, &[u8])]) -> bytes::Bytes {
    let mut head = format!("{start}\r\n").into_bytes();
    for (name, value) in headers {
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head.into()
}

fn request(method: &str, url: &str, headers: &[(&str, &[u8])], bytes: &[u8]) -> RequestParts {
    let target = split_url(url).map_or("/", |(_, _, path)| path);
    RequestParts {
        url: url.to_owned(),
        head: head(&format!("{method} {target} HTTP/1.1"), headers),
        body: body(bytes),
    }
}

fn response(headers: &[(&str, &[u8])], bytes: &[u8]) -> ResponseParts {
    ResponseParts {
        head: head("HTTP/1.1 200 OK", headers),
        body: body(bytes),
    }
}

/// Writes the entry the way the sink does (after other bytes in the buffer) and reads it back.
fn write(
    request: &RequestParts,
    response: Option<&ResponseParts>,
    error: Option<&str>,
    websocket: Option<&[WebSocketMessage]>,
    max_body: usize,
) -> (Entry, String) {
    let mut out = b",\n".to_vec();
    let timing = timing();
    let outline = write_entry(
        &mut out,
        ExchangeRef {
            request,
            response,
            timing: &timing,
            error,
            websocket,
            events: None,
        },
        max_body,
    );
    let text = std::str::from_utf8(&out[2..]).expect("the entry is UTF-8");
    let entry: Entry = serde_json::from_str(text).unwrap_or_else(|err| panic!("{err}: {text}"));
    // What the sink reads from the outline agrees with the entry.
    assert_eq!(outline.method, entry.request.method);
    assert_eq!(outline.url, entry.request.url);
    assert_eq!(outline.status, entry.response.status);
    assert_eq!(outline.failed, entry.error.is_some());
    assert_eq!(outline.time, entry.time);
    assert_eq!(outline.request_bytes as i64, entry.request.body_size);
    assert_eq!(
        outline.response_bytes as i64,
        entry.response.body_size.max(0)
    );
    (entry, summary_line(&outline))
}

#[test]
fn a_form_post_has_params_cookies_and_query() {
    let req = request(
        "POST",
        "http://app/api/events?b=2&name=a%20b",
        &[
            ("host", b"app"),
            (
                "Content-Type",
                b"application/x-www-form-urlencoded; charset=UTF-8",
            ),
            ("cookie", b"sid=abc; theme=dark"),
        ],
        b"gameSessionId=g1&events=%5B%5D",
    );
    let resp = response(
        &[
            ("content-type", b"application/json"),
            ("set-cookie", b"sid=new; Path=/; HttpOnly"),
        ],
        b"{\"ok\":true}",
    );
    let (entry, line) = write(&req, Some(&resp), None, None, 1 << 20);
    assert_eq!(entry.started_date_time, "2023-11-14T22:13:20.123Z");
    assert_eq!(entry.time, 4.75);
    assert_eq!(
        (
            entry.timings.send,
            entry.timings.wait,
            entry.timings.receive
        ),
        (0.5, 3.0, 1.25)
    );
    assert_eq!(entry.timings.connect, -1.0);
    assert_eq!(entry.request.method, "POST");
    assert_eq!(entry.request.http_version, "HTTP/1.1");
    assert_eq!(entry.request.headers.len(), 3);
    assert_eq!(entry.request.headers[1].name, "Content-Type");
    assert_eq!(
        (entry.request.headers_size, entry.request.body_size),
        (-1, 30)
    );
    let post = entry.request.post_data.as_ref().unwrap();
    assert_eq!(
        post.mime_type,
        "application/x-www-form-urlencoded; charset=UTF-8"
    );
    assert_eq!(post.text, "gameSessionId=g1&events=%5B%5D");
    assert_eq!(post.encoding, None);
    assert_eq!(post.params.len(), 2);
    assert_eq!(post.params[0].name, "gameSessionId");
    assert_eq!(post.params[1].value.as_deref(), Some("[]"));
    assert_eq!(entry.request.cookies.len(), 2);
    assert_eq!(entry.request.cookies[1].name, "theme");
    assert_eq!(entry.request.cookies[1].value, "dark");
    assert_eq!(entry.request.query_string[0].name, "b");
    assert_eq!(entry.request.query_string[1].value, "a b");
    assert_eq!(entry.response.status, 200);
    assert_eq!(entry.response.status_text, "OK");
    assert_eq!(entry.response.http_version, "HTTP/1.1");
    assert_eq!(entry.response.cookies[0].name, "sid");
    assert_eq!(entry.response.cookies[0].path.as_deref(), Some("/"));
    assert_eq!(entry.response.cookies[0].http_only, Some(true));
    assert_eq!(entry.response.cookies[0].secure, None);
    assert_eq!(
        entry.response.content.text.as_deref(),
        Some("{\"ok\":true}")
    );
    assert_eq!(entry.response.content.size, 11);
    assert_eq!(entry.response.content.compression, None);
    assert_eq!(entry.response.content.mime_type, "application/json");
    assert_eq!(entry.response.redirect_url, "");
    assert_eq!(entry.response.body_size, 11);
    assert!(!entry.truncated);
    assert_eq!(entry.comment, None);
    assert_eq!(entry.resource_type, None);
    assert_eq!(line, "POST    /api/events?b=2&name=a%20b 200 5 ms 11 B");
}

#[test]
fn gzip_and_brotli_bodies_are_decoded() {
    let plain = b"hello hello hello hello".repeat(10);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();
    let mut br = Vec::new();
    brotli::CompressorWriter::new(&mut br, 4096, 5, 22)
        .write_all(&plain)
        .unwrap();
    for (coding, bytes) in [("gzip", gz), ("br", br)] {
        let resp = response(&[("Content-Encoding", coding.as_bytes())], &bytes);
        let req = request("GET", "http://x/", &[], b"");
        let (entry, _) = write(&req, Some(&resp), None, None, 1 << 20);
        let content = &entry.response.content;
        assert_eq!(
            content.text.as_deref().unwrap().as_bytes(),
            &plain[..],
            "{coding}"
        );
        assert_eq!(content.size, plain.len() as i64);
        assert_eq!(
            content.compression,
            Some(plain.len() as i64 - bytes.len() as i64)
        );
        assert_eq!(entry.response.body_size, bytes.len() as i64);
        assert!(entry.request.post_data.is_none());
        assert!(entry.request.query_string.is_empty());
    }
}

#[test]
fn an_unknown_coding_is_recorded_as_sent_with_a_note() {
    let resp = response(&[("content-encoding", b"zstd")], b"\x28\xb5\x2f\xfd");
    let req = request("GET", "http://x/", &[], b"");
    let (entry, _) = write(&req, Some(&resp), None, None, 1 << 20);
    assert_eq!(entry.response.content.encoding.as_deref(), Some("base64"));
    assert_eq!(
        entry.comment.as_deref(),
        Some("response body recorded as sent (zstd): unknown content coding \"zstd\"")
    );
    assert!(!entry.truncated);
}

#[test]
fn binary_is_base64_and_big_bodies_are_truncated() {
    let req = request("PUT", "http://x/upload", &[], &[0xff, 0xfe, 0x00, 0x01]);
    let (entry, _) = write(&req, None, None, None, 10);
    let post = entry.request.post_data.unwrap();
    assert_eq!(post.encoding.as_deref(), Some("base64"));
    assert_eq!(post.text, "//4AAQ==");
    assert_eq!(post.bytes().unwrap(), [0xff, 0xfe, 0x00, 0x01]);

    let mut big = CapturedBody::default();
    for _ in 0..5 {
        big.push(b"0123456789", 25);
    }
    assert_eq!((big.bytes.len(), big.total, big.truncated), (25, 50, true));
    let resp = ResponseParts {
        body: big,
        ..response(&[("content-type", b"text/plain")], b"")
    };
    let (entry, _) = write(&req, Some(&resp), None, None, 25);
    assert!(entry.truncated);
    assert_eq!(entry.response.content.size, 25);
    assert_eq!(entry.response.body_size, 50);
    assert!(
        entry
            .comment
            .as_deref()
            .unwrap()
            .contains("recorded 25 of 50 bytes"),
        "{:?}",
        entry.comment
    );

    let mut big_request = request("POST", "http://x/upload", &[], b"");
    big_request.body = CapturedBody::default();
    big_request.body.push(b"0123456789", 4);
    let (entry, _) = write(&big_request, None, None, None, 4);
    assert!(entry.truncated);
    assert_eq!(entry.request.post_data.unwrap().text, "0123");
    assert_eq!(entry.request.body_size, 10);
    assert_eq!(
        entry.comment.as_deref(),
        Some("request body truncated: recorded 4 of 10 bytes (--max-body)")
    );
}

#[test]
fn a_failed_exchange_keeps_its_error() {
    let req = request("GET", "http://x/a?b=1", &[], b"");
    let (entry, line) = write(&req, None, Some("connection refused"), None, 10);
    assert_eq!(entry.response.status, 0);
    assert_eq!(entry.response.body_size, -1);
    assert_eq!(entry.response.headers_size, -1);
    assert_eq!(entry.error.as_deref(), Some("connection refused"));
    assert_eq!(entry.comment.as_deref(), Some("connection refused"));
    assert_eq!(line, "GET     /a?b=1 ERR 5 ms 0 B");
}

#[test]
fn repeated_headers_repeat_and_each_set_cookie_is_a_cookie() {
    let req = request(
        "GET",
        "http://x/",
        &[("cookie", b"a=1"), ("Cookie", b"b=2; c=3")],
        b"",
    );
    let resp = ResponseParts {
        head: head(
            "HTTP/1.1 302 Found",
            &[
                (
                    "Set-Cookie",
                    b"sid=x; Path=/app; Domain=example.org; Secure",
                ),
                (
                    "set-cookie",
                    b"theme=dark; Expires=Wed, 21 Oct 2026 07:28:00 GMT",
                ),
                ("Location", b"/next"),
            ],
        ),
        body: CapturedBody::default(),
    };
    let (entry, line) = write(&req, Some(&resp), None, None, 10);
    let names: Vec<&str> = entry
        .request
        .cookies
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(entry.response.headers.len(), 3);
    assert_eq!(entry.response.headers[1].name, "set-cookie");
    let cookies = &entry.response.cookies;
    assert_eq!(cookies.len(), 2);
    assert_eq!(cookies[0].path.as_deref(), Some("/app"));
    assert_eq!(cookies[0].domain.as_deref(), Some("example.org"));
    assert_eq!(
        (cookies[0].secure, cookies[0].http_only),
        (Some(true), None)
    );
    assert_eq!(cookies[1].value, "dark");
    assert_eq!(
        cookies[1].expires.as_deref(),
        Some("Wed, 21 Oct 2026 07:28:00 GMT")
    );
    assert_eq!(entry.response.redirect_url, "/next");
    assert_eq!(entry.response.status_text, "Found");
    assert_eq!(entry.response.content.text, None);
    assert_eq!(line, "GET     / 302 5 ms 0 B");
}

#[test]
fn header_values_with_odd_bytes_round_trip() {
    // Quotes, a backslash, a tab, and bytes that are not UTF-8 (obs-text): httparse takes them.
    let value: &[u8] = b"say \"hi\" \\ tab\there caf\xe9 \xff";
    let req = request("GET", "http://x/", &[("x-odd", value)], b"");
    let resp = response(&[("x-odd", value)], b"");
    let (entry, _) = write(&req, Some(&resp), None, None, 10);
    let expected = "say \"hi\" \\ tab\there caf\u{fffd} \u{fffd}";
    assert_eq!(entry.request.headers[0].value, expected);
    assert_eq!(entry.response.headers[0].value, expected);
    assert_eq!(entry.comment, None);

    // Control characters are not HTTP: the head is read leniently, the entry says so, and
    // the JSON still escapes them.
    let control: &[u8] = b"a\x01b\x1fc\x7f";
    let req = request(
        "GET",
        "http://x/",
        &[("x-control", control), ("x-next", b"1")],
        b"",
    );
    let (entry, _) = write(&req, None, None, None, 10);
    assert_eq!(entry.request.method, "GET");
    assert_eq!(entry.request.headers.len(), 2);
    assert_eq!(entry.request.headers[0].value, "a\u{1}b\u{1f}c\u{7f}");
    assert_eq!(entry.request.headers[1].value, "1");
    let comment = entry.comment.unwrap();
    assert!(
        comment.starts_with("the request head did not parse as HTTP/1.1 (invalid header value)"),
        "{comment}"
    );
}

#[test]
fn heads_that_do_not_parse_still_give_an_entry() {
    let req = RequestParts {
        url: "http://x/p".to_owned(),
        head: bytes::Bytes::from_static(b"GET /p HTTP/1.1\r\nhost: x\r\nno colon here\r\n\r\n"),
        body: CapturedBody::default(),
    };
    let resp = ResponseParts {
        head: bytes::Bytes::from_static(b"HTTP/1.1 204 No Content\r\nx-a: 1\r\n"),
        body: CapturedBody::default(),
    };
    let (entry, line) = write(&req, Some(&resp), None, None, 10);
    assert_eq!(entry.request.headers.len(), 1);
    assert_eq!(entry.response.status, 204);
    assert_eq!(entry.response.status_text, "No Content");
    assert_eq!(entry.response.headers[0].value, "1");
    let comment = entry.comment.unwrap();
    assert!(comment.contains("1 header lines left out"), "{comment}");
    assert!(
        comment.contains(
            "the response head did not parse as HTTP/1.1 (the head ends before its blank line)"
        ),
        "{comment}"
    );
    assert_eq!(line, "GET     /p 204 5 ms 0 B");

    let empty = RequestParts {
        url: "http://x/".to_owned(),
        head: bytes::Bytes::new(),
        body: body(b"{}"),
    };
    let garbage = ResponseParts {
        head: bytes::Bytes::from_static(b"\xff\xfe\r\n\r\n"),
        body: body(b"x"),
    };
    let (entry, line) = write(&empty, Some(&garbage), Some("odd"), None, 10);
    assert_eq!(entry.request.method, "");
    assert_eq!(entry.request.post_data.unwrap().text, "{}");
    assert_eq!(entry.response.status, 0);
    assert_eq!(entry.response.content.text.as_deref(), Some("x"));
    assert_eq!(line, "        / ERR 5 ms 1 B");
}

#[test]
fn many_headers_parse_without_a_note() {
    let names: Vec<String> = (0..100).map(|i| format!("x-h{i}")).collect();
    let headers: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"v"[..])).collect();
    let req = request("GET", "http://x/", &headers, b"");
    let resp = response(&headers, b"");
    let (entry, _) = write(&req, Some(&resp), None, None, 10);
    assert_eq!(entry.request.headers.len(), 100);
    assert_eq!(entry.response.headers.len(), 100);
    assert_eq!(entry.response.headers[99].name, "x-h99");
    assert_eq!(entry.comment, None);
}

#[test]
fn a_websocket_entry_has_its_messages() {
    let req = request(
        "GET",
        "http://x/ws",
        &[("connection", b"upgrade"), ("upgrade", b"websocket")],
        b"",
    );
    let resp = ResponseParts {
        head: head(
            "HTTP/1.1 101 Switching Protocols",
            &[("connection", b"upgrade"), ("upgrade", b"websocket")],
        ),
        body: CapturedBody::default(),
    };
    let messages = [
        WebSocketMessage {
            kind: "send".to_owned(),
            time: 1_700_000_000.5,
            opcode: 1,
            data: "hello \"there\"".to_owned(),
        },
        WebSocketMessage {
            kind: "receive".to_owned(),
            time: 1_700_000_000.75,
            opcode: 2,
            data: "AAE=".to_owned(),
        },
    ];
    let (entry, line) = write(&req, Some(&resp), None, Some(&messages), 10);
    assert_eq!(entry.resource_type.as_deref(), Some("websocket"));
    assert_eq!(entry.web_socket_messages, messages);
    assert_eq!(entry.response.status, 101);
    assert_eq!(line, "GET     /ws 101 5 ms 0 B");

    let (entry, _) = write(&req, Some(&resp), None, Some(&[]), 10);
    assert_eq!(entry.resource_type.as_deref(), Some("websocket"));
    assert!(entry.web_socket_messages.is_empty());
}

#[test]
fn the_json_has_the_fields_and_order_of_har_entry() {
    // The owned `har::Entry` re-serialized from what was written gives the same bytes: no
    // field is missing, extra, renamed or moved, and numbers and escapes look the same.
    let form = request(
        "POST",
        "http://app/api?q=1&w=a%20b#frag",
        &[
            ("content-type", b"application/x-www-form-urlencoded"),
            ("cookie", b"a=b; c = d "),
            ("x-odd", b"\"q\" \\ \t caf\xe9"),
        ],
        b"k=v&e=%5B%5D",
    );
    let binary = request("PUT", "http://app/bin", &[], b"\xff\x00\"");
    let mut cut = CapturedBody::default();
    cut.push(b"0123456789", 4);
    let truncated = RequestParts {
        body: cut.clone(),
        ..request(
            "POST",
            "http://app/cut",
            &[("content-type", b"text/plain")],
            b"",
        )
    };
    let control = request("GET", "http://app/", &[("x-c", b"\x01\x7f")], b"");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all("{\"text\": \"h\u{e9}llo\\n\"}".as_bytes())
        .unwrap();
    let gz = gz.finish().unwrap();
    let responses = [
        response(
            &[
                ("set-cookie", b"s=1; HttpOnly"),
                (
                    "Set-Cookie",
                    b"t=2; path=/p; DOMAIN=d; expires=Thu, 01 Jan 2026 00:00:00 GMT; secure",
                ),
                ("content-encoding", b"identity"),
            ],
            b"\x00\x01",
        ),
        response(
            &[
                ("content-type", b"application/json"),
                ("content-encoding", b"gzip"),
            ],
            &gz,
        ),
        ResponseParts {
            head: head(
                "HTTP/1.1 307 Temporary Redirect",
                &[("location", b"/x?y=\"1\"")],
            ),
            body: cut,
        },
        ResponseParts {
            head: bytes::Bytes::from_static(b"HTTP/1.1 299 \r\n\r\n"),
            body: body(b"x"),
        },
    ];
    let messages = [
        WebSocketMessage::default(),
        WebSocketMessage {
            kind: "send".to_owned(),
            time: 1_700_000_000.123_456,
            opcode: 1,
            data: "{\"a\":\"\u{1}\"}".to_owned(),
        },
    ];
    let mut cases = Vec::new();
    for request in [&form, &binary, &truncated, &control] {
        for response in &responses {
            cases.push((request, Some(response), None, None));
        }
        cases.push((request, None, Some("refused: \"x\"\n"), None));
        cases.push((request, Some(&responses[0]), None, Some(&messages[..])));
        cases.push((request, Some(&responses[0]), None, Some(&[][..])));
    }
    for (request, response, error, websocket) in cases {
        for max_body in [4, 1 << 20] {
            let mut out = Vec::new();
            let timing = timing();
            write_entry(
                &mut out,
                ExchangeRef {
                    request,
                    response,
                    timing: &timing,
                    error,
                    websocket,
                    events: None,
                },
                max_body,
            );
            let entry: Entry = serde_json::from_slice(&out)
                .unwrap_or_else(|err| panic!("{err}: {}", String::from_utf8_lossy(&out)));
            let again = serde_json::to_vec(&entry).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&again)
            );
        }
    }
}

#[test]
fn filters_include_then_exclude() {
    let filter = Filter {
        include: vec![Regex::new("/api/").unwrap()],
        exclude: vec![Regex::new(r"\.png$").unwrap()],
    };
    assert!(filter.records("http://a/api/x"));
    assert!(!filter.records("http://a/api/x.png"));
    assert!(!filter.records("http://a/index.html"));
    assert!(Filter::default().records("http://a/anything"));
}

#[test]
fn an_event_stream_entry_carries_its_events_as_chromium_writes_them() {
    let request = RequestParts {
        url: "http://127.0.0.1:8001/feed".to_owned(),
        head: bytes::Bytes::from_static(b"GET /feed HTTP/1.1\r\nhost: 127.0.0.1:8001\r\n\r\n"),
        body: CapturedBody::default(),
    };
    let response = response(
        &[("content-type", b"text/event-stream")],
        b"id: 7\ndata: one\n\n",
    );
    let events = [crate::har::EventSourceMessage {
        time: 1_700_000_000.5,
        event_name: "message".to_owned(),
        event_id: "7".to_owned(),
        data: "one \"quoted\"".to_owned(),
    }];
    let mut out = Vec::new();
    let timing = timing();
    write_entry(
        &mut out,
        ExchangeRef {
            request: &request,
            response: Some(&response),
            timing: &timing,
            error: None,
            websocket: None,
            events: Some(&events),
        },
        1 << 20,
    );
    let entry: Entry = serde_json::from_slice(&out).unwrap();
    assert_eq!(entry.resource_type.as_deref(), Some("eventsource"));
    assert_eq!(entry.event_source_messages, events);
}

#[test]
fn an_http2_exchange_reads_as_chromium_writes_it() {
    let req = RequestParts {
        url: "https://app.test/api/events?x=1".to_owned(),
        head: head(
            "POST /api/events?x=1 HTTP/2",
            &[
                (":authority", b"app.test"),
                (":method", b"POST"),
                (":path", b"/api/events?x=1"),
                (":scheme", b"https"),
                ("content-type", b"application/json"),
                ("cookie", b"sid=abc"),
                ("cookie", b"theme=dark"),
                ("x-odd", b"caf\xc3\xa9: with colon"),
            ],
        ),
        body: body(b"{\"n\":1}"),
    };
    let resp = ResponseParts {
        head: head(
            "HTTP/2 201",
            &[
                ("content-type", b"application/json"),
                ("set-cookie", b"sid=new; Path=/"),
            ],
        ),
        body: body(b"{}"),
    };
    let (entry, line) = write(&req, Some(&resp), None, None, 1 << 20);
    assert_eq!(entry.request.method, "POST");
    assert_eq!(entry.request.http_version, "HTTP/2");
    let names: Vec<&str> = entry
        .request
        .headers
        .iter()
        .map(|h| h.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            ":authority",
            ":method",
            ":path",
            ":scheme",
            "content-type",
            "cookie",
            "cookie",
            "x-odd"
        ]
    );
    assert_eq!(entry.request.headers[2].value, "/api/events?x=1");
    assert_eq!(entry.request.headers[7].value, "café: with colon");
    assert_eq!(entry.request.cookies.len(), 2);
    assert_eq!(entry.request.cookies[1].value, "dark");
    assert_eq!(entry.request.post_data.as_ref().unwrap().text, "{\"n\":1}");
    assert_eq!(entry.response.status, 201);
    assert_eq!(entry.response.status_text, "");
    assert_eq!(entry.response.http_version, "HTTP/2");
    assert_eq!(entry.response.cookies[0].name, "sid");
    assert_eq!(entry.comment, None);
    assert_eq!(line, "POST    /api/events?x=1 201 5 ms 2 B");
}
