//! Parsing and evaluating thresholds, on results made by a tally.

use std::time::Duration;

use super::*;
use crate::stats::{Aggregate, Failure, FailureKind, RequestSample, RunMeta, Tally};

fn err(expression: &str) -> String {
    Threshold::parse(expression).unwrap_err().to_string()
}

#[test]
fn parses_the_documented_forms() {
    let t = Threshold::parse(" p95 < 300ms ").unwrap();
    assert_eq!(
        (t.metric, t.op, t.limit),
        (Metric::Percentile(95.0), Op::Lt, 300_000.0)
    );
    assert_eq!(t.expression(), "p95 < 300ms");
    let t = Threshold::parse("p99<=1s").unwrap();
    assert_eq!((t.op, t.limit), (Op::Le, 1_000_000.0));
    assert_eq!(
        Threshold::parse("p99.9<2.5s").unwrap().metric,
        Metric::Percentile(99.9)
    );
    assert_eq!(Threshold::parse("avg<200ms").unwrap().metric, Metric::Avg);
    assert_eq!(Threshold::parse("med<250us").unwrap().limit, 250.0);
    let t = Threshold::parse("failures<1%").unwrap();
    assert_eq!((t.metric, t.limit), (Metric::FailureShare, 1.0));
    let t = Threshold::parse("failures<10").unwrap();
    assert_eq!((t.metric, t.limit), (Metric::FailureCount, 10.0));
    let t = Threshold::parse("rps>50").unwrap();
    assert_eq!((t.metric, t.op, t.limit), (Metric::Rps, Op::Gt, 50.0));
    assert_eq!(Threshold::parse("rps>=50/s").unwrap().op, Op::Ge);
    let t = Threshold::parse("/api/login: p95<300ms").unwrap();
    assert_eq!(t.scope(), Some("/api/login"));
    let t = Threshold::parse("http://h:8080/x: max<2m").unwrap();
    assert_eq!(t.scope(), Some("http://h:8080/x"));
    assert_eq!(t.limit, 120_000_000.0);
}

#[test]
fn errors_teach_the_syntax() {
    let syntax = "a threshold reads [NAME:] METRIC OP VALUE, e.g. \"p95<300ms\", \"avg<200ms\", \"failures<1%\", \"rps>50\" or \"/api/login: p99<=1s\"";
    assert_eq!(
        err("p95<300"),
        format!(
            "threshold \"p95<300\": \"300\" has no unit (write it as 300ms, 1.5s, 250us or 2m); {syntax}"
        )
    );
    assert_eq!(
        err("p95 300ms"),
        format!(
            "threshold \"p95 300ms\": no comparison in \"p95 300ms\" (expected <, <=, > or >=); {syntax}"
        )
    );
    assert_eq!(
        err("latency<3s"),
        format!(
            "threshold \"latency<3s\": unknown metric \"latency\" (expected p50, p95, p99.9 or another pN, med, avg, min, max, failures, rps or requests, or PHASE.pN such as ttfb.p95); {syntax}"
        )
    );
    assert_eq!(
        err("p95==3s"),
        format!(
            "threshold \"p95==3s\": unknown comparison \"==\" (expected <, <=, > or >=); {syntax}"
        )
    );
    assert_eq!(
        err("p95<3 hours"),
        format!(
            "threshold \"p95<3 hours\": unknown unit \"hours\" in \"3 hours\" (expected us, ms, s or m); {syntax}"
        )
    );
    assert_eq!(
        err("rps>5%"),
        format!("threshold \"rps>5%\": \"5%\": \"%\" only applies to failures; {syntax}")
    );
    assert_eq!(
        err("p101<1s"),
        format!(
            "threshold \"p101<1s\": percentile \"p101\" is out of range (p0.1 to p100); {syntax}"
        )
    );
    assert_eq!(
        err("failures<lots"),
        format!("threshold \"failures<lots\": \"lots\" is not a number; {syntax}")
    );
    assert_eq!(err(""), format!("threshold \"\": it is empty; {syntax}"));
    assert_eq!(
        err(": p95<1s"),
        format!("threshold \": p95<1s\": the request name before \":\" is empty; {syntax}")
    );
    assert_eq!(
        err("p95<"),
        format!("threshold \"p95<\": nothing after the comparison in \"p95<\"; {syntax}")
    );
}

