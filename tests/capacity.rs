//! Issue 18, the capacity search: `chorus run --find-capacity` against the demo app's
//! `GET /api/v2/capacity` limited to N requests at once, each served in a fixed time, so
//! theory says it serves N / service time requests a second at most and its latency grows
//! without bound above that. The search must find that rate within 10 %, and say so in the
//! summary, the JSON result and the HTML report.

use std::time::Duration;

use chorus::demo::AppOptions;
use chorus::stats::RunResult;

use crate::util::{chorus, demo_app, output_dir};

const CONCURRENT: usize = 20;
const SERVICE: Duration = Duration::from_millis(100);

/// What theory says the limited endpoint serves at most, per second.
fn theory() -> f64 {
    CONCURRENT as f64 / SERVICE.as_secs_f64()
}

/// A search against the demo app's limited endpoint for `condition`, with `extra` arguments: the result, the
/// app's own request count, stdout and stderr. Judges what every search must hold: the rate
/// theory predicts within 10 %, every request the run counted served by the app (and nothing
/// the run did not count), the held steps at their rate.
async fn search(
    name: &str,
    condition: &'static str,
    extra: &[&str],
) -> (RunResult, std::path::PathBuf, String, String) {
    let dir = output_dir(name);
    let (server, app) = demo_app(AppOptions::default()).await;
    app.limit_capacity(CONCURRENT, SERVICE);
    let url = format!("{}/api/v2/capacity", server.url());
    let dir_for_run = dir.clone();
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let output = tokio::task::spawn_blocking(move || {
        let mut args = vec![
            "run",
            "--url",
            &url,
            "--headless",
            "-q",
            "--find-capacity",
            condition,
            "--threshold",
            "failures<1%",
            "--arrival-rate",
            "100/s",
            "--step-time",
            "3s",
            "--max-users",
            "2000",
            // A bound, not the expected length: the search ends by itself well before.
            "-t",
            "150s",
            "--json",
            "run.json",
            "--html",
            "run.html",
        ];
        args.extend(extra.iter().map(String::as_str));
        chorus(&args, &dir_for_run)
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");

    let result =
        RunResult::from_json(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    let capacity = result.capacity.as_ref().expect("a capacity in the result");
    let found = capacity.per_second.expect("a rate that held");
    let theory = theory();
    assert!(
        (found - theory).abs() <= theory * 0.10,
        "found {found}/s, theory says {theory}/s:\n{stdout}\n{stderr}"
    );
    assert!(capacity.steps.iter().any(|s| !s.held), "{stderr}");
    assert!(capacity.steps.len() <= 12, "{stderr}");
    // What the app served: every request the run counted (and nothing the run did not).
    let stats = crate::util::demo_stats(&server.url()).await;
    assert_eq!(stats["requests_total"], result.total.requests, "{stderr}");
    // The steps that held answered their rate (the app's own pace, within 10 %).
    for step in capacity.steps.iter().filter(|s| s.held) {
        assert!(
            (step.rps() - step.per_second).abs() <= step.per_second * 0.10,
            "{step:?}"
        );
    }
    server.shutdown().await;
    (result, dir, stdout, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_finds_the_rate_theory_predicts_for_a_server_of_known_capacity() {
    // p95 within half a service time of the service time: no queue to speak of.
    let (result, dir, stdout, stderr) = search("capacity_search", "p95<150ms", &[]).await;
    let capacity = result.capacity.as_ref().unwrap();
    let found = capacity.per_second.unwrap();
    assert_eq!(capacity.conditions, ["p95<150ms", "failures<1%"]);
    assert!(
        stdout.contains(&format!(
            "Capacity: {}/s, the highest rate",
            chorus::stats::capacity::show_rate(found)
        )),
        "{stdout}"
    );
    assert!(stderr.contains("capacity step 1: 100/s"), "{stderr}");
    let page = std::fs::read_to_string(dir.join("run.html")).unwrap();
    assert!(page.contains("<h2>Capacity</h2>"));
    assert_eq!(page.matches("<circle").count(), capacity.steps.len());
}

/// The same search on two worker processes under one master (the master machinery, as with
/// `--master` and workers on other machines): each step's rate is split over the workers and
/// their seconds merged exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_on_worker_processes_finds_the_same_rate() {
    // Three processes of chorus beside the app on a small machine: a wider margin for the
    // machine's own delay. Above the capacity the queue still grows without bound, so the
    // rate found is the same.
    let (result, _, _, stderr) =
        search("capacity_processes", "p95<250ms", &["--processes", "2"]).await;
    assert!(stderr.contains("capacity step 1: 100/s"), "{stderr}");
    assert!(result.capacity.unwrap().steps.len() >= 2, "{stderr}");
}

#[test]
fn a_search_without_headless_or_with_a_bad_condition_is_refused_before_any_request() {
    let dir = output_dir("capacity_refusals");
    for (args, said) in [
        (
            &["--find-capacity", "p95<300ms"][..],
            "error: --find-capacity runs without the page: add --headless",
        ),
        (
            &["--find-capacity", "p95<soon", "--headless"][..],
            "error: threshold \"p95<soon\": ",
        ),
        (
            &[
                "--find-capacity",
                "p95<1s",
                "--headless",
                "--stages",
                "1s:1",
            ][..],
            "error: the argument '--find-capacity <CONDITION>' cannot be used with '--stages <STAGES>'",
        ),
    ] {
        let mut all = vec!["run", "--url", "http://127.0.0.1:9/"];
        all.extend_from_slice(args);
        let output = chorus(&all, &dir);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with(said), "{args:?}: {stderr}");
    }
}
