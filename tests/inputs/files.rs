//! Inputs that never end or are not files, and a capture damaged in the middle: one clear
//! message at once (report rows 3, 4, 11, 27).

use serde_json::json;

use super::{refused, run};
use crate::util::output_dir;

fn entry(second: usize, url: &str) -> serde_json::Value {
    json!({
        "startedDateTime": format!("2026-11-25T06:31:{second:02}.000Z"), "time": 5,
        "request": {"method": "GET", "url": url, "httpVersion": "HTTP/1.1", "cookies": [],
                    "headers": [], "queryString": [], "headersSize": -1, "bodySize": 0},
        "response": {"status": 200, "statusText": "", "httpVersion": "HTTP/1.1", "cookies": [],
                     "headers": [], "content": {"size": 2, "mimeType": "application/json", "text": "{}"},
                     "redirectURL": "", "headersSize": -1, "bodySize": 2},
        "cache": {}, "timings": {"send": 0, "wait": 5, "receive": 0}
    })
}

#[test]
fn devices_folders_and_non_json_fail_at_once_with_the_reason() {
    let dir = output_dir("inputs_special_files");
    refused(
        &["convert", "/dev/zero", "-o", "z.yaml"],
        &dir,
        "error: /dev/zero: could not read the capture: it is a device or another special file, not a capture",
    );
    refused(
        &["convert", "/dev/urandom", "-o", "z.yaml"],
        &dir,
        "it is a device or another special file, not a capture",
    );
    std::fs::create_dir_all(dir.join("folder.har")).unwrap();
    // Said once: not "Is a directory (os error 21): Is a directory (os error 21)".
    refused(
        &["convert", "folder.har", "-o", "z.yaml"],
        &dir,
        "error: folder.har: could not read the capture: it is a folder, not a capture",
    );
    std::fs::write(
        dir.join("page.har"),
        "\n  <html><body>saved the page, not the HAR</body></html>",
    )
    .unwrap();
    refused(
        &["convert", "page.har", "-o", "z.yaml"],
        &dir,
        "error: page.har:2:3: not a HAR capture: a HAR file is a JSON object, starting with `{`; found `<`",
    );
    let mut latin1 = br#"{"log": {"version": "1.2", "creator": {"name": "caf"#.to_vec();
    latin1.extend_from_slice(b"\xe9\"}, \"entries\": []}}");
    std::fs::write(dir.join("latin1.har"), latin1).unwrap();
    refused(
        &["convert", "latin1.har", "-o", "z.yaml"],
        &dir,
        "error: latin1.har:1:52: not UTF-8 text (byte 0xe9); a HAR capture is UTF-8 JSON",
    );
    std::fs::write(
        dir.join("s.yaml"),
        "host: http://127.0.0.1:9\ndata:\n  users: {file: users.csv}\nflows:\n  - steps: [{get: '/{{ users.name }}'}]\n",
    )
    .unwrap();
    refused(
        &[
            "run",
            "s.yaml",
            "--data",
            "users=/dev/zero",
            "--headless",
            "-t",
            "1s",
        ],
        &dir,
        "data file /dev/zero cannot be read: it is a device or another special file, not a CSV data file",
    );
    refused(
        &["run", "/dev/zero", "--headless", "-t", "1s"],
        &dir,
        "cannot read the scenario file: it is a device or another special file, not a scenario file",
    );
}

#[test]
fn a_capture_damaged_in_the_middle_is_an_error_and_one_cut_short_is_kept() {
    let dir = output_dir("inputs_har_damage");
    let entries: Vec<_> = (0..12)
        .map(|i| entry(i, &format!("http://app.test/api/items/{i}")))
        .collect();
    let text = serde_json::to_string_pretty(
        &json!({"log": {"version": "1.2", "creator": {"name": "t", "version": "1"}, "entries": entries}}),
    )
    .unwrap();
    // One character of `"method"` removed in entry 6 of 12.
    let sixth = text.match_indices("\"method\"").nth(5).unwrap().0;
    let damaged = format!("{}{}", &text[..sixth], &text[sixth + 1..]);
    std::fs::write(dir.join("mid.har"), &damaged).unwrap();
    let line = damaged[..sixth].matches('\n').count() + 1;
    refused(
        &["convert", "mid.har", "-o", "mid.yaml"],
        &dir,
        &format!("error: mid.har:{line}:"),
    );
    let (_, stderr) = run(&["convert", "mid.har", "-o", "mid.yaml"], &dir);
    assert!(
        stderr.contains("the capture is damaged here (")
            && stderr.contains("bytes follow), not cut short"),
        "{stderr}"
    );
    assert!(!dir.join("mid.yaml").exists(), "nothing is converted");

    // The same capture cut short inside entry 8 (a recorder that was stopped) still
    // converts its seven complete entries, with a warning.
    let eighth = text.match_indices("\"startedDateTime\"").nth(7).unwrap().0;
    std::fs::write(dir.join("cut.har"), &text[..eighth + 40]).unwrap();
    let (status, stderr) = run(&["convert", "cut.har", "-o", "cut.yaml"], &dir);
    assert_eq!(status, Some(0), "{stderr}");
    assert!(stderr.contains("kept the 7 complete entries"), "{stderr}");
}

#[test]
fn each_mistake_is_said_once() {
    let dir = output_dir("inputs_said_once");
    std::fs::write(
        dir.join("s.yaml"),
        "host: http://127.0.0.1:9\ndata:\n  users: {file: users.csv, mode: unique, as: user}\nflows:\n  - steps: [{get: '/{{ user.name }}'}]\n",
    )
    .unwrap();
    std::fs::write(dir.join("users.csv"), "name\na\nb\n").unwrap();
    // Was "X: X": the refusal printed, then again as its own cause.
    let (status, stderr) = run(
        &["run", "s.yaml", "--headless", "-u", "5", "-t", "1s"],
        &dir,
    );
    assert_eq!(status, Some(2), "{stderr}");
    assert_eq!(
        stderr,
        "error: data source `users` (users.csv) has 2 rows, one per user, but the run asks for 5 users; add rows (chorus provision), lower -u, or set `mode: cycle` on the source to reuse rows\n"
    );
    // A bad -H is one problem, not also "the scenario has no host" for every relative URL.
    let (status, stderr) = run(
        &["run", "s.yaml", "-H", "ftp://x", "--headless", "-t", "1s"],
        &dir,
    );
    assert_eq!(status, Some(2), "{stderr}");
    assert_eq!(
        stderr,
        "error: s.yaml: -H/--host \"ftp://x\": expected an http:// or https:// URL with a host, e.g. http://127.0.0.1:8001\n"
    );
    refused(
        &["demo", "--serve-only", "--seed", "100000000x100000"],
        &dir,
        "100000000x100000 is 10000000000000 accounts; the demo makes at most 1000000",
    );
}
