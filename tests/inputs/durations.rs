//! One duration and rate grammar with bounds, on the command line, in scenario files, in
//! convert and through the page's API (report rows 13, 15, 29-33, 58-59).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chorus::engine::EngineOptions;
use chorus::scenario::{self, LoadOptions, Scenario};
use chorus::web::{self, Runs, WebConfig};
use serde_json::{Value, json};

use super::refused;
use crate::util::{self, output_dir};

const RUN_TIME: &str = "a run time must be more than 0s and at most 1y";

#[test]
fn huge_tiny_and_zero_load_flags_are_refused_naming_the_flag_and_the_range() {
    let dir = output_dir("inputs_load_flags");
    // Nothing listens on port 9; none of these may get as far as sending.
    let base = ["run", "--url", "http://127.0.0.1:9/", "--headless"];
    let cases: &[(&[&str], String)] = &[
        (&["-t", "1e300"], format!("'--run-time <RUN_TIME>': {RUN_TIME}, found \"1e300\"")),
        (
            &["-t", "18446744073709551615"],
            format!("'--run-time <RUN_TIME>': {RUN_TIME}, found \"18446744073709551615\""),
        ),
        (&["-t", "1e19"], format!("{RUN_TIME}, found \"1e19\"")),
        (
            &["-t", "500000000000y"],
            format!("{RUN_TIME}, found \"500000000000y\""),
        ),
        (&["-t", "0"], format!("{RUN_TIME}, found \"0\"")),
        (
            &["-r", "1e-300"],
            "'--spawn-rate <SPAWN_RATE>': a spawn rate must be from 1/d to 10000000/s, found \"1e-300\"".to_owned(),
        ),
        (
            &["--arrival-rate", "1e300/s", "--max-users", "2", "-t", "2s"],
            "--arrival-rate: an arrival rate must be from 1/d to 10000000/s, found \"1e300/s\"".to_owned(),
        ),
        (
            &["--arrival-rate", "1e-300/s"],
            "--arrival-rate: an arrival rate must be from 1/d to 10000000/s, found \"1e-300/s\"".to_owned(),
        ),
        (
            &["--stages", "1e300:5"],
            format!("--stages: stage 1: {RUN_TIME}, found \"1e300\""),
        ),
        (
            &["--stop-timeout", "1e300"],
            "'--stop-timeout <STOP_TIMEOUT>': a stop timeout must be from 0s to 1d, found \"1e300\"".to_owned(),
        ),
        (
            &["--think", "1e300"],
            "'--think <THINK>': a think time must be from 0s to 1d, found \"1e300\"".to_owned(),
        ),
        (
            &["-u", "0"],
            "'--users <USERS>': the number of users must be at least 1, found 0".to_owned(),
        ),
        (
            &["-u", "18446744073709551615"],
            "18446744073709551615 users is more than chorus runs from one command (10000000)".to_owned(),
        ),
        (
            &["--workers", "0"],
            "'--workers <WORKERS>': expected from 1 to 1024 threads (leave it out for one per core), found \"0\"".to_owned(),
        ),
        (
            &["--workers", "100000"],
            "expected from 1 to 1024 threads (leave it out for one per core), found \"100000\"".to_owned(),
        ),
    ];
    for (extra, expected) in cases {
        let args: Vec<&str> = base.iter().chain(extra.iter()).copied().collect();
        refused(&args, &dir, expected);
    }
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn scenario_durations_out_of_range_are_placed_at_the_value() {
    let dir = output_dir("inputs_scenario_durations");
    let host = "host: http://127.0.0.1:9\n";
    write(
        &dir,
        "think.yaml",
        &format!("{host}flows:\n  - steps: [{{think: 1e300}}, {{get: /}}]\n"),
    );
    refused(
        &["run", "think.yaml", "--headless", "-t", "1s"],
        &dir,
        "think.yaml:3:21: flows[0].steps[0].think: a think time must be from 0s to 1d, found \"1e300\"",
    );
    write(
        &dir,
        "range.yaml",
        &format!("{host}flows:\n  - steps: [{{think: 1s..2d}}, {{get: /}}]\n"),
    );
    refused(
        &["run", "range.yaml", "--headless", "-t", "1s"],
        &dir,
        "range.yaml:3:21: flows[0].steps[0].think: a think time must be from 0s to 1d, found \"2d\"",
    );
    write(
        &dir,
        "timeout.yaml",
        &format!(
            "{host}timeouts: {{request: 99999999999999999999999s}}\nflows:\n  - steps: [{{get: /}}]\n"
        ),
    );
    refused(
        &["run", "timeout.yaml", "--headless", "-t", "1s"],
        &dir,
        "timeout.yaml:2:21: timeouts.request: a timeout must be more than 0s and at most 1d, found \"99999999999999999999999s\"",
    );
}

#[test]
fn a_scenario_takes_what_the_command_line_takes() {
    let dir = output_dir("inputs_one_grammar");
    // `1hour` was refused in a file and accepted by -t; `1.5s` the other way round.
    write(
        &dir,
        "s.yaml",
        "host: http://127.0.0.1:9\ntimeouts: {connect: 1.5s, request: 1hour}\nflows:\n  - steps: [{think: 1m30s}, {think: 2 mins}, {think: 0.5..1.5s}, {get: /}]\n",
    );
    let scenario = scenario::load(&dir.join("s.yaml"), &LoadOptions::default())
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(
        scenario.defaults.connect_timeout,
        Duration::from_millis(1500)
    );
    assert_eq!(scenario.defaults.timeout, Duration::from_secs(3600));
}

fn har_entry(started: &str, url: &str) -> Value {
    json!({
        "startedDateTime": started, "time": 5,
        "request": {"method": "GET", "url": url, "httpVersion": "HTTP/1.1", "cookies": [],
                    "headers": [], "queryString": [], "headersSize": -1, "bodySize": 0},
        "response": {"status": 200, "statusText": "", "httpVersion": "HTTP/1.1", "cookies": [],
                     "headers": [], "content": {"size": 2, "mimeType": "application/json", "text": "{}"},
                     "redirectURL": "", "headersSize": -1, "bodySize": 2},
        "cache": {}, "timings": {"send": 0, "wait": 5, "receive": 0}
    })
}

#[test]
fn convert_refuses_a_huge_think_scale_and_never_writes_a_think_run_refuses() {
    let dir = output_dir("inputs_think_scale");
    // Two requests three years apart: a capture left open, then used again.
    let har = json!({"log": {"version": "1.2", "creator": {"name": "t", "version": "1"}, "entries": [
        har_entry("2023-01-01T00:00:00.000Z", "http://app.test/a"),
        har_entry("2026-01-01T00:00:00.000Z", "http://app.test/b"),
    ]}});
    write(&dir, "c.har", &har.to_string());
    refused(
        &["convert", "c.har", "--think-scale", "1e300", "-o", "c.yaml"],
        &dir,
        "'--think-scale <THINK_SCALE>': expected a factor from 0 to 100 (1 keeps the recorded pauses, 0.5 halves them), found \"1e300\"",
    );
    assert!(!dir.join("c.yaml").exists());
    let (status, stderr) = super::run(
        &["convert", "c.har", "--think-scale", "100", "-o", "c.yaml"],
        &dir,
    );
    assert_eq!(status, Some(0), "{stderr}");
    let yaml = std::fs::read_to_string(dir.join("c.yaml")).unwrap();
    assert!(yaml.contains("- think: 86400s"), "{yaml}");
    scenario::load(&dir.join("c.yaml"), &LoadOptions::default())
        .unwrap_or_else(|err| panic!("the converted scenario loads: {err}"));
}

async fn post(url: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{url}/api/start"))
        .json(&body)
        .send()
        .await
        .expect("the page answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_page_refuses_the_same_values_with_a_400_and_stays_usable() {
    let (demo, _app) = util::demo_app(Default::default()).await;
    let target = url::Url::parse(&format!("{}/__demo/delay/1", demo.url())).unwrap();
    let scenario = Scenario::from_urls(&[target], None);
    let engine = EngineOptions {
        workers: 1,
        stop_timeout: Duration::from_secs(1),
        ..EngineOptions::default()
    };
    let runs = Runs::new(Arc::new(scenario), engine);
    let page = web::serve(WebConfig::new("127.0.0.1:0".parse().unwrap()), runs.clone())
        .await
        .unwrap();
    let url = page.url();
    let range = "must be more than 0s and at most 1y";
    let cases = [
        (
            json!({"users": 1, "spawn_rate": 1, "run_time": 1e300}),
            format!("run_time {range}, found 1e300"),
        ),
        (
            json!({"users": 1, "spawn_rate": 1, "run_time": "1e300"}),
            format!("run_time {range}, found \"1e300\""),
        ),
        (
            json!({"users": 1, "spawn_rate": 1, "run_time": "500000000000y"}),
            format!("run_time {range}, found \"500000000000y\""),
        ),
        (
            json!({"users": 1, "spawn_rate": 1e-300}),
            "spawn_rate must be from 1/d to 10000000/s, found 1e-300".to_owned(),
        ),
        (
            json!({"arrival_rate": "1e300/s", "max_users": 2}),
            "arrival_rate must be from 1/d to 10000000/s, found \"1e300/s\"".to_owned(),
        ),
    ];
    for (body, message) in cases {
        let (status, answer) = post(&url, body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"], message.as_str(), "{body}");
    }
    // Not wedged: a run with sane values starts, ends by its run time, and another starts.
    for _ in 0..2 {
        let (status, answer) =
            post(&url, json!({"users": 1, "spawn_rate": 1, "run_time": "1s"})).await;
        assert_eq!(status, 200, "{answer}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let state: Value = reqwest::get(format!("{url}/api/state"))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if state["state"] == "stopped" {
                break;
            }
            assert!(Instant::now() < deadline, "the run did not end: {state}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
