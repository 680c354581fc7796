//! Pass/fail criteria of a run: parsed once from text (the CLI's `--threshold` and the
//! scenario's `thresholds:`), evaluated on a [`RunResult`] into [`Verdict`]s.
//!
//! # Syntax
//!
//! ```text
//! [NAME:] METRIC OP VALUE
//! ```
//!
//! - `METRIC`: `p50` … `p99.99` (any percentile `pN`, `0 < N <= 100`), `med`, `avg`, `min`,
//!   `max` (latency); `failures` (a share with `%`, else a count); `rps` (requests per
//!   second over the run); `requests` (a count).
//! - `OP`: `<`, `<=`, `>`, `>=`.
//! - `VALUE`: latencies need a unit: `us`, `ms`, `s` or `m` (`300ms`, `1.5s`); `failures`
//!   takes `1%` or `10`; `rps` takes `50` (or `50/s`); `requests` a whole number.
//! - `PHASE.METRIC` (`ttfb.p95`, `connect.p99`, `download.avg`): a latency metric of one
//!   phase of the requests instead of their whole latency; `PHASE` is `dns`, `connect`,
//!   `tls`, `ttfb` or `download` (see [`super::PhaseStats`]: `dns`, `connect` and `tls`
//!   count only the requests that opened a connection).
//! - `NAME:` scopes the threshold to the requests counted under that name (any method);
//!   without it the threshold applies to all requests (the `Aggregated` row). The scope is
//!   everything before the last `:`, so names with colons work: `http://h/x: p95<1s`.
//!
//! Examples: `p95<300ms`, `p99<=1s`, `avg<200ms`, `failures<1%`, `failures<10`, `rps>50`,
//! `/api/login: p95<300ms`, `ttfb.p95<200ms`, `/api/login: connect.p99<50ms`.
//!
//! A monitor's series (`--monitor`, see docs/monitoring.md) is a threshold too: `SERIES OP
//! VALUE`, e.g. `process:postgres.cpu<80%`, `host.memory<90%`, `process:nginx.memory<2GiB`,
//! `host.net_sent<100MiB/s`, `host.load1<4`. It holds when every second's value does (the
//! highest for `<`/`<=`, the lowest for `>`/`>=`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{EntryStats, PHASE_NAMES, RunResult};

const SYNTAX: &str = "a threshold reads [NAME:] METRIC OP VALUE, e.g. \"p95<300ms\", \"avg<200ms\", \"failures<1%\", \"rps>50\" or \"/api/login: p99<=1s\"";

/// A parsed threshold. Serialises as its expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Threshold {
    expression: String,
    scope: Option<String>,
    metric: Metric,
    op: Op,
    /// In the metric's base unit: µs for latencies, percent, count or requests/s; for a
    /// monitor's series, its own unit (percent, bytes, bytes/s, a count).
    limit: f64,
    /// A monitor's series (`host.cpu`) instead of requests.
    #[serde(skip)]
    series: Option<String>,
    /// One phase of the requests (`ttfb`) instead of their whole latency.
    #[serde(skip)]
    phase: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Metric {
    Percentile(f64),
    Avg,
    Min,
    Max,
    FailureShare,
    FailureCount,
    Rps,
    Requests,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn holds(self, observed: f64, limit: f64) -> bool {
        match self {
            Op::Lt => observed < limit,
            Op::Le => observed <= limit,
            Op::Gt => observed > limit,
            Op::Ge => observed >= limit,
        }
    }
}

/// A threshold that could not be parsed: the expression, what is wrong, and the syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("threshold {expression:?}: {problem}; {SYNTAX}")]
pub struct ThresholdError {
    pub expression: String,
    pub problem: String,
}

/// The outcome of one threshold on a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The threshold as written.
    pub expression: String,
    /// The observed value in the metric's display unit (ms, %, count, requests/s); `None`
    /// when there was nothing to observe (no request of that name).
    pub observed: Option<f64>,
    /// The observed value as people read it: `"312.0 ms"`, `"0.40 %"`, `"no requests named /x"`.
    pub observed_text: String,
    pub passed: bool,
}

/// Parses several thresholds, all or nothing.
pub fn parse_all<S: AsRef<str>>(expressions: &[S]) -> Result<Vec<Threshold>, ThresholdError> {
    expressions
        .iter()
        .map(|e| Threshold::parse(e.as_ref()))
        .collect()
}

