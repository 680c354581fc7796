//! The per-worker [`Tally`] (the hot path: no allocation per request once a name has been
//! seen) and the [`Snapshot`] it hands to the aggregator, which merges exactly and travels
//! as JSON (histograms as base64 HDR).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use serde::{Deserialize, Serialize};

use super::entry::{EntryStats, ErrorCount, add_error, merge_entries, now_unix_ms};
use super::histogram::micros_of;
use super::{Phases, RequestSample};

/// The Fx hash (rustc's): request names are short and come from the scenario, not from an
/// attacker, so a word-at-a-time multiply beats SipHash on the hot path.
#[derive(Default)]
struct Fx(u64);

impl Fx {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for Fx {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

/// Slots of the tally's name cache (a power of two).
const CACHE_SLOTS: usize = 64;

/// What one engine worker measures. Owned by the worker, never shared: record into it, and
/// every interval hand [`Tally::take`] to the aggregator.
pub struct Tally {
    /// Entry index + 1 by the address of the name string: the engine passes the same `&str`
    /// (its compiled scenario's name) for every request of a step, so most lookups hash
    /// nothing. A hit is confirmed by comparing method and name, so an address that now holds
    /// another string only costs a miss.
    cache: [u32; CACHE_SLOTS],
    /// name -> [(method, index into `entries`)]; looked up by `&str`, so no key is built per
    /// call.
    index: FxMap<Box<str>, Vec<(Box<str>, usize)>>,
    entries: Vec<EntryStats>,
    errors: Vec<ErrorCount>,
    dropped_iterations: u64,
    cut_iterations: u64,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            cache: [0; CACHE_SLOTS],
            index: FxMap::default(),
            entries: Vec::new(),
            errors: Vec::new(),
            dropped_iterations: 0,
            cut_iterations: 0,
        }
    }
}

impl Tally {
    /// An empty tally.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one request that was sent.
    #[inline]
    pub fn record(&mut self, sample: &RequestSample<'_>) {
        let index = self.index_of(sample.method, sample.name);
        let entry = &mut self.entries[index];
        entry.record(micros_of(sample.latency), sample.response_bytes);
        if let Some(failure) = &sample.failure {
            entry.record_failure(failure.kind, failure.message);
        }
    }

    /// [`Tally::record`], and where the request's time went (an exchange that got a whole
    /// answer).
    #[inline]
    pub fn record_phased(&mut self, sample: &RequestSample<'_>, phases: &Phases) {
        let index = self.index_of(sample.method, sample.name);
        let entry = &mut self.entries[index];
        entry.record(micros_of(sample.latency), sample.response_bytes);
        entry.record_phases(phases);
        if let Some(failure) = &sample.failure {
            entry.record_failure(failure.kind, failure.message);
        }
    }

    /// Counts one request that has no latency sample: a connect failure (nothing was sent)
    /// or a request cut at the stop. `sample.latency` is not used.
    pub fn record_untimed(&mut self, sample: &RequestSample<'_>) {
        let index = self.index_of(sample.method, sample.name);
        let entry = &mut self.entries[index];
        entry.record_untimed(sample.response_bytes);
        if let Some(failure) = &sample.failure {
            entry.record_failure(failure.kind, failure.message);
        }
    }

    /// Counts one exception: an error not tied to a request that was sent (Locust's
    /// "exceptions"), counted by message.
    pub fn record_error(&mut self, message: &str) {
        add_error(&mut self.errors, message, 1);
    }

    /// Counts one iteration the open model could not start in time.
    pub fn record_dropped_iteration(&mut self) {
        self.dropped_iterations += 1;
    }

    /// Counts one iteration the stop cut short (its user did not finish it within the stop
    /// timeout, or the run stopped at once).
    pub fn record_cut_iteration(&mut self) {
        self.cut_iterations += 1;
    }

