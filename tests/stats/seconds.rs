//! Issue 14 H5: the per-second series is per second. Four worker threads send a steady 200
//! requests a second (the open model) to a server that notes when it answered each one; every
//! full second of the run, in `stats_history.csv`, the JSON result and the page's live stream,
//! holds what the server answered in that second of the run (within a few requests at its
//! edges), whichever thread measured it and whenever its report arrived.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chorus::engine::EngineOptions;
use chorus::scenario::Scenario;
use chorus::web::{self, Runs, WebConfig};
use serde_json::{Value, json};

/// Requests a second the run starts.
const RATE: u64 = 200;
/// Full seconds of the run.
const SECONDS: u64 = 6;

fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// A server that notes the Unix time (µs) at which it answered each request.
async fn noting_server() -> (String, Arc<Mutex<Vec<u64>>>) {
    let answered = Arc::new(Mutex::new(Vec::new()));
    let noted = answered.clone();
    let router = axum::Router::new().route(
        "/tick",
        axum::routing::get(move || {
            let noted = noted.clone();
            async move {
                noted.lock().unwrap().push(unix_micros());
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}/tick"), answered)
}

/// The page's live stream: every point it sends (a second sent again replaces it), by `t`.
fn follow_stream(url: String) -> Arc<Mutex<BTreeMap<u64, f64>>> {
    let points = Arc::new(Mutex::new(BTreeMap::new()));
    let seen = points.clone();
    tokio::spawn(async move {
        let mut response = reqwest::get(url).await.unwrap();
        let mut text = String::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find("\n\n") {
                let event: String = text.drain(..end + 2).collect();
                let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) else {
                    continue;
                };
                let Ok(body) = serde_json::from_str::<Value>(data) else {
                    continue;
                };
                let list = body["points"]
                    .as_array()
                    .cloned()
                    .or_else(|| body["history"].as_array().cloned())
                    .unwrap_or_default();
                let mut seen = seen.lock().unwrap();
                for point in list {
                    if let (Some(t), Some(rps)) = (point["t"].as_u64(), point["rps"].as_f64()) {
                        seen.insert(t, rps);
                    }
                }
            }
        }
    });
    points
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_second_holds_what_happened_in_it_in_the_csv_the_json_and_the_page() {
    let (url, answered) = noting_server().await;
    let scenario = Scenario::from_urls(&[url.parse().unwrap()], None);
    let options = EngineOptions {
        workers: 4,
        stop_timeout: Duration::from_secs(2),
        ..EngineOptions::default()
    };
    let runs = Runs::new(Arc::new(scenario), options);
    let page = web::serve(WebConfig::new("127.0.0.1:0".parse().unwrap()), runs.clone())
        .await
        .unwrap();
    let base = page.url();
    let streamed = follow_stream(format!("{base}/api/stream"));
    let http = reqwest::Client::new();
    let started = http
        .post(format!("{base}/api/start"))
        .json(&json!({ "arrival_rate": RATE, "max_users": 40, "run_time": format!("{SECONDS}s") }))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 200, "{}", started.text().await.unwrap());
    tokio::time::timeout(Duration::from_secs(60), runs.wait_finished())
        .await
        .expect("the run ends");
    let result: Value = http
        .get(format!("{base}/api/report/result.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let csv = http
        .get(format!("{base}/api/report/stats_history.csv"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    // What the server answered in each second of the run (seconds count from its start).
    let start_us = result["meta"]["start_unix_ms"].as_u64().unwrap() * 1000;
    let mut server = vec![0u64; SECONDS as usize];
    for at in answered.lock().unwrap().iter() {
        let second = at.saturating_sub(start_us) / 1_000_000;
        if *at >= start_us && second < SECONDS {
            server[second as usize] += 1;
        }
    }
    let history = result["history"].as_array().unwrap();
    assert!(history.len() as u64 >= SECONDS, "{history:#?}");
    let csv_rps: Vec<f64> = csv
        .lines()
        .skip(1)
        .map(|line| line.split(',').nth(4).unwrap().parse().unwrap())
        .collect();
    // The stream's last event may still be on its way when the run is over.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while streamed.lock().unwrap().len() < history.len() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let streamed = streamed.lock().unwrap().clone();
    let mut table = Vec::new();
    for second in 0..SECONDS as usize {
        let point = &history[second];
        let t = point["unix_seconds"].as_u64().unwrap();
        let json_count = point["requests"].as_u64().unwrap();
        let row = (
            second,
            server[second],
            json_count,
            csv_rps[second],
            streamed.get(&t).copied(),
        );
        table.push(row);
    }
    let shown: Vec<String> = table
        .iter()
        .map(|(s, server, json, csv, page)| {
            format!("second {s}: server {server}, JSON {json}, CSV {csv}, page {page:?}")
        })
        .collect();
    let shown = shown.join("\n");
    println!("{shown}");
    for (second, server, json_count, csv, page) in &table {
        // A request is counted when it completes, a hair after the server answered it: a
        // few may fall on the other side of a second's edge.
        let near = |count: f64| (count - *server as f64).abs() <= 3.0 + 0.03 * *server as f64;
        assert!(
            near(*json_count as f64),
            "second {second} in the JSON\n{shown}"
        );
        assert!(near(*csv), "second {second} in the CSV\n{shown}");
        assert!(
            page.is_some_and(near),
            "second {second} on the page's stream\n{shown}"
        );
        assert!(
            (*json_count as f64 - RATE as f64).abs() <= 0.1 * RATE as f64,
            "second {second} is not near the {RATE}/s sent\n{shown}"
        );
        let t = history[*second]["unix_seconds"].as_u64().unwrap();
        assert_eq!(
            t,
            (start_us / 1000 + (*second as u64 + 1) * 1000) / 1000,
            "points are the run's seconds in order"
        );
    }
    page.shutdown().await;
}
