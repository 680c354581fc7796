//! Issue 17: the edges of HTTP/2 between a browser and `chorus record --forward --mitm`,
//! with a client written here (the `h2` crate, or raw frames) in place of the browser and a
//! test application over TLS that speaks HTTP/2 and notes what it read: a stream reset or a
//! connection dropped mid-upload or mid-answer, more streams than the recorder allows, header
//! lists past the bounds, an application that is down. Each is recorded with what came, and
//! the recorder goes on.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use bytes::Bytes;
use chorus::har::Entry;
use chorus::record::Recorder;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::http2::{entry, mitm_options};
use crate::util::record::*;
/// What the test application saw: bytes of uploads (and whether each ended whole), streams
/// held at once (and the most ever), and a gate that lets held streams answer.
#[derive(Default)]
struct Seen {
    uploads: std::sync::Mutex<Vec<(usize, bool)>>,
    /// Upload bytes read so far, all uploads together.
    read: AtomicUsize,
    holding: AtomicUsize,
    most: AtomicUsize,
    release: tokio::sync::Notify,
    released: std::sync::atomic::AtomicBool,
}

async fn upload(State(seen): State<Arc<Seen>>, body: axum::body::Body) -> &'static str {
    use http_body_util::BodyExt as _;
    let mut body = body;
    let mut bytes = 0;
    let whole = loop {
        match body.frame().await {
            Some(Ok(frame)) => {
                let length = frame.data_ref().map_or(0, Bytes::len);
                bytes += length;
                seen.read.fetch_add(length, Ordering::SeqCst);
            }
            Some(Err(_)) => break false,
            None => break true,
        }
    };
    seen.uploads.lock().unwrap().push((bytes, whole));
    "stored"
}

async fn hold(State(seen): State<Arc<Seen>>) -> &'static str {
    let now = seen.holding.fetch_add(1, Ordering::SeqCst) + 1;
    seen.most.fetch_max(now, Ordering::SeqCst);
    loop {
        let released = seen.release.notified();
        if seen.released.load(Ordering::SeqCst) {
            break;
        }
        let _ = tokio::time::timeout(Duration::from_secs(20), released).await;
        if seen.released.load(Ordering::SeqCst) {
            break;
        }
    }
    seen.holding.fetch_sub(1, Ordering::SeqCst);
    "held"
}

/// One 16 KiB chunk, then nothing more until the client has gone (bounded at 20 s).
async fn trickle() -> axum::body::Body {
    let chunks = futures_util::stream::unfold(0u8, |n| async move {
        if n > 0 {
            tokio::time::sleep(Duration::from_secs(20)).await;
            return None;
        }
        Some((
            Ok::<_, std::convert::Infallible>(Bytes::from(vec![b't'; 16 * 1024])),
            1,
        ))
    });
    axum::body::Body::from_stream(chunks)
}

async fn test_app() -> (SocketAddr, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let router = Router::new()
        .route("/upload", post(upload))
        .route("/hold", get(hold))
        .route("/ok", get(|| async { "ok" }))
        .route("/trickle", get(trickle))
        .with_state(seen.clone());
    (serve_https_h2(router).await, seen)
}

