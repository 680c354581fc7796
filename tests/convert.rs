//! Integration tests for `convert` (see tests/integration.rs): captures recorded by chorus,
//! mitmproxy and Playwright, converted and replayed by the engine against real servers on
//! 127.0.0.1; `--redact`; and damaged or huge captures.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chorus::demo::{App, AppOptions, Seed};
use chorus::engine::{Engine, EngineOptions, Plan};
use chorus::har::Har;
use chorus::record::{self, RecordConfig, RecordOptions};
use chorus::scenario::{LoadOptions, Scenario};
use chorus::stats::RunResult;
use serde_json::Value;

mod inputs;
mod other_tools;

use crate::util::browser::{Browser, CHROMIUM_FLAGS};
use crate::util::tools::{self, Process};
use crate::util::{chorus, demo_app, output_dir};

// ---------------------------------------------------------------------------------------
// helpers

/// `chorus convert CAPTURE -o OUT [extra]` with the binary; returns the scenario text.
fn convert_with_binary(capture: &Path, out: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "convert",
        capture.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let output = chorus(&args, out.parent().unwrap());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "chorus convert failed:\n{stderr}"
    );
    std::fs::read_to_string(out).unwrap()
}

fn load(path: &Path, users_csv: Option<&Path>, host: &str) -> Scenario {
    let options = LoadOptions {
        data_overrides: users_csv
            .map(|csv| vec![("users".to_owned(), csv.to_owned())])
            .unwrap_or_default(),
        host_override: Some(host.to_owned()),
        ..Default::default()
    };
    chorus::scenario::load(path, &options).unwrap_or_else(|err| {
        panic!(
            "the converted scenario does not load:\n{err}\n\n{}",
            std::fs::read_to_string(path).unwrap()
        )
    })
}

async fn run_engine(scenario: Scenario, users: u64, seconds: u64) -> RunResult {
    let plan = Plan::users(
        users,
        Some(users as f64),
        Some(Duration::from_secs(seconds)),
    )
    .unwrap();
    let options = EngineOptions {
        workers: 2,
        stop_timeout: Duration::from_secs(5),
        ..EngineOptions::default()
    };
    Engine::start(Arc::new(scenario), plan, options)
        .expect("the run starts")
        .wait()
        .await
}

