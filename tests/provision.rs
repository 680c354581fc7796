//! Integration tests for `chorus provision` (see tests/integration.rs): demo/provision.yaml
//! against the demo app, re-runs that finish the job, a login that fails, transport errors
//! that are retried.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chorus::demo::AppOptions;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use crate::util::{chorus, demo_app, output_dir};

fn provision_file() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("demo/provision.yaml")
        .display()
        .to_string()
}

/// `chorus provision FILE -H HOST -o users.csv EXTRA...`: (exit code, stdout, stderr).
fn provision(file: &str, host: &str, dir: &Path, extra: &[&str]) -> (i32, String, String) {
    let csv = dir.join("users.csv");
    let mut args = vec!["provision", file, "-H", host, "-o", csv.to_str().unwrap()];
    args.extend_from_slice(extra);
    let output = chorus(&args, dir);
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The rows of a CSV with a header: (username, password, class).
fn accounts(path: &Path) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("username,password,class"));
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 3, "{line}");
            (fields[0].into(), fields[1].into(), fields[2].into())
        })
        .collect()
}

async fn student_can_log_in(base: &str, username: &str, password: &str) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/v2/auth/login/glasslab"))
        .json(&serde_json::json!({ "username": username, "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{username} cannot log in");
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_provisioning_creates_each_account_once_and_a_rerun_lists_them_all() {
    let dir = output_dir("provision_demo");
    let (server, _app) = demo_app(AppOptions::default()).await;
    let base = server.url();
    let file = provision_file();

    let (code, stdout, stderr) = provision(
        &file,
        &base,
        &dir,
        &[
            "--var",
            "classes=3",
            "--var",
            "students=4",
            "--concurrency",
            "3",
        ],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("12 row(s): 12 created, 0 already there, 0 failed"),
        "{stdout}"
    );
    let first = accounts(&dir.join("users.csv"));
    assert_eq!(first.len(), 12);
    let classes: BTreeSet<&str> = first.iter().map(|(_, _, class)| class.as_str()).collect();
    assert_eq!(classes.len(), 3, "{classes:?}");
    for (username, password, _) in &first {
        student_can_log_in(&base, username, password).await;
    }

    // More of both: what exists is found, the rest created; the CSV lists every account.
    let (code, stdout, stderr) = provision(
        &file,
        &base,
        &dir,
        &["--var", "classes=4", "--var", "students=5"],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("20 row(s): 8 created, 12 already there, 0 failed"),
        "{stdout}"
    );
    let second = accounts(&dir.join("users.csv"));
    let usernames: BTreeSet<&str> = second.iter().map(|(u, _, _)| u.as_str()).collect();
    assert_eq!(usernames.len(), 20);
    assert!(first.iter().all(|row| second.contains(row)));
    let (username, password, _) = second.last().unwrap();
    student_can_log_in(&base, username, password).await;

    // Four classes, not four plus three: nothing was created twice.
    let stats: Value = crate::util::demo_stats(&base).await;
    let creates = &stats["endpoints"]["POST /api/course/create"];
    assert_eq!(creates["200"], 4, "{stats:#}");
    assert_eq!(creates["409"], 3, "{stats:#}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_that_fails_stops_at_once_with_the_servers_answer() {
    let dir = output_dir("provision_bad_login");
    let (server, _app) = demo_app(AppOptions::default()).await;
    std::fs::write(
        dir.join("users.csv"),
        "username,password,class\nkept,kept,kept\n",
    )
    .unwrap();
    let (code, stdout, stderr) = provision(
        &provision_file(),
        &server.url(),
        &dir,
        &["--var", "teacherPassword=wrong"],
    );
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("FAIL  POST /api/user/login: HTTP 401"),
        "{stderr}"
    );
    assert!(stderr.contains("password"), "the server's answer: {stderr}");
    assert!(
        stdout.contains("0 row(s): 0 created, 0 already there, 1 failed"),
        "{stdout}"
    );
    // The earlier CSV is kept, and nothing but the login (and the logout) reached the app.
    assert_eq!(
        std::fs::read_to_string(dir.join("users.csv")).unwrap(),
        "username,password,class\nkept,kept,kept\n"
    );
    let stats: Value = crate::util::demo_stats(&server.url()).await;
    let paths: BTreeSet<&str> = stats["endpoints"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        paths,
        BTreeSet::from(["POST /api/user/login", "POST /api/user/logout"]),
        "{stats:#}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_errors_are_retried_and_counted_once() {
    let dir = output_dir("provision_retries");
    // A server that drops its first two connections unanswered, then answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let number = seen.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut request = vec![0u8; 4096];
                let _ = stream.read(&mut request).await;
                if number >= 2 {
                    let body = r#"{"id":7}"#;
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(reply.as_bytes()).await;
                }
            });
        }
    });
    let file = dir.join("setup.yaml");
    std::fs::write(
        &file,
        "on_start:\n  - post: /accounts\n    json: {name: a}\n    extract:\n      id: $.id\n  - emit:\n      id: \"{{ id }}\"\n    outcome: created\n",
    )
    .unwrap();
    let (code, stdout, stderr) = provision(
        file.to_str().unwrap(),
        &format!("http://{address}"),
        &dir,
        &[],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 row(s): 1 created, 0 already there, 0 failed"),
        "{stdout}"
    );
    assert!(stdout.contains("1 request(s)"), "{stdout}");
    assert_eq!(connections.load(Ordering::SeqCst), 3);
    assert_eq!(
        std::fs::read_to_string(dir.join("users.csv")).unwrap(),
        "id\n7\n"
    );
}

