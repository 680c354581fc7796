//! Outputs checked before any work: every unwritable report named at once before a single
//! request; an output that is one of the inputs refused; an existing capture never
//! truncated by `record` (report rows 48-51).

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::refused;
use crate::util::output_dir;

/// A TCP listener on 127.0.0.1 that counts the connections it accepts.
fn counting_listener() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if stream.is_ok() {
                seen.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    (url, count)
}

fn running_as_root() -> bool {
    // A folder without write permission is writable for root: probe it.
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    std::fs::write(locked.join("probe"), "").is_ok()
}

#[test]
fn every_unwritable_report_is_named_before_any_request() {
    let dir = output_dir("inputs_unwritable_reports");
    let (url, connections) = counting_listener();
    std::fs::create_dir_all(dir.join("a_folder.json")).unwrap();
    std::fs::write(dir.join("file"), "").unwrap();
    refused(
        &[
            "run",
            "--url",
            &format!("{url}/"),
            "--headless",
            "-u",
            "1",
            "-t",
            "2s",
            "--json",
            "a_folder.json",
            "--csv",
            "file/under/a/file",
            "--html",
            "ok.html",
        ],
        &dir,
        "error: cannot write 2 outputs: --csv file/under/a/file (file/under/a/file_stats.csv): cannot create the folder file/under/a: a part of the path is a file, not a folder; --json a_folder.json: it is a folder; give a file name (e.g. out/run.json)",
    );
    assert_eq!(connections.load(Ordering::SeqCst), 0, "no request was sent");
    assert!(
        !dir.join("ok.html").exists(),
        "the check leaves nothing behind"
    );

    if !running_as_root() {
        let locked = dir.join("locked");
        std::fs::create_dir_all(&locked).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
        refused(
            &[
                "run",
                "--url",
                &format!("{url}/"),
                "--headless",
                "-t",
                "2s",
                "--json",
                "locked/x.json",
            ],
            &dir,
            "error: cannot write --json locked/x.json: permission denied",
        );
        assert_eq!(connections.load(Ordering::SeqCst), 0);
    }
}

#[test]
fn an_output_that_is_an_input_is_refused_and_the_input_kept() {
    let dir = output_dir("inputs_output_is_input");
    let scenario = "host: http://127.0.0.1:9\nflows:\n  - steps: [{get: /}]\n";
    std::fs::write(dir.join("s.yaml"), scenario).unwrap();
    refused(
        &[
            "run",
            "s.yaml",
            "--headless",
            "-t",
            "1s",
            "--json",
            "./s.yaml",
        ],
        &dir,
        "error: cannot write --json ./s.yaml: that is the scenario, which writing there would replace; give another name",
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("s.yaml")).unwrap(),
        scenario
    );

    let capture =
        r#"{"log": {"version": "1.2", "creator": {"name": "t", "version": "1"}, "entries": []}}"#;
    std::fs::write(dir.join("c.har"), capture).unwrap();
    refused(
        &["convert", "c.har", "-o", "c.har"],
        &dir,
        "error: cannot write -o c.har: that is the capture being converted, which writing there would replace; give another name",
    );
    assert_eq!(std::fs::read_to_string(dir.join("c.har")).unwrap(), capture);

    let provisioning = "host: http://127.0.0.1:9\non_start:\n  - emit: {username: a}\n";
    std::fs::write(dir.join("p.yaml"), provisioning).unwrap();
    refused(
        &["provision", "p.yaml", "-o", "p.yaml"],
        &dir,
        "error: cannot write -o p.yaml: that is the provisioning file, which writing there would replace; give another name",
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("p.yaml")).unwrap(),
        provisioning
    );
}

#[test]
fn record_never_truncates_an_existing_capture_without_force() {
    let dir = output_dir("inputs_record_existing");
    let capture = "{\"log\": {\"entries\": [\"a capture worth keeping\"]}}";
    std::fs::write(dir.join("old.har"), capture).unwrap();
    refused(
        &[
            "record",
            "--target",
            "http://127.0.0.1:9",
            "--listen",
            "127.0.0.1:0",
            "-o",
            "old.har",
        ],
        &dir,
        "error: -o old.har: the file exists, and recording would replace it: give another name, a folder (each recording gets a new file there), or --force to replace it",
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("old.har")).unwrap(),
        capture
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_closed_mid_run_loses_nothing() {
    // `chorus run ... | head -1`: stdout (and here stderr too) closed before the run ends.
    // The run ends by itself, writes its report, and the report counts what the app saw.
    let (server, _app) = crate::util::demo_app(Default::default()).await;
    let host = server.url();
    let dir = output_dir("inputs_closed_terminal");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args([
            "run",
            "--url",
            &format!("{host}/"),
            "--headless",
            "-u",
            "2",
            "-t",
            "2s",
            "--json",
            "run.json",
        ])
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0), "{status}");
    let result = chorus::stats::RunResult::from_json(
        &std::fs::read_to_string(dir.join("run.json")).unwrap(),
    )
    .unwrap();
    let stats = crate::util::demo_stats(&host).await;
    assert!(result.total.requests > 0);
    assert_eq!(stats["requests_total"], result.total.requests);
    server.shutdown().await;
}
