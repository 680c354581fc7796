//! Scripts loaded with a scenario and called without a server: templates, steps, checks,
//! hooks, the sandbox, the time limit and load-time errors with their places.

use http::HeaderMap;
use serde_json::json;

use crate::scenario::{self, LoadOptions, ResponseView, Scenario, StepKind, Vars};

/// A scenario in a fresh folder with `helpers.js` (and `users.csv`); its steps are `steps`.
fn scenario_with(script: &str, steps: &str) -> (tempfile::TempDir, Result<Scenario, String>) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::write(dir.path().join("helpers.js"), script).expect("write the script");
    std::fs::write(dir.path().join("users.csv"), "name,secret\nada,s3cret\n").expect("csv");
    let text = format!(
        "host: http://127.0.0.1:1\nscripts: [helpers.js]\ndata:\n  users: {{ file: users.csv, mode: cycle, as: user }}\nflows:\n  - steps:\n{steps}"
    );
    let path = dir.path().join("s.yaml");
    let loaded =
        scenario::load_str(&text, &path, &LoadOptions::default()).map_err(|e| e.to_string());
    (dir, loaded)
}

fn first_step(scenario: &Scenario) -> &StepKind {
    &scenario.flows[0].steps[0].kind
}

const HELPERS: &str = r#"
export function sign(body, key) {
  return key + ":" + body.length;
}
export function basket(vars, last) {
  return { total: last.json.items.reduce((a, b) => a + b, 0), seen: vars.user.name };
}
export function valid(response) {
  return response.json.ok === true ? true : "not ok: " + response.body;
}
export function boom() {
  throw new TypeError("bad input");
}
export function spin() {
  for (;;) {}
}
export function escapes() {
  return [typeof require, typeof fetch, typeof std, typeof os, typeof XMLHttpRequest, typeof process].join(",");
}
export function users() {
  return open("users.csv").split("\n")[1];
}
export function secrets() {
  return open("/etc/passwd");
}
"#;

#[test]
fn templates_call_exported_functions() {
    let (_dir, loaded) = scenario_with(
        HELPERS,
        "      - get: \"/x?s={{ js.sign('hello', user.secret) }}&u={{ js.users() }}\"\n",
    );
    let scenario = loaded.expect("loads");
    let StepKind::Request(request) = first_step(&scenario) else {
        panic!("a request")
    };
    let vars = Vars::for_user(&scenario, 0).expect("vars");
    assert_eq!(
        request.url.render(&vars).expect("renders"),
        "/x?s=s3cret:5&u=ada,s3cret"
    );
}

#[test]
fn the_sandbox_has_no_way_out() {
    let (_dir, loaded) = scenario_with(
        HELPERS,
        "      - get: \"/{{ js.escapes() }}\"\n      - get: \"/{{ js.secrets() }}\"\n",
    );
    let scenario = loaded.expect("loads");
    let vars = Vars::for_user(&scenario, 0).expect("vars");
    let url = |i: usize| match &scenario.flows[0].steps[i].kind {
        StepKind::Request(request) => request.url.render(&vars),
        _ => panic!("a request"),
    };
    assert_eq!(
        url(0).expect("renders"),
        "/undefined,undefined,undefined,undefined,undefined,undefined"
    );
    let refused = url(1).expect_err("refused").to_string();
    assert!(
        refused.contains("open(\"/etc/passwd\"): scripts may only read the data files the scenario names (users, users.csv)"),
        "{refused}"
    );
}

#[test]
fn imports_are_refused_at_load() {
    let (_dir, loaded) = scenario_with(
        "import * as fs from \"fs\";\nexport function f() { return 1; }\n",
        "      - get: /\n",
    );
    let error = loaded.expect_err("refused");
    assert!(error.contains("helpers.js:"), "{error}");
    assert!(error.contains("fs"), "{error}");
}

#[test]
fn steps_set_what_they_return_from_the_last_response() {
    let (_dir, loaded) = scenario_with(
        HELPERS,
        "      - js: \"basket(vars, last_response)\"\n      - think: 1s\n",
    );
    let scenario = loaded.expect("loads");
    let scripts = scenario.scripts.clone().expect("scripts");
    assert!(scripts.reads_bodies());
    let StepKind::Script(call) = first_step(&scenario) else {
        panic!("a js step")
    };
    let mut vars = Vars::for_user(&scenario, 0).expect("vars");
    let headers = HeaderMap::new();
    let body = br#"{"items": [1, 2, 39]}"#;
    let view = ResponseView::new(200, &headers, body);
    scripts.after_response(&view, &mut vars).expect("kept");
    scripts.run_step(call, &mut vars).expect("runs");
    assert_eq!(vars.get("total"), Some(json!(42)));
    assert_eq!(vars.get("seen"), Some(json!("ada")));
}

