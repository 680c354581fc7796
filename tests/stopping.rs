//! How runs end (see tests/integration.rs): the end of the run time, a stop, a ramp down and
//! the signals Ctrl-C, SIGTERM and SIGHUP. Judged by the demo app's own state (sessions
//! logged in and out, game sessions started and ended, requests it saw) and by the reports
//! chorus wrote.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chorus::demo::{App, AppOptions, Seed, Server};
use chorus::engine::{Engine, EngineOptions, Plan};
use chorus::scenario::{LoadOptions, Scenario};
use chorus::stats::{FailureKind, RunResult, report};

use crate::util::hostile::{Hostile, Mode};
use crate::util::process::{Chorus, until};
use crate::util::{TIMING, demo_app, demo_stats, output_dir};

const PATIENCE: Duration = Duration::from_secs(90);

/// The demo scenario (log in, then games of 2 to 6 event posts a second apart, saves and
/// time played, each iteration ending in a 10-30 s think) with a logout in `on_stop`.
fn scenario_with_logout(dir: &Path) -> PathBuf {
    let demo = include_str!("../demo/scenario.yaml");
    let path = dir.join("scenario.yaml");
    std::fs::write(
        &path,
        format!("{demo}\non_stop:\n  - post: /api/user/logout\n"),
    )
    .unwrap();
    path
}

/// The demo app (events every second) and its users file.
async fn seeded_demo(dir: &Path, students: u32) -> (Server, App, PathBuf) {
    let (server, app) = demo_app(AppOptions {
        events_period_secs: 1,
        seed: Some(Seed {
            classes: 2,
            students,
        }),
    })
    .await;
    let users = dir.join("users.csv");
    app.write_users_csv(&users).unwrap();
    (server, app, users)
}

fn load(path: &Path, users: &Path, host: &str) -> Scenario {
    let options = LoadOptions {
        data_overrides: vec![("users".to_owned(), users.to_owned())],
        host_override: Some(host.to_owned()),
        ..Default::default()
    };
    chorus::scenario::load(path, &options).expect("the scenario loads")
}

async fn run(scenario: Scenario, plan: Plan, stop_timeout: Duration) -> RunResult {
    let options = EngineOptions {
        workers: 2,
        stop_timeout,
        ..EngineOptions::default()
    };
    let handle = Engine::start(Arc::new(scenario), plan, options).expect("the run starts");
    tokio::time::timeout(PATIENCE, handle.wait())
        .await
        .expect("the run ends")
}

