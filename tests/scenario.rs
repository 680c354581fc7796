//! Integration tests for `scenario` (see tests/integration.rs): loading fixture files, the
//! exact text of load errors with their `line:column`, and the hand-written demo scenario.

use std::path::{Path, PathBuf};

use chorus::scenario::{self, Body, LoadOptions, Scenario, StepKind, Think, Vars};

mod logins;

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

/// The problems loading `name` reports, one per line.
fn problems(name: &str) -> String {
    let path = fixtures().join(name);
    match scenario::load(&path, &LoadOptions::default()) {
        Ok(_) => panic!("{name} loaded; expected problems"),
        Err(err) => err
            .to_string()
            .replace(&format!("{}/", fixtures().display()), ""),
    }
}

fn eq_lines(expected: &[&str], got: &str) {
    let expected = expected.join("\n");
    chorus_eq(&expected, got);
}

fn chorus_eq(expected: &str, got: &str) {
    if expected != got {
        panic!("\n\nexpected:\n{expected}\n\ngot:\n{got}\n");
    }
}

/// Every unknown key is reported, and the rest of the file is still checked.
#[test]
fn unknown_fields_are_named_with_a_suggestion() {
    eq_lines(
        &[
            "unknown_field.yaml:2:1: header: unknown field `header`; did you mean `headers`?",
            "unknown_field.yaml:6:5: flows[0].wieght: unknown field `wieght`; did you mean `weight`?",
            "unknown_field.yaml:9:9: flows[0].steps[0].jsn: unknown field `jsn`; did you mean `json`?",
            "unknown_field.yaml:12:9: flows[0].steps[0].chekc: unknown field `chekc`; did you mean `check`?",
            "unknown_field.yaml:14:16: flows[0].steps[1].think: unknown variable `missing`: not a data source, a `vars:` entry, a --var, an extracted value, a `repeat`'s `as` or a built-in (vu, iteration, last_status)",
        ],
        &problems("unknown_field.yaml"),
    );
}

#[test]
fn bad_template_is_placed_at_its_string() {
    eq_lines(
        &[
            "bad_template.yaml:5:14: flows[0].steps[0].get: bad template \"/api/v2/data/config/{{ gameId }\": `{{` at character 21 has no matching `}}`",
        ],
        &problems("bad_template.yaml"),
    );
}

#[test]
fn bad_jsonpath_is_reported_at_load() {
    eq_lines(
        &[
            "bad_jsonpath.yaml:8:22: flows[0].steps[0].extract.sessionId: bad JSONPath \"$.session[\": parser error at character 10",
        ],
        &problems("bad_jsonpath.yaml"),
    );
}

#[test]
fn missing_data_file_names_the_file_and_the_fix() {
    eq_lines(
        &[
            "missing_data_file.yaml:4:11: data.users.file: data file no-such-users.csv not found; create it (chorus provision writes one) or pass --data users=FILE",
        ],
        &problems("missing_data_file.yaml"),
    );
}

#[test]
fn missing_column_names_the_columns_there_are() {
    eq_lines(
        &[
            "missing_column.yaml:11:21: flows[0].steps[0].json.password: `user.email`: users.csv has no column `email` (its columns: username, password, class)",
        ],
        &problems("missing_column.yaml"),
    );
}

#[test]
fn weight_zero_is_refused() {
    eq_lines(
        &["weight_zero.yaml:4:13: flows[0].weight: expected a positive integer, found 0"],
        &problems("weight_zero.yaml"),
    );
}

#[test]
fn wrong_type_says_what_was_expected_and_found() {
    eq_lines(
        &["wrong_type.yaml:4:13: flows[0].weight: expected a positive integer, found \"high\""],
        &problems("wrong_type.yaml"),
    );
}

