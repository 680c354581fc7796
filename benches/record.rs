//! The recorder's overhead on loopback, measured against the same server reached directly in
//! the same run: the latency it adds at p50 (one keep-alive connection, one request at a time)
//! and the throughput through it (several connections, as fast as they go) as a share of
//! direct. Targets: at most 0.3 ms added, at least 50 % of direct.
//!
//! Two throughput measurements:
//!
//! - in one process (a hyper client, the proxy and a hyper origin on one 2-thread runtime):
//!   the proxy does about the work of the client and the origin together, so on a machine
//!   this small the share of direct it can reach is bounded near 50 % before anything is
//!   recorded;
//! - with real processes, as a person uses the recorder: wrk and nginx share core 0 in both
//!   runs, and in the second `chorus record --target NGINX`, on core 1, stands between them.
//!   This is the figure the target is about: how much slower traffic gets when it goes
//!   through the recorder, every exchange recorded (the bench checks the count).
//!
//! Run with `cargo bench --bench record` (release profile; `CHORUS_BENCH_SECS`, default 5, is
//! the length of each process run). Everything is bounded: a fixed number of latency samples
//! and a fixed time per throughput run.

#[path = "../tests/util/nginx.rs"]
#[allow(dead_code, unreachable_pub)]
mod nginx;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

const LATENCY_SAMPLES: usize = 3_000;
const WARMUP: usize = 300;
const CONNECTIONS: usize = 8;
const THROUGHPUT_TIME: Duration = Duration::from_secs(3);
/// A small JSON answer, like the demo app's API.
const BODY: &[u8] = br#"{"gameSessionId":"g1","eventsPeriodSecs":2,"eventsDetailLevel":1}"#;

