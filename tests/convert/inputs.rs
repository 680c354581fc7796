//! `chorus convert` on captures that are damaged, odd or huge, and what `--redact` leaves:
//! a clear error or a warning naming the entry, never a panic.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::util::{chorus, output_dir};

fn entry(index: usize, method: &str, url: &str, status: u16, response: &str) -> Value {
    json!({
        "startedDateTime": format!("2026-11-25T06:31:{:02}.000Z", index % 60),
        "time": 5,
        "request": {"method": method, "url": url, "httpVersion": "HTTP/1.1", "cookies": [],
                    "headers": [], "queryString": [], "headersSize": -1, "bodySize": 0},
        "response": {"status": status, "statusText": "", "httpVersion": "HTTP/1.1",
                     "cookies": [], "headers": [],
                     "content": {"size": response.len(), "mimeType": "application/json",
                                 "text": response},
                     "redirectURL": "", "headersSize": -1, "bodySize": response.len()},
        "cache": {}, "timings": {"send": 0, "wait": 5, "receive": 0}
    })
}

fn har(entries: Vec<Value>) -> Value {
    json!({"log": {"version": "1.2", "creator": {"name": "test", "version": "1"},
                   "entries": entries}})
}

fn three_entries() -> Value {
    har((0..3)
        .map(|i| entry(i, "GET", &format!("http://app/api/items/{i}"), 200, "{}"))
        .collect())
}

/// Runs `chorus convert FILE -o out.yaml`: (exit status, stderr).
fn convert(dir: &Path, name: &str, text: &str) -> (Option<i32>, String) {
    std::fs::write(dir.join(name), text).unwrap();
    let output = chorus(&["convert", name, "-o", "out.yaml"], dir);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !stderr.contains("panicked"),
        "chorus convert panicked on {name}:\n{stderr}"
    );
    (output.status.code(), stderr)
}

