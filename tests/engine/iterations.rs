//! `--iterations N` (k6's per-VU iterations): each user runs N iterations, then `on_stop`, and
//! ends; the run ends by itself when every user has. Judged by the demo app's own counts.

use chorus::demo::AppOptions;

use crate::util::{chorus_blocking, demo_app, demo_stats, output_dir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_user_runs_its_iterations_then_on_stop_and_the_run_ends_by_itself() {
    const USERS: u64 = 3;
    const ITERATIONS: u64 = 4;
    let dir = output_dir("iterations");
    let (server, _app) = demo_app(AppOptions::default()).await;
    let scenario = dir.join("scenario.yaml");
    std::fs::write(
        &scenario,
        format!(
            "host: {}\n\
             on_start:\n  - get: /teacher\n\
             flows:\n  - name: poll\n    steps:\n      - get: /api/v2/capacity\n      - get: /student\n\
             on_stop:\n  - get: /\n",
            server.url()
        ),
    )
    .unwrap();
    // No -t: the run must end by itself (a bound on the test's side all the same).
    let args = [
        "run",
        scenario.to_str().unwrap(),
        "--headless",
        "-q",
        "-u",
        &USERS.to_string(),
        "-r",
        "10",
        "--iterations",
        &ITERATIONS.to_string(),
        "--json",
        "run.json",
    ];
    let output = chorus_blocking(args.iter().map(|a| a.to_string()).collect(), dir.clone()).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let stats = demo_stats(&server.url()).await;
    let count = |endpoint: &str| stats["endpoints"][endpoint]["200"].as_u64().unwrap_or(0);
    assert_eq!(count("GET /teacher"), USERS, "{stats}");
    assert_eq!(count("GET /api/v2/capacity"), USERS * ITERATIONS, "{stats}");
    assert_eq!(count("GET /student"), USERS * ITERATIONS, "{stats}");
    assert_eq!(count("GET /"), USERS, "{stats}");
    server.shutdown().await;
}

#[test]
fn iterations_out_of_range_or_beside_an_open_model_are_refused() {
    let dir = output_dir("iterations_refused");
    for (args, said) in [
        (
            &["--iterations", "0"][..],
            "expected a whole number of iterations per user from 1 to 1000000000, found \"0\"",
        ),
        (
            &["--iterations", "2", "--arrival-rate", "5/s"][..],
            "cannot be used with",
        ),
    ] {
        let mut argv = vec!["run", "--url", "http://127.0.0.1:1/", "--headless"];
        argv.extend_from_slice(args);
        let output = crate::util::chorus(&argv, &dir);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(said), "{args:?}: {stderr}");
    }
}
