//! Unit tests of the comparison, on results built in memory (no sockets).

use std::time::Duration;

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt as _, SeedableRng as _};

use super::gate::{self, Limits};
use super::*;
use crate::stats::{Aggregate, Failure, FailureKind, RequestSample, RunMeta, Tally};

/// One request of a synthetic run: its name, how much slower than the common latency it is,
/// and every how many requests one fails (0: none).
struct Endpoint {
    name: &'static str,
    scale: f64,
    fail_every: u64,
}

fn endpoint(name: &'static str, scale: f64, fail_every: u64) -> Endpoint {
    Endpoint {
        name,
        scale,
        fail_every,
    }
}

/// A run of `seconds` seconds with `per_second` requests a second spread over `endpoints`;
/// latencies around 10 ms, log-normal, independent.
fn run(seed: u64, seconds: u64, per_second: u64, endpoints: &[Endpoint]) -> RunResult {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut recorder = Tally::new();
    let mut aggregate = Aggregate::new();
    let start = 1_700_000_000 + seed * 1000;
    aggregate.tick(start, 0);
    let mut count = 0u64;
    for second in 1..=seconds {
        for i in 0..per_second {
            let endpoint = &endpoints[(i % endpoints.len() as u64) as usize];
            count += 1;
            let normal = {
                let (u1, u2): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random::<f64>());
                (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
            };
            let micros = 10_000.0 * endpoint.scale * (0.3 * normal).exp();
            let failure = (endpoint.fail_every > 0 && count.is_multiple_of(endpoint.fail_every))
                .then_some(Failure {
                    kind: FailureKind::Status(500),
                    message: "HTTP 500",
                });
            recorder.record(&RequestSample {
                method: "GET",
                name: endpoint.name,
                latency: Duration::from_micros(micros as u64),
                response_bytes: 10,
                failure,
            });
        }
        aggregate.absorb(recorder.take());
        aggregate.tick(start + second, 10);
    }
    aggregate.finish(RunMeta {
        scenario: "s.yaml".to_owned(),
        start_unix_ms: start * 1000,
        end_unix_ms: (start + seconds) * 1000,
        users: 10,
        ..RunMeta::default()
    })
}

fn pooled(runs: Vec<RunResult>) -> Pooled {
    pool(
        runs.into_iter()
            .enumerate()
            .map(|(i, r)| (format!("run{i}.json"), r))
            .collect(),
    )
}

fn two_endpoints(scale_b: f64, fail_every_b: u64) -> Vec<Endpoint> {
    vec![
        endpoint("/a", 1.0, 0),
        endpoint("/b", scale_b, fail_every_b),
        endpoint("/c", 2.0, 0),
    ]
}

#[test]
fn identical_distributions_show_no_change() {
    let mut worse = 0;
    for pair in 0..10 {
        let base = pooled(vec![run(pair * 2, 10, 300, &two_endpoints(1.0, 0))]);
        let new = pooled(vec![run(pair * 2 + 1, 10, 300, &two_endpoints(1.0, 0))]);
        let comparison = compare(&base, &new, DEFAULT_MIN_EFFECT);
        assert!(gate::judge(&comparison, &Limits::new(vec![], None)).is_empty());
        worse += (comparison.all_rows().flat_map(|r| &r.changes))
            .filter(|c| c.verdict == Verdict::Worse)
            .count();
    }
    assert_eq!(worse, 0, "no metric of 10 identical pairs is slower");
}

