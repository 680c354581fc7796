//! Issue 17: HTTP/2 between the browser and `chorus record --forward --mitm`. Chromium takes
//! `h2` by ALPN from the recorder, which speaks HTTP/2 on to Debian's nginx (TLS, `http2`);
//! nginx's access log says what it served and over which protocol, the capture's entries say
//! `HTTP/2` with Chromium's pseudo-header fields, and the capture converts into a scenario
//! that `chorus run --check` passes against the same nginx; an event stream flows over
//! HTTP/2 while a WebSocket falls back to HTTP/1.1. The hostile edges are in `http2_edges`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use chorus::har::{Entry, Har};
use chorus::record::RecordOptions;

use crate::util::nginx::{Http2, Nginx};
use crate::util::record::*;
use crate::util::{self, browser::Browser};

/// Bytes of the download the page fetches: larger than the recorder's windows and than
/// the `--max-body` the test records with.
const DOWNLOAD: usize = 3 * 1024 * 1024;
const MAX_BODY: u64 = 256 * 1024;

const PAGE: &str = r#"<!doctype html><html><head><title>notes</title></head><body>
<p id="status">loading</p><p id="size"></p><pre id="list"></pre>
<script>
(async () => {
  const list = await (await fetch('/api/notes')).json();
  const saved = await (await fetch('/api/save', {
    method: 'POST',
    headers: {'content-type': 'application/json'},
    body: JSON.stringify({text: 'buy milk', n: 1}),
  })).json();
  const big = await (await fetch('/download.txt')).arrayBuffer();
  document.getElementById('list').textContent = JSON.stringify([list, saved]);
  document.getElementById('size').textContent = String(big.byteLength);
  document.getElementById('status').textContent = saved.saved ? 'saved' : 'failed';
})().catch((e) => { document.getElementById('status').textContent = 'failed: ' + e; });
</script></body></html>"#;

/// A self-signed certificate for 127.0.0.1 and its key, as PEM files in `dir`.
fn certificate(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

/// nginx over TLS with HTTP/2: the page, a JSON list, a POST whose body nginx reads (it
/// proxies it to itself, so its access log shows the body) and a download.
fn notes_nginx(dir: &Path) -> Nginx {
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), PAGE).unwrap();
    let line = "0123456789abcdef".repeat(4) + "\n";
    let download = line.repeat(DOWNLOAD / line.len() + 1);
    std::fs::write(www.join("download.txt"), &download[..DOWNLOAD]).unwrap();
    let (cert, key) = certificate(&dir.join("tls"));
    let server = format!(
        "root {www};\n\
         location = / {{ try_files /index.html =404; }}\n\
         location = /download.txt {{ default_type text/plain; }}\n\
         location = /api/notes {{ default_type application/json; return 200 '{{\"notes\":[\"first\"]}}'; }}\n\
         location = /api/save {{ proxy_pass https://127.0.0.1:$server_port/internal/saved; }}\n\
         location = /internal/saved {{ default_type application/json; return 200 '{{\"saved\":true}}'; }}\n",
        www = www.display()
    );
    Nginx::start_http2_with(
        &dir.join("nginx"),
        Http2::Tls {
            cert: &cert,
            key: &key,
        },
        &server,
    )
}

pub(super) fn mitm_options(out: &Path, base: &str) -> RecordOptions {
    RecordOptions {
        target: None,
        mitm: true,
        ca_dir: Some(out.join("ca")),
        listen: "127.0.0.1:0".parse().unwrap(),
        output: out.join("capture.har"),
        // nginx's certificate is self-signed.
        insecure: true,
        max_body: MAX_BODY,
        include: vec![format!("^{}", regex::escape(base))],
        ..RecordOptions::default()
    }
}

pub(super) fn entry<'a>(har: &'a Har, method: &str, url: &str) -> &'a Entry {
    har.log
        .entries
        .iter()
        .find(|e| e.request.method == method && e.request.url == url)
        .unwrap_or_else(|| panic!("no {method} {url} in the capture"))
}

