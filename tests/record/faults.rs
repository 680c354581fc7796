//! The recorder under faults: killed, interrupted, a capture it cannot write or a disk that
//! fills, a target or a port it cannot use. Every completed exchange stays readable.

use super::*;

#[tokio::test]
async fn a_killed_recorder_leaves_every_completed_exchange_readable() {
    let app = student_app();
    let app_addr = serve_http(recording_router(&app, SeenLog::default())).await;
    let dir = tempfile::tempdir().unwrap();
    let target = format!("http://{app_addr}");
    let mut recorder = RecorderProcess::spawn(
        &[
            "--target",
            &target,
            "--listen",
            "127.0.0.1:0",
            "-o",
            "captures",
        ],
        dir.path(),
    );
    for n in 0..3 {
        let response = reqwest::get(format!("{}/api/v2/data/config/AA-{n}", recorder.url))
            .await
            .unwrap();
        response.bytes().await.unwrap();
        // The line is printed once the entry is on disk.
        RecorderProcess::wait_for(&recorder.stdout, &format!("/api/v2/data/config/AA-{n} "));
    }
    recorder.child.kill().unwrap(); // SIGKILL: no chance to finish the file
    recorder.child.wait().unwrap();
    let path = capture_in(&dir.path().join("captures"));
    let (har, _warnings) = har::read::read_file(&path).unwrap();
    assert_eq!(har.log.entries.len(), 3);
    assert_eq!(
        har.log.entries[2].request.url,
        format!("{target}/api/v2/data/config/AA-2")
    );
}

#[tokio::test]
async fn ctrl_c_finishes_the_file_and_prints_a_summary() {
    let app = student_app();
    let app_addr = serve_http(recording_router(&app, SeenLog::default())).await;
    let dir = tempfile::tempdir().unwrap();
    let target = format!("http://{app_addr}");
    let recorder = RecorderProcess::spawn(
        &[
            "--target",
            &target,
            "--listen",
            "127.0.0.1:0",
            "-o",
            "session.har",
        ],
        dir.path(),
    );
    for path in ["/", "/student"] {
        let response = reqwest::get(format!("{}{path}", recorder.url))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    }
    // Lines come in the order exchanges ended, which on two connections need not be the
    // order the browser saw the answers in.
    let mut lines = RecorderProcess::wait_for(&recorder.stdout, "/student 200");
    if !lines.iter().any(|l| l.starts_with("GET     / 200 ")) {
        lines.extend(RecorderProcess::wait_for(
            &recorder.stdout,
            "GET     / 200 ",
        ));
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("GET     / 200 ") && l.contains(" ms ")),
        "{lines:#?}"
    );
    recorder.interrupt();
    let lines = RecorderProcess::wait_for(&recorder.stdout, "recorded 2 exchanges");
    let summary = lines.last().unwrap();
    assert!(
        summary.contains(&format!("with 1 host ({app_addr})")) && summary.ends_with("session.har"),
        "{summary}"
    );
    let har = read_valid(&dir.path().join("session.har"));
    assert_eq!(har.log.entries.len(), 2);
}

#[tokio::test]
async fn an_unwritable_capture_stops_recording_loudly_but_not_forwarding() {
    let app = student_app();
    let app_addr = serve_http(recording_router(&app, SeenLog::default())).await;
    let dir = tempfile::tempdir().unwrap();
    // /dev/full opens, and every write fails with "No space left on device".
    let mut recorder = RecorderProcess::spawn(
        &[
            "--target",
            &format!("http://{app_addr}"),
            "--listen",
            "127.0.0.1:0",
            "-o",
            "/dev/full",
        ],
        dir.path(),
    );
    RecorderProcess::wait_for(&recorder.stderr, "RECORDING STOPPED");
    let response = reqwest::get(format!("{}/", recorder.url)).await.unwrap();
    assert_eq!(response.status(), 200, "the proxy still forwards");
    response.bytes().await.unwrap();
    recorder.interrupt();
    let lines = RecorderProcess::wait_for(&recorder.stderr, "the capture is incomplete");
    assert!(
        lines.last().unwrap().contains("No space left on device"),
        "{lines:#?}"
    );
    assert_eq!(recorder.child.wait().unwrap().code(), Some(2));
}

/// Issue 14 L6: a disk that fills up in the middle of an entry leaves the capture as valid
/// JSON holding exactly the entries the summary counts. The file-size limit (`ulimit -f`,
/// with SIGXFSZ ignored so the write fails with EFBIG) stands in for a full disk.
#[tokio::test]
async fn a_capture_cut_by_a_full_disk_is_valid_json_with_the_entries_counted() {
    let app = student_app();
    let app_addr = serve_http(recording_router(&app, SeenLog::default())).await;
    let dir = tempfile::tempdir().unwrap();
    let recorder = RecorderProcess::spawn_in_shell(
        Some("trap '' XFSZ; ulimit -f 16"),
        &[
            "--target",
            &format!("http://{app_addr}"),
            "--listen",
            "127.0.0.1:0",
            "-o",
            "full.har",
        ],
        dir.path(),
    );
    let client = reqwest::Client::new();
    let mut stopped = false;
    for n in 0..400 {
        let response = client
            .get(format!("{}/api/v2/data/config/AA-{n}", recorder.url))
            .send()
            .await
            .unwrap();
        response.bytes().await.unwrap();
        if let Ok(line) = recorder.stderr.try_recv() {
            stopped |= line.contains("RECORDING STOPPED");
            if stopped {
                break;
            }
        }
    }
    assert!(stopped, "the file-size limit stopped the recording");
    recorder.interrupt();
    let lines = RecorderProcess::wait_for(&recorder.stdout, "recorded ");
    let summary = lines.last().unwrap();
    let counted: usize = summary
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{summary}"));
    let text = std::fs::read_to_string(dir.path().join("full.har")).unwrap();
    let har: har::Har = serde_json::from_str(&text).unwrap_or_else(|err| {
        panic!(
            "not valid JSON: {err}; ends {:?}",
            &text[text.len().saturating_sub(80)..]
        )
    });
    assert!(counted > 0, "{summary}");
    assert_eq!(har.log.entries.len(), counted, "{summary}");
}

#[test]
fn an_invalid_target_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let output = util::chorus(&["record", "--target", "127.0.0.1:8001"], dir.path());
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.trim_end(),
        "error: --target \"127.0.0.1:8001\": it does not start with http:// or https://; \
         write the application's address as http://HOST:PORT or https://HOST:PORT, e.g. http://127.0.0.1:8001"
    );
}

#[test]
fn a_port_in_use_is_refused_with_a_clear_message() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let output = util::chorus(
        &[
            "record",
            "--target",
            "http://127.0.0.1:9",
            "--listen",
            &addr,
        ],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with(&format!(
            "error: could not listen on {addr}: Address already in use"
        )) && stderr.contains("pick another with --listen"),
        "{stderr}"
    );
}
