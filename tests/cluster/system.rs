//! What a distributed run watches and how it ends, with `--processes 2` against the demo app:
//! each worker's own CPU and memory reach the master's result (judged against what the test
//! reads of the worker processes in /proc), `--monitor` is sampled under the master, and
//! `--iterations` ends the run when every worker's users have run theirs (judged by the demo
//! app's counts).

use std::collections::BTreeMap;
use std::time::Duration;

use chorus::demo::AppOptions;

use super::processes::children_of;
use super::{demo_cluster, read_result};
use crate::util::process::{Chorus, until};
use crate::util::{demo_app, demo_stats, output_dir};

/// What the test read of one worker process: its CPU time (clock ticks) and resident memory
/// (KiB) at each look.
#[derive(Debug, Default)]
struct Seen {
    cpu_ticks: u64,
    rss_kib: Vec<u64>,
}

/// utime + stime of `/proc/PID/stat` and VmRSS of `/proc/PID/status` (None: it is gone).
fn read_proc(pid: u32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After the name: state is field 3, utime 14 and stime 15 (1-based, of the whole line).
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some((ticks, rss))
}

fn clock_ticks() -> f64 {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_send_their_cpu_and_memory_and_the_master_samples_the_monitors() {
    let dir = output_dir("cluster_system");
    let (server, _app, scenario, users, host) = demo_cluster(&dir, 8).await;
    let watched = format!("process:{}", std::process::id());
    let run = Chorus::start(
        &[
            "run",
            &scenario,
            "--data",
            &users,
            "-H",
            &host,
            "--headless",
            "-u",
            "4",
            "-r",
            "4",
            "-t",
            "6s",
            "--processes",
            "2",
            "--monitor",
            "host",
            "--monitor",
            &watched,
            "--json",
            "run.json",
            "--html",
            "run.html",
            "--threshold",
            &format!("{watched}.memory<64GiB"),
            "--threshold",
            "worker:process-2.memory<64GiB",
        ],
        &dir,
        None,
    );
    let pid = run.pid();
    let mut workers = Vec::new();
    until("two worker processes", Duration::from_secs(60), || {
        workers = children_of(pid);
        workers.len() == 2
    })
    .await;
    // Read the workers' /proc as long as they run (a bounded poll, not a wait for time).
    let mut seen: BTreeMap<u32, Seen> = BTreeMap::new();
    until(
        "the worker processes to exit",
        Duration::from_secs(90),
        || {
            let mut alive = false;
            for worker in &workers {
                if let Some((ticks, rss)) = read_proc(*worker) {
                    alive = true;
                    let entry = seen.entry(*worker).or_default();
                    entry.cpu_ticks = ticks;
                    entry.rss_kib.push(rss);
                }
            }
            !alive
        },
    )
    .await;
    let ended = run.finish(Duration::from_secs(60), 4 << 20).await;
    assert_eq!(ended.code, Some(0), "{}", ended.stderr);
    let result = read_result(&dir.join("run.json"));
    let stats = demo_stats(&host).await;
    assert_eq!(stats["requests_total"], result.total.requests);

    let series = |name: &str| {
        result
            .monitors
            .series
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| {
                let names: Vec<&str> = result.monitors.series.iter().map(|s| &*s.name).collect();
                panic!("no series {name} in {names:?}")
            })
    };
    // The monitors, sampled by the master each second of the run.
    for name in ["host.cpu", &format!("{watched}.memory")] {
        assert!(series(name).points.len() >= 3, "{name}: {:?}", series(name));
    }
    // Each worker's own: the test's processes are process-1 and process-2, in some order,
    // so each series is judged against both workers' readings.
    let ticks = clock_ticks();
    let most_cpu_seconds = seen
        .values()
        .map(|s| s.cpu_ticks as f64 / ticks)
        .fold(0.0, f64::max);
    let (least_rss, most_rss) = seen
        .values()
        .flat_map(|s| s.rss_kib.iter().map(|kib| *kib as f64 * 1024.0))
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    for number in 1..=2 {
        let cpu = series(&format!("worker:process-{number}.cpu"));
        let memory = series(&format!("worker:process-{number}.memory"));
        assert!(cpu.points.len() >= 3, "{cpu:?}");
        assert!(memory.points.len() >= 3, "{memory:?}");
        // One point a second at most, in order.
        assert!(cpu.points.windows(2).all(|w| w[0].0 < w[1].0), "{cpu:?}");
        // CPU: some was used, and the seconds sampled add up to no more CPU time than the
        // process had used in all (plus one second's rounding).
        let cpu_seconds: f64 = cpu.points.iter().map(|(_, v)| v / 100.0).sum();
        assert!(cpu_seconds > 0.0, "{cpu:?}");
        assert!(
            cpu_seconds <= most_cpu_seconds + 0.5,
            "{cpu_seconds} CPU seconds reported, /proc says at most {most_cpu_seconds}: {cpu:?}"
        );
        // Memory: within a factor of two of what /proc showed while it ran.
        for (_, bytes) in &memory.points {
            assert!(
                *bytes >= least_rss / 2.0 && *bytes <= most_rss * 2.0,
                "{bytes} against /proc's {least_rss}..{most_rss}"
            );
        }
    }
    // The HTML report charts them, a chart per worker.
    let html = std::fs::read_to_string(dir.join("run.html")).unwrap();
    for number in 1..=2 {
        assert!(
            html.contains(&format!("worker:process-{number} (%)")),
            "no CPU chart for process-{number}"
        );
        assert!(
            html.contains(&format!("worker:process-{number} (MiB)")),
            "no memory chart for process-{number}"
        );
    }
    // The terminal's summary shows them beside the monitors, and the request phases.
    assert!(
        ended.stdout.contains("worker:process-1.memory"),
        "{}",
        ended.stdout
    );
    assert!(ended.stdout.contains("Request phases"), "{}", ended.stdout);
    // Thresholds on the monitors and on a worker's own series are judged on the master's
    // result (they read values: a series without any fails).
    for threshold in [
        format!("PASS  {watched}.memory<64GiB  (observed "),
        "PASS  worker:process-2.memory<64GiB  (observed ".to_owned(),
    ] {
        assert!(ended.stdout.contains(&threshold), "{}", ended.stdout);
    }
    assert!(ended.stdout.contains("ttfb ......."), "{}", ended.stdout);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iterations_run_on_every_worker_and_the_run_ends_when_all_are_done() {
    const USERS: u64 = 5;
    const ITERATIONS: u64 = 3;
    let dir = output_dir("cluster_iterations");
    let (server, _app) = demo_app(AppOptions::default()).await;
    let scenario = dir.join("scenario.yaml");
    std::fs::write(
        &scenario,
        format!(
            "host: {}\n\
             on_start:\n  - get: /teacher\n\
             flows:\n  - name: poll\n    steps:\n      - get: /api/v2/capacity\n      - get: /student\n\
             on_stop:\n  - get: /\n",
            server.url()
        ),
    )
    .unwrap();
    // No -t: the run must end by itself (the test's patience is a hang guard).
    let run = Chorus::start(
        &[
            "run",
            scenario.to_str().unwrap(),
            "--headless",
            "-q",
            "-u",
            &USERS.to_string(),
            "-r",
            "10",
            "--iterations",
            &ITERATIONS.to_string(),
            "--processes",
            "2",
            "--json",
            "run.json",
        ],
        &dir,
        None,
    );
    let ended = run.finish(Duration::from_secs(90), 4 << 20).await;
    assert_eq!(ended.code, Some(0), "{}", ended.stderr);
    assert!(
        ended
            .stderr
            .contains("every worker's users ran their 3 iteration(s)"),
        "{}",
        ended.stderr
    );
    let stats = demo_stats(&server.url()).await;
    let count = |endpoint: &str| stats["endpoints"][endpoint]["200"].as_u64().unwrap_or(0);
    assert_eq!(count("GET /teacher"), USERS, "{stats}");
    assert_eq!(count("GET /api/v2/capacity"), USERS * ITERATIONS, "{stats}");
    assert_eq!(count("GET /student"), USERS * ITERATIONS, "{stats}");
    assert_eq!(count("GET /"), USERS, "{stats}");
    let result = read_result(&dir.join("run.json"));
    assert_eq!(result.total.requests, USERS * (2 + 2 * ITERATIONS));
    server.shutdown().await;
}

#[test]
fn a_monitor_pid_that_does_not_exist_is_refused_before_a_distributed_run() {
    let dir = output_dir("cluster_monitor_refused");
    for way in [&["--processes", "2"][..], &["--master"][..]] {
        let mut args = vec![
            "run",
            "--url",
            "http://127.0.0.1:1/",
            "--headless",
            "-t",
            "1s",
            "--monitor",
            "process:4294967294",
        ];
        args.extend_from_slice(way);
        let output = crate::util::chorus(&args, &dir);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{way:?}: {stderr}");
        assert!(
            stderr.contains("--monitor process:4294967294: no process has PID"),
            "{way:?}: {stderr}"
        );
        // Refused before anything listened or started.
        assert!(!stderr.contains("workers join with"), "{stderr}");
    }
}

/// One frame (4-byte length and body) from a blocking socket, decoded.
fn read_message(stream: &mut std::net::TcpStream) -> chorus::cluster::protocol::ToWorker {
    use std::io::Read as _;
    let mut length = [0u8; 4];
    stream.read_exact(&mut length).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(length) as usize];
    stream.read_exact(&mut body).unwrap();
    serde_json::from_slice(&body).unwrap()
}

