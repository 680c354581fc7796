//! HTTP/2 throughput and memory: h2load (Debian's `nghttp2-client`) and `chorus run --url
//! --http2` against the same nginx (`listen ... ssl http2`, a self-signed certificate made
//! here), in one invocation, each generator pinned to core 0 with `taskset` and nginx to core
//! 1; 50 connections each, one request at a time per connection (as a user is). Prints each
//! generator's requests per CPU-second and chorus's as a ratio to h2load's (target >= 0.8).
//!
//! Turns alternate, h2load first, as in benches/engine.rs: whatever else runs on the machine
//! falls on both alike. Requests per CPU-second is the figure that counts on a shared machine;
//! the wall-clock rates are printed beside it.
//!
//! Then memory: chorus's resident memory per user (marginal, against 100 users) with
//! CHORUS_BENCH_USERS users (2,000 by default) each sending a GET a second over HTTP/2 on its
//! own TLS connection, against the same over HTTP/1.1 (`http: 1.1`) to the same nginx. Target:
//! the HTTP/2 figure within 1.5x of the HTTP/1.1 one. Sampled twice: a few seconds after the
//! last user started, and CHORUS_BENCH_MEMORY_SECS (60 by default; 0: not) later, which is
//! what a long run settles at (over HTTP/2 the HPACK table of each connection is filled a
//! little more at each response, as nginx sends header fields with incremental indexing).
//!
//! `cargo bench --bench http2` (CHORUS_BENCH_SECS=15, CHORUS_BENCH_ROUNDS=3).

#[path = "../tests/util/nginx.rs"]
#[allow(dead_code, unreachable_pub)]
mod nginx;
#[path = "util/resident.rs"]
mod resident;
#[path = "util/turns.rs"]
#[allow(dead_code)]
mod turns;

use std::path::Path;
use std::process::Command;

use turns::{Turn, setting, timed};

const CONNECTIONS: u32 = 50;

/// h2load's totals: "finished in 5.00s, 1234.5 req/s, ..." and
/// "requests: 6172 total, 6172 started, 6172 done, 6172 succeeded, 0 failed, ...".
fn h2load(url: &str, seconds: u64) -> Turn {
    let (run, cpu_seconds) = timed(
        Command::new("taskset")
            .args(["-c", "0", "h2load", "-t1", "-m1"])
            .arg(format!("-c{CONNECTIONS}"))
            .arg(format!("-D{seconds}"))
            .arg(url),
    );
    let text = String::from_utf8_lossy(&run.stdout);
    let elapsed = text
        .lines()
        .find_map(|line| {
            let rest = line.strip_prefix("finished in ")?;
            turns::seconds_of(rest.split(',').next()?.trim())
        })
        .unwrap_or_else(|| panic!("no time in h2load's output:\n{text}"));
    let count = |word: &str| -> f64 {
        text.lines()
            .find_map(|line| {
                let rest = line.strip_prefix("requests: ")?;
                rest.split(", ").find_map(|part| {
                    let (n, what) = part.split_once(' ')?;
                    (what == word).then(|| n.parse::<f64>().ok()).flatten()
                })
            })
            .unwrap_or_else(|| panic!("no `{word}` count in h2load's output:\n{text}"))
    };
    Turn {
        requests: count("done"),
        seconds: elapsed,
        cpu_seconds,
        failures: count("failed"),
    }
}

/// A self-signed certificate for 127.0.0.1 and its key, as PEM files in `dir`.
fn certificate(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
        .expect("a self-signed certificate");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).expect("write the certificate");
    std::fs::write(&key, made.signing_key.serialize_pem()).expect("write the key");
    (cert, key)
}

