//! Integration tests for WebSocket and server-sent-events steps (see tests/integration.rs):
//! a chat server and an event source written here with axum on 127.0.0.1:0 count what each
//! user sent and was sent; the tests compare that with the rows chorus reported.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chorus::engine::{Engine, EngineOptions, Plan, SetupMode};
use chorus::scenario::{LoadOptions, Scenario};
use chorus::stats::{FailureKind, RunResult};
use serde_json::{Value, json};

mod convert;
mod sse;

/// What the server saw, per user (the `sid` cookie `/login` gave it).
#[derive(Default)]
pub(crate) struct Seen {
    /// (user, message type) -> messages received.
    pub(crate) received: Mutex<BTreeMap<(String, String), u64>>,
    /// Sockets opened, with the subprotocol they agreed on.
    pub(crate) sockets: Mutex<Vec<(String, Option<String>)>>,
    /// user -> events sent on `/events`.
    pub(crate) events_sent: Mutex<BTreeMap<String, u64>>,
    /// Messages that carried a wrong room or member id.
    pub(crate) wrong: Mutex<Vec<String>>,
    /// Sessions `/login` handed out without a `user`.
    pub(crate) logins: std::sync::atomic::AtomicU64,
}

impl Seen {
    pub(crate) fn received(&self, kind: &str) -> u64 {
        let received = self.received.lock().unwrap();
        received
            .iter()
            .filter(|((_, k), _)| k == kind)
            .map(|(_, n)| n)
            .sum()
    }
}

/// Events each `/events` subscriber is sent: this many `tick`s, then one `done`.
pub(crate) const TICKS: u64 = 4;

