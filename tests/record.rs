//! Integration tests for `record` (see tests/integration.rs): the recorder between real
//! sockets on 127.0.0.1, Chromium browsing through it, and the capture it leaves.

use std::path::Path;

use chorus::har;
use chorus::record::RecordOptions;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::util::record::*;
use crate::util::{self, browser::Browser};

mod access;
mod events;
mod faults;
mod http2;
mod http2_edges;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_records_a_student_session_in_reverse_mode() {
    let app = student_app();
    let log = SeenLog::default();
    let app_addr = serve_http(recording_router(&app, log.clone())).await;
    let out = util::output_dir("record_reverse_chromium");
    let target = format!("http://{app_addr}");
    let recorder = start(reverse(&target, &out.join("capture.har"))).await;
    let mut browser = Browser::start(&[], &out).await;
    play_as_student(&mut browser, &recorder.url(), &app, 2).await;
    browser.close().await;
    until("every exchange to be written", || {
        recorder.summary().exchanges >= log.lock().unwrap().len() as u64
    })
    .await;
    let summary = recorder.shutdown().await;
    let har = read_valid(&summary.path);

    let seen = sorted(&log);
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    for expected in [
        "/",
        "/api/v2/auth/login/glasslab",
        "/student",
        "/api/v2/data/session/start",
        "/api/v2/data/events",
        "/api/v2/data/session/end",
    ] {
        assert!(
            paths.contains(&expected),
            "the app never saw {expected}: {paths:?}"
        );
    }
    crate::eqnice!(seen, recorded(&har, &target));
    assert_eq!(summary.hosts, vec![app_addr.to_string()]);
    assert_eq!(summary.exchanges as usize, har.log.entries.len());
    let login = har
        .log
        .entries
        .iter()
        .find(|e| e.request.url.ends_with("/api/v2/auth/login/glasslab"))
        .unwrap();
    assert_eq!(login.response.status, 200);
    assert!(login.response.cookies.iter().any(|c| c.name == "sid"));
    assert!(
        login
            .response
            .content
            .text
            .as_deref()
            .unwrap()
            .contains("sessionId")
    );
    assert!(
        login
            .request
            .headers
            .iter()
            .any(|h| h.name == "host" && h.value == app_addr.to_string()),
        "Host is rewritten to the target"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_records_https_through_the_forward_mitm_proxy() {
    let app = student_app();
    let log = SeenLog::default();
    let app_addr = serve_https(recording_router(&app, log.clone())).await;
    let out = util::output_dir("record_forward_mitm_chromium");
    let base = format!("https://{app_addr}");
    let ca_dir = out.join("ca");
    let recorder = start(RecordOptions {
        target: None,
        mitm: true,
        ca_dir: Some(ca_dir.clone()),
        listen: "127.0.0.1:0".parse().unwrap(),
        output: out.join("capture.har"),
        // The test server's certificate is self-signed.
        insecure: true,
        // Only the application: Chromium may try to reach other hosts through the proxy.
        include: vec![format!("^{}", regex::escape(&base))],
        ..RecordOptions::default()
    })
    .await;
    let ca = recorder.ca().expect("a CA in --mitm mode");
    assert!(ca.created());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(ca_dir.join("chorus-ca-key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the CA's private key is the owner's only"
        );
    }
    let args = vec![
        format!("--proxy-server=http://{}", recorder.local_addr()),
        // Chromium bypasses proxies for loopback unless told otherwise.
        "--proxy-bypass-list=<-loopback>".to_owned(),
        format!("--ignore-certificate-errors-spki-list={}", ca.spki_list()),
    ];
    let mut browser = Browser::start(&args, &out).await;
    play_as_student(&mut browser, &base, &app, 1).await;
    browser.close().await;
    until("every exchange to be written", || {
        recorder.summary().exchanges >= log.lock().unwrap().len() as u64
    })
    .await;
    let summary = recorder.shutdown().await;
    let har = read_valid(&summary.path);
    let seen = sorted(&log);
    assert!(
        seen.iter().any(|s| s.path == "/api/v2/data/events"),
        "{seen:?}"
    );
    crate::eqnice!(seen, recorded(&har, &base));
    assert!(summary.tunnelled_hosts.is_empty());
    // Chromium takes HTTP/2 from the recorder; the application (no ALPN) gets HTTP/1.1.
    for entry in &har.log.entries {
        assert_eq!(
            entry.request.http_version, "HTTP/2",
            "{}",
            entry.request.url
        );
    }
}

#[tokio::test]
async fn an_https_target_needs_insecure_for_a_self_signed_certificate() {
    let app = student_app();
    let app_addr = serve_https(recording_router(&app, SeenLog::default())).await;
    let target = format!("https://{app_addr}");
    let dir = tempfile::tempdir().unwrap();
    let strict = start(reverse(&target, &dir.path().join("strict.har"))).await;
    let refused = reqwest::get(format!("{}/", strict.url())).await.unwrap();
    assert_eq!(refused.status(), 502);
    let page = refused.text().await.unwrap();
    assert!(page.contains("TLS handshake failed"), "{page}");
    strict.shutdown().await;

    let insecure = start(RecordOptions {
        insecure: true,
        ..reverse(&target, &dir.path().join("insecure.har"))
    })
    .await;
    let page = reqwest::get(format!("{}/", insecure.url())).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("GlassLab demo"));
    until("the entry", || insecure.summary().exchanges == 1).await;
    let summary = insecure.shutdown().await;
    let har = read_valid(&summary.path);
    assert_eq!(har.log.entries[0].request.url, format!("{target}/"));
}

#[tokio::test]
async fn a_target_that_is_down_gets_a_502_page_and_is_recorded() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let recorder = start(reverse(&target, dir.path())).await;
    let response = reqwest::get(format!("{}/api/course?x=1", recorder.url()))
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let page = response.text().await.unwrap();
    assert!(page.contains(&target), "{page}");
    assert!(page.contains("Connection refused"), "{page}");
    until("the entry", || recorder.summary().exchanges == 1).await;
    let summary = recorder.shutdown().await;
    assert!(summary.path.starts_with(dir.path()));
    assert!(summary.path.extension().is_some_and(|e| e == "har"));
    let har = read_valid(&summary.path);
    let entry = &har.log.entries[0];
    assert_eq!(entry.request.url, format!("{target}/api/course?x=1"));
    assert_eq!(entry.request.query_string[0].value, "1");
    assert_eq!(entry.response.status, 502);
    assert!(
        entry
            .error
            .as_deref()
            .unwrap()
            .contains("Connection refused"),
        "{:?}",
        entry.error
    );
}