#[test]
fn every_problem_is_reported_in_file_order() {
    eq_lines(
        &[
            "many_problems.yaml:3:12: timeouts.connect: expected a duration such as 500ms, 10s, 1m30s or 1h (a bare number is seconds), found \"soon\"",
            "many_problems.yaml:6:13: flows[0].weight: expected a positive integer, found -2",
            "many_problems.yaml:8:16: flows[0].steps[0].think: expected a duration (2s), a range (10s..30s) or a template (\"{{ eventsPeriodSecs }}\", in seconds), found \"fast\"",
            "many_problems.yaml:9:17: flows[0].steps[1].repeat: expected a count (3), a range (3..8) or a template (\"{{ n }}\"), found \"3..x\"",
            "many_problems.yaml:13:9: flows[0].steps[2].think: a step is one thing: `get` and `think` are both here; split them into two steps",
            "many_problems.yaml:16:14: flows[1].steps[0].get: unknown variable `nobody`: not a data source, a `vars:` entry, a --var, an extracted value, a `repeat`'s `as` or a built-in (vu, iteration, last_status)",
            "many_problems.yaml:17:15: flows[1].steps[0].when: bad condition \"level >\": syntax error: unexpected end of input, expected expression",
        ],
        &problems("many_problems.yaml"),
    );
}

/// Writes `text` as `scenario.yaml` (and users.csv) in a fresh folder and loads it.
fn load_text(text: &str, options: &LoadOptions) -> Result<Scenario, String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures().join("users.csv"), dir.path().join("users.csv")).unwrap();
    let path = dir.path().join("scenario.yaml");
    std::fs::write(&path, text).unwrap();
    scenario::load(&path, options).map_err(|err| {
        err.to_string()
            .replace(&format!("{}/", dir.path().display()), "")
    })
}

#[test]
fn yaml_syntax_errors_and_duplicate_keys() {
    let err = load_text(
        "host: http://127.0.0.1:1\nflows: [\n",
        &LoadOptions::default(),
    )
    .unwrap_err();
    assert!(err.starts_with("scenario.yaml:3:1: YAML syntax: "), "{err}");
    let err = load_text(
        "host: http://127.0.0.1:1\nflows:\n  - steps:\n      - get: /\n        get: /x\n",
        &LoadOptions::default(),
    )
    .unwrap_err();
    chorus_eq(
        "scenario.yaml:5:9: flows[0].steps[0].get: duplicate key `get` (first at line 4); keep one",
        &err,
    );
}

#[test]
fn relative_urls_need_a_host_and_host_can_come_from_the_command_line() {
    let text = "flows:\n  - steps:\n      - get: /api/course\n";
    let err = load_text(text, &LoadOptions::default()).unwrap_err();
    chorus_eq(
        "scenario.yaml:3:14: flows[0].steps[0].get: \"/api/course\" is relative but the scenario has no `host:`; add `host: http://...` or pass -H",
        &err,
    );
    let options = LoadOptions {
        host_override: Some("http://127.0.0.1:9".to_owned()),
        ..LoadOptions::default()
    };
    let scenario = load_text(text, &options).unwrap();
    assert_eq!(scenario.allowed_hosts, ["127.0.0.1:9"]);
    let text = "host: http://a.test\nflows:\n  - steps:\n      - get: https://b.test/x\n      - get: \"http://c.test:8080/{{ vu }}\"\n";
    let scenario = load_text(text, &LoadOptions::default()).unwrap();
    assert_eq!(
        scenario.allowed_hosts,
        ["a.test:80", "b.test:443", "c.test:8080"]
    );
    let names = request_names(&scenario.flows[0].steps);
    assert_eq!(names, ["https://b.test/x", "http://c.test:8080/[vu]"]);
}

#[test]
fn data_overrides_and_unknown_sources() {
    let text = "host: http://127.0.0.1:1\ndata:\n  users: {file: missing.csv, as: user}\nflows:\n  - steps:\n      - get: \"/u/{{ user.username }}\"\n";
    let options = LoadOptions {
        data_overrides: vec![("users".to_owned(), fixtures().join("users.csv"))],
        ..LoadOptions::default()
    };
    let scenario = load_text(text, &options).unwrap();
    assert_eq!(scenario.data[0].rows.len(), 3);
    let options = LoadOptions {
        data_overrides: vec![("students".to_owned(), fixtures().join("users.csv"))],
        ..LoadOptions::default()
    };
    let err = load_text(text, &options).unwrap_err();
    assert!(
        err.starts_with("scenario.yaml: --data students=...: the scenario has no data source `students` (it has: users)"),
        "{err}"
    );
}

