//! `--monitor prometheus:URL[#series,...]`: reading a Prometheus text-format scrape into the
//! values of a monitor's series. Plain functions over the scrape's text (parsed with
//! `prometheus-parse`); fetching it is `scrape.rs`'s.
//!
//! Without a selection, the series follow from what the endpoint exposes: node_exporter's
//! machine (`cpu`, `memory`, `load1`, network and disk bytes, named like `host`'s), or a
//! client library's standard `process_*` metrics (`cpu`, `resident_memory`, `open_files`),
//! or else the first few gauges and counters. Counters are shown as rates.

use std::collections::BTreeMap;

use prometheus_parse::{Sample, Scrape, Value};

use super::unit::Unit;

/// At most this many series per endpoint: a glob like `*` on node_exporter matches
/// thousands, which no chart or JSON result should carry.
pub(super) const MAX_SERIES: usize = 40;

/// Whether `name` matches `pattern` (`*`: any run of characters, `?`: one).
pub(super) fn glob_matches(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A quantity read from one scrape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Quantity {
    /// Shown as it is.
    Gauge(f64),
    /// Shown as its rate per second between two scrapes.
    Counter(f64),
    /// Shown as `100 × Δpart / Δwhole` between two scrapes (busy CPU time of all CPU time).
    Share { part: f64, whole: f64 },
}

/// One scrape read: series name (after the monitor's label) -> quantity and the unit of
/// what is shown.
pub(super) type Reading = BTreeMap<String, (Quantity, Unit)>;

/// Parses the exposition text; text with no sample in it (an HTML page, garbage) is refused.
pub(super) fn parse(text: &str) -> Result<Vec<Sample>, String> {
    let lines = text.lines().map(|line| Ok(line.to_owned()));
    let scrape = Scrape::parse(lines).map_err(|err| err.to_string())?;
    if scrape.samples.is_empty() {
        let start: String = text.trim_start().chars().take(60).collect();
        return Err(format!(
            "not Prometheus text format (no metric in {} bytes starting {start:?})",
            text.len()
        ));
    }
    Ok(scrape.samples)
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(*v),
        Value::Histogram(_) | Value::Summary(_) => None,
    }
}

/// The series a selection shows: each matching counter or gauge, each label set its own
/// series; and whether more matched than are kept.
pub(super) fn read_selected(samples: &[Sample], patterns: &[String]) -> (Reading, usize) {
    let mut reading = Reading::new();
    let mut dropped = 0;
    for sample in samples {
        if !patterns.iter().any(|p| glob_matches(p, &sample.metric)) {
            continue;
        }
        let Some(value) = number(&sample.value) else {
            continue;
        };
        let name = series_name(sample);
        if reading.len() >= MAX_SERIES && !reading.contains_key(&name) {
            dropped += 1;
            continue;
        }
        reading.insert(name, quantity(sample, value));
    }
    (reading, dropped)
}

/// How a sample is shown: a counter (or an untyped `_total`) as a rate, in bytes/s when it
/// counts bytes; a gauge of bytes in bytes.
fn quantity(sample: &Sample, value: f64) -> (Quantity, Unit) {
    let counter = matches!(sample.value, Value::Counter(_))
        || matches!(sample.value, Value::Untyped(_)) && sample.metric.ends_with("_total");
    let bytes = sample.metric.ends_with("_bytes") || sample.metric.ends_with("_bytes_total");
    match (counter, bytes) {
        (true, true) => (Quantity::Counter(value), Unit::BytesPerSecond),
        (true, false) => (Quantity::Counter(value), Unit::PerSecond),
        (false, true) => (Quantity::Gauge(value), Unit::Bytes),
        (false, false) => (Quantity::Gauge(value), Unit::Number),
    }
}

