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
#[path = "util/resident.rs"]
mod resident;

/// Resident memory (KiB) of a `chorus run` of `users` users, measured after they all
/// started, its thread count, and the requests and failures the run reported.
fn resident_kib(what: &[String], users: u64, dir: &std::path::Path) -> (u64, u64, u64, u64) {
    let json = dir.join(format!("memory-{users}-{}.json", what.len()));
    let run = resident::measure(what, users, &json);
    (run.kib, run.threads, run.requests, run.failures)
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
