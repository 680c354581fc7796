//! Where each request's time went (k6's `http_req_*`): the [`Phases`] of one exchange as
//! the client measured them, and per (method, name) a [`PhaseTimes`] for each phase (an
//! HDR histogram, an exact sum, min and max) that merges exactly like the latency's.
//!
//! A request on a kept (keep-alive) connection set nothing up: unlike k6, which counts its
//! DNS, connect and TLS as 0, chorus counts those three phases only for the requests that
//! opened a connection, so `connect.p99` is the p99 of real connects and the number of
//! `connect` samples is the number of connections opened. `ttfb` and `download` are counted
//! for every request that got a whole answer; `ttfb + download` is its latency, and the
//! setup is outside it (as k6's `http_req_duration` leaves out `http_req_connecting`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Histogram;
use super::histogram::micros_of;

/// The phases of one exchange.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Phases {
    /// Setting up the connection, when this request opened one; `None` on a kept connection.
    pub setup: Option<Setup>,
    /// From just before the request is written to the first byte of the answer (writing
    /// and the server's time).
    pub ttfb: Duration,
    /// From the first byte of the answer to the end of its body.
    pub download: Duration,
}

/// How a new connection was set up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Setup {
    /// Resolving the host's name.
    pub dns: Duration,
    /// The TCP handshake.
    pub connect: Duration,
    /// The TLS handshake; `None` on plain HTTP.
    pub tls: Option<Duration>,
}

/// The phase names, as thresholds and reports spell them.
pub const PHASE_NAMES: [&str; 5] = ["dns", "connect", "tls", "ttfb", "download"];

/// One phase of the requests of one (method, name): every duration in µs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseTimes {
    /// Samples (the histogram's count).
    pub count: u64,
    /// Sum in µs (an exact mean).
    pub sum_us: u64,
    /// Smallest in µs, exact.
    pub min_us: u64,
    /// Largest in µs, exact.
    pub max_us: u64,
    pub histogram: Histogram,
}

impl PhaseTimes {
    fn new() -> Self {
        Self {
            count: 0,
            sum_us: 0,
            min_us: 0,
            max_us: 0,
            histogram: Histogram::new(),
        }
    }

    #[inline]
    fn record(&mut self, duration: Duration) {
        let micros = micros_of(duration);
        self.min_us = if self.count == 0 {
            micros
        } else {
            self.min_us.min(micros)
        };
        self.count += 1;
        self.sum_us = self.sum_us.saturating_add(micros);
        self.max_us = self.max_us.max(micros);
        self.histogram.record_micros(micros);
    }

    fn merge(&mut self, other: &PhaseTimes) {
        if other.count == 0 {
            return;
        }
        self.min_us = if self.count == 0 {
            other.min_us
        } else {
            self.min_us.min(other.min_us)
        };
        self.count = self.count.saturating_add(other.count);
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
        self.max_us = self.max_us.max(other.max_us);
        self.histogram.add(&other.histogram);
    }

    /// Mean in µs (exact), 0 without samples.
    pub fn avg_us(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum_us as f64 / self.count as f64
        }
    }

    /// The value at `percentile` (0..=100) in µs, kept within the exact min and max; the
    /// exact max for 100.
    pub fn percentile_us(&self, percentile: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        if percentile >= 100.0 {
            return self.max_us;
        }
        let value = self.histogram.percentile_micros(percentile);
        value.clamp(self.min_us.min(self.max_us), self.max_us)
    }
}

/// Every phase of the requests of one (method, name); a phase nobody measured is `None`
/// (and costs no histogram).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseStats {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<PhaseTimes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<PhaseTimes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<PhaseTimes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfb: Option<PhaseTimes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download: Option<PhaseTimes>,
}

impl PhaseStats {
    /// Whether no phase was measured.
    pub fn is_empty(&self) -> bool {
        self.all().iter().all(|(_, times)| times.is_none())
    }

    /// Counts the phases of one exchange.
    #[inline]
    pub(crate) fn record(&mut self, phases: &Phases) {
        if let Some(setup) = &phases.setup {
            add(&mut self.dns, setup.dns);
            add(&mut self.connect, setup.connect);
            if let Some(tls) = setup.tls {
                add(&mut self.tls, tls);
            }
        }
        add(&mut self.ttfb, phases.ttfb);
        add(&mut self.download, phases.download);
    }

