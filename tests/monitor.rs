//! `--monitor`: the demo app in a process of its own, watched while chorus loads it. The
//! CPU the JSON result says the app used is judged against what the kernel says it used.

use std::process::Command;
use std::time::Duration;

use crate::util::apps::{free_port, wait_for_http};
use crate::util::tools::Process;
use crate::util::{chorus, output_dir};

/// The CPU ticks (`USER_HZ`) a process has used: utime + stime of `/proc/PID/stat`.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn the_app_s_cpu_in_the_result_is_what_the_kernel_counted() {
    let dir = output_dir("monitor_app_cpu");
    let port = free_port();
    let mut app = Process::spawn(
        "chorus demo --serve-only",
        Command::new(env!("CARGO_BIN_EXE_chorus"))
            .args([
                "demo",
                "--serve-only",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .current_dir(&dir)
            .stdout(std::process::Stdio::null()),
    );
    wait_for_http(&mut app, port, "/", Duration::from_secs(30));
    let pid = app.child.id();
    let before = cpu_ticks(pid);
    let output = chorus(
        &[
            "run",
            "--url",
            &format!("http://127.0.0.1:{port}/"),
            "--headless",
            "-u",
            "20",
            "-t",
            "4s",
            "--monitor",
            &format!("process:{pid}"),
            "--monitor",
            "host",
            "--json",
            "run.json",
            "--html",
            "run.html",
            "--threshold",
            "host.memory<100%",
        ],
        &dir,
    );
    let after = cpu_ticks(pid);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&format!("process:{pid}.cpu")), "{stdout}");

    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    let series = |name: &str| -> Vec<(u64, f64)> {
        result["monitors"]["series"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| serde_json::from_value(s["points"].clone()).unwrap())
            .unwrap_or_else(|| panic!("no series {name} in {}", result["monitors"]))
    };
    let cpu = series(&format!("process:{pid}.cpu"));
    assert!(cpu.len() >= 3, "{cpu:?}");
    // Each point is a second's CPU in percent of a core: their sum is the CPU time of the
    // seconds sampled, which lie within the run; the kernel counted the whole run.
    let ticks_per_second = 100.0;
    let sampled_ticks: f64 =
        cpu.iter().map(|(_, percent)| percent / 100.0).sum::<f64>() * ticks_per_second;
    let counted = (after - before) as f64;
    assert!(counted > 0.0, "the app used no CPU under load");
    assert!(
        sampled_ticks <= counted * 1.1 + 2.0 && sampled_ticks >= counted * 0.4,
        "the series says {sampled_ticks:.0} ticks, the kernel counted {counted} over the run: {cpu:?}"
    );
    assert!(
        series(&format!("process:{pid}.memory"))
            .iter()
            .all(|(_, bytes)| *bytes > 1e6)
    );
    assert!(
        series("host.cpu")
            .iter()
            .all(|(_, percent)| (0.0..=100.0).contains(percent))
    );
    assert!(!series("chorus.cpu").is_empty());
    let html = std::fs::read_to_string(dir.join("run.html")).unwrap();
    let system = &html[html.find("<h2>System</h2>").expect("a System section")..];
    assert!(system.contains(&format!("process:{pid} (%)")), "{system}");
    assert!(system.contains("host (MiB/s)"), "{system}");
}

#[test]
fn a_threshold_on_a_monitor_fails_the_run() {
    // This test process holds memory; no process uses less than 1 KiB.
    let dir = output_dir("monitor_threshold");
    let pid = std::process::id().to_string();
    let output = chorus(
        &[
            "run",
            "--url",
            "http://127.0.0.1:9/",
            "--headless",
            "-u",
            "1",
            "-t",
            "2s",
            "--monitor",
            &format!("process:{pid}"),
            "--threshold",
            &format!("process:{pid}.memory<1KiB"),
        ],
        &dir,
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("FAIL  process:{pid}.memory<1KiB  (observed ")),
        "{stdout}"
    );
}

#[test]
fn a_monitor_that_cannot_watch_is_refused_before_any_request() {
    let dir = output_dir("monitor_refused");
    let output = chorus(
        &[
            "run",
            "--url",
            "http://127.0.0.1:9/",
            "--headless",
            "-t",
            "2s",
            "--monitor",
            "process:4294967294",
        ],
        &dir,
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--monitor process:4294967294: no process has PID 4294967294"),
        "{stderr}"
    );
    let output = chorus(
        &[
            "run",
            "--url",
            "http://127.0.0.1:9/",
            "--headless",
            "--monitor",
            "proc:1",
        ],
        &dir,
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("expected process:PID, process:NAME or host"),
        "{stderr}"
    );
}