/// A worker whose CPU stays above 90 % of its core: the master says so at once, and the
/// summary, the JSON result and the HTML report say for how long. The worker is this test,
/// speaking the protocol over a real socket, so its CPU is what it says (a real one's would
/// depend on what else the machine runs).
#[test]
fn a_worker_short_of_cpu_is_said_in_the_terminal_the_json_and_the_report() {
    use chorus::cluster::auth::VERSION;
    use chorus::cluster::protocol::{Hello, PROTOCOL, ProcessLoad, ToMaster, ToWorker, encode};
    use std::io::Write as _;

    let dir = output_dir("cluster_saturated_worker");
    std::fs::write(
        dir.join("s.yaml"),
        "host: http://127.0.0.1:9\nflows:\n  - name: a\n    steps:\n      - get: /\n",
    )
    .unwrap();
    let mut master = super::Process::start(
        "master",
        &[
            "run",
            "s.yaml",
            "--headless",
            "-u",
            "1",
            "-t",
            "3s",
            "--master",
            "--master-bind",
            "127.0.0.1:0",
            "--json",
            "run.json",
            "--html",
            "run.html",
        ],
        &dir,
    );
    let address = super::master_address(&mut master);
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let send = |stream: &mut std::net::TcpStream, message: &ToMaster| {
        stream.write_all(&encode(message)).unwrap();
    };
    assert!(matches!(
        read_message(&mut stream),
        ToWorker::Challenge { .. }
    ));
    send(
        &mut stream,
        &ToMaster::Hello(Hello {
            protocol: PROTOCOL,
            version: VERSION.to_owned(),
            name: "busy".to_owned(),
            cores: 1,
            proof: None,
            nonce: "00".repeat(16),
            scenario: None,
        }),
    );
    assert!(matches!(
        read_message(&mut stream),
        ToWorker::Welcome { .. }
    ));
    send(&mut stream, &ToMaster::Ready);
    loop {
        match read_message(&mut stream) {
            ToWorker::Start { .. } => break,
            ToWorker::Heartbeat => {}
            other => panic!("{other:?}"),
        }
    }
    // Three seconds at 99 % of its one core (seconds 0 to 2 are all within the run's reach
    // at its start, so nothing waits for the clock).
    for second in 0..3 {
        let load = ProcessLoad {
            second,
            cpu_percent: 99.0,
            memory_bytes: 20 << 20,
            cores: 1,
        };
        let stats = ToMaster::Stats {
            users: 1,
            seconds: Vec::new(),
            process: Some(load),
        };
        send(&mut stream, &stats);
    }
    let said = master.wait_for("the saturation notice", |l| l.contains("\"busy\" used"));
    assert!(
        said.contains(
            "worker \"busy\" used 99 % CPU (1 core(s)) for 3 s: its latencies from here include its own queueing"
        ),
        "{said}"
    );
    // The run ends at -t: answer the master until it lets the worker go.
    loop {
        match read_message(&mut stream) {
            ToWorker::Stop { .. } => send(
                &mut stream,
                &ToMaster::Finished {
                    seconds: Vec::new(),
                },
            ),
            ToWorker::Quit { .. } => break,
            _ => send(&mut stream, &ToMaster::Heartbeat),
        }
    }
    let (status, output) = master.finish();
    assert!(status.success(), "{output}");
    assert!(
        output.contains("worker \"busy\" was short of CPU for 3 s of this run"),
        "{output}"
    );
    let result = read_result(&dir.join("run.json"));
    assert_eq!(result.monitors.workers_saturated_seconds["busy"], 3);
    assert!(
        result
            .monitors
            .notices
            .iter()
            .any(|n| n.text.contains("\"busy\" used 99 % CPU")),
        "{:?}",
        result.monitors.notices
    );
    let html = std::fs::read_to_string(dir.join("run.html")).unwrap();
    assert!(
        html.contains("worker &quot;busy&quot; was short of CPU for 3 s"),
        "{html}"
    );
}