#[test]
fn a_slower_request_and_failures_are_named() {
    let base = pooled(vec![run(1, 10, 300, &two_endpoints(1.0, 0))]);
    let new = pooled(vec![run(2, 10, 300, &two_endpoints(1.25, 20))]);
    let comparison = compare(&base, &new, DEFAULT_MIN_EFFECT);
    let b = comparison.rows.iter().find(|r| r.name == "/b").unwrap();
    let p95 = b.change(Metric::P95).unwrap();
    assert_eq!(p95.verdict, Verdict::Worse, "{p95:?}");
    assert!((0.15..0.35).contains(&p95.change), "{p95:?}");
    assert!(p95.low > 0.0 && p95.low < p95.change && p95.change < p95.high);
    let failures = b.change(Metric::FailureRate).unwrap();
    assert_eq!(failures.verdict, Verdict::Worse, "{failures:?}");
    assert!((failures.new - 5.0).abs() < 0.5, "{failures:?}");
    let a = comparison.rows.iter().find(|r| r.name == "/a").unwrap();
    assert!(
        a.changes.iter().all(|c| c.verdict != Verdict::Worse),
        "{a:?}"
    );

    let limits = Limits::new(
        vec![gate::parse_slowdown("p95=10%").unwrap()],
        Some(gate::parse_failure_rate_increase("0.5%").unwrap()),
    );
    let breaches = gate::judge(&comparison, &limits);
    let named: Vec<(&str, Metric)> = breaches
        .iter()
        .map(|b| (b.request.as_str(), b.metric))
        .collect();
    assert!(named.contains(&("GET /b", Metric::P95)), "{breaches:?}");
    assert!(
        named.contains(&("GET /b", Metric::FailureRate)),
        "{breaches:?}"
    );
    assert!(!named.iter().any(|(r, _)| *r == "GET /a"), "{breaches:?}");
    // A limit above the change lets it pass.
    let lenient = Limits::new(vec![gate::parse_slowdown("p95=60%").unwrap()], None);
    assert!(gate::judge(&comparison, &lenient).is_empty());

    let text = render::text(&comparison, &breaches, &[]);
    assert!(
        text.contains("Regressions past the limits:\n  GET /b: p95 slower by"),
        "{text}"
    );
    let markdown = render::markdown(&comparison, &breaches, &[]);
    assert!(markdown.starts_with("### chorus compare: **"), "{markdown}");
    assert!(markdown.contains("| `GET /b` |"), "{markdown}");
    let page = html::render(&comparison, &breaches);
    assert_eq!(
        page.matches("<polyline").count(),
        8,
        "two curves per request and the aggregate"
    );
}

#[test]
fn a_faster_request_is_faster() {
    let base = pooled(vec![run(3, 10, 300, &two_endpoints(1.0, 0))]);
    let new = pooled(vec![run(4, 10, 300, &two_endpoints(0.7, 0))]);
    let comparison = compare(&base, &new, DEFAULT_MIN_EFFECT);
    let b = comparison.rows.iter().find(|r| r.name == "/b").unwrap();
    for metric in [Metric::P50, Metric::P95, Metric::Mean] {
        assert_eq!(
            b.change(metric).unwrap().verdict,
            Verdict::Better,
            "{metric:?}"
        );
    }
    assert!(gate::judge(&comparison, &Limits::new(vec![], None)).is_empty());
}

#[test]
fn a_small_change_is_no_change_however_significant() {
    let base = pooled(vec![run(5, 20, 2000, &two_endpoints(1.0, 0))]);
    let new = pooled(vec![run(6, 20, 2000, &two_endpoints(1.03, 0))]);
    let comparison = compare(&base, &new, DEFAULT_MIN_EFFECT);
    let p50 = comparison.rows[1].change(Metric::P50).unwrap().clone();
    assert_eq!(comparison.rows[1].name, "/b");
    assert!(p50.low > 0.0, "the 3 % is significant: {p50:?}");
    assert_eq!(p50.verdict, Verdict::NoChange, "{p50:?}");
    let strict = compare(&base, &new, 0.01);
    assert_eq!(
        strict.rows[1].change(Metric::P50).unwrap().verdict,
        Verdict::Worse
    );
}

#[test]
fn requests_on_one_side_only_are_listed() {
    let base = pooled(vec![run(
        7,
        5,
        100,
        &[endpoint("/a", 1.0, 0), endpoint("/old", 1.0, 0)],
    )]);
    let new = pooled(vec![run(
        8,
        5,
        100,
        &[endpoint("/a", 1.0, 0), endpoint("/fresh", 1.0, 0)],
    )]);
    let comparison = compare(&base, &new, DEFAULT_MIN_EFFECT);
    let presence: Vec<(String, Presence)> = (comparison.rows.iter())
        .map(|r| (r.label(), r.presence))
        .collect();
    assert_eq!(
        presence,
        [
            ("GET /a".to_owned(), Presence::Both),
            ("GET /old".to_owned(), Presence::Gone),
            ("GET /fresh".to_owned(), Presence::New),
        ]
    );
    let text = render::text(&comparison, &[], &[]);
    assert!(
        text.contains("Gone (only in the baseline):\n  GET /old (250 requests)"),
        "{text}"
    );
    assert!(
        text.contains("New (only in the new run):\n  GET /fresh (250 requests)"),
        "{text}"
    );
    let junit = render::junit(&comparison, &[], &[]);
    assert_eq!(junit.matches("<skipped").count(), 2, "{junit}");
}

