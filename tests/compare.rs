//! Integration tests for `chorus compare` and the CI reports of `chorus run` (issue 16): the
//! binary on result files as a user has them, exit statuses, the JUnit XML checked against the
//! schema in tests/fixtures/junit/junit.xsd with Debian's xmllint (libxml2-utils), and a real
//! run against a server on 127.0.0.1 for `run --junit --markdown --baseline`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chorus::stats::{Aggregate, Failure, FailureKind, RequestSample, RunMeta, RunResult, Tally};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt as _, SeedableRng as _};

use crate::util::{chorus, output_dir};

/// One request of a synthetic run: name, latency scale, one failure every N (0: none).
type Endpoint = (&'static str, f64, u64);

const STEADY: [Endpoint; 3] = [("/a", 1.0, 0), ("/b", 1.0, 0), ("/c", 2.0, 0)];

/// A run of `seconds` from `start` (Unix seconds), 300 requests a second over `endpoints`,
/// log-normal latencies around 10 ms.
fn synthetic(seed: u64, start: u64, seconds: u64, endpoints: &[Endpoint]) -> RunResult {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut recorder = Tally::new();
    let mut aggregate = Aggregate::new();
    aggregate.tick(start, 0);
    let mut count = 0u64;
    for second in 1..=seconds {
        for i in 0..300u64 {
            let (name, scale, fail_every) = endpoints[(i % endpoints.len() as u64) as usize];
            count += 1;
            let (u1, u2): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random::<f64>());
            let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            let micros = 10_000.0 * scale * (0.3 * normal).exp();
            recorder.record(&RequestSample {
                method: "GET",
                name,
                latency: Duration::from_micros(micros as u64),
                response_bytes: 10,
                failure: (fail_every > 0 && count.is_multiple_of(fail_every)).then_some(Failure {
                    kind: FailureKind::Status(503),
                    message: "HTTP 503",
                }),
            });
        }
        aggregate.absorb(recorder.take());
        aggregate.tick(start + second, 10);
    }
    aggregate.finish(RunMeta {
        scenario: "scenario.yaml".to_owned(),
        start_unix_ms: start * 1000,
        end_unix_ms: (start + seconds) * 1000,
        users: 10,
        ..RunMeta::default()
    })
}

fn write(dir: &Path, name: &str, result: &RunResult) -> String {
    std::fs::write(dir.join(name), result.to_json()).unwrap();
    name.to_owned()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Validates `xml` against the shipped JUnit schema with xmllint.
fn assert_junit_valid(xml: &Path) {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/junit/junit.xsd");
    let output = std::process::Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&schema)
        .arg(xml)
        .output()
        .expect("xmllint runs (Debian: libxml2-utils; .ci/run installs it)");
    assert!(
        output.status.success(),
        "{} does not pass the JUnit schema:\n{}\n{}",
        xml.display(),
        text(&output.stderr),
        std::fs::read_to_string(xml).unwrap_or_default()
    );
}

#[test]
fn identical_results_are_no_regression() {
    let dir = output_dir("compare_identical");
    let start = 1_790_000_000;
    let base = write(&dir, "base.json", &synthetic(1, start, 10, &STEADY));
    let new = write(&dir, "new.json", &synthetic(1, start + 100, 10, &STEADY));
    let output = chorus(
        &[
            "compare",
            &base,
            &new,
            "--junit",
            "j.xml",
            "--markdown",
            "m.md",
        ],
        &dir,
    );
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert!(
        stdout.contains("No regression past the limits."),
        "{stdout}"
    );
    assert!(!stdout.contains("slower"), "{stdout}");
    assert_junit_valid(&dir.join("j.xml"));
    let markdown = std::fs::read_to_string(dir.join("m.md")).unwrap();
    assert!(
        markdown.starts_with("### chorus compare: no regression"),
        "{markdown}"
    );
}

