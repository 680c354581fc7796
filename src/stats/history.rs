//! The time series: one point per second (tick) with users, requests/s, failures/s, the
//! percentiles of that second and the cumulative totals Locust's `stats_history.csv` has.
//!
//! Long runs stay light: the last hour is kept at full resolution (one point per second);
//! older points are folded into one point per minute. A folded point covers `span_seconds`;
//! its rates are the means over the span (counts add), its users the maximum, its percentiles the
//! maximum of the per-second percentiles (an upper bound: percentiles cannot be combined
//! exactly without the histograms) and its totals those at the end of the span. A 24 h run
//! holds 3,600 + 1,380 points.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// The percentiles Locust reports, in percent, in its column order.
pub const PERCENTILES: [f64; 11] = [
    50.0, 66.0, 75.0, 80.0, 90.0, 95.0, 98.0, 99.0, 99.9, 99.99, 100.0,
];

/// Seconds kept at full resolution.
pub const FULL_RESOLUTION_SECONDS: usize = 3600;
/// Seconds per point before that.
pub const COARSE_SPAN_SECONDS: u32 = 60;

/// One point of the time series. It holds counts, sums and percentiles (integers, so a
/// point survives JSON exactly); `rps` and `failures_per_sec` are derived from them (and
/// derived again when a result is read back); means are methods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryPoint {
    /// Unix time (seconds) at the end of the point's first second.
    pub unix_seconds: u64,
    /// Seconds this point covers (1; more when ticks were late or once folded).
    pub span_seconds: u32,
    /// Users running (the maximum over the span).
    pub users: u64,
    /// Requests completed in this point.
    pub requests: u64,
    /// Failures in this point.
    pub failures: u64,
    /// Requests per second in this point (`requests / span_seconds`).
    #[serde(default)]
    pub rps: f64,
    /// Failures per second in this point (`failures / span_seconds`).
    #[serde(default)]
    pub failures_per_sec: f64,
    /// Latency percentiles of this point's requests in µs, one per [`PERCENTILES`]; all 0
    /// without requests.
    pub percentiles_us: Vec<u64>,
    /// Cumulative latency percentiles in µs, one per [`PERCENTILES`] (what Locust's
    /// `stats_history.csv` shows).
    pub total_percentiles_us: Vec<u64>,
    /// Requests since the start (or the last reset).
    pub total_requests: u64,
    /// Failures since the start.
    pub total_failures: u64,
    /// Sum of every latency since the start, µs.
    pub total_latency_sum_us: u64,
    /// Cumulative min latency, µs (0 without requests).
    pub total_min_us: u64,
    /// Cumulative max latency, µs.
    pub total_max_us: u64,
    /// Sum of response sizes since the start, bytes.
    pub total_content_bytes: u64,
}

impl HistoryPoint {
    /// Requests per second in this point (the same as the `rps` field).
    pub fn rps(&self) -> f64 {
        self.requests as f64 / f64::from(self.span_seconds.max(1))
    }

    /// Failures per second in this point (the same as the `failures_per_sec` field).
    pub fn failures_per_sec(&self) -> f64 {
        self.failures as f64 / f64::from(self.span_seconds.max(1))
    }

    /// Sets `rps` and `failures_per_sec` from the counts and the span.
    pub fn derive_rates(&mut self) {
        self.rps = self.rps();
        self.failures_per_sec = self.failures_per_sec();
    }

    /// p50 of this point in µs.
    pub fn p50_us(&self) -> u64 {
        self.percentile_us(50.0)
    }

    /// p95 of this point in µs.
    pub fn p95_us(&self) -> u64 {
        self.percentile_us(95.0)
    }

    /// The point's value for one of [`PERCENTILES`]; 0 for others.
    pub fn percentile_us(&self, percentile: f64) -> u64 {
        PERCENTILES
            .iter()
            .position(|p| *p == percentile)
            .and_then(|i| self.percentiles_us.get(i).copied())
            .unwrap_or(0)
    }

    /// Cumulative median in µs.
    pub fn total_median_us(&self) -> u64 {
        self.total_percentiles_us.first().copied().unwrap_or(0)
    }

    /// Cumulative exact mean latency in ms (0 without requests).
    pub fn total_avg_ms(&self) -> f64 {
        if self.total_requests == 0 {
            0.0
        } else {
            self.total_latency_sum_us as f64 / self.total_requests as f64 / 1000.0
        }
    }

    /// Cumulative mean response size in bytes (0 without requests).
    pub fn total_avg_content_bytes(&self) -> f64 {
        if self.total_requests == 0 {
            0.0
        } else {
            self.total_content_bytes as f64 / self.total_requests as f64
        }
    }