#[tokio::test]
async fn a_browser_that_disconnects_mid_body_is_recorded_and_the_proxy_goes_on() {
    let app = student_app();
    let log = SeenLog::default();
    let app_addr = serve_http(recording_router(&app, log.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let target = format!("http://{app_addr}");
    let recorder = start(reverse(&target, &dir.path().join("c.har"))).await;

    let mut client = TcpStream::connect(recorder.local_addr()).await.unwrap();
    client
        .write_all(
            b"POST /api/v2/data/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 1000\r\n\r\n[{\"gameSessionId\":",
        )
        .await
        .unwrap();
    client.flush().await.unwrap();
    drop(client);
    until("the aborted exchange", || recorder.summary().exchanges == 1).await;

    let response = reqwest::get(format!("{}/__demo/stats", recorder.url()))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap();
    until("the second exchange", || recorder.summary().exchanges == 2).await;
    let summary = recorder.shutdown().await;
    let har = read_valid(&summary.path);
    let aborted = &har.log.entries[0];
    assert!(aborted.request.url.ends_with("/api/v2/data/events"));
    let error = aborted
        .error
        .as_deref()
        .expect("an _error on the aborted exchange");
    assert!(error.contains("ended early"), "{error}");
    assert_eq!(
        aborted.request.post_data.as_ref().unwrap().text,
        "[{\"gameSessionId\":"
    );
    assert_eq!(har.log.entries[1].response.status, 200);
}

#[tokio::test]
async fn an_application_that_closes_mid_response_is_recorded_with_what_came() {
    // Closing after "only ten b" leaves 90 promised bytes unsent.
    let addr = serve_raw(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nonly ten b",
    )
    .await;
    let (_dir, recorder) = record_in_front_of(addr).await;
    let response = reqwest::get(format!("{}/file.txt", recorder.url()))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.bytes().await.is_err(),
        "the browser sees the cut too"
    );
    until("the entry", || recorder.summary().exchanges == 1).await;
    let summary = recorder.shutdown().await;
    let har = read_valid(&summary.path);
    let entry = &har.log.entries[0];
    assert_eq!(entry.response.status, 200);
    assert_eq!(entry.response.content.text.as_deref(), Some("only ten b"));
    let error = entry.error.as_deref().expect("an _error");
    assert!(
        error.contains("closed the connection mid-response"),
        "{error}"
    );
}

#[tokio::test]
async fn filters_and_the_body_limit_decide_what_is_recorded_not_what_is_forwarded() {
    let app = student_app();
    let log = SeenLog::default();
    let app_addr = serve_http(recording_router(&app, log.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let recorder = start(RecordOptions {
        exclude: vec!["/__demo/".to_owned()],
        max_body: 16,
        ..reverse(&format!("http://{app_addr}"), &dir.path().join("c.har"))
    })
    .await;
    let http = reqwest::Client::new();
    let stats = http
        .get(format!("{}/__demo/stats", recorder.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(stats.status(), 200);
    let body = format!("{{\"code\":\"{}\"}}", "X".repeat(100));
    let answer = http
        .post(format!("{}/api/code/valid", recorder.url()))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 404);
    answer.text().await.unwrap();
    until("the entry", || recorder.summary().exchanges == 1).await;
    let summary = recorder.shutdown().await;
    assert_eq!(summary.forwarded, 2);
    let har = read_valid(&summary.path);
    assert_eq!(
        har.log.entries.len(),
        1,
        "the excluded request is not recorded"
    );
    let entry = &har.log.entries[0];
    assert!(entry.truncated);
    assert!(
        entry
            .comment
            .as_deref()
            .unwrap()
            .contains("request body truncated"),
        "{:?}",
        entry.comment
    );
    assert_eq!(entry.request.post_data.as_ref().unwrap().text, &body[..16]);
    assert_eq!(entry.request.body_size, body.len() as i64);
    // The application got the whole body.
    assert_eq!(log.lock().unwrap()[1].body, body.as_bytes());
}

#[tokio::test]
async fn websocket_messages_pass_through_and_are_recorded() {
    use axum::extract::ws::{Message, WebSocketUpgrade};
    let router = axum::Router::new().route(
        "/ws",
        axum::routing::get(|upgrade: WebSocketUpgrade| async move {
            upgrade.on_upgrade(|mut socket| async move {
                while let Some(Ok(message)) = socket.recv().await {
                    if let Message::Text(text) = message {
                        let _ = socket
                            .send(Message::Text(format!("echo {text}").into()))
                            .await;
                    }
                }
            })
        }),
    );
    let app_addr = serve_http(router).await;
    let (_dir, recorder) = record_in_front_of(app_addr).await;

    let mut socket = TcpStream::connect(recorder.local_addr()).await.unwrap();
    socket
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
              Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .await
        .unwrap();
    let head = read_head(&mut socket).await.unwrap();
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // A masked text frame "hi", then a close frame.
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | 2];
    frame.extend_from_slice(&mask);
    frame.extend(b"hi".iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    socket.write_all(&frame).await.unwrap();
    let mut reply = [0u8; 9];
    socket.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply[..2], &[0x81, 7]);
    assert_eq!(&reply[2..], b"echo hi");
    socket.write_all(&[0x88, 0x80, 0, 0, 0, 0]).await.unwrap();
    let mut rest = Vec::new();
    let _ = socket.read_to_end(&mut rest).await;
    drop(socket);
    until("the WebSocket entry", || recorder.summary().exchanges == 1).await;
    let summary = recorder.shutdown().await;
    let har = read_valid(&summary.path);
    let entry = &har.log.entries[0];
    assert_eq!(entry.response.status, 101);
    assert_eq!(entry.resource_type.as_deref(), Some("websocket"));
    let messages: Vec<(&str, u16, &str)> = entry
        .web_socket_messages
        .iter()
        .map(|m| (m.kind.as_str(), m.opcode, m.data.as_str()))
        .collect();
    assert_eq!(
        &messages[..2],
        &[("send", 1, "hi"), ("receive", 1, "echo hi")],
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.0 == "send" && m.1 == 8),
        "{messages:?}"
    );
}

#[tokio::test]
async fn forward_mode_records_plain_http_and_lists_tunnels_it_cannot_see_into() {
    let app = student_app();
    let log = SeenLog::default();
    let app_addr = serve_http(recording_router(&app, log.clone())).await;
    // A TCP echo server stands for an HTTPS site: without --mitm the bytes pass untouched.
    let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo_addr = echo.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = echo.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = stream.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let recorder = start(RecordOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        output: dir.path().join("c.har"),
        ..RecordOptions::default()
    })
    .await;
    let http = reqwest::Client::builder()
        .proxy(reqwest::Proxy::http(recorder.url()).unwrap())
        .build()
        .unwrap();
    let config = http
        .get(format!("http://{app_addr}/__demo/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(config.status(), 200);
    config.text().await.unwrap();

    let mut tunnel = TcpStream::connect(recorder.local_addr()).await.unwrap();
    tunnel
        .write_all(format!("CONNECT {echo_addr} HTTP/1.1\r\nHost: {echo_addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let head = read_head(&mut tunnel).await.unwrap();
    assert!(String::from_utf8_lossy(&head).starts_with("HTTP/1.1 200"));
    tunnel
        .write_all(b"\x16\x03\x01 not really TLS")
        .await
        .unwrap();
    let mut echoed = [0u8; 18];
    tunnel.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"\x16\x03\x01 not really TLS");
    drop(tunnel);

    until("the tunnel to be noted", || {
        recorder.summary().tunnelled_hosts.len() == 1
    })
    .await;
    let summary = recorder.shutdown().await;
    let har = read_valid(&summary.path);
    assert_eq!(har.log.entries.len(), 1);
    assert_eq!(
        har.log.entries[0].request.url,
        format!("http://{app_addr}/__demo/stats")
    );
    assert_eq!(har.log.tunnelled_hosts, vec![echo_addr.to_string()]);
}

#[test]
fn captures_from_other_tools_read() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/har");
    let mut read = 0;
    for file in std::fs::read_dir(&dir).unwrap() {
        let path = file.unwrap().path();
        if !path.to_string_lossy().ends_with(".har") {
            continue;
        }
        let (har, _) =
            har::read::read_file(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        assert!(!har.log.entries.is_empty(), "{}", path.display());
        for entry in &har.log.entries {
            assert!(entry.request.url.starts_with("http"), "{}", path.display());
        }
        read += 1;
    }
    assert!(read >= 5, "fixtures read: {read}");
}

/// Reads one response head and its body as the framing says, from a raw connection.
async fn read_raw_response(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    head_request: bool,
) -> String {
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(
            n > 0,
            "the connection closed mid-head: {:?}",
            String::from_utf8_lossy(buffer)
        );
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_lowercase();
    let body_end = |buffer: &[u8]| -> Option<usize> {
        let body = &buffer[head_end..];
        if head_request {
            Some(head_end)
        } else if head.contains("transfer-encoding: chunked") {
            body.windows(5)
                .position(|w| w == b"0\r\n\r\n")
                .map(|at| head_end + at + 5)
        } else {
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |n| n.trim().parse().unwrap());
            (body.len() >= length).then_some(head_end + length)
        }
    };
    let end = loop {
        if let Some(end) = body_end(buffer) {
            break end;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection closed mid-body");
        buffer.extend_from_slice(&chunk[..n]);
    };
    let text = String::from_utf8_lossy(&buffer[..end]).into_owned();
    buffer.drain(..end);
    text
}

#[tokio::test]
async fn bodies_keep_their_framing_through_pipelined_requests_and_are_recorded_decoded() {
    let echo = axum::Router::new()
        .route(
            "/echo",
            axum::routing::post(|body: axum::body::Body| async move {
                // A streamed body of unknown length: hyper answers it chunked.
                axum::response::Response::new(body)
            }),
        )
        .route("/length", axum::routing::get(|| async { "hello" }));
    let app_addr = serve_http(echo).await;
    let (_dir, recorder) = record_in_front_of(app_addr).await;

    let mut browser = TcpStream::connect(recorder.local_addr()).await.unwrap();
    // Three requests in one write; the first asks for 100-continue and sends its body chunked.
    browser
        .write_all(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n\
              3\r\nhel\r\n2;note=1\r\nlo\r\n0\r\n\r\n\
              HEAD /length HTTP/1.1\r\nHost: x\r\n\r\n\
              GET /length HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .await
        .unwrap();
    let mut buffer = Vec::new();
    let continued = read_raw_response(&mut browser, &mut buffer, true).await;
    assert!(
        continued.starts_with("HTTP/1.1 100 Continue"),
        "{continued}"
    );
    let echoed = read_raw_response(&mut browser, &mut buffer, false).await;
    assert!(echoed.starts_with("HTTP/1.1 200 OK"), "{echoed}");
    assert!(
        echoed.to_lowercase().contains("transfer-encoding: chunked"),
        "{echoed}"
    );
    assert!(
        echoed.ends_with("\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n"),
        "{echoed}"
    );
    let head_only = read_raw_response(&mut browser, &mut buffer, true).await;
    assert!(
        head_only.to_lowercase().contains("content-length: 5"),
        "{head_only}"
    );
    let got = read_raw_response(&mut browser, &mut buffer, false).await;
    assert!(got.ends_with("\r\n\r\nhello"), "{got}");
    assert!(buffer.is_empty(), "nothing more came: {buffer:?}");

    // An HTTP/1.0 application that ends its body by closing the connection.
    let old = serve_raw(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end").await;
    let (_old_dir, old_recorder) = record_in_front_of(old).await;
    let mut browser = TcpStream::connect(old_recorder.local_addr()).await.unwrap();
    browser
        .write_all(b"GET /old HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    browser.read_to_string(&mut answer).await.unwrap();
    assert!(
        answer.to_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(answer.ends_with("\r\n\r\nuntil the end"), "{answer}");

    until("three exchanges", || recorder.summary().exchanges == 3).await;
    until("the HTTP/1.0 exchange", || {
        old_recorder.summary().exchanges == 1
    })
    .await;
    let har = read_valid(&recorder.shutdown().await.path);
    let entries = &har.log.entries;
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0].request.post_data.as_ref().unwrap().text, "hello");
    assert_eq!(entries[0].response.content.text.as_deref(), Some("hello"));
    assert_eq!(entries[1].request.method, "HEAD");
    assert_eq!(entries[1].response.content.text, None);
    assert_eq!(entries[2].response.content.text.as_deref(), Some("hello"));
    assert!(entries.iter().all(|e| e.error.is_none()), "{entries:?}");
    let har = read_valid(&old_recorder.shutdown().await.path);
    let entry = &har.log.entries[0];
    assert_eq!(
        entry.response.content.text.as_deref(),
        Some("until the end")
    );
    assert!(entry.error.is_none(), "{:?}", entry.error);
}

#[tokio::test]
async fn an_application_that_closes_kept_connections_gets_each_request_once() {
    // Says nothing about closing, then closes after every answer: the recorder finds out
    // when it reuses the connection, and must neither fail nor send a request twice.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                if read_head(&mut stream).await.is_none() {
                    return;
                }
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .await;
            });
        }
    });
    let (_dir, recorder) = record_in_front_of(addr).await;
    let client = reqwest::Client::new();
    for n in 0..20 {
        let response = client
            .get(format!("{}/n/{n}", recorder.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "request {n}");
        assert_eq!(response.text().await.unwrap(), "ok");
    }
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 20);
    until("twenty exchanges", || recorder.summary().exchanges == 20).await;
    let har = read_valid(&recorder.shutdown().await.path);
    assert!(
        har.log
            .entries
            .iter()
            .all(|e| e.error.is_none() && e.response.status == 200)
    );
}

