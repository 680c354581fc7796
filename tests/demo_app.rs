//! The demo application over real HTTP: its whole API, its errors, and its pages in Chromium.

use std::time::Duration;

use chorus::demo::{AppOptions, Seed, TEACHER_PASSWORD, TEACHER_USERNAME};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

use crate::util::{self, browser::Browser};

fn client() -> Client {
    Client::builder().cookie_store(true).build().unwrap()
}

async fn post(client: &Client, base: &str, path: &str, body: Value) -> Response {
    client
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn json_of(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let value =
        serde_json::from_str(&text).unwrap_or_else(|err| panic!("not JSON ({err}): {text}"));
    (status, value)
}

async fn error_of(response: Response) -> (u16, String) {
    let (status, body) = json_of(response).await;
    let message = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error field in {body}"))
        .to_owned();
    (status.as_u16(), message)
}

#[tokio::test]
async fn the_whole_api_from_teacher_to_game_session() {
    let (server, _app) = util::demo_app(AppOptions {
        events_period_secs: 3,
        seed: None,
    })
    .await;
    let base = server.url();

    // Teacher: log in, create a class, read its code.
    let teacher = client();
    let (status, login) = json_of(
        post(
            &teacher,
            &base,
            "/api/user/login",
            json!({"username": TEACHER_USERNAME, "password": TEACHER_PASSWORD}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    assert!(login["sessionId"].as_str().is_some_and(|s| !s.is_empty()));
    let (status, created) = json_of(
        post(
            &teacher,
            &base,
            "/api/course/create",
            json!({"title": "Mars 7A", "grade": 7}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let code = created["code"].as_str().unwrap().to_owned();
    let listed: Value = teacher
        .get(format!("{base}/api/course"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["code"], code.as_str());
    assert_eq!(listed[0]["title"], "Mars 7A");

    // A duplicate class title is refused.
    let (status, message) = error_of(
        post(
            &teacher,
            &base,
            "/api/course/create",
            json!({"title": "Mars 7A", "grade": 7}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, message.as_str()),
        (409, "you already have a class titled \"Mars 7A\"")
    );

    // Anyone: validate the code, register a student.
    let anon = client();
    let (_, valid) =
        json_of(post(&anon, &base, "/api/code/valid", json!({"code": code})).await).await;
    let course_id = valid["associatedData"]["id"].as_u64().unwrap();
    assert_eq!(course_id, created["id"].as_u64().unwrap());
    let registration = json!({"username": "ada", "password": "lovelace", "firstName": "Ada", "lastName": "L",
        "type": "course", "associatedId": course_id});
    let (status, _) =
        json_of(post(&anon, &base, "/api/user/register", registration.clone()).await).await;
    assert_eq!(status, 200);
    let (status, message) =
        error_of(post(&anon, &base, "/api/user/register", registration).await).await;
    assert_eq!(
        (status, message.as_str()),
        (409, "the username \"ada\" is taken")
    );

    // Student: wrong password, then log in and play.
    let student = client();
    let (status, message) = error_of(
        post(
            &student,
            &base,
            "/api/v2/auth/login/glasslab",
            json!({"username": "ada", "password": "nope"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, message.as_str()),
        (401, "wrong username or password")
    );
    let (_, login) = json_of(
        post(
            &student,
            &base,
            "/api/v2/auth/login/glasslab",
            json!({"username": "ada", "password": "lovelace"}),
        )
        .await,
    )
    .await;
    let session_id = login["sessionId"].as_str().unwrap().to_owned();
    let courses: Value = student
        .get(format!("{base}/api/v2/lms/courses"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(courses[0]["id"].as_u64(), Some(course_id));
    let config: Value = student
        .get(format!("{base}/api/v2/data/config/AA-1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["eventsPeriodSecs"], 3);
    let play_info = student
        .get(format!("{base}/api/v2/data/game/AA-1/playInfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(play_info.status(), 200);

    let (status, start) = json_of(
        post(&student, &base, "/api/v2/data/session/start",
            json!({"userSessionId": session_id, "courseId": course_id, "deviceId": "dev-1", "gameId": "AA-1"})).await,
    )
    .await;
    assert_eq!(status, 200, "{start}");
    assert_eq!(start["eventsPeriodSecs"], 3);
    let game = start["gameSessionId"].as_str().unwrap().to_owned();

    let events =
        json!([{"gameSessionId": game, "name": "move"}, {"gameSessionId": game, "name": "jump"}]);
    let (status, accepted) =
        json_of(post(&student, &base, "/api/v2/data/events", events).await).await;
    assert_eq!(
        (status.as_u16(), accepted["accepted"].as_u64()),
        (200, Some(2))
    );
    // The same batch, form-encoded, as the 2013 client sent it.
    let form = student
        .post(format!("{base}/api/v2/data/events"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!(
            "gameSessionId={game}&events=%5B%7B%22name%22%3A%22move%22%7D%5D"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
    // An events post naming a session that is not the caller's is refused.
    let (status, message) = error_of(
        post(
            &student,
            &base,
            "/api/v2/data/events",
            json!([{"gameSessionId": "g-not-mine"}]),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, message.as_str()),
        (400, "event 0: no live game session \"g-not-mine\"")
    );

    let save = post(
        &student,
        &base,
        "/api/v2/data/game/AA-1",
        json!({"level": 2}),
    )
    .await;
    assert_eq!(save.status(), 200);
    let (_, time) = json_of(
        post(
            &student,
            &base,
            "/api/v2/data/game/AA-1/totalTimePlayed",
            json!({"setTime": 30}),
        )
        .await,
    )
    .await;
    assert_eq!(time["totalTimePlayed"], 30);
    let end = post(
        &student,
        &base,
        "/api/v2/data/session/end",
        json!({"gameSessionId": game}),
    )
    .await;
    assert_eq!(end.status(), 200);

    // The server saw exactly those requests, and the game session's two event posts.
    let stats = crate::util::demo_stats(&base).await;
    assert_eq!(stats["requests_total"], 19, "{stats:#}");
    assert_eq!(stats["endpoints"]["POST /api/v2/data/events"]["200"], 2);
    assert_eq!(stats["endpoints"]["POST /api/v2/data/events"]["400"], 1);
    let sessions = stats["game_sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["user"], "ada");
    assert_eq!(sessions[0]["events"], 3);
    assert_eq!(sessions[0]["event_times_ms"].as_array().unwrap().len(), 2);
    assert_eq!(sessions[0]["ended"], true);
    server.shutdown().await;
}

#[tokio::test]
async fn a_second_login_revokes_the_first_session() {
    let (server, app) = util::demo_app(AppOptions {
        events_period_secs: 2,
        seed: Some(Seed {
            classes: 1,
            students: 1,
        }),
    })
    .await;
    let base = server.url();
    let (username, password, _) = app.seeded_users()[0].clone();
    let first = client();
    let second = client();
    let credentials = json!({"username": username, "password": password});
    post(
        &first,
        &base,
        "/api/v2/auth/login/glasslab",
        credentials.clone(),
    )
    .await;
    let ok = first
        .get(format!("{base}/api/v2/lms/courses"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    post(&second, &base, "/api/v2/auth/login/glasslab", credentials).await;
    let revoked = first
        .get(format!("{base}/api/v2/lms/courses"))
        .send()
        .await
        .unwrap();
    let (status, message) = error_of(revoked).await;
    assert_eq!(status, 401);
    assert!(
        message.starts_with("session expired or revoked"),
        "{message}"
    );
    assert_eq!(
        second
            .get(format!("{base}/api/v2/lms/courses"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    server.shutdown().await;
}

#[tokio::test]
async fn bad_input_gets_a_4xx_json_error_never_a_500() {
    let (server, _app) = util::demo_app(AppOptions::default()).await;
    let base = server.url();
    let http = client();
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (
            http.post(format!("{base}/api/user/login"))
                .body("{not json"),
            400,
            "malformed JSON",
        ),
        (
            http.post(format!("{base}/api/user/login"))
                .body(r#"{"username":"x"}"#),
            400,
            "missing field `password`",
        ),
        (
            http.post(format!("{base}/api/user/login"))
                .body(r#"{"username":1,"password":"x"}"#),
            400,
            "field `username`: invalid type",
        ),
        (
            http.post(format!("{base}/api/user/login")),
            400,
            "the request has no body",
        ),
        (
            http.get(format!("{base}/api/nothing/here")),
            404,
            "no route for GET /api/nothing/here",
        ),
        (
            http.delete(format!("{base}/api/course")),
            405,
            "DELETE is not allowed on /api/course",
        ),
        (
            http.get(format!("{base}/api/v2/lms/courses")),
            401,
            "not logged in",
        ),
        (
            http.post(format!("{base}/api/code/valid"))
                .body(r#"{"code":"NOPE"}"#),
            404,
            "no class has the code \"NOPE\"",
        ),
        (
            http.get(format!("{base}/__demo/delay/soon")),
            400,
            "expected milliseconds",
        ),
    ];
    for (request, status, fragment) in cases {
        let response = request.send().await.unwrap();
        let (got_status, message) = error_of(response).await;
        assert_eq!(got_status, status, "{message}");
        assert!(
            message.contains(fragment),
            "expected {fragment:?} in {message:?}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn seeded_accounts_are_written_as_csv() {
    let dir = tempfile::tempdir().unwrap();
    let app = chorus::demo::App::new(AppOptions {
        events_period_secs: 2,
        seed: Some(Seed {
            classes: 3,
            students: 4,
        }),
    });
    let path = dir.path().join("users.csv");
    app.write_users_csv(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 13);
    assert_eq!(lines[0], "username,password,class");
    assert_eq!(lines[1], "student-001-001,pw-001-001,class-001");
}

#[tokio::test]
async fn delay_answers_after_the_asked_time() {
    let (server, _app) = util::demo_app(AppOptions::default()).await;
    let started = std::time::Instant::now();
    let response = reqwest::get(format!("{}/__demo/delay/120", server.url()))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(120));
    server.shutdown().await;
}

/// A person's path through the pages, in a real browser: log in as a student, play a game
/// session; the server then holds its events, spaced by its own period.
#[tokio::test]
async fn a_student_plays_in_chromium() {
    let (server, app) = util::demo_app(AppOptions {
        events_period_secs: 1,
        seed: Some(Seed {
            classes: 1,
            students: 2,
        }),
    })
    .await;
    let base = server.url();
    let (username, password, _) = app.seeded_users()[1].clone();
    let mut browser = Browser::start(&[], &util::output_dir("demo_app_student_plays")).await;

    browser
        .play_as_student(&base, &username, &password, 3)
        .await;
    browser.close().await;

    let stats = crate::util::demo_stats(&base).await;
    let sessions = stats["game_sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{stats:#}");
    assert_eq!(sessions[0]["user"], username.as_str());
    let times: Vec<u64> = sessions[0]["event_times_ms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap())
        .collect();
    assert_eq!(times.len(), 3, "{times:?}");
    // Posts come once per eventsPeriodSecs (1 s) after the start: within 20 %.
    let mut previous = 0;
    for time in times {
        let gap = time - previous;
        assert!(
            (800..=1200).contains(&gap),
            "gap of {gap} ms between event posts, expected 1000 ms ± 20 %"
        );
        previous = time;
    }
    server.shutdown().await;
}

/// The README's first command, headless: accounts provisioned, the shipped capture
/// converted, the run against the built-in app clean.
#[test]
fn chorus_demo_headless_runs_clean() {
    let dir = tempfile::tempdir().unwrap();
    let output = util::chorus(
        &[
            "demo",
            "--headless",
            "-t",
            "20000ms",
            "--json",
            "result.json",
        ],
        dir.path(),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "chorus demo failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("100 row(s): 100 created, 0 already there, 0 failed"),
        "{stdout}"
    );
    // The run it starts carries the run time as the user wrote it (issue 19).
    let running = stdout
        .lines()
        .find(|line| line.trim_start().starts_with("running: run "))
        .unwrap_or_else(|| panic!("no running line:\n{stdout}"));
    assert!(running.contains(" -t 20000ms "), "{running}");
    // What the demo did is on disk for the user to read, edit and run again.
    let demo = dir.path().join("chorus-demo");
    let users = std::fs::read_to_string(demo.join("users.csv")).unwrap();
    assert_eq!(users.lines().next(), Some("username,password,class"));
    assert_eq!(users.lines().count(), 101);
    let scenario = std::fs::read_to_string(demo.join("scenario.yaml")).unwrap();
    assert!(
        scenario.starts_with("# converted by chorus")
            && scenario.contains("chorus-demo/capture.har"),
        "{scenario}"
    );
    for file in ["capture.har", "provision.yaml", "hand-written.yaml"] {
        assert!(demo.join(file).exists(), "no {file}");
    }
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("result.json")).unwrap())
            .unwrap();
    let requests = result["total"]["requests"].as_u64().unwrap();
    assert_eq!(result["total"]["failures"], 0, "{stdout}");
    assert!(
        requests >= 200,
        "only {requests} requests in 20 s:\n{stdout}"
    );
}

/// `chorus run --check`: two users, each flow twice, a line per request with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_check_says_what_passed_and_why_a_request_failed() {
    let (server, app) = util::demo_app(AppOptions {
        events_period_secs: 1,
        seed: Some(Seed {
            classes: 1,
            students: 2,
        }),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    app.write_users_csv(&dir.path().join("users.csv")).unwrap();
    std::fs::write(
        dir.path().join("bad.csv"),
        "username,password,class\nstudent-001-001,wrong,x\nstudent-001-002,wrong,x\n",
    )
    .unwrap();
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/demo/scenario.yaml");
    let base = server.url();
    let run = |users: &'static str| {
        let dir = dir.path().to_owned();
        let base = base.clone();
        tokio::task::spawn_blocking(move || {
            util::chorus(
                &["run", scenario, "--check", "--data", users, "-H", &base],
                &dir,
            )
        })
    };
    let good = run("users=users.csv").await.unwrap();
    let stdout = String::from_utf8_lossy(&good.stdout);
    assert!(
        good.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&good.stderr)
    );
    for name in [
        "POST /api/v2/auth/login/glasslab",
        "POST /api/v2/data/session/start",
        "POST /api/v2/data/events",
    ] {
        for user in ["user 0", "user 1"] {
            assert!(
                stdout
                    .lines()
                    .any(|line| line.starts_with(&format!("PASS  {user} ")) && line.ends_with(name)),
                "no PASS line of {user} for {name}:\n{stdout}"
            );
        }
    }
    let sent = stdout
        .lines()
        .filter(|line| line.starts_with("PASS  "))
        .count();
    assert!(
        stdout.contains(&format!(
            "\n{sent} request(s) sent: {sent} PASS, 0 DIFF, 0 FAIL\n"
        )),
        "{stdout}"
    );
    let bad = run("users=bad.csv").await.unwrap();
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL  user 0 on_start     POST /api/v2/auth/login/glasslab: HTTP 401: {\"error\":\"wrong username or password\"}"),
        "{stdout}"
    );
    server.shutdown().await;
}

/// `chorus demo --record`: the recorder in front of the provisioned app, a student's session
/// in Chromium through it, and on Ctrl-C the next commands naming the capture just written;
/// the printed `chorus convert` command works as printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chorus_demo_record_prints_the_next_commands_with_the_capture() {
    use util::record::{RecorderProcess, lines};
    let dir = util::output_dir("demo_record");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args(["demo", "--record", "--record-listen", "127.0.0.1:0"])
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = lines(child.stdout.take().unwrap());
    let _stderr = lines(child.stderr.take().unwrap());
    let printed = RecorderProcess::wait_for(&stdout, " through http://127.0.0.1:");
    let hint = printed
        .iter()
        .find_map(|line| line.split_once("as a student, e.g. "))
        .map(|(_, rest)| rest.split(", ").next().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no account suggested: {printed:#?}"));
    let (username, password) = hint.split_once(" / ").unwrap();
    let proxy = printed
        .last()
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .to_owned();

    let mut browser = Browser::start(&[], &dir).await;
    browser.play_as_student(&proxy, username, password, 2).await;
    browser.close().await;
    // The recorder prints a line per exchange once it is on disk.
    RecorderProcess::wait_for(&stdout, "/api/v2/data/session/end");
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let after = RecorderProcess::wait_for(&stdout, "--check");
    let convert = after
        .iter()
        .find_map(|line| line.trim().strip_prefix("chorus convert "))
        .unwrap_or_else(|| panic!("no convert command: {after:#?}"));
    assert!(!convert.contains('<'), "the capture is named: {convert}");
    let args: Vec<&str> = std::iter::once("convert")
        .chain(convert.split_whitespace())
        .collect();
    let output = util::chorus(&args, &dir);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let scenario = std::fs::read_to_string(dir.join("chorus-demo/my-scenario.yaml")).unwrap();
    assert!(scenario.contains("{{ user.password }}"), "{scenario}");
    assert!(scenario.contains("/api/v2/data/events"), "{scenario}");
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

/// Issue 19: the README's test command is the one that installs what a fresh machine lacks
/// and then tests (`cargo test` alone fails without Debian's packages), and CI runs it.
#[test]
fn the_readme_test_command_is_what_ci_runs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let first_block = readme
        .split("```")
        .nth(1)
        .expect("the README opens with a block of commands");
    let test_lines: Vec<&str> = first_block
        .lines()
        .filter(|line| line.contains("test"))
        .collect();
    assert_eq!(test_lines.len(), 1, "{first_block}");
    assert!(test_lines[0].starts_with("bash .ci/run "), "{first_block}");
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    let commands: Vec<&str> = ci
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("cargo "))
        .collect();
    assert_eq!(
        commands,
        [
            "cargo fmt --check",
            "cargo clippy --all-targets -- -D warnings",
            "cargo test"
        ]
    );
    assert!(
        ci.contains("for install in tests/apps/*/install.sh"),
        "{ci}"
    );
}
