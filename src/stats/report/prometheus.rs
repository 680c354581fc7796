//! chorus's own numbers in Prometheus's text exposition format (version 0.0.4), for the page's
//! `GET /metrics`: requests and failures per request name and method as counters, latency
//! per name as a summary whose quantiles come from the exact HDR histogram, the users, and
//! the monitors' newest values. Only formats; the page gathers the numbers.

use std::fmt::Write as _;

use crate::monitor::Unit;
use crate::stats::{Aggregate, EntryStats, RunResult};

/// The quantiles each latency summary gives.
pub const QUANTILES: [f64; 4] = [0.5, 0.9, 0.95, 0.99];

/// What `GET /metrics` shows at one moment.
#[derive(Debug, Default)]
pub struct Exposition<'a> {
    /// One per request name and method (not the `Aggregated` row: Prometheus sums).
    pub entries: Vec<&'a EntryStats>,
    pub users: u64,
    /// Each monitor series' newest value (`host.cpu`, `chorus.memory`, ...).
    pub monitors: Vec<(String, Unit, f64)>,
}

/// A label value as the format wants it: `\`, `"` and newlines escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(value: f64) -> String {
    if value.is_finite() {
        format!("{value}")
    } else if value.is_nan() {
        "NaN".to_owned()
    } else if value > 0.0 {
        "+Inf".to_owned()
    } else {
        "-Inf".to_owned()
    }
}

impl<'a> Exposition<'a> {
    /// A run going: each request name's numbers in `aggregate` so far, with `users` running
    /// and each monitor series' newest value.
    pub fn of_aggregate(
        aggregate: &'a Aggregate,
        users: u64,
        monitors: Vec<(String, Unit, f64)>,
    ) -> Exposition<'a> {
        Exposition {
            entries: aggregate
                .rows()
                .iter()
                .filter_map(|row| aggregate.entry(&row.method, &row.name))
                .collect(),
            users,
            monitors,
        }
    }

    /// A finished run's numbers: no user runs any more, each monitor series at its last
    /// value.
    pub fn of_result(result: &'a RunResult) -> Exposition<'a> {
        let monitors = result
            .monitors
            .series
            .iter()
            .filter_map(|s| s.points.last().map(|(_, v)| (s.name.clone(), s.unit, *v)))
            .collect();
        Exposition {
            entries: result.entries.iter().collect(),
            users: 0,
            monitors,
        }
    }
}

impl Exposition<'_> {
    pub fn render(&self) -> String {
        let mut out = String::new();
        let keyed: Vec<(String, &EntryStats)> = self
            .entries
            .iter()
            .map(|e| {
                let keys = format!(
                    "name=\"{}\",method=\"{}\"",
                    label(&e.name),
                    label(&e.method)
                );
                (keys, *e)
            })
            .collect();
        out.push_str("# HELP chorus_requests_total Requests sent, by request name and method.\n");
        out.push_str("# TYPE chorus_requests_total counter\n");
        for (keys, entry) in &keyed {
            let _ = writeln!(out, "chorus_requests_total{{{keys}}} {}", entry.requests);
        }
        out.push_str(
            "# HELP chorus_failures_total Failed requests (transport, status, check), by request name and method.\n",
        );
        out.push_str("# TYPE chorus_failures_total counter\n");
        for (keys, entry) in &keyed {
            let _ = writeln!(out, "chorus_failures_total{{{keys}}} {}", entry.failures);
        }
        out.push_str(
            "# HELP chorus_latency_seconds Latency of the requests with one (from the HDR histogram: 3 significant digits).\n",
        );
        out.push_str("# TYPE chorus_latency_seconds summary\n");
        for (keys, entry) in &keyed {
            for quantile in QUANTILES {
                let seconds = entry.histogram.quantile_micros(quantile) as f64 / 1e6;
                let _ = writeln!(
                    out,
                    "chorus_latency_seconds{{{keys},quantile=\"{quantile}\"}} {}",
                    number(seconds)
                );
            }
            let sum = entry.latency_sum_us as f64 / 1e6;
            let _ = writeln!(out, "chorus_latency_seconds_sum{{{keys}}} {}", number(sum));
            let _ = writeln!(
                out,
                "chorus_latency_seconds_count{{{keys}}} {}",
                entry.timed()
            );
        }
        out.push_str("# HELP chorus_users Virtual users running.\n");
        out.push_str("# TYPE chorus_users gauge\n");
        let _ = writeln!(out, "chorus_users {}", self.users);
        if !self.monitors.is_empty() {
            out.push_str(
                "# HELP chorus_monitor The newest value of each --monitor series, in its unit.\n",
            );
            out.push_str("# TYPE chorus_monitor gauge\n");
            for (series, unit, value) in &self.monitors {
                let unit = serde_json::to_value(unit)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "chorus_monitor{{series=\"{}\",unit=\"{unit}\"}} {}",
                    label(series),
                    number(*value)
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn counters_quantiles_users_and_monitors_in_the_text_format() {
        let mut entry = EntryStats::new("GET", "/a \"b\"");
        for ms in [10, 20, 30, 40] {
            entry.requests += 1;
            entry.latency_sum_us += ms * 1000;
            entry.histogram.record(Duration::from_millis(ms));
        }
        entry.failures = 1;
        let exposition = Exposition {
            entries: vec![&entry],
            users: 7,
            monitors: vec![("host.cpu".to_owned(), Unit::Percent, 12.5)],
        };
        let text = exposition.render();
        let keys = r#"name="/a \"b\"",method="GET""#;
        for line in [
            format!("chorus_requests_total{{{keys}}} 4"),
            format!("chorus_failures_total{{{keys}}} 1"),
            // The HDR histogram's value at a quantile: the top of its bucket (3 digits).
            format!("chorus_latency_seconds{{{keys},quantile=\"0.5\"}} 0.020015"),
            format!("chorus_latency_seconds{{{keys},quantile=\"0.99\"}} 0.040031"),
            format!("chorus_latency_seconds_sum{{{keys}}} 0.1"),
            format!("chorus_latency_seconds_count{{{keys}}} 4"),
            "chorus_users 7".to_owned(),
            "chorus_monitor{series=\"host.cpu\",unit=\"percent\"} 12.5".to_owned(),
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        // What a Prometheus parser reads back (prometheus-parse does not undo the escapes of
        // a label's value, so only the value is compared).
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
        let requests = scrape
            .samples
            .iter()
            .find(|s| s.metric == "chorus_requests_total")
            .unwrap();
        assert_eq!(requests.value, prometheus_parse::Value::Counter(4.0));
    }
}
