//! Issue 15 part 2: where each request's time went. An HTTPS server on 127.0.0.1 waits
//! before the first byte of each answer and again before the rest of its body, and counts the
//! connections it accepted; `chorus run` against it writes per-name phases to the JSON and
//! HTML reports that reflect those delays, add up to the latency, count one connect and one
//! TLS handshake per connection the server saw, and a threshold on a phase decides the exit
//! status.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chorus::stats::{EntryStats, PhaseTimes, RunResult};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use crate::util::{chorus_blocking, output_dir};

/// How long the server waits before the first byte of each answer.
const FIRST_BYTE: Duration = Duration::from_millis(60);
/// How long it waits between the first and the second half of each body.
const REST: Duration = Duration::from_millis(30);

/// What the server saw.
#[derive(Default)]
struct Seen {
    connections: AtomicU64,
    requests: AtomicU64,
}

/// An HTTPS server (self-signed for 127.0.0.1) that answers every request after
/// [`FIRST_BYTE`] with a head and half a body, then the other half after [`REST`]; `/close`
/// answers `connection: close` and closes, so the next request opens a new connection.
async fn slow_server() -> (u16, Arc<Seen>) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    let counts = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let seen = counts.clone();
            // Each half of an answer goes out when written (no Nagle delay on the second).
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                seen.connections.fetch_add(1, Ordering::SeqCst);
                let mut head = Vec::new();
                let mut buffer = [0u8; 4096];
                loop {
                    let Ok(read) = tls.read(&mut buffer).await else {
                        return;
                    };
                    if read == 0 {
                        return;
                    }
                    head.extend_from_slice(&buffer[..read]);
                    if !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        continue;
                    }
                    seen.requests.fetch_add(1, Ordering::SeqCst);
                    let close = head.starts_with(b"GET /close ");
                    head.clear();
                    tokio::time::sleep(FIRST_BYTE).await;
                    let connection = if close { "close" } else { "keep-alive" };
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: 8\r\nconnection: {connection}\r\n\r\nhalf"
                    );
                    if tls.write_all(answer.as_bytes()).await.is_err() || tls.flush().await.is_err()
                    {
                        return;
                    }
                    tokio::time::sleep(REST).await;
                    if tls.write_all(b"done").await.is_err() || tls.flush().await.is_err() {
                        return;
                    }
                    if close {
                        let _ = tls.shutdown().await;
                        return;
                    }
                }
            });
        }
    });
    (port, seen)
}

fn phase<'a>(entry: &'a EntryStats, name: &str) -> &'a PhaseTimes {
    entry
        .phases
        .get(name)
        .unwrap_or_else(|| panic!("no {name} phase in {entry:#?}"))
}

fn micros(duration: Duration) -> u64 {
    duration.as_micros() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phases_reflect_the_servers_delays_add_up_and_decide_thresholds() {
    let _turn = crate::util::TIMING.lock().await;
    let dir = output_dir("phases_add_up");
    let (port, seen) = slow_server().await;
    let url = |path: &str| format!("https://127.0.0.1:{port}{path}");
    let run = |thresholds: &[&str], report: &str| {
        let mut args: Vec<String> = ["run", "--url", &url("/kept"), "--url", &url("/close")]
            .iter()
            .map(|a| a.to_string())
            .collect();
        args.extend(
            [
                "--insecure",
                "--headless",
                "-q",
                "-u",
                "2",
                "-r",
                "20",
                "-t",
                "2s",
                "--json",
                &format!("{report}.json"),
                "--html",
                &format!("{report}.html"),
            ]
            .map(str::to_owned),
        );
        for threshold in thresholds {
            args.extend(["--threshold".to_owned(), threshold.to_string()]);
        }
        chorus_blocking(args, dir.clone())
    };

    // A first byte that can never come within 1 ms: the run fails by its threshold.
    let output = run(&["ttfb.p95<1ms", "/kept: download.p50<30s"], "strict").await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let text = std::fs::read_to_string(dir.join("strict.json")).unwrap();
    let result = RunResult::from_json(&text).unwrap();
    let passed: Vec<(&str, bool)> = (result.verdicts.iter())
        .map(|v| (v.expression.as_str(), v.passed))
        .collect();
    assert_eq!(
        passed,
        [("ttfb.p95<1ms", false), ("/kept: download.p50<30s", true)]
    );

    // Every request was answered (the server's count), each with its phases.
    let total = &result.total;
    assert_eq!(total.failures, 0, "{:#?}", result.entries);
    assert_eq!(total.requests, seen.requests.load(Ordering::SeqCst));
    for entry in &result.entries {
        let (ttfb, download) = (phase(entry, "ttfb"), phase(entry, "download"));
        assert_eq!(
            (ttfb.count, download.count),
            (entry.requests, entry.requests)
        );
        // The server's delays, each in its own phase.
        assert!(
            ttfb.min_us >= micros(FIRST_BYTE),
            "{}: {ttfb:?}",
            entry.name
        );
        // The first byte is seen when the client's task reads it: on a loaded machine that
        // can be late, which moves time from the download into the ttfb (their sum stays).
        // So the download's bound is on its median, with room for that lateness.
        assert!(
            download.percentile_us(50.0) >= micros(REST) / 2,
            "{}: {download:?}",
            entry.name
        );
        assert!(
            entry.min_us >= micros(FIRST_BYTE + REST),
            "{}: latency min {} µs",
            entry.name,
            entry.min_us
        );
        // The latency is the time to first byte plus the download, to the µs per request
        // (each is counted in whole µs) ...
        let phases_sum = ttfb.sum_us + download.sum_us;
        assert!(
            entry.latency_sum_us.abs_diff(phases_sum) <= entry.requests,
            "{}: latency {} µs in all, ttfb + download {phases_sum} µs",
            entry.name,
            entry.latency_sum_us
        );
        // ... and the histograms agree within their precision (3 significant digits).
        let mean = |times: &PhaseTimes| times.histogram.inner().mean();
        let (histogram_sum, latency) =
            (mean(ttfb) + mean(download), entry.histogram.inner().mean());
        assert!(
            (histogram_sum - latency).abs() <= latency * 0.002,
            "{}: histogram means ttfb + download {histogram_sum} µs, latency {latency} µs",
            entry.name
        );
    }
    // A connect, a TLS handshake (and a name lookup) for each connection the server accepted,
    // none for a request on a kept connection: /close ends each connection, so each
    // iteration opens one, and its second request goes on it.
    let connections = seen.connections.load(Ordering::SeqCst);
    for name in ["dns", "connect", "tls"] {
        assert_eq!(phase(total, name).count, connections, "{name}");
    }
    assert!(
        connections > 1 && connections < total.requests,
        "{connections} connections for {} requests",
        total.requests
    );
    let kept = (result.entries.iter())
        .find(|e| e.name.ends_with("/close"))
        .unwrap();
    assert!(kept.phases.connect.is_none(), "{:?}", kept.phases.connect);

    let html = std::fs::read_to_string(dir.join("strict.html")).unwrap();
    assert!(html.contains("Where the time went"), "no phase table");
    assert!(html.contains("<th>Time to first byte</th>"));

    // Loose thresholds on phases, one per name: the run passes.
    let loose = [
        "ttfb.p95<30s",
        "/close: download.p99<30s",
        "connect.max<30s",
    ];
    let output = run(&loose, "loose").await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
}
