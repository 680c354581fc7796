//! deploy/grafana/chorus.json, the Grafana dashboard of the page's `GET /metrics`: valid
//! JSON whose every panel query names only metrics, labels and quantiles that chorus's
//! exposition really renders (rendered here from real stats by the library's own function),
//! and that together show every metric family the exposition has.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use chorus::monitor::Unit;
use chorus::stats::EntryStats;
use chorus::stats::report::prometheus::Exposition;
use serde_json::Value;

/// What one rendered exposition has: metric names, label names, and quantile values.
#[derive(Debug, Default)]
struct Rendered {
    metrics: BTreeSet<String>,
    labels: BTreeSet<String>,
    quantiles: BTreeSet<String>,
}

fn rendered() -> Rendered {
    let mut entry = EntryStats::new("GET", "/api/courses");
    for ms in [12, 18, 25, 40, 95] {
        entry.requests += 1;
        entry.latency_sum_us += ms * 1000;
        entry.histogram.record(Duration::from_millis(ms));
    }
    entry.failures = 1;
    let units = [
        Unit::Percent,
        Unit::Bytes,
        Unit::BytesPerSecond,
        Unit::Count,
        Unit::Number,
        Unit::PerSecond,
    ];
    let text = Exposition {
        entries: vec![&entry],
        users: 3,
        monitors: units
            .iter()
            .enumerate()
            .map(|(i, unit)| (format!("host.series{i}"), *unit, 1.0))
            .collect(),
    }
    .render();
    let mut found = Rendered::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name_end = line.find(['{', ' ']).unwrap();
        found.metrics.insert(line[..name_end].to_owned());
        if let Some(labels) = line[name_end..]
            .strip_prefix('{')
            .and_then(|l| l.split_once('}'))
        {
            for (label, value) in matchers(labels.0) {
                if label == "quantile" {
                    found.quantiles.insert(value.clone());
                }
                if label == "unit" {
                    found.quantiles.insert(format!("unit:{value}"));
                }
                found.labels.insert(label);
            }
        }
    }
    found
}

/// `a="x",b=~"y"` (a selector's or a sample's labels): (name, value) pairs, values unquoted.
fn matchers(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let op = rest.find(['=', '!']).expect("a label operator");
        let name = rest[..op].trim().to_owned();
        let open = op + rest[op..].find('"').expect("a quoted value");
        let mut close = open + 1;
        let bytes = rest.as_bytes();
        while bytes[close] != b'"' {
            close += if bytes[close] == b'\\' { 2 } else { 1 };
        }
        pairs.push((name, rest[open + 1..close].to_owned()));
        rest = rest[close + 1..]
            .trim_start()
            .trim_start_matches(',')
            .trim();
    }
    pairs
}

/// What a PromQL expression names: metric names, label names (in selectors and in `by (..)`),
/// and the values its selectors give `quantile` and `unit`.
fn named_in(expr: &str) -> Rendered {
    const KEYWORDS: [&str; 11] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "and",
        "or",
        "unless",
        "bool",
        "offset",
    ];
    /// Operators that may be written `sum by (x) (..)`, their grouping before the parenthesis.
    const AGGREGATIONS: [&str; 12] = [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    let mut named = Rendered::default();
    let mut rest = expr;
    let mut grouping = false;
    while let Some(c) = rest.chars().next() {
        if c == '{' {
            let end = rest.find('}').expect("a closed selector");
            for (label, value) in matchers(&rest[1..end]) {
                match label.as_str() {
                    "quantile" if !value.starts_with('$') => {
                        named.quantiles.insert(value);
                    }
                    "unit" => {
                        for unit in value.split('|') {
                            named.quantiles.insert(format!("unit:{unit}"));
                        }
                    }
                    _ => {}
                }
                named.labels.insert(label);
            }
            rest = &rest[end + 1..];
        } else if c == '[' {
            rest = &rest[rest.find(']').expect("a closed range") + 1..];
        } else if c.is_ascii_alphabetic() || c == '_' {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            let word = &rest[..end];
            let after = rest[end..].trim_start();
            if grouping {
                named.labels.insert(word.to_owned());
            } else if KEYWORDS.contains(&word) {
                grouping = matches!(word, "by" | "without" | "on" | "ignoring");
            } else if !after.starts_with('(') && !AGGREGATIONS.contains(&word) {
                named.metrics.insert(word.to_owned());
            }
            rest = &rest[end..];
        } else {
            if c == ')' {
                grouping = false;
            }
            rest = &rest[c.len_utf8()..];
        }
    }
    named
}

/// Every panel, those inside collapsed rows too.
fn panels(list: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for panel in list.as_array().into_iter().flatten() {
        all.push(panel);
        all.extend(panels(&panel["panels"]));
    }
    all
}

#[test]
fn the_parser_reads_selectors_groupings_and_ranges() {
    let named = named_in(
        r#"sum by (method, name) (rate(chorus_requests_total{job=~"$job",quantile="0.9"}[$__rate_interval])) / x"#,
    );
    assert_eq!(
        named.metrics,
        BTreeSet::from(["chorus_requests_total".to_owned(), "x".to_owned()])
    );
    assert_eq!(
        named.labels,
        BTreeSet::from([
            "job".to_owned(),
            "method".to_owned(),
            "name".to_owned(),
            "quantile".to_owned()
        ])
    );
    assert_eq!(named.quantiles, BTreeSet::from(["0.9".to_owned()]));
}

#[test]
fn the_grafana_dashboard_queries_only_what_metrics_renders() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/grafana/chorus.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let dashboard: Value = serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("{}: not JSON: {err}", path.display()));
    let rendered = rendered();
    // The labels Prometheus adds to every scraped series.
    let labels: BTreeSet<String> = rendered
        .labels
        .iter()
        .cloned()
        .chain(["job".to_owned(), "instance".to_owned()])
        .collect();
    let mut used = BTreeSet::new();
    let panels = panels(&dashboard["panels"]);
    assert!(panels.len() >= 6, "{} panels", panels.len());
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or("(untitled)");
        if panel["type"] == "row" {
            continue;
        }
        let targets = panel["targets"].as_array();
        assert!(
            targets.is_some_and(|t| !t.is_empty()),
            "panel {title:?} has no targets"
        );
        for target in targets.unwrap() {
            let expr = target["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("panel {title:?}: a target without expr"));
            let named = named_in(expr);
            assert!(
                !named.metrics.is_empty(),
                "{title:?}: {expr} names no metric"
            );
            let unknown: Vec<_> = named.metrics.difference(&rendered.metrics).collect();
            assert!(
                unknown.is_empty(),
                "{title:?}: {expr} names {unknown:?}, which /metrics does not render; it renders {:?}",
                rendered.metrics
            );
            let unknown: Vec<_> = named.labels.difference(&labels).collect();
            assert!(
                unknown.is_empty(),
                "{title:?}: {expr} uses labels {unknown:?}; /metrics has {labels:?}"
            );
            let unknown: Vec<_> = named.quantiles.difference(&rendered.quantiles).collect();
            assert!(
                unknown.is_empty(),
                "{title:?}: {expr} selects {unknown:?}; /metrics has {:?}",
                rendered.quantiles
            );
            used.extend(named.metrics);
        }
    }
    // Each metric family is on the dashboard.
    for family in [
        "chorus_requests_total",
        "chorus_failures_total",
        "chorus_latency_seconds",
        "chorus_users",
        "chorus_monitor",
    ] {
        assert!(
            rendered.metrics.contains(family),
            "/metrics no longer renders {family}"
        );
        assert!(used.contains(family), "no panel shows {family}");
    }
}