    /// Everything recorded since the last take; the tally starts over (keeping its names,
    /// so the next interval allocates only the histograms).
    pub fn take(&mut self) -> Snapshot {
        let mut entries = Vec::new();
        let now = now_unix_ms();
        for entry in &mut self.entries {
            if entry.requests == 0 && entry.failures == 0 {
                continue;
            }
            let mut fresh = EntryStats::new(&entry.method, &entry.name);
            fresh.histogram = entry.histogram.empty_like();
            std::mem::swap(entry, &mut fresh);
            for failure in &mut fresh.failures_by_kind {
                failure.last_seen_unix_ms = now;
            }
            entries.push(fresh);
        }
        Snapshot {
            entries,
            errors: std::mem::take(&mut self.errors),
            dropped_iterations: std::mem::take(&mut self.dropped_iterations),
            cut_iterations: std::mem::take(&mut self.cut_iterations),
        }
    }

    #[inline]
    fn index_of(&mut self, method: &str, name: &str) -> usize {
        let slot = ((name.as_ptr() as usize >> 3) ^ name.len()) & (CACHE_SLOTS - 1);
        if let Some(index) = (self.cache[slot] as usize).checked_sub(1) {
            let entry = &self.entries[index];
            if entry.name == name && entry.method == method {
                return index;
            }
        }
        let index = self.lookup(method, name);
        if let Ok(cached) = u32::try_from(index + 1) {
            self.cache[slot] = cached;
        }
        index
    }

    #[inline]
    fn lookup(&mut self, method: &str, name: &str) -> usize {
        if let Some(methods) = self.index.get(name) {
            for (m, i) in methods {
                if &**m == method {
                    return *i;
                }
            }
        }
        self.add_entry(method, name)
    }

    #[cold]
    fn add_entry(&mut self, method: &str, name: &str) -> usize {
        let index = self.entries.len();
        self.entries.push(EntryStats::new(method, name));
        self.index
            .entry(name.into())
            .or_default()
            .push((method.into(), index));
        index
    }
}

/// The measurements of one interval (or of several merged): per (method, name) entries,
/// exceptions and dropped iterations. Serialisable so workers can send it over the network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub entries: Vec<EntryStats>,
    pub errors: Vec<ErrorCount>,
    pub dropped_iterations: u64,
    /// Iterations the stop cut short.
    #[serde(default)]
    pub cut_iterations: u64,
}

impl Snapshot {
    /// Adds `other` to `self`, exactly.
    pub fn merge(&mut self, other: &Snapshot) {
        merge_entries(&mut self.entries, &other.entries);
        for error in &other.errors {
            add_error(&mut self.errors, &error.message, error.count);
        }
        self.dropped_iterations =
            (self.dropped_iterations).saturating_add(other.dropped_iterations);
        self.cut_iterations = self.cut_iterations.saturating_add(other.cut_iterations);
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
            && self.errors.is_empty()
            && self.dropped_iterations == 0
            && self.cut_iterations == 0
    }

