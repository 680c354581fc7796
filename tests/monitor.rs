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
        stderr.contains("expected process:PID, process:NAME, host or prometheus:URL"),
        "{stderr}"
    );
}

/// Debian's node_exporter (`prometheus-node-exporter`, installed by .ci/run).
const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";

/// `MemTotal` of `/proc/meminfo` in bytes: what node_exporter reports as
/// `node_memory_MemTotal_bytes`.
fn mem_total_bytes() -> f64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let line = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .unwrap();
    let kib: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024.0
}

#[test]
fn node_exporter_is_scraped_and_a_failing_endpoint_is_a_gap_not_a_failure() {
    let dir = output_dir("monitor_node_exporter");
    let port = free_port();
    let mut exporter = Process::spawn(
        "prometheus-node-exporter",
        Command::new(NODE_EXPORTER)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    );
    wait_for_http(&mut exporter, port, "/metrics", Duration::from_secs(30));
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    let closed = free_port();
    let label = format!("prometheus:127.0.0.1:{port}");
    let output = chorus(
        &[
            "run",
            "--url",
            &format!("http://127.0.0.1:{port}/"),
            "--think",
            "100ms",
            "--headless",
            "-u",
            "1",
            "-t",
            "4s",
            "--monitor",
            &format!("prometheus:{metrics}"),
            "--monitor",
            &format!(
                "prometheus:{metrics}#node_memory_MemTotal_bytes,promhttp_metric_handler_requests_*"
            ),
            // node_exporter's own front page (HTML) and a port nobody listens on.
            "--monitor",
            &format!("prometheus:http://127.0.0.1:{port}/"),
            "--monitor",
            &format!("prometheus:http://127.0.0.1:{closed}/metrics"),
            "--threshold",
            &format!("{label}.memory<100%"),
            "--json",
            "run.json",
        ],
        &dir,
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
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
    // The selection: a gauge as node_exporter read it from the kernel.
    let total = series(&format!("{label}.node_memory_MemTotal_bytes"));
    assert!(total.len() >= 2, "{total:?}");
    assert!(
        total.iter().all(|(_, v)| *v == mem_total_bytes()),
        "{total:?}"
    );
    // A counter as a rate, judged by the exporter's own count of its scrapes: the two
    // monitors of /metrics scrape it once a second each.
    let scrapes = series(&format!(
        "{label}.promhttp_metric_handler_requests_total{{code=\"200\"}}"
    ));
    assert!(scrapes.len() >= 2, "{scrapes:?}");
    assert!(
        scrapes.iter().all(|(_, v)| (0.5..=4.0).contains(v)),
        "{scrapes:?}"
    );
    // The defaults for node_exporter, named like the host monitor's.
    for (name, low, high) in [("cpu", 0.0, 100.0), ("memory", 0.0, 100.0)] {
        let points = series(&format!("{label}.{name}"));
        assert!(!points.is_empty());
        assert!(
            points.iter().all(|(_, v)| (low..=high).contains(v)),
            "{name}: {points:?}"
        );
    }
    assert!(!series(&format!("{label}.load1")).is_empty());
    let notices: Vec<&str> = result["monitors"]["notices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap())
        .collect();
    let said = |needle: &str| notices.iter().filter(|n| n.contains(needle)).count();
    // Each failure said once, however many seconds it lasted.
    assert_eq!(
        said(&format!(
            "prometheus:127.0.0.1:{closed}: scrape of http://127.0.0.1:{closed}/metrics failed: cannot connect"
        )),
        1,
        "{notices:?}"
    );
    assert_eq!(
        said(&format!(
            "prometheus:127.0.0.1:{port}/: scrape of http://127.0.0.1:{port}/ failed: not Prometheus text format"
        )),
        1,
        "{notices:?}"
    );
    assert!(
        stdout.contains(&format!(
            "scrape of http://127.0.0.1:{closed}/metrics failed"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("PASS  {label}.memory<100%")),
        "{stdout}"
    );
}

#[test]
fn the_scenario_s_monitors_are_watched_like_monitor_flags() {
    // No machine uses less than 0.001 % of its memory: the threshold fails with a value,
    // which only a host monitor started from the file can have given.
    let dir = output_dir("monitor_from_scenario");
    std::fs::write(
        dir.join("scenario.yaml"),
        "host: http://127.0.0.1:9\nflows:\n  - steps:\n      - get: /\n      - think: 100ms\nmonitors:\n  - host\nthresholds:\n  - host.memory<0.001%\n",
    )
    .unwrap();
    let output = chorus(
        &["run", "scenario.yaml", "--headless", "-u", "1", "-t", "2s"],
        &dir,
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("FAIL  host.memory<0.001%  (observed "),
        "{stdout}"
    );
}
