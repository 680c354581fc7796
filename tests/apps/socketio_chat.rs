//! A Socket.IO chat (Socket.IO 4.8 from npm, `tests/apps/socketio_chat/install.sh`):
//! `tests/apps/socketio_chat/server.js` runs it with accounts of its own, and its page
//! (`public/index.html`) uses the browser client Socket.IO serves as it ships: long-polling
//! first (the Engine.IO handshake hands out a `sid` every later poll and the WebSocket's URL
//! carry), then the upgrade to a WebSocket (`2probe`, `3probe`, `5`), the login's token in the
//! CONNECT packet, events with acknowledgements (`42N[...]` answered by `43N[...]`).
//!
//! The session, clicked in Chromium: log in (`POST /api/login`, a token in the JSON answer),
//! the page connects and joins the room `lobby`, send "hello from USER" (the server answers
//! with a message id it made up), edit that message by its id ("hello from USER, edited"),
//! log out (the socket disconnects, `POST /api/logout`).
//!
//! Converted with no options, checked (`--check`, and the mutation test on an instance of its
//! own), then replayed by 50 users (`user02`..`user51`) two iterations each, and judged from
//! the server's own log of every event it received (`events.jsonl`: the user the token was
//! issued to, the Engine.IO session it came over, what it carried, what the server did) and
//! the messages it stored (`messages.json`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::apps::{self, Account};
use crate::util::browser::Browser;
use crate::util::mutation;
use crate::util::output_dir;
use crate::util::tools::Process;

const APP: &str = "socketio_chat";

/// One chat server over its own folder, stopped when dropped.
struct Instance {
    base_url: String,
    dir: tempfile::TempDir,
    _server: Process,
}

fn start(accounts: &[Account]) -> Instance {
    let modules = apps::installed(APP).join("node_modules");
    let dir = tempfile::tempdir().unwrap();
    let seed: Vec<Value> = accounts
        .iter()
        .map(|a| json!({ "username": a.username, "password": a.password }))
        .collect();
    std::fs::write(
        dir.path().join("accounts.json"),
        serde_json::to_string(&seed).unwrap(),
    )
    .unwrap();
    let (server, base_url) = apps::spawn_announcing(
        "socketio-chat",
        Command::new("node")
            .arg(script_dir().join("server.js"))
            .arg(dir.path())
            .env("NODE_PATH", modules),
        &dir.path().join("server.log"),
    );
    Instance {
        base_url,
        dir,
        _server: server,
    }
}

fn script_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps/socketio_chat")
}

/// One event the server received, from its log.
#[derive(Debug, Clone)]
struct Event {
    user: Option<String>,
    engine: Option<String>,
    event: String,
    args: Vec<Value>,
    outcome: String,
}

/// A message as the server stored it.
#[derive(Debug, Clone)]
struct Message {
    id: String,
    user: String,
    text: String,
    edited: bool,
}

impl Instance {
    fn events(&self) -> Vec<Event> {
        let text = std::fs::read_to_string(self.dir.path().join("events.jsonl")).unwrap();
        text.lines()
            .map(|line| {
                let v: Value = serde_json::from_str(line).unwrap();
                Event {
                    user: v["user"].as_str().map(str::to_owned),
                    engine: v["engine"].as_str().map(str::to_owned),
                    event: v["event"].as_str().unwrap().to_owned(),
                    args: v["args"].as_array().cloned().unwrap_or_default(),
                    outcome: v["outcome"].as_str().unwrap().to_owned(),
                }
            })
            .collect()
    }

    fn messages(&self) -> Vec<Message> {
        let Ok(text) = std::fs::read_to_string(self.dir.path().join("messages.json")) else {
            return Vec::new();
        };
        let all: Vec<Value> = serde_json::from_str(&text).unwrap();
        all.iter()
            .map(|m| Message {
                id: m["id"].as_str().unwrap().to_owned(),
                user: m["user"].as_str().unwrap().to_owned(),
                text: m["text"].as_str().unwrap().to_owned(),
                edited: m["edited"].as_bool().unwrap(),
            })
            .collect()
    }
}