/// Fails with every failure and exception of the run, and the scenario, if there is one.
fn assert_no_failures(result: &RunResult, scenario: &Path) {
    let failures: Vec<String> = result
        .entries
        .iter()
        .flat_map(|entry| {
            entry.failures_by_kind.iter().map(move |failure| {
                format!(
                    "{} {}: {:?} x{}: {}",
                    entry.method, entry.name, failure.kind, failure.count, failure.message
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty() && result.errors.is_empty(),
        "the replay of {} failed:\n{}\nerrors: {:#?}\n\n{}",
        scenario.display(),
        failures.join("\n"),
        result.errors,
        std::fs::read_to_string(scenario).unwrap_or_default()
    );
    assert!(result.total.requests > 0, "the replay sent no request");
}

/// The gaps between the event posts of each game session, as the app saw them arrive.
fn event_gaps(stats: &Value) -> Vec<u64> {
    let mut gaps = Vec::new();
    for game in stats["game_sessions"].as_array().unwrap() {
        let times: Vec<u64> = game["event_times_ms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_u64().unwrap())
            .collect();
        gaps.extend(times.windows(2).map(|pair| pair[1] - pair[0]));
    }
    gaps
}

/// Every gap within ±20 % of the period, and enough of them to mean something.
fn assert_paced(stats: &Value, period_ms: u64, at_least: usize) {
    let gaps = event_gaps(stats);
    let (low, high) = (period_ms * 8 / 10, period_ms * 12 / 10);
    let off: Vec<&u64> = gaps.iter().filter(|g| !(low..=high).contains(*g)).collect();
    assert!(
        off.is_empty(),
        "event posts {off:?} ms apart, expected {low}..={high} (period {period_ms} ms); all: {gaps:?}"
    );
    assert!(
        gaps.len() >= at_least,
        "only {} event posts were paced: {gaps:?}",
        gaps.len()
    );
}

/// Each virtual user played as its own student: one live session per user (a second login
/// of an account would have ended the first) and game sessions of as many distinct students.
fn assert_distinct_students(stats: &Value, users: usize) {
    assert_eq!(stats["live_sessions"], users, "live sessions: {stats:#}");
    let students: BTreeSet<&str> = stats["game_sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|game| game["user"].as_str().unwrap())
        .collect();
    assert_eq!(students.len(), users, "students who played: {students:?}");
}

fn read_har(path: &Path) -> Har {
    let (har, warnings) = chorus::har::read::read_file(path)
        .unwrap_or_else(|err| panic!("{} does not read: {err}", path.display()));
    assert!(warnings.is_empty(), "{warnings:?}");
    har
}

/// Secrets a capture holds: passwords sent, cookie values, session ids and tokens returned.
fn secrets_of(har: &Har) -> BTreeSet<String> {
    fn walk(value: &Value, secret: bool, out: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let lower = key.to_ascii_lowercase();
                    let named = lower.contains("password")
                        || lower.contains("token")
                        || lower == "sessionid";
                    walk(child, secret || named, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|c| walk(c, secret, out)),
            Value::String(text) if secret => {
                out.insert(text.clone());
            }
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    for entry in &har.log.entries {
        for cookie in entry.request.cookies.iter().chain(&entry.response.cookies) {
            out.insert(cookie.value.clone());
        }
        for header in entry.request.headers.iter().chain(&entry.response.headers) {
            let name = header.name.to_ascii_lowercase();
            if name == "cookie" {
                for pair in header.value.split(';') {
                    if let Some((_, value)) = pair.split_once('=') {
                        out.insert(value.trim().to_owned());
                    }
                }
            } else if name == "set-cookie" {
                let first = header.value.split(';').next().unwrap_or("");
                if let Some((_, value)) = first.split_once('=') {
                    out.insert(value.trim().to_owned());
                }
            } else if name == "authorization" {
                out.insert(header.value.clone());
            }
        }
        let bodies = [
            entry.request.post_data.as_ref().map(|p| p.text.clone()),
            entry.response.content.text.clone(),
        ];
        for body in bodies.into_iter().flatten() {
            if let Ok(value) = serde_json::from_str::<Value>(&body) {
                walk(&value, false, &mut out);
            }
            for (name, value) in url::form_urlencoded::parse(body.as_bytes()) {
                if name.contains("password") || name.contains("token") {
                    out.insert(value.into_owned());
                }
            }
        }
    }
    out.retain(|value| value.len() >= 4);
    out
}

fn assert_no_secret(text: &str, secrets: &BTreeSet<String>) {
    assert!(!secrets.is_empty(), "the capture should hold secrets");
    let leaked: Vec<&String> = secrets
        .iter()
        .filter(|s| text.contains(s.as_str()))
        .collect();
    assert!(leaked.is_empty(), "--redact left {leaked:?} in:\n{text}");
}

// ---------------------------------------------------------------------------------------
// the 2013 workflow

/// Logs in as the app's first seeded student and plays `periods` event periods.
async fn play_as_student(browser: &mut Browser, base: &str, app: &App, periods: u32) {
    let (username, password, _) = &app.seeded_users()[0];
    browser
        .play_as_student(base, username, password, periods)
        .await;
}

/// `chorus run SCENARIO --headless` with the binary; its JSON result.
fn run_binary(
    scenario: &Path,
    host: &str,
    users_csv: &Path,
    users: u64,
    spawn_rate: u64,
    run_time: &str,
    dir: &Path,
) -> RunResult {
    let json = dir.join(format!("run-{users}-users.json"));
    let output = chorus(
        &[
            "run",
            scenario.to_str().unwrap(),
            "--headless",
            "-q",
            "-u",
            &users.to_string(),
            "-r",
            &spawn_rate.to_string(),
            "-t",
            run_time,
            "-H",
            host,
            "--data",
            &format!("users={}", users_csv.display()),
            "--json",
            json.to_str().unwrap(),
        ],
        dir,
    );
    assert!(
        output.status.code().is_some(),
        "chorus run was killed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    RunResult::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap()
}

/// Records a student playing three periods through the recorder, in reverse mode.
async fn record_student_session(out: &Path) -> PathBuf {
    let (server, app) = demo_app(AppOptions {
        events_period_secs: 1,
        seed: Some(Seed {
            classes: 1,
            students: 2,
        }),
    })
    .await;
    let config = RecordConfig::new(RecordOptions {
        target: Some(server.url()),
        listen: "127.0.0.1:0".parse().unwrap(),
        output: out.join("capture.har"),
        ..RecordOptions::default()
    })
    .unwrap();
    let recorder = record::start(config).await.unwrap();
    let mut browser = Browser::start(&[], out).await;
    play_as_student(&mut browser, &recorder.url(), &app, 3).await;
    browser.close().await;
    let seen = crate::util::demo_stats(&server.url()).await["requests_total"]
        .as_u64()
        .unwrap();
    // The recorder writes each exchange after forwarding it: wait for its own count.
    let deadline = Instant::now() + Duration::from_secs(10);
    while recorder.summary().exchanges < seen {
        assert!(
            Instant::now() < deadline,
            "the recorder wrote {} of {seen} exchanges",
            recorder.summary().exchanges
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let summary = recorder.shutdown().await;
    server.shutdown().await;
    summary.path
}

/// A demo app with this event period and no students, given `classes` x `students` by
/// `chorus provision demo/provision.yaml`; the users CSV it wrote.
async fn replay_target(
    period_secs: u32,
    classes: u32,
    students: u32,
    dir: &Path,
) -> (chorus::demo::Server, PathBuf) {
    let (server, _app) = demo_app(AppOptions {
        events_period_secs: period_secs,
        seed: None,
    })
    .await;
    let csv = dir.join(format!("users-{period_secs}s.csv"));
    let provision_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/provision.yaml");
    let output = chorus(
        &[
            "provision",
            provision_file.to_str().unwrap(),
            "-H",
            &server.url(),
            "--var",
            &format!("classes={classes}"),
            "--var",
            &format!("students={students}"),
            "-o",
            csv.to_str().unwrap(),
        ],
        dir,
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let accounts = classes * students;
    assert!(
        stdout.contains(&format!(
            "{accounts} row(s): {accounts} created, 0 already there, 0 failed"
        )),
        "{stdout}"
    );
    (server, csv)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_2013_workflow_recorded_converted_provisioned_replays_100_students_at_the_servers_period()
 {
    let out = output_dir("convert_chromium_workflow");
    let capture = record_student_session(&out).await;

    // The binary and the library write the same scenario.
    let scenario_path = out.join("scenario.yaml");
    let yaml = convert_with_binary(&capture, &scenario_path, &[]);
    let har = read_har(&capture);
    let conversion = chorus::convert::convert(
        &har,
        &capture.display().to_string(),
        &chorus::convert::Options {
            capture: Some("capture.har".to_owned()),
            ..chorus::convert::Options::default()
        },
    )
    .unwrap();
    crate::eqnice!(conversion.yaml, yaml);
    assert_eq!(conversion.user_columns, ["username", "password"]);
    for expected in [
        "username: \"{{ user.username }}\"",
        "password: \"{{ user.password }}\"",
        "gameSessionId: \"{{ gameSessionId }}\"",
        "userSessionId: \"{{ userSessionId }}\"",
        "- repeat: 3",
        "- think: \"{{ eventsPeriodSecs }}\"",
    ] {
        assert!(yaml.contains(expected), "no {expected:?} in:\n{yaml}");
    }

    // The 2013 workflow: accounts from `chorus provision` (20 classes of 10), then 100
    // users for 30 s with the binary, period 2 s.
    let users = 100;
    let (server, csv) = replay_target(2, 20, 10, &out).await;
    let before = crate::util::demo_stats(&server.url()).await["requests_total"]
        .as_u64()
        .unwrap();
    let result = run_binary(&scenario_path, &server.url(), &csv, users, 50, "30s", &out);
    assert_no_failures(&result, &scenario_path);
    let stats = crate::util::demo_stats(&server.url()).await;
    assert_eq!(
        stats["requests_total"].as_u64().unwrap() - before,
        result.total.requests
    );
    assert_distinct_students(&stats, users as usize);
    assert_paced(&stats, 2000, 2 * users as usize);
    server.shutdown().await;

    // The same file against an app that says 1 s, with the library: the loop follows it.
    let users = 20;
    let (server, csv) = replay_target(1, 4, 6, &out).await;
    let scenario = load(&scenario_path, Some(&csv), &server.url());
    let result = run_engine(scenario, users, 9).await;
    assert_no_failures(&result, &scenario_path);
    let stats = crate::util::demo_stats(&server.url()).await;
    assert_distinct_students(&stats, users as usize);
    assert_paced(&stats, 1000, 2 * users as usize);
    server.shutdown().await;

    // --redact: nothing secret of the capture is left, and the scenario still loads.
    let redacted_path = out.join("redacted.yaml");
    let redacted = convert_with_binary(&capture, &redacted_path, &["--redact"]);
    assert_no_secret(&redacted, &secrets_of(&har));
    load(&redacted_path, Some(&csv), "http://127.0.0.1:9");
}

/// `demo/capture.har` is the capture `chorus demo` converts: a recording of this kind,
/// remade by this test with `CHORUS_REMAKE_DEMO_CAPTURE=1 cargo test shipped_demo_capture`
/// (the README says so). Otherwise it checks that the shipped file is one: a student's
/// session through the recorder, every API call answered, events posted at a steady pace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_demo_capture_is_a_recorded_student_session() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/capture.har");
    if std::env::var_os("CHORUS_REMAKE_DEMO_CAPTURE").is_some() {
        let out = output_dir("remake_demo_capture");
        let capture = record_student_session(&out).await;
        std::fs::copy(&capture, &shipped).unwrap();
    }
    let har = read_har(&shipped);
    assert_eq!(har.log.creator.name, "chorus");
    let calls: Vec<(String, String, u16)> = har
        .log
        .entries
        .iter()
        .map(|entry| {
            let url = url::Url::parse(&entry.request.url).unwrap();
            (
                entry.request.method.clone(),
                url.path().to_owned(),
                entry.response.status,
            )
        })
        .filter(|(_, path, _)| path.starts_with("/api/"))
        .collect();
    let count = |path: &str| calls.iter().filter(|(_, p, _)| p == path).count();
    assert_eq!(count("/api/v2/auth/login/glasslab"), 1, "{calls:?}");
    assert_eq!(count("/api/v2/data/session/start"), 1, "{calls:?}");
    assert!(count("/api/v2/data/events") >= 2, "{calls:?}");
    assert_eq!(count("/api/v2/data/session/end"), 1, "{calls:?}");
    assert!(
        calls.iter().all(|(_, _, status)| *status == 200),
        "{calls:?}"
    );
}