/// The chat server and event source on a free port.
pub(crate) async fn server() -> (SocketAddr, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let router = Router::new()
        .route("/login", get(login))
        .route("/chat", get(chat))
        .route("/events", get(events))
        .route(
            "/plain",
            get(|| async { ([(header::CONTENT_TYPE, "text/plain")], "not a stream") }),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (address, seen)
}

/// A session: `sid` is `user` when given, else a fresh `s1`, `s2` ...; the answer names the
/// session's room, which its `join` must carry.
async fn login(
    State(seen): State<Arc<Seen>>,
    axum::extract::Query(query): axum::extract::Query<BTreeMap<String, String>>,
) -> Response {
    let user = query.get("user").cloned().unwrap_or_else(|| {
        let n = seen
            .logins
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        format!("s{n}")
    });
    (
        [(header::SET_COOKIE, format!("sid={user}; Path=/"))],
        Json(json!({ "user": user, "room": room_of(&user) })),
    )
        .into_response()
}

pub(crate) fn room_of(user: &str) -> String {
    format!("room-{user}-7f3a")
}

pub(crate) fn member_of(user: &str) -> String {
    format!("mem-{user}-9k2")
}

use axum::Json;

fn user_of(headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    cookies
        .split(';')
        .find_map(|pair| pair.trim().strip_prefix("sid="))
        .map(str::to_owned)
}

async fn chat(ws: WebSocketUpgrade, headers: HeaderMap, State(seen): State<Arc<Seen>>) -> Response {
    let Some(user) = user_of(&headers) else {
        return (StatusCode::UNAUTHORIZED, "log in first").into_response();
    };
    ws.protocols(["chat.v1"])
        .on_upgrade(move |socket| talk(socket, user, seen))
}

/// `join` (with the session's room, when it names one) is answered `joined` with the member
/// id; `say` with that id is answered `said` (an error otherwise); `ping` is only counted;
/// `bye` closes the socket. A message framed as Socket.IO frames them (`42["say",{...}]`) is
/// answered in the same framing.
async fn talk(mut socket: WebSocket, user: String, seen: Arc<Seen>) {
    let protocol = socket
        .protocol()
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    seen.sockets.lock().unwrap().push((user.clone(), protocol));
    while let Some(Ok(message)) = socket.recv().await {
        let Message::Text(text) = message else {
            continue;
        };
        let text = text.as_str();
        let packet = text.trim_start_matches(|c: char| c.is_ascii_digit());
        let framed = packet.len() != text.len();
        let (kind, value) = match serde_json::from_str::<Value>(packet).unwrap_or(Value::Null) {
            Value::Array(items) if framed => (
                items
                    .first()
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_owned(),
                items.get(1).cloned().unwrap_or(Value::Null),
            ),
            value => (value["type"].as_str().unwrap_or("?").to_owned(), value),
        };
        *seen
            .received
            .lock()
            .unwrap()
            .entry((user.clone(), kind.clone()))
            .or_default() += 1;
        let member = member_of(&user);
        let wrong = |why: String| {
            seen.wrong
                .lock()
                .unwrap()
                .push(format!("{user}: {why}: {text}"));
            json!({ "type": "error", "why": why })
        };
        let answer = match kind.as_str() {
            "join"
                if value
                    .get("room")
                    .is_some_and(|room| *room != json!(room_of(&user))) =>
            {
                wrong("wrong room".to_owned())
            }
            "join" => json!({ "type": "joined", "id": member }),
            "say" if value["id"] == member => {
                json!({ "type": "said", "id": member, "n": value["n"] })
            }
            "say" => wrong("wrong member id".to_owned()),
            "bye" => break,
            _ => continue,
        };
        let answer = if framed {
            let kind = answer["type"].clone();
            format!("42{}", json!([kind, answer]))
        } else {
            answer.to_string()
        };
        if socket.send(Message::Text(answer.into())).await.is_err() {
            break;
        }
    }
}

async fn events(headers: HeaderMap, State(seen): State<Arc<Seen>>) -> Response {
    let Some(user) = user_of(&headers) else {
        return (StatusCode::UNAUTHORIZED, "log in first").into_response();
    };
    let stream = futures_util::stream::unfold(0u64, move |n| {
        let (seen, user) = (seen.clone(), user.clone());
        async move {
            if n > TICKS {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            *seen.events_sent.lock().unwrap().entry(user).or_default() += 1;
            let event = if n < TICKS {
                Event::default()
                    .event("tick")
                    .data(json!({ "n": n }).to_string())
            } else {
                Event::default().event("done").data("bye")
            };
            Some((Ok::<_, std::convert::Infallible>(event), n + 1))
        }
    });
    Sse::new(stream).into_response()
}

pub(crate) fn load(text: &str) -> Scenario {
    chorus::scenario::load_str(
        text,
        std::path::Path::new("ws.yaml"),
        &LoadOptions::default(),
    )
    .unwrap_or_else(|err| panic!("the scenario does not load:\n{err}\n{text}"))
}

/// Runs `users` users through every flow once (then `on_stop`); the run ends by itself.
pub(crate) async fn run_once(scenario: Scenario, users: u64) -> RunResult {
    let options = EngineOptions {
        workers: 2,
        stop_timeout: Duration::from_secs(5),
        setup: SetupMode {
            rounds: Some(1),
            ..SetupMode::default()
        },
        ..EngineOptions::default()
    };
    let plan = Plan::users(users, Some(1000.0), None).expect("a plan");
    let handle = Engine::start(Arc::new(scenario), plan, options).expect("the run starts");
    tokio::time::timeout(Duration::from_secs(60), handle.wait())
        .await
        .expect("the run ends within a minute")
}

/// (method, name) -> (requests, failures).
pub(crate) fn rows(result: &RunResult) -> BTreeMap<(String, String), (u64, u64)> {
    result
        .entries
        .iter()
        .map(|e| ((e.method.clone(), e.name.clone()), (e.requests, e.failures)))
        .collect()
}

fn row(result: &RunResult, method: &str, name: &str) -> (u64, u64) {
    rows(result)
        .get(&(method.to_owned(), name.to_owned()))
        .copied()
        .unwrap_or_else(|| panic!("no row {method} {name} in {:#?}", rows(result)))
}

fn failure_kinds(result: &RunResult) -> BTreeMap<(String, String), Vec<FailureKind>> {
    let mut kinds: BTreeMap<(String, String), Vec<FailureKind>> = BTreeMap::new();
    for entry in &result.entries {
        for failure in &entry.failures_by_kind {
            kinds
                .entry((entry.method.clone(), entry.name.clone()))
                .or_default()
                .push(failure.kind);
        }
    }
    kinds
}

pub(crate) fn failures(result: &RunResult) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for entry in &result.entries {
        for failure in &entry.failures_by_kind {
            out.push((
                entry.method.clone(),
                entry.name.clone(),
                failure.message.clone(),
            ));
        }
    }
    out
}

/// Polls `condition` until it holds or 10 s pass (the server may still be reading the last
/// messages when the run ends).
pub(crate) async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const USERS: u64 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_and_event_stream_counts_equal_what_the_server_saw() {
    let (address, seen) = server().await;
    let scenario = load(&format!(
        r#"
host: http://{address}
on_start:
  - get: "/login?user={{{{ vu }}}}"
flows:
  - steps:
      - ws: /chat
        subprotocols: [chat.v1]
      - every: 20ms
        send: {{ json: {{ type: ping }} }}
      - send: {{ json: {{ type: join, user: "{{{{ vu }}}}" }} }}
      - receive: {{ jsonpath: $.type, equals: joined }}
        timeout: 5s
        extract: {{ memberId: $.id }}
        name: joined
      - repeat: 3
        as: n
        steps:
          - send: {{ json: {{ type: say, id: "{{{{ memberId }}}}", n: "{{{{ n }}}}" }} }}
          - receive: {{ jsonpath: $.n, equals: "{{{{ n }}}}" }}
            timeout: 5s
            name: said
      - think: 100ms
      - close
      - sse: /events
      - repeat: {TICKS}
        steps:
          - receive: {{ event: tick }}
            timeout: 5s
      - receive: {{ event: done }}
        timeout: 5s
"#
    ));
    let result = run_once(scenario, USERS).await;
    assert_eq!(result.total.failures, 0, "{:#?}", failures(&result));
    assert_eq!(result.errors, [], "exceptions");
    assert_eq!(*seen.wrong.lock().unwrap(), Vec::<String>::new());
    // Connects: one socket per user, each with the subprotocol offered, each logged in.
    assert_eq!(row(&result, "WS", "/chat"), (USERS, 0));
    let sockets = seen.sockets.lock().unwrap().clone();
    assert_eq!(sockets.len() as u64, USERS);
    assert!(
        sockets.iter().all(|(_, p)| p.as_deref() == Some("chat.v1")),
        "{sockets:?}"
    );
    // Messages: what the server received is what chorus counted as sent.
    eventually("the server read every ping", || {
        seen.received("ping") == row(&result, "SEND", "ping").0
    })
    .await;
    assert!(
        seen.received("ping") >= USERS,
        "each user pinged during its think"
    );
    assert_eq!(seen.received("join"), USERS);
    assert_eq!(row(&result, "SEND", "join"), (USERS, 0));
    assert_eq!(seen.received("say"), 3 * USERS);
    assert_eq!(row(&result, "SEND", "say"), (3 * USERS, 0));
    let received = seen.received.lock().unwrap().clone();
    for user in 0..USERS {
        let said = received.get(&(user.to_string(), "say".to_owned()));
        assert_eq!(said, Some(&3), "user {user}: {received:?}");
    }
    assert_eq!(row(&result, "RECV", "joined"), (USERS, 0));
    assert_eq!(row(&result, "RECV", "said"), (3 * USERS, 0));
    // Events: every event the source sent was received.
    assert_eq!(row(&result, "SSE", "/events"), (USERS, 0));
    let sent = seen.events_sent.lock().unwrap().clone();
    assert_eq!(sent.len() as u64, USERS);
    assert!(sent.values().all(|n| *n == TICKS + 1), "{sent:?}");
    assert_eq!(row(&result, "EVENT", "tick"), (TICKS * USERS, 0));
    assert_eq!(row(&result, "EVENT", "done"), (USERS, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_failures_are_counted_by_kind() {
    let (address, seen) = server().await;
    let scenario = load(&format!(
        r#"
host: http://{address}
on_start:
  - get: "/login?user={{{{ vu }}}}"
flows:
  - name: no such socket
    steps:
      - ws: /nowhere
  - name: timeout then close
    steps:
      - ws: /chat
      - receive: {{ jsonpath: $.type, equals: never }}
        timeout: 200ms
        name: never
      - send: {{ json: {{ type: bye }} }}
      - receive: any
        timeout: 5s
        name: after bye
      - send: {{ json: {{ type: join }} }}
  - name: not a stream
    steps:
      - sse: /plain
"#
    ));
    let result = run_once(scenario, 1).await;
    let kinds = failure_kinds(&result);
    let of = |method: &str, name: &str| {
        kinds
            .get(&(method.to_owned(), name.to_owned()))
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(of("WS", "/nowhere"), [FailureKind::Status(404)]);
    assert_eq!(of("RECV", "never"), [FailureKind::MessageTimeout]);
    assert_eq!(of("RECV", "after bye"), [FailureKind::SocketClosed]);
    assert_eq!(of("SSE", "/plain"), [FailureKind::ProtocolError]);
    assert_eq!(row(&result, "WS", "/chat"), (1, 0));
    eventually("the server read the bye", || seen.received("bye") == 1).await;
    // The join after the close was not sent, and says so.
    assert_eq!(seen.received("join"), 0);
    assert_eq!(of("SEND", "join"), [FailureKind::SocketClosed]);
}

/// A socket step replays no capture entry: its failure is what `--check` judges of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_step_that_fails_fails_check() {
    let (address, _seen) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("scenario.yaml");
    let text = |condition: &str| {
        format!(
            "host: http://{address}\non_start:\n  - get: \"/login?user={{{{ vu }}}}\"\n\
             flows:\n  - name: chat\n    steps:\n      - ws: /chat\n\
             \x20     - send: {{ json: {{ type: join }} }}\n\
             \x20     - receive: {{ jsonpath: $.type, equals: {condition} }}\n\
             \x20       timeout: 2s\n        name: answer\n"
        )
    };
    std::fs::write(&scenario, text("never")).unwrap();
    let output = crate::util::chorus(&["run", "scenario.yaml", "--check"], dir.path());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL") && stdout.contains("RECV answer: no message matching"),
        "{stdout}"
    );
    // The same scenario waiting for what the server answers passes.
    std::fs::write(&scenario, text("joined")).unwrap();
    let output = crate::util::chorus(&["run", "scenario.yaml", "--check"], dir.path());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
}
