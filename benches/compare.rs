//! Calibration of `chorus compare` (issue 16): against a real server on 127.0.0.1 whose three
//! endpoints sleep a random time (16 ms plus an exponential of mean 16 ms; 32 and 32 for
//! `/c`), chorus runs PAIRS rounds of three short runs: a baseline, an identical run, and a
//! run where `/b`'s delay is 20 % longer (so its p95 is about 20 % slower). Each identical pair
//! should give no "slower" verdict (at most 1 in total is allowed), each slowed pair a "slower"
//! verdict at `/b`'s p95 (at least 19 of 20). Prints the counts, and the design effects and
//! measured p95 ratios behind them.
//!
//! CHORUS_COMPARE_PAIRS (20), CHORUS_COMPARE_SECS (6 s a run: the design effect needs 4 whole
//! seconds besides the first and last), CHORUS_COMPARE_USERS (80).
//!
//! `cargo bench --bench compare`

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use chorus::compare::{self, Metric, Verdict, gate};
use chorus::engine::{Engine, EngineOptions, Plan};
use chorus::scenario::Scenario;
use chorus::stats::RunResult;

/// `/b`'s delay in the slowed runs, in thousandths of the usual.
const SLOWED: u32 = 1200;

#[derive(Clone)]
struct Delays {
    /// Per endpoint, thousandths of the usual delay.
    scale: Arc<[AtomicU32; 3]>,
}

async fn answer(delays: &Delays, index: usize, usual_ms: f64) -> &'static str {
    let scale = f64::from(delays.scale[index].load(Ordering::Relaxed)) / 1000.0;
    let exponential = -(1.0 - rand::random::<f64>()).ln() * usual_ms;
    let delay = Duration::from_secs_f64(scale * (usual_ms + exponential) / 1000.0);
    // tokio's timer rounds up to whole milliseconds: a small step next to delays of 16 ms
    // and more.
    tokio::time::sleep(delay).await;
    "ok"
}

async fn serve() -> (String, Delays) {
    let delays = Delays {
        scale: Arc::new([
            AtomicU32::new(1000),
            AtomicU32::new(1000),
            AtomicU32::new(1000),
        ]),
    };
    let app = Router::new()
        .route(
            "/a",
            get(|State(d): State<Delays>| async move { answer(&d, 0, 16.0).await }),
        )
        .route(
            "/b",
            get(|State(d): State<Delays>| async move { answer(&d, 1, 16.0).await }),
        )
        .route(
            "/c",
            get(|State(d): State<Delays>| async move { answer(&d, 2, 32.0).await }),
        )
        .with_state(delays.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, delays)
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn one_run(base: &str, users: u64, seconds: u64) -> RunResult {
    let urls: Vec<url::Url> = ["a", "b", "c"]
        .iter()
        .map(|p| url::Url::parse(&format!("{base}/{p}")).unwrap())
        .collect();
    let scenario = Arc::new(Scenario::from_urls(&urls, None));
    let plan = Plan::users(users, None, Some(Duration::from_secs(seconds))).unwrap();
    let handle = Engine::start(scenario, plan, EngineOptions::default()).unwrap();
    let result = handle.wait().await;
    // Through the file format, as `chorus compare` reads it.
    compare::read::parse_result(&result.to_json()).unwrap()
}

fn pooled(name: &str, run: RunResult) -> compare::Pooled {
    compare::pool(vec![(name.to_owned(), run)])
}

fn main() {
    let pairs = env("CHORUS_COMPARE_PAIRS", 20);
    let seconds = env("CHORUS_COMPARE_SECS", 6);
    let users = env("CHORUS_COMPARE_USERS", 80);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    runtime.block_on(async {
        let (base_url, delays) = serve().await;
        let default_limits = gate::Limits::new(Vec::new(), None);
        let (mut false_pairs, mut false_verdicts, mut verdicts, mut false_gate) = (0, 0, 0, 0);
        let (mut caught, mut caught_gate) = (0, 0);
        let mut ratios = Vec::new();
        let mut effects = Vec::new();
        for pair in 0..pairs {
            delays.scale[1].store(1000, Ordering::Relaxed);
            let base = pooled("base", one_run(&base_url, users, seconds).await);
            let same = pooled("same", one_run(&base_url, users, seconds).await);
            delays.scale[1].store(SLOWED, Ordering::Relaxed);
            let slow = pooled("slow", one_run(&base_url, users, seconds).await);
            effects.extend([base.design_effect, same.design_effect, slow.design_effect]);

            let identical = compare::compare(&base, &same, compare::DEFAULT_MIN_EFFECT);
            let changes: Vec<_> = identical.all_rows().flat_map(|r| &r.changes).collect();
            verdicts += changes.len();
            let wrong = (changes.iter())
                .filter(|c| c.verdict == Verdict::Worse)
                .count();
            false_verdicts += wrong;
            false_pairs += usize::from(wrong > 0);
            false_gate += usize::from(!gate::judge(&identical, &default_limits).is_empty());
            for row in identical.all_rows() {
                for c in row.changes.iter().filter(|c| c.verdict == Verdict::Worse) {
                    println!(
                        "  pair {pair}: identical runs, {} {} {:+.1} % ({:+.1} .. {:+.1}) called {}",
                        row.label(),
                        c.metric.label(),
                        c.change * 100.0,
                        c.low * 100.0,
                        c.high * 100.0,
                        c.verdict.word(c.metric)
                    );
                }
            }

            let slowed = compare::compare(&base, &slow, compare::DEFAULT_MIN_EFFECT);
            let b = slowed.rows.iter().find(|r| r.name == "/b").unwrap();
            let p95 = b.change(Metric::P95).unwrap();
            ratios.push(p95.change);
            caught += usize::from(p95.verdict == Verdict::Worse);
            caught_gate += usize::from(
                gate::judge(&slowed, &default_limits)
                    .iter()
                    .any(|breach| breach.request == "GET /b"),
            );
            println!(
                "pair {pair}: /b p95 {:.2} -> {:.2} ms ({:+.1} %, interval {:+.1} .. {:+.1} %) {}; design effects {:.2} {:.2} {:.2}",
                p95.base,
                p95.new,
                p95.change * 100.0,
                p95.low * 100.0,
                p95.high * 100.0,
                p95.verdict.word(Metric::P95),
                base.design_effect,
                same.design_effect,
                slow.design_effect
            );
        }
        ratios.sort_by(f64::total_cmp);
        effects.sort_by(f64::total_cmp);
        let median = |v: &[f64]| v.get(v.len() / 2).copied().unwrap_or(0.0);
        println!("\n{pairs} pairs of {seconds} s runs, {users} users, 3 endpoints");
        println!(
            "identical pairs: {false_pairs} with a false \"slower\" verdict ({false_verdicts} of {verdicts} verdicts); the default gate (p95 slower, more failures) failed {false_gate}; target: at most 1"
        );
        println!(
            "/b 20 % slower: \"slower\" at p95 in {caught} of {pairs} (the default gate failed on /b in {caught_gate}); target: at least 19"
        );
        println!(
            "measured /b p95 change in the slowed pairs: median {:+.1} % (from {:+.1} to {:+.1} %); design effects: median {:.2}, max {:.2}",
            median(&ratios) * 100.0,
            ratios.first().unwrap_or(&0.0) * 100.0,
            ratios.last().unwrap_or(&0.0) * 100.0,
            median(&effects),
            effects.last().unwrap_or(&0.0)
        );
    });
    println!("took {:.0} s", started.elapsed().as_secs_f64());
}
