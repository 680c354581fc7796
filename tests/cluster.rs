//! Integration tests for `cluster` (see tests/integration.rs): a master and workers as real
//! `chorus` processes on 127.0.0.1 (the master on port 0, its address read from what it
//! prints) against the demo app in this process, which reports what it saw. The helpers are
//! here with the runs' own tests; `deploy` checks the Kubernetes manifests, `netns` cuts a
//! worker's link, `page` drives a master's page in Chromium.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chorus::demo::{AppOptions, Seed};
use chorus::stats::RunResult;

use crate::util::{demo_app, output_dir};

mod deploy;
mod hostile;
mod netns;
mod open_model;
mod page;
mod processes;
mod seconds;
mod system;

const DEMO_SCENARIO: &str = include_str!("../demo/scenario.yaml");

/// Longest any of these runs may take before the test gives up (a bound, not a measurement).
const PATIENCE: Duration = Duration::from_secs(90);

/// A `chorus` process whose output lines (stdout and stderr) the test reads as they come.
struct Process {
    name: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Process {
    fn start(name: &str, args: &[&str], dir: &Path) -> Process {
        let mut command = Command::new(env!("CARGO_BIN_EXE_chorus"));
        command.args(args).current_dir(dir);
        Process::spawn(name, command)
    }

    fn spawn(name: &str, mut command: Command) -> Process {
        let mut child = command
            .env("NO_COLOR", "1")
            .env_remove("CHORUS_CLUSTER_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("{name} does not start: {err}"));
        let (sender, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for stream in [
            Box::new(stdout) as Box<dyn std::io::Read + Send>,
            Box::new(stderr),
        ] {
            let sender = sender.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Process {
            name: name.to_owned(),
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line for which `wanted` holds, and returns it.
    fn wait_for(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if wanted(&line) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "{} never printed {what}; it printed:\n{}",
                    self.name,
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Waits for the process to exit and returns its status and everything it printed.
    fn finish(mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "{} did not exit; it printed:\n{}",
                    self.name,
                    self.seen.join("\n")
                );
            }
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
                self.seen.push(line);
            }
        };
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.seen.push(line);
        }
        (status, self.seen.join("\n"))
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The master's address from its "workers join with" line.
fn master_address(master: &mut Process) -> String {
    let line = master.wait_for("the address workers join", |l| {
        l.contains("workers join with: chorus worker --master ")
    });
    line.rsplit(' ').next().unwrap().to_owned()
}

fn worker(dir: &Path, master: &str, name: &str, extra: &[&str]) -> Process {
    let json = format!("{name}.json");
    let mut args = vec![
        "worker", "--master", master, "--name", name, "--json", &json,
    ];
    args.extend_from_slice(extra);
    Process::start(name, &args, dir)
}

fn read_result(path: &Path) -> RunResult {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    RunResult::from_json(&text).unwrap()
}

/// The demo app (5 classes of `students`, events every second) with the demo scenario and
/// its users written into `dir`: the server, the app, and `chorus run`'s scenario, `--data`
/// and `-H` arguments.
async fn demo_cluster(
    dir: &Path,
    students: u32,
) -> (
    chorus::demo::Server,
    chorus::demo::App,
    String,
    String,
    String,
) {
    let (server, app) = demo_app(AppOptions {
        events_period_secs: 1,
        seed: Some(Seed {
            classes: 5,
            students,
        }),
    })
    .await;
    let scenario = dir.join("scenario.yaml");
    std::fs::write(&scenario, DEMO_SCENARIO).unwrap();
    let users = dir.join("users.csv");
    app.write_users_csv(&users).unwrap();
    let host = server.url();
    (
        server,
        app,
        scenario.display().to_string(),
        format!("users={}", users.display()),
        host,
    )
}

/// (requests, p50, p99) per request name, and for `Aggregated`.
fn percentiles(result: &RunResult) -> BTreeMap<String, (u64, u64, u64)> {
    let mut rows: BTreeMap<String, (u64, u64, u64)> = result
        .entries
        .iter()
        .map(|e| {
            (
                format!("{} {}", e.method, e.name),
                (e.requests, e.percentile_us(50.0), e.percentile_us(99.0)),
            )
        })
        .collect();
    let total = &result.total;
    rows.insert(
        "Aggregated".to_owned(),
        (
            total.requests,
            total.percentile_us(50.0),
            total.percentile_us(99.0),
        ),
    );
    rows
}

/// The app's request count per endpoint, keyed like the scenario's request names.
fn app_counts(stats: &serde_json::Value) -> BTreeMap<String, u64> {
    stats["endpoints"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(key, statuses)| {
            let name = key.replace("{game_id}", "[gameId]");
            let count = statuses
                .as_object()
                .unwrap()
                .values()
                .filter_map(|n| n.as_u64())
                .sum();
            (name, count)
        })
        .collect()
}

fn result_counts(result: &RunResult) -> BTreeMap<String, u64> {
    result
        .entries
        .iter()
        .map(|e| (format!("{} {}", e.method, e.name), e.requests))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_and_three_workers_count_what_the_app_saw_and_merge_exactly() {
    let dir = output_dir("cluster_three_workers");
    let (server, _app, scenario, users, host) = demo_cluster(&dir, 20).await;
    let mut master = Process::start(
        "master",
        &[
            "run",
            &scenario,
            "--data",
            &users,
            "-H",
            &host,
            "--headless",
            "-u",
            "30",
            "-r",
            "30",
            "-t",
            "6s",
            "--master",
            "--expect-workers",
            "3",
            "--master-bind",
            "127.0.0.1:0",
            "--json",
            "run.json",
            "--csv",
            "out/run",
            "--html",
            "run.html",
            "-q",
        ],
        &dir,
    );
    let address = master_address(&mut master);
    let workers: Vec<Process> = (1..=3)
        .map(|i| worker(&dir, &address, &format!("w{i}"), &[]))
        .collect();
    let (status, output) = master.finish();
    assert_eq!(status.code(), Some(0), "{output}");
    for worker in workers {
        let (status, output) = worker.finish();
        assert_eq!(status.code(), Some(0), "{output}");
        assert!(output.contains("running 10 user(s)"), "{output}");
    }

    let result = read_result(&dir.join("run.json"));
    assert_eq!(result.total.failures, 0, "{output}");
    assert!(result.errors.is_empty(), "{:#?}", result.errors);
    assert!(result.total.requests >= 120, "{}", result.total.requests);
    for file in [
        "out/run_stats.csv",
        "out/run_stats_history.csv",
        "out/run_failures.csv",
        "run.html",
    ] {
        assert!(dir.join(file).is_file(), "{file} was not written");
    }

    // What the app saw, endpoint by endpoint.
    let stats = crate::util::demo_stats(&host).await;
    assert_eq!(stats["requests_total"], result.total.requests);
    crate::eqnice!(app_counts(&stats), result_counts(&result));
    // 30 accounts logged in, none logged out by a second login of the same account: no
    // account was used by two workers (or two users).
    assert_eq!(stats["live_sessions"], 30, "{}", stats["live_sessions"]);

    // The merge is exact: the same percentiles as one histogram of every worker's samples.
    let mut union: Option<RunResult> = None;
    for i in 1..=3 {
        let own = read_result(&dir.join(format!("w{i}.json")));
        assert!(own.total.requests > 0);
        match &mut union {
            None => union = Some(own),
            Some(union) => union.merge(&own),
        }
    }
    let union = union.unwrap();
    crate::eqnice!(percentiles(&union), percentiles(&result));
    assert_eq!(union.total.histogram, result.total.histogram);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_is_reported_its_users_move_and_a_new_worker_gets_a_share() {
    let dir = output_dir("cluster_killed_worker");
    let (server, _app, scenario, users, host) = demo_cluster(&dir, 20).await;
    let mut master = Process::start(
        "master",
        &[
            "run",
            &scenario,
            "--data",
            &users,
            "-H",
            &host,
            "--headless",
            "-u",
            "30",
            "-r",
            "30",
            "-t",
            "24s",
            "--master",
            "--expect-workers",
            "3",
            "--master-bind",
            "127.0.0.1:0",
            "--json",
            "run.json",
            "--csv",
            "out/run",
        ],
        &dir,
    );
    let address = master_address(&mut master);
    let mut workers: Vec<Process> = (1..=3)
        .map(|i| worker(&dir, &address, &format!("w{i}"), &[]))
        .collect();
    master.wait_for("every worker at 10 users", |l| {
        l.starts_with("30 users on ") && l.matches("running (10 users").count() == 3
    });
    let mut killed = workers.pop().unwrap();
    killed.kill();
    let missing = master.wait_for("that w3 went missing", |l| l.contains("\"w3\""));
    assert!(missing.contains("went missing"), "{missing}");
    // The next status line has the 30 users on the two others.
    master.wait_for("30 users on the two workers left", |l| {
        l.starts_with("30 users on ")
            && l.matches("running (15 users").count() == 2
            && l.contains("w3 missing (0 users")
    });
    // A worker that joins mid-run gets its share.
    workers.push(worker(&dir, &address, "w4", &[]));
    master.wait_for("w4 with a third of the users", |l| {
        l.starts_with("30 users on ")
            && l.matches("running (10 users").count() == 3
            && l.contains("w4 running (10 users")
    });
    let (status, output) = master.finish();
    assert_eq!(status.code(), Some(0), "{output}");
    let mut survivors = Vec::new();
    for (worker, name) in workers.into_iter().zip(["w1", "w2", "w4"]) {
        let (status, output) = worker.finish();
        assert_eq!(status.code(), Some(0), "{output}");
        survivors.push(read_result(&dir.join(format!("{name}.json"))));
    }

    // The report says so: an exception naming the worker and what it had reported.
    let result = read_result(&dir.join("run.json"));
    let lost = result
        .errors
        .iter()
        .find(|e| e.message.contains("\"w3\"") && e.message.contains("went missing"))
        .unwrap_or_else(|| panic!("no exception about w3: {:#?}", result.errors));
    let exceptions = std::fs::read_to_string(dir.join("out/run_exceptions.csv")).unwrap();
    assert!(exceptions.contains("went missing"), "{exceptions}");
    // Nothing w3 reported before the kill is lost: the total is what the survivors counted
    // (their own results) plus what w3 had reported.
    let reported: u64 = lost
        .message
        .split("; the ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count in {:?}", lost.message));
    assert!(reported > 0, "{}", lost.message);
    let survivors_total: u64 = survivors.iter().map(|r| r.total.requests).sum();
    assert_eq!(result.total.requests, survivors_total + reported);
    // The app saw at least that (w3's last, unreported moment is the only difference).
    let stats = crate::util::demo_stats(&host).await;
    assert!(stats["requests_total"].as_u64().unwrap() >= result.total.requests);
    assert_eq!(result.total.failures, 0, "{output}");
    server.shutdown().await;
}

#[test]
fn wrong_tokens_and_open_binds_are_refused_on_both_sides() {
    let dir = output_dir("cluster_refusals");
    std::fs::write(
        dir.join("s.yaml"),
        "host: http://127.0.0.1:9\nflows:\n  - name: a\n    steps:\n      - get: /\n",
    )
    .unwrap();
    let mut master = Process::start(
        "master",
        &[
            "run",
            "s.yaml",
            "--headless",
            "-u",
            "1",
            "-t",
            "1s",
            "--master",
            "--master-bind",
            "127.0.0.1:0",
            "--cluster-token",
            "right",
        ],
        &dir,
    );
    let address = master_address(&mut master);
    let wrong = worker(&dir, &address, "wrong", &["--cluster-token", "wrong"]);
    let (status, output) = wrong.finish();
    assert_eq!(status.code(), Some(2), "{output}");
    assert!(
        output.contains(&format!(
            "error: the master at {address} refused this worker: worker \"wrong\" has a wrong \
             cluster token; give the master and every worker the same --cluster-token (or CHORUS_CLUSTER_TOKEN)"
        )),
        "{output}"
    );
    let line = master.wait_for("the refusal", |l| l.contains("refused worker"));
    assert!(line.contains("has a wrong cluster token"), "{line}");
    let none = worker(&dir, &address, "none", &[]);
    let (status, output) = none.finish();
    assert_eq!(status.code(), Some(2), "{output}");
    assert!(
        output.contains("has no cluster token but the master requires one"),
        "{output}"
    );
    master.kill();

    let other = dir.join("other.yaml");
    std::fs::write(&other, "host: http://127.0.0.1:9\nflows: []\n").unwrap();
    let mut master = Process::start(
        "master",
        &[
            "run",
            "s.yaml",
            "--headless",
            "-u",
            "1",
            "-t",
            "1s",
            "--master",
            "--master-bind",
            "127.0.0.1:0",
        ],
        &dir,
    );
    let address = master_address(&mut master);
    let pinned = worker(&dir, &address, "pinned", &["--scenario", "other.yaml"]);
    let (status, output) = pinned.finish();
    assert_eq!(status.code(), Some(2), "{output}");
    assert!(
        output.contains("expects the scenario other.yaml"),
        "{output}"
    );
    master.kill();

    let (status, output) = Process::start(
        "open master",
        &[
            "run",
            "s.yaml",
            "--headless",
            "--master",
            "--master-bind",
            "0.0.0.0:0",
        ],
        &dir,
    )
    .finish();
    assert_eq!(status.code(), Some(2), "{output}");
    assert!(
        output.contains("--master-bind 0.0.0.0:0 is not a loopback address"),
        "{output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_loses_its_master_stops_and_joins_the_next_one() {
    let dir = output_dir("cluster_master_lost");
    let (server, _app) = demo_app(AppOptions::default()).await;
    let host = server.url();
    std::fs::write(
        dir.join("s.yaml"),
        format!(
            "host: {host}\nflows:\n  - name: a\n    steps:\n      - get: /api/course\n        \
             expect_status: [401]\n      - think: 100ms\n"
        ),
    )
    .unwrap();
    let master_args = |bind: &str, run_time: &str| -> Vec<String> {
        [
            "run",
            "s.yaml",
            "--headless",
            "-u",
            "2",
            "-r",
            "10",
            "-t",
            run_time,
            "--master",
            "--master-bind",
            bind,
            "--json",
            "run.json",
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let args = master_args("127.0.0.1:0", "60s");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut first = Process::start("first master", &args, &dir);
    let address = master_address(&mut first);
    let mut worker = worker(&dir, &address, "w1", &[]);
    worker.wait_for("its users running", |l| l.contains("running 2 user(s)"));
    first.kill();
    let lost = worker.wait_for("that it lost the master", |l| l.contains("lost the master"));
    assert!(
        lost.contains("stopped the users, waiting to join again"),
        "{lost}"
    );
    let stopped_at = crate::util::demo_stats(&host).await["requests_total"]
        .as_u64()
        .unwrap();

    let args = master_args(&address, "3s");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let second = Process::start("second master", &args, &dir);
    worker.wait_for("that it joined again", |l| l.contains("joined the master"));
    let (status, output) = second.finish();
    assert_eq!(status.code(), Some(0), "{output}");
    let (status, output) = worker.finish();
    assert_eq!(status.code(), Some(0), "{output}");
    let result = read_result(&dir.join("run.json"));
    assert!(result.total.requests > 0, "{output}");
    // The second run's requests are all the app saw after the worker stopped its users.
    let total = crate::util::demo_stats(&host).await["requests_total"]
        .as_u64()
        .unwrap();
    assert_eq!(total - stopped_at, result.total.requests);
    server.shutdown().await;
}

/// Thresholds are evaluated on the merged result, and the master's exit status says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_threshold_crossed_on_the_merged_result_fails_the_master() {
    let dir = output_dir("cluster_thresholds");
    let (server, _app) = demo_app(AppOptions::default()).await;
    // Without a login the course list answers 401: every request fails.
    std::fs::write(
        dir.join("s.yaml"),
        format!(
            "host: {}\nflows:\n  - name: a\n    steps:\n      - get: /api/course\n      - think: 100ms\n",
            server.url()
        ),
    )
    .unwrap();
    let mut master = Process::start(
        "master",
        &[
            "run",
            "s.yaml",
            "--headless",
            "-q",
            "-u",
            "2",
            "-t",
            "2s",
            "--master",
            "--master-bind",
            "127.0.0.1:0",
            "--expect-workers",
            "2",
            "--threshold",
            "failures<1%",
            "--json",
            "run.json",
        ],
        &dir,
    );
    let address = master_address(&mut master);
    let _workers: Vec<Process> = ["w1", "w2"]
        .iter()
        .map(|name| worker(&dir, &address, name, &[]))
        .collect();
    let (status, output) = master.finish();
    assert_eq!(status.code(), Some(1), "{output}");
    let result = read_result(&dir.join("run.json"));
    assert!(!result.passed());
    assert_eq!(result.total.failures, result.total.requests);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_a_headless_master_which_writes_its_report_and_releases_its_workers() {
    let dir = output_dir("cluster_sigterm");
    let (server, _app) = demo_app(AppOptions::default()).await;
    let url = format!("{}/student", server.url());
    let mut master = Process::start(
        "master",
        &[
            "run",
            "--url",
            &url,
            "--think",
            "20ms",
            "--headless",
            "-q",
            "-u",
            "4",
            "-t",
            "10m",
            "--master",
            "--master-bind",
            "127.0.0.1:0",
            "--json",
            "run.json",
        ],
        &dir,
    );
    let address = master_address(&mut master);
    let worker = worker(&dir, &address, "w1", &[]);
    let base = server.url();
    let deadline = Instant::now() + PATIENCE;
    while crate::util::demo_stats(&base).await["requests_total"]
        .as_u64()
        .unwrap()
        < 50
    {
        assert!(Instant::now() < deadline, "the worker sent no load");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let kill = Command::new("kill")
        .args(["-TERM", &master.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let (status, output) = master.finish();
    assert_eq!(status.code(), Some(0), "{output}");
    let result = read_result(&dir.join("run.json"));
    let stats = crate::util::demo_stats(&base).await;
    assert_eq!(stats["requests_total"], result.total.requests);
    // Told to quit, the worker exits instead of waiting for its master to come back.
    let (status, output) = worker.finish();
    assert!(status.success(), "{output}");
    server.shutdown().await;
}

/// What the master was given reaches its workers: `--var`, the environment variables the
/// scenario reads (`env("...")`, set only where the master runs) and the files `multipart`
/// parts send (only in the master's folder). The server says what it got.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vars_environment_and_attached_files_reach_the_workers() {
    let dir = output_dir("cluster_vars_env_files");
    let worker_dir = dir.join("worker");
    std::fs::create_dir_all(&worker_dir).unwrap();
    let document: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    std::fs::write(dir.join("doc.bin"), &document).unwrap();
    let (addr, log) = crate::util::upload::start().await;
    std::fs::write(
        dir.join("s.yaml"),
        format!(
            "host: http://{addr}\n\
             headers:\n  X-Token: \"{{{{ env('CHORUS_TEST_CLUSTER_SECRET') }}}}\"\n\
             vars:\n  tenant: default\n\
             flows:\n  - name: upload\n    steps:\n      - post: \"/{{{{ tenant }}}}/upload\"\n\
             \x20       multipart:\n          doc: {{ filename: doc.bin, file: doc.bin }}\n\
             \x20     - think: 200ms\n"
        ),
    )
    .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_chorus"));
    command
        .args([
            "run",
            "s.yaml",
            "--headless",
            "-q",
            "-u",
            "2",
            "-t",
            "2s",
            "--var",
            "tenant=acme",
            "--master",
            "--master-bind",
            "127.0.0.1:0",
            "--expect-workers",
            "1",
            "--json",
            "run.json",
        ])
        .current_dir(&dir)
        .env("CHORUS_TEST_CLUSTER_SECRET", "s3cret");
    let mut master = Process::spawn("master", command);
    let address = master_address(&mut master);
    let _worker = worker(&worker_dir, &address, "w1", &[]);
    let (status, output) = master.finish();
    assert_eq!(status.code(), Some(0), "{output}");
    let result = read_result(&dir.join("run.json"));
    assert_eq!(result.total.failures, 0, "{output}");
    let received = log.lock().unwrap().clone();
    assert!(!received.is_empty(), "{output}");
    assert_eq!(received.len() as u64, result.total.requests);
    for request in &received {
        assert_eq!(request.target, "/acme/upload");
        assert_eq!(request.headers["x-token"], "s3cret");
        let parts = request.parts.as_ref().expect("a multipart body");
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].file_name.as_deref(), Some("doc.bin"));
        assert_eq!(parts[0].bytes, document);
    }
}