    fn fold(&mut self, later: &HistoryPoint) {
        self.span_seconds += later.span_seconds;
        self.users = self.users.max(later.users);
        self.requests = self.requests.saturating_add(later.requests);
        self.failures = self.failures.saturating_add(later.failures);
        max_each(&mut self.percentiles_us, &later.percentiles_us);
        self.total_percentiles_us
            .clone_from(&later.total_percentiles_us);
        self.total_requests = later.total_requests;
        self.total_failures = later.total_failures;
        self.total_latency_sum_us = later.total_latency_sum_us;
        self.total_min_us = later.total_min_us;
        self.total_max_us = later.total_max_us;
        self.total_content_bytes = later.total_content_bytes;
        self.derive_rates();
    }
}

/// `mine[i] = max(mine[i], theirs[i])`, growing `mine` if needed.
pub(crate) fn max_each(mine: &mut Vec<u64>, theirs: &[u64]) {
    if mine.len() < theirs.len() {
        mine.resize(theirs.len(), 0);
    }
    for (a, b) in mine.iter_mut().zip(theirs) {
        *a = (*a).max(*b);
    }
}

/// The series, with old points folded (see the module documentation).
#[derive(Debug, Clone, Default)]
pub(crate) struct History {
    coarse: Vec<HistoryPoint>,
    recent: VecDeque<HistoryPoint>,
}

impl History {
    pub(crate) fn push(&mut self, point: HistoryPoint) {
        self.recent.push_back(point);
        while self.recent.len() > FULL_RESOLUTION_SECONDS {
            let Some(old) = self.recent.pop_front() else {
                break;
            };
            match self.coarse.last_mut() {
                Some(last) if last.span_seconds + old.span_seconds <= COARSE_SPAN_SECONDS => {
                    last.fold(&old)
                }
                _ => self.coarse.push(old),
            }
        }
    }

    /// Adds a late report's counts to the point that covers `unix_seconds`; returns the point
    /// as it is now, or `None` if no point covers it.
    pub(crate) fn amend(
        &mut self,
        unix_seconds: u64,
        requests: u64,
        failures: u64,
    ) -> Option<HistoryPoint> {
        let covers = |p: &&mut HistoryPoint| {
            p.unix_seconds <= unix_seconds
                && unix_seconds < p.unix_seconds + u64::from(p.span_seconds.max(1))
        };
        let point = match self.recent.iter_mut().rev().find(covers) {
            Some(point) => point,
            None => self.coarse.iter_mut().rev().find(covers)?,
        };
        point.requests = point.requests.saturating_add(requests);
        point.failures = point.failures.saturating_add(failures);
        point.derive_rates();
        Some(point.clone())
    }

    pub(crate) fn points(&self) -> Vec<HistoryPoint> {
        self.coarse.iter().chain(&self.recent).cloned().collect()
    }

    pub(crate) fn recent(&self) -> impl Iterator<Item = &HistoryPoint> {
        self.coarse.iter().chain(&self.recent)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.coarse.len() + self.recent.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(t: u64, rps: f64, p95: u64) -> HistoryPoint {
        HistoryPoint {
            unix_seconds: t,
            span_seconds: 1,
            users: t % 7,
            requests: rps as u64,
            failures: 0,
            rps,
            failures_per_sec: 0.0,
            percentiles_us: vec![p95 / 2, 0, 0, 0, 0, p95, 0, 0, 0, 0, p95],
            total_percentiles_us: vec![0; 11],
            total_requests: t * 10,
            total_failures: 0,
            total_latency_sum_us: 1,
            total_min_us: 1,
            total_max_us: 1,
            total_content_bytes: 1,
        }
    }

    #[test]
    fn old_points_fold_into_minutes() {
        let mut history = History::default();
        let seconds = FULL_RESOLUTION_SECONDS as u64 + 120;
        for t in 0..seconds {
            history.push(point(t, 10.0, if t == 30 { 9_000 } else { 100 }));
        }
        assert_eq!(history.len(), FULL_RESOLUTION_SECONDS + 2);
        let points = history.points();
        assert_eq!(points[0].unix_seconds, 0);
        assert_eq!(points[0].span_seconds, 60);
        assert_eq!(points[0].rps, 10.0);
        assert_eq!(points[0].requests, 600);
        assert_eq!(points[0].p95_us(), 9_000, "folded percentiles are the max");
        assert_eq!(points[0].total_requests, 590);
        assert_eq!(points[1].unix_seconds, 60);
        assert_eq!(points[2].unix_seconds, 120);
        assert_eq!(points[2].span_seconds, 1);
        let total_span: u64 = points.iter().map(|p| u64::from(p.span_seconds)).sum();
        assert_eq!(total_span, seconds);
    }
}
