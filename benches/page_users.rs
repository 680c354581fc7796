//! The live page during a large run (issue 18: "spawning 100,000 users at 2,000/s keeps to the
//! rate; the page stays responsive, an update applied in under 50 ms in Chromium"): users
//! spawned at 2,000/s against Debian's nginx (`reuseport`), with `--monitor process:nginx` and
//! `--monitor host` charted on the System tab, the page in a real headless Chromium receiving
//! the real server-sent events, the run started from the page's API as its Start button does.
//!
//! Two sizes, two ways a user would run them:
//! - up to 15,000 users (one process's open files: 20,000 here), in this process: the page
//!   served by `chorus::web::serve` for a real `Runs`; each user GETs 100 names in turn then
//!   thinks 1 s (about 70,000 requests a second on two cores: every row changes every second);
//! - more (`CHORUS_BENCH_USERS=100000`), through the binary as a user runs them: `chorus run
//!   --processes auto`, the master's page; each user picks one of 100 flows (one name each)
//!   then thinks 10 s (the 2013 scenario's pacing; about 10,000 requests a second).
//!
//! Prints the spawn rate the page's own user count shows (users reached over the ramp, against
//! the asked 2,000/s); how long the page takes to apply one update
//! (`benches/util/page_timing.rs`: parse, `applyUpdate`, the frames it queues, layout) while
//! the users spawn and once they all run, on the Statistics and on the System tab; the
//! requests/s the run delivered; and how long the page server takes to answer
//! `GET /api/stats`. `cargo bench --bench page_users` (CHORUS_BENCH_SECS=10 seconds per phase;
//! CHORUS_BENCH_USERS=10000).

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

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chorus::engine::EngineOptions;
use chorus::monitor::Spec;
use chorus::web::{Runs, WebServer};
use page_run::{env_number, get_json};
use serde_json::json;

const NAMES: usize = 100;
const SPAWN_RATE: u64 = 2000;
/// The issue's bound on one update applied in Chromium.
const TARGET_MS: f64 = 50.0;
/// The most users this bench runs in its own process (the machine's 20,000 open files per
/// process, with room for the page, the monitors and reconnections).
const ONE_PROCESS_MAX: u64 = 15_000;

fn main() {
    chorus::engine::limits::raise_open_files_limit();
    page_run::run_on_two_threads(bench(
        env_number("CHORUS_BENCH_SECS", 10),
        env_number("CHORUS_BENCH_USERS", 10_000),
    ));
}

/// Where the page comes from: this process's engine, or a `chorus run --processes` master.
enum Served {
    Here { runs: Arc<Runs>, page: WebServer },
    Processes { master: Master, url: String },
}

/// The `chorus run --processes` master, killed if the bench ends before it does.
struct Master(Child);

impl Drop for Master {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl Served {
    fn url(&self) -> String {
        match self {
            Served::Here { page, .. } => page.url(),
            Served::Processes { url, .. } => url.clone(),
        }
    }

    /// Waits for the stopped run to end (at most 60 s); says whether it did.
    async fn finish(self) -> bool {
        match self {
            Served::Here { runs, page } => {
                let ended = tokio::time::timeout(Duration::from_secs(60), runs.wait_finished())
                    .await
                    .is_ok();
                page.shutdown().await;
                ended
            }
            Served::Processes { mut master, .. } => {
                let deadline = Instant::now() + Duration::from_secs(60);
                while Instant::now() < deadline {
                    if let Ok(Some(_)) = master.0.try_wait() {
                        return true;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                false
            }
        }
    }
}

/// The page for `users` against `server`, and what each user does (for the printout).
async fn serve(users: u64, server: &nginx::Nginx, dir: &Path) -> (Served, String) {
    let monitors = ["process:nginx", "host"];
    if users <= ONE_PROCESS_MAX {
        let urls: Vec<url::Url> = (0..NAMES)
            .map(|i| server.url(&item(i)).parse().expect("a URL"))
            .collect();
        let engine = EngineOptions {
            stop_timeout: Duration::from_secs(2),
            monitors: monitors
                .iter()
                .map(|m| Spec::parse(m).expect("a monitor"))
                .collect(),
            ..EngineOptions::default()
        };
        let (runs, page) = page_run::serve_gets(&urls, engine).await;
        let doing = format!("{NAMES} names in turn, then think 1 s; in this process");
        return (Served::Here { runs, page }, doing);
    }
    let scenario = dir.join("names.yaml");
    std::fs::write(&scenario, names_scenario(&server.url(""))).expect("the scenario");
    let port = nginx::free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_chorus"));
    command
        .arg("run")
        .arg(&scenario)
        // `auto` counts the users `-u` gives at start; the run itself is started from the page.
        .args(["-u", &users.to_string(), "-r", &SPAWN_RATE.to_string()])
        .args([
            "--processes",
            "auto",
            "--autoquit",
            "0",
            "--stop-timeout",
            "2s",
        ])
        .args(["--web-port", &port.to_string()]);
    for monitor in monitors {
        command.args(["--monitor", monitor]);
    }
    let master = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("chorus runs");
    let master = Master(master);
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{url}/api/state")).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the master's page never answered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let doing = format!(
        "one of {NAMES} flows of one name each, then think 10 s; `chorus run --processes auto`, the master's page"
    );
    (Served::Processes { master, url }, doing)
}

fn item(i: usize) -> String {
    format!("/api/v2/catalog/items/{i:03}")
}

/// A scenario of [`NAMES`] flows, each one GET then a think of 10 s.
fn names_scenario(host: &str) -> String {
    let mut yaml = format!("host: {}\nflows:\n", host.trim_end_matches('/'));
    for i in 0..NAMES {
        yaml.push_str(&format!(
            "  - name: item {i:03}\n    steps:\n      - get: {}\n      - think: 10s\n",
            item(i)
        ));
    }
    yaml
}

async fn bench(seconds: u64, users: u64) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    // Each nginx worker holds up to 19,000 connections; a margin for reconnections.
    let workers = (users as usize * 12 / 10).div_ceil(19_000).max(2);
    let server = nginx::Nginx::start_scaled(&dir.path().join("nginx"), workers);
    let (served, doing) = serve(users, &server, dir.path()).await;
    let url = served.url();
    let http = reqwest::Client::new();

    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("page-users-bench");
    let mut browser = browser::Browser::start(&[], &shots).await;
    browser.goto(&format!("{url}/")).await;
    browser
        .wait_text("#state", Duration::from_secs(30), |s| s == "ready")
        .await;
    assert_eq!(browser.script(page_timing::INSTRUMENT).await, json!(true));
    page_run::start(&http, &url, users, SPAWN_RATE).await;
    let asked_at = Instant::now();