fn result(thresholds: &[&str]) -> RunResult {
    let mut tally = Tally::new();
    for i in 1..=100u64 {
        let failed = i > 98;
        tally.record(&RequestSample {
            method: "GET",
            name: if i % 2 == 0 { "/even" } else { "/odd" },
            latency: Duration::from_millis(i),
            response_bytes: 0,
            failure: failed.then_some(Failure {
                kind: FailureKind::Status(500),
                message: "HTTP 500",
            }),
        });
    }
    let mut aggregate = Aggregate::new();
    aggregate.absorb(tally.take());
    aggregate.finish(RunMeta {
        start_unix_ms: 1_000_000,
        end_unix_ms: 1_010_000,
        thresholds: parse_all(thresholds).unwrap(),
        ..RunMeta::default()
    })
}

#[test]
fn evaluates_on_a_result() {
    let r = result(&[
        "p95<300ms",
        "p50<40ms",
        "avg<=50.5ms",
        "max<100ms",
        "failures<1%",
        "failures<=2",
        "rps>9",
        "requests>=100",
        "/even: min>=2ms",
        "/missing: p95<1s",
    ]);
    let outcome: Vec<(&str, bool)> = r
        .verdicts
        .iter()
        .map(|v| (v.expression.as_str(), v.passed))
        .collect();
    assert_eq!(
        outcome,
        [
            ("p95<300ms", true),
            ("p50<40ms", false),
            ("avg<=50.5ms", true),
            ("max<100ms", false),
            ("failures<1%", false),
            ("failures<=2", true),
            ("rps>9", true),
            ("requests>=100", true),
            ("/even: min>=2ms", true),
            ("/missing: p95<1s", false),
        ]
    );
    assert_eq!(r.verdicts[1].observed_text, "50.0 ms");
    assert_eq!(r.verdicts[4].observed_text, "2.00 %");
    assert_eq!(r.verdicts[6].observed_text, "10.0 req/s");
    assert_eq!(r.verdicts[9].observed_text, "no requests named /missing");
    assert_eq!(r.verdicts[9].observed, None);
    assert!(!r.passed());
    assert!(result(&["p95<300ms"]).passed());
}

#[test]
fn a_latency_threshold_without_latency_samples_fails_with_a_reason() {
    let thresholds = parse_all(&["p95<100ms", "avg<1s", "failures<1%", "requests>=2"]).unwrap();
    let mut tally = Tally::new();
    for kind in [FailureKind::CutAtStop, FailureKind::ConnectRefused] {
        tally.record_untimed(&RequestSample {
            method: "GET",
            name: "/hang",
            latency: Duration::from_micros(3),
            response_bytes: 0,
            failure: Some(Failure {
                kind,
                message: "no answer",
            }),
        });
    }
    let mut aggregate = Aggregate::new();
    aggregate.absorb(tally.take());
    let r = aggregate.finish(RunMeta {
        thresholds: thresholds.clone(),
        ..RunMeta::default()
    });
    assert_eq!(
        (r.total.requests, r.total.untimed, r.total.failures),
        (2, 2, 2)
    );
    assert_eq!(r.total.percentile_us(95.0), 0);
    let outcome: Vec<(&str, bool, &str)> = r
        .verdicts
        .iter()
        .map(|v| (v.expression.as_str(), v.passed, v.observed_text.as_str()))
        .collect();
    assert_eq!(
        outcome,
        [
            (
                "p95<100ms",
                false,
                "no latency: none of the 2 requests was answered"
            ),
            (
                "avg<1s",
                false,
                "no latency: none of the 2 requests was answered"
            ),
            ("failures<1%", false, "100.00 %"),
            ("requests>=2", true, "2 requests"),
        ]
    );
    let empty = RunResult::empty(RunMeta {
        thresholds,
        ..RunMeta::default()
    });
    assert_eq!(
        empty.verdicts[0].observed_text,
        "no requests, so no latency"
    );
    assert!(!empty.verdicts[0].passed);
}