/// Game sessions the app started and never saw ended.
fn unended_games(stats: &serde_json::Value) -> usize {
    stats["game_sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|game| game["ended"] != true)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_end_of_the_run_time_each_user_finishes_its_iteration_then_logs_out() {
    let dir = output_dir("stopping_finishes_iterations");
    let (server, _app, users) = seeded_demo(&dir, 10).await;
    let scenario = load(&scenario_with_logout(&dir), &users, &server.url());
    let plan = Plan::users(20, Some(20.0), Some(Duration::from_secs(4))).unwrap();
    let result = run(scenario, plan, Duration::from_secs(15)).await;

    let stats = demo_stats(&server.url()).await;
    assert!(result.errors.is_empty(), "{:#?}", result.errors);
    assert_eq!(
        result.total.failures, 0,
        "{:#?}",
        result.total.failures_by_kind
    );
    assert_eq!(stats["requests_total"], result.total.requests);
    // Every game session a user started was ended by that user before it logged out, and
    // every user that logged in logged out: nothing is left behind on the server.
    let games = stats["game_sessions"].as_array().unwrap().len();
    assert!(games >= 10, "only {games} game sessions");
    assert_eq!(unended_games(&stats), 0, "{stats:#}");
    assert_eq!(stats["live_sessions"], 0, "{}", stats["live_sessions"]);
    assert_eq!(
        stats["endpoints"]["POST /api/user/logout"]["200"], 20,
        "{:#}",
        stats["endpoints"]
    );
    assert_eq!(result.cut_iterations, 0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_timeout_too_short_cuts_iterations_and_the_report_counts_them() {
    let dir = output_dir("stopping_cuts_iterations");
    let (server, _app, users) = seeded_demo(&dir, 10).await;
    let scenario = load(&scenario_with_logout(&dir), &users, &server.url());
    let plan = Plan::users(20, Some(20.0), Some(Duration::from_secs(3))).unwrap();
    let result = run(scenario, plan, Duration::from_millis(300)).await;

    let stats = demo_stats(&server.url()).await;
    assert_eq!(stats["requests_total"], result.total.requests);
    // Games last 2 to 6 s: most are cut, and each one cut is counted (a game whose last
    // request was in flight at the cut may have ended on the server all the same).
    let unended = unended_games(&stats) as u64;
    assert!(unended > 0, "{stats:#}");
    assert!(
        result.cut_iterations >= unended,
        "{} cut, {unended} games left open",
        result.cut_iterations
    );
    // The users still logged out after their iteration was cut.
    assert_eq!(stats["live_sessions"], 0);
    let summary = report::summary(&result);
    assert!(
        summary.contains(&format!(
            "{} iterations were cut at the stop",
            result.cut_iterations
        )),
        "{summary}"
    );
    let html = report::html::render(&result);
    assert!(
        html.contains("Iterations cut at the stop"),
        "no count in the HTML report"
    );
    let back = RunResult::from_json(&result.to_json()).unwrap();
    assert_eq!(back.cut_iterations, result.cut_iterations);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_removed_by_a_ramp_down_log_out() {
    let dir = output_dir("stopping_ramp_down");
    let (server, _app, users) = seeded_demo(&dir, 5).await;
    let scenario = load(&scenario_with_logout(&dir), &users, &server.url());
    // 6 users in the first second, down to 2 in the next, then 2 until stopped.
    let plan = Plan::parse_stages("1s:6,1s:2,60s:2").unwrap();
    let options = EngineOptions {
        workers: 2,
        stop_timeout: Duration::from_secs(10),
        ..EngineOptions::default()
    };
    let handle = Engine::start(Arc::new(scenario), plan, options).unwrap();
    let base = server.url();
    let mut live = serde_json::Value::Null;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::time::Instant::now() < deadline {
        live = demo_stats(&base).await["live_sessions"].clone();
        if handle.users() == 2 && live == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(live, 2, "the four users ramped down did not log out");
    handle.stop();
    let result = tokio::time::timeout(PATIENCE, handle.wait()).await.unwrap();
    let stats = demo_stats(&base).await;
    assert_eq!(stats["live_sessions"], 0);
    assert_eq!(stats["requests_total"], result.total.requests);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_at_once_counts_the_requests_it_cuts() {
    let server = Hostile::start(Mode::Hang);
    let scenario = Scenario::from_urls(&[url::Url::parse(&server.url("/x")).unwrap()], None);
    let plan = Plan::users(4, None, None).unwrap();
    let options = EngineOptions {
        workers: 2,
        stop_timeout: Duration::from_secs(600),
        ..EngineOptions::default()
    };
    let handle = Engine::start(Arc::new(scenario), plan, options).unwrap();
    until("four requests", PATIENCE, || server.requests() == 4).await;
    handle.stop();
    handle.stop_now();
    // The 10-minute stop timeout is not waited out: the second stop cuts at once.
    let result = tokio::time::timeout(PATIENCE, handle.wait()).await.unwrap();
    assert_eq!(result.total.requests, 4);
    assert_eq!(
        result.total.failures_by_kind[0].kind,
        FailureKind::CutAtStop
    );
    assert_eq!(result.total.failures_by_kind[0].count, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_and_sighup_stop_a_headless_run_gracefully_and_every_report_is_written() {
    let _turn = TIMING.lock().await;
    for signal in ["TERM", "HUP"] {
        let dir = output_dir(&format!("stopping_signal_{signal}"));
        let (server, _app) = demo_app(AppOptions::default()).await;
        let url = format!("{}/student", server.url());
        let args = [
            "run",
            "--url",
            &url,
            "--think",
            "20ms",
            "--headless",
            "-q",
            "-u",
            "5",
            "-r",
            "50",
            "-t",
            "10m",
            "--csv",
            "run",
            "--json",
            "run.json",
            "--html",
            "run.html",
        ];
        let chorus = Chorus::start(&args, &dir, None);
        let base = server.url();
        let mut seen = 0;
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while seen < 50 && tokio::time::Instant::now() < deadline {
            seen = demo_stats(&base).await["requests_total"].as_u64().unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        chorus.signal(signal).await;
        let ended = chorus.finish(PATIENCE, 500 * 1024).await;
        // An interrupted run ends as Ctrl-C ends it: by its thresholds (none here).
        assert_eq!(ended.code, Some(0), "SIG{signal}: {}", ended.stderr);
        assert!(
            ended.stderr.contains(&format!("stopping (SIG{signal})")),
            "{}",
            ended.stderr
        );
        for file in [
            "run_stats.csv",
            "run_stats_history.csv",
            "run_failures.csv",
            "run_exceptions.csv",
            "run.html",
        ] {
            assert!(dir.join(file).is_file(), "SIG{signal}: no {file}");
        }
        let result =
            RunResult::from_json(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
        let stats = demo_stats(&base).await;
        assert!(result.total.requests >= 50);
        assert_eq!(
            stats["requests_total"], result.total.requests,
            "SIG{signal}"
        );
        assert_eq!(result.total.failures, 0);
        server.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sighup_the_run_was_started_to_ignore_stays_ignored() {
    let dir = output_dir("stopping_nohup");
    let (server, _app) = demo_app(AppOptions::default()).await;
    let base = server.url();
    let url = format!("{base}/student");
    let args = [
        "run",
        "--url",
        &url,
        "--think",
        "20ms",
        "--headless",
        "-q",
        "-u",
        "2",
        "-t",
        "10m",
    ];
    // As `nohup` starts it: SIGHUP ignored.
    let chorus = Chorus::start(&args, &dir, Some("trap '' HUP"));
    let requests = || async { demo_stats(&base).await["requests_total"].as_u64().unwrap() };
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while requests().await < 20 {
        assert!(tokio::time::Instant::now() < deadline, "no load");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    chorus.signal("HUP").await;
    // Still running: the load goes on well past the hang-up.
    let after_hangup = requests().await;
    while requests().await < after_hangup + 40 {
        assert!(tokio::time::Instant::now() < deadline, "the load stopped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!chorus.stderr_so_far().contains("stopping"));
    chorus.signal("TERM").await;
    let ended = chorus.finish(PATIENCE, 500 * 1024).await;
    assert_eq!(ended.code, Some(0), "{}", ended.stderr);
    server.shutdown().await;
}

/// Issue 19: with the page, Ctrl-C prints the final summary in the terminal, as Locust does
/// (and as a headless run does), with the count the server saw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_with_the_page_prints_the_final_summary() {
    let dir = output_dir("stopping_page_ctrl_c");
    let (server, _app) = demo_app(AppOptions::default()).await;
    let base = server.url();
    let url = format!("{base}/student");
    let args = [
        "run",
        "--url",
        &url,
        "--think",
        "20ms",
        "-u",
        "2",
        "-r",
        "50",
        "-t",
        "10m",
        "--autostart",
        "--web-port",
        "0",
    ];
    let chorus = Chorus::start(&args, &dir, None);
    let requests = || async { demo_stats(&base).await["requests_total"].as_u64().unwrap() };
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while requests().await < 20 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no load: {}",
            chorus.stderr_so_far()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    chorus.signal("INT").await;
    let ended = chorus.finish(PATIENCE, 500 * 1024).await;
    assert_eq!(ended.code, Some(0), "{}", ended.stderr);
    let seen = requests().await;
    let aggregated = ended
        .stdout
        .lines()
        .find(|line| line.trim_start().starts_with("Aggregated"))
        .unwrap_or_else(|| panic!("no summary:\n{}", ended.stdout));
    let counted: Vec<&str> = aggregated.split_whitespace().collect();
    assert_eq!(counted[1], seen.to_string(), "{}", ended.stdout);
    server.shutdown().await;
}
