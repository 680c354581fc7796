//! The live page during a large run (issue 18: "the page stays responsive, an update applied
//! in under 50 ms in Chromium"): 10,000 users spawned at 2,000/s against Debian's nginx (two
//! workers, `reuseport`), each GETting 100 names in turn then thinking 1 s (about 70,000
//! requests a second on two cores: every row changes every second), with `--monitor
//! process:nginx` and `--monitor host` charted on the System tab. The page is the real one
//! served by `chorus::web::serve` for a real `Runs`, receiving the real server-sent events.
//!
//! Prints how long the page takes to apply one update (`benches/util/page_timing.rs`: parse,
//! `applyUpdate`, the frames it queues, layout) while the users spawn and once they all run,
//! on the Statistics and on the System tab; the requests/s the run delivered; and how long
//! the page server takes to answer `GET /api/stats` (rendered from the pages' own copy of the
//! run, not from the engine). `cargo bench --bench page_users` (CHORUS_BENCH_SECS=10 seconds
//! per phase; CHORUS_BENCH_USERS=10000).

#[path = "../tests/util/browser.rs"]
#[allow(dead_code, unreachable_pub)]
mod browser;
#[path = "../tests/util/nginx.rs"]
#[allow(dead_code, unreachable_pub)]
mod nginx;
#[path = "util/page_timing.rs"]
mod page_timing;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chorus::engine::EngineOptions;
use chorus::monitor::Spec;
use chorus::scenario::Scenario;
use chorus::web::{self, Runs, WebConfig};
use serde_json::{Value, json};

const NAMES: usize = 100;
const SPAWN_RATE: u64 = 2000;
/// The bound on one update applied in Chromium.
const TARGET_MS: f64 = 50.0;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    chorus::engine::limits::raise_open_files_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(bench(
        env_number("CHORUS_BENCH_SECS", 10),
        env_number("CHORUS_BENCH_USERS", 10_000),
    ));
}

async fn bench(seconds: u64, users: u64) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let server = nginx::Nginx::start_scaled(&dir.path().join("nginx"), 2);
    let urls: Vec<url::Url> = (0..NAMES)
        .map(|i| {
            server
                .url(&format!("/api/v2/catalog/items/{i:03}"))
                .parse()
                .expect("a URL")
        })
        .collect();
    let scenario = Scenario::from_urls(&urls, Some(Duration::from_secs(1)));
    let engine = EngineOptions {
        stop_timeout: Duration::from_secs(2),
        monitors: vec![Spec::Name("nginx".to_owned()), Spec::Host],
        ..EngineOptions::default()
    };
    let runs = Runs::new(Arc::new(scenario), engine);
    let page = web::serve(
        WebConfig::new("127.0.0.1:0".parse().expect("an address")),
        runs.clone(),
    )
    .await
    .expect("the page serves");
    let url = page.url();
    let http = reqwest::Client::new();

    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("page-users-bench");
    let mut browser = browser::Browser::start(&[], &shots).await;
    browser.goto(&format!("{url}/")).await;
    browser
        .wait_text("#state", Duration::from_secs(10), |s| s == "ready")
        .await;
    assert_eq!(browser.script(page_timing::INSTRUMENT).await, json!(true));
    let started = http
        .post(format!("{url}/api/start"))
        .json(&json!({ "users": users, "spawn_rate": SPAWN_RATE, "run_time": "10m" }))
        .send()
        .await
        .expect("the page answers");
    assert!(
        started.status().is_success(),
        "start refused: {:?}",
        started.text().await
    );

    // While the users spawn (users / 2,000 seconds), then once they all run.
    let spawn_secs = users.div_ceil(SPAWN_RATE).max(1);
    let spawning = page_timing::collect(&browser, spawn_secs).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while browser.text("#state").await != "running" {
        assert!(Instant::now() < deadline, "the users never all ran");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let running = page_timing::collect(&browser, seconds).await;
    browser.screenshot("statistics").await;
    browser.click("#system-tab").await;
    let system = page_timing::collect(&browser, seconds).await;
    browser.screenshot("system").await;

    let mut serve_ms = Vec::new();
    let mut rps = 0.0;
    for _ in 0..5 {
        let asked = Instant::now();
        let stats: Value = http
            .get(format!("{url}/api/stats"))
            .send()
            .await
            .expect("stats")
            .json()
            .await
            .expect("stats JSON");
        serve_ms.push(asked.elapsed().as_secs_f64() * 1000.0);
        rps = stats["aggregated"]["current_rps"].as_f64().unwrap_or(0.0);
    }
    let shown_users = browser.text("#users").await;
    browser.close().await;
    let _ = http.post(format!("{url}/api/stop")).send().await;
    let finished = tokio::time::timeout(Duration::from_secs(60), runs.wait_finished()).await;
    page.shutdown().await;
    drop(server);

    serve_ms.sort_by(f64::total_cmp);
    println!(
        "the live page during a run of {users} users ({NAMES} names in turn, then think 1 s; spawned at {SPAWN_RATE}/s) against nginx, headless Chromium, {seconds} s per phase"
    );
    println!("users shown on the page        {shown_users:>9}");
    println!("requests/s (the page's total)  {rps:>9.0}");
    println!(
        "server answers /api/stats      {:>9.1} ms (median of 5; from the pages' copy, not the engine)",
        serve_ms[serve_ms.len() / 2]
    );
    page_timing::print_updates("update applied, while spawning   ", spawning, TARGET_MS);
    page_timing::print_updates("update applied, statistics tab   ", running, TARGET_MS);
    page_timing::print_updates("update applied, system tab       ", system, TARGET_MS);
    if finished.is_err() {
        println!("(the run did not stop within 60 s)");
    }
    println!("screenshots in {}", shots.display());
}
