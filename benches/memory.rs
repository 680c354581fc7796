//! Memory: 10,000 users that each GET an nginx endpoint once a second (`chorus run --url
//! --think 1s`); once they are all running, prints chorus's resident memory per user from
//! /proc, absolute and marginal (against a run of 100 users). Target: <= 30 KiB per user.
//! Then the same with a script loaded (`scripts:`), each GET carrying a header a JS function
//! computes (`{{ js.sign(vu, iteration) }}`). Target: <= 12 KiB per user.
//!
//! `cargo bench --bench memory` (CHORUS_BENCH_USERS=10000 by default).

#[path = "../tests/util/nginx.rs"]
#[allow(dead_code, unreachable_pub)]
mod nginx;

use std::process::{Command, Stdio};
use std::time::Duration;

/// Resident memory of a `chorus run` of `users` users, measured after they all started, its
/// thread count, and the requests and failures the run reported.
fn resident_kib(what: &[String], users: u64, dir: &std::path::Path) -> (u64, u64, u64, u64) {
    let json = dir.join(format!("memory-{users}-{}.json", what.len()));
    let spawn_rate = 2000;
    let settle = users / spawn_rate + 6;
    let mut child = Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args(["run", "--headless", "-q"])
        .args(what)
        .args(["-u", &users.to_string(), "-r", &spawn_rate.to_string()])
        .args(["-t", &format!("{}s", settle + 4)])
        .arg("--json")
        .arg(&json)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("chorus runs");
    std::thread::sleep(Duration::from_secs(settle));
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .expect("chorus is still running");
    let kib = |field: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let rss = kib("VmRSS:");
    let threads = kib("Threads:");
    let _ = child.wait();
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap_or_default())
            .unwrap_or_default();
    let count = |field: &str| result["total"][field].as_u64().unwrap_or(0);
    (rss, threads, count("requests"), count("failures"))
}

fn main() {
    let users: u64 = std::env::var("CHORUS_BENCH_USERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let server = nginx::Nginx::start(&dir.path().join("nginx"), false, None);
    let url = server.url("/");
    let plain: Vec<String> = ["--url", &url, "--think", "1s"].map(String::from).into();
    report(&plain, users, dir.path(), "each one GET a second", 30);
    std::fs::write(
        dir.path().join("sign.js"),
        "export function sign(vu, i) { return chorus.hmac_sha256('k', vu + '.' + i); }\n",
    )
    .expect("write the script");
    let scenario = dir.path().join("scripted.yaml");
    std::fs::write(
        &scenario,
        format!(
            "host: {}\nscripts: [sign.js]\nflows:\n  - steps:\n      - get: /\n        headers:\n          X-Signature: \"{{{{ js.sign(vu, iteration) }}}}\"\n      - think: 1s\n",
            url.trim_end_matches('/')
        ),
    )
    .expect("write the scenario");
    let scripted = vec![scenario.display().to_string()];
    report(
        &scripted,
        users,
        dir.path(),
        "with a script, each one signed GET a second",
        12,
    );
}

/// Prints the memory of `users` users and per user, against a run of 100.
fn report(what: &[String], users: u64, dir: &std::path::Path, label: &str, target: u64) {
    let (small, _, _, _) = resident_kib(what, 100, dir);
    let (large, threads, requests, failures) = resident_kib(what, users, dir);
    println!(
        "{users} users, {label} ({threads} threads; {requests} requests, {failures} failures)"
    );
    println!("resident memory      {large:>8} KiB");
    println!(
        "per user (absolute)  {:>8.1} KiB",
        large as f64 / users as f64
    );
    println!(
        "per user (marginal)  {:>8.1} KiB (against 100 users: {small} KiB; target <= {target} KiB)",
        (large.saturating_sub(small)) as f64 / (users - 100) as f64
    );
}
