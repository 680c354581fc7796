//! How the page benches set up the page they measure: the two-thread runtime they run on,
//! their `CHORUS_BENCH_*` numbers, a real `Runs` (the page's controller) for a scenario of
//! GETs served by `chorus::web::serve`, and the page API calls they make (start the run as
//! the Start button does, read a JSON view).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chorus::engine::EngineOptions;
use chorus::scenario::Scenario;
use chorus::web::{self, Runs, WebConfig, WebServer};
use serde_json::{Value, json};

/// The number in the environment variable `name`, or `default` when it is unset or not one.
pub(crate) fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Runs `future` to its end on a tokio runtime of two worker threads (the machine's cores).
pub(crate) fn run_on_two_threads<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}

/// The page on 127.0.0.1 for a real `Runs` of a scenario in which each user GETs `urls` in
/// turn then thinks 1 s, run with `engine`.
pub(crate) async fn serve_gets(urls: &[url::Url], engine: EngineOptions) -> (Arc<Runs>, WebServer) {
    let scenario = Scenario::from_urls(urls, Some(Duration::from_secs(1)));
    let runs = Runs::new(Arc::new(scenario), engine);
    let page = web::serve(
        WebConfig::new("127.0.0.1:0".parse().expect("an address")),
        runs.clone(),
    )
    .await
    .expect("the page serves");
    (runs, page)
}

/// Starts a 10-minute run of `users` spawned at `spawn_rate` a second through the page's API
/// at `url`, as its Start button does; panics when the page refuses.
pub(crate) async fn start(http: &reqwest::Client, url: &str, users: u64, spawn_rate: u64) {
    let started = http
        .post(format!("{url}/api/start"))
        .json(&json!({ "users": users, "spawn_rate": spawn_rate, "run_time": "10m" }))
        .send()
        .await
        .expect("the page answers");
    assert!(
        started.status().is_success(),
        "start refused: {:?}",
        started.text().await
    );
}

/// The JSON the page answers at `url` + `path` (`/api/stats`, `/api/state`).
pub(crate) async fn get_json(http: &reqwest::Client, url: &str, path: &str) -> Value {
    http.get(format!("{url}{path}"))
        .send()
        .await
        .unwrap_or_else(|err| panic!("{path}: {err}"))
        .json()
        .await
        .unwrap_or_else(|err| panic!("{path} JSON: {err}"))
}