fn header<'a>(entry: &'a Entry, name: &str) -> Option<&'a str> {
    entry
        .request
        .headers
        .iter()
        .find(|h| h.name == name)
        .map(|h| h.value.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_speaks_http2_through_the_mitm_recorder_to_nginx_and_the_capture_replays() {
    let out = util::output_dir("record_http2_chromium_nginx");
    let nginx = notes_nginx(&out);
    let base = nginx.url("");
    let recorder = start(mitm_options(&out, &base)).await;
    let ca = recorder.ca().unwrap();
    let args = vec![
        format!("--proxy-server=http://{}", recorder.local_addr()),
        "--proxy-bypass-list=<-loopback>".to_owned(),
        format!("--ignore-certificate-errors-spki-list={}", ca.spki_list()),
    ];
    let mut browser = Browser::start(&args, &out).await;
    browser.goto(&format!("{base}/")).await;
    let status = browser
        .wait_text("#status", Duration::from_secs(30), |s| s != "loading")
        .await;
    browser.screenshot("notes").await;
    assert_eq!(status, "saved");
    assert_eq!(browser.text("#size").await, DOWNLOAD.to_string());
    browser.close().await;

    // nginx's own record: each request over HTTP/2, the POST's body as it arrived.
    let log = nginx.access_log();
    let served = |request: &str| {
        log.iter()
            .find(|line| line.contains(&format!("\"{request} HTTP/2.0\"")))
            .unwrap_or_else(|| panic!("nginx never served {request} over HTTP/2: {log:#?}"))
    };
    served("GET /");
    served("GET /api/notes");
    served("GET /download.txt");
    let save = served("POST /api/save");
    assert!(
        save.contains(r#"\x22text\x22:\x22buy milk\x22"#),
        "nginx read the POST's body: {save}"
    );

    until("the four exchanges to be written", || {
        recorder.summary().exchanges >= 4
    })
    .await;
    let summary = recorder.shutdown().await;
    let har = read_valid(&summary.path);
    for entry in &har.log.entries {
        assert_eq!(
            entry.request.http_version, "HTTP/2",
            "{}",
            entry.request.url
        );
        assert_eq!(
            entry.response.http_version, "HTTP/2",
            "{}",
            entry.request.url
        );
    }
    let page = entry(&har, "GET", &format!("{base}/"));
    assert_eq!(page.response.status, 200);
    assert!(
        page.response
            .content
            .text
            .as_deref()
            .unwrap()
            .contains("notes")
    );
    // The pseudo-header fields first, as Chromium's HAR lists them, then the browser's own.
    let names: Vec<&str> = page
        .request
        .headers
        .iter()
        .map(|h| h.name.as_str())
        .collect();
    assert_eq!(
        names[..4],
        [":authority", ":method", ":path", ":scheme"],
        "{names:?}"
    );
    assert!(names.contains(&"user-agent"), "{names:?}");
    assert_eq!(header(page, ":authority"), Some(&base["https://".len()..]));
    assert_eq!(header(page, ":scheme"), Some("https"));

    let save = entry(&har, "POST", &format!("{base}/api/save"));
    assert_eq!(header(save, ":method"), Some("POST"));
    assert_eq!(header(save, ":path"), Some("/api/save"));
    assert_eq!(save.response.status, 200);
    assert_eq!(save.response.status_text, "");
    let posted = save.request.post_data.as_ref().unwrap();
    assert_eq!(posted.mime_type, "application/json");
    assert_eq!(posted.text, r#"{"text":"buy milk","n":1}"#);
    assert_eq!(
        save.response.content.text.as_deref(),
        Some(r#"{"saved":true}"#)
    );

    let download = entry(&har, "GET", &format!("{base}/download.txt"));
    assert_eq!(download.response.body_size, DOWNLOAD as i64);
    assert!(download.truncated, "a body past --max-body is recorded cut");
    assert_eq!(
        download.response.content.text.as_deref().map(str::len),
        Some(MAX_BODY as usize)
    );

    // The capture converts, and the scenario replays against the same nginx.
    let scenario = out.join("scenario.yaml");
    let converted = util::chorus(
        &[
            "convert",
            summary.path.to_str().unwrap(),
            "-o",
            scenario.to_str().unwrap(),
        ],
        &out,
    );
    assert!(converted.status.success(), "{converted:?}");
    let text = std::fs::read_to_string(&scenario).unwrap();
    assert!(text.contains("/api/save"), "{text}");
    assert!(
        !text.contains(":authority"),
        "pseudo-header fields are not headers to send: {text}"
    );
    let before = nginx.access_log().len();
    let checked = util::chorus(
        &["run", scenario.to_str().unwrap(), "--check", "--insecure"],
        &out,
    );
    assert!(
        checked.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    let replayed = nginx.access_log()[before..].to_vec();
    assert!(
        replayed
            .iter()
            .any(|line| line.contains("\"POST /api/save HTTP/2.0\"") && line.contains("buy milk")),
        "the replay posted the note again: {replayed:#?}"
    );
}

/// The page of the event-stream and WebSocket test: events shown as they come (the source
/// sends each after the page acknowledged the one before), and a WebSocket echo.
const LIVE_PAGE: &str = r#"<!doctype html><title>live</title><p id="log"></p><p id="ws"></p><script>
const log = document.getElementById('log');
const source = new EventSource('/feed');
source.onmessage = (e) => {
  log.textContent += e.data + ' ';
  if (e.data === '3') source.close();
  fetch('/ack?n=' + e.data);
};
const socket = new WebSocket('wss://' + location.host + '/ws');
socket.onopen = () => socket.send('hi');
socket.onmessage = (e) => { document.getElementById('ws').textContent = e.data; socket.close(); };
</script>"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stream_flows_over_http2_and_a_websocket_falls_back_to_http1() {
    use super::events::{EVENTS, Feed, ack, feed};
    use axum::extract::ws::{Message, WebSocketUpgrade};
    let (acked, _) = tokio::sync::watch::channel(0);
    let state = Arc::new(Feed {
        log: std::sync::Mutex::default(),
        acked: Some(acked),
    });
    let echo = |upgrade: WebSocketUpgrade| async move {
        upgrade.on_upgrade(|mut socket| async move {
            while let Some(Ok(message)) = socket.recv().await {
                if let Message::Text(text) = message {
                    let _ = socket
                        .send(Message::Text(format!("echo {text}").into()))
                        .await;
                }
            }
        })
    };
    let router = Router::new()
        .route("/", get(|| async { axum::response::Html(LIVE_PAGE) }))
        .route("/feed", get(feed))
        .route("/ack", get(ack))
        .with_state(state.clone())
        .route("/ws", get(echo));
    let app = serve_https_h2(router).await;
    let out = util::output_dir("record_http2_events_websocket");
    let base = format!("https://{app}");
    let recorder = start(mitm_options(&out, &base)).await;
    let args = vec![
        format!("--proxy-server=http://{}", recorder.local_addr()),
        "--proxy-bypass-list=<-loopback>".to_owned(),
        format!(
            "--ignore-certificate-errors-spki-list={}",
            recorder.ca().unwrap().spki_list()
        ),
    ];
    let browser = Browser::start(&args, &out).await;
    browser.goto(&format!("{base}/")).await;
    browser
        .wait_text("#log", Duration::from_secs(30), |text| {
            text.trim() == "1 2 3"
        })
        .await;
    browser
        .wait_text("#ws", Duration::from_secs(30), |text| text == "echo hi")
        .await;
    browser.close().await;
    let expected: Vec<String> = (1..=EVENTS)
        .flat_map(|n| [format!("sent {n}"), format!("ack {n}")])
        .collect();
    until("the last acknowledgement", || {
        state.log.lock().unwrap().len() == expected.len()
    })
    .await;
    assert_eq!(*state.log.lock().unwrap(), expected);
    // The page, the stream, the acknowledgements and the socket.
    until("every exchange to be written", || {
        recorder.summary().exchanges >= 3 + EVENTS
    })
    .await;
    let summary = recorder.shutdown().await;
    let har = read_valid(&summary.path);
    let stream = entry(&har, "GET", &format!("{base}/feed"));
    assert_eq!(stream.request.http_version, "HTTP/2");
    assert_eq!(stream.resource_type.as_deref(), Some("eventsource"));
    let events: Vec<&str> = stream
        .event_source_messages
        .iter()
        .map(|e| e.data.as_str())
        .collect();
    assert_eq!(events, ["1", "2", "3"]);
    let socket = entry(&har, "GET", &format!("{base}/ws"));
    assert_eq!(
        socket.request.http_version, "HTTP/1.1",
        "WebSockets stay on HTTP/1.1"
    );
    assert_eq!(socket.response.status, 101);
    let messages: Vec<(&str, &str)> = socket
        .web_socket_messages
        .iter()
        .filter(|m| m.opcode == 1)
        .map(|m| (m.kind.as_str(), m.data.as_str()))
        .collect();
    assert_eq!(messages, [("send", "hi"), ("receive", "echo hi")]);
}
