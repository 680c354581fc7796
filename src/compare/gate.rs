//! The limits a comparison is judged against (`--max-slowdown p95=10%`,
//! `--max-failure-rate-increase 0.5%`) and the breaches that make `chorus compare` exit 1.
//!
//! A breach is a significant change in the wrong direction that is also larger than the limit
//! allows. Without any limit given, the defaults are a "slower" verdict at p95 and a "more
//! failures" verdict, on any request or the aggregate.

use super::{Comparison, Metric, Presence, Verdict};

/// What a comparison may show before it fails.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// The largest relative slowdown allowed per latency metric (0.1 is 10 %).
    pub slowdowns: Vec<(Metric, f64)>,
    /// The largest increase of the failure rate allowed, in percentage points.
    pub failure_rate_increase: Option<f64>,
}

impl Limits {
    /// The limits for the flags given; with neither flag, the defaults (see the module).
    pub fn new(slowdowns: Vec<(Metric, f64)>, failure_rate_increase: Option<f64>) -> Self {
        if slowdowns.is_empty() && failure_rate_increase.is_none() {
            return Self {
                slowdowns: vec![(Metric::P95, 0.0)],
                failure_rate_increase: Some(0.0),
            };
        }
        Self {
            slowdowns,
            failure_rate_increase,
        }
    }
}

/// `--max-slowdown`: `p95=10%`, `p99=0.2`, `mean=5%`.
pub fn parse_slowdown(text: &str) -> Result<(Metric, f64), String> {
    let syntax =
        "a slowdown limit reads METRIC=PERCENT, e.g. p95=10% (metrics: p50, p90, p95, p99, mean)";
    let Some((name, value)) = text.split_once('=') else {
        return Err(format!("{text:?}: {syntax}"));
    };
    let metric = match name.trim().to_ascii_lowercase().as_str() {
        "p50" | "med" | "median" => Metric::P50,
        "p90" => Metric::P90,
        "p95" => Metric::P95,
        "p99" => Metric::P99,
        "mean" | "avg" => Metric::Mean,
        other => {
            return Err(format!(
                "{text:?}: {other:?} is not a metric compare judges; {syntax}"
            ));
        }
    };
    let share = parse_share(value).map_err(|why| format!("{text:?}: {why}; {syntax}"))?;
    Ok((metric, share))
}

/// `--max-failure-rate-increase`: `0.5%` (percentage points of the failure rate).
pub fn parse_failure_rate_increase(text: &str) -> Result<f64, String> {
    let Some(number) = text.trim().strip_suffix('%') else {
        return Err(format!(
            "{text:?}: write the increase in percentage points of the failure rate with a %, e.g. 0.5%"
        ));
    };
    match number.trim().parse::<f64>() {
        Ok(value) if (0.0..=100.0).contains(&value) => Ok(value),
        _ => Err(format!(
            "{text:?}: expected a number of percentage points from 0% to 100%, e.g. 0.5%"
        )),
    }
}

/// `--min-effect`: `5%` or `0.05`.
pub fn parse_min_effect(text: &str) -> Result<f64, String> {
    parse_share(text).map_err(|why| format!("{text:?}: {why}, e.g. 5% or 0.05"))
}

/// `10%` or `0.1` as 0.1, from 0 to 10 (1000 %).
fn parse_share(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let value = match text.strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
        None => text.parse::<f64>(),
    };
    match value {
        Ok(value) if (0.0..=10.0).contains(&value) => Ok(value),
        _ => Err("expected a share from 0% to 1000%".to_owned()),
    }
}

/// One change past a limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Breach {
    /// The row's label (`GET /api/course`, `Aggregated`).
    pub request: String,
    pub metric: Metric,
    /// What happened and what was allowed, in words.
    pub text: String,
}

/// Every change of `comparison` past `limits`, in row order.
pub fn judge(comparison: &Comparison, limits: &Limits) -> Vec<Breach> {
    let mut breaches = Vec::new();
    for row in comparison.all_rows() {
        if row.presence != Presence::Both {
            continue;
        }
        for (metric, allowed) in &limits.slowdowns {
            let Some(change) = row.change(*metric) else {
                continue;
            };
            if change.verdict == Verdict::Worse && change.change > *allowed {
                breaches.push(Breach {
                    request: row.label(),
                    metric: *metric,
                    text: format!(
                        "{} slower by {:.1} % ({:.2} ms -> {:.2} ms; allowed {:.1} %)",
                        metric.label(),
                        change.change * 100.0,
                        change.base,
                        change.new,
                        allowed * 100.0
                    ),
                });
            }
        }
        if let (Some(allowed), Some(change)) = (
            limits.failure_rate_increase,
            row.change(Metric::FailureRate),
        ) {
            if change.verdict == Verdict::Worse && change.change > allowed {
                breaches.push(Breach {
                    request: row.label(),
                    metric: Metric::FailureRate,
                    text: format!(
                        "failure rate up {:.2} percentage points ({:.2} % -> {:.2} %; allowed {allowed:.2})",
                        change.change, change.base, change.new
                    ),
                });
            }
        }
    }
    breaches
}