#[test]
fn a_monitor_series_is_a_threshold_on_every_second() {
    use crate::monitor::{Monitored, Series, Unit};
    let mut result = result(&[
        "process:postgres.cpu<80%",
        "host.memory<=90%",
        "process:nginx.memory<2GiB",
        "host.net_sent>1MiB/s",
        "host.load1<4",
        "process:redis.cpu<50%",
    ]);
    let series = |name: &str, unit: Unit, values: &[f64]| Series {
        name: name.to_owned(),
        unit,
        points: values
            .iter()
            .enumerate()
            .map(|(i, v)| (i as u64, *v))
            .collect(),
    };
    result.monitors = Monitored {
        series: vec![
            series("process:postgres.cpu", Unit::Percent, &[10.0, 85.0, 20.0]),
            series("host.memory", Unit::Percent, &[50.0, 90.0]),
            series("process:nginx.memory", Unit::Bytes, &[1e9, 1.5e9]),
            series("host.net_sent", Unit::BytesPerSecond, &[2e6, 5e5]),
            series("host.load1", Unit::Number, &[1.0, 3.5]),
        ],
        ..Monitored::default()
    };
    result.evaluate_thresholds();
    let verdicts: Vec<(bool, &str)> = result
        .verdicts
        .iter()
        .map(|v| (v.passed, v.observed_text.as_str()))
        .collect();
    assert_eq!(
        verdicts,
        [
            (false, "85.0 % (highest of 3 seconds)"),
            (true, "90.0 % (highest of 2 seconds)"),
            (true, "1.4 GiB (highest of 2 seconds)"),
            (false, "488.3 KiB/s (lowest of 2 seconds)"),
            (true, "3.50 (highest of 2 seconds)"),
            (
                false,
                "no values of process:redis.cpu (watch it with --monitor process:redis; a process that never ran has none)"
            ),
        ]
    );
    let err = |text: &str| Threshold::parse(text).unwrap_err().problem;
    assert_eq!(
        err("host.cpu<80"),
        "host.cpu is a percentage: write the limit as e.g. 80%"
    );
    assert_eq!(
        err("process:x.memory<80%"),
        "process:x.memory is not a percentage: write the limit in its unit (2GiB, 10MiB/s, 4)"
    );
    assert!(err("process:pg<3").contains("names no series"));
}

#[test]
fn a_phase_threshold_reads_that_phase_of_the_named_requests() {
    let t = Threshold::parse("ttfb.p95<200ms").unwrap();
    assert_eq!(
        (t.phase, t.metric, t.limit),
        (Some("ttfb"), Metric::Percentile(95.0), 200_000.0)
    );
    let t = Threshold::parse("/api/login: Connect.p99 < 50ms").unwrap();
    assert_eq!((t.scope(), t.phase), (Some("/api/login"), Some("connect")));
    assert_eq!(Threshold::parse("p99.9<1s").unwrap().phase, None);
    assert!(err("ttfb.rps>5").contains("\"rps\" is not a latency metric"));
    assert!(err("wait.p95<1s").contains("unknown phase \"wait\""));

    let mut tally = Tally::new();
    for ms in 1..=100u64 {
        let setup = (ms == 1).then_some(crate::stats::Setup {
            dns: Duration::ZERO,
            connect: Duration::from_millis(30),
            tls: None,
        });
        let phases = crate::stats::Phases {
            setup,
            ttfb: Duration::from_millis(ms),
            download: Duration::from_millis(2),
        };
        let sample = RequestSample {
            method: "GET",
            name: "/slow",
            latency: Duration::from_millis(ms + 2),
            response_bytes: 0,
            failure: None,
        };
        tally.record_phased(&sample, &phases);
    }
    let mut aggregate = Aggregate::new();
    aggregate.absorb(tally.take());
    let thresholds = [
        "ttfb.p95<90ms",
        "ttfb.p95<200ms",
        "/slow: download.max<=2ms",
        "connect.p99<50ms",
        "connect.max<10ms",
        "tls.p99<1s",
        "/gone: ttfb.avg<1s",
    ];
    let r = aggregate.finish(RunMeta {
        thresholds: parse_all(&thresholds).unwrap(),
        ..RunMeta::default()
    });
    let outcome: Vec<(&str, bool, &str)> = r
        .verdicts
        .iter()
        .map(|v| (v.expression.as_str(), v.passed, v.observed_text.as_str()))
        .collect();
    let ttfb_p95 = r.total.phases.ttfb.as_ref().unwrap().percentile_us(95.0);
    assert!((95_000..=95_100).contains(&ttfb_p95), "{ttfb_p95}");
    assert_eq!(
        outcome,
        [
            ("ttfb.p95<90ms", false, "95.0 ms (ttfb, 100 samples)"),
            ("ttfb.p95<200ms", true, "95.0 ms (ttfb, 100 samples)"),
            (
                "/slow: download.max<=2ms",
                true,
                "2.0 ms (download, 100 samples)"
            ),
            ("connect.p99<50ms", true, "30.0 ms (connect, 1 samples)"),
            ("connect.max<10ms", false, "30.0 ms (connect, 1 samples)"),
            (
                "tls.p99<1s",
                false,
                "no tls time: no TLS handshake (plain HTTP, or no connection opened)"
            ),
            ("/gone: ttfb.avg<1s", false, "no requests named /gone"),
        ]
    );
}
