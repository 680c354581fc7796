//! `--trace-headers`: every request carries a W3C `traceparent` (a trace per iteration, a
//! span per request) and a `baggage` naming the virtual user, its flow and its account, and a
//! failure in the report names the trace the server saw it in. Judged by what a real server
//! on 127.0.0.1 received.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode, Uri};
use serde_json::Value;

use crate::util::output_dir;

/// What the server received: (path, traceparent, baggage), in order.
type Seen = Arc<Mutex<Vec<(String, Option<String>, Option<String>)>>>;

/// Answers `/broken` with a 500 and everything else with a 200, noting each request's trace
/// headers.
async fn noting_server() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let noted = seen.clone();
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let noted = noted.clone();
        async move {
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let path = uri.path().to_owned();
            let status = if path == "/broken" {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::OK
            };
            noted
                .lock()
                .unwrap()
                .push((path, header("traceparent"), header("baggage")));
            (status, "ok")
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, seen)
}

fn write_scenario(dir: &std::path::Path, base: &str) -> PathBuf {
    std::fs::write(
        dir.join("users.csv"),
        "username,password\nada,x\ngrace,y\nlinus,z\n",
    )
    .unwrap();
    let scenario = dir.join("scenario.yaml");
    std::fs::write(
        &scenario,
        format!(
            "host: {base}\n\
             data:\n  user: {{ file: users.csv, mode: unique }}\n\
             on_start:\n  - get: /login\n\
             flows:\n  - name: browse cart\n    steps:\n\
             \x20     - get: /page\n      - get: /item\n      - get: /broken\n      - think: 0.2s\n"
        ),
    )
    .unwrap();
    scenario
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_carries_its_trace_and_a_failure_names_it() {
    let dir = output_dir("trace_headers");
    let (base, seen) = noting_server().await;
    let scenario = write_scenario(&dir, &base);
    let json = dir.join("result.json");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = [
            "run",
            scenario.to_str().unwrap(),
            "--headless",
            "-u",
            "3",
            "-r",
            "3",
            "-t",
            "2s",
            "--json",
            json.to_str().unwrap(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    };

    // Without the flag: no trace headers.
    let output = crate::util::chorus_blocking(args(&[]), dir.clone()).await;
    assert!(output.status.success(), "{output:?}");
    let untraced = std::mem::take(&mut *seen.lock().unwrap());
    assert!(!untraced.is_empty());
    assert!(untraced.iter().all(|(_, t, b)| t.is_none() && b.is_none()));

    let output = crate::util::chorus_blocking(args(&["--trace-headers"]), dir.clone()).await;
    assert!(output.status.success(), "{output:?}");
    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() >= 12, "{} requests", seen.len());

    // Every request: a valid traceparent and a baggage naming the user, flow and account.
    let mut spans = BTreeSet::new();
    let mut traces: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    let mut paths_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut traces_of_user: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, traceparent, baggage) in &seen {
        let traceparent = traceparent
            .as_deref()
            .expect("a traceparent on every request");
        let parts: Vec<&str> = traceparent.split('-').collect();
        assert_eq!(parts.len(), 4, "{traceparent}");
        assert_eq!((parts[0], parts[3]), ("00", "01"), "{traceparent}");
        assert!(
            parts[1].len() == 32 && parts[2].len() == 16,
            "{traceparent}"
        );
        assert!(
            parts[1..3].iter().all(|p| p
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                && p.bytes().any(|b| b != b'0')),
            "{traceparent}"
        );
        assert!(spans.insert(parts[2].to_owned()), "span {} twice", parts[2]);
        let baggage = baggage.as_deref().expect("a baggage on every request");
        let fields: BTreeMap<&str, &str> = baggage
            .split(',')
            .filter_map(|pair| pair.split_once('='))
            .collect();
        let (vu, flow, account) = (
            fields["chorus.vu"].to_owned(),
            fields["chorus.flow"].to_owned(),
            fields["chorus.account"].to_owned(),
        );
        assert!(
            ["ada", "grace", "linus"].contains(&account.as_str()),
            "{baggage}"
        );
        let expected_flow = if path == "/login" {
            "on_start"
        } else {
            "browse%20cart"
        };
        assert_eq!(flow, expected_flow, "{path}: {baggage}");
        traces
            .entry(parts[1].to_owned())
            .or_default()
            .insert((vu.clone(), account.clone()));
        paths_of
            .entry(parts[1].to_owned())
            .or_default()
            .push(path.clone());
        traces_of_user
            .entry(account)
            .or_default()
            .insert(parts[1].to_owned());
    }
    // A trace is one user's: one iteration of the flow (at most its three requests) or its
    // on_start; each user had several.
    for (trace, users) in &traces {
        assert_eq!(users.len(), 1, "trace {trace} was sent by {users:?}");
        let paths = &paths_of[trace];
        assert!(
            paths == &["/login"] || paths.len() <= 3 && !paths.contains(&"/login".to_owned()),
            "trace {trace}: {paths:?}"
        );
    }
    assert_eq!(traces_of_user.len(), 3, "{traces_of_user:?}");
    assert!(
        traces_of_user.values().all(|t| t.len() >= 3),
        "{traces_of_user:?}"
    );

    // The report's failure sample names a trace the server saw on /broken.
    let result: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let broken = result["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "/broken")
        .expect("a /broken row");
    let message = broken["failures_by_kind"][0]["message"].as_str().unwrap();
    let trace = message
        .rsplit_once("(trace ")
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no trace in {message:?}"));
    assert!(
        paths_of
            .get(trace)
            .is_some_and(|p| p.contains(&"/broken".to_owned())),
        "{message:?} names a trace the server did not see on /broken"
    );
}