#[test]
fn pooled_runs_are_the_merge_of_their_histograms() {
    let runs: Vec<RunResult> = (10..13)
        .map(|s| run(s, 4, 200, &two_endpoints(1.0, 7)))
        .collect();
    let pooled = pooled(runs.clone());
    for name in ["/a", "/b", "/c"] {
        let mut merged = crate::stats::Histogram::new();
        let mut requests = 0;
        for run in &runs {
            let entry = run.entries.iter().find(|e| e.name == name).unwrap();
            merged.add(&entry.histogram);
            requests += entry.requests;
        }
        let entry = pooled
            .result
            .entries
            .iter()
            .find(|e| e.name == name)
            .unwrap();
        assert_eq!(entry.histogram, merged, "{name}");
        assert_eq!(entry.requests, requests);
    }
    assert_eq!(pooled.result.total.requests, 2400);
    assert!((pooled.seconds - 12.0).abs() < 1e-9, "{}", pooled.seconds);
    assert_eq!(pooled.files, ["run0.json", "run1.json", "run2.json"]);
}

#[test]
fn comparisons_are_deterministic() {
    let base = pooled(vec![run(20, 6, 100, &two_endpoints(1.0, 0))]);
    let new = pooled(vec![run(21, 6, 100, &two_endpoints(1.1, 0))]);
    assert_eq!(
        compare(&base, &new, DEFAULT_MIN_EFFECT),
        compare(&base, &new, DEFAULT_MIN_EFFECT)
    );
}

#[test]
fn the_design_effect_sees_seconds_that_vary_together() {
    let steady = run(30, 20, 400, &two_endpoints(1.0, 0));
    let effect = significance::design_effect(&steady);
    assert!(
        (1.0..2.5).contains(&effect),
        "independent samples: {effect}"
    );
    // Every other second 40 % slower as a whole: samples of a second move together.
    let mut swinging = steady.clone();
    let slow = run(31, 20, 400, &two_endpoints(1.0, 0));
    for (i, point) in swinging.history.iter_mut().enumerate() {
        if i % 2 == 0 {
            for value in &mut point.percentiles_us {
                *value = *value * 14 / 10;
            }
        }
    }
    let _ = slow;
    let effect = significance::design_effect(&swinging);
    assert!(effect > 10.0, "{effect}");
    let short = run(32, 3, 400, &two_endpoints(1.0, 0));
    assert_eq!(
        significance::design_effect(&short),
        significance::DEFAULT_DESIGN_EFFECT
    );
}

#[test]
fn too_few_samples_give_no_verdict() {
    let base = pooled(vec![run(40, 1, 45, &two_endpoints(1.0, 0))]);
    let new = pooled(vec![run(41, 1, 45, &two_endpoints(5.0, 0))]);
    let comparison = compare(&base, &new, DEFAULT_MIN_EFFECT);
    let b = &comparison.rows[1];
    assert_eq!(
        b.change(Metric::P95).unwrap().verdict,
        Verdict::NotEnoughData
    );
    // The aggregate has 45 a side: enough for a verdict.
    assert_eq!(
        comparison.total.change(Metric::Mean).unwrap().verdict,
        Verdict::Worse
    );
}

#[test]
fn limits_parse_with_advice() {
    assert_eq!(gate::parse_slowdown("p95=10%"), Ok((Metric::P95, 0.1)));
    assert_eq!(gate::parse_slowdown("mean=0.2"), Ok((Metric::Mean, 0.2)));
    assert_eq!(
        gate::parse_slowdown("p97=10%").unwrap_err(),
        "\"p97=10%\": \"p97\" is not a metric compare judges; a slowdown limit reads METRIC=PERCENT, e.g. p95=10% (metrics: p50, p90, p95, p99, mean)"
    );
    assert!(gate::parse_slowdown("p95").is_err());
    assert_eq!(gate::parse_failure_rate_increase("0.5%"), Ok(0.5));
    assert_eq!(
        gate::parse_failure_rate_increase("0.5").unwrap_err(),
        "\"0.5\": write the increase in percentage points of the failure rate with a %, e.g. 0.5%"
    );
    assert_eq!(gate::parse_min_effect("5%"), Ok(0.05));
    assert_eq!(
        Limits::new(vec![], None),
        Limits {
            slowdowns: vec![(Metric::P95, 0.0)],
            failure_rate_increase: Some(0.0)
        }
    );
}

#[test]
fn unreadable_results_say_why() {
    let text = run(50, 2, 20, &two_endpoints(1.0, 0)).to_json();
    let cut = &text[..text.len() / 2];
    let err = read::parse_result(cut).unwrap_err();
    assert!(err.contains("the file ends early"), "{err}");
    let err = read::parse_result("Type,Name\nGET,/a\n").unwrap_err();
    assert!(err.starts_with("line 1, column 1:"), "{err}");
    assert!(err.contains("not JSON"), "{err}");
    let err = read::parse_result("{\"metrics\": {}}").unwrap_err();
    assert!(err.starts_with("this is not a chorus result"), "{err}");
}
