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

use std::process::{Command, Output};

const CONNECTIONS: u32 = 50;

/// CPU seconds (user + system) of this process's children that were waited for so far
/// (`cutime` and `cstime` in /proc/self/stat, in clock ticks of 10 ms).
fn children_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |index: usize| fields.get(index).and_then(|f| f.parse::<f64>().ok());
    // cutime and cstime are fields 16 and 17 of the line, 14 and 15 after the name.
    ticks(13).unwrap_or(0.0) / 100.0 + ticks(14).unwrap_or(0.0) / 100.0
}

/// Runs a generator to its end and returns its output and the CPU time it used.
fn timed(command: &mut Command) -> (Output, f64) {
    let before = children_cpu_seconds();
    let output = command.output().expect("the generator runs");
    (output, children_cpu_seconds() - before)
}

/// What one turn of a generator did.
#[derive(Default, Clone, Copy)]
struct Turn {
    requests: f64,
    seconds: f64,
    cpu_seconds: f64,
    failures: f64,
}

impl std::ops::AddAssign for Turn {
    fn add_assign(&mut self, other: Turn) {
        self.requests += other.requests;
        self.seconds += other.seconds;
        self.cpu_seconds += other.cpu_seconds;
        self.failures += other.failures;
    }
}

impl Turn {
    fn rate(&self) -> f64 {
        self.requests / self.seconds.max(0.001)
    }

    fn cpu_us_per_request(&self) -> f64 {
        self.cpu_seconds * 1e6 / self.requests.max(1.0)
    }
}

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
            let elapsed = rest.split(',').next()?.trim();
            let elapsed = match elapsed.strip_suffix("ms") {
                Some(ms) => ms.parse::<f64>().ok()? / 1000.0,
                None => elapsed.strip_suffix('s')?.parse::<f64>().ok()?,
            };
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

fn chorus(url: &str, seconds: u64, json: &std::path::Path) -> Turn {
    let (chorus, cpu_seconds) = timed(
        Command::new("taskset")
            .args([
                "-c",
                "0",
                env!("CARGO_BIN_EXE_chorus"),
                "run",
                "--headless",
                "-q",
            ])
            .args(["--url", url, "--workers", "1"])
            .args(["-u", &CONNECTIONS.to_string(), "-r", "1000"])
            .arg("-t")
            .arg(format!("{seconds}s"))
            .arg("--json")
            .arg(json),
    );
    assert!(
        chorus.status.success(),
        "chorus failed: {}",
        String::from_utf8_lossy(&chorus.stderr)
    );
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).expect("chorus wrote its JSON"))
            .expect("chorus's JSON parses");
    let start = result["meta"]["start_unix_ms"].as_f64().unwrap_or(0.0);
    let end = result["meta"]["end_unix_ms"].as_f64().unwrap_or(0.0);
    Turn {
        requests: result["total"]["requests"].as_f64().unwrap_or(0.0),
        seconds: (end - start) / 1000.0,
        cpu_seconds,
        failures: result["total"]["failures"].as_f64().unwrap_or(0.0),
    }
}

fn main() {
    let setting = |name: &str, default: u64| -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or(default)
    };
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
        let c = chorus(&url, turn_seconds, &json);
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
