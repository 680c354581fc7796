//! Throughput: wrk (Debian) and `chorus run --url` against the same nginx endpoint, in one
//! invocation, each generator pinned to one core with `taskset` and nginx to the other; 50
//! connections each. Prints both rates and their ratio (target: chorus >= 0.8 x wrk).
//!
//! `cargo bench --bench engine` (CHORUS_BENCH_SECS=15 by default).

#[path = "../tests/util/nginx.rs"]
#[allow(dead_code, unreachable_pub)]
mod nginx;

use std::process::Command;

const CONNECTIONS: u32 = 50;

fn main() {
    let seconds: u64 = std::env::var("CHORUS_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let server = nginx::Nginx::start(&dir.path().join("nginx"), false, Some(1));
    let url = server.url("/");

    let wrk = Command::new("taskset")
        .args(["-c", "0", "wrk", "-t1", &format!("-c{CONNECTIONS}")])
        .arg(format!("-d{seconds}s"))
        .arg(&url)
        .output()
        .expect("wrk runs (Debian package wrk)");
    let wrk_text = String::from_utf8_lossy(&wrk.stdout);
    let wrk_rate: f64 = wrk_text
        .lines()
        .find_map(|line| line.strip_prefix("Requests/sec:"))
        .and_then(|rate| rate.trim().parse().ok())
        .unwrap_or_else(|| panic!("no rate in wrk's output:\n{wrk_text}"));

    let json = dir.path().join("chorus.json");
    let chorus = Command::new("taskset")
        .args([
            "-c",
            "0",
            env!("CARGO_BIN_EXE_chorus"),
            "run",
            "--headless",
            "-q",
        ])
        .args(["--url", &url, "--workers", "1"])
        .args(["-u", &CONNECTIONS.to_string(), "-r", "1000"])
        .arg("-t")
        .arg(format!("{seconds}s"))
        .arg("--json")
        .arg(&json)
        .output()
        .expect("chorus runs");
    assert!(
        chorus.status.success(),
        "chorus failed: {}",
        String::from_utf8_lossy(&chorus.stderr)
    );
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("chorus wrote its JSON"))
            .expect("chorus's JSON parses");
    let requests = result["total"]["requests"].as_f64().unwrap_or(0.0);
    let failures = result["total"]["failures"].as_f64().unwrap_or(0.0);
    let start = result["meta"]["start_unix_ms"].as_f64().unwrap_or(0.0);
    let end = result["meta"]["end_unix_ms"].as_f64().unwrap_or(0.0);
    let chorus_rate = requests / ((end - start) / 1000.0).max(0.001);

    println!(
        "nginx on core 1; each generator alone on core 0; {CONNECTIONS} connections, {seconds} s"
    );
    println!("wrk     {wrk_rate:>12.0} requests/s");
    println!("chorus  {chorus_rate:>12.0} requests/s ({failures} failures)");
    println!("ratio   {:>12.2} (target >= 0.80)", chorus_rate / wrk_rate);
}
