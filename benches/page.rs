//! The live page with 500 request names and a 4-hour history, in headless Chromium: how long
//! the page takes to apply one pushed update, how big an update and a reload's first payload
//! are, how long a reload takes, and the page's JS heap. Targets: an update applied well
//! under a frame (16 ms), a reload under 1 s.
//!
//! The run is real: `Runs` (the page's controller) runs a scenario of 500 distinct GETs
//! against Debian's nginx (4 users, each GETting the 500 paths in turn then pausing 1 s, so
//! every row changes every second, the worst case for an update), and the page is the real
//! one served by `chorus::web::serve`, receiving the real server-sent events.
//!
//! Four hours of history without waiting four hours: the bench builds a
//! `chorus::stats::Aggregate` with the same 500 names and ticks it 14,400 times (one tick per
//! second of a 4-hour run ending now), so the stats module folds the series exactly as it
//! would in a run (the last hour per second, older points per minute); the web module turns
//! it into the `full` event a page gets on connecting (`chorus::web::page_payload`, the code
//! path of `GET /api/stream`'s first event). The page applies that event through its own
//! `applyUpdate`, as its event source would, and then keeps applying the real run's updates
//! on top of the 4-hour series.
//!
//! How time is measured in the page: `JSON.parse` of each event, the page's `applyUpdate`,
//! and the animation-frame callbacks it queues (table and charts) followed by a forced
//! layout, summed per update. A reload is timed in the page from navigation start until the
//! table shows the 500 rows; a reload after 4 hours adds the measured time to apply the
//! 4-hour `full` event to that.
//!
//! `cargo bench --bench page` (CHORUS_BENCH_SECS=10 seconds per phase by default).

#[path = "../tests/util/browser.rs"]
#[allow(dead_code, unreachable_pub)]
mod browser;
#[path = "../tests/util/nginx.rs"]
#[allow(dead_code, unreachable_pub)]
mod nginx;
#[path = "util/page_run.rs"]
mod page_run;
#[path = "util/page_timing.rs"]
mod page_timing;

use std::time::{Duration, Instant};

use chorus::engine::EngineOptions;
use chorus::stats::{Aggregate, RequestSample, Tally};
use serde_json::{Value, json};

const NAMES: usize = 500;
const USERS: u64 = 4;
const FOUR_HOURS: u64 = 4 * 3600;

fn main() {
    page_run::run_on_two_threads(bench(page_run::env_number("CHORUS_BENCH_SECS", 10)));
}

async fn bench(seconds: u64) {
    // Four hours of history, folded by the stats module, sent as the page's `full` event.
    let built = Instant::now();
    let payload = four_hour_payload();
    let build_secs = built.elapsed().as_secs_f64();

    let dir = tempfile::tempdir().expect("a temporary folder");
    let server = nginx::Nginx::start(&dir.path().join("nginx"), false, None);
    let urls: Vec<url::Url> = (0..NAMES)
        .map(|i| {
            server
                .url(&format!("/api/v2/catalog/items/{i:03}/details"))
                .parse()
                .expect("a URL")
        })
        .collect();
    let engine = EngineOptions {
        workers: 1,
        stop_timeout: Duration::from_secs(2),
        ..EngineOptions::default()
    };
    let (runs, page) = page_run::serve_gets(&urls, engine).await;
    let url = page.url();
    let http = reqwest::Client::new();
    page_run::start(&http, &url, USERS, USERS).await;

    // Every name measured once, so a page that connects gets 500 rows.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stats = page_run::get_json(&http, &url, "/api/stats").await;
        if stats["rows"].as_array().map_or(0, Vec::len) >= NAMES {
            break;
        }
        assert!(Instant::now() < deadline, "the run never reached 500 names");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let mut serve_ms = Vec::new();
    for _ in 0..3 {
        let asked = Instant::now();
        let body = http
            .get(format!("{url}/api/stats"))
            .send()
            .await
            .expect("stats")
            .bytes()
            .await
            .expect("stats body");
        assert!(!body.is_empty());
        serve_ms.push(asked.elapsed().as_secs_f64() * 1000.0);
    }
    let (full_bytes, update_bytes) = stream_sizes(&http, &url, 5).await;

    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("page-bench");
    let mut browser = browser::Browser::start(
        &[
            "--enable-precise-memory-info".to_owned(),
            "--js-flags=--expose-gc".to_owned(),
        ],
        &shots,
    )
    .await;

    // Reloads: navigation start -> the 500 rows in the table.
    let mut reloads = Vec::new();
    for _ in 0..3 {
        browser.goto(&format!("{url}/")).await;
        let ms = browser
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 (function check() {
                   if (document.querySelectorAll('#stats-body tr').length >= 500) done(performance.now());
                   else setTimeout(check, 1);
                 })();",
                vec![],
            )
            .await
            .expect("the table fills");
        reloads.push(ms.as_f64().unwrap_or(f64::NAN));
    }
    browser.screenshot("statistics").await;

    assert_eq!(browser.script(page_timing::INSTRUMENT).await, json!(true));
    let stats_tab = page_timing::collect(&browser, seconds).await;
    browser.click("#charts-tab").await;
    let charts_tab = page_timing::collect(&browser, seconds).await;
    browser.screenshot("charts").await;

    let points = serde_json::from_str::<Value>(&payload).expect("payload JSON")["history"]
        .as_array()
        .map_or(0, Vec::len);
    let applied = apply_full_event(&browser, &payload).await;
    let charts_long = page_timing::collect(&browser, seconds).await;
    let drawn = browser
        .script("return Number(document.getElementById('chart-rps').dataset.points || 0)")
        .await;
    browser.screenshot("charts-four-hours").await;
    // The same 4-hour event with the statistics tab shown (a reload's first paint).
    browser.click("button[data-tab=stats]").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let applied_stats = apply_full_event(&browser, &payload).await;
    let stats_long = page_timing::collect(&browser, seconds).await;
    browser.screenshot("statistics-four-hours").await;
    let heap = browser
        .script(
            "if (window.gc) window.gc();
             return performance.memory ? performance.memory.usedJSHeapSize : null",
        )
        .await
        .as_f64()
        .unwrap_or(f64::NAN);
    let rows = browser
        .script("return document.querySelectorAll('#stats-body tr').length")
        .await;

    browser.close().await;
    let _ = http.post(format!("{url}/api/stop")).send().await;
    let finished = tokio::time::timeout(Duration::from_secs(30), runs.wait_finished()).await;
    page.shutdown().await;
    drop(server);

    let reload = median(&mut reloads);
    println!(
        "the live page, {NAMES} request names, {USERS} users, headless Chromium, {seconds} s per phase"
    );
    println!(
        "update pushed each second      {:>9} bytes (median of {})",
        median_bytes(&update_bytes),
        update_bytes.len()
    );
    println!("full event on connect          {full_bytes:>9} bytes ({NAMES} rows, short history)");
    println!(
        "full event after 4 hours       {:>9} bytes ({points} history points; built in {build_secs:.1} s)",
        payload.len()
    );
    println!(
        "reload (navigation -> {NAMES} rows) {reload:>7.0} ms (median of 3; target < 1000 ms)"
    );
    println!(
        "server answers /api/stats      {:>9.1} ms (the same body as the full event; median of 3)",
        median(&mut serve_ms)
    );
    println!("4-hour full event applied      {applied:>9.1} ms (parse, apply, draw; charts tab)");
    println!(
        "4-hour full event applied      {applied_stats:>9.1} ms (parse, apply, draw; statistics tab)"
    );
    println!(
        "reload after 4 hours         ~ {:>9.0} ms (the two above; target < 1000 ms)",
        reload + applied.max(applied_stats)
    );
    page_timing::print_updates("update applied, statistics tab", stats_tab, 16.0);
    page_timing::print_updates("update applied, charts tab    ", charts_tab, 16.0);
    page_timing::print_updates("update applied, charts, 4 h   ", charts_long, 16.0);
    page_timing::print_updates("update applied, statistics, 4 h", stats_long, 16.0);
    println!("chart points drawn             {drawn:>9}");
    println!("table rows                     {rows:>9}");
    println!(
        "JS heap after 4 hours          {:>9.1} MB",
        heap / 1_048_576.0
    );
    if finished.is_err() {
        println!("(the run did not stop within 30 s)");
    }
    println!("screenshots in {}", shots.display());
}

