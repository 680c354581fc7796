//! Issue 15's System tab in real Chromium: the demo app in a process of its own, watched with
//! `process:<its pid>` and `host` while the page's run loads it. The app's CPU is read from
//! the page (the System tab's table and chart, through the DOM) at one user and again after
//! the page raised the users; the finished run's JSON result carries the same series, point
//! for point what the page then charts. A row of the statistics table opened shows where
//! that name's time went.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use chorus::engine::EngineOptions;
use chorus::monitor::Spec;
use chorus::scenario::Scenario;
use chorus::web::{self, Runs, WebConfig};
use serde_json::Value;

use super::until;
use crate::util::apps::{free_port, wait_for_http};
use crate::util::browser::Browser;
use crate::util::output_dir;
use crate::util::tools::Process;

/// The number at the start of a displayed value (`12.5 %`).
fn leading_number(text: &str) -> Option<f64> {
    text.split_whitespace()
        .next()?
        .replace(',', "")
        .parse()
        .ok()
}

/// The app's CPU as the System tab's table shows it now.
async fn shown_cpu(browser: &Browser, series: &str) -> Option<f64> {
    let script = format!(
        "const row = document.querySelector('#system-now tr[data-series=\"{series}\"]');
         return row ? row.children[1].textContent : null;"
    );
    leading_number(browser.script(&script).await.as_str()?)
}

async fn chart_points(browser: &Browser, series: &str) -> u64 {
    let script = format!(
        "const c = document.querySelector('canvas[data-series=\"{series}\"]');
         return c ? Number(c.dataset.points || 0) : 0;"
    );
    browser.script(&script).await.as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_system_tab_shows_the_app_s_cpu_rising_with_the_users_in_chromium() {
    let dir = output_dir("web_system_tab");
    let port = free_port();
    let mut app = Process::spawn(
        "chorus demo --serve-only",
        Command::new(env!("CARGO_BIN_EXE_chorus"))
            .args([
                "demo",
                "--serve-only",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .current_dir(&dir)
            .stdout(std::process::Stdio::null()),
    );
    wait_for_http(&mut app, port, "/", Duration::from_secs(30));
    let pid = app.child.id();
    let cpu = format!("process:{pid}.cpu");

    // Each user GETs the app's page with a 20 ms think: one user is a trickle (~40 requests/s), a hundred are not.
    let url = format!("http://127.0.0.1:{port}/").parse().unwrap();
    let scenario = Scenario::from_urls(&[url], Some(Duration::from_millis(20)));
    let engine = EngineOptions {
        workers: 1,
        stop_timeout: Duration::from_secs(2),
        monitors: vec![Spec::Pid(pid), Spec::Host],
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
    browser.fill("#start-users", "1").await;
    browser.fill("#start-spawn-rate", "1").await;
    browser.click("#start-button").await;
    browser.click("#system-tab").await;

    // One user: a few seconds of the app's CPU on the page, chart and table.
    until(
        "three seconds of the app's CPU charted",
        Duration::from_secs(30),
        async || (chart_points(&browser, &cpu).await >= 3).then_some(()),
    )
    .await;
    let mut calm = 0.0f64;
    for _ in 0..3 {
        let seen = chart_points(&browser, &cpu).await;
        until(
            "another second charted",
            Duration::from_secs(10),
            async || (chart_points(&browser, &cpu).await > seen).then_some(()),
        )
        .await;
        calm = calm.max(
            shown_cpu(&browser, &cpu)
                .await
                .expect("the app's CPU shown"),
        );
    }
    let header = browser
        .script(&format!(
            "const f = document.querySelector('#system-figures [data-series=\"{cpu}\"]');
             return f ? f.textContent : null;"
        ))
        .await;
    assert!(
        header.as_str().is_some_and(|t| t.contains('%')),
        "the header shows the app's CPU: {header}"
    );
    for series in ["host.cpu", "host.memory", "chorus.cpu"] {
        assert!(
            chart_points(&browser, series).await > 0,
            "{series} is charted"
        );
    }
    browser.screenshot("one-user").await;

    // A hundred users: the app's CPU on the page rises well above what one user cost.
    browser.click("#edit-button").await;
    browser.fill("#edit-users", "100").await;
    browser.fill("#edit-spawn-rate", "100").await;
    browser.click("#edit-submit").await;
    let busy = until(
        "the app's CPU to rise on the page",
        Duration::from_secs(40),
        async || {
            shown_cpu(&browser, &cpu)
                .await
                .filter(|now| *now > 2.0 * calm + 3.0)
        },
    )
    .await;
    browser.screenshot("hundred-users").await;

    // A row opened: where that name's time went.
    browser.click(".tabs button[data-tab='stats']").await;
    until("the table's row", Duration::from_secs(10), async || {
        let found = browser
            .script("return document.querySelector('#stats-body tr td.name') !== null")
            .await;
        (found == Value::Bool(true)).then_some(())
    })
    .await;
    browser.click("#stats-body tr td.name").await;
    let phases = until("the row's phases", Duration::from_secs(10), async || {
        let phases = browser
            .script(
                "return Array.from(document.querySelectorAll('tr.phase-detail tr[data-phase]'))
                   .map(r => [r.dataset.phase, Number(r.children[1].textContent.replace(/,/g, ''))]);",
            )
            .await;
        phases
            .as_array()
            .filter(|list| !list.is_empty())
            .cloned()
    })
    .await;
    let count = |phase: &str| {
        phases
            .iter()
            .find(|p| p[0] == phase)
            .and_then(|p| p[1].as_u64())
    };
    assert!(count("ttfb").is_some_and(|n| n > 0), "{phases:?}");
    assert!(count("download").is_some_and(|n| n > 0), "{phases:?}");
    // Users keep their connections: connects are counted, fewer than the requests.
    assert!(
        count("connect").is_some_and(|n| n >= 1 && n < count("ttfb").unwrap()),
        "{phases:?}"
    );
    browser.screenshot("row-opened").await;

    browser.click("#stop-button").await;
    browser
        .wait_text("#state", Duration::from_secs(30), |s| s == "stopped")
        .await;
    let result: Value = reqwest::get(format!("{}/api/report/result.json", page.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let series = |name: &str| -> Vec<(u64, f64)> {
        result["monitors"]["series"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| serde_json::from_value(s["points"].clone()).unwrap())
            .unwrap_or_else(|| panic!("no series {name} in {}", result["monitors"]))
    };
    let app_cpu = series(&cpu);
    let most = app_cpu.iter().map(|(_, v)| *v).fold(0.0, f64::max);
    assert!(
        most >= busy * 0.5 && most > 2.0 * calm + 3.0,
        "the result's app CPU peaks at {most} (the page showed {calm} then {busy})"
    );
    // The finished page charts the result's series, point for point.
    browser.click("#system-tab").await;
    for name in [cpu.as_str(), "host.cpu", "host.memory"] {
        let in_result = series(name).len() as u64;
        until(
            "the page to chart the result's points",
            Duration::from_secs(10),
            async || (chart_points(&browser, name).await == in_result).then_some(()),
        )
        .await;
    }
    browser.screenshot("stopped").await;
    browser.close().await;
    runs.wait_finished().await;
    page.shutdown().await;
    drop(app);
}