/// `metric` or `metric{label="value",...}`; a dot in a label's value is written `_`, as a
/// series' name ends at its last dot (`MONITOR.SERIES`).
fn series_name(sample: &Sample) -> String {
    let labels = sample.labels.to_string();
    if labels.is_empty() {
        sample.metric.clone()
    } else {
        format!("{}{{{}}}", sample.metric, labels.replace('.', "_"))
    }
}

fn sum_where(samples: &[Sample], metric: &str, keep: impl Fn(&Sample) -> bool) -> Option<f64> {
    let mut found = false;
    let mut total = 0.0;
    for sample in samples.iter().filter(|s| s.metric == metric && keep(s)) {
        if let Some(v) = number(&sample.value) {
            found = true;
            total += v;
        }
    }
    found.then_some(total)
}

fn sum(samples: &[Sample], metric: &str) -> Option<f64> {
    sum_where(samples, metric, |_| true)
}

/// The series shown without a selection, from what the endpoint exposes; `None` when it
/// has neither node_exporter's nor the `process_*` metrics.
pub(super) fn read_defaults(samples: &[Sample]) -> Option<Reading> {
    let mut reading = Reading::new();
    let mut put = |name: &str, quantity: Option<Quantity>, unit: Unit| {
        if let Some(quantity) = quantity {
            reading.insert(name.to_owned(), (quantity, unit));
        }
    };
    if samples.iter().any(|s| s.metric == "node_cpu_seconds_total") {
        // As `host`: idle and iowait are not busy.
        let idle = sum_where(samples, "node_cpu_seconds_total", |s| {
            matches!(s.labels.get("mode"), Some("idle" | "iowait"))
        })
        .unwrap_or(0.0);
        let whole = sum(samples, "node_cpu_seconds_total");
        put(
            "cpu",
            whole.map(|whole| Quantity::Share {
                part: whole - idle,
                whole,
            }),
            Unit::Percent,
        );
        let total = sum(samples, "node_memory_MemTotal_bytes");
        let available = sum(samples, "node_memory_MemAvailable_bytes");
        let used = match (total, available) {
            (Some(total), Some(available)) if total > 0.0 => {
                Some(Quantity::Gauge(100.0 * (total - available) / total))
            }
            _ => None,
        };
        put("memory", used, Unit::Percent);
        put(
            "load1",
            sum(samples, "node_load1").map(Quantity::Gauge),
            Unit::Number,
        );
        let not_loopback = |s: &Sample| s.labels.get("device") != Some("lo");
        for (name, metric) in [
            ("net_received", "node_network_receive_bytes_total"),
            ("net_sent", "node_network_transmit_bytes_total"),
        ] {
            let value = sum_where(samples, metric, not_loopback);
            put(name, value.map(Quantity::Counter), Unit::BytesPerSecond);
        }
        for (name, metric) in [
            ("disk_read", "node_disk_read_bytes_total"),
            ("disk_write", "node_disk_written_bytes_total"),
        ] {
            put(
                name,
                sum(samples, metric).map(Quantity::Counter),
                Unit::BytesPerSecond,
            );
        }
        return Some(reading);
    }
    if samples.iter().any(|s| s.metric.starts_with("process_")) {
        // CPU seconds per second, in percent of one core like `process:PID`'s.
        put(
            "cpu",
            sum(samples, "process_cpu_seconds_total").map(|v| Quantity::Counter(100.0 * v)),
            Unit::Percent,
        );
        put(
            "resident_memory",
            sum(samples, "process_resident_memory_bytes").map(Quantity::Gauge),
            Unit::Bytes,
        );
        put(
            "open_files",
            sum(samples, "process_open_fds").map(Quantity::Gauge),
            Unit::Count,
        );
        return Some(reading);
    }
    None
}