/// Has the page apply `payload` as a `full` event, as its event source would; how long it
/// took (parse, apply, the frames it queued), in ms.
async fn apply_full_event(browser: &browser::Browser, payload: &str) -> f64 {
    browser.script("window.__bench.ms = []; return true").await;
    browser
        .client
        .execute(
            "applyUpdate(JSON.parse(arguments[0]), true); return true;",
            vec![Value::String(payload.to_owned())],
        )
        .await
        .expect("the page applies the 4-hour payload");
    tokio::time::sleep(Duration::from_millis(300)).await;
    browser
        .script("return window.__bench.ms[0]")
        .await
        .as_f64()
        .unwrap_or(f64::NAN)
}

/// Reads the event stream for `seconds`: the size of the first `full` event and of each
/// `update`.
async fn stream_sizes(http: &reqwest::Client, url: &str, seconds: u64) -> (usize, Vec<usize>) {
    let response = http
        .get(format!("{url}/api/stream"))
        .send()
        .await
        .expect("the stream answers");
    let mut response = response;
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, response.chunk()).await {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let mut full = 0;
    let mut updates = Vec::new();
    for event in text.split("\n\n") {
        let name = event
            .lines()
            .find_map(|l| l.strip_prefix("event:"))
            .map(str::trim);
        let data: usize = event
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(|d| d.trim_start().len())
            .sum();
        match name {
            Some("full") if full == 0 => full = data,
            Some("update") => updates.push(data),
            _ => {}
        }
    }
    (full, updates)
}

/// An aggregate of the same 500 names, ticked once a second for four hours ending now.
fn four_hour_payload() -> String {
    let names: Vec<String> = (0..NAMES)
        .map(|i| format!("/api/v2/catalog/items/{i:03}/details"))
        .collect();
    let mut aggregate = Aggregate::new();
    let mut tally = Tally::new();
    for (i, name) in names.iter().enumerate() {
        tally.record(&RequestSample {
            method: "GET",
            name,
            latency: Duration::from_micros(300 + i as u64),
            response_bytes: 3,
            failure: None,
        });
    }
    aggregate.absorb(tally.take());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for second in 0..FOUR_HOURS {
        // One name a second, a few requests with a latency that wanders, so every point has
        // its own rate and percentiles (one name: the aggregate's merge cost stays small).
        let name = &names[second as usize % NAMES];
        for k in 0..(20 + second % 30) {
            tally.record(&RequestSample {
                method: "GET",
                name,
                latency: Duration::from_micros(200 + (second * 37 + k * 101) % 5000),
                response_bytes: 3,
                failure: None,
            });
        }
        aggregate.absorb(tally.take());
        aggregate.tick(now - FOUR_HOURS + second, USERS as usize);
    }
    chorus::web::page_payload(&aggregate)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn median_bytes(values: &[usize]) -> usize {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied().unwrap_or(0)
}
