//! The same numbers as `GET /metrics`, as the body of an OTLP/HTTP metrics push
//! (`--otlp URL`): an `ExportMetricsServiceRequest` in OTLP's JSON encoding (the protobuf-JSON
//! mapping with OTLP's rules: lowerCamelCase keys, enums as integers, 64-bit integers as
//! decimal strings), sent with `Content-Type: application/json`. Requests and failures are
//! cumulative monotonic sums, latency a summary with the exposition's quantiles, users and
//! monitors gauges. Only formats; `crate::otlp` sends.

use serde_json::{Value, json};

use super::prometheus::{Exposition, QUANTILES};

/// `AGGREGATION_TEMPORALITY_CUMULATIVE`: each point counts from the run's start.
const CUMULATIVE: u8 = 2;

/// One attribute (`KeyValue` with a string `AnyValue`).
fn attribute(key: &str, value: &str) -> Value {
    json!({"key": key, "value": {"stringValue": value}})
}

/// A request name and method, the attributes of its points.
fn entry_attributes(name: &str, method: &str) -> Value {
    json!([attribute("name", name), attribute("method", method)])
}

/// A metric of `kind` (`sum`, `gauge`, `summary`) with these points; none when it has none.
fn metric(name: &str, description: &str, unit: &str, kind: &str, data: Value) -> Option<Value> {
    if data["dataPoints"].as_array().is_none_or(Vec::is_empty) {
        return None;
    }
    let mut metric = json!({"name": name, "description": description});
    if !unit.is_empty() {
        metric["unit"] = json!(unit);
    }
    metric[kind] = data;
    Some(metric)
}

