//! Scale: 1,000, 10,000 and 100,000 users from one machine, each keeping its connection to
//! nginx (several workers, `reuseport`) and sending a GET after each think time (1 s; 10 s for
//! 100,000, so the run stays short), through `chorus run --processes auto` (one process
//! while the open-files limit holds the users, more beyond; loopback source addresses spread
//! by chorus). At each size, over the seconds after every user started, prints:
//!
//! - resident memory per user (chorus's processes summed, from /proc), target <= 10 KiB at
//!   100,000;
//! - CPU per request (user + system time of chorus's processes over the window, divided by
//!   the requests the report counts in it), target at 100,000 within 1.5x of 1,000's;
//! - requests delivered vs intended (users / think time), target within 1 %.
//!
//! `cargo bench --bench scale`; `CHORUS_BENCH_SIZES=1000,10000` picks sizes and
//! `CHORUS_BENCH_THINK=10` sets every size's think time in seconds. The 100,000 case
//! needs a quiet machine: nginx and chorus together hold 200,000 sockets.

#[path = "../tests/util/nginx.rs"]
#[allow(dead_code, unreachable_pub)]
mod nginx;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Users started per second.
const SPAWN_RATE: u64 = 2000;
/// The seconds measured once every user runs.
const WINDOW: u64 = 20;

/// One size: users and their think time.
struct Size {
    users: u64,
    think: u64,
}

/// What one size measured.
struct Measured {
    processes: usize,
    rss_kib: u64,
    cpu_seconds: f64,
    requests: u64,
    failures: u64,
    window_seconds: u64,
}

fn main() {
    let sizes: Vec<u64> = std::env::var("CHORUS_BENCH_SIZES")
        .ok()
        .map(|text| {
            text.split(',')
                .filter_map(|n| n.trim().parse().ok())
                .collect()
        })
        .unwrap_or_else(|| vec![1_000, 10_000, 100_000]);
    let think: Option<u64> = std::env::var("CHORUS_BENCH_THINK")
        .ok()
        .and_then(|text| text.trim().parse().ok());
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut first_cpu = None;
    for users in sizes {
        let size = Size {
            users,
            think: think.unwrap_or(if users >= 100_000 { 10 } else { 1 }),
        };
        // Each nginx worker holds up to 19,000 connections; a margin for reconnections.
        let workers = (users * 12 / 10).div_ceil(19_000).max(2) as usize;
        let server =
            nginx::Nginx::start_scaled(&dir.path().join(format!("nginx-{users}")), workers);
        let measured = run(&size, &server.url("/"), dir.path());
        drop(server);
        let intended = size.users as f64 / size.think as f64 * measured.window_seconds as f64;
        let per_request_us = measured.cpu_seconds * 1e6 / measured.requests.max(1) as f64;
        let base = *first_cpu.get_or_insert(per_request_us);
        println!(
            "{users} users, think {}s, {} process(es), nginx {workers} workers",
            size.think, measured.processes
        );
        println!(
            "  resident memory per user  {:>8.1} KiB ({} KiB in all; target <= 10 KiB at 100,000)",
            measured.rss_kib as f64 / users as f64,
            measured.rss_kib
        );
        println!(
            "  CPU per request           {per_request_us:>8.1} µs ({:.2}x the first size's; target <= 1.5x)",
            per_request_us / base
        );
        println!(
            "  delivered / intended      {:>8} / {:.0} = {:.2} % over {} s ({} failures; target >= 99 %)",
            measured.requests,
            intended,
            measured.requests as f64 * 100.0 / intended,
            measured.window_seconds,
            measured.failures
        );
    }
}

/// Runs one size and measures it over [`WINDOW`] seconds after the ramp (and one think
/// time, so every user is in its rhythm).
fn run(size: &Size, url: &str, dir: &Path) -> Measured {
    let json = dir.join(format!("scale-{}.json", size.users));
    let ramp = size.users.div_ceil(SPAWN_RATE) + size.think + 3;
    let run_time = ramp + WINDOW + 3;
    let mut child = Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args(["run", "--headless", "-q", "--url", url])
        .args(["--think", &format!("{}s", size.think)])
        .args(["-u", &size.users.to_string(), "-r", &SPAWN_RATE.to_string()])
        .args(["-t", &format!("{run_time}s"), "--processes", "auto"])
        .arg("--json")
        .arg(&json)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("chorus runs");
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(ramp));
    let pid = child.id();
    let (cpu_before, _, _) = processes_now(pid);
    let from = unix_seconds();
    let until_window_end = Duration::from_secs(ramp + WINDOW).saturating_sub(started.elapsed());
    std::thread::sleep(until_window_end);
    let (cpu_after, rss_kib, processes) = processes_now(pid);
    let to = unix_seconds();
    let _ = child.wait();
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap_or_default())
            .unwrap_or_default();
    let points = result["history"].as_array().cloned().unwrap_or_default();
    let in_window = |field: &str| -> u64 {
        points
            .iter()
            .filter(|point| {
                let second = point["unix_seconds"].as_u64().unwrap_or(0);
                (from..to).contains(&second)
            })
            .map(|point| point[field].as_u64().unwrap_or(0))
            .sum()
    };
    Measured {
        processes,
        rss_kib,
        cpu_seconds: cpu_after - cpu_before,
        requests: in_window("requests"),
        failures: in_window("failures"),
        window_seconds: to - from,
    }
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// CPU seconds (user + system) and resident KiB of `pid` and the worker processes it started,
/// and how many processes that is.
fn processes_now(pid: u32) -> (f64, u64, usize) {
    let mut pids = vec![pid];
    let wanted = format!("\0--parent-pid\0{pid}\0");
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&wanted) {
            pids.push(child);
        }
    }
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    let mut cpu = 0.0;
    let mut rss = 0;
    for pid in &pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after "(name)": state is the 3rd field, utime the 14th, stime the 15th.
        let rest: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let field = |n: usize| {
            rest.get(n - 3)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        cpu += (field(14) + field(15)) / ticks;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        rss += status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
    }
    (cpu, rss, pids.len())
}
