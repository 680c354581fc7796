//! How the throughput benches (engine: wrk, http2: h2load) measure a load generator against
//! chorus: turns of each run as child processes, each turn's requests, seconds, failures and
//! the CPU time the child used (from this process's `/proc/self/stat`), chorus's turn read
//! from its `--json` result, and the `CHORUS_BENCH_*` settings.

use std::path::Path;
use std::process::{Command, Output};

/// A `CHORUS_BENCH_*` setting: the environment's positive number, or `default`.
pub(crate) fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

/// CPU seconds (user + system) of this process's children that were waited for so far
/// (`cutime` and `cstime` in /proc/self/stat, in clock ticks of 10 ms).
pub(crate) fn children_cpu_seconds() -> f64 {
    stat_cpu_seconds(13)
}

/// CPU seconds (user + system) this process has used so far (`utime` and `stime`).
pub(crate) fn own_cpu_seconds() -> f64 {
    stat_cpu_seconds(11)
}

/// The two clock-tick fields of /proc/self/stat from `first` (counted after the command
/// name), in seconds.
fn stat_cpu_seconds(first: usize) -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |index: usize| fields.get(index).and_then(|f| f.parse::<f64>().ok());
    ticks(first).unwrap_or(0.0) / 100.0 + ticks(first + 1).unwrap_or(0.0) / 100.0
}

/// Runs a generator to its end and returns its output and the CPU time it used.
pub(crate) fn timed(command: &mut Command) -> (Output, f64) {
    let before = children_cpu_seconds();
    let output = command.output().expect("the generator runs");
    (output, children_cpu_seconds() - before)
}

/// A generator's elapsed time as wrk and h2load print it (`5.00s`, `12.5ms`), in seconds.
pub(crate) fn seconds_of(text: &str) -> Option<f64> {
    match text.strip_suffix("ms") {
        Some(ms) => Some(ms.parse::<f64>().ok()? / 1000.0),
        None => text.strip_suffix('s')?.parse::<f64>().ok(),
    }
}

/// What one turn (or all turns) of a generator did.
#[derive(Default, Clone, Copy)]
pub(crate) struct Turn {
    pub(crate) requests: f64,
    pub(crate) seconds: f64,
    pub(crate) cpu_seconds: f64,
    pub(crate) failures: f64,
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
    pub(crate) fn rate(&self) -> f64 {
        self.requests / self.seconds.max(0.001)
    }

    pub(crate) fn per_cpu_second(&self) -> f64 {
        self.requests / self.cpu_seconds.max(0.001)
    }

    pub(crate) fn cpu_us_per_request(&self) -> f64 {
        self.cpu_seconds * 1e6 / self.requests.max(1.0)
    }
}

/// One turn of `chorus run --url URL` pinned to core 0 (`taskset`), one engine worker, as
/// many users as the generator's connections, for `seconds`, with `options` (`--http2`); its
/// result read from the `--json` it writes to `json`.
pub(crate) fn chorus(url: &str, seconds: u64, users: u32, options: &[&str], json: &Path) -> Turn {
    let (run, cpu_seconds) = timed(
        Command::new("taskset")
            .args([
                "-c",
                "0",
                env!("CARGO_BIN_EXE_chorus"),
                "run",
                "--headless",
                "-q",
            ])
            .args(options)
            .args(["--url", url, "--workers", "1"])
            .args(["-u", &users.to_string(), "-r", "1000"])
            .arg("-t")
            .arg(format!("{seconds}s"))
            .arg("--json")
            .arg(json),
    );
    assert!(
        run.status.success(),
        "chorus failed: {}",
        String::from_utf8_lossy(&run.stderr)
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