#[test]
fn a_file_with_flows_or_without_emit_is_refused_before_any_traffic() {
    let dir = output_dir("provision_refused");
    let flows = dir.join("flows.yaml");
    std::fs::write(&flows, "flows:\n  - steps:\n      - get: /\n").unwrap();
    let (code, _, stderr) = provision(flows.to_str().unwrap(), "http://127.0.0.1:9", &dir, &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("put its steps under `on_start:`"),
        "{stderr}"
    );
    let no_emit = dir.join("no-emit.yaml");
    std::fs::write(&no_emit, "on_start:\n  - get: /\n").unwrap();
    let (code, _, stderr) = provision(no_emit.to_str().unwrap(), "http://127.0.0.1:9", &dir, &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("`emit:`"), "{stderr}");
    let (code, _, stderr) = provision(
        &provision_file(),
        "http://127.0.0.1:9",
        &dir,
        &["--var", "classes"],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("expected NAME=VALUE"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_provisioning_says_so_and_keeps_the_earlier_csv() {
    let dir = output_dir("provision_interrupted");
    let (server, _app) = demo_app(AppOptions::default()).await;
    let base = server.url();
    let earlier = "username,password,class\nkept,kept,kept\n";
    let csv = dir.join("users.csv");
    std::fs::write(&csv, earlier).unwrap();
    let file = provision_file();
    let args = [
        "provision",
        &file,
        "-H",
        &base,
        "-o",
        csv.to_str().unwrap(),
        "--var",
        "classes=2",
        "--var",
        "students=5000",
        "--concurrency",
        "1",
    ];
    let job = crate::util::process::Chorus::start(&args, &dir, None);
    let registered = || async {
        let stats: Value = crate::util::demo_stats(&base).await;
        stats["endpoints"]["POST /api/user/register"]["200"]
            .as_u64()
            .unwrap_or(0)
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while registered().await < 20 {
        assert!(tokio::time::Instant::now() < deadline, "no registrations");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    job.signal("INT").await;
    let ended = job
        .finish(std::time::Duration::from_secs(60), 500 * 1024)
        .await;
    assert_eq!(ended.code, Some(1), "{}\n{}", ended.stdout, ended.stderr);
    assert!(ended.stdout.contains("INTERRUPTED"), "{}", ended.stdout);
    assert!(
        ended
            .stdout
            .contains("Run the same command again to finish"),
        "{}",
        ended.stdout
    );
    // The earlier file is kept whole; the rows of the cut job are beside it.
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), earlier);
    let partial = accounts(&dir.join("users.csv.interrupted"));
    let made = registered().await as usize;
    assert!(
        !partial.is_empty() && partial.len() <= made && made < 10_000,
        "{} rows, {made} registered",
        partial.len()
    );
    server.shutdown().await;
}