#[test]
fn a_slower_request_and_failures_fail_naming_them() {
    let dir = output_dir("compare_regression");
    let start = 1_790_000_000;
    let base = write(&dir, "base.json", &synthetic(2, start, 10, &STEADY));
    let changed = [("/a", 1.0, 0), ("/b", 1.3, 0), ("/c", 2.0, 25)];
    let new = write(&dir, "new.json", &synthetic(3, start + 100, 10, &changed));
    let output = chorus(
        &[
            "compare",
            &base,
            &new,
            "--max-slowdown",
            "p95=10%",
            "--max-failure-rate-increase",
            "0.5%",
            "--junit",
            "j.xml",
            "--html",
            "c.html",
        ],
        &dir,
    );
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{stdout}{}",
        text(&output.stderr)
    );
    let breaches = stdout
        .split("Regressions past the limits:\n")
        .nth(1)
        .unwrap_or("");
    assert!(breaches.contains("GET /b: p95 slower by"), "{stdout}");
    assert!(breaches.contains("GET /c: failure rate up"), "{stdout}");
    assert!(!breaches.contains("GET /a"), "{stdout}");
    assert_junit_valid(&dir.join("j.xml"));
    let junit = std::fs::read_to_string(dir.join("j.xml")).unwrap();
    assert!(
        junit.contains("<testsuite name=\"chorus compare\" tests=\"4\" failures=\"3\""),
        "{junit}"
    );
    let page = std::fs::read_to_string(dir.join("c.html")).unwrap();
    assert_eq!(
        page.matches("<polyline").count(),
        8,
        "two curves a request and the aggregate"
    );

    // A looser limit passes the slowdown; the failures still fail.
    let output = chorus(
        &[
            "compare",
            &base,
            &new,
            "--max-slowdown",
            "p95=50%",
            "--max-failure-rate-increase",
            "5%",
        ],
        &dir,
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stdout));
}