/// What each series shows now, given the reading before (`elapsed` seconds earlier): a
/// counter needs two readings, and one that went down (the exporter restarted) shows
/// nothing this time.
pub(super) fn values(now: &Reading, before: Option<(&Reading, f64)>) -> Vec<(String, Unit, f64)> {
    let mut out = Vec::new();
    for (name, (quantity, unit)) in now {
        let value = match *quantity {
            Quantity::Gauge(v) => Some(v),
            Quantity::Counter(v) => before.and_then(|(before, elapsed)| match before.get(name) {
                Some((Quantity::Counter(v0), _)) if v >= *v0 && elapsed > 0.0 => {
                    Some((v - v0) / elapsed)
                }
                _ => None,
            }),
            Quantity::Share { part, whole } => {
                before.and_then(|(before, _)| match before.get(name) {
                    Some((
                        Quantity::Share {
                            part: p0,
                            whole: w0,
                        },
                        _,
                    )) if whole > *w0 && part >= *p0 => Some(100.0 * (part - p0) / (whole - w0)),
                    _ => None,
                })
            }
        };
        if let Some(value) = value.filter(|v| v.is_finite()) {
            out.push((name.clone(), *unit, value));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::spec::parse_selection;

    const NODE: &str = r#"# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0",mode="idle"} 100
node_cpu_seconds_total{cpu="0",mode="iowait"} 10
node_cpu_seconds_total{cpu="0",mode="user"} 50
node_cpu_seconds_total{cpu="1",mode="idle"} 100
node_cpu_seconds_total{cpu="1",mode="user"} 40
# TYPE node_load1 gauge
node_load1 0.5
# TYPE node_memory_MemAvailable_bytes gauge
node_memory_MemAvailable_bytes 2.5e+09
# TYPE node_memory_MemTotal_bytes gauge
node_memory_MemTotal_bytes 1e+10
# TYPE node_network_receive_bytes_total counter
node_network_receive_bytes_total{device="eth0"} 1000
node_network_receive_bytes_total{device="lo"} 5000
# TYPE node_network_transmit_bytes_total counter
node_network_transmit_bytes_total{device="eth0"} 300
# TYPE node_scrape_collector_duration_seconds gauge
node_scrape_collector_duration_seconds{collector="cpu"} 0.001
"#;

    fn later(text: &str) -> String {
        text.replace("\"idle\"} 100", "\"idle\"} 101")
            .replace("\"user\"} 50", "\"user\"} 52")
            .replace("\"eth0\"} 1000", "\"eth0\"} 3000")
    }

    fn shown(text_before: &str, text_now: &str, selection: &[String]) -> Vec<(String, Unit, f64)> {
        let read = |text: &str| {
            let samples = parse(text).unwrap();
            if selection.is_empty() {
                read_defaults(&samples).unwrap()
            } else {
                read_selected(&samples, selection).0
            }
        };
        let before = read(text_before);
        values(&read(text_now), Some((&before, 2.0)))
    }

    fn value(shown: &[(String, Unit, f64)], name: &str) -> Option<(Unit, f64)> {
        shown
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, unit, v)| (*unit, *v))
    }

    #[test]
    fn node_exporter_defaults_read_like_the_host_monitor() {
        let shown = shown(NODE, &later(NODE), &[]);
        // Idle went up 1 on each CPU and user 2 on one: busy 2 of 4 seconds.
        assert_eq!(value(&shown, "cpu"), Some((Unit::Percent, 50.0)));
        assert_eq!(value(&shown, "memory"), Some((Unit::Percent, 75.0)));
        assert_eq!(value(&shown, "load1"), Some((Unit::Number, 0.5)));
        // Loopback is not the network; 2000 bytes in 2 s.
        assert_eq!(
            value(&shown, "net_received"),
            Some((Unit::BytesPerSecond, 1000.0))
        );
        assert_eq!(value(&shown, "net_sent"), Some((Unit::BytesPerSecond, 0.0)));
        assert_eq!(value(&shown, "disk_read"), None);
    }

    #[test]
    fn a_first_reading_shows_gauges_only_and_a_counter_that_went_down_shows_nothing() {
        let samples = parse(NODE).unwrap();
        let first = values(&read_defaults(&samples).unwrap(), None);
        let names: Vec<&str> = first.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(names, ["load1", "memory"]);
        let restarted = NODE.replace("\"eth0\"} 1000", "\"eth0\"} 10");
        let shown = shown(NODE, &restarted, &[]);
        assert_eq!(value(&shown, "net_received"), None);
    }

    #[test]
    fn a_selection_keeps_each_label_set_and_shows_counters_as_rates() {
        let selection = parse_selection("node_network_*_bytes_total,node_load?").unwrap();
        let shown = shown(NODE, &later(NODE), &selection);
        assert_eq!(
            value(&shown, "node_network_receive_bytes_total{device=\"eth0\"}"),
            Some((Unit::BytesPerSecond, 1000.0))
        );
        assert_eq!(
            value(&shown, "node_network_receive_bytes_total{device=\"lo\"}"),
            Some((Unit::BytesPerSecond, 0.0))
        );
        assert_eq!(value(&shown, "node_load1"), Some((Unit::Number, 0.5)));
        assert_eq!(shown.len(), 4, "{shown:?}");
    }

    #[test]
    fn an_application_s_process_metrics_are_its_defaults() {
        let text = "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 10\n\
                    # TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 1048576\n\
                    process_open_fds 12\nhttp_requests_total{path=\"/v1.2\"} 3\n";
        let now = text.replace("seconds_total 10", "seconds_total 11");
        let shown = shown(text, &now, &[]);
        assert_eq!(value(&shown, "cpu"), Some((Unit::Percent, 50.0)));
        assert_eq!(
            value(&shown, "resident_memory"),
            Some((Unit::Bytes, 1048576.0))
        );
        assert_eq!(value(&shown, "open_files"), Some((Unit::Count, 12.0)));
        // An untyped `_total` is a counter; a dot in a label's value does not end the name.
        let selected = shown_selected(text);
        assert_eq!(
            value(&selected, "http_requests_total{path=\"/v1_2\"}"),
            Some((Unit::PerSecond, 0.0))
        );
        assert!(read_defaults(&parse("up 1\n").unwrap()).is_none());
    }

    fn shown_selected(text: &str) -> Vec<(String, Unit, f64)> {
        shown(text, text, &["http_*".to_owned()])
    }

    #[test]
    fn garbage_and_bad_selections_are_refused_with_what_to_write() {
        let err = parse("<html><body>Not found</body></html>").unwrap_err();
        assert_eq!(
            err,
            "not Prometheus text format (no metric in 35 bytes starting \"<html><body>Not found</body></html>\")"
        );
        assert!(
            parse_selection("node_load1,")
                .unwrap_err()
                .contains("an empty series name")
        );
        let err = parse_selection("node_cpu{mode=\"idle\"}").unwrap_err();
        assert!(
            err.contains("'{' in \"node_cpu{mode=\\\"idle\\\"}\""),
            "{err}"
        );
    }

    #[test]
    fn globs_match_whole_names() {
        assert!(glob_matches("node_*", "node_load1"));
        assert!(glob_matches("node_load?", "node_load1"));
        assert!(glob_matches("*_bytes_total", "node_disk_read_bytes_total"));
        assert!(glob_matches("a*b*c", "aXbYc"));
        assert!(!glob_matches("node_load?", "node_load15"));
        assert!(!glob_matches("load1", "node_load1"));
        assert!(glob_matches("*", ""));
    }

    #[test]
    fn a_wide_selection_is_cut_at_the_limit() {
        let text: String = (0..MAX_SERIES + 5)
            .map(|i| format!("m{{i=\"{i}\"}} 1\n"))
            .collect();
        let (reading, dropped) = read_selected(&parse(&text).unwrap(), &["m".to_owned()]);
        assert_eq!((reading.len(), dropped), (MAX_SERIES, 5));
    }
}
