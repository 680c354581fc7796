//! Captures made by other tools (mitmproxy, Playwright) of third-party servers convert and
//! replay: judged by what the servers saw.

use super::*;

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A student session as a small program would play it (the 2013 client's calls, with its
/// own cookie jar): log in, read the class and the configuration, play three periods.
async fn scripted_student_session(base: &str, username: &str, password: &str) {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let call = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut request = client.request(method, format!("{base}{path}"));
        let path = path.to_owned();
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let text = response.text().await.unwrap();
            assert!(status.is_success(), "{path}: {status} {text}");
            serde_json::from_str::<Value>(&text).unwrap_or(Value::Null)
        }
    };
    use reqwest::Method;
    let login = call(
        Method::POST,
        "/api/v2/auth/login/glasslab",
        Some(serde_json::json!({"username": username, "password": password})),
    )
    .await;
    let courses = call(Method::GET, "/api/v2/lms/courses", None).await;
    call(Method::GET, "/api/v2/data/config/AA-1", None).await;
    let start = call(
        Method::POST,
        "/api/v2/data/session/start",
        Some(serde_json::json!({
            "userSessionId": login["sessionId"], "courseId": courses[0]["id"],
            "deviceId": "dev-5k3j2h1g9f8d", "gameId": "AA-1",
        })),
    )
    .await;
    let period = Duration::from_secs(start["eventsPeriodSecs"].as_u64().unwrap());
    for step in 0..3 {
        // The client's own pace, as the game's: not a wait for a signal.
        tokio::time::sleep(period).await;
        call(
            Method::POST,
            "/api/v2/data/events",
            Some(serde_json::json!([{
                "gameSessionId": start["gameSessionId"], "name": "move", "data": {"step": step},
            }])),
        )
        .await;
    }
    call(
        Method::POST,
        "/api/v2/data/session/end",
        Some(serde_json::json!({"gameSessionId": start["gameSessionId"]})),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mitmproxy_capture_converts_and_replays_without_failures() {
    let mitmdump = tools::mitmdump();
    let out = output_dir("convert_mitmproxy");
    let (server, app) = demo_app(AppOptions {
        events_period_secs: 1,
        seed: Some(Seed {
            classes: 1,
            students: 2,
        }),
    })
    .await;
    let proxy = free_addr();
    let capture = out.join("mitmproxy.har");
    let mut mitm = Process::spawn(
        "mitmdump",
        Command::new(&mitmdump)
            .args([
                "--mode",
                &format!("reverse:{}", server.url()),
                "--listen-host",
                "127.0.0.1",
                "--listen-port",
                &proxy.port().to_string(),
                "--set",
                &format!("hardump={}", capture.display()),
                "--set",
                &format!("confdir={}", out.join("mitmproxy-conf").display()),
                "-q",
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(out.join("mitmdump.log")).unwrap()),
    );
    tools::wait_for_listener(&mut mitm, proxy);
    let (username, password, _) = app.seeded_users()[0].clone();
    scripted_student_session(&format!("http://{proxy}"), &username, &password).await;
    let status = tokio::task::spawn_blocking(move || mitm.interrupt_and_wait())
        .await
        .unwrap();
    assert!(
        capture.exists(),
        "mitmdump ({status}) wrote no HAR; its log: {}",
        std::fs::read_to_string(out.join("mitmdump.log")).unwrap_or_default()
    );
    server.shutdown().await;

    let har = read_har(&capture);
    assert_eq!(har.log.creator.name, "mitmproxy");
    let scenario_path = out.join("scenario.yaml");
    let yaml = convert_with_binary(&capture, &scenario_path, &[]);
    for expected in [
        "{{ user.password }}",
        "gameSessionId: \"{{ gameSessionId }}\"",
        "- repeat: 3",
        "- think: \"{{ eventsPeriodSecs }}\"",
    ] {
        assert!(yaml.contains(expected), "no {expected:?} in:\n{yaml}");
    }

    let users = 10;
    let (server, csv) = replay_target(1, 2, 6, &out).await;
    let scenario = load(&scenario_path, Some(&csv), &server.url());
    let result = run_engine(scenario, users, 6).await;
    assert_no_failures(&result, &scenario_path);
    let stats = crate::util::demo_stats(&server.url()).await;
    assert_distinct_students(&stats, users as usize);
    assert_paced(&stats, 1000, users as usize);
    server.shutdown().await;
}

/// The Playwright program: Chromium with `recordHar` creates a post through the page's
/// `fetch`, reads it back by the id json-server returned, and deletes it.
const PLAYWRIGHT_SESSION: &str = r#"
const { chromium } = require(process.env.PLAYWRIGHT);
(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM,
    args: JSON.parse(process.env.CHROMIUM_FLAGS),
  });
  const context = await browser.newContext({ recordHar: { path: process.env.HAR, content: "embed" } });
  const page = await context.newPage();
  await page.goto(process.env.BASE + "/posts");
  const created = await page.evaluate(async () => {
    const response = await fetch("/posts", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ title: "written by a browser", author: "playwright" }),
    });
    return response.json();
  });
  await page.waitForTimeout(600);
  const read = await page.evaluate(async (id) => (await fetch("/posts/" + id)).json(), created.id);
  if (read.id !== created.id) throw new Error("read back " + JSON.stringify(read));
  await page.waitForTimeout(600);
  const deleted = await page.evaluate(async (id) => (await fetch("/posts/" + id, { method: "DELETE" })).status, created.id);
  if (deleted !== 200) throw new Error("delete answered " + deleted);
  await context.close();
  await browser.close();
  console.log(JSON.stringify(created));
})().catch((err) => { console.error(err); process.exit(1); });
"#;