    // While the users spawn: the page's own user count, every half second, until all run.
    page_timing::restart(&browser).await;
    let ramp_limit = Duration::from_secs(users.div_ceil(SPAWN_RATE) * 3 + 60);
    let mut reached: Vec<(f64, u64)> = Vec::new();
    loop {
        let state = get_json(&http, &url, "/api/state").await;
        let now = state["users"].as_u64().unwrap_or(0);
        reached.push((asked_at.elapsed().as_secs_f64(), now));
        if now >= users && state["state"] == "running" {
            break;
        }
        assert!(
            asked_at.elapsed() < ramp_limit,
            "the users never all ran: {now} of {users} after {:?}",
            asked_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let spawning = page_timing::recorded(&browser).await;
    let running = page_timing::collect(&browser, seconds).await;
    browser.screenshot("statistics").await;
    browser.click("#system-tab").await;
    let system = page_timing::collect(&browser, seconds).await;
    browser.screenshot("system").await;

    let mut serve_ms = Vec::new();
    let mut rps = 0.0;
    for _ in 0..5 {
        let asked = Instant::now();
        let stats = get_json(&http, &url, "/api/stats").await;
        serve_ms.push(asked.elapsed().as_secs_f64() * 1000.0);
        rps = stats["aggregated"]["current_rps"].as_f64().unwrap_or(0.0);
    }
    let shown_users = browser.text("#users").await;
    browser.close().await;
    let _ = http.post(format!("{url}/api/stop")).send().await;
    let finished = served.finish().await;
    drop(server);

    serve_ms.sort_by(f64::total_cmp);
    println!(
        "the live page during a run of {users} users ({doing}; spawned at {SPAWN_RATE}/s) against nginx ({workers} workers), headless Chromium, {seconds} s per phase"
    );
    print_spawn_rate(&reached, users);
    println!("users shown on the page        {shown_users:>9}");
    println!("requests/s (the page's total)  {rps:>9.0}");
    println!(
        "server answers /api/stats      {:>9.1} ms (median of 5; from the pages' copy, not the engine)",
        serve_ms[serve_ms.len() / 2]
    );
    page_timing::print_updates("update applied, while spawning   ", spawning, TARGET_MS);
    page_timing::print_updates("update applied, statistics tab   ", running, TARGET_MS);
    page_timing::print_updates("update applied, system tab       ", system, TARGET_MS);
    if !finished {
        println!("(the run did not stop within 60 s)");
    }
    println!("screenshots in {}", shots.display());
}

/// The spawn rate the page showed: users reached from the first sample with users to the
/// last before all ran, per second, against the asked rate.
fn print_spawn_rate(reached: &[(f64, u64)], users: u64) {
    let Some(first) = reached.iter().find(|(_, n)| *n > 0) else {
        println!("spawn rate                     no users seen");
        return;
    };
    let Some(last) = reached.iter().rev().find(|(_, n)| *n < users) else {
        println!("spawn rate                     all users ran at the first look");
        return;
    };
    let all_at = reached.last().map_or(0.0, |(t, _)| *t);
    if last.0 <= first.0 {
        println!("spawn rate                     every user within {all_at:.1} s");
        return;
    }
    let rate = (last.1 - first.1) as f64 / (last.0 - first.0);
    println!(
        "spawn rate (page's user count) {rate:>9.0} /s (asked {SPAWN_RATE}/s, {:.2}x); all {users} running {all_at:.1} s after the start (ideal {:.1} s)",
        rate / SPAWN_RATE as f64,
        users as f64 / SPAWN_RATE as f64
    );
}