    /// Adds every count of `other`, exactly.
    pub fn merge(&mut self, other: &PhaseStats) {
        merge(&mut self.dns, &other.dns);
        merge(&mut self.connect, &other.connect);
        merge(&mut self.tls, &other.tls);
        merge(&mut self.ttfb, &other.ttfb);
        merge(&mut self.download, &other.download);
    }

    /// The phase called `name` (one of [`PHASE_NAMES`]), if measured.
    pub fn get(&self, name: &str) -> Option<&PhaseTimes> {
        self.all()
            .into_iter()
            .find(|(phase, _)| *phase == name)
            .and_then(|(_, times)| times)
    }

    /// Each phase by name, in [`PHASE_NAMES`] order.
    pub fn all(&self) -> [(&'static str, Option<&PhaseTimes>); 5] {
        [
            ("dns", self.dns.as_ref()),
            ("connect", self.connect.as_ref()),
            ("tls", self.tls.as_ref()),
            ("ttfb", self.ttfb.as_ref()),
            ("download", self.download.as_ref()),
        ]
    }
}

#[inline]
fn add(times: &mut Option<PhaseTimes>, duration: Duration) {
    times.get_or_insert_with(PhaseTimes::new).record(duration);
}

fn merge(mine: &mut Option<PhaseTimes>, theirs: &Option<PhaseTimes>) {
    if let Some(theirs) = theirs {
        match mine {
            Some(mine) => mine.merge(theirs),
            None => *mine = Some(theirs.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn exchange(setup: Option<Setup>, ttfb: u64, download: u64) -> Phases {
        Phases {
            setup,
            ttfb: ms(ttfb),
            download: ms(download),
        }
    }

    #[test]
    fn a_kept_connection_counts_no_setup_and_tls_only_on_https() {
        let mut stats = PhaseStats::default();
        assert!(stats.is_empty());
        let plain = Setup {
            dns: ms(1),
            connect: ms(2),
            tls: None,
        };
        stats.record(&exchange(Some(plain), 10, 5));
        stats.record(&exchange(None, 20, 7));
        let connect = stats.connect.as_ref().expect("a connect was measured");
        assert_eq!((connect.count, connect.sum_us), (1, 2_000));
        assert_eq!(stats.tls, None);
        let ttfb = stats.ttfb.as_ref().expect("ttfb was measured");
        assert_eq!((ttfb.count, ttfb.min_us, ttfb.max_us), (2, 10_000, 20_000));
        assert_eq!(ttfb.avg_us(), 15_000.0);
        let https = Setup {
            tls: Some(ms(3)),
            ..plain
        };
        stats.record(&exchange(Some(https), 1, 1));
        assert_eq!(stats.get("tls").map(|t| t.count), Some(1));
        assert_eq!(stats.get("dns").map(|t| t.count), Some(2));
        assert_eq!(stats.get("nope"), None);
    }

    #[test]
    fn merging_two_workers_is_one_histogram_of_every_sample() {
        let (mut one, mut two, mut both) = Default::default();
        for (i, ttfb) in [3u64, 50, 7, 900, 12, 4].into_iter().enumerate() {
            let phases = exchange(None, ttfb, i as u64);
            let target: &mut PhaseStats = if i % 2 == 0 { &mut one } else { &mut two };
            target.record(&phases);
            PhaseStats::record(&mut both, &phases);
        }
        let merged = {
            let mut merged: PhaseStats = one.clone();
            merged.merge(&two);
            merged
        };
        assert_eq!(merged, both);
        let text = serde_json::to_string(&merged).expect("serialises");
        let back: PhaseStats = serde_json::from_str(&text).expect("reads back");
        assert_eq!(back, both);
        assert!(!text.contains("\"dns\""), "{text}");
        let ttfb = back.ttfb.expect("ttfb");
        assert_eq!(ttfb.percentile_us(100.0), 900_000);
        let median = ttfb.percentile_us(50.0);
        assert!((7_000..=7_007).contains(&median), "{median}");
    }
}