#[test]
fn requests_on_one_side_only_are_listed() {
    let dir = output_dir("compare_mismatched");
    let start = 1_790_000_000;
    let base = write(
        &dir,
        "base.json",
        &synthetic(4, start, 5, &[("/a", 1.0, 0), ("/old", 1.0, 0)]),
    );
    let new = write(
        &dir,
        "new.json",
        &synthetic(5, start + 50, 5, &[("/a", 1.0, 0), ("/fresh", 1.0, 0)]),
    );
    let output = chorus(&["compare", &base, &new, "--junit", "j.xml"], &dir);
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert!(
        stdout.contains("Gone (only in the baseline):\n  GET /old (750 requests)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("New (only in the new run):\n  GET /fresh (750 requests)"),
        "{stdout}"
    );
    assert_junit_valid(&dir.join("j.xml"));
}

#[test]
fn unreadable_results_exit_2_naming_the_file() {
    let dir = output_dir("compare_unreadable");
    let good = write(&dir, "good.json", &synthetic(6, 1_790_000_000, 2, &STEADY));
    let json = synthetic(7, 1_790_000_100, 2, &STEADY).to_json();
    std::fs::write(dir.join("cut.json"), &json[..json.len() / 3]).unwrap();
    std::fs::write(
        dir.join("k6.json"),
        "{\"metrics\": {\"http_req_duration\": {}}}",
    )
    .unwrap();
    let cases: [(&str, &str); 3] = [
        ("cut.json", "cut.json: line "),
        (
            "k6.json",
            "k6.json: this is not a chorus result: \"format\" is \"missing\"",
        ),
        ("missing.json", "missing.json: no such file or folder"),
    ];
    for (file, expected) in cases {
        let output = chorus(&["compare", &good, file], &dir);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{file}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.starts_with("error: cannot read a result to compare: "),
            "{stderr}"
        );
        assert!(stderr.contains(expected), "{file}: {stderr}");
    }
    let stderr = text(&chorus(&["compare", &good, "cut.json"], &dir).stderr);
    assert!(stderr.contains("the file ends early"), "{stderr}");
    let output = chorus(&["compare", &good], &dir);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("give BASE.json NEW.json"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn pooled_runs_compare_as_their_merge() {
    let dir = output_dir("compare_pooled");
    let start = 1_790_000_000;
    let b1 = synthetic(8, start, 5, &STEADY);
    let b2 = synthetic(9, start + 5, 5, &STEADY);
    let n1 = synthetic(10, start + 10, 5, &STEADY);
    let n2 = synthetic(11, start + 15, 5, &STEADY);
    let (mut base, mut new) = (b1.clone(), n1.clone());
    base.merge(&b2);
    new.merge(&n2);
    for (name, result) in [
        ("b1.json", &b1),
        ("b2.json", &b2),
        ("n1.json", &n1),
        ("n2.json", &n2),
        ("base.json", &base),
        ("new.json", &new),
    ] {
        write(&dir, name, result);
    }
    let pooled = chorus(
        &["compare", "b1.json", "b2.json", "--", "n1.json", "n2.json"],
        &dir,
    );
    let merged = chorus(&["compare", "base.json", "new.json"], &dir);
    assert_eq!(pooled.status.code(), Some(0), "{}", text(&pooled.stderr));
    // The values and changes, after the two lines naming the files; the intervals may differ:
    // the merged file's history is one 10 s run's, its design effect not the mean of two.
    let tables = |output: &std::process::Output| -> String {
        (text(&output.stdout).lines().skip(3))
            .map(|line| line.chars().take(72).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    };
    crate::eqnice!(tables(&merged), tables(&pooled));
    assert!(
        text(&pooled.stdout)
            .starts_with("Baseline: 2 runs (b1.json, b2.json; 3000 requests in 10.0 s)")
    );
}

/// A server counting what it answered: `/ok` 200, `/broken` 500.
async fn counting_server() -> (String, Arc<AtomicU64>) {
    use axum::routing::get;
    let broken = Arc::new(AtomicU64::new(0));
    let count = broken.clone();
    let app = axum::Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route(
            "/broken",
            get(move || {
                let count = count.clone();
                async move {
                    count.fetch_add(1, Ordering::Relaxed);
                    (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "down")
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, broken)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_writes_junit_and_markdown_and_compares_with_a_baseline() {
    let dir = output_dir("compare_run_reports");
    let (base, broken) = counting_server().await;
    let run = |extra: &[&str]| {
        let mut args: Vec<String> = ["run", "--headless", "-q", "-u", "2", "-t", "2s", "--url"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.push(format!("{base}/ok"));
        args.push("--url".to_owned());
        args.push(format!("{base}/broken"));
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let first = crate::util::chorus_blocking(run(&["--json", "base.json"]), dir.clone()).await;
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let before = broken.load(Ordering::Relaxed);
    let second = crate::util::chorus_blocking(
        run(&[
            "--baseline",
            "base.json",
            "--junit",
            "run.xml",
            "--markdown",
            "run.md",
            "--threshold",
            "p95<10s",
            "--threshold",
            "failures<1%",
        ]),
        dir.clone(),
    )
    .await;
    let stdout = text(&second.stdout);
    assert_eq!(
        second.status.code(),
        Some(1),
        "failures<1% fails: {stdout}{}",
        text(&second.stderr)
    );
    let answered = broken.load(Ordering::Relaxed) - before;
    assert!(answered > 0);
    assert!(
        stdout.contains("\nCompared with the baseline\nBaseline: 1 run (base.json;"),
        "{stdout}"
    );
    assert!(stdout.contains("GET /broken"), "{stdout}");

    assert_junit_valid(&dir.join("run.xml"));
    let junit = std::fs::read_to_string(dir.join("run.xml")).unwrap();
    // Two thresholds and the one request with failures; the server's own count of the 500s.
    assert!(junit.contains("tests=\"3\" failures=\"2\""), "{junit}");
    assert!(
        junit.contains("<testcase classname=\"chorus.thresholds\" name=\"p95&lt;10s\""),
        "{junit}"
    );
    assert!(
        junit.contains(&format!(
            "message=\"{answered} of {answered} requests failed (100.00 %)\""
        )),
        "the server answered {answered} times 500:\n{junit}"
    );
    assert!(!junit.contains("GET /ok"), "{junit}");
    let markdown = std::fs::read_to_string(dir.join("run.md")).unwrap();
    assert!(markdown.contains("**1 threshold(s) failed**"), "{markdown}");
    assert!(
        markdown.contains(&format!(
            "| `GET /broken` | {answered} | {answered} (100.00 %) |"
        )),
        "{markdown}"
    );
}
