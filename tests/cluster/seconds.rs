//! Issue 14 H5 on a cluster: the master's history puts each worker's measurements in the
//! second of the run they belong to. Two workers run users against a server that notes when
//! it answered each request; each full second of the master's result holds what the server
//! answered in that second of the run.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use super::*;

fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_masters_seconds_hold_what_every_worker_measured_in_them() {
    let dir = output_dir("cluster_seconds");
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
    std::fs::write(
        dir.join("s.yaml"),
        format!(
            "host: http://{addr}\nflows:\n  - name: tick\n    steps:\n      - get: /tick\n      \
             - think: 50ms\n"
        ),
    )
    .unwrap();
    let mut master = Process::start(
        "master",
        &[
            "run",
            "s.yaml",
            "--headless",
            "-u",
            "10",
            "-r",
            "100",
            "-t",
            "6s",
            "--master",
            "--expect-workers",
            "2",
            "--master-bind",
            "127.0.0.1:0",
            "--json",
            "run.json",
        ],
        &dir,
    );
    let address = master_address(&mut master);
    let w1 = worker(&dir, &address, "w1", &["--threads", "2"]);
    let w2 = worker(&dir, &address, "w2", &["--threads", "2"]);
    let (status, output) = master.finish();
    assert_eq!(status.code(), Some(0), "{output}");
    for w in [w1, w2] {
        w.finish();
    }
    let result = read_result(&dir.join("run.json"));
    let start_us = result.meta.start_unix_ms * 1000;
    let full = 5usize;
    let mut server = vec![0u64; full];
    for at in answered.lock().unwrap().iter() {
        let second = (at.saturating_sub(start_us) / 1_000_000) as usize;
        if *at >= start_us && second < full {
            server[second] += 1;
        }
    }
    assert!(result.history.len() >= full, "{:#?}", result.history);
    let shown: Vec<String> = (0..full)
        .map(|s| {
            format!(
                "second {s}: server {}, master {}",
                server[s], result.history[s].requests
            )
        })
        .collect();
    let shown = shown.join("\n");
    println!("{shown}");
    for (second, server) in server.iter().enumerate() {
        let got = result.history[second].requests as f64;
        // The workers' seconds start when the master's Start reaches them (a few ms late),
        // and a request counts when it completes: a few may cross a second's edge.
        assert!(
            (got - *server as f64).abs() <= 4.0 + 0.05 * *server as f64,
            "second {second}\n{shown}"
        );
    }
    assert_eq!(
        result.total.requests,
        answered.lock().unwrap().len() as u64,
        "every request is counted once"
    );
}