#[test]
fn unique_sources_refuse_more_users_than_rows_before_the_run() {
    let scenario = load_demo();
    assert!(scenario.check_capacity(3).is_ok());
    let err = scenario.check_capacity(4).unwrap_err().to_string();
    assert!(err.starts_with("data source `users` ("), "{err}");
    assert!(
        err.contains("has 3 rows, one per user, but the run asks for 4 users"),
        "{err}"
    );
}

fn request_names(steps: &[scenario::Step]) -> Vec<String> {
    steps
        .iter()
        .filter_map(|step| match &step.kind {
            StepKind::Request(request) => Some(request.name.clone()),
            _ => None,
        })
        .collect()
}

/// Renders the demo's session start as user 1 would send it, after its login extracted
/// values: the course id stays a number and each user has its own device id.
#[test]
fn demo_session_start_renders_typed_json_per_user() {
    let scenario = load_demo();
    let mut first = Vars::for_user(&scenario, 1).unwrap();
    let second = Vars::for_user(&scenario, 2).unwrap();
    assert_eq!(first.get("user").unwrap()["username"], "student2");
    assert_ne!(first.get("deviceId"), second.get("deviceId"));
    assert_eq!(first.get("deviceId").unwrap().as_str().unwrap().len(), 12);
    first.set("sessionId", serde_json::json!("s-1"));
    first.set("courseId", serde_json::json!(42));
    let StepKind::Request(start) = &scenario.flows[0].steps[0].kind else {
        panic!("the first step of the play flow is the session start");
    };
    let Some(Body::Json(body)) = &start.body else {
        panic!("the session start sends JSON");
    };
    let sent: serde_json::Value = serde_json::from_str(&body.render(&first).unwrap()).unwrap();
    assert_eq!(sent["courseId"], serde_json::json!(42));
    assert_eq!(sent["userSessionId"], "s-1");
    assert_eq!(sent["gameId"], "AA-1");
    assert_eq!(sent["deviceId"], first.get("deviceId").unwrap());
    let StepKind::Repeat(repeat) = &scenario.flows[0].steps[2].kind else {
        panic!("the third step repeats the event posts");
    };
    assert!(matches!(repeat.count, scenario::Count::Range(2, 6)));
    let condition = scenario.flows[0].steps[2].when.as_ref().unwrap();
    first.set("eventsDetailLevel", serde_json::json!(1));
    assert!(!condition.evaluate(&first).unwrap());
    first.set("eventsDetailLevel", serde_json::json!(2));
    assert!(condition.evaluate(&first).unwrap());
    let StepKind::Think(Think::Template(pause)) = &repeat.steps[0].kind else {
        panic!("the repeat waits eventsPeriodSecs");
    };
    first.set("eventsPeriodSecs", serde_json::json!(2));
    assert_eq!(pause.render_value(&first).unwrap(), serde_json::json!(2));
}