fn main() {
    let seconds = setting("CHORUS_BENCH_SECS", 15);
    let rounds = setting("CHORUS_BENCH_ROUNDS", 3);
    let users = setting("CHORUS_BENCH_USERS", 2000).max(200);
    let turn_seconds = (seconds / rounds).max(1);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let nginx_dir = dir.path().join("nginx");
    std::fs::create_dir_all(&nginx_dir).expect("nginx folder");
    let (cert, key) = certificate(&nginx_dir);
    let tls = nginx::Http2::Tls {
        cert: &cert,
        key: &key,
    };
    let server = nginx::Nginx::start_http2(&nginx_dir, false, Some(1), tls);
    let url = server.url("/");
    let json = dir.path().join("chorus.json");

    println!(
        "nginx (ssl http2) on core 1; each generator alone on core 0; {CONNECTIONS} HTTP/2 connections, one stream at a time each, {seconds} s each in {rounds} alternate turns"
    );
    let (mut h2load_total, mut chorus_total) = (Turn::default(), Turn::default());
    for round in 1..=rounds {
        let h = h2load(&url, turn_seconds);
        let c = turns::chorus(
            &url,
            turn_seconds,
            CONNECTIONS,
            &["--http2", "--insecure"],
            &json,
        );
        println!(
            "turn {round}: h2load {:>8.0}/s {:>8.0}/CPU-s, chorus {:>8.0}/s {:>8.0}/CPU-s, ratio per CPU-s {:.2}",
            h.rate(),
            h.per_cpu_second(),
            c.rate(),
            c.per_cpu_second(),
            c.per_cpu_second() / h.per_cpu_second().max(0.001)
        );
        h2load_total += h;
        chorus_total += c;
    }
    println!(
        "h2load  {:>10.0} requests/s  {:>10.0} requests per CPU-second ({} failed)",
        h2load_total.rate(),
        h2load_total.per_cpu_second(),
        h2load_total.failures
    );
    println!(
        "chorus  {:>10.0} requests/s  {:>10.0} requests per CPU-second ({} failures)",
        chorus_total.rate(),
        chorus_total.per_cpu_second(),
        chorus_total.failures
    );
    println!(
        "ratio of requests per CPU-second (chorus / h2load) {:.2} (target >= 0.80); of rates {:.2}",
        chorus_total.per_cpu_second() / h2load_total.per_cpu_second().max(0.001),
        chorus_total.rate() / h2load_total.rate().max(0.001)
    );
    let later = std::env::var("CHORUS_BENCH_MEMORY_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    memory(dir.path(), &url, users, later);
}

/// Memory per HTTP/2 user against per HTTP/1.1 user, both over TLS to the same nginx: a few
/// seconds after the last user started, and `later` seconds after that (what a long run
/// settles at: each connection's HPACK table fills up a little more at each response).
fn memory(dir: &Path, url: &str, users: u64, later: u64) {
    let per_user = |http: &str| -> Vec<(f64, u64, u64, u64)> {
        let scenario = dir.join(format!("memory-{http}.yaml"));
        std::fs::write(
            &scenario,
            format!(
                "host: {}\nhttp: {http}\nflows:\n  - steps:\n      - get: /\n      - think: 1s\n",
                url.trim_end_matches('/')
            ),
        )
        .expect("write the scenario");
        let args = [scenario.display().to_string(), "--insecure".to_owned()];
        let json = dir.join(format!("memory-{http}.json"));
        let small = resident::measure_over(&args, 100, &json, later);
        let large = resident::measure_over(&args, users, &json, later);
        small
            .iter()
            .zip(&large)
            .map(|(small, large)| {
                let marginal = large.kib.saturating_sub(small.kib) as f64 / (users - 100) as f64;
                (marginal, large.requests, large.failures, large.threads)
            })
            .collect()
    };
    let http1 = per_user("1.1");
    let http2 = per_user("2");
    let settle = users / 2000 + 6;
    for (
        index,
        ((http1, requests1, failures1, threads1), (http2, requests2, failures2, threads2)),
    ) in http1.into_iter().zip(http2).enumerate()
    {
        let at = settle + if index == 0 { 0 } else { later };
        println!(
            "{users} users over TLS, each one GET a second, {at} s in (marginal resident memory against 100 users):"
        );
        println!(
            "HTTP/1.1 {http1:>8.1} KiB per user ({requests1} requests, {failures1} failures, {threads1} threads)"
        );
        println!(
            "HTTP/2   {http2:>8.1} KiB per user ({requests2} requests, {failures2} failures, {threads2} threads)"
        );
        println!(
            "ratio    {:>8.2} (HTTP/2 / HTTP/1.1; target <= 1.50)",
            http2 / http1.max(0.001)
        );
    }
}
