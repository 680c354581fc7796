//! The live page in real Chromium: start a run of the demo scenario, watch it, steer it, stop
//! it, download its reports; and the API's refusals, on the page and as JSON.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chorus::demo::{AppOptions, Seed};
use chorus::engine::EngineOptions;
use chorus::scenario::{self, LoadOptions};
use chorus::web::{self, Runs, WebConfig};
use serde_json::{Value, json};

use crate::util::page_driver::PageDriver;
use crate::util::{self, browser::Browser, firefox::Firefox};

mod capacity;
mod dashboard;
mod guard;
mod metrics;
mod prometheus;
mod system;

struct Setup {
    demo: chorus::demo::Server,
    page: web::WebServer,
    runs: Arc<Runs>,
    _dir: tempfile::TempDir,
}

/// The demo app with 60 students, the demo scenario bound to them, and the page serving it.
async fn setup() -> Setup {
    let (demo, app) = util::demo_app(AppOptions {
        events_period_secs: 1,
        seed: Some(Seed {
            classes: 6,
            students: 10,
        }),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.csv");
    app.write_users_csv(&users).unwrap();
    let options = LoadOptions {
        data_overrides: vec![("users".to_owned(), users)],
        host_override: Some(demo.url()),
        ..Default::default()
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/scenario.yaml");
    let scenario = scenario::load(&path, &options).unwrap_or_else(|err| panic!("{err}"));
    let engine = EngineOptions {
        workers: 1,
        stop_timeout: Duration::from_secs(2),
        ..EngineOptions::default()
    };
    let runs = Runs::new(Arc::new(scenario), engine);
    let page = web::serve(WebConfig::new("127.0.0.1:0".parse().unwrap()), runs.clone())
        .await
        .unwrap();
    Setup {
        demo,
        page,
        runs,
        _dir: dir,
    }
}

/// Waits until `read` returns something, polling the page's own state (the signal we have).
async fn until<T>(what: &str, timeout: Duration, mut read: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = read().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn cell_number(driver: &mut impl PageDriver, name: &str, column: usize) -> Option<u64> {
    let script = format!(
        "const row = Array.from(document.querySelectorAll('#stats-body tr')).find(r => r.children[1].textContent === {name:?});
         return row ? row.children[{column}].textContent : null;"
    );
    let text = driver.script(&script).await;
    text.as_str().and_then(|t| t.replace(',', "").parse().ok())
}

/// The page's life as a user has it, in any browser: the form shows the target, a start,
/// the demo scenario's rows appear and their counts rise, a change of users is followed by
/// the figure and the logins, the charts are drawn (painted pixels, not a blank canvas),
/// and a stop ends the run.
async fn start_watch_steer_and_stop(driver: &mut impl PageDriver, url: &str, demo_url: &str) {
    driver.goto(&format!("{url}/")).await;
    driver
        .wait_text("#state", Duration::from_secs(10), |s| s == "ready")
        .await;
    assert_eq!(
        driver
            .script("return document.getElementById('start-host').value")
            .await,
        json!(demo_url)
    );
    driver.screenshot("ready").await;

    driver.fill("#start-users", "10").await;
    driver.fill("#start-spawn-rate", "10").await;
    driver.click("#start-button").await;
    driver
        .wait_text("#state", Duration::from_secs(10), |s| {
            s == "spawning" || s == "running"
        })
        .await;

    // The demo scenario's request names appear with counts that rise.
    let login = "/api/v2/auth/login/glasslab";
    let courses = "/api/v2/lms/courses";
    until("the login row", Duration::from_secs(20), async || {
        cell_number(driver, login, 2).await.filter(|n| *n > 0)
    })
    .await;
    until("the courses row", Duration::from_secs(20), async || {
        cell_number(driver, courses, 2).await.filter(|n| *n > 0)
    })
    .await;
    let total = "return document.querySelector('#stats-total td:nth-child(3)').textContent";
    let count = |text: Value| {
        text.as_str()
            .and_then(|t| t.replace(',', "").parse::<u64>().ok())
    };
    let before = until("an aggregated count", Duration::from_secs(10), async || {
        count(driver.script(total).await)
    })
    .await;
    until(
        "the aggregated count to rise",
        Duration::from_secs(30),
        async || count(driver.script(total).await).filter(|n| *n > before),
    )
    .await;
    driver.screenshot("running").await;

    // Change the user count and see the figure follow; each of the 20 users logs in once.
    driver.click("#edit-button").await;
    driver.fill("#edit-users", "20").await;
    driver.click("#edit-submit").await;
    driver
        .wait_text("#users", Duration::from_secs(20), |s| s.trim() == "20")
        .await;
    until("20 logins", Duration::from_secs(20), async || {
        cell_number(driver, login, 2).await.filter(|n| *n == 20)
    })
    .await;
    driver.screenshot("twenty-users").await;

    driver.click("#charts-tab").await;
    until("charts with points", Duration::from_secs(20), async || {
        let points = driver
            .script("return Number(document.getElementById('chart-rps').dataset.points || 0)")
            .await;
        points.as_u64().filter(|n| *n >= 3)
    })
    .await;
    let painted = driver
        .script(
            "const c = document.getElementById('chart-rps');
             const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
             let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
             return n;",
        )
        .await;
    assert!(
        painted.as_u64().unwrap_or(0) > 500,
        "the requests/s chart has {painted} painted pixels"
    );
    driver.screenshot("charts").await;

    driver.click("#stop-button").await;
    driver
        .wait_text("#state", Duration::from_secs(30), |s| s == "stopped")
        .await;
    driver.screenshot("stopped").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_started_watched_steered_stopped_and_downloaded_in_chromium() {
    let setup = setup().await;
    let url = setup.page.url();
    let mut browser = Browser::start(&[], &util::output_dir("web_page_run")).await;
    start_watch_steer_and_stop(&mut browser, &url, &setup.demo.url()).await;

    // Download the stats CSV and check it against the JSON result.
    let csv_href = browser
        .script("return document.getElementById('dl-stats').href")
        .await;
    let csv = reqwest::get(csv_href.as_str().unwrap())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let result: Value = reqwest::get(format!("{url}/api/report/result.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let name_at = header.iter().position(|h| *h == "Name").unwrap();
    let count_at = header.iter().position(|h| *h == "Request Count").unwrap();
    let entries = result["entries"].as_array().unwrap();
    let mut checked = 0;
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        if fields[name_at] == "Aggregated" {
            assert_eq!(
                fields[count_at].parse::<u64>().unwrap(),
                result["total"]["requests"].as_u64().unwrap()
            );
            continue;
        }
        let entry = entries
            .iter()
            .find(|e| e["name"] == fields[name_at])
            .unwrap_or_else(|| panic!("{} not in the JSON", fields[name_at]));
        assert_eq!(
            fields[count_at].parse::<u64>().unwrap(),
            entry["requests"].as_u64().unwrap(),
            "{}",
            fields[name_at]
        );
        checked += 1;
    }
    assert!(checked >= 4, "the CSV had {checked} request rows:\n{csv}");
    browser.close().await;
    assert!(
        setup.runs.wait_finished().await,
        "the run passed its thresholds"
    );
    setup.page.shutdown().await;
    setup.demo.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_message_on_the_page_and_400_from_the_api() {
    let setup = setup().await;
    let url = setup.page.url();
    let mut browser = Browser::start(&[], &util::output_dir("web_page_bad_input")).await;
    browser.goto(&format!("{url}/")).await;
    browser
        .wait_text("#state", Duration::from_secs(10), |s| s == "ready")
        .await;
    let cases = [
        ("0", "2", "users must be at least 1, got 0"),
        ("-5", "2", "users must be at least 1, got -5"),
        ("ten", "2", "users must be a whole number, got \"ten\""),
        (
            "5",
            "0",
            "spawn_rate must be from 1/d to 10000000/s, found 0",
        ),
        (
            "5",
            "fast",
            "spawn_rate: expected a rate such as 10/s, 600/m or 36000/h (a bare number is per second), found \"fast\"",
        ),
    ];
    for (users, rate, message) in cases {
        browser.fill("#start-users", users).await;
        browser.fill("#start-spawn-rate", rate).await;
        browser.click("#start-button").await;
        browser
            .wait_text("#start-error", Duration::from_secs(5), |s| s == message)
            .await;
    }
    browser.screenshot("refused").await;
    assert_eq!(browser.text("#state").await, "ready", "nothing started");

    let http = reqwest::Client::new();
    let refused = http
        .post(format!("{url}/api/start"))
        .json(&json!({"users": 0, "spawn_rate": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "users must be at least 1, got 0");

    // A second start while running: 409 from the API, and the page says so too.
    let started = http
        .post(format!("{url}/api/start"))
        .json(&json!({"users": 2, "spawn_rate": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 200);
    let again = http
        .post(format!("{url}/api/start"))
        .json(&json!({"users": 2, "spawn_rate": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    browser
        .wait_text("#state", Duration::from_secs(10), |s| {
            s == "spawning" || s == "running"
        })
        .await;
    // As a second tab that still shows the form would: the page hides the form at each look
    // while a run goes, so the form is shown, filled and sent in one turn of the page's loop,
    // and the message is read where the page wrote it, shown or not.
    browser
        .script(
            "document.getElementById('start-panel').hidden = false; \
             document.getElementById('start-users').value = '3'; \
             document.getElementById('start-spawn-rate').value = '1'; \
             document.getElementById('start-button').click(); return null",
        )
        .await;
    browser
        .wait_text_content("#start-error", Duration::from_secs(10), |s| {
            s.starts_with("a run is already going")
        })
        .await;
    browser.screenshot("second-start").await;
    let stop = http.post(format!("{url}/api/stop")).send().await.unwrap();
    assert_eq!(stop.status(), 200);
    browser.close().await;
    setup.runs.wait_finished().await;
    setup.page.shutdown().await;
    setup.demo.shutdown().await;
}

/// The README's first command with the page: `chorus demo` serves it with the run going.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chorus_demo_serves_the_page_with_the_run_going() {
    let dir = util::output_dir("web_chorus_demo");
    let port = util::nginx::free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args(["demo", "--web-port", &port.to_string(), "-t", "2m"])
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = util::record::lines(child.stdout.take().unwrap());
    let _stderr = util::record::lines(child.stderr.take().unwrap());
    let printed = util::record::RecorderProcess::wait_for(&stdout, "the page is on");
    let url = format!("http://127.0.0.1:{port}");
    assert!(printed.last().unwrap().contains(&url), "{printed:#?}");

    let mut browser = Browser::start(&[], &dir).await;
    browser.goto(&format!("{url}/")).await;
    browser
        .wait_text("#state", Duration::from_secs(20), |s| {
            s == "spawning" || s == "running"
        })
        .await;
    // The converted sample capture's requests, counted as the run goes.
    let events = "/api/v2/data/events";
    let first = until("event posts", Duration::from_secs(30), async || {
        cell_number(&mut browser, events, 2)
            .await
            .filter(|n| *n > 0)
    })
    .await;
    until("more event posts", Duration::from_secs(30), async || {
        cell_number(&mut browser, events, 2)
            .await
            .filter(|n| *n > first)
    })
    .await;
    browser
        .wait_text("#users", Duration::from_secs(30), |s| s.trim() == "50")
        .await;
    browser.screenshot("demo-running").await;
    browser.close().await;

    // Ctrl-C: the run stops gracefully and the demo exits cleanly.
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        assert!(Instant::now() < deadline, "chorus demo did not stop");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(code, Some(0));
}

/// The same page in Firefox (Debian's firefox-esr over Marionette).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_started_watched_steered_and_stopped_in_firefox() {
    let setup = setup().await;
    let url = setup.page.url();
    let mut firefox = Firefox::start(&util::output_dir("web_page_run_firefox")).await;
    start_watch_steer_and_stop(&mut firefox, &url, &setup.demo.url()).await;
    firefox.close().await;
    assert!(
        setup.runs.wait_finished().await,
        "the run passed its thresholds"
    );
    setup.page.shutdown().await;
    setup.demo.shutdown().await;
}
