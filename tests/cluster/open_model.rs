//! Issue 18, the open model across workers: a master splits `--arrival-rate` over three
//! workers, each starts its iterations on its own schedule, and the demo app's own count is
//! the asked rate; a worker killed with SIGKILL has its share split over the others at once,
//! and a worker that joins takes a share back.

use super::*;

/// The demo app's count of `GET /api/v2/capacity` (the one request of each iteration).
async fn served(host: &str) -> u64 {
    let stats = crate::util::demo_stats(host).await;
    app_counts(&stats)
        .get("GET /api/v2/capacity")
        .copied()
        .unwrap_or(0)
}

/// The rate the app saw between now and `until`.
async fn rate_until(host: &str, until: tokio::time::Instant) -> f64 {
    let (from, count) = (tokio::time::Instant::now(), served(host).await);
    tokio::time::sleep_until(until).await;
    let (to, later) = (tokio::time::Instant::now(), served(host).await);
    (later - count) as f64 / (to - from).as_secs_f64()
}

fn assert_near(what: &str, found: f64, wanted: f64, within: f64) {
    assert!(
        (found - wanted).abs() <= wanted * within,
        "{what}: {found:.2} is not within {:.0} % of {wanted}",
        within * 100.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_start_the_asked_rate_and_it_recovers_when_one_is_killed() {
    const RATE: f64 = 60.0;
    const RUN_SECS: u64 = 36;
    let dir = output_dir("cluster_open_model");
    let (server, _app) = crate::util::demo_app(AppOptions::default()).await;
    let host = server.url();
    let url = format!("{host}/api/v2/capacity");
    let run_time = format!("{RUN_SECS}s");
    let mut master = Process::start(
        "master",
        &[
            "run",
            "--url",
            &url,
            "--headless",
            "--arrival-rate",
            "60/s",
            "--max-users",
            "60",
            "-t",
            &run_time,
            "--master",
            "--expect-workers",
            "3",
            "--master-bind",
            "127.0.0.1:0",
            "--json",
            "run.json",
            "-q",
        ],
        &dir,
    );
    let address = master_address(&mut master);
    let mut workers: Vec<Process> = (1..=3)
        .map(|i| worker(&dir, &address, &format!("w{i}"), &["--threads", "1"]))
        .collect();
    master.wait_for("the start", |l| l.contains("starting with 3 worker(s)"));
    let start = tokio::time::Instant::now();
    for worker in &mut workers {
        let line = worker.wait_for("its share", |l| l.contains("iterations per second"));
        assert!(
            line.contains("starting 20 iterations per second (at most 20 user(s))"),
            "{line}"
        );
    }
    let at = |secs: u64| start + Duration::from_secs(secs);
    assert_near(
        "three workers, seconds 2 to 8",
        rate_until(&host, at(8)).await,
        RATE,
        0.05,
    );

    // SIGKILL: the connection closes, the master splits w3's share over w1 and w2.
    let mut killed = workers.pop().unwrap();
    killed.kill();
    let missing = master.wait_for("that w3 went missing", |l| l.contains("\"w3\""));
    assert!(missing.contains("went missing"), "{missing}");
    let lost = tokio::time::Instant::now();
    for worker in &mut workers {
        worker.wait_for("its new share", |l| {
            l.contains("moving to 30 iterations per second (at most 30 user(s))")
        });
    }
    tokio::time::sleep_until(lost + Duration::from_secs(3)).await;
    assert_near(
        "two workers, from 3 s after the loss",
        rate_until(&host, lost + Duration::from_secs(11)).await,
        RATE,
        0.05,
    );

    // A worker that joins takes its third back.
    workers.push(worker(&dir, &address, "w4", &["--threads", "1"]));
    workers[2].wait_for("its share", |l| {
        l.contains("starting 20 iterations per second (at most 20 user(s))")
    });
    let joined = tokio::time::Instant::now();
    assert!(
        joined + Duration::from_secs(8) < at(RUN_SECS),
        "too slow a join"
    );
    assert_near(
        "three workers again",
        rate_until(&host, joined + Duration::from_secs(6)).await,
        RATE,
        0.05,
    );

    let (status, output) = master.finish();
    assert_eq!(status.code(), Some(0), "{output}");
    for worker in workers {
        let (status, output) = worker.finish();
        assert_eq!(status.code(), Some(0), "{output}");
    }
    // Over the whole run the app saw the asked rate within 2 %.
    let total = served(&host).await;
    assert_near("the whole run", total as f64, RATE * RUN_SECS as f64, 0.02);
    let result = read_result(&dir.join("run.json"));
    assert_eq!(result.total.failures, 0, "{output}");
    assert_eq!(result.dropped_iterations, 0);
    // What the workers reported is what the app served, but for w3's last moment.
    assert!(
        result.total.requests <= total,
        "{} > {total}",
        result.total.requests
    );
    assert!(
        result.total.requests + 60 >= total,
        "{} for {total}",
        result.total.requests
    );
    server.shutdown().await;
}