impl Threshold {
    /// Parses one expression (see the module documentation for the syntax).
    pub fn parse(expression: &str) -> Result<Self, ThresholdError> {
        let expression = expression.trim();
        let error = |problem: String| ThresholdError {
            expression: expression.to_owned(),
            problem,
        };
        if expression.is_empty() {
            return Err(error("it is empty".to_owned()));
        }
        if ["process:", "host.", "chorus.", "prometheus:", "worker:"]
            .iter()
            .any(|prefix| expression.starts_with(prefix))
        {
            return parse_monitor(expression).map_err(error);
        }
        let (scope, condition) = match expression.rsplit_once(':') {
            Some((scope, condition)) => {
                let scope = scope.trim();
                if scope.is_empty() {
                    return Err(error("the request name before \":\" is empty".to_owned()));
                }
                (Some(scope.to_owned()), condition.trim())
            }
            None => (None, expression),
        };
        let Some(op_at) = condition.find(['<', '>', '=']) else {
            return Err(error(format!(
                "no comparison in {condition:?} (expected <, <=, > or >=)"
            )));
        };
        let metric_text = condition[..op_at].trim();
        let rest = &condition[op_at..];
        let (op, value_text) = if let Some(v) = rest.strip_prefix("<=") {
            (Op::Le, v)
        } else if let Some(v) = rest.strip_prefix(">=") {
            (Op::Ge, v)
        } else if let Some(v) = rest.strip_prefix('<') {
            (Op::Lt, v)
        } else if let Some(v) = rest.strip_prefix('>') {
            (Op::Gt, v)
        } else {
            let op: String = rest.chars().take_while(|c| "<>=!".contains(*c)).collect();
            return Err(error(format!(
                "unknown comparison {op:?} (expected <, <=, > or >=)"
            )));
        };
        let value_text = value_text.trim();
        if value_text.is_empty() {
            return Err(error(format!(
                "nothing after the comparison in {condition:?}"
            )));
        }
        let (phase, metric_text) = split_phase(metric_text).map_err(error)?;
        let metric = parse_metric(metric_text).map_err(error)?;
        if phase.is_some() && !metric.is_latency() {
            return Err(error(format!(
                "{metric_text:?} is not a latency metric: a phase takes pN, med, avg, min or max (e.g. ttfb.p95<200ms)"
            )));
        }
        let (metric, limit) = parse_limit(metric, value_text).map_err(error)?;
        Ok(Self {
            expression: expression.to_owned(),
            scope,
            metric,
            op,
            limit,
            series: None,
            phase,
        })
    }

    /// The expression as written.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The request name this threshold is scoped to, if any.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// Evaluates this threshold on `result`.
    pub fn evaluate(&self, result: &RunResult) -> Verdict {
        if let Some(series) = &self.series {
            return self.evaluate_monitor(series, result);
        }
        let scoped;
        let entry: &EntryStats = match &self.scope {
            None => &result.total,
            Some(name) => match result.entries_named(name) {
                Some(found) => {
                    scoped = found;
                    &scoped
                }
                None => {
                    return Verdict {
                        expression: self.expression.clone(),
                        observed: None,
                        observed_text: format!("no requests named {name}"),
                        passed: false,
                    };
                }
            },
        };
        if let Some(phase) = self.phase {
            return self.evaluate_phase(phase, entry);
        }
        if self.metric.is_latency() && entry.timed() == 0 {
            // Nothing answered: a latency of 0 would pass any limit.
            let observed_text = if entry.requests == 0 {
                "no requests, so no latency".to_owned()
            } else {
                format!(
                    "no latency: none of the {} requests was answered",
                    entry.requests
                )
            };
            return Verdict {
                expression: self.expression.clone(),
                observed: None,
                observed_text,
                passed: false,
            };
        }
        // Observed in the base unit (what `limit` is in) and in the display unit.
        let (base, text) = match self.metric {
            Metric::Percentile(_) | Metric::Avg | Metric::Min | Metric::Max => {
                let micros = match self.metric {
                    Metric::Percentile(p) => entry.percentile_us(p) as f64,
                    Metric::Avg => entry.avg_ms() * 1000.0,
                    Metric::Min => entry.min_ms() * 1000.0,
                    _ => entry.max_us as f64,
                };
                (micros, format!("{:.1} ms", micros / 1000.0))
            }
            Metric::FailureShare => {
                let share = entry.failure_percent();
                (share, format!("{share:.2} %"))
            }
            Metric::FailureCount => (
                entry.failures as f64,
                format!("{} failures", entry.failures),
            ),
            Metric::Rps => {
                let rps = result.rps(entry);
                (rps, format!("{rps:.1} req/s"))
            }
            Metric::Requests => (
                entry.requests as f64,
                format!("{} requests", entry.requests),
            ),
        };
        let display = match self.metric {
            Metric::Percentile(_) | Metric::Avg | Metric::Min | Metric::Max => base / 1000.0,
            _ => base,
        };
        Verdict {
            expression: self.expression.clone(),
            observed: Some(display),
            observed_text: text,
            passed: self.op.holds(base, self.limit),
        }
    }
}

