//! Integration tests for `scenario` (see tests/integration.rs): loading fixture files, the
//! exact text of load errors with their `line:column`, and the hand-written demo scenario.

use std::path::{Path, PathBuf};

use chorus::scenario::{self, Body, LoadOptions, Scenario, StepKind, Think, Vars};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scenario")
}

fn demo_options() -> LoadOptions {
    LoadOptions {
        data_overrides: vec![("users".to_owned(), fixtures().join("users.csv"))],
        ..LoadOptions::default()
    }
}

fn load_demo() -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/scenario.yaml");
    match scenario::load(&path, &demo_options()) {
        Ok(scenario) => scenario,
        Err(err) => panic!("demo/scenario.yaml does not load:\n{err}"),
    }
}

#[test]
fn demo_scenario_loads() {
    let scenario = load_demo();
    assert_eq!(
        scenario.host.as_ref().map(url::Url::as_str),
        Some("http://127.0.0.1:8001/")
    );
    assert_eq!(scenario.allowed_hosts, ["127.0.0.1:8001"]);
    let flows: Vec<(&str, u32)> = scenario
        .flows
        .iter()
        .map(|f| (f.name.as_str(), f.weight))
        .collect();
    assert_eq!(
        flows,
        [
            ("play a game session", 82),
            ("save game", 7),
            ("total time played", 5)
        ]
    );
    assert_eq!(scenario.on_start.len(), 4);
    assert_eq!(scenario.data[0].rows.len(), 3);
    let names: Vec<&str> = scenario
        .on_start
        .iter()
        .filter_map(|step| match &step.kind {
            StepKind::Request(request) => Some(request.name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        names,
        [
            "/api/v2/auth/login/glasslab",
            "/api/v2/lms/courses",
            "/api/v2/data/config/[gameId]",
            "/api/v2/data/game/[gameId]/playInfo"
        ]
    );
}