/// `(method, path, status)` of each request json-server logged (its `dev` log format).
fn json_server_log(text: &str) -> Vec<(String, String, u16)> {
    let ansi = regex::Regex::new(r"\x1b\[[0-9;]*m").unwrap();
    let line = regex::Regex::new(r"^(GET|POST|PUT|PATCH|DELETE) (\S+) (\d{3}) ").unwrap();
    ansi.replace_all(text, "")
        .lines()
        .filter_map(|l| {
            let captures = line.captures(l.trim())?;
            Some((
                captures[1].to_owned(),
                captures[2].to_owned(),
                captures[3].parse().ok()?,
            ))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_playwright_capture_of_json_server_replays_with_the_ids_of_the_replay() {
    let node_tools = tools::node_tools();
    let out = output_dir("convert_playwright_json_server");
    let db = out.join("db.json");
    std::fs::write(
        &db,
        r#"{"posts": [{"id": 1, "title": "seed", "author": "test"}]}"#,
    )
    .unwrap();
    let addr = free_addr();
    let log_path = out.join("json-server.log");
    let mut json_server = Process::spawn(
        "json-server",
        Command::new(node_tools.join("node_modules/.bin/json-server"))
            .args(["db.json", "--host", "127.0.0.1", "--port"])
            .arg(addr.port().to_string())
            .current_dir(&out)
            .stdout(std::fs::File::create(&log_path).unwrap())
            .stderr(Stdio::inherit()),
    );
    tools::wait_for_listener(&mut json_server, addr);
    let base = format!("http://{addr}");

    let capture = out.join("playwright.har");
    let script = out.join("session.js");
    std::fs::write(&script, PLAYWRIGHT_SESSION).unwrap();
    let output = Command::new("node")
        .arg(&script)
        .env(
            "PLAYWRIGHT",
            node_tools.join("node_modules/playwright-core"),
        )
        .env(
            "CHROMIUM",
            std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned()),
        )
        .env(
            "CHROMIUM_FLAGS",
            serde_json::to_string(&CHROMIUM_FLAGS).unwrap(),
        )
        .env("HAR", &capture)
        .env("BASE", &base)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the Playwright session failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let recorded: Value = serde_json::from_slice(&output.stdout).unwrap();
    let recorded_id = recorded["id"].as_u64().unwrap();

    let har = read_har(&capture);
    assert_eq!(har.log.creator.name, "Playwright");
    let scenario_path = out.join("scenario.yaml");
    let yaml = convert_with_binary(&capture, &scenario_path, &[]);
    assert!(
        !yaml.contains(&format!("/posts/{recorded_id}")),
        "the recorded id is written as it was:\n{yaml}"
    );

    // Ids of the replay start far from the recorded one, so a replay that sent the recorded
    // id would read and delete nothing.
    let logged = || json_server_log(&std::fs::read_to_string(&log_path).unwrap());
    let until_marker = logged().len() + 1;
    reqwest::Client::new()
        .post(format!("{base}/posts"))
        .json(&serde_json::json!({"id": 100, "title": "marker"}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    // json-server logs a request once its answer is sent: wait for the marker's line.
    let deadline = Instant::now() + Duration::from_secs(10);
    while logged().len() < until_marker {
        assert!(
            Instant::now() < deadline,
            "json-server never logged the marker"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = until_marker;
    let scenario = load(&scenario_path, None, &base);
    let result = run_engine(scenario, 5, 3).await;
    assert_no_failures(&result, &scenario_path);

    let deadline = Instant::now() + Duration::from_secs(10);
    while ((logged().len() - before) as u64) < result.total.requests {
        assert!(
            Instant::now() < deadline,
            "json-server logged {} of the replay's {} requests",
            logged().len() - before,
            result.total.requests
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // json-server's posts, as it answers for them (its file is written after it answers, so
    // a DELETE already logged could still be in it): the seed, the marker, and those whose
    // iteration the end of the run cut short. A POST cut by the end of the run may be stored
    // and logged after the run's requests were: wait until the log has every stored post.
    let posts: Value = reqwest::get(format!("{base}/posts"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let left: BTreeSet<u64> = posts
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    let creates_logged = |log: &[(String, String, u16)]| {
        log[before..]
            .iter()
            .filter(|(m, path, status)| m == "POST" && path == "/posts" && *status == 201)
            .count() as u64
    };
    let highest = left.iter().copied().max().unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while 100 + creates_logged(&logged()) < highest {
        assert!(
            Instant::now() < deadline,
            "json-server stored post {highest} but logged {} creations",
            creates_logged(&logged())
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = logged();
    let replay = &log[before..];
    let ids = |method: &str| -> Vec<u64> {
        replay
            .iter()
            .filter(|(m, path, _)| m == method && path.starts_with("/posts/"))
            .map(|(_, path, _)| path["/posts/".len()..].parse().unwrap())
            .collect()
    };
    let (read, deleted) = (ids("GET"), ids("DELETE"));
    let created = replay
        .iter()
        .filter(|(m, path, status)| m == "POST" && path == "/posts" && *status == 201)
        .count();
    assert!(
        created >= 5,
        "the replay created {created} posts: {replay:?}"
    );
    // json-server numbers posts after the highest id: the replay's are 101, 102, ...
    let created: BTreeSet<u64> = (101..=100 + created as u64).collect();
    let deleted_set: BTreeSet<u64> = deleted.iter().copied().collect();
    assert_eq!(
        deleted_set.len(),
        deleted.len(),
        "a post deleted twice: {deleted:?}"
    );
    assert!(
        deleted.len() >= 5 && deleted_set.is_subset(&created),
        "deleted {deleted:?} of the created {created:?}"
    );
    // Each post was read back before it was deleted (the run may stop between the two).
    let read_set: BTreeSet<u64> = read.iter().copied().collect();
    assert!(
        deleted_set.is_subset(&read_set),
        "read {read:?}, deleted {deleted:?}"
    );
    assert!(read_set.is_subset(&created), "read {read:?} of {created:?}");
    let mut expected: BTreeSet<u64> = created.difference(&deleted_set).copied().collect();
    expected.extend([1, 100]);
    assert_eq!(left, expected);
}
