//! Integration tests for HTTP/2 in the engine (see tests/integration.rs): Debian's nginx over
//! TLS (a self-signed certificate made here) and with prior knowledge on a plain port logs
//! each request with its protocol and connection; a small server written here with the `h2`
//! crate resets streams, sends GOAWAY and holds its flow-control window shut. The tests
//! compare what the servers saw with the rows chorus reported.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chorus::stats::{FailureKind, RunResult};
use h2::Reason;

use crate::util::nginx::{Http2, Nginx};
use crate::util::{chorus, chorus_blocking, output_dir};

/// A self-signed certificate for 127.0.0.1 and its key, as PEM files in `dir`.
fn certificate(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

/// One iteration per user (the think after its last request is pacing, skipped at the stop):
/// a page, four assets at once, and one request pinned to HTTP/1.1.
fn browsing(host: &str, http: &str) -> String {
    format!(
        "host: {host}\n{http}flows:\n  - name: browse\n    steps:\n      - get: /\n      - repeat: 4\n        parallel: 4\n        steps:\n          - get: /asset\n      - get: /big\n      - get: /old\n        http: 1.1\n      - think: 10m\n"
    )
}

fn run(dir: &Path, users: &str, extra: &[&str]) -> RunResult {
    let mut args = vec![
        "run",
        "s.yaml",
        "--headless",
        "-q",
        "-u",
        users,
        "-r",
        "100",
        "-t",
        "1s",
        "--json",
        "run.json",
    ];
    args.extend(extra);
    let output = chorus(&args, dir);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    RunResult::from_json(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap()
}

/// (connection, request line) of each request nginx served.
fn served_by(nginx: &Nginx) -> Vec<(String, String)> {
    nginx
        .access_log()
        .iter()
        .map(|line| {
            let connection = line.split(' ').nth(1).unwrap_or_default().to_owned();
            let request = line.split('"').nth(1).unwrap_or_default().to_owned();
            (connection, request)
        })
        .collect()
}

#[test]
fn https_takes_http2_by_alpn_with_one_connection_per_user() {
    let dir = output_dir("http2_tls");
    std::fs::create_dir_all(dir.join("nginx")).unwrap();
    let (cert, key) = certificate(&dir.join("nginx"));
    let tls = Http2::Tls {
        cert: &cert,
        key: &key,
    };
    let nginx = Nginx::start_http2(&dir.join("nginx"), true, None, tls);
    std::fs::write(dir.join("s.yaml"), browsing(&nginx.url(""), "")).unwrap();
    let result = run(&dir, "3", &["--insecure"]);
    let served = served_by(&nginx);
    assert_eq!(served.len(), 3 * 7, "{served:#?}");
    assert_eq!(result.total.requests, served.len() as u64);
    assert_eq!(result.total.failures, 0, "{:#?}", result.entries);
    let mut http2_connections = BTreeSet::new();
    for (connection, request) in &served {
        if request.starts_with("GET /old ") {
            assert_eq!(request, "GET /old HTTP/1.1");
        } else {
            assert!(request.ends_with(" HTTP/2.0"), "{request}");
            http2_connections.insert(connection.clone());
        }
    }
    // The assets of a `parallel:` block went as streams on their user's one connection.
    assert_eq!(http2_connections.len(), 3, "{served:#?}");

    // `http: 1.1` for the whole scenario: only HTTP/1.1 is offered, and nginx speaks it.
    let dir = output_dir("http2_tls_forced_1");
    std::fs::create_dir_all(dir.join("nginx")).unwrap();
    let (cert, key) = certificate(&dir.join("nginx"));
    let tls = Http2::Tls {
        cert: &cert,
        key: &key,
    };
    let nginx = Nginx::start_http2(&dir.join("nginx"), true, None, tls);
    std::fs::write(dir.join("s.yaml"), browsing(&nginx.url(""), "http: 1.1\n")).unwrap();
    let result = run(&dir, "2", &["--insecure"]);
    let served = served_by(&nginx);
    assert_eq!(served.len(), 2 * 7);
    assert_eq!(result.total.requests, served.len() as u64);
    assert_eq!(result.total.failures, 0, "{:#?}", result.entries);
    assert!(
        served.iter().all(|(_, line)| line.ends_with(" HTTP/1.1")),
        "{served:#?}"
    );
}

#[test]
fn http2_flag_speaks_prior_knowledge_on_a_plain_port() {
    let dir = output_dir("http2_prior_knowledge");
    let nginx = Nginx::start_http2(&dir.join("nginx"), true, None, Http2::PriorKnowledge);
    let scenario = browsing(&nginx.url(""), "").replace("        http: 1.1\n", "");
    std::fs::write(dir.join("s.yaml"), scenario).unwrap();
    let result = run(&dir, "2", &["--http2"]);
    let served = served_by(&nginx);
    assert_eq!(served.len(), 2 * 7, "{served:#?}");
    assert_eq!(result.total.requests, served.len() as u64);
    assert_eq!(result.total.failures, 0, "{:#?}", result.entries);
    assert!(
        served.iter().all(|(_, line)| line.ends_with(" HTTP/2.0")),
        "{served:#?}"
    );
}

/// `--http2` reaches worker processes (`--processes`), which load the scenario from the
/// master's bundle: nginx on an h2c-only port logs each request as HTTP/2.0.
#[test]
fn http2_flag_reaches_worker_processes() {
    let dir = output_dir("http2_processes");
    let nginx = Nginx::start_http2(&dir.join("nginx"), true, None, Http2::PriorKnowledge);
    let scenario = browsing(&nginx.url(""), "").replace("        http: 1.1\n", "");
    std::fs::write(dir.join("s.yaml"), scenario).unwrap();
    let result = run(&dir, "4", &["--http2", "--processes", "2"]);
    let served = served_by(&nginx);
    assert_eq!(served.len(), 4 * 7, "{served:#?}");
    assert_eq!(result.total.requests, served.len() as u64);
    assert_eq!(result.total.failures, 0, "{:#?}", result.entries);
    assert!(
        served.iter().all(|(_, line)| line.ends_with(" HTTP/2.0")),
        "{served:#?}"
    );
}

/// An h2c server (the `h2` crate's): `/reset` resets its stream, `/upload` never reads its
/// body (its flow-control window stays shut) and never answers. Counts the requests it got.
async fn misbehaving_server() -> (std::net::SocketAddr, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let counted = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = counted.clone();
            tokio::spawn(async move {
                let Ok(mut connection) = h2::server::handshake(stream).await else {
                    return;
                };
                // Kept until the connection ends: a dropped one would reset its stream.
                let mut held = Vec::new();
                while let Some(Ok((request, mut respond))) = connection.accept().await {
                    seen.fetch_add(1, Ordering::Relaxed);
                    if request.uri().path() == "/reset" {
                        respond.send_reset(Reason::INTERNAL_ERROR);
                    }
                    held.push((request, respond));
                }
            });
        }
    });
    (addr, seen)
}