/// A TLS connection through the recorder's CONNECT tunnel to `app`, trusting the recorder's
/// CA and offering only `h2`.
async fn tunnel(
    recorder: &Recorder,
    app: SocketAddr,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut tcp = TcpStream::connect(recorder.local_addr()).await.unwrap();
    tcp.write_all(format!("CONNECT {app} HTTP/1.1\r\nhost: {app}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let head = read_head(&mut tcp).await.unwrap();
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(recorder.ca().unwrap().cert_path()).unwrap();
    use rustls::pki_types::pem::PemObject as _;
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let name = rustls::pki_types::ServerName::IpAddress(app.ip().into());
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    tls
}

async fn h2_client(
    recorder: &Recorder,
    app: SocketAddr,
) -> (h2::client::SendRequest<Bytes>, tokio::task::JoinHandle<()>) {
    let (sender, connection) = h2::client::handshake(tunnel(recorder, app).await)
        .await
        .unwrap();
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    (sender, driver)
}

async fn get_ok(sender: &mut h2::client::SendRequest<Bytes>, app: SocketAddr) -> u16 {
    let request = http::Request::get(format!("https://{app}/ok"))
        .body(())
        .unwrap();
    let (response, _) = sender
        .clone()
        .ready()
        .await
        .unwrap()
        .send_request(request, true)
        .unwrap();
    response.await.unwrap().status().as_u16()
}

/// Starts a POST to /upload and sends `bytes` of its body, leaving it open.
async fn half_upload(
    sender: &mut h2::client::SendRequest<Bytes>,
    app: SocketAddr,
    bytes: usize,
) -> h2::SendStream<Bytes> {
    let request = http::Request::post(format!("https://{app}/upload"))
        .header("content-type", "application/octet-stream")
        .body(())
        .unwrap();
    let (_response, mut stream) = sender
        .clone()
        .ready()
        .await
        .unwrap()
        .send_request(request, false)
        .unwrap();
    stream
        .send_data(Bytes::from(vec![b'u'; bytes]), false)
        .unwrap();
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_reset_or_a_connection_dropped_mid_upload_is_recorded_and_the_proxy_goes_on() {
    let (app, seen) = test_app().await;
    let dir = tempfile::tempdir().unwrap();
    let base = format!("https://{app}");
    let recorder = start(mitm_options(dir.path(), &base)).await;

    // A reset stream, on a connection that then carries on.
    let (mut sender, driver) = h2_client(&recorder, app).await;
    let mut stream = half_upload(&mut sender, app, 40_000).await;
    until("the application to read what was sent", || {
        seen.read.load(Ordering::SeqCst) == 40_000
    })
    .await;
    stream.send_reset(h2::Reason::CANCEL);
    assert_eq!(
        get_ok(&mut sender, app).await,
        200,
        "the connection goes on"
    );
    until("the reset upload's entry", || {
        recorder.summary().exchanges >= 2
    })
    .await;

    // A connection dropped mid-upload; a new one is served.
    let _stream = half_upload(&mut sender, app, 30_000).await;
    until("the application to read the second upload's bytes", || {
        seen.read.load(Ordering::SeqCst) == 70_000
    })
    .await;
    driver.abort();
    drop(sender);
    let (mut again, _driver) = h2_client(&recorder, app).await;
    assert_eq!(get_ok(&mut again, app).await, 200, "the proxy goes on");
    until("every entry", || recorder.summary().exchanges >= 4).await;

    let summary = recorder.shutdown().await;
    let har = read_valid(&summary.path);
    let uploads: Vec<&Entry> = har
        .log
        .entries
        .iter()
        .filter(|e| e.request.url.ends_with("/upload"))
        .collect();
    assert_eq!(uploads.len(), 2, "{:#?}", har.log.entries);
    for (entry, sent) in uploads.iter().zip([40_000, 30_000]) {
        let error = entry.error.as_deref().unwrap_or_default();
        assert!(error.contains("request body ended early"), "{error}");
        assert_eq!(entry.request.http_version, "HTTP/2");
        // What came before the reset: every byte the application read.
        assert_eq!(entry.request.body_size as usize, sent);
        let text = &entry.request.post_data.as_ref().unwrap().text;
        assert_eq!(text.len(), sent);
    }
    assert!(
        uploads[0]
            .error
            .as_deref()
            .unwrap()
            .contains("reset the stream")
    );
    // The application saw both uploads end broken, not as whole bodies.
    let uploads = seen.uploads.lock().unwrap().clone();
    assert!(uploads.iter().all(|(_, whole)| !whole), "{uploads:?}");
}

/// One HTTP/2 frame: type, flags, stream, payload.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Reads one frame: (type, flags, stream, payload).
async fn read_frame<S: tokio::io::AsyncRead + Unpin>(io: &mut S) -> (u8, u8, u32, Vec<u8>) {
    let mut head = [0u8; 9];
    io.read_exact(&mut head).await.unwrap();
    let length = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    let mut payload = vec![0u8; length];
    io.read_exact(&mut payload).await.unwrap();
    (head[3], head[4], stream, payload)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_that_opens_too_many_streams_gets_the_extra_ones_refused() {
    let (app, seen) = test_app().await;
    let dir = tempfile::tempdir().unwrap();
    let recorder = start(mitm_options(dir.path(), &format!("https://{app}"))).await;
    let mut tls = tunnel(&recorder, app).await;
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    tls.write_all(&frame(4, 0, 0, &[])).await.unwrap();
    // The recorder's SETTINGS, acknowledged, so that its stream limit holds.
    let limit = loop {
        let (kind, flags, _, payload) = read_frame(&mut tls).await;
        if kind == 4 && flags & 1 == 0 {
            let limit = payload
                .chunks(6)
                .find(|setting| setting[..2] == [0, 3])
                .map(|setting| u32::from_be_bytes(setting[2..].try_into().unwrap()));
            tls.write_all(&frame(4, 1, 0, &[])).await.unwrap();
            break limit.expect("SETTINGS_MAX_CONCURRENT_STREAMS is announced");
        }
    };
    assert_eq!(limit, 100);
    // 150 requests at once, ignoring the limit: HPACK with static-table names, no Huffman.
    let authority = app.to_string();
    let mut block = vec![0x82, 0x87, 0x04, 5];
    block.extend_from_slice(b"/hold");
    block.extend_from_slice(&[0x01, authority.len() as u8]);
    block.extend_from_slice(authority.as_bytes());
    let mut burst = Vec::new();
    for n in 0..150u32 {
        // END_STREAM | END_HEADERS
        burst.extend(frame(1, 0x5, 2 * n + 1, &block));
    }
    tls.write_all(&burst).await.unwrap();
    // Once the application holds 100 streams (the recorder has accepted them all), they may
    // answer.
    let releaser = seen.clone();
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while releaser.holding.load(Ordering::SeqCst) < 100
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        releaser.released.store(true, Ordering::SeqCst);
        releaser.release.notify_waiters();
    });
    let mut refused = std::collections::BTreeSet::new();
    let mut answered = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while refused.len() + answered.len() < 150 {
        let read = tokio::time::timeout_at(deadline, read_frame(&mut tls)).await;
        let (kind, flags, stream, payload) = read.expect("every stream is answered or refused");
        match kind {
            // RST_STREAM REFUSED_STREAM
            3 if payload == [0, 0, 0, 7] => {
                refused.insert(stream);
            }
            0 | 1 if flags & 1 == 1 => {
                answered.insert(stream);
            }
            // GOAWAY: the recorder gave up on the connection.
            7 => panic!(
                "GOAWAY after {} answered, {} refused",
                answered.len(),
                refused.len()
            ),
            _ => {}
        }
        if kind == 0 && !payload.is_empty() {
            let update = (payload.len() as u32).to_be_bytes();
            tls.write_all(&frame(8, 0, 0, &update)).await.unwrap();
            tls.write_all(&frame(8, 0, stream, &update)).await.unwrap();
        }
    }
    assert_eq!((answered.len(), refused.len()), (100, 50));
    assert_eq!(
        seen.most.load(Ordering::SeqCst),
        100,
        "the application held at most 100"
    );
    // The recorder goes on: a new connection is served.
    let (mut sender, _driver) = h2_client(&recorder, app).await;
    assert_eq!(get_ok(&mut sender, app).await, 200);
    until("the answered streams' entries", || {
        recorder.summary().exchanges >= 101
    })
    .await;
    recorder.shutdown().await;
}

#[tokio::test]
async fn header_lists_past_the_bounds_get_431_and_the_connection_goes_on() {
    let (app, _seen) = test_app().await;
    let dir = tempfile::tempdir().unwrap();
    let recorder = start(mitm_options(dir.path(), &format!("https://{app}"))).await;
    let (mut sender, _driver) = h2_client(&recorder, app).await;
    let many = (0..200).fold(
        http::Request::get(format!("https://{app}/ok")),
        |request, n| request.header(format!("x-field-{n}"), "1"),
    );
    let large =
        http::Request::get(format!("https://{app}/ok")).header("x-large", "v".repeat(70_000));
    for request in [many, large] {
        let (response, _) = sender
            .clone()
            .ready()
            .await
            .unwrap()
            .send_request(request.body(()).unwrap(), true)
            .unwrap();
        assert_eq!(response.await.unwrap().status(), 431);
    }
    assert_eq!(
        get_ok(&mut sender, app).await,
        200,
        "the connection goes on"
    );
    recorder.shutdown().await;
}

#[tokio::test]
async fn an_application_that_is_down_gets_a_502_page_over_http2_and_is_recorded() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let app = closed.local_addr().unwrap();
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let base = format!("https://{app}");
    let recorder = start(mitm_options(dir.path(), &base)).await;
    let (sender, _driver) = h2_client(&recorder, app).await;
    let request = http::Request::get(format!("{base}/api/x?y=1"))
        .body(())
        .unwrap();
    let (response, _) = sender
        .ready()
        .await
        .unwrap()
        .send_request(request, true)
        .unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 502);
    let mut body = response.into_body();
    let mut page = Vec::new();
    while let Some(chunk) = body.data().await {
        page.extend_from_slice(&chunk.unwrap());
    }
    let page = String::from_utf8(page).unwrap();
    assert!(page.contains("Connection refused"), "{page}");
    until("the entry", || recorder.summary().exchanges == 1).await;
    let summary = recorder.shutdown().await;
    let har = read_valid(&summary.path);
    let entry = &har.log.entries[0];
    assert_eq!(entry.request.url, format!("{base}/api/x?y=1"));
    assert_eq!(entry.request.http_version, "HTTP/2");
    assert_eq!(entry.response.status, 502);
    assert_eq!(entry.response.http_version, "HTTP/2");
    let error = entry.error.as_deref().unwrap_or_default();
    assert!(error.contains("Connection refused"), "{error}");
}