    /// Requests in this snapshot.
    pub fn requests(&self) -> u64 {
        (self.entries.iter()).fold(0, |sum, e| sum.saturating_add(e.requests))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::stats::{Failure, FailureKind};

    fn sample<'a>(
        method: &'a str,
        name: &'a str,
        micros: u64,
        failure: Option<Failure<'a>>,
    ) -> RequestSample<'a> {
        RequestSample {
            method,
            name,
            latency: Duration::from_micros(micros),
            response_bytes: 10,
            failure,
        }
    }

    #[test]
    fn every_request_is_counted_once_per_method_and_name() {
        let mut tally = Tally::new();
        tally.record(&sample("GET", "/a", 100, None));
        tally.record(&sample("GET", "/a", 300, None));
        tally.record(&sample("POST", "/a", 200, None));
        tally.record(&sample("GET", "/b", 50, None));
        let snapshot = tally.take();
        assert_eq!(snapshot.requests(), 4);
        let get_a = snapshot
            .entries
            .iter()
            .find(|e| e.method == "GET" && e.name == "/a")
            .unwrap();
        assert_eq!(get_a.requests, 2);
        assert_eq!(get_a.latency_sum_us, 400);
        assert_eq!((get_a.min_us, get_a.max_us), (100, 300));
        assert_eq!(get_a.content_bytes, 20);
        // take() starts over
        assert!(tally.take().is_empty());
        tally.record(&sample("GET", "/a", 1, None));
        assert_eq!(tally.take().requests(), 1);
    }

    #[test]
    fn failures_are_counted_by_kind_with_the_first_message() {
        let mut tally = Tally::new();
        let f500 = |m| {
            Some(Failure {
                kind: FailureKind::Status(500),
                message: m,
            })
        };
        tally.record(&sample("GET", "/a", 100, f500("HTTP 500: first")));
        tally.record(&sample("GET", "/a", 100, f500("HTTP 500: second")));
        tally.record(&sample(
            "GET",
            "/a",
            100,
            Some(Failure {
                kind: FailureKind::Timeout,
                message: "timed out after 30s",
            }),
        ));
        tally.record(&sample("GET", "/a", 100, None));
        let snapshot = tally.take();
        let entry = &snapshot.entries[0];
        assert_eq!(entry.requests, 4);
        assert_eq!(entry.failures, 3);
        assert_eq!(entry.failures_by_kind.len(), 2);
        assert_eq!(entry.failures_by_kind[0].count, 2);
        assert_eq!(entry.failures_by_kind[0].message, "HTTP 500: first");
        assert_eq!(entry.failures_by_kind[1].kind, FailureKind::Timeout);

        let mut merged = snapshot.clone();
        merged.merge(&snapshot);
        assert_eq!(merged.entries[0].failures, 6);
        assert_eq!(merged.entries[0].failures_by_kind[0].count, 4);
        assert_eq!(
            merged.entries[0].failures_by_kind[0].message,
            "HTTP 500: first"
        );
    }

    #[test]
    fn exceptions_are_counted_by_message_with_a_cap() {
        let mut tally = Tally::new();
        tally.record_error("template error: x");
        tally.record_error("template error: x");
        for i in 0..150 {
            tally.record_error(&format!("varying {i}"));
        }
        tally.record_dropped_iteration();
        let snapshot = tally.take();
        assert_eq!(
            snapshot.errors.len(),
            super::super::entry::MAX_DISTINCT_ERRORS + 1
        );
        assert_eq!(snapshot.errors[0].count, 2);
        let other = snapshot.errors.last().unwrap();
        assert_eq!(other.message, super::super::entry::OTHER_ERRORS);
        assert_eq!(other.count, 51);
        let total: u64 = snapshot.errors.iter().map(|e| e.count).sum();
        assert_eq!(total, 152);
        assert_eq!(snapshot.dropped_iterations, 1);
    }

    #[test]
    fn merged_snapshots_have_the_percentiles_of_one_histogram() {
        let mut a = Tally::new();
        let mut b = Tally::new();
        let mut all = crate::stats::Histogram::new();
        let mut x: u64 = 12345;
        for i in 0..20_000u64 {
            // a cheap deterministic spread over 1 µs .. ~10 s
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let micros = 1 + (x >> 33) % 10_000_000;
            let tally = if i % 3 == 0 { &mut a } else { &mut b };
            tally.record(&sample("GET", "/x", micros, None));
            all.record_micros(micros);
        }
        let mut merged = a.take();
        merged.merge(&b.take());
        let entry = &merged.entries[0];
        assert_eq!(entry.requests, 20_000);
        for q in [0.5, 0.66, 0.9, 0.95, 0.99, 0.999, 0.9999, 1.0] {
            assert_eq!(
                entry.histogram.quantile_micros(q),
                all.quantile_micros(q),
                "q={q}"
            );
        }
        assert_eq!(entry.histogram, all);
        // and through JSON, as a worker would send it
        let json = serde_json::to_string(&merged).unwrap();
        let back: Snapshot = serde_json::from_str(&json).unwrap();
        assert_eq!(back, merged);
    }
}