impl Threshold {
    /// A latency metric of one phase of `entry`'s requests.
    fn evaluate_phase(&self, phase: &str, entry: &EntryStats) -> Verdict {
        let Some(times) = entry.phases.get(phase).filter(|t| t.count > 0) else {
            let why = match phase {
                "tls" => "no TLS handshake (plain HTTP, or no connection opened)",
                "dns" | "connect" => "no connection opened",
                _ => "no request answered",
            };
            return Verdict {
                expression: self.expression.clone(),
                observed: None,
                observed_text: format!("no {phase} time: {why}"),
                passed: false,
            };
        };
        let micros = match self.metric {
            Metric::Percentile(p) => times.percentile_us(p) as f64,
            Metric::Avg => times.avg_us(),
            Metric::Min => times.min_us as f64,
            _ => times.max_us as f64,
        };
        Verdict {
            expression: self.expression.clone(),
            observed: Some(micros / 1000.0),
            observed_text: format!(
                "{:.1} ms ({phase}, {} samples)",
                micros / 1000.0,
                times.count
            ),
            passed: self.op.holds(micros, self.limit),
        }
    }

    fn evaluate_monitor(&self, name: &str, result: &RunResult) -> Verdict {
        let found = result
            .monitors
            .series
            .iter()
            .find(|s| s.name == name)
            .filter(|s| !s.points.is_empty());
        let Some(series) = found else {
            let monitor = name.rsplit_once('.').map_or(name, |(monitor, _)| monitor);
            return Verdict {
                expression: self.expression.clone(),
                observed: None,
                observed_text: format!(
                    "no values of {name} (watch it with --monitor {monitor}; a process that never ran has none)"
                ),
                passed: false,
            };
        };
        let values = series.points.iter().map(|(_, v)| *v);
        let observed = match self.op {
            Op::Lt | Op::Le => values.fold(f64::NEG_INFINITY, f64::max),
            Op::Gt | Op::Ge => values.fold(f64::INFINITY, f64::min),
        };
        let text = series.unit.show(observed);
        let which = match self.op {
            Op::Lt | Op::Le => "highest",
            Op::Gt | Op::Ge => "lowest",
        };
        Verdict {
            expression: self.expression.clone(),
            observed: Some(observed),
            observed_text: format!("{text} ({which} of {} seconds)", series.points.len()),
            passed: self.op.holds(observed, self.limit),
        }
    }
}

/// `SERIES OP VALUE` for a monitor's series: the value in the series' unit (`80%`, `2GiB`,
/// `10MiB/s`, `4`).
fn parse_monitor(expression: &str) -> Result<Threshold, String> {
    let Some(op_at) = expression.find(['<', '>']) else {
        return Err(format!(
            "no comparison in {expression:?} (expected <, <=, > or >=)"
        ));
    };
    let series = expression[..op_at].trim();
    let rest = &expression[op_at..];
    let (op, value) = if let Some(v) = rest.strip_prefix("<=") {
        (Op::Le, v)
    } else if let Some(v) = rest.strip_prefix(">=") {
        (Op::Ge, v)
    } else if let Some(v) = rest.strip_prefix('<') {
        (Op::Lt, v)
    } else {
        (Op::Gt, &rest[1..])
    };
    let Some((_, quantity)) = series
        .rsplit_once('.')
        .filter(|(m, q)| !m.is_empty() && !q.is_empty())
    else {
        return Err(format!(
            "{series:?} names no series: write MONITOR.SERIES, e.g. process:postgres.cpu or host.memory"
        ));
    };
    let value = value.trim();
    let per_second = value.strip_suffix("/s").unwrap_or(value);
    let limit = if let Some(percent) = per_second.strip_suffix('%') {
        parse_number(percent, value)?
    } else if per_second.ends_with(|c: char| c.is_ascii_alphabetic()) {
        crate::size::parse(per_second).map_err(|err| format!("{value:?}: {err}"))? as f64
    } else {
        parse_number(per_second, value)?
    };
    // A machine's memory is a share of it (`host`, node_exporter's defaults); a process's
    // is bytes.
    let machine = series.starts_with("host.") || series.starts_with("prometheus:");
    let percent_series = matches!(quantity, "cpu") || machine && quantity == "memory";
    if percent_series != value.ends_with('%') {
        return Err(if percent_series {
            format!("{series} is a percentage: write the limit as e.g. 80%")
        } else {
            format!("{series} is not a percentage: write the limit in its unit (2GiB, 10MiB/s, 4)")
        });
    }
    Ok(Threshold {
        expression: expression.to_owned(),
        scope: None,
        metric: Metric::Requests,
        op,
        limit,
        series: Some(series.to_owned()),
        phase: None,
    })
}

