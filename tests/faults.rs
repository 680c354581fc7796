//! Fault tests (see tests/integration.rs): the engine against misbehaving servers written
//! here (`util::hostile`, after the reliability report's `srv.py`) and against the limits of
//! the machine. Each run is judged by what the server saw, by the reports chorus wrote and by
//! what the chorus process held (its peak memory, its open-files limit).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chorus::engine::{Engine, EngineOptions, Plan};
use chorus::scenario::Scenario;
use chorus::stats::{FailureKind, RunResult};

use crate::util::hostile::{Hostile, Mode};
use crate::util::process::{Chorus, until};
use crate::util::{TIMING, output_dir};

/// The longest a run here may take before the test gives up (a bound, not a measurement).
const PATIENCE: Duration = Duration::from_secs(60);
/// What a chorus process running five users may hold, whatever the server sends.
const MEMORY_BOUND_KIB: u64 = 200 * 1024;

fn read_result(path: &Path) -> RunResult {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    RunResult::from_json(&text).unwrap()
}

/// (kind, count) of every failure in the result, by kind.
fn failure_kinds(result: &RunResult) -> Vec<(FailureKind, u64)> {
    let mut kinds: Vec<(FailureKind, u64)> = result
        .total
        .failures_by_kind
        .iter()
        .map(|f| (f.kind, f.count))
        .collect();
    kinds.sort();
    kinds
}

async fn run_in_process(scenario: Scenario, plan: Plan) -> RunResult {
    let options = EngineOptions {
        workers: 1,
        stop_timeout: Duration::from_secs(2),
        ..EngineOptions::default()
    };
    let handle = Engine::start(Arc::new(scenario), plan, options).expect("the run starts");
    tokio::time::timeout(PATIENCE, handle.wait())
        .await
        .expect("the run ends")
}