#[test]
fn checks_pass_on_truthy_and_fail_with_the_returned_string() {
    let (_dir, loaded) = scenario_with(
        HELPERS,
        "      - get: /\n        check: [{ js: \"valid(response)\" }, { js: \"boom()\" }]\n",
    );
    let scenario = loaded.expect("loads");
    let StepKind::Request(request) = first_step(&scenario) else {
        panic!("a request")
    };
    let vars = Vars::for_user(&scenario, 0).expect("vars");
    let headers = HeaderMap::new();
    let good = ResponseView::new(200, &headers, br#"{"ok": true}"#);
    assert_eq!(request.check[0].evaluate(&good, &vars), Ok(()));
    let bad = ResponseView::new(200, &headers, br#"{"ok": false}"#);
    assert_eq!(
        request.check[0].evaluate(&bad, &vars),
        Err(r#"valid(response): not ok: {"ok": false}"#.to_owned())
    );
    assert_eq!(
        request.check[1].evaluate(&good, &vars),
        Err("boom(): helpers.js:12:13: TypeError: bad input".to_owned())
    );
}

#[test]
fn an_endless_loop_is_stopped_by_the_time_limit() {
    let (_dir, loaded) = scenario_with(
        HELPERS,
        "      - get: /\n        check: [{ js: \"spin()\" }]\n",
    );
    let scenario = loaded.expect("loads");
    let StepKind::Request(request) = first_step(&scenario) else {
        panic!("a request")
    };
    let vars = Vars::for_user(&scenario, 0).expect("vars");
    let headers = HeaderMap::new();
    let view = ResponseView::new(200, &headers, b"{}");
    let (kind, message) = request.check[0].judge(&view, &vars).expect_err("stopped");
    assert_eq!(kind, crate::stats::FailureKind::ScriptTimeout);
    assert_eq!(
        message,
        "spin() ran past the script time limit (100ms) and was stopped"
    );
    // The engine goes on after it.
    let good = ResponseView::new(200, &headers, b"{}");
    let (_, again) = request.check[0]
        .judge(&good, &vars)
        .expect_err("stopped again");
    assert!(again.contains("time limit"), "{again}");
}

#[test]
fn load_errors_name_their_places() {
    let (_dir, loaded) = scenario_with(
        "export function f(a) {\n  return a +;\n}\n",
        "      - get: /\n",
    );
    let error = loaded.expect_err("a syntax error");
    assert!(
        error.ends_with("helpers.js:2:13: SyntaxError: unexpected token in expression: ';'"),
        "{error}"
    );

    let (_dir, loaded) = scenario_with(
        HELPERS,
        "      - get: \"/{{ js.sing('a', 'b') }}\"\n      - js: \"computeBasket(vars)\"\n      - js: \"sign(\"\n",
    );
    let error = loaded.expect_err("unknown functions");
    let lines: Vec<&str> = error.lines().collect();
    assert_eq!(lines.len(), 3, "{error}");
    assert!(lines[0].ends_with("s.yaml:7:14: flows[0].steps[0].get: js.sing: `sing` is not a function the scripts export (they export: basket, boom, escapes, secrets, sign, spin, users, valid)"), "{error}");
    assert!(lines[1].ends_with("s.yaml:8:13: flows[0].steps[1].js: `computeBasket` is not a function the scripts export (they export: basket, boom, escapes, secrets, sign, spin, users, valid)"), "{error}");
    assert!(
        lines[2].contains("s.yaml:9:13: flows[0].steps[2].js: not a JavaScript expression"),
        "{error}"
    );
}

/// The hook's request and variables are made lazily (`script::lazy`); to the script they
/// are the plain copies they stand for.
#[test]
fn hooks_see_the_request_and_a_copy_of_the_variables() {
    let script = r#"
export function before_request(request, vars) {
  const before = vars.mine;
  vars.mine = 1;
  vars.user.name = "changed";
  const seen = {
    method: request.method, url: request.url, body: request.body,
    agent: request.headers["user-agent"], secret: vars.user.secret, missing: vars.nope,
    before: before === undefined, has: ["user" in vars, "js" in vars, "nope" in vars],
    keys: Object.keys(vars).filter((k) => ["user", "mine", "js"].includes(k) || k.startsWith("__")).sort(),
    json: JSON.parse(JSON.stringify(request)).headers["user-agent"],
  };
  return { "X-Seen": JSON.stringify(seen), "X-Remove": null };
}
"#;
    let (_dir, loaded) = scenario_with(script, "      - get: /\n");
    let scenario = loaded.expect("loads");
    let scripts = scenario.scripts.clone().expect("scripts");
    let vars = Vars::for_user(&scenario, 0).expect("vars");
    let url = url::Url::parse("http://127.0.0.1:1/pay?x=1").expect("url");
    for _ in 0..2 {
        let mut headers = HeaderMap::new();
        headers.insert("user-agent", "chorus".parse().expect("value"));
        headers.insert("x-remove", "gone".parse().expect("value"));
        let body = bytes::Bytes::from_static(b"payload");
        scripts
            .before_request(&http::Method::POST, &url, &mut headers, &body, &vars)
            .expect("runs");
        assert!(!headers.contains_key("x-remove"));
        assert_eq!(headers["user-agent"], "chorus");
        let seen: serde_json::Value =
            serde_json::from_slice(headers["x-seen"].as_bytes()).expect("JSON");
        assert_eq!(
            seen,
            json!({
                "method": "POST", "url": "http://127.0.0.1:1/pay?x=1", "body": "payload",
                "agent": "chorus", "secret": "s3cret", "before": true,
                "has": [true, false, false], "keys": ["mine", "user"], "json": "chorus",
            })
        );
    }
    assert_eq!(
        vars.get("user"),
        Some(json!({"name": "ada", "secret": "s3cret"}))
    );
    assert_eq!(vars.get("mine"), None);
}

/// A variable deleted from the hook's copy stays deleted (the native `get` trap reads a
/// variable only until the copy was filled in), and a request's fields set before they are
/// read keep what the script set.
#[test]
fn a_deleted_variable_stays_deleted_and_set_fields_stay_set() {
    let script = r#"
export function before_request(request, vars) {
  delete vars.user;
  request.body = "mine";
  const headers = request.headers;
  return { "X-Seen": JSON.stringify([vars.user === undefined, "user" in vars, request.body, typeof headers]) };
}
"#;
    let (_dir, loaded) = scenario_with(script, "      - get: /\n");
    let scenario = loaded.expect("loads");
    let scripts = scenario.scripts.clone().expect("scripts");
    let vars = Vars::for_user(&scenario, 0).expect("vars");
    let url = url::Url::parse("http://127.0.0.1:1/").expect("url");
    let mut headers = HeaderMap::new();
    let body = bytes::Bytes::from_static(b"payload");
    scripts
        .before_request(&http::Method::GET, &url, &mut headers, &body, &vars)
        .expect("runs");
    let seen: serde_json::Value =
        serde_json::from_slice(headers["x-seen"].as_bytes()).expect("JSON");
    assert_eq!(seen, json!([true, false, "mine", "object"]));
    assert_eq!(
        vars.get("user"),
        Some(json!({"name": "ada", "secret": "s3cret"}))
    );
}

/// A variable a hook read in one call is on the next call's object from the start
/// (`script::lazy`): with that call's value, or absent for a user without it; the object is
/// still the plain copy it stands for (its prototype, its methods, its keys).
#[test]
fn variables_read_before_hold_each_calls_values() {
    let script = r#"
export function before_request(request, vars) {
  const seen = [vars.n, Object.getPrototypeOf(vars) === Object.prototype, typeof vars.toString,
    Object.keys(vars).includes("n"), "n" in vars];
  return { "X-Seen": JSON.stringify(seen) };
}
"#;
    let (_dir, loaded) = scenario_with(script, "      - get: /\n");
    let scenario = loaded.expect("loads");
    let scripts = scenario.scripts.clone().expect("scripts");
    let url = url::Url::parse("http://127.0.0.1:1/").expect("url");
    let body = bytes::Bytes::new();
    let seen = |vars: &Vars| {
        let mut headers = HeaderMap::new();
        scripts
            .before_request(&http::Method::GET, &url, &mut headers, &body, vars)
            .expect("runs");
        serde_json::from_slice::<serde_json::Value>(headers["x-seen"].as_bytes()).expect("JSON")
    };
    let mut vars = Vars::for_user(&scenario, 0).expect("vars");
    vars.set("n", json!(1));
    assert_eq!(seen(&vars), json!([1, true, "function", true, true]));
    vars.set("n", json!(2));
    assert_eq!(seen(&vars), json!([2, true, "function", true, true]));
    let other = Vars::for_user(&scenario, 1).expect("vars");
    assert_eq!(seen(&other), json!([null, true, "function", false, false]));
    assert_eq!(seen(&vars), json!([2, true, "function", true, true]));
}
