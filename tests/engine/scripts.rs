//! `scripts:` against a server written here that checks on its side what the scripts computed:
//! an HMAC signature made in a template (`js.sign`) and one a `before_request` hook adds
//! (a wrong signature is a 401, counted by the server), a total computed by `js:` steps from
//! two responses, a sequence number an `after_response` hook kept; `js:` checks; the time
//! limit (the user goes on: the server sees its next requests); load errors with places from
//! the command line.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::{get, post};
use chorus::scenario::{LoadOptions, Scenario};
use chorus::stats::FailureKind;

use super::{failures_of, run_rounds};
use crate::util::{chorus, output_dir};

const SECRET: &str = "s3cret-ada";
const USERS_CSV: &str = "name,secret\nada,s3cret-ada\n";

#[derive(Default)]
struct Seen {
    signed_ok: u64,
    signed_bad: u64,
    totals_ok: u64,
    totals_bad: u64,
    orders: u64,
    issued: HashSet<u64>,
    next_seq: u64,
}

type Shared = Arc<Mutex<Seen>>;

fn hmac_hex(key: &str, text: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes());
    ring::hmac::sign(&key, text.as_bytes())
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}

/// `POST /webhook`: `X-Signature` is HMAC(secret, timestamp + "." + body) as a payment
/// provider's webhooks carry it; `X-Hook-Signature` is HMAC(secret, method + " " + path +
/// "\n" + body), which the `before_request` hook adds.
async fn webhook(
    State(seen): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let timestamp = header(&headers, "x-timestamp");
    let good = header(&headers, "x-signature") == hmac_hex(SECRET, &format!("{timestamp}.{body}"))
        && header(&headers, "x-hook-signature")
            == hmac_hex(SECRET, &format!("POST {}\n{body}", uri.path()));
    let mut seen = seen.lock().unwrap();
    if good {
        seen.signed_ok += 1;
        StatusCode::OK
    } else {
        seen.signed_bad += 1;
        StatusCode::UNAUTHORIZED
    }
}

/// `GET /cart/{a,b}`: items to add up; `b` also issues a sequence number in `X-Seq`.
async fn cart_a() -> &'static str {
    r#"{"items": [{"price": 3}, {"price": 4}]}"#
}