/// What [`going_away_server`] does with each request.
#[derive(Clone, Copy, PartialEq)]
enum Away {
    /// A GOAWAY covering none of the client's streams (last stream 0, ENHANCE_YOUR_CALM); the
    /// connection stays open.
    KeepOpen,
    /// The same, and the connection closed right after it, as servers do.
    Close,
    /// A GOAWAY whose last stream is the request's own, with an error (INTERNAL_ERROR), and
    /// the connection closed before any answer: the request died with the connection.
    CoverAndClose,
}

/// An h2c server that answers each request (each HEADERS frame) with a GOAWAY as `away` says,
/// written frame by frame: the `h2` crate's server only sends a GOAWAY that covers the streams
/// it accepted. Counts the requests it got.
async fn going_away_server(away: Away) -> (std::net::SocketAddr, Arc<AtomicU64>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let counted = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let seen = counted.clone();
            tokio::spawn(async move {
                let mut preface = [0u8; 24];
                if stream.read_exact(&mut preface).await.is_err() {
                    return;
                }
                // An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
                let _ = stream.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await;
                let mut head = [0u8; 9];
                while stream.read_exact(&mut head).await.is_ok() {
                    let length = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
                    let mut payload = vec![0u8; length];
                    if stream.read_exact(&mut payload).await.is_err() {
                        return;
                    }
                    if head[3] == 1 {
                        seen.fetch_add(1, Ordering::Relaxed);
                        // GOAWAY: length 8, type 7, stream 0; last stream, code.
                        let mut goaway = vec![0, 0, 8, 7, 0, 0, 0, 0, 0];
                        if away == Away::CoverAndClose {
                            goaway.extend(&head[5..9]);
                            goaway.extend(2u32.to_be_bytes());
                        } else {
                            goaway.extend(0u32.to_be_bytes());
                            goaway.extend(0xbu32.to_be_bytes());
                        }
                        let _ = stream.write_all(&goaway).await;
                        if away != Away::KeepOpen {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_goaways_and_stalls_are_their_own_failure_kinds() {
    let (addr, seen) = misbehaving_server().await;
    let servers = [Away::KeepOpen, Away::Close, Away::CoverAndClose];
    let mut going_away = Vec::new();
    for away in servers {
        going_away.push(going_away_server(away).await);
    }
    let upload = "x".repeat(200_000);
    let cases = [
        (
            "get: /reset",
            FailureKind::StreamReset,
            "reset the HTTP/2 stream (INTERNAL_ERROR)",
        ),
        (
            "get: /goaway",
            FailureKind::GoAway,
            "sent GOAWAY (ENHANCE_YOUR_CALM)",
        ),
        (
            "get: /goaway-and-close",
            FailureKind::GoAway,
            "sent GOAWAY (ENHANCE_YOUR_CALM)",
        ),
        (
            "get: /goaway-covering-and-close",
            FailureKind::GoAway,
            "sent GOAWAY (INTERNAL_ERROR",
        ),
        (
            &*format!("post: /upload\n        body: {upload}"),
            FailureKind::FlowControlStall,
            "did not open its HTTP/2 flow-control window",
        ),
    ];
    for (index, (step, kind, says)) in cases.into_iter().enumerate() {
        let dir = output_dir(&format!("http2_failure_{index}"));
        let (addr, seen) = match step {
            "get: /goaway" => (going_away[0].0, &going_away[0].1),
            "get: /goaway-and-close" => (going_away[1].0, &going_away[1].1),
            "get: /goaway-covering-and-close" => (going_away[2].0, &going_away[2].1),
            _ => (addr, &seen),
        };
        let scenario = format!(
            "host: http://{addr}\nhttp: 2\ntimeouts:\n  request: 1s\nflows:\n  - steps:\n      - {step}\n      - think: 10m\n"
        );
        std::fs::write(dir.join("s.yaml"), scenario).unwrap();
        let before = seen.load(Ordering::Relaxed);
        let args = ["run", "s.yaml", "--headless", "-q", "-u", "1", "-t", "1s"];
        let mut args: Vec<String> = args.map(str::to_owned).to_vec();
        args.extend(["--json".to_owned(), "run.json".to_owned()]);
        let output = chorus_blocking(args, dir.clone()).await;
        let text =
            std::fs::read_to_string(dir.join("run.json")).unwrap_or_else(|_| panic!("{output:?}"));
        let result = RunResult::from_json(&text).unwrap();
        let got = seen.load(Ordering::Relaxed) - before;
        assert!(got >= 1);
        assert_eq!(result.total.requests, got, "{:#?}", result.entries);
        assert_eq!(result.total.failures, got, "{:#?}", result.entries);
        let failures: Vec<_> = result
            .entries
            .iter()
            .flat_map(|entry| &entry.failures_by_kind)
            .collect();
        assert_eq!(failures.len(), 1, "{failures:#?}");
        assert_eq!(failures[0].kind, kind, "{failures:#?}");
        assert!(failures[0].message.contains(says), "{failures:#?}");
    }
}