/// The session as a person clicks it: log in, send a message, edit it, log out.
async fn session(browser: &mut Browser, base_url: &str, account: &Account, capture: &Path) {
    let user = &account.username;
    let wait = Duration::from_secs(15);
    browser.goto(&format!("{base_url}/")).await;
    browser.fill("#username", user).await;
    browser.fill("#password", &account.password).await;
    browser.click("#login").await;
    let joined = format!("{user} in lobby");
    browser.wait_text("#status", wait, |s| s == joined).await;
    // The client upgrades to a WebSocket once the server answered its probe; the page's
    // events go over it from then on (`transport.name` is Engine.IO's own).
    let upgraded = "socket.io.engine.transport.name";
    for _ in 0..150 {
        if browser.script(&format!("return {upgraded}")).await == json!("websocket") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        browser.script(&format!("return {upgraded}")).await,
        json!("websocket")
    );
    browser.screenshot("joined").await;
    browser.fill("#text", &format!("hello from {user}")).await;
    browser.click("#send").await;
    browser
        .wait_text("#status", wait, |s| s.starts_with("sent m"))
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    browser
        .fill("#edit-text", &format!("hello from {user}, edited"))
        .await;
    browser.click("#edit").await;
    browser
        .wait_text("#status", wait, |s| s.starts_with("edited m"))
        .await;
    browser.screenshot("edited").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    browser.click("#logout").await;
    browser
        .wait_text("#status", wait, |s| s == "signed out")
        .await;
    // The recorder writes a WebSocket's entry when both its directions have ended: the
    // session is over when the capture holds it.
    let deadline = std::time::Instant::now() + wait;
    while !std::fs::read_to_string(capture).is_ok_and(|har| har.contains("_webSocketMessages")) {
        assert!(
            std::time::Instant::now() < deadline,
            "the capture has no WebSocket entry 15 s after the socket closed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Records the session in a real headless Chromium through chorus's recorder in reverse mode
/// in front of the application (Chromium tunnels a WebSocket through a forward proxy with
/// `CONNECT`, which a recorder without interception cannot read), and returns the capture's
/// path (`out/capture.har`).
async fn record_session(out: &Path, app: &Instance, account: &Account) -> PathBuf {
    let capture = out.join("capture.har");
    let recorder = chorus::record::start(
        chorus::record::RecordConfig::new(crate::util::record::reverse(&app.base_url, &capture))
            .unwrap(),
    )
    .await
    .unwrap();
    let front = format!("http://{}", recorder.local_addr());
    let mut browser = Browser::start(&[], out).await;
    session(&mut browser, &front, account, &capture).await;
    browser.close().await;
    recorder.shutdown().await.path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_chat_session_is_recorded_in_chromium() {
    let accounts = Account::numbered(3);
    let app = start(&accounts);
    let out = output_dir("apps_socketio_chat_recorded");
    let capture = record_session(&out, &app, &accounts[0]).await;

    let mut summary: Vec<(String, String)> = app
        .events()
        .iter()
        .map(|e| (e.event.clone(), e.outcome.clone()))
        .collect();
    // The page closes the socket, then posts the logout on another connection: the server
    // may see either first, so the last two are compared as a set.
    if summary.len() >= 2 {
        let len = summary.len();
        summary[len - 2..].sort();
    }
    let ok = |event: &str| (event.to_owned(), "ok".to_owned());
    crate::eqnice!(
        vec![
            ok("login"),
            ok("connect"),
            ok("join"),
            ok("message"),
            ok("edit"),
            ok("disconnect"),
            ok("logout"),
        ],
        summary
    );
    let messages = app.messages();
    assert_eq!(1, messages.len(), "{messages:?}");
    assert_eq!("hello from user01, edited", messages[0].text);

    // Long-polling first, then the upgrade, as the client ships: the handshake, the CONNECT
    // packet with the token, a WebSocket on the same `sid`, the events over it.
    let requests = apps::captured_requests(&capture);
    let polls = requests
        .iter()
        .filter(|(_, p)| p.starts_with("/socket.io/?EIO=4&transport=polling"))
        .count();
    assert!(polls >= 3, "{requests:?}");
    let har: Value = serde_json::from_str(&std::fs::read_to_string(&capture).unwrap()).unwrap();
    let socket = har["log"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["request"]["url"]
                .as_str()
                .unwrap()
                .contains("transport=websocket")
        })
        .expect("the capture has the WebSocket");
    let texts: Vec<&str> = socket["_webSocketMessages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["opcode"] == 1)
        .map(|m| m["data"].as_str().unwrap())
        .collect();
    assert_eq!(&texts[..3], ["2probe", "3probe", "5"], "{texts:?}");
    assert!(
        texts.iter().any(|t| t.starts_with("421[\"message\"")),
        "{texts:?}"
    );
}

/// Per user: the Engine.IO sessions its events came over, and what it did.
#[derive(Debug, Default)]
struct Done {
    logins: usize,
    logouts: usize,
    connects: BTreeSet<String>,
    joins: usize,
    /// (engine session, text) of each message the server took.
    messages: Vec<(String, String)>,
    /// (engine session, message id, text) of each edit the server took.
    edits: Vec<(String, String, String)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_chat_replay_with_50_users_is_faithful() {
    const USERS: usize = 50;
    const ITERATIONS: usize = 2;
    let accounts = Account::numbered(USERS + 1);
    let app = start(&accounts);
    let out = output_dir("apps_socketio_chat_replay");
    let capture = record_session(&out, &app, &accounts[0]).await;
    let scenario = apps::convert(&capture);
    let users = out.join("users.csv");
    apps::users_csv(&accounts[1..], &users);
    crate::util::round_trip::assert_extracts_find_what_the_recording_sent(&scenario, &capture);
    let checked = apps::check_passes(&scenario, &users, &app.base_url);
    // On an instance of their own: what a mutant leaves behind is not the load run's.
    let mutated_on = start(&accounts);
    let application = mutation::Application::Running {
        base: &mutated_on.base_url,
        concurrency: 3,
    };
    let report = mutation::mutation_test(&scenario, &capture, &users, &application);
    // The mutation tool makes mutants of the extracts of HTTP responses only: the message id
    // a `receive:` takes from the acknowledgement has none (the judge below catches a replay
    // that edits by another id: the server refuses it). Every mutant it makes must be caught.
    report.assert_made_ones_caught(3);
    drop(mutated_on);

    let before = app.events().len();
    let messages_before: BTreeSet<String> = app.messages().into_iter().map(|m| m.id).collect();
    let (result, output) = apps::run_iterations(
        &scenario,
        &users,
        &app.base_url,
        USERS as u32,
        ITERATIONS as u32,
    );
    apps::assert_success("chorus run", &output);
    let events: Vec<Event> = app.events().split_off(before);

    let mut findings = apps::Findings::default();
    let failures: u64 = result["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["failures"].as_u64().unwrap())
        .sum();
    findings.expect_eq("failures chorus counted", failures, 0);
    let refused: Vec<&Event> = events.iter().filter(|e| e.outcome != "ok").collect();
    findings.expect(refused.is_empty(), || {
        format!(
            "{} event(s) the server refused, e.g. {:?}",
            refused.len(),
            refused.first()
        )
    });
    let mut by_user: BTreeMap<String, Done> = BTreeMap::new();
    for event in &events {
        let Some(user) = &event.user else { continue };
        let done = by_user.entry(user.clone()).or_default();
        let engine = event.engine.clone().unwrap_or_default();
        let text = |arg: &Value| arg["text"].as_str().unwrap_or_default().to_owned();
        match (event.event.as_str(), event.outcome.as_str()) {
            ("login", "ok") => done.logins += 1,
            ("logout", "ok") => done.logouts += 1,
            ("connect", "ok") => {
                done.connects.insert(engine);
            }
            ("join", "ok") => done.joins += 1,
            ("message", "ok") => done.messages.push((engine, text(&event.args[0]))),
            ("edit", "ok") => done.edits.push((
                engine,
                event.args[0]["id"].as_str().unwrap_or_default().to_owned(),
                text(&event.args[0]),
            )),
            _ => {}
        }
    }
    let expected_users: BTreeSet<String> =
        accounts[1..].iter().map(|a| a.username.clone()).collect();
    let seen_users: BTreeSet<String> = by_user.keys().cloned().collect();
    findings.expect_eq("the users the server saw", seen_users, expected_users);
    // What the server stored: the run's messages, each edited, by id.
    let stored: BTreeMap<String, Message> = app
        .messages()
        .into_iter()
        .filter(|m| !messages_before.contains(&m.id))
        .map(|m| (m.id.clone(), m))
        .collect();
    for (user, done) in &by_user {
        let hello = format!("hello from {user}");
        let edited = format!("hello from {user}, edited");
        let shape = (done.logins, done.logouts, done.connects.len(), done.joins);
        findings.expect_eq(
            &format!("{user}: logins, logouts, Engine.IO sessions, joins"),
            shape,
            (1, 1, ITERATIONS, ITERATIONS),
        );
        let texts: Vec<&str> = done.messages.iter().map(|(_, t)| t.as_str()).collect();
        findings.expect_eq(
            &format!("{user}: the messages the server took"),
            texts,
            vec![hello.as_str(); ITERATIONS],
        );
        let sessions: BTreeSet<&String> = done.messages.iter().map(|(e, _)| e).collect();
        findings.expect(sessions.len() == ITERATIONS, || {
            format!(
                "{user}: messages over {} session(s), not {ITERATIONS}",
                sessions.len()
            )
        });
        findings.expect_eq(
            &format!("{user}: edits the server took"),
            done.edits.len(),
            ITERATIONS,
        );
        for (engine, id, text) in &done.edits {
            // The id the edit carried is the one the server issued to this user's message
            // sent over the same Engine.IO session: the message it stored under that id
            // is the user's, edited.
            let message = stored.get(id);
            findings.expect(
                message.is_some_and(|m| m.user == *user && m.edited && m.text == edited)
                    && *text == edited
                    && done.messages.iter().any(|(e, _)| e == engine),
                || format!("{user}: edit of {id} over {engine} ({text:?}) stored as {message:?}"),
            );
        }
    }
    findings.expect_eq(
        "messages stored by the run",
        stored.len(),
        USERS * ITERATIONS,
    );
    let unedited: Vec<&Message> = stored.values().filter(|m| !m.edited).collect();
    findings.expect(unedited.is_empty(), || {
        format!("messages not edited: {unedited:?}")
    });
    findings.assert_none(&format!(
        "check:\n{}\nrun:\n{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&output.stdout)
    ));
}
