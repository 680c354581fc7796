//! Helpers for the recorder's integration tests: the demo app behind a layer that notes what
//! it received, HTTP and HTTPS servers on free ports, the recorder in-process or as the
//! `chorus record` binary, and the capture checked against the HAR 1.2 schema.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use chorus::demo::{App, AppOptions, Seed};
use chorus::har::{self, Har};
use chorus::record::{self, RecordConfig, RecordOptions, Recorder};
use serde_json::Value;
use tokio::net::TcpListener;

use super::{browser::Browser, json_schema};

/// What the application received: method, path and query, body bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
}

pub type SeenLog = Arc<Mutex<Vec<Seen>>>;

/// The demo app's router behind a layer that notes every request body it receives.
pub fn recording_router(app: &App, log: SeenLog) -> axum::Router {
    app.router().layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let log = log.clone();
            async move {
                let (parts, body) = request.into_parts();
                let bytes = axum::body::to_bytes(body, usize::MAX)
                    .await
                    .unwrap_or_default();
                log.lock().unwrap().push(Seen {
                    method: parts.method.to_string(),
                    path: parts
                        .uri
                        .path_and_query()
                        .map_or("/".to_owned(), |p| p.to_string()),
                    body: bytes.to_vec(),
                });
                next.run(axum::extract::Request::from_parts(
                    parts,
                    axum::body::Body::from(bytes),
                ))
                .await
            }
        },
    ))
}

pub fn student_app() -> App {
    App::new(AppOptions {
        events_period_secs: 1,
        seed: Some(Seed {
            classes: 1,
            students: 2,
        }),
    })
}

/// Serves `router` over plain HTTP on a free port.
pub async fn serve_http(router: axum::Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// Serves `router` over HTTPS (a self-signed certificate for 127.0.0.1) on a free port,
/// HTTP/1.1 only (no ALPN).
pub async fn serve_https(router: axum::Router) -> SocketAddr {
    serve_https_alpn(router, &[]).await
}

/// Serves `router` over HTTPS as [`serve_https`] does, offering HTTP/2 and HTTP/1.1 by ALPN.
pub async fn serve_https_h2(router: axum::Router) -> SocketAddr {
    serve_https_alpn(router, &[b"h2", b"http/1.1"]).await
}

async fn serve_https_alpn(router: axum::Router, alpn: &[&[u8]]) -> SocketAddr {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key)
    .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let router = router.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(router);
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(tls), service)
                .await;
            });
        }
    });
    addr
}

pub async fn start(options: RecordOptions) -> Recorder {
    record::start(RecordConfig::new(options).unwrap())
        .await
        .unwrap()
}

/// A recorder in reverse mode in front of the application at `app`, writing `c.har` in a new
/// temporary folder (which lives as long as the returned guard).
pub async fn record_in_front_of(app: SocketAddr) -> (tempfile::TempDir, Recorder) {
    let dir = tempfile::tempdir().unwrap();
    let recorder = start(reverse(&format!("http://{app}"), &dir.path().join("c.har"))).await;
    (dir, recorder)
}

/// An application that reads a request on each connection, writes `answer` as it is and
/// closes the connection.
pub async fn serve_raw(answer: &'static [u8]) -> SocketAddr {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request).await;
            let _ = stream.write_all(answer).await;
        }
    });
    addr
}

/// Reads a message head byte by byte (so nothing after it is consumed); `None` when the
/// connection closes first.
pub async fn read_head(stream: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt as _;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.ok()?;
        head.push(byte[0]);
    }
    Some(head)
}

pub fn reverse(target: &str, output: &Path) -> RecordOptions {
    RecordOptions {
        target: Some(target.to_owned()),
        listen: "127.0.0.1:0".parse().unwrap(),
        output: output.to_owned(),
        ..RecordOptions::default()
    }
}