#[tokio::test]
async fn a_stream_reset_mid_answer_is_recorded_with_what_went_through() {
    let (app, _seen) = test_app().await;
    let dir = tempfile::tempdir().unwrap();
    let base = format!("https://{app}");
    let recorder = start(mitm_options(dir.path(), &base)).await;
    let (mut sender, _driver) = h2_client(&recorder, app).await;
    let request = http::Request::get(format!("{base}/trickle"))
        .body(())
        .unwrap();
    let (response, mut stream) = sender
        .clone()
        .ready()
        .await
        .unwrap()
        .send_request(request, true)
        .unwrap();
    let mut body = response.await.unwrap().into_body();
    let mut got = 0;
    while got < 16 * 1024 {
        got += body.data().await.unwrap().unwrap().len();
    }
    stream.send_reset(h2::Reason::CANCEL);
    until("the entry", || recorder.summary().exchanges == 1).await;
    assert_eq!(
        get_ok(&mut sender, app).await,
        200,
        "the connection goes on"
    );
    let summary = recorder.shutdown().await;
    let har = read_valid(&summary.path);
    let entry = entry(&har, "GET", &format!("{base}/trickle"));
    assert_eq!(entry.response.status, 200);
    assert_eq!(entry.response.body_size, 16 * 1024);
    let error = entry.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("reset the stream") && error.contains("before the response ended"),
        "{error}"
    );
}