impl Exposition<'_> {
    /// The push's body: every point counted since `start_unix_nanos`, taken at `now_unix_nanos`.
    pub fn otlp_request(&self, start_unix_nanos: u64, now_unix_nanos: u64) -> Value {
        let (start, now) = (start_unix_nanos.to_string(), now_unix_nanos.to_string());
        let counter = |count: fn(&crate::stats::EntryStats) -> u64| -> Vec<Value> {
            self.entries
                .iter()
                .map(|e| {
                    json!({
                        "attributes": entry_attributes(&e.name, &e.method),
                        "startTimeUnixNano": start,
                        "timeUnixNano": now,
                        "asInt": count(e).to_string(),
                    })
                })
                .collect()
        };
        let latency: Vec<Value> = self
            .entries
            .iter()
            .map(|e| {
                let quantiles: Vec<Value> = QUANTILES
                    .iter()
                    .map(|q| {
                        let seconds = e.histogram.quantile_micros(*q) as f64 / 1e6;
                        json!({"quantile": q, "value": seconds})
                    })
                    .collect();
                json!({
                    "attributes": entry_attributes(&e.name, &e.method),
                    "startTimeUnixNano": start,
                    "timeUnixNano": now,
                    "count": e.timed().to_string(),
                    "sum": e.latency_sum_us as f64 / 1e6,
                    "quantileValues": quantiles,
                })
            })
            .collect();
        // JSON has no NaN or infinity: a monitor value that is not a number is left out.
        let monitors: Vec<Value> = self
            .monitors
            .iter()
            .filter(|(_, _, value)| value.is_finite())
            .map(|(series, unit, value)| {
                let unit = serde_json::to_value(unit)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                json!({
                    "attributes": [attribute("series", series), attribute("unit", &unit)],
                    "timeUnixNano": now,
                    "asDouble": value,
                })
            })
            .collect();
        let sum = |points: Vec<Value>| {
            json!({
                "aggregationTemporality": CUMULATIVE,
                "isMonotonic": true,
                "dataPoints": points,
            })
        };
        let metrics: Vec<Value> = [
            metric(
                "chorus.requests",
                "Requests sent, by request name and method.",
                "{request}",
                "sum",
                sum(counter(|e| e.requests)),
            ),
            metric(
                "chorus.failures",
                "Failed requests (transport, status, check), by request name and method.",
                "{request}",
                "sum",
                sum(counter(|e| e.failures)),
            ),
            metric(
                "chorus.latency",
                "Latency of the requests with one (from the HDR histogram: 3 significant digits).",
                "s",
                "summary",
                json!({"dataPoints": latency}),
            ),
            metric(
                "chorus.users",
                "Virtual users running.",
                "{user}",
                "gauge",
                json!({"dataPoints": [{"timeUnixNano": now, "asInt": self.users.to_string()}]}),
            ),
            metric(
                "chorus.monitor",
                "The newest value of each --monitor series, in its unit (the unit attribute).",
                "",
                "gauge",
                json!({"dataPoints": monitors}),
            ),
        ]
        .into_iter()
        .flatten()
        .collect();
        json!({
            "resourceMetrics": [{
                "resource": {"attributes": [attribute("service.name", "chorus")]},
                "scopeMetrics": [{
                    "scope": {"name": "chorus", "version": env!("CARGO_PKG_VERSION")},
                    "metrics": metrics,
                }],
            }],
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::monitor::Unit;
    use crate::stats::EntryStats;

    fn metric<'a>(body: &'a Value, name: &str) -> &'a Value {
        body["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {body:#}"))
    }

    #[test]
    fn counters_are_cumulative_sums_latency_a_summary_users_and_monitors_gauges() {
        let mut entry = EntryStats::new("POST", "/login");
        for ms in [10, 20, 30, 40] {
            entry.requests += 1;
            entry.latency_sum_us += ms * 1000;
            entry.histogram.record(Duration::from_millis(ms));
        }
        entry.requests += 1;
        entry.untimed = 1;
        entry.failures = 2;
        let exposition = Exposition {
            entries: vec![&entry],
            users: 7,
            monitors: vec![
                ("host.cpu".to_owned(), Unit::Percent, 12.5),
                ("host.load1".to_owned(), Unit::Number, f64::NAN),
            ],
        };
        let body = exposition.otlp_request(1_000, 2_000);
        assert_eq!(
            body["resourceMetrics"][0]["resource"]["attributes"][0],
            json!({"key": "service.name", "value": {"stringValue": "chorus"}})
        );
        let requests = metric(&body, "chorus.requests");
        assert_eq!(requests["sum"]["aggregationTemporality"], 2);
        assert_eq!(requests["sum"]["isMonotonic"], true);
        assert_eq!(
            requests["sum"]["dataPoints"][0],
            json!({
                "attributes": [
                    {"key": "name", "value": {"stringValue": "/login"}},
                    {"key": "method", "value": {"stringValue": "POST"}},
                ],
                "startTimeUnixNano": "1000",
                "timeUnixNano": "2000",
                "asInt": "5",
            })
        );
        assert_eq!(
            metric(&body, "chorus.failures")["sum"]["dataPoints"][0]["asInt"],
            "2"
        );
        let latency = &metric(&body, "chorus.latency")["summary"]["dataPoints"][0];
        assert_eq!(latency["count"], "4");
        assert_eq!(latency["sum"], 0.1);
        assert_eq!(
            latency["quantileValues"][0],
            json!({"quantile": 0.5, "value": 0.020015})
        );
        assert_eq!(latency["quantileValues"].as_array().unwrap().len(), 4);
        assert_eq!(
            metric(&body, "chorus.users")["gauge"]["dataPoints"][0]["asInt"],
            "7"
        );
        let monitors = metric(&body, "chorus.monitor")["gauge"]["dataPoints"]
            .as_array()
            .unwrap();
        assert_eq!(monitors.len(), 1, "the NaN is left out: {monitors:?}");
        assert_eq!(monitors[0]["asDouble"], 12.5);
        assert_eq!(
            monitors[0]["attributes"][1]["value"]["stringValue"],
            "percent"
        );
    }

    #[test]
    fn a_run_without_requests_has_only_users() {
        let body = Exposition::default().otlp_request(1, 2);
        let metrics = body["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
            .as_array()
            .unwrap();
        assert_eq!(metrics.len(), 1);
        assert_eq!(metrics[0]["name"], "chorus.users");
    }
}
