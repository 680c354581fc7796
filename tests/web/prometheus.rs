//! Debian's Prometheus (`prometheus`, installed by .ci/run; its service is not started)
//! scrapes the page's `GET /metrics` once a second while a bounded run goes against the demo
//! app; after the run's end, Prometheus's own query API must give each request name's
//! counter exactly as the run's JSON result has it, and their sum as the demo app counted.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chorus::engine::Plan;
use serde_json::Value;

use super::{setup, until};
use crate::util::{self, free_port, tools::Process};

/// Debian's Prometheus server.
const PROMETHEUS: &str = "/usr/bin/prometheus";

/// The scrape configuration of one job: the page's `/metrics`, every second.
fn scrape_config(page: &str) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
         scrape_configs:\n  - job_name: chorus\n    metrics_path: /metrics\n\
         \x20   static_configs:\n      - targets: ['{page}']\n"
    )
}

/// One instant query through `/api/v1/query`: the result vector's (labels, sample time,
/// value) rows.
async fn query(
    http: &reqwest::Client,
    prometheus: &str,
    expr: &str,
) -> Vec<(BTreeMap<String, String>, f64, f64)> {
    let body: Value = http
        .get(
            url::Url::parse_with_params(&format!("{prometheus}/api/v1/query"), [("query", expr)])
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "success", "{expr}: {body}");
    body["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let labels = serde_json::from_value(row["metric"].clone()).unwrap();
            let time = row["value"][0].as_f64().unwrap();
            let value = row["value"][1].as_str().unwrap().parse().unwrap();
            (labels, time, value)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_page_and_counts_what_the_result_counts() {
    assert!(
        std::path::Path::new(PROMETHEUS).is_file(),
        "{PROMETHEUS} is missing: `bash .ci/run` installs Debian's prometheus"
    );
    let setup = setup().await;
    let dir = util::output_dir("web_prometheus");
    let page = setup.page.url();
    let page = page.trim_end_matches('/').to_owned();
    let target = page.trim_start_matches("http://");
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, scrape_config(target)).unwrap();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let port = free_port();
    let _prometheus = Process::spawn(
        "prometheus",
        Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log),
    );
    let prometheus = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    until(
        "Prometheus to be ready",
        Duration::from_secs(60),
        async || {
            let ready = http.get(format!("{prometheus}/-/ready")).send().await;
            ready.ok().filter(|r| r.status() == 200)
        },
    )
    .await;

    let plan = Plan::users(5, Some(10.0), Some(Duration::from_secs(4))).unwrap();
    setup.runs.start_plan(plan).unwrap();
    assert!(setup.runs.wait_finished().await, "the run passed");
    let ended = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let result: Value = http
        .get(format!("{page}/api/report/result.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    // The signal: every series' newest sample was scraped after the run's end (the page stays
    // up meanwhile, and its counters no longer move).
    until(
        "a scrape after the run's end",
        Duration::from_secs(60),
        async || {
            let times = query(&http, &prometheus, "timestamp(chorus_requests_total)").await;
            (!times.is_empty() && times.iter().all(|(_, _, at)| *at > ended)).then_some(())
        },
    )
    .await;
    let counters = query(&http, &prometheus, "chorus_requests_total").await;
    let entries = result["entries"].as_array().unwrap();
    assert!(entries.len() >= 3, "{result}");
    let mut counted = BTreeMap::new();
    for (labels, _, value) in &counters {
        assert_eq!(labels["job"], "chorus");
        counted.insert((labels["name"].clone(), labels["method"].clone()), *value);
    }
    let expected: BTreeMap<(String, String), f64> = entries
        .iter()
        .map(|e| {
            let key = (
                e["name"].as_str().unwrap().to_owned(),
                e["method"].as_str().unwrap().to_owned(),
            );
            (key, e["requests"].as_u64().unwrap() as f64)
        })
        .collect();
    assert_eq!(counted, expected, "Prometheus against the JSON result");
    let sum = query(&http, &prometheus, "sum(chorus_requests_total)").await;
    let total = result["total"]["requests"].as_u64().unwrap();
    assert_eq!(sum[0].2, total as f64);
    // And the application's own count of what it received.
    let demo = setup.demo.url();
    let seen = util::demo_stats(demo.trim_end_matches('/')).await["requests_total"]
        .as_u64()
        .unwrap();
    assert_eq!(total, seen);
    setup.page.shutdown().await;
    setup.demo.shutdown().await;
}