/// A master's page (`--processes 2 --autostart`): `/api/state` carries each worker's own CPU
/// and memory, and `GET /metrics` the `--monitor` values the master samples.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_masters_page_serves_the_workers_load_and_the_monitors() {
    let dir = output_dir("cluster_system_page");
    let (server, _app, scenario, users, host) = demo_cluster(&dir, 8).await;
    let port = crate::util::free_port().to_string();
    let run = Chorus::start(
        &[
            "run",
            &scenario,
            "--data",
            &users,
            "-H",
            &host,
            "-u",
            "2",
            "-r",
            "2",
            "-t",
            "30s",
            "--processes",
            "2",
            "--monitor",
            "host",
            "--autostart",
            "--autoquit",
            "0",
            "--web-port",
            &port,
        ],
        &dir,
        None,
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (workers, metrics) = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the page never showed both workers' load and the monitors: {}",
            run.stderr_so_far()
        );
        let state = match client.get(format!("{base}/api/state")).send().await {
            Ok(answer) => answer.json::<serde_json::Value>().await.unwrap_or_default(),
            Err(_) => serde_json::Value::Null,
        };
        let workers = state["workers"].as_array().cloned().unwrap_or_default();
        let loaded = workers.len() == 2
            && workers.iter().all(|w| {
                w["cpu_percent"].is_number() && w["memory_bytes"].as_u64() > Some(1 << 20)
            });
        let metrics = match client.get(format!("{base}/metrics")).send().await {
            Ok(answer) => answer.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if loaded && metrics.contains("chorus_monitor{series=\"host.cpu\"") {
            break (workers, metrics);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for worker in &workers {
        assert!(worker["cores"].as_u64() >= Some(1), "{worker}");
        assert_eq!(
            worker["saturated"].as_bool().map(|_| ()),
            Some(()),
            "{worker}"
        );
    }
    assert!(metrics.contains("unit=\"percent\""), "{metrics}");
    run.signal("TERM").await;
    let ended = run.finish(Duration::from_secs(60), 4 << 20).await;
    assert_eq!(ended.code, Some(0), "{}", ended.stderr);
    server.shutdown().await;
}