async fn cart_b(State(seen): State<Shared>) -> ([(&'static str, String); 1], &'static str) {
    let mut seen = seen.lock().unwrap();
    seen.next_seq += 1;
    let seq = seen.next_seq;
    seen.issued.insert(seq);
    (
        [("x-seq", seq.to_string())],
        r#"{"items": [{"price": 5}, {"price": 30}]}"#,
    )
}

/// `POST /total`: the sum of both carts (42), with a sequence number the server issued.
async fn total(State(seen): State<Shared>, body: String) -> StatusCode {
    let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let mut seen = seen.lock().unwrap();
    let seq = json["seq"].as_u64().unwrap_or(0);
    if json["total"] == 42 && seen.issued.remove(&seq) {
        seen.totals_ok += 1;
        StatusCode::OK
    } else {
        seen.totals_bad += 1;
        StatusCode::UNPROCESSABLE_ENTITY
    }
}

#[derive(serde::Deserialize)]
struct OrderQuery {
    status: String,
}

async fn order(State(seen): State<Shared>, Query(query): Query<OrderQuery>) -> String {
    seen.lock().unwrap().orders += 1;
    format!(r#"{{"id": 7, "status": "{}"}}"#, query.status)
}

async fn serve() -> (SocketAddr, Shared) {
    let seen = Shared::default();
    let app = axum::Router::new()
        .route("/webhook", post(webhook))
        .route("/cart/a", get(cart_a))
        .route("/cart/b", get(cart_b))
        .route("/total", post(total))
        .route("/order", get(order))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

const HELPERS: &str = r#"
// A payment provider's webhook signature: HMAC-SHA256 over "timestamp.body".
export function sign(timestamp, body, secret) {
  return chorus.hmac_sha256(secret, timestamp + "." + body);
}

// Every request to /webhook also carries a signature over its method, path and body.
export function before_request(request, vars) {
  if (!request.url.endsWith("/webhook")) return;
  const path = URL_PATH(request.url);
  return { "X-Hook-Signature": chorus.hmac_sha256(vars.user.secret, request.method + " " + path + "\n" + request.body) };
}

function URL_PATH(url) { return url.replace(/^[a-z]+:\/\/[^/]+/, ""); }

// Keeps the sequence number the server issues.
export function after_response(response) {
  if (response.headers["x-seq"]) return { seq: Number(response.headers["x-seq"]) };
}

export function firstCart(last_response) {
  return { first: last_response.json.items.reduce((sum, item) => sum + item.price, 0) };
}

export function basketTotal(vars, last_response) {
  const second = last_response.json.items.reduce((sum, item) => sum + item.price, 0);
  return { total: vars.first + second };
}

export function isPaid(response) {
  return response.json.status === "paid" || `order ${response.json.id} is ${response.json.status}`;
}

export function spin() { for (;;) {} }
"#;

fn scenario_text(port: u16, checks: &str) -> String {
    format!(
        r#"host: http://127.0.0.1:{port}
data:
  users: {{ file: users.csv, mode: cycle, as: user }}
flows:
  - name: pay
    steps:
      - get: /cart/a
      - js: "firstCart(last_response)"
      - get: /cart/b
      - js: "basketTotal(vars, last_response)"
      - post: /total
        json: {{ total: "{{{{ total }}}}", seq: "{{{{ seq }}}}" }}
      - post: /webhook
        headers:
          Content-Type: application/json
          X-Timestamp: "{{{{ iteration }}}}"
          X-Signature: "{{{{ js.sign(iteration, '{{\"user\":\"' ~ user.name ~ '\"}}', user.secret) }}}}"
        body: '{{"user":"{{{{ user.name }}}}"}}'
      - get: /order?status=paid
        check: [{checks}]
"#
    )
}

fn load(dir: &std::path::Path, text: &str, script: &str) -> Scenario {
    let path = dir.join("scenario.yaml");
    let options = LoadOptions {
        scripts: vec![dir.join(script)],
        ..LoadOptions::default()
    };
    chorus::scenario::load_str(text, &path, &options)
        .unwrap_or_else(|err| panic!("the scenario does not load:\n{err}\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_sign_compute_and_check_what_the_server_verifies() {
    let dir = output_dir("scripts_sign");
    std::fs::write(dir.join("users.csv"), USERS_CSV).unwrap();
    std::fs::write(dir.join("helpers.js"), HELPERS).unwrap();
    // The same functions with another key: the server must refuse every signature.
    std::fs::write(
        dir.join("wrong.js"),
        HELPERS.replace(
            "chorus.hmac_sha256(secret,",
            "chorus.hmac_sha256(secret + 'x',",
        ),
    )
    .unwrap();
    let (addr, seen) = serve().await;
    let text = scenario_text(addr.port(), r#"{ js: "isPaid(response)" }"#);

    let result = run_rounds(load(&dir, &text, "helpers.js"), 2, 3).await;
    {
        let seen = seen.lock().unwrap();
        assert_eq!((seen.signed_ok, seen.signed_bad), (6, 0), "signatures");
        assert_eq!((seen.totals_ok, seen.totals_bad), (6, 0), "totals");
        assert_eq!(seen.orders, 6);
    }
    assert_eq!(result.total.failures, 0, "{:?}", result.entries);
    assert_eq!(result.total.requests, 6 * 5);

    let result = run_rounds(load(&dir, &text, "wrong.js"), 2, 1).await;
    let seen = seen.lock().unwrap();
    assert_eq!(
        (seen.signed_ok, seen.signed_bad),
        (6, 2),
        "a wrong signature is a 401"
    );
    let failures = failures_of(&result, "/webhook");
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].0, FailureKind::Status(401));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_checks_and_the_time_limit_are_failures_and_the_user_goes_on() {
    let dir = output_dir("scripts_checks");
    std::fs::write(dir.join("users.csv"), USERS_CSV).unwrap();
    std::fs::write(dir.join("helpers.js"), HELPERS).unwrap();
    let (addr, seen) = serve().await;
    let text = scenario_text(addr.port(), r#"{ js: "spin()" }"#)
        .replace("/order?status=paid", "/order?status=unpaid")
        + "      - get: /order?status=refunded\n        check: [{ js: \"isPaid(response)\" }]\n";
    let result = run_rounds(load(&dir, &text, "helpers.js"), 1, 3).await;
    // Each round's requests reached the server: the stopped call did not stop the user.
    assert_eq!(seen.lock().unwrap().orders, 6);
    let spun = failures_of(&result, "/order?status=unpaid");
    assert_eq!(spun.len(), 1, "{spun:?}");
    assert_eq!(spun[0].0, FailureKind::ScriptTimeout);
    assert_eq!(
        spun[0].1,
        "spin() ran past the script time limit (100ms) and was stopped"
    );
    let refused = failures_of(&result, "/order?status=refunded");
    assert_eq!(
        refused,
        [(
            FailureKind::CheckFailed,
            "isPaid(response): order 7 is refunded".to_owned()
        )]
    );
    let entry = (result.entries.iter())
        .find(|entry| entry.name == "/order?status=unpaid")
        .unwrap();
    assert_eq!((entry.requests, entry.failures), (3, 3));
}

#[test]
fn load_errors_come_before_any_traffic_with_their_places() {
    let dir = output_dir("scripts_load_errors");
    std::fs::write(dir.join("users.csv"), USERS_CSV).unwrap();
    std::fs::write(
        dir.join("broken.js"),
        "export function sign(a) {\n  return a +* 2;\n}\n",
    )
    .unwrap();
    std::fs::write(dir.join("helpers.js"), HELPERS).unwrap();
    // Port 9: nothing may be sent anyway.
    std::fs::write(
        dir.join("s.yaml"),
        scenario_text(9, r#"{ js: "isPayed(response)" }"#),
    )
    .unwrap();

    let output = chorus(
        &[
            "run",
            "s.yaml",
            "--headless",
            "--script",
            "broken.js",
            "-t",
            "1s",
        ],
        &dir,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("broken.js:2:13: SyntaxError: unexpected token in expression: '*'"),
        "{stderr}"
    );

    let output = chorus(
        &[
            "run",
            "s.yaml",
            "--headless",
            "--script",
            "helpers.js",
            "-t",
            "1s",
        ],
        &dir,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("s.yaml:20:23: flows[0].steps[6].check[0].js: `isPayed` is not a function the scripts export (they export: after_response, basketTotal, before_request, firstCart, isPaid, sign, spin)"),
        "{stderr}"
    );
}