#[tokio::test]
async fn an_application_that_answers_garbage_gets_a_502_page_and_is_recorded() {
    let addr = serve_raw(b"SSH-2.0-OpenSSH_9.2\r\n\r\n").await;
    let (_dir, recorder) = record_in_front_of(addr).await;
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{}/api/login", recorder.url()))
        .body("user=a")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let page = response.text().await.unwrap();
    assert!(page.contains("not an HTTP/1.1 response"), "{page}");
    // The browser's connection is still good for the next request.
    let again = client
        .get(format!("{}/again", recorder.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 502);
    until("the entries", || recorder.summary().exchanges == 2).await;
    let har = read_valid(&recorder.shutdown().await.path);
    let entry = &har.log.entries[0];
    assert_eq!(entry.request.post_data.as_ref().unwrap().text, "user=a");
    assert_eq!(entry.response.status, 502);
    let error = entry.error.as_deref().unwrap();
    assert!(error.contains("not an HTTP/1.1 response"), "{error}");
}

#[tokio::test]
async fn an_application_that_answers_before_the_upload_ends_is_heard() {
    // Reads the head, refuses at once and keeps the connection open without reading on.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                if read_head(&mut stream).await.is_none() {
                    return;
                }
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 9\r\n\r\ntoo large",
                    )
                    .await;
                let mut rest = Vec::new();
                let _ = stream.read_to_end(&mut rest).await;
            });
        }
    });
    let (_dir, recorder) = record_in_front_of(addr).await;
    let mut browser = TcpStream::connect(recorder.local_addr()).await.unwrap();
    // A 1 MB upload of which only the first bytes are sent: the browser waits for the answer.
    browser
        .write_all(
            b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nfirst bytes",
        )
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        browser.read_to_string(&mut answer),
    )
    .await
    .expect("the early answer reaches the browser, and the connection closes")
    .unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 413 Payload Too Large"),
        "{answer}"
    );
    assert!(
        answer.to_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(answer.ends_with("\r\n\r\ntoo large"), "{answer}");
    until("the entry", || recorder.summary().exchanges == 1).await;
    let har = read_valid(&recorder.shutdown().await.path);
    let entry = &har.log.entries[0];
    assert_eq!(entry.response.status, 413);
    assert_eq!(
        entry.request.post_data.as_ref().unwrap().text,
        "first bytes"
    );
    assert!(
        entry
            .error
            .as_deref()
            .unwrap()
            .contains("answered before the request body was all sent"),
        "{:?}",
        entry.error
    );
}
