//! The page's JSON views of a run: rows, failures, exceptions and history points, from a
//! live `Aggregate` or a finished `RunResult`, and what changed since the last update. Pure
//! functions of what they are given; `runs` decides when to send them.

use serde_json::{Value, json};

use crate::engine::RunState;
use crate::stats::capacity::Capacity;
use crate::stats::{Aggregate, EntryStats, HistoryPoint, LiveRow, RunResult};

/// At most this many history points go to a page that connects; older ones are thinned.
const MAX_FULL_HISTORY: usize = 1800;

/// Everything a page shows of a run in progress, from its aggregate: every row, the
/// failures, the exceptions and the history (thinned).
pub(crate) fn live_json(aggregate: &Aggregate) -> Value {
    let rows: Vec<Value> = aggregate
        .rows()
        .iter()
        .map(|row| live_row(aggregate, row))
        .collect();
    let total = aggregate.total_row();
    json!({
        "rows": rows,
        "aggregated": page_row(aggregate, "", "", total.current_rps, total.current_failures_per_sec),
        "failures": failures_json(aggregate),
        "exceptions": exceptions_json(aggregate),
        "history": thin(&aggregate.history()).iter().map(point_json).collect::<Vec<_>>(),
    })
}

pub(super) fn state_name(state: RunState) -> &'static str {
    match state {
        RunState::Spawning => "spawning",
        RunState::Running => "running",
        RunState::Stopping => "stopping",
        RunState::Stopped => "stopped",
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn entry_row(entry: &EntryStats, current_rps: f64, current_fps: f64) -> Value {
    let empty = entry.requests == 0;
    json!({
        "method": entry.method,
        "name": if entry.name.is_empty() { "Aggregated" } else { entry.name.as_str() },
        "requests": entry.requests,
        "failures": entry.failures,
        "median_ms": (!empty).then(|| ms(entry.percentile_us(50.0))),
        "p90_ms": (!empty).then(|| ms(entry.percentile_us(90.0))),
        "p95_ms": (!empty).then(|| ms(entry.percentile_us(95.0))),
        "p99_ms": (!empty).then(|| ms(entry.percentile_us(99.0))),
        "avg_ms": (!empty).then(|| entry.avg_ms()),
        "min_ms": (!empty).then(|| entry.min_ms()),
        "max_ms": (!empty).then(|| entry.max_ms()),
        "avg_size": (!empty).then(|| entry.avg_content_bytes()),
        "current_rps": current_rps,
        "current_fps": current_fps,
        "connect_p95_ms": phase_ms(entry, "connect", 95.0),
        "tls_p95_ms": phase_ms(entry, "tls", 95.0),
        "ttfb_p95_ms": phase_ms(entry, "ttfb", 95.0),
        "download_p95_ms": phase_ms(entry, "download", 95.0),
    })
}

/// A phase's percentile in ms; `None` when the phase was not measured.
fn phase_ms(entry: &EntryStats, phase: &str, percentile: f64) -> Option<f64> {
    let times = entry.phases.get(phase).filter(|t| t.count > 0)?;
    Some(ms(times.percentile_us(percentile)))
}

/// A row of the live table, with the aggregate's percentiles.
pub(super) fn live_row(aggregate: &Aggregate, row: &LiveRow) -> Value {
    page_row(
        aggregate,
        &row.method,
        &row.name,
        row.current_rps,
        row.current_failures_per_sec,
    )
}

/// The `Aggregated` row.
pub(super) fn total_row(aggregate: &Aggregate, current_rps: f64, current_fps: f64) -> Value {
    entry_row(aggregate.total(), current_rps, current_fps)
}

fn page_row(
    aggregate: &Aggregate,
    method: &str,
    name: &str,
    current_rps: f64,
    current_fps: f64,
) -> Value {
    if method.is_empty() && name.is_empty() {
        return total_row(aggregate, current_rps, current_fps);
    }
    match aggregate.entry(method, name) {
        Some(entry) => entry_row(entry, current_rps, current_fps),
        None => entry_row(&EntryStats::new(method, name), current_rps, current_fps),
    }
}

fn failures_of<'a>(entries: impl Iterator<Item = &'a EntryStats>) -> Value {
    let mut list = Vec::new();
    for entry in entries {
        for failure in &entry.failures_by_kind {
            list.push(json!({
                "method": entry.method,
                "name": entry.name,
                "kind": failure.kind.to_string(),
                "occurrences": failure.count,
                "message": failure.message,
            }));
        }
    }
    Value::Array(list)
}

pub(super) fn failures_json(aggregate: &Aggregate) -> Value {
    let rows = aggregate.rows();
    failures_of(
        rows.iter()
            .filter_map(|row| aggregate.entry(&row.method, &row.name)),
    )
}

pub(super) fn exceptions_json(aggregate: &Aggregate) -> Value {
    Value::Array(
        aggregate
            .errors()
            .iter()
            .map(|e| json!({ "count": e.count, "message": e.message }))
            .collect(),
    )
}

pub(super) fn point_json(point: &HistoryPoint) -> Value {
    json!({
        "t": point.unix_seconds,
        "users": point.users,
        "rps": point.rps,
        "fps": point.failures_per_sec,
        "p50": ms(point.p50_us()),
        "p95": ms(point.p95_us()),
    })
}