#[test]
fn cli_vars_replace_file_vars() {
    let options = LoadOptions {
        vars: vec![("gameId".to_owned(), "BB-2".to_owned())],
        ..demo_options()
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/scenario.yaml");
    let scenario = scenario::load(&path, &options).unwrap();
    let vars = Vars::for_user(&scenario, 0).unwrap();
    assert_eq!(vars.get("gameId"), Some(serde_json::json!("BB-2")));
}

#[test]
fn from_urls_gets_each_url_in_turn() {
    let urls: Vec<url::Url> = ["http://127.0.0.1:8001/a?x=1", "http://127.0.0.1:8001/b"]
        .iter()
        .map(|u| u.parse().unwrap())
        .collect();
    let scenario = Scenario::from_urls(&urls, Some(std::time::Duration::from_secs(1)));
    assert_eq!(
        scenario.host.as_ref().unwrap().as_str(),
        "http://127.0.0.1:8001/"
    );
    assert_eq!(scenario.allowed_hosts, ["127.0.0.1:8001"]);
    assert_eq!(scenario.flows.len(), 1);
    assert_eq!(request_names(&scenario.flows[0].steps), ["/a?x=1", "/b"]);
    assert_eq!(scenario.flows[0].steps.len(), 3);
    assert!(matches!(
        scenario.flows[0].steps[2].kind,
        StepKind::Think(Think::Fixed(pause)) if pause.as_secs() == 1
    ));
}

#[test]
fn request_shorthands_and_general_form() {
    let text = r#"host: http://127.0.0.1:1
headers: {X-Client: chorus}
timeouts: {connect: 2s, request: 30s}
on_start:
  - request: {method: put, url: /things/1}
    name: put a thing
    form: {a: "1", b: "{{ vu }}"}
    expect_status: [200, 409]
    check:
      - status: [200, 409]
      - body_contains: ok
  - delete: /things/1
    body: "raw {{ iteration }}"
    headers: {Content-Type: text/plain}
    extract:
      token: {header: x-token}
      sid: {cookie: sid, default: none}
      csrf: {form_field: csrf}
      word: {regex: "w=(\\w+)"}
      itemId: {header: Location, regex: '/items/(\d+)'}
flows:
  - steps:
      - think: 1.5
      - repeat: "{{ 2 + 1 }}"
        steps:
          - emit: {username: "u{{ vu }}", password: secret}
"#;
    let scenario = load_text(text, &LoadOptions::default()).unwrap();
    assert_eq!(
        scenario.defaults.connect_timeout,
        std::time::Duration::from_secs(2)
    );
    assert_eq!(
        scenario.defaults.timeout,
        std::time::Duration::from_secs(30)
    );
    assert_eq!(scenario.defaults.headers[0].0.as_str(), "x-client");
    let StepKind::Request(put) = &scenario.on_start[0].kind else {
        panic!()
    };
    assert_eq!(put.method, http::Method::PUT);
    assert_eq!(put.name, "put a thing");
    assert_eq!(put.expect_status, Some(vec![200, 409]));
    assert_eq!(put.check.len(), 2);
    assert!(matches!(&put.body, Some(Body::Form(fields)) if fields.len() == 2));
    let StepKind::Request(delete) = &scenario.on_start[1].kind else {
        panic!()
    };
    assert_eq!(delete.method, http::Method::DELETE);
    assert_eq!(delete.name, "/things/1");
    let extracted: Vec<&str> = delete.extract.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(extracted, ["token", "sid", "csrf", "word", "itemId"]);
    let steps = &scenario.flows[0].steps;
    assert!(matches!(steps[0].kind, StepKind::Think(Think::Fixed(d)) if d.as_millis() == 1500));
    let StepKind::Repeat(repeat) = &steps[1].kind else {
        panic!()
    };
    let StepKind::Emit(emit) = &repeat.steps[0].kind else {
        panic!()
    };
    let columns: Vec<&str> = emit.columns.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(columns, ["username", "password"]);
}

#[test]
fn thresholds_are_checked_at_load() {
    let text = "host: http://127.0.0.1:1\nflows:\n  - steps:\n      - get: /\nthresholds:\n  - p95<300ms\n  - p95 fast\n";
    let err = load_text(text, &LoadOptions::default()).unwrap_err();
    assert!(
        err.starts_with("scenario.yaml:7:5: thresholds[1]: threshold \"p95 fast\": "),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn monitors_are_read_and_checked_at_load() {
    let text = "host: http://127.0.0.1:1\nflows:\n  - steps:\n      - get: /\nmonitors:\n  - host\n  - prometheus:http://127.0.0.1:9100/metrics#node_load1\n";
    let scenario = load_text(text, &LoadOptions::default()).unwrap();
    let shown: Vec<String> = scenario.monitors.iter().map(|m| m.to_string()).collect();
    assert_eq!(
        shown,
        [
            "host",
            "prometheus:http://127.0.0.1:9100/metrics#node_load1"
        ]
    );
    let bad = "host: http://127.0.0.1:1\nflows:\n  - steps:\n      - get: /\nmonitors:\n  - host\n  - proc:12\n  - prometheus:http://x/metrics#a{b}\n";
    let err = load_text(bad, &LoadOptions::default()).unwrap_err();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines[0],
        "scenario.yaml:7:5: monitors[1]: expected process:PID, process:NAME, host or prometheus:URL",
        "{err}"
    );
    assert!(
        lines[1].starts_with("scenario.yaml:8:5: monitors[2]: #a{b}: '{' in \"a{b}\""),
        "{err}"
    );
    assert_eq!(lines.len(), 2, "{err}");
}

/// Odd files get problems, never a panic or an empty report.
#[test]
fn odd_input_is_reported_not_fatal() {
    let inputs = [
        "",
        "- 1",
        "[",
        "host: 5",
        ": :",
        "flows: {a: 1}",
        "flows:\n  - 5",
        "flows:\n  - steps: 7",
        "on_start: [{get: {a: 1}}]",
        "on_start: [{think: [1]}]",
        "on_start: [{repeat: 2}]",
        "on_start: [{emit: {}}]",
        "on_start: [{get: 'http://'}]",
        "host: http://h\non_start: [{get: /, json: {a: '{{'}}]",
        "host: http://h\non_start: [{get: /, extract: {x: {}}}]",
        "host: http://h\non_start: [{get: /, check: [{}]}]",
        "host: http://h\non_start: [{get: /, headers: {'bad header': x}}]",
        "host: http://h\ndata: {u: {file: '', mode: sometimes}}\non_start: [{get: /}]",
        "host: http://h\nvars: [1]\non_start: [{get: /}]",
        "host: http://h\non_start: [{get: /, expect_status: 99}]",
        "\u{0}\u{1}binary",
    ];
    for input in inputs {
        match load_text(input, &LoadOptions::default()) {
            Ok(_) => panic!("{input:?} loaded"),
            Err(err) => assert!(!err.trim().is_empty(), "{input:?}: an empty report"),
        }
    }
}

/// A host that cannot be read is one problem, not one per relative URL.
#[test]
fn a_bad_host_is_one_problem() {
    let text = "host: [1]\non_start: [{get: /a}, {get: /b}]\n";
    chorus_eq(
        "scenario.yaml:1:7: host: expected text, found a list",
        &load_text(text, &LoadOptions::default()).unwrap_err(),
    );
}

/// A mistake inside one data source does not hide the rest of the file.
#[test]
fn a_bad_data_source_does_not_hide_the_host() {
    let text =
        "host: http://h\ndata: {u: {file: users.csv, mode: sometimes}}\non_start: [{get: /}]\n";
    chorus_eq(
        "scenario.yaml:2:35: data.u.mode: unknown value `sometimes`; expected one of `unique`, `cycle`, `random`, `shared`",
        &load_text(text, &LoadOptions::default()).unwrap_err(),
    );
}

#[test]
fn repeat_as_parallel_and_emit_outcome() {
    let text = r#"host: http://127.0.0.1:1
on_start:
  - repeat: 3
    as: c
    parallel: "{{ workers | default(2) }}"
    steps:
      - post: "/classes/{{ c }}"
      - emit: {class: "{{ c }}"}
        outcome: "{{ 'created' if last_status == 200 else 'already there' }}"
"#;
    let scenario = load_text(text, &LoadOptions::default()).unwrap();
    let StepKind::Repeat(repeat) = &scenario.on_start[0].kind else {
        panic!()
    };
    assert_eq!(repeat.index_as.as_deref(), Some("c"));
    assert!(repeat.parallel.is_some());
    let StepKind::Emit(emit) = &repeat.steps[1].kind else {
        panic!()
    };
    assert!(emit.outcome.is_some());

    let misplaced = "on_start:\n  - get: http://127.0.0.1:1/\n    as: c\n  - emit: {a: b}\n    parallel: 2\n  - think: 1\n    outcome: x\n";
    let err = load_text(misplaced, &LoadOptions::default()).unwrap_err();
    for expected in [
        "scenario.yaml:3:5: on_start[0].as: `as` belongs to a `repeat` step",
        "scenario.yaml:5:5: on_start[1].parallel: `parallel` belongs to a `repeat` step",
        "scenario.yaml:7:5: on_start[2].outcome: `outcome` belongs to an `emit` step",
    ] {
        assert!(err.contains(expected), "no {expected:?} in:\n{err}");
    }
    let bad = "on_start:\n  - repeat: 2\n    as: 2c\n    parallel: 0\n    steps: [{emit: {a: \"{{ d }}\"}}]\n";
    let err = load_text(bad, &LoadOptions::default()).unwrap_err();
    for expected in [
        "scenario.yaml:3:9: on_start[0].as: `2c` cannot be a variable name",
        "scenario.yaml:4:15: on_start[0].parallel: `parallel` must be at least 1",
        "unknown variable `d`",
    ] {
        assert!(err.contains(expected), "no {expected:?} in:\n{err}");
    }
}
