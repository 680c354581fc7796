//! The memory benches' measurement: a `chorus run` of some users, its resident memory and
//! thread count read from /proc once they have all started, and what the run reported.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// What one measured run gave.
pub(crate) struct Resident {
    pub(crate) kib: u64,
    pub(crate) threads: u64,
    pub(crate) requests: u64,
    pub(crate) failures: u64,
}

/// Runs `chorus run --headless <args>` with `users` users spawned at 2,000/s, samples /proc
/// a few seconds after the last one started, and lets the run end by itself; `json` is where
/// its result goes.
#[allow(dead_code, reason = "not every bench samples once")]
pub(crate) fn measure(args: &[String], users: u64, json: &Path) -> Resident {
    measure_over(args, users, json, 0).remove(0)
}

/// As `measure`, sampling once a few seconds after the last user started and, when `later`
/// is not 0, again `later` seconds after that (memory a long run settles at: buffers that are
/// written a little further at each request become resident only over time). The requests and
/// failures are the whole run's, in each sample.
pub(crate) fn measure_over(args: &[String], users: u64, json: &Path, later: u64) -> Vec<Resident> {
    let spawn_rate = 2000;
    let settle = users / spawn_rate + 6;
    let mut child = Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args(["run", "--headless", "-q"])
        .args(args)
        .args(["-u", &users.to_string(), "-r", &spawn_rate.to_string()])
        .args(["-t", &format!("{}s", settle + later + 4)])
        .arg("--json")
        .arg(json)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("chorus runs");
    let mut samples = Vec::new();
    for wait in [settle, later] {
        if wait == 0 {
            continue;
        }
        std::thread::sleep(Duration::from_secs(wait));
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
            .expect("chorus is still running");
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        samples.push((field("VmRSS:"), field("Threads:")));
    }
    let _ = child.wait();
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap_or_default())
            .unwrap_or_default();
    let count = |field: &str| result["total"][field].as_u64().unwrap_or(0);
    samples
        .into_iter()
        .map(|(kib, threads)| Resident {
            kib,
            threads,
            requests: count("requests"),
            failures: count("failures"),
        })
        .collect()
}
