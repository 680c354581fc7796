//! `GET /metrics`: chorus's own numbers in Prometheus text format, scraped while a run goes
//! against the demo app and after it, behind `--web-auth` like every other route; the
//! request counters are judged against the demo app's own count.

use std::time::Duration;

use chorus::engine::Plan;
use chorus::web::{self, WebConfig};
use prometheus_parse::{Sample, Scrape, Value};

use super::{setup, until};
use crate::util;

/// One scrape, read with a Prometheus parser.
async fn scrape(http: &reqwest::Client, page: &str) -> Vec<Sample> {
    let response = http
        .get(format!("{page}/metrics"))
        .basic_auth("ops", Some("s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .unwrap()
        .samples
}

fn sum(samples: &[Sample], metric: &str) -> f64 {
    samples
        .iter()
        .filter(|s| s.metric == metric)
        .map(|s| match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_the_demo_app_counted() {
    let setup = setup().await;
    let page = web::serve(
        WebConfig {
            auth: Some(("ops".to_owned(), "s3cret".to_owned())),
            ..WebConfig::new("127.0.0.1:0".parse().unwrap())
        },
        setup.runs.clone(),
    )
    .await
    .unwrap();
    let base = page.url();
    let base = base.trim_end_matches('/');
    let http = reqwest::Client::new();
    let refused = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(refused.status(), 401);

    let plan = Plan::users(10, Some(20.0), Some(Duration::from_secs(4))).unwrap();
    setup.runs.start_plan(plan).unwrap();
    let demo = setup.demo.url();
    let demo = demo.trim_end_matches('/');
    // While it runs: requests counted, users running, chorus's own CPU among the monitors.
    let running = until(
        "requests and users on /metrics",
        Duration::from_secs(20),
        async || {
            let samples = scrape(&http, base).await;
            let counted = sum(&samples, "chorus_requests_total");
            (counted > 0.0 && sum(&samples, "chorus_users") > 0.0).then_some(samples)
        },
    )
    .await;
    let seen = util::demo_stats(demo).await["requests_total"]
        .as_u64()
        .unwrap();
    let counted = sum(&running, "chorus_requests_total");
    assert!(
        counted <= seen as f64,
        "/metrics counted {counted} requests, the app had seen {seen}"
    );
    assert!((1.0..=10.0).contains(&sum(&running, "chorus_users")));
    assert!(
        running.iter().any(
            |s| s.metric == "chorus_monitor" && s.labels.get("series") == Some("chorus.memory")
        ),
        "no chorus.memory among the monitors"
    );

    assert!(setup.runs.wait_finished().await);
    let finished = scrape(&http, base).await;
    let stats = util::demo_stats(demo).await;
    assert_eq!(
        sum(&finished, "chorus_requests_total"),
        stats["requests_total"].as_u64().unwrap() as f64,
        "{stats}"
    );
    // Each name's latency summary counts its timed requests, and its quantiles rise.
    for requests in finished
        .iter()
        .filter(|s| s.metric == "chorus_requests_total")
    {
        let name = requests.labels.get("name").unwrap();
        let of_name = |metric: &str| {
            finished
                .iter()
                .find(|s| s.metric == metric && s.labels.get("name") == Some(name))
                .unwrap_or_else(|| panic!("no {metric} for {name}"))
        };
        let Value::Summary(quantiles) = &of_name("chorus_latency_seconds").value else {
            panic!("chorus_latency_seconds is not a summary");
        };
        assert_eq!(quantiles.len(), 4);
        assert!(quantiles.windows(2).all(|w| w[0].count <= w[1].count));
        let count = sum(
            &[of_name("chorus_latency_seconds_count").clone()],
            "chorus_latency_seconds_count",
        );
        let Value::Counter(total) = requests.value else {
            panic!("chorus_requests_total is not a counter");
        };
        assert!(count <= total, "{name}: {count} timed of {total}");
    }
    page.shutdown().await;
    setup.page.shutdown().await;
    setup.demo.shutdown().await;
}