fn url_scenario(url: &str) -> Scenario {
    Scenario::from_urls(&[url::Url::parse(url).unwrap()], None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_a_silent_server_never_answers_are_counted_as_cut_and_fail_the_thresholds() {
    let dir = output_dir("faults_hang");
    let server = Hostile::start(Mode::Hang);
    let url = server.url("/x");
    let args = [
        "run",
        "--url",
        &url,
        "--headless",
        "-q",
        "-u",
        "5",
        "-r",
        "50",
        "-t",
        "1s",
        "--stop-timeout",
        "1s",
        "--threshold",
        "failures<1%",
        "--threshold",
        "p95<100ms",
        "--json",
        "result.json",
    ];
    let ended = Chorus::start(&args, &dir, None)
        .finish(PATIENCE, MEMORY_BOUND_KIB)
        .await;
    assert_eq!(ended.code, Some(1), "{}\n{}", ended.stdout, ended.stderr);
    let result = read_result(&dir.join("result.json"));
    // Each user sent one request and waited: the server saw five, chorus counts five.
    assert_eq!(server.requests(), 5);
    assert_eq!(result.total.requests, server.requests());
    assert_eq!(failure_kinds(&result), [(FailureKind::CutAtStop, 5)]);
    assert_eq!(result.total.untimed, 5);
    let verdicts: Vec<(&str, bool, &str)> = result
        .verdicts
        .iter()
        .map(|v| (v.expression.as_str(), v.passed, v.observed_text.as_str()))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("failures<1%", false, "100.00 %"),
            (
                "p95<100ms",
                false,
                "no latency: none of the 5 requests was answered"
            ),
        ]
    );
    assert!(ended.stdout.contains("cut at stop"), "{}", ended.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_bodies_nothing_reads_are_counted_and_dropped_in_bounded_memory() {
    let _turn = TIMING.lock().await;
    for mode in [Mode::EndlessChunked, Mode::BigLength] {
        let dir = output_dir(&format!("faults_unread_{mode:?}"));
        let server = Hostile::start(mode);
        let url = server.url("/x");
        let args = [
            "run",
            "--url",
            &url,
            "--headless",
            "-q",
            "-u",
            "5",
            "-r",
            "50",
            "-t",
            "2s",
            "--stop-timeout",
            "1s",
            "--json",
            "result.json",
        ];
        let ended = Chorus::start(&args, &dir, None)
            .finish(PATIENCE, MEMORY_BOUND_KIB)
            .await;
        assert_eq!(ended.code, Some(0), "{mode:?}: {}", ended.stderr);
        eprintln!("{mode:?}: peak {} KiB", ended.peak_rss_kib);
        let result = read_result(&dir.join("result.json"));
        // Nothing reads the body, so it is read until the stop cuts the request: counted, never
        // kept (the process stayed under the bound the whole time).
        assert_eq!(result.total.requests, server.requests(), "{mode:?}");
        assert_eq!(
            failure_kinds(&result),
            [(FailureKind::CutAtStop, 5)],
            "{mode:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_a_step_reads_is_kept_up_to_the_limit_then_the_request_fails_as_too_large() {
    let _turn = TIMING.lock().await;
    // The limit from the scenario (`max_body:`) and from the command line (`--max-body`).
    for (mode, max_body_flag) in [
        (Mode::EndlessChunked, None),
        (Mode::BigLength, Some("512KiB")),
    ] {
        let dir = output_dir(&format!("faults_read_{mode:?}"));
        let server = Hostile::start(mode);
        let scenario = format!(
            "host: {}\nmax_body: 1MiB\nflows:\n  - steps:\n      - get: /data\n        extract:\n          id: $.id\n",
            server.url("")
        );
        std::fs::write(dir.join("scenario.yaml"), scenario).unwrap();
        let mut args = vec![
            "run",
            "scenario.yaml",
            "--headless",
            "-q",
            "-u",
            "5",
            "-r",
            "50",
            "-t",
            "2s",
            "--stop-timeout",
            "1s",
            "--json",
            "result.json",
        ];
        if let Some(limit) = max_body_flag {
            args.extend(["--max-body", limit]);
        }
        let ended = Chorus::start(&args, &dir, None)
            .finish(PATIENCE, MEMORY_BOUND_KIB)
            .await;
        assert_eq!(ended.code, Some(0), "{mode:?}: {}", ended.stderr);
        let result = read_result(&dir.join("result.json"));
        assert_eq!(result.total.requests, server.requests(), "{mode:?}");
        let too_large = result
            .total
            .failures_by_kind
            .iter()
            .find(|f| f.kind == FailureKind::BodyTooLarge)
            .unwrap_or_else(|| panic!("{mode:?}: {:?}", failure_kinds(&result)));
        // Every request but those the stop cut went past the limit, each quickly: many of them.
        assert!(
            too_large.count >= 10,
            "{mode:?}: {:?}",
            failure_kinds(&result)
        );
        let expected = match max_body_flag {
            Some(_) => "(Content-Length 1099511627776) is larger than the body limit of 512 KiB",
            None => "went past the body limit of 1 MiB",
        };
        assert!(
            too_large.message.contains(expected),
            "{mode:?}: {}",
            too_large.message
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_loop_is_one_failed_request_not_ten_successes_and_a_failure() {
    let server = Hostile::start(Mode::RedirectLoop);
    let plan = Plan::users(1, None, Some(Duration::from_millis(500))).unwrap();
    let result = run_in_process(url_scenario(&server.url("/loop")), plan).await;
    assert!(result.total.requests >= 1);
    // 100 % failures, one per chain of 11 exchanges the server saw.
    assert_eq!(result.total.failures, result.total.requests);
    assert_eq!(server.requests(), 11 * result.total.requests);
    let failure = &result.total.failures_by_kind[0];
    assert_eq!(failure.kind, FailureKind::InvalidResponse);
    assert!(
        failure
            .message
            .contains("more than 10 redirects (11 exchanges, counted as this one failed request)"),
        "{}",
        failure.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_tls_on_the_same_port_fails_at_once_without_a_handshake() {
    let server = Hostile::start(Mode::ToTlsSamePort);
    let plan = Plan::users(1, None, Some(Duration::from_millis(500))).unwrap();
    let result = run_in_process(url_scenario(&server.url("/x")), plan).await;
    // No TLS handshake was tried against the plain port (it would wait out the 10 s connect
    // timeout): each request failed at once, and the next iteration went on.
    assert_eq!(server.tls_hellos(), 0);
    assert_eq!(result.total.requests, server.requests());
    assert_eq!(result.total.failures, result.total.requests);
    let failure = &result.total.failures_by_kind[0];
    assert_eq!(failure.kind, FailureKind::OffHostRedirect);
    assert!(
        failure.message.contains("the same host and port as")
            && failure
                .message
                .contains("but with TLS; a port does not speak both"),
        "{}",
        failure.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_connects_back_off_and_count_no_latency() {
    // A port nobody listens on: every connect is refused at once.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let plan = Plan::users(2, None, Some(Duration::from_secs(2))).unwrap();
    let result = run_in_process(url_scenario(&format!("http://127.0.0.1:{port}/x")), plan).await;
    let total = &result.total;
    assert_eq!(
        failure_kinds(&result),
        [(FailureKind::ConnectRefused, total.requests)]
    );
    // Backing off from 50 ms, doubling: a handful of attempts per user in 2 s, not a hot loop
    // (without the backoff: tens of thousands).
    assert!(
        (2..=40).contains(&total.requests),
        "{} attempts",
        total.requests
    );
    // Nothing was sent, so nothing was timed: no 3 µs "requests" in the percentiles.
    assert_eq!(total.untimed, total.requests);
    assert_eq!(total.histogram.len(), 0);
    assert_eq!(total.percentile_us(50.0), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_beyond_the_open_files_limit_are_refused_before_any_traffic() {
    let dir = output_dir("faults_open_files");
    let server = Hostile::start(Mode::Hang);
    let url = server.url("/x");
    let args = [
        "run",
        "--url",
        &url,
        "--headless",
        "-u",
        "1000",
        "-r",
        "1000",
        "-t",
        "2s",
    ];
    // Soft and hard limit 300: chorus cannot raise it, so 1000 users cannot have a socket each.
    let ended = Chorus::start(&args, &dir, Some("ulimit -n 300"))
        .finish(PATIENCE, MEMORY_BOUND_KIB)
        .await;
    assert_eq!(ended.code, Some(2), "{}", ended.stderr);
    assert!(
        ended.stderr.contains(
            "1000 users need about 1256 open files (1 connection(s) per user, 256 more for chorus itself), but this process may open only 300"
        ) && ended.stderr.contains("`--processes 23`")
            && ended.stderr.contains("ulimit -n 1256"),
        "{}",
        ended.stderr
    );
    assert_eq!(server.requests(), 0);

    // Shared over two processes, each would still need more than it may open.
    let mut two = args.to_vec();
    two.extend(["--processes", "2"]);
    let ended = Chorus::start(&two, &dir, Some("ulimit -n 300"))
        .finish(PATIENCE, MEMORY_BOUND_KIB)
        .await;
    assert_eq!(ended.code, Some(2), "{}", ended.stderr);
    assert!(
        ended.stderr.contains(
            "500 users need about 756 open files (1 connection(s) per user, 256 more for chorus itself), but each of the 2 processes may open only 300"
        ),
        "{}",
        ended.stderr
    );
    assert_eq!(server.requests(), 0);

    // The command line's bound on users, whatever the machine.
    let args = ["run", "--url", &url, "--headless", "-u", "20000000"];
    let ended = Chorus::start(&args, &dir, None)
        .finish(PATIENCE, MEMORY_BOUND_KIB)
        .await;
    assert_eq!(ended.code, Some(2), "{}", ended.stderr);
    assert!(
        ended
            .stderr
            .contains("20000000 users is more than chorus runs from one command (10000000)"),
        "{}",
        ended.stderr
    );
    assert_eq!(server.requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chorus_raises_its_soft_open_files_limit_to_the_hard_limit() {
    let dir = output_dir("faults_raise_limit");
    let server = Hostile::start(Mode::Hang);
    let url = server.url("/x");
    let args = [
        "run",
        "--url",
        &url,
        "--headless",
        "-q",
        "-u",
        "1",
        "-t",
        "60s",
    ];
    let chorus = Chorus::start(&args, &dir, Some("ulimit -Sn 256"));
    until("the first request", PATIENCE, || server.requests() == 1).await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", chorus.pid())).unwrap();
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    // "Max open files  SOFT  HARD  files"
    assert_eq!(fields[3], fields[4], "{line}");
    assert_ne!(fields[3], "256", "{line}");
    chorus.signal("TERM").await;
    let ended = chorus.finish(PATIENCE, MEMORY_BOUND_KIB).await;
    assert_eq!(ended.code, Some(0), "{}", ended.stderr);
}