pub(super) fn thin(points: &[HistoryPoint]) -> Vec<HistoryPoint> {
    if points.len() <= MAX_FULL_HISTORY {
        return points.to_vec();
    }
    let step = points.len().div_ceil(MAX_FULL_HISTORY);
    points.iter().step_by(step).cloned().collect()
}

pub(super) fn result_json(result: &RunResult) -> Value {
    let duration = result.duration_secs().max(1e-9);
    let rows: Vec<Value> = result
        .entries
        .iter()
        .map(|e| {
            entry_row(
                e,
                e.requests as f64 / duration,
                e.failures as f64 / duration,
            )
        })
        .collect();
    json!({
        "rows": rows,
        "aggregated": entry_row(&result.total, result.total.requests as f64 / duration, result.total.failures as f64 / duration),
        "failures": failures_of(result.entries.iter()),
        "exceptions": Value::Array(result.errors.iter().map(|e| json!({ "count": e.count, "message": e.message })).collect()),
        "history": thin(&result.history).iter().map(point_json).collect::<Vec<_>>(),
        "system": super::system::result_system_json(&result.monitors, result.meta.start_unix_ms),
        "capacity": result.capacity.as_ref().map(capacity_json),
    })
}

/// A capacity search's curve and outcome, so far or at its end (`--find-capacity`, or a search
/// started on the page): each step's rate against its p50/p95/p99 and failures.
pub(super) fn capacity_json(capacity: &Capacity) -> Value {
    json!({
        "conditions": capacity.conditions,
        "per_second": capacity.per_second,
        "ended": capacity.ended,
        "steps": capacity.steps.iter().map(|step| json!({
            "per_second": step.per_second,
            "rps": step.rps(),
            "requests": step.requests,
            "failures": step.failures,
            "failure_percent": step.failure_percent(),
            "dropped_iterations": step.dropped_iterations,
            "p50_ms": ms(step.p50_us),
            "p95_ms": ms(step.p95_us),
            "p99_ms": ms(step.p99_us),
            "held": step.held,
            "why": step.why,
        })).collect::<Vec<_>>(),
    })
}

/// One name's time broken down (`GET /api/stats/phases`): each measured phase's count, mean
/// and percentiles in ms, in the order a request goes through them.
pub(super) fn phases_json(entry: &EntryStats) -> Value {
    let phases: Vec<Value> = entry
        .phases
        .all()
        .into_iter()
        .filter_map(|(phase, times)| {
            let times = times.filter(|t| t.count > 0)?;
            Some(json!({
                "phase": phase,
                "count": times.count,
                "avg_ms": times.avg_us() / 1000.0,
                "p50_ms": ms(times.percentile_us(50.0)),
                "p90_ms": ms(times.percentile_us(90.0)),
                "p95_ms": ms(times.percentile_us(95.0)),
                "p99_ms": ms(times.percentile_us(99.0)),
                "max_ms": ms(times.percentile_us(100.0)),
            }))
        })
        .collect();
    json!({ "method": entry.method, "name": entry.name, "requests": entry.requests, "phases": phases })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::stats::{Phases, RequestSample, RunMeta, Setup, Tally};

    #[test]
    fn a_row_carries_each_measured_phases_p95_and_null_for_the_others() {
        let mut tally = Tally::new();
        for ms in 1..=20u64 {
            let sample = RequestSample {
                method: "GET",
                name: "/a",
                latency: Duration::from_millis(ms + 1),
                response_bytes: 0,
                failure: None,
            };
            let phases = Phases {
                setup: (ms == 1).then_some(Setup {
                    connect: Duration::from_millis(3),
                    ..Setup::default()
                }),
                ttfb: Duration::from_millis(ms),
                download: Duration::from_millis(1),
            };
            tally.record_phased(&sample, &phases);
        }
        let mut aggregate = Aggregate::new();
        aggregate.absorb(tally.take());
        let page = live_json(&aggregate);
        let row = &page["rows"][0];
        // Within the histogram's precision (3 significant digits).
        let near_19 = |value: &Value| value.as_f64().is_some_and(|ms| (ms - 19.0).abs() < 0.02);
        assert!(near_19(&row["ttfb_p95_ms"]), "{row}");
        assert_eq!(row["download_p95_ms"], json!(1.0), "{row}");
        assert_eq!(row["connect_p95_ms"], json!(3.0), "{row}");
        assert_eq!(row["tls_p95_ms"], Value::Null, "plain HTTP: {row}");
        let result = aggregate.finish(RunMeta::default());
        let total = &result_json(&result)["aggregated"];
        assert!(near_19(&total["ttfb_p95_ms"]), "{total}");
        // A row opened: each measured phase, in the order a request goes through them.
        let detail = phases_json(&result.entries[0]);
        let phases: Vec<&str> = detail["phases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["phase"].as_str().unwrap())
            .collect();
        assert_eq!(phases, ["dns", "connect", "ttfb", "download"], "{detail}");
        let ttfb = &detail["phases"][2];
        assert_eq!(ttfb["count"], json!(20));
        assert!(near_19(&ttfb["p95_ms"]), "{ttfb}");
        assert_eq!(ttfb["max_ms"], json!(20.0), "{ttfb}");
        assert_eq!(
            detail["phases"][1]["count"],
            json!(1),
            "one connect: {detail}"
        );
    }
}
