//! Throughput: wrk (Debian) and `chorus run --url` against the same nginx endpoint, in one
//! invocation, each generator pinned to one core with `taskset` and nginx to the other; 50
//! connections each. Prints both rates and their ratio (target: chorus >= 0.8 x wrk), and
//! each generator's CPU time per request.
//!
//! Each generator runs for CHORUS_BENCH_SECS in all (15 by default), in CHORUS_BENCH_ROUNDS
//! turns of whole seconds (3 by default) taken alternately, wrk first: on a machine shared with other work,
//! whatever else runs on core 0 then falls on both generators alike rather than on whichever
//! ran during it. The rates are each generator's requests over its time in all; the CPU time
//! per request moves much less with the machine's load than the rates do.
//!
//! `cargo bench --bench engine`

#[path = "../tests/util/nginx.rs"]
#[allow(dead_code, unreachable_pub)]
mod nginx;
#[path = "util/turns.rs"]
#[allow(dead_code)]
mod turns;

use std::process::Command;

use turns::{Turn, setting, timed};

const CONNECTIONS: u32 = 50;

fn wrk(url: &str, seconds: u64) -> Turn {
    let (wrk, cpu_seconds) = timed(
        Command::new("taskset")
            .args(["-c", "0", "wrk", "-t1", &format!("-c{CONNECTIONS}")])
            .arg(format!("-d{seconds}s"))
            .arg(url),
    );
    let text = String::from_utf8_lossy(&wrk.stdout);
    // "  123456 requests in 5.00s, 17.31MB read"
    let (requests, seconds) = text
        .lines()
        .find_map(|line| {
            let (count, rest) = line.trim().split_once(" requests in ")?;
            let elapsed = turns::seconds_of(rest.split(',').next()?.trim())?;
            Some((count.parse::<f64>().ok()?, elapsed))
        })
        .unwrap_or_else(|| panic!("no request count in wrk's output:\n{text}"));
    Turn {
        requests,
        seconds,
        cpu_seconds,
        failures: 0.0,
    }
}

fn main() {
    let seconds = setting("CHORUS_BENCH_SECS", 15);
    let rounds = setting("CHORUS_BENCH_ROUNDS", 3);
    let turn_seconds = (seconds / rounds).max(1);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let server = nginx::Nginx::start(&dir.path().join("nginx"), false, Some(1));
    let url = server.url("/");
    let json = dir.path().join("chorus.json");

    println!(
        "nginx on core 1; each generator alone on core 0; {CONNECTIONS} connections, {seconds} s each in {rounds} alternate turns"
    );
    let (mut wrk_total, mut chorus_total) = (Turn::default(), Turn::default());
    for round in 1..=rounds {
        let w = wrk(&url, turn_seconds);
        let c = turns::chorus(&url, turn_seconds, CONNECTIONS, &[], &json);
        println!(
            "turn {round}: wrk {:>8.0}/s, chorus {:>8.0}/s, ratio {:.2}",
            w.rate(),
            c.rate(),
            c.rate() / w.rate().max(0.001)
        );
        wrk_total += w;
        chorus_total += c;
    }
    let (wrk_us, chorus_us) = (
        wrk_total.cpu_us_per_request(),
        chorus_total.cpu_us_per_request(),
    );
    println!(
        "wrk     {:>12.0} requests/s   {wrk_us:>6.2} us CPU per request",
        wrk_total.rate()
    );
    println!(
        "chorus  {:>12.0} requests/s   {chorus_us:>6.2} us CPU per request ({} failures)",
        chorus_total.rate(),
        chorus_total.failures
    );
    println!(
        "ratio   {:>12.2} (target >= 0.80)",
        chorus_total.rate() / wrk_total.rate().max(0.001)
    );
    println!(
        "ratio of CPU per request (wrk / chorus) {:.2}: the rate ratio when core 0 is the limit",
        wrk_us / chorus_us.max(0.001)
    );
}