/// A tiny hyper server answering every request with `BODY`.
async fn origin() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = service_fn(|_request: Request<hyper::body::Incoming>| async {
                    let mut response = Response::new(Full::new(Bytes::from_static(BODY)));
                    response
                        .headers_mut()
                        .insert("content-type", "application/json".parse().unwrap());
                    Ok::<_, Infallible>(response)
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

async fn connect(addr: SocketAddr) -> Sender {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

async fn one(sender: &mut Sender, addr: SocketAddr) {
    sender.ready().await.unwrap();
    let request = Request::builder()
        .uri("/api/v2/data/session/start")
        .header("host", addr.to_string())
        .body(Empty::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body.len(), BODY.len());
}

/// p50 of `samples` sequential requests, in microseconds, after a warm-up.
async fn latency_p50(addr: SocketAddr) -> f64 {
    let mut sender = connect(addr).await;
    for _ in 0..WARMUP {
        one(&mut sender, addr).await;
    }
    let mut times = Vec::with_capacity(LATENCY_SAMPLES);
    for _ in 0..LATENCY_SAMPLES {
        let start = Instant::now();
        one(&mut sender, addr).await;
        times.push(start.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Requests per second over `CONNECTIONS` keep-alive connections for `THROUGHPUT_TIME`.
async fn throughput(addr: SocketAddr) -> f64 {
    let deadline = Instant::now() + THROUGHPUT_TIME;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(addr).await;
            let mut count = 0u64;
            while Instant::now() < deadline {
                one(&mut sender, addr).await;
                count += 1;
            }
            count
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

/// wrk pinned to core 0: requests per second and the request count.
fn wrk(url: &str, seconds: u64) -> (f64, u64) {
    let output = std::process::Command::new("taskset")
        .args(["-c", "0", "wrk", "-t1", &format!("-c{CONNECTIONS}")])
        .arg(format!("-d{seconds}s"))
        .arg(url)
        .output()
        .expect("wrk runs (Debian package wrk)");
    let text = String::from_utf8_lossy(&output.stdout);
    let rate = text
        .lines()
        .find_map(|line| line.strip_prefix("Requests/sec:"))
        .and_then(|rate| rate.trim().parse().ok())
        .unwrap_or_else(|| panic!("no rate in wrk's output:\n{text}"));
    let count = text
        .lines()
        .find_map(|line| line.trim().split_once(" requests in "))
        .and_then(|(count, _)| count.trim().parse().ok())
        .unwrap_or_else(|| panic!("no request count in wrk's output:\n{text}"));
    let errors = text
        .lines()
        .find(|line| line.contains("Non-2xx") || line.contains("Socket errors"));
    assert!(errors.is_none(), "wrk saw errors: {text}");
    (rate, count)
}

/// `chorus record --target TARGET EXTRA` on core 1 with wrk (core 0) through it: (requests
/// per second, requests wrk counted, exchanges the recorder says it recorded).
fn through_recorder(target: &str, extra: &[&str], seconds: u64) -> (f64, u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let port = nginx::free_port();
    let mut recorder = std::process::Command::new("taskset")
        .args(["-c", "1", env!("CARGO_BIN_EXE_chorus"), "record"])
        .args([
            "--target",
            target,
            "--listen",
            &format!("127.0.0.1:{port}"),
            "-o",
        ])
        .arg(dir.path().join("captures"))
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chorus record starts");
    // One line per exchange: read them as they come, or the pipe fills and stalls the proxy.
    let stdout = recorder.stdout.take().unwrap();
    let summary = std::thread::spawn(move || {
        let lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
        lines
            .map_while(Result::ok)
            .filter(|line| line.starts_with("recorded "))
            .last()
            .unwrap_or_default()
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chorus record did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (rate, sent) = wrk(&format!("http://127.0.0.1:{port}/"), seconds);
    let _ = std::process::Command::new("kill")
        .args(["-INT", &recorder.id().to_string()])
        .status();
    let status = recorder.wait().expect("chorus record ends on Ctrl-C");
    let output = summary.join().unwrap();
    assert!(status.success(), "chorus record failed: {output}");
    let recorded = output
        .strip_prefix("recorded ")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|count| count.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no summary from chorus record:\n{output}"));
    (rate, sent, recorded)
}

/// wrk and nginx on core 0, direct, then through `chorus record` on core 1, recording
/// everything and (to show what recording costs) nothing.
fn process_throughput(seconds: u64) {
    let dir = tempfile::tempdir().unwrap();
    let server = nginx::Nginx::start(&dir.path().join("nginx"), false, Some(0));
    let target = server.url("");
    let (direct_rps, _) = wrk(&server.url("/"), seconds);
    let (proxy_rps, sent, recorded) = through_recorder(&target, &[], seconds);
    let (forward_rps, _, nothing) = through_recorder(&target, &["--exclude", ""], seconds);
    assert_eq!(nothing, 0, "--exclude '' records nothing");
    let ratio = proxy_rps / direct_rps;
    println!(
        "throughput with processes (wrk and nginx on core 0, chorus record on core 1; {CONNECTIONS} connections, {seconds} s each):"
    );
    println!("  direct          {direct_rps:>10.0} req/s");
    println!(
        "  through record  {proxy_rps:>10.0} req/s   ({recorded} of {sent} exchanges recorded)"
    );
    println!(
        "  forwarding only {forward_rps:>10.0} req/s   ({:.1} % of direct; nothing recorded)",
        forward_rps / direct_rps * 100.0
    );
    println!(
        "  ratio           {:>9.1} %   (target >= 50 %: {})",
        ratio * 100.0,
        if ratio >= 0.5 { "met" } else { "NOT MET" }
    );
    assert!(
        recorded >= sent,
        "the recorder lost exchanges: {recorded} of {sent}"
    );
}

fn main() {
    let seconds: u64 = std::env::var("CHORUS_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    process_throughput(seconds);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let origin = origin().await;
        let dir = tempfile::tempdir().unwrap();
        let config = chorus::record::RecordConfig::new(chorus::record::RecordOptions {
            target: Some(format!("http://{origin}")),
            listen: "127.0.0.1:0".parse().unwrap(),
            output: dir.path().join("bench.har"),
            ..chorus::record::RecordOptions::default()
        })
        .unwrap();
        let recorder = chorus::record::start(config).await.unwrap();
        let proxy = recorder.local_addr();
        // The same proxy recording nothing: what forwarding alone costs.
        let forward_only = chorus::record::start(
            chorus::record::RecordConfig::new(chorus::record::RecordOptions {
                target: Some(format!("http://{origin}")),
                listen: "127.0.0.1:0".parse().unwrap(),
                output: dir.path().join("nothing.har"),
                exclude: vec![String::new()],
                ..chorus::record::RecordOptions::default()
            })
            .unwrap(),
        )
        .await
        .unwrap();

        // Alternate direct and proxied runs so that drift on the machine hits both.
        let direct_p50 = latency_p50(origin).await;
        let proxy_p50 = latency_p50(proxy).await;
        let direct_p50 = direct_p50.min(latency_p50(origin).await);
        let proxy_p50 = proxy_p50.min(latency_p50(proxy).await);
        let added_ms = (proxy_p50 - direct_p50) / 1000.0;
        println!("latency p50 ({LATENCY_SAMPLES} sequential requests, one keep-alive connection):");
        println!("  direct          {direct_p50:>8.1} µs");
        println!("  through record  {proxy_p50:>8.1} µs");
        println!(
            "  added           {added_ms:>8.3} ms   (target <= 0.300 ms: {})",
            if added_ms <= 0.3 { "met" } else { "NOT MET" }
        );

        let direct_rps = throughput(origin).await;
        let proxy_rps = throughput(proxy).await;
        let forward_rps = throughput(forward_only.local_addr()).await;
        let ratio = proxy_rps / direct_rps;
        println!(
            "throughput in one process ({CONNECTIONS} connections, {} s each):",
            THROUGHPUT_TIME.as_secs()
        );
        println!("  direct          {direct_rps:>10.0} req/s");
        println!("  through record  {proxy_rps:>10.0} req/s");
        println!(
            "  forwarding only {forward_rps:>10.0} req/s   ({:.1} % of direct; nothing recorded)",
            forward_rps / direct_rps * 100.0
        );
        println!(
            "  ratio           {:>9.1} %   (bounded near 50 % in one process: see the top of this file)",
            ratio * 100.0
        );

        forward_only.shutdown().await;
        let summary = recorder.shutdown().await;
        println!(
            "recorded {} exchanges ({} forwarded) to {}",
            summary.exchanges,
            summary.forwarded,
            summary.path.display()
        );
    });
}
