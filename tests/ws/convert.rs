//! A capture with `_webSocketMessages` (Chromium's shape: a `ws://` URL, status 101) and
//! `_eventSourceMessages` converts into socket steps that replay against the real server with
//! no failures: the room an HTTP response named and the member id a message handed over are
//! carried into later messages (one in Socket.IO framing), and the server judges each.

use chorus::convert::{Options, convert};
use serde_json::{Value, json};

use super::{TICKS, eventually, failures, load, member_of, room_of, rows, run_once, server};

const USERS: u64 = 10;

/// The recording: seconds after the first entry of each message.
fn capture(host: &str) -> Value {
    let user = "s1";
    let (room, member) = (room_of(user), member_of(user));
    // 2026-11-18T16:53:20Z, when the first entry started.
    let at = |seconds: f64| 1_795_020_800.0 + seconds;
    let message = |kind: &str, seconds: f64, data: String| json!({ "type": kind, "time": at(seconds), "opcode": 1, "data": data });
    let ping = json!({ "type": "ping" }).to_string();
    let mut messages = vec![
        message(
            "send",
            0.2,
            json!({ "type": "join", "room": room }).to_string(),
        ),
        message(
            "receive",
            0.21,
            json!({ "type": "joined", "id": member }).to_string(),
        ),
        message(
            "send",
            1.5,
            json!({ "type": "say", "id": member, "n": 1 }).to_string(),
        ),
        message(
            "receive",
            1.52,
            json!({ "type": "said", "id": member, "n": 1 }).to_string(),
        ),
        message(
            "send",
            1.7,
            format!("42{}", json!(["say", { "id": member, "n": 2 }])),
        ),
        message(
            "receive",
            1.71,
            format!(
                "42{}",
                json!(["said", { "type": "said", "id": member, "n": 2 }])
            ),
        ),
    ];
    for second in 1..=4 {
        messages.push(message("send", f64::from(second), ping.clone()));
    }
    messages.sort_by(|a, b| {
        a["time"]
            .as_f64()
            .unwrap()
            .total_cmp(&b["time"].as_f64().unwrap())
    });
    let entry = |started: &str,
                 method: &str,
                 url: String,
                 status: u16,
                 mime: &str,
                 body: String| {
        json!({
            "startedDateTime": started,
            "time": 5,
            "request": { "method": method, "url": url, "httpVersion": "HTTP/1.1",
                         "headers": [], "queryString": [], "cookies": [],
                         "headersSize": -1, "bodySize": 0 },
            "response": { "status": status, "statusText": "", "httpVersion": "HTTP/1.1",
                          "headers": [{ "name": "Content-Type", "value": mime }],
                          "cookies": [], "content": { "size": body.len(), "mimeType": mime, "text": body },
                          "redirectURL": "", "headersSize": -1, "bodySize": body.len() },
            "cache": {}, "timings": { "send": 0, "wait": 5, "receive": 0 }
        })
    };
    let login = entry(
        "2026-11-18T16:53:20.000Z",
        "GET",
        format!("http://{host}/login"),
        200,
        "application/json",
        json!({ "user": user, "room": room }).to_string(),
    );
    let mut socket = entry(
        "2026-11-18T16:53:20.100Z",
        "GET",
        format!("ws://{host}/chat"),
        101,
        "",
        String::new(),
    );
    socket["_resourceType"] = json!("websocket");
    socket["_webSocketMessages"] = json!(messages);
    let mut events = entry(
        "2026-11-18T16:53:20.300Z",
        "GET",
        format!("http://{host}/events"),
        200,
        "text/event-stream",
        String::new(),
    );
    let mut recorded_events: Vec<Value> = (0..TICKS)
        .map(|n| {
            json!({ "time": at(4.5 + n as f64 * 0.01), "eventName": "tick", "eventId": "",
                    "data": json!({ "n": n }).to_string() })
        })
        .collect();
    recorded_events
        .push(json!({ "time": at(4.6), "eventName": "done", "eventId": "", "data": "bye" }));
    events["_eventSourceMessages"] = json!(recorded_events);
    json!({ "log": { "version": "1.2", "creator": { "name": "Chromium", "version": "131" },
                      "entries": [login, socket, events] } })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_with_websocket_messages_converts_and_replays_without_failures() {
    let (address, seen) = server().await;
    let text = capture(&address.to_string()).to_string();
    let (har, _) = chorus::har::read::read_str(&text, "ws.har").expect("the capture reads");
    let conversion = convert(&har, "ws.har", &Options::default()).expect("it converts");
    let yaml = conversion.yaml;
    for wanted in [
        "- ws: /chat",
        "- every: 1s",
        "room: \"{{ room }}\"",
        "- receive: { jsonpath: \"$.id\", equals: \"{{ id }}\" }",
        r#"- send: "42[\"say\",{\"id\":\"{{ id }}\",\"n\":2}]""#,
        r#"- receive: { jsonpath: "$[1].id", equals: "{{ id }}" }"#,
        "- think: 1.3s",
        "- sse: /events",
        "- receive: { event: tick }",
        "- receive: { event: done }",
    ] {
        assert!(yaml.contains(wanted), "{wanted:?} is not in\n{yaml}");
    }
    let result = run_once(load(&yaml), USERS).await;
    assert_eq!(result.total.failures, 0, "{:#?}\n{yaml}", failures(&result));
    assert_eq!(result.errors, [], "exceptions\n{yaml}");
    assert_eq!(*seen.wrong.lock().unwrap(), Vec::<String>::new());
    // Each session joined its own room and spoke twice with its own member id.
    let received = seen.received.lock().unwrap().clone();
    let sessions: Vec<&String> = received.keys().map(|(user, _)| user).collect();
    assert_eq!(seen.received("join"), USERS, "{received:?}");
    assert_eq!(seen.received("say"), 2 * USERS, "{received:?}");
    assert!(sessions.iter().all(|user| user.starts_with('s')));
    let rows = rows(&result);
    let count = |method: &str, name: &str| {
        rows.get(&(method.to_owned(), name.to_owned()))
            .map_or(0, |(requests, _)| *requests)
    };
    eventually("the server read every ping", || {
        seen.received("ping") == count("SEND", "ping")
    })
    .await;
    assert_eq!(count("EVENT", "tick"), USERS);
    assert_eq!(count("EVENT", "done"), USERS);
    assert_eq!(seen.events_sent.lock().unwrap().len() as u64, USERS);
}