#[test]
fn damaged_captures_get_a_clear_error_or_a_warning_naming_the_entry() {
    let dir = output_dir("convert_bad_input");
    let good = serde_json::to_string_pretty(&three_entries()).unwrap();

    let (status, stderr) = convert(&dir, "notjson.har", "hello, this is not JSON");
    assert_eq!(status, Some(2), "{stderr}");
    assert!(stderr.starts_with("error: notjson.har:1:1: "), "{stderr}");

    let (status, stderr) = convert(&dir, "nolog.har", r#"{"pages": []}"#);
    assert_eq!(status, Some(2), "{stderr}");
    assert!(
        stderr.contains("nolog.har:1:") && stderr.contains("`log`"),
        "{stderr}"
    );

    // A recorder killed mid-write: the complete entries convert, and the cut is named.
    let cut = &good[..good.len() * 8 / 10];
    let (status, stderr) = convert(&dir, "truncated.har", cut);
    assert_eq!(status, Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: truncated.har:") && stderr.contains("ends early"),
        "{stderr}"
    );

    let mut unknown = three_entries();
    unknown["log"]["version"] = json!("9.9");
    let (status, stderr) = convert(&dir, "version.har", &unknown.to_string());
    assert_eq!(status, Some(0), "{stderr}");
    assert!(stderr.contains(r#"warning: HAR version "9.9""#), "{stderr}");

    // An entry without its request: the reader names it.
    let mut no_request = three_entries();
    no_request["log"]["entries"][1]
        .as_object_mut()
        .unwrap()
        .remove("request");
    let (status, stderr) = convert(&dir, "norequest.har", &no_request.to_string());
    assert_eq!(status, Some(2), "{stderr}");
    assert!(
        stderr.contains("log.entries[1]") && stderr.contains("`request`"),
        "{stderr}"
    );

    // Entries that cannot be replayed are left out, each with a warning naming it.
    let mut odd = three_entries();
    odd["log"]["entries"][0]["request"]["url"] = json!("not a url");
    odd["log"]["entries"][1]["request"]["method"] = json!("");
    odd["log"]["entries"][2]
        .as_object_mut()
        .unwrap()
        .remove("response");
    odd["log"]["entries"].as_array_mut().unwrap().push(entry(
        3,
        "GET",
        "http://app/api/items/3",
        200,
        "{}",
    ));
    let (status, stderr) = convert(&dir, "odd.har", &odd.to_string());
    assert_eq!(status, Some(0), "{stderr}");
    for expected in [
        "warning: entry 1 (GET not a url): the URL is not valid",
        "warning: entry 2 ( http://app/api/items/1): the request has no method",
        "warning: entry 3 (GET http://app/api/items/2): the capture has no response to it",
    ] {
        assert!(stderr.contains(expected), "no {expected:?} in:\n{stderr}");
    }
    let yaml = std::fs::read_to_string(dir.join("out.yaml")).unwrap();
    assert!(yaml.contains("- get: /api/items/3"), "{yaml}");

    let (status, stderr) = convert(&dir, "empty.har", &har(Vec::new()).to_string());
    assert_eq!(status, Some(2), "{stderr}");
    assert!(
        stderr.contains("holds no requests that can be replayed"),
        "{stderr}"
    );
}

/// A capture full of secrets in the places a person would not think of: an API key and a
/// bearer token no response returned, cookies set by a script, a password change that is not
/// a login, a token in a query string and in a comment-worthy made-up value.
fn secret_capture() -> Value {
    let mut login = entry(
        0,
        "POST",
        "http://app/api/login",
        200,
        r#"{"token":"tk-7f6e5d4c3b2a1908","user":"ann"}"#,
    );
    login["request"]["postData"] = json!({"mimeType": "application/json",
        "text": r#"{"email":"ann@example.org","password":"Corr3ct-Horse!"}"#});
    login["response"]["headers"] = json!([
        {"name": "Set-Cookie", "value": "sid=c00k1e-5e55-10n-v4lue; Path=/; HttpOnly"}
    ]);
    let mut profile = entry(
        1,
        "GET",
        "http://app/api/profile?access_token=qu3ry-t0k3n-9876",
        200,
        "{}",
    );
    profile["request"]["headers"] = json!([
        {"name": "Authorization", "value": "Bearer st4tic-b34r3r-t0k3n"},
        {"name": "X-Api-Key", "value": "k3y-0a1b2c3d4e5f"},
        {"name": "Cookie", "value": "sid=c00k1e-5e55-10n-v4lue; prefs=scr1pt-s3t-c00k13"}
    ]);
    let mut change = entry(2, "POST", "http://app/api/password", 200, "{}");
    change["request"]["postData"] = json!({"mimeType": "application/x-www-form-urlencoded",
        "text": "old=Corr3ct-Horse%21&new_password=N3w-P4ssw0rd-2026"});
    har(vec![login, profile, change])
}

#[test]
fn redact_leaves_no_password_token_or_cookie_of_the_capture() {
    let dir = output_dir("convert_redact");
    let capture = secret_capture().to_string();
    std::fs::write(dir.join("secrets.har"), &capture).unwrap();
    let secrets = [
        "Corr3ct-Horse!",
        "Corr3ct-Horse%21",
        "tk-7f6e5d4c3b2a1908",
        "c00k1e-5e55-10n-v4lue",
        "qu3ry-t0k3n-9876",
        "st4tic-b34r3r-t0k3n",
        "k3y-0a1b2c3d4e5f",
        "scr1pt-s3t-c00k13",
        "N3w-P4ssw0rd-2026",
    ];
    let plain = chorus(&["convert", "secrets.har"], &dir);
    let plain = String::from_utf8_lossy(&plain.stdout).into_owned();
    assert!(
        plain.contains("st4tic-b34r3r-t0k3n") && plain.contains("scr1pt-s3t-c00k13"),
        "without --redact the static secrets are written as recorded:\n{plain}"
    );
    let output = chorus(
        &["convert", "secrets.har", "--redact", "-o", "redacted.yaml"],
        &dir,
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let yaml = std::fs::read_to_string(dir.join("redacted.yaml")).unwrap();
    let leaked: Vec<&&str> = secrets.iter().filter(|s| yaml.contains(**s)).collect();
    assert!(leaked.is_empty(), "--redact left {leaked:?} in:\n{yaml}");
    assert!(yaml.contains("REDACTED"), "{yaml}");
    // Still a scenario: it loads (and says what to fill in).
    let options = chorus::scenario::LoadOptions {
        data_overrides: Vec::new(),
        host_override: None,
        ..Default::default()
    };
    std::fs::write(dir.join("users.csv"), "email,password\na@b.c,x\n").unwrap();
    chorus::scenario::load(&dir.join("redacted.yaml"), &options)
        .unwrap_or_else(|err| panic!("{err}\n\n{yaml}"));
}

#[test]
fn a_redirect_is_expected_and_its_location_feeds_the_next_request() {
    let dir = output_dir("convert_location");
    let mut created = entry(0, "POST", "http://app/orders", 303, "");
    created["request"]["postData"] = json!({"mimeType": "application/json", "text": r#"{"n":1}"#});
    created["response"]["headers"] =
        json!([{"name": "Location", "value": "/orders/o-1a2b3c4d5e?tab=new"}]);
    let shown = entry(
        1,
        "GET",
        "http://app/orders/o-1a2b3c4d5e?tab=new",
        200,
        "{}",
    );
    std::fs::write(
        dir.join("redirect.har"),
        har(vec![created, shown]).to_string(),
    )
    .unwrap();
    let output = chorus(&["convert", "redirect.har", "-o", "scenario.yaml"], &dir);
    assert_eq!(output.status.code(), Some(0));
    let yaml = std::fs::read_to_string(dir.join("scenario.yaml")).unwrap();
    for expected in [
        "expect_status: 303",
        "{ header: Location, regex: \"^(?:[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*)?/orders/([^/?#]+)\" }",
        "- get: \"/orders/{{ order_id }}?tab=new\"",
        "- redirect: \"/orders/*\"",
    ] {
        assert!(yaml.contains(expected), "no {expected:?} in:\n{yaml}");
    }
    let options = chorus::scenario::LoadOptions {
        data_overrides: Vec::new(),
        host_override: None,
        ..Default::default()
    };
    chorus::scenario::load(&dir.join("scenario.yaml"), &options)
        .unwrap_or_else(|err| panic!("{err}\n\n{yaml}"));
}

/// Writes a HAR of about `bytes` bytes: page views with 256 KiB HTML answers.
fn write_large_capture(path: &Path, bytes: u64) -> u64 {
    let body = format!("<p>{}</p>", "lorem ipsum dolor sit amet ".repeat(9700));
    let body = serde_json::to_string(&body).unwrap();
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    write!(
        file,
        r#"{{"log":{{"version":"1.2","creator":{{"name":"gen","version":"1"}},"entries":["#
    )
    .unwrap();
    let mut written = 0u64;
    let mut index = 0;
    while written < bytes {
        let head = if index > 0 { "," } else { "" };
        let text = format!(
            r#"{head}{{"startedDateTime":"2026-11-25T06:{:02}:{:02}.000Z","time":5,"request":{{"method":"GET","url":"http://app/page/{index}","httpVersion":"HTTP/1.1","cookies":[],"headers":[],"queryString":[],"headersSize":-1,"bodySize":0}},"response":{{"status":200,"statusText":"OK","httpVersion":"HTTP/1.1","cookies":[],"headers":[],"content":{{"size":1,"mimeType":"text/html","text":{body}}},"redirectURL":"","headersSize":-1,"bodySize":1}},"cache":{{}},"timings":{{"send":0,"wait":5,"receive":0}}}}"#,
            index / 60 % 60,
            index % 60
        );
        file.write_all(text.as_bytes()).unwrap();
        written += text.len() as u64;
        index += 1;
    }
    write!(file, "]}}}}").unwrap();
    file.flush().unwrap();
    std::fs::metadata(path).unwrap().len()
}

/// The peak memory of `chorus convert` on a 500 MB capture, measured by `/usr/bin/time -v`
/// and printed as a ratio to the file's size; it must finish without panicking, and within
/// twice the file's size (the HAR reader holds the parsed capture whole, and convert moves
/// its bodies instead of copying them: about 1x today; see docs/convert.md).
#[test]
fn a_500_mb_capture_converts_and_its_peak_memory_is_reported() {
    let dir = output_dir("convert_large");
    let path = dir.join("large.har");
    let size = write_large_capture(&path, 500 * 1000 * 1000);
    assert!(
        Path::new("/usr/bin/time").exists(),
        "this test measures memory with GNU time: apt-get install time"
    );
    let output = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(env!("CARGO_BIN_EXE_chorus"))
        .args(["convert", "large.har", "-o", "large.yaml"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let peak_kib: u64 = stderr
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak memory in:\n{stderr}"));
    let ratio = peak_kib as f64 * 1024.0 / size as f64;
    println!(
        "chorus convert on a {} MB capture: peak memory {} MB ({ratio:.2}x the file)",
        size / 1_000_000,
        peak_kib * 1024 / 1_000_000
    );
    std::fs::remove_file(&path).unwrap();
    assert!(ratio < 3.0, "peak memory {ratio:.2}x the capture's size");
}