/// `ttfb.p95` -> (`ttfb`, `p95`); a metric without a phase is itself.
fn split_phase(text: &str) -> Result<(Option<&'static str>, &str), String> {
    let Some((phase, metric)) = text.split_once('.') else {
        return Ok((None, text));
    };
    // `p99.9` is a percentile, not a phase.
    if phase.to_ascii_lowercase().starts_with('p') && phase[1..].parse::<f64>().is_ok() {
        return Ok((None, text));
    }
    let lower = phase.trim().to_ascii_lowercase();
    match PHASE_NAMES.iter().find(|name| **name == lower) {
        Some(name) => Ok((Some(name), metric.trim())),
        None => Err(format!(
            "unknown phase {phase:?} (expected dns, connect, tls, ttfb or download, as in ttfb.p95)"
        )),
    }
}

impl Metric {
    fn is_latency(self) -> bool {
        matches!(
            self,
            Metric::Percentile(_) | Metric::Avg | Metric::Min | Metric::Max
        )
    }
}

fn parse_metric(text: &str) -> Result<Metric, String> {
    let metric = match text.to_ascii_lowercase().as_str() {
        "" => return Err("no metric before the comparison".to_owned()),
        "avg" | "mean" => Metric::Avg,
        "min" => Metric::Min,
        "max" => Metric::Max,
        "med" | "median" => Metric::Percentile(50.0),
        "failures" | "fails" => Metric::FailureCount,
        "rps" => Metric::Rps,
        "requests" | "reqs" => Metric::Requests,
        lower => {
            let percentile = lower
                .strip_prefix('p')
                .and_then(|n| n.parse::<f64>().ok())
                .filter(|n| n.is_finite());
            match percentile {
                Some(p) if p > 0.0 && p <= 100.0 => Metric::Percentile(p),
                Some(_) => {
                    return Err(format!(
                        "percentile {text:?} is out of range (p0.1 to p100)"
                    ));
                }
                None => {
                    return Err(format!(
                        "unknown metric {text:?} (expected p50, p95, p99.9 or another pN, med, avg, min, max, failures, rps or requests, or PHASE.pN such as ttfb.p95)"
                    ));
                }
            }
        }
    };
    Ok(metric)
}

fn parse_number(text: &str, whole: &str) -> Result<f64, String> {
    let number: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{whole:?} is not a number"))?;
    if !number.is_finite() || number < 0.0 {
        return Err(format!("{whole:?} is not a non-negative number"));
    }
    Ok(number)
}

fn parse_limit(metric: Metric, text: &str) -> Result<(Metric, f64), String> {
    match metric {
        Metric::Percentile(_) | Metric::Avg | Metric::Min | Metric::Max => {
            let split = text
                .find(|c: char| c.is_ascii_alphabetic() || c == 'µ')
                .ok_or_else(|| {
                    format!("{text:?} has no unit (write it as 300ms, 1.5s, 250us or 2m)")
                })?;
            let (number, unit) = text.split_at(split);
            let micros_per_unit = match unit.trim() {
                "us" | "µs" => 1.0,
                "ms" => 1_000.0,
                "s" => 1_000_000.0,
                "m" | "min" => 60_000_000.0,
                other => {
                    return Err(format!(
                        "unknown unit {other:?} in {text:?} (expected us, ms, s or m)"
                    ));
                }
            };
            Ok((metric, parse_number(number, text)? * micros_per_unit))
        }
        Metric::FailureCount | Metric::FailureShare => match text.strip_suffix('%') {
            Some(number) => Ok((Metric::FailureShare, parse_number(number, text)?)),
            None => Ok((Metric::FailureCount, parse_number(text, text)?)),
        },
        Metric::Rps => {
            let number = text.strip_suffix("/s").unwrap_or(text);
            if number.ends_with('%') {
                return Err(format!("{text:?}: \"%\" only applies to failures"));
            }
            Ok((metric, parse_number(number, text)?))
        }
        Metric::Requests => {
            if text.ends_with('%') {
                return Err(format!("{text:?}: \"%\" only applies to failures"));
            }
            Ok((metric, parse_number(text, text)?))
        }
    }
}

impl FromStr for Threshold {
    type Err = ThresholdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Threshold::parse(text)
    }
}

impl TryFrom<String> for Threshold {
    type Error = ThresholdError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Threshold::parse(&text)
    }
}

impl From<Threshold> for String {
    fn from(threshold: Threshold) -> String {
        threshold.expression
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expression)
    }
}

#[cfg(test)]
mod tests;