/// Reads the capture with the tolerant reader and checks it against the HAR 1.2 schema.
pub fn read_valid(path: &Path) -> Har {
    let schema: Value = serde_json::from_str(include_str!("../fixtures/har/har-1.2.schema.json"))
        .expect("the schema fixture is JSON");
    let text = std::fs::read_to_string(path).unwrap();
    let value: Value = serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("{} is not JSON: {err}", path.display()));
    let errors = json_schema::validate(&schema, &value);
    assert!(
        errors.is_empty(),
        "{} breaks the HAR 1.2 schema:\n{}",
        path.display(),
        errors.join("\n")
    );
    let (har, warnings) = har::read::read_file(path).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    har
}

/// The recorded requests to `base`, as the application would have seen them.
pub fn recorded(har: &Har, base: &str) -> Vec<Seen> {
    let mut seen: Vec<Seen> = har
        .log
        .entries
        .iter()
        .filter_map(|entry| {
            let path = entry.request.url.strip_prefix(base)?;
            Some(Seen {
                method: entry.request.method.clone(),
                path: path.to_owned(),
                body: entry
                    .request
                    .post_data
                    .as_ref()
                    .map(|p| p.bytes().expect("postData decodes"))
                    .unwrap_or_default(),
            })
        })
        .collect();
    seen.sort();
    seen
}

pub fn sorted(log: &SeenLog) -> Vec<Seen> {
    let mut seen = log.lock().unwrap().clone();
    seen.sort();
    seen
}

/// Logs in as the app's second seeded student and plays `periods` event periods.
pub async fn play_as_student(browser: &mut Browser, base: &str, app: &App, periods: u32) {
    let (username, password, _) = &app.seeded_users()[1];
    browser
        .play_as_student(base, username, password, periods)
        .await;
}

/// Polls `done` (the recorder's own state) until it holds, for at most 10 s.
pub async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `chorus record` as a user runs it: the port it printed, and its output lines.
pub struct RecorderProcess {
    pub child: Child,
    pub url: String,
    pub stdout: mpsc::Receiver<String>,
    pub stderr: mpsc::Receiver<String>,
}

pub fn lines(reader: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl RecorderProcess {
    pub fn spawn(args: &[&str], dir: &Path) -> RecorderProcess {
        Self::spawn_in_shell(None, args, dir)
    }

    /// [`RecorderProcess::spawn`] through `sh -c "SHELL; exec chorus record ARGS"` when
    /// `shell` is given (e.g. `ulimit -f 8`).
    pub fn spawn_in_shell(shell: Option<&str>, args: &[&str], dir: &Path) -> RecorderProcess {
        let binary = env!("CARGO_BIN_EXE_chorus");
        let mut command = match shell {
            Some(prefix) => {
                let mut command = Command::new("sh");
                command
                    .arg("-c")
                    .arg(format!("{prefix}; exec \"$0\" \"$@\""))
                    .arg(binary);
                command
            }
            None => Command::new(binary),
        };
        let mut child = command
            .arg("record")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = lines(child.stdout.take().unwrap());
        let stderr = lines(child.stderr.take().unwrap());
        let first = stdout
            .recv_timeout(Duration::from_secs(20))
            .expect("chorus record prints where it listens");
        let url = first
            .split_whitespace()
            .find(|word| word.starts_with("http://127.0.0.1:") && !word.ends_with('/'))
            .filter(|_| first.contains(" through "))
            .unwrap_or_else(|| panic!("no proxy address in {first:?}"))
            .to_owned();
        RecorderProcess {
            child,
            url,
            stdout,
            stderr,
        }
    }

    /// Waits for a line of `stream` containing `text`; returns every line read.
    pub fn wait_for(stream: &mpsc::Receiver<String>, text: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match stream.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(text);
                    seen.push(line);
                    if found {
                        return seen;
                    }
                }
                Err(_) => panic!("never saw {text:?}; saw {seen:#?}"),
            }
        }
    }

    pub fn interrupt(&self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for RecorderProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn capture_in(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "har"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}
