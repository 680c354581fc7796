//! Issue 18's capacity search started from the page's start form in real Chromium, against
//! the demo app's `GET /api/v2/capacity` limited to 20 requests at once served in 100 ms each
//! (so theory says 200 a second at most): the curve is drawn while the search runs, and at
//! its end the page shows every step and the rate found, which is the JSON result's, and no
//! more than theory allows; the app served exactly the requests the run counted.

use std::sync::Arc;
use std::time::Duration;

use chorus::demo::AppOptions;
use chorus::engine::EngineOptions;
use chorus::scenario::Scenario;
use chorus::stats::RunResult;
use chorus::web::{self, Runs, WebConfig};
use serde_json::Value;

use super::until;
use crate::util::browser::Browser;
use crate::util::{demo_app, demo_stats, output_dir};

const CONCURRENT: usize = 20;
const SERVICE: Duration = Duration::from_millis(100);

async fn count(browser: &Browser, js: &str) -> u64 {
    browser.script(js).await.as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capacity_search_is_started_and_drawn_on_the_page_in_chromium() {
    let dir = output_dir("web_capacity");
    let (server, app) = demo_app(AppOptions::default()).await;
    app.limit_capacity(CONCURRENT, SERVICE);
    let url = format!("{}/api/v2/capacity", server.url()).parse().unwrap();
    let scenario = Scenario::from_urls(&[url], None);
    let engine = EngineOptions {
        stop_timeout: Duration::from_secs(2),
        ..EngineOptions::default()
    };
    let runs = Runs::new(Arc::new(scenario), engine);
    let page = web::serve(WebConfig::new("127.0.0.1:0".parse().unwrap()), runs.clone())
        .await
        .unwrap();
    let mut browser = Browser::start(&[], &dir).await;
    browser.goto(&format!("{}/", page.url())).await;
    browser
        .wait_text("#state", Duration::from_secs(10), |s| s == "ready")
        .await;
    browser.click("#model-capacity").await;
    browser.fill("#start-arrival-rate", "100").await;
    browser.fill("#start-max-users", "2000").await;
    browser
        .fill("#start-conditions", "p95<150ms, failures<1%")
        .await;
    browser.fill("#start-step-time", "3s").await;
    // A bound, not the expected length: the search ends by itself well before.
    browser.fill("#start-run-time", "150s").await;
    browser.screenshot("form").await;
    browser.click("#start-button").await;
    browser.click("#capacity-tab").await;

    // The curve is drawn while the search runs.
    let steps_shown = "return document.querySelectorAll('#capacity-body tr').length";
    let drawn = "return Number(document.getElementById('capacity-latency').dataset.points || 0)";
    until(
        "a step drawn while searching",
        Duration::from_secs(60),
        async || {
            let state = browser.text("#state").await;
            let running = state == "running" || state == "spawning";
            assert!(
                running || state == "stopping",
                "the search ended early: {state}"
            );
            (running
                && count(&browser, steps_shown).await >= 2
                && count(&browser, drawn).await >= 6)
                .then_some(())
        },
    )
    .await;
    browser.screenshot("searching").await;

    browser
        .wait_text("#state", Duration::from_secs(170), |s| s == "stopped")
        .await;
    browser.screenshot("found").await;
    let result: Value = reqwest::get(format!("{}/api/report/result.json", page.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let result = RunResult::from_json(&result.to_string()).unwrap();
    let capacity = result.capacity.as_ref().expect("a capacity in the result");
    let found = capacity.per_second.expect("a rate that held");
    // No rate above what the app can serve holds (tests/capacity.rs judges the search's
    // precision on a quiet run; this one may share the machine with other page tests).
    let theory = CONCURRENT as f64 / SERVICE.as_secs_f64();
    assert!(
        found <= theory * 1.10,
        "found {found}/s, theory says at most {theory}/s: {capacity:?}"
    );
    // The page shows every step of the result, and the rate found.
    assert_eq!(
        count(&browser, steps_shown).await,
        capacity.steps.len() as u64
    );
    let summary = browser.text("#capacity-summary").await;
    let shown = chorus::stats::capacity::show_rate(found);
    assert!(
        summary.contains(&format!("{shown} iterations/s")),
        "{summary}"
    );
    // What the app served: every request the run counted, and nothing else.
    let stats = demo_stats(&server.url()).await;
    assert_eq!(stats["requests_total"], result.total.requests);
    browser.close().await;
    assert!(runs.wait_finished().await, "a rate held: the run passed");
    page.shutdown().await;
    server.shutdown().await;
}
