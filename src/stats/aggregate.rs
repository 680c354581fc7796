//! The [`Aggregate`]: where worker snapshots meet. It merges them exactly, keeps the history
//! (one point per second of the run, each holding what happened in that second, see
//! [`super::timeline`]), answers the live table (per name: requests, failures, current rps,
//! p50, p95, p99) and turns into the [`RunResult`] at the end.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::entry::{EntryStats, ErrorCount, add_error, sort_entries};
use super::history::{History, HistoryPoint, PERCENTILES};
use super::timeline::{Place, SecondsTap, Timeline, Window};
use super::{Histogram, RunMeta, RunResult, Snapshot};

/// The "current" rates of the live table are means over this many ticks (Locust uses a
/// window of about ten seconds too).
const CURRENT_WINDOW_TICKS: usize = 10;

/// Points kept for [`Aggregate::take_fresh_points`] when nobody takes them (a headless run):
/// the newest ones.
const MAX_FRESH: usize = 64;

/// One row of the live table.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveRow {
    /// HTTP method; empty for the `Aggregated` row.
    pub method: String,
    pub name: String,
    /// Requests since the start (or the last reset).
    pub requests: u64,
    pub failures: u64,
    /// Requests per second over the last ten ticks.
    pub current_rps: f64,
    /// Failures per second over the last ten ticks.
    pub current_failures_per_sec: f64,
    /// Exact mean, ms.
    pub avg_ms: f64,
    /// Cumulative percentiles in µs.
    pub p50_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    /// Exact max, µs.
    pub max_us: u64,
}

#[derive(Debug, Clone)]
struct LiveEntry {
    stats: EntryStats,
    interval_requests: u64,
    interval_failures: u64,
    recent: VecDeque<(u64, u64)>,
}

impl LiveEntry {
    fn new(method: &str, name: &str) -> Self {
        Self {
            stats: EntryStats::new(method, name),
            interval_requests: 0,
            interval_failures: 0,
            recent: VecDeque::with_capacity(CURRENT_WINDOW_TICKS),
        }
    }

    fn tick(&mut self) {
        let counts = (self.interval_requests, self.interval_failures);
        self.interval_requests = 0;
        self.interval_failures = 0;
        self.push_second(counts);
    }

    /// One second's (requests, failures) into the current-rate window.
    fn push_second(&mut self, counts: (u64, u64)) {
        if self.recent.len() == CURRENT_WINDOW_TICKS {
            self.recent.pop_front();
        }
        self.recent.push_back(counts);
    }

    /// A late report for a second already closed: counted in the newest second of the
    /// window, so the window's sum stays right.
    fn amend(&mut self, (requests, failures): (u64, u64)) {
        match self.recent.back_mut() {
            Some(last) => {
                last.0 = last.0.saturating_add(requests);
                last.1 = last.1.saturating_add(failures);
            }
            None => self.recent.push_back((requests, failures)),
        }
    }

    fn row(&self) -> LiveRow {
        let ticks = self.recent.len().max(1) as f64;
        let (requests, failures) = self
            .recent
            .iter()
            .fold((0, 0), |(r, f), (dr, df)| (r + dr, f + df));
        let stats = &self.stats;
        LiveRow {
            method: stats.method.clone(),
            name: stats.name.clone(),
            requests: stats.requests,
            failures: stats.failures,
            current_rps: requests as f64 / ticks,
            current_failures_per_sec: failures as f64 / ticks,
            avg_ms: stats.avg_ms(),
            p50_us: stats.percentile_us(50.0),
            p95_us: stats.percentile_us(95.0),
            p99_us: stats.percentile_us(99.0),
            max_us: stats.max_us,
        }
    }
}

/// The run's measurements so far, fed by worker snapshots.
///
/// Two ways to feed it: [`Aggregate::absorb_second`] with the second each snapshot belongs to
/// (the engine and the cluster master: seconds close as their reports come, see
/// [`super::timeline`]), or [`Aggregate::absorb`] and [`Aggregate::tick`] (a point of
/// whatever came since the last tick; tests and tools that make a history by hand).
#[derive(Debug, Clone)]
pub struct Aggregate {
    entries: Vec<LiveEntry>,
    index: HashMap<(String, String), usize>,
    total: LiveEntry,
    /// Every latency since the last tick (all names): the percentiles of one history point
    /// made by [`Aggregate::tick`].
    interval: Histogram,
    /// The seconds not closed yet, when snapshots come with their second.
    timeline: Timeline,
    /// Unix ms of second 0's start.
    start_unix_ms: u64,
    errors: Vec<ErrorCount>,
    dropped_iterations: u64,
    cut_iterations: u64,
    history: History,
    /// Points made or amended since [`Aggregate::take_fresh_points`].
    fresh: Vec<HistoryPoint>,
    last_tick: Option<u64>,
    /// Unix seconds of the last reset, if any: the result's rates count from there.
    reset_at: Option<u64>,
    /// A copy of everything absorbed, by second, until the tap's owner takes it (see
    /// [`Aggregate::set_tap`]).
    tap: Option<Arc<Mutex<SecondsTap>>>,
}

impl Default for Aggregate {
    fn default() -> Self {
        Self::new()
    }
}

impl Aggregate {
    /// Nothing measured yet.
    pub fn new() -> Self {
        Self {
            entries: Vec::new(),
            index: HashMap::new(),
            total: LiveEntry::new("", "Aggregated"),
            interval: Histogram::new(),
            timeline: Timeline::default(),
            start_unix_ms: super::now_unix_ms(),
            errors: Vec::new(),
            dropped_iterations: 0,
            cut_iterations: 0,
            history: History::default(),
            fresh: Vec::new(),
            last_tick: None,
            reset_at: None,
            tap: None,
        }
    }

    /// From now on every snapshot absorbed is also merged into `tap` by its second, and the
    /// tap learns which seconds are closed; its owner takes closed seconds out of it (a cluster
    /// worker sends them to the master). It starts with everything absorbed so far, and
    /// outlives [`Aggregate::finish`], so nothing absorbed last is missed.
    pub fn set_tap(&mut self, tap: Arc<Mutex<SecondsTap>>) {
        let so_far = Snapshot {
            entries: self.entries.iter().map(|e| e.stats.clone()).collect(),
            errors: self.errors.clone(),
            dropped_iterations: self.dropped_iterations,
            cut_iterations: self.cut_iterations,
        };
        {
            let mut tap = tap.lock().unwrap_or_else(|e| e.into_inner());
            if !so_far.is_empty() {
                tap.add(self.timeline.next_open(), &so_far);
            }
            tap.closed_before(self.timeline.next_open());
        }
        self.tap = Some(tap);
    }

    /// Second 0 of the run starts at `start_unix_ms` (the points' times count from there);
    /// each of `reporters` reports from it.
    pub fn start_seconds(&mut self, start_unix_ms: u64, reporters: impl IntoIterator<Item = u64>) {
        self.start_unix_ms = start_unix_ms;
        for reporter in reporters {
            self.timeline.expect(reporter, 0);
        }
    }

    /// `reporter` reports from second `from` on: later seconds wait for it.
    pub fn expect_reporter(&mut self, reporter: u64, from: u64) {
        self.timeline.expect(reporter, from);
    }

    /// `reporter` reports no more (finished, or lost): no second waits for it.
    pub fn reporter_done(&mut self, reporter: u64) {
        self.timeline.leave(reporter);
    }

    /// The second of the run `elapsed` after its start.
    pub fn second_at(elapsed: Duration) -> u64 {
        elapsed.as_secs()
    }

    /// Merges a worker's snapshot (exact) into the next point made by [`Aggregate::tick`].
    pub fn absorb(&mut self, snapshot: Snapshot) {
        if let Some(tap) = &self.tap {
            let second = self.timeline.next_open();
            tap.lock()
                .unwrap_or_else(|e| e.into_inner())
                .add(second, &snapshot);
        }
        let indexes = self.merge_counts(&snapshot);
        for (entry, index) in snapshot.entries.iter().zip(indexes) {
            let live = &mut self.entries[index];
            live.interval_requests = live.interval_requests.saturating_add(entry.requests);
            live.interval_failures = live.interval_failures.saturating_add(entry.failures);
            let total = &mut self.total;
            total.interval_requests = total.interval_requests.saturating_add(entry.requests);
            total.interval_failures = total.interval_failures.saturating_add(entry.failures);
            self.interval.add(&entry.histogram);
        }
    }

    /// Merges `snapshot` (exact), measured by `reporter` in `second` of the run, and notes
    /// that the reporter has reported everything up to the end of that second. The second's
    /// point is made by [`Aggregate::close_seconds`]; if it was made already, it is amended.
    pub fn absorb_second(&mut self, reporter: u64, second: u64, snapshot: Snapshot) {
        if let Some(tap) = &self.tap {
            tap.lock()
                .unwrap_or_else(|e| e.into_inner())
                .add(second, &snapshot);
        }
        let indexes = self.merge_counts(&snapshot);
        match self.timeline.report(reporter, second) {
            Place::Open => self.timeline.window(second).add(&snapshot, &indexes),
            Place::Closed => {
                let mut late = Window::default();
                late.add(&snapshot, &indexes);
                self.amend(second, late);
            }
        }
    }

    /// Makes the points of the seconds that may be closed `elapsed` after the run's start
    /// (every reporter reported them, or they have waited their grace), with `users`
    /// running; returns how many.
    pub fn close_seconds(&mut self, elapsed: Duration, users: u64) -> usize {
        let mut closed = 0;
        while let Some((second, window)) = self.timeline.close_next(elapsed) {
            self.close(second, window, users);
            closed += 1;
        }
        closed
    }

    /// The run is over (`elapsed` after its start): makes the points of every second left,
    /// the last one partly over included.
    pub fn close_all_seconds(&mut self, elapsed: Duration, users: u64) {
        // The second under way, unless the run ended exactly as it began.
        let under_way = Duration::from_millis(elapsed.as_millis().saturating_sub(1) as u64);
        let mut last = Self::second_at(under_way);
        if let Some(reported) = self.timeline.last_open_window() {
            last = last.max(reported);
        }
        while let Some((second, window)) = self.timeline.close_next_up_to(last) {
            self.close(second, window, users);
        }
    }

    /// The points made or amended since the last call (for the page's live stream; at most
    /// the last [`MAX_FRESH`] of them, when nobody takes them).
    pub fn take_fresh_points(&mut self) -> Vec<HistoryPoint> {
        std::mem::take(&mut self.fresh)
    }

    fn note_fresh(&mut self, point: HistoryPoint) {
        if self.fresh.len() >= MAX_FRESH {
            self.fresh.remove(0);
        }
        self.fresh.push(point);
    }

    /// Adds a snapshot to the cumulative counts; returns each of its entries' index.
    fn merge_counts(&mut self, snapshot: &Snapshot) -> Vec<usize> {
        let mut indexes = Vec::with_capacity(snapshot.entries.len());
        for entry in &snapshot.entries {
            let key = (entry.method.clone(), entry.name.clone());
            let index = match self.index.get(&key) {
                Some(i) => *i,
                None => {
                    self.entries
                        .push(LiveEntry::new(&entry.method, &entry.name));
                    self.index.insert(key, self.entries.len() - 1);
                    self.entries.len() - 1
                }
            };
            self.entries[index].stats.merge(entry);
            self.total.stats.merge(entry);
            indexes.push(index);
        }
        for error in &snapshot.errors {
            add_error(&mut self.errors, &error.message, error.count);
        }
        // A cluster worker's numbers are whatever it sent: they saturate.
        self.dropped_iterations = self
            .dropped_iterations
            .saturating_add(snapshot.dropped_iterations);
        self.cut_iterations = self.cut_iterations.saturating_add(snapshot.cut_iterations);
        indexes
    }

    /// Unix time at the end of `second` of the run.
    fn unix_seconds_of(&self, second: u64) -> u64 {
        (self
            .start_unix_ms
            .saturating_add(second.saturating_add(1).saturating_mul(1000)))
            / 1000
    }

    /// Makes the point of `second` from what it gathered.
    fn close(&mut self, second: u64, window: Window, users: u64) {
        for (index, entry) in self.entries.iter_mut().enumerate() {
            entry.push_second(window.by_entry.get(&index).copied().unwrap_or_default());
        }
        self.total.push_second((window.requests, window.failures));
        let unix_seconds = self.unix_seconds_of(second);
        self.last_tick = Some(unix_seconds);
        let point = self.point(unix_seconds, 1, users, &window);
        self.note_fresh(point.clone());
        self.history.push(point);
        if let Some(tap) = &self.tap {
            tap.lock()
                .unwrap_or_else(|e| e.into_inner())
                .closed_before(second + 1);
        }
    }

    /// A late report for a closed `second`: its counts go into the second's point (the
    /// point's percentiles stay those of what came in time).
    fn amend(&mut self, second: u64, late: Window) {
        for (index, counts) in &late.by_entry {
            if let Some(entry) = self.entries.get_mut(*index) {
                entry.amend(*counts);
            }
        }
        self.total.amend((late.requests, late.failures));
        let unix_seconds = self.unix_seconds_of(second);
        if let Some(point) = self
            .history
            .amend(unix_seconds, late.requests, late.failures)
        {
            self.note_fresh(point);
        }
    }

    fn point(&self, unix_seconds: u64, span: u64, users: u64, window: &Window) -> HistoryPoint {
        let total = &self.total.stats;
        let mut point = HistoryPoint {
            unix_seconds,
            span_seconds: u32::try_from(span).unwrap_or(u32::MAX),
            users,
            requests: window.requests,
            failures: window.failures,
            percentiles_us: PERCENTILES
                .iter()
                .map(|p| window.latencies.percentile_micros(*p))
                .collect(),
            total_percentiles_us: PERCENTILES
                .iter()
                .map(|p| total.percentile_us(*p))
                .collect(),
            total_requests: total.requests,
            total_failures: total.failures,
            total_latency_sum_us: total.latency_sum_us,
            total_min_us: if total.timed() == 0 { 0 } else { total.min_us },
            total_max_us: total.max_us,
            total_content_bytes: total.content_bytes,
            rps: 0.0,
            failures_per_sec: 0.0,
        };
        point.derive_rates();
        point
    }

    /// Closes one history point at `unix_seconds` with `users` running, of everything
    /// [`Aggregate::absorb`]ed since the last tick. Call it once a second.
    pub fn tick(&mut self, unix_seconds: u64, users: usize) {
        let elapsed = match self.last_tick {
            Some(last) if unix_seconds > last => unix_seconds - last,
            _ => 1,
        };
        self.last_tick = Some(unix_seconds);
        let window = Window {
            requests: self.total.interval_requests,
            failures: self.total.interval_failures,
            latencies: std::mem::take(&mut self.interval),
            by_entry: HashMap::new(),
        };
        let point = self.point(unix_seconds, elapsed, users as u64, &window);
        self.interval = window.latencies;
        self.interval.reset();
        self.note_fresh(point.clone());
        self.history.push(point);
        for entry in &mut self.entries {
            entry.tick();
        }
        self.total.tick();
    }

    /// "Reset stats": forgets every count, failure and exception (the history stays, so the
    /// charts show the reset). Rates in the result count from the last tick before the reset.
    pub fn reset(&mut self) {
        self.entries.clear();
        self.index.clear();
        self.total = LiveEntry::new("", "Aggregated");
        self.interval.reset();
        // The seconds still open keep their counts for the charts, not their entries.
        for window in self.timeline.windows_mut() {
            window.by_entry.clear();
        }
        self.errors.clear();
        self.dropped_iterations = 0;
        self.cut_iterations = 0;
        self.reset_at = self.last_tick;
    }

    /// The live table: one row per (method, name), by name then method.
    pub fn rows(&self) -> Vec<LiveRow> {
        let mut rows: Vec<LiveRow> = self.entries.iter().map(LiveEntry::row).collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.method.cmp(&b.method)));
        rows
    }

    /// The `Aggregated` row of the live table.
    pub fn total_row(&self) -> LiveRow {
        self.total.row()
    }

    /// Cumulative counters of one (method, name), if it was seen.
    pub fn entry(&self, method: &str, name: &str) -> Option<&EntryStats> {
        self.index
            .get(&(method.to_owned(), name.to_owned()))
            .map(|i| &self.entries[*i].stats)
    }

    /// Cumulative counters of all requests.
    pub fn total(&self) -> &EntryStats {
        &self.total.stats
    }

    /// The time series so far (old points folded, see [`HistoryPoint`]).
    pub fn history(&self) -> Vec<HistoryPoint> {
        self.history.points()
    }

    /// The newest history point, if any tick happened.
    pub fn last_point(&self) -> Option<&HistoryPoint> {
        self.history.recent().last()
    }

    /// Exceptions so far.
    pub fn errors(&self) -> &[ErrorCount] {
        &self.errors
    }

    /// Iterations the open model dropped so far.
    pub fn dropped_iterations(&self) -> u64 {
        self.dropped_iterations
    }

    /// Iterations the stop cut short so far.
    pub fn cut_iterations(&self) -> u64 {
        self.cut_iterations
    }

    /// The result of the run: every count, the history and the thresholds' verdicts. If stats
    /// were reset, the result's start time is the reset's.
    pub fn finish(self, mut meta: RunMeta) -> RunResult {
        if let Some(reset) = self.reset_at {
            meta.start_unix_ms = meta.start_unix_ms.max(reset.saturating_mul(1000));
        }
        let mut entries: Vec<EntryStats> = self.entries.into_iter().map(|e| e.stats).collect();
        sort_entries(&mut entries);
        let mut result = RunResult {
            meta,
            entries,
            total: self.total.stats,
            history: self.history.points(),
            errors: self.errors,
            dropped_iterations: self.dropped_iterations,
            cut_iterations: self.cut_iterations,
            verdicts: Vec::new(),
            monitors: Default::default(),
            capacity: None,
        };
        result.evaluate_thresholds();
        result
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::stats::{Failure, FailureKind, RequestSample, Tally};

    fn get(tally: &mut Tally, name: &str, ms: u64, failed: bool) {
        tally.record(&RequestSample {
            method: "GET",
            name,
            latency: Duration::from_millis(ms),
            response_bytes: 100,
            failure: failed.then_some(Failure {
                kind: FailureKind::Status(503),
                message: "HTTP 503",
            }),
        });
    }

    /// Issue 14 H5: reports arrive in any order and late; each second's point holds what was
    /// measured in it.
    #[test]
    fn each_second_holds_what_its_reporters_measured_in_it() {
        let mut aggregate = Aggregate::new();
        aggregate.start_seconds(1_700_000_000_500, [0, 1]);
        let measured = |n: usize| {
            let mut tally = Tally::new();
            for _ in 0..n {
                get(&mut tally, "/a", 5, false);
            }
            tally.take()
        };
        let at = Duration::from_millis;
        // Reporter 1's second 0 comes after reporter 0's second 1: second 0 waits for it.
        aggregate.absorb_second(0, 0, measured(10));
        aggregate.absorb_second(0, 1, measured(10));
        assert_eq!(aggregate.close_seconds(at(2_100), 3), 0);
        aggregate.absorb_second(1, 0, measured(10));
        assert_eq!(aggregate.close_seconds(at(2_100), 3), 1);
        aggregate.absorb_second(1, 1, measured(10));
        assert_eq!(aggregate.close_seconds(at(2_100), 3), 1);
        let fresh = aggregate.take_fresh_points();
        assert_eq!(
            fresh
                .iter()
                .map(|p| (p.unix_seconds, p.requests))
                .collect::<Vec<_>>(),
            [(1_700_000_001, 20), (1_700_000_002, 20)]
        );
        // Second 2: reporter 1 is silent; after the grace the point is made with what came,
        // and its late report amends it.
        aggregate.absorb_second(0, 2, measured(10));
        assert_eq!(aggregate.close_seconds(at(3_500), 3), 0);
        assert_eq!(aggregate.close_seconds(at(5_000), 3), 1);
        aggregate.absorb_second(1, 2, measured(7));
        let fresh = aggregate.take_fresh_points();
        assert_eq!(fresh.last().map(|p| p.requests), Some(17));
        assert_eq!(aggregate.history()[2].requests, 17);
        assert_eq!(aggregate.total_row().requests, 57);
        // 57 requests over three seconds in the live table's rate.
        assert_eq!(aggregate.total_row().current_rps, 19.0);
        // The end: what is left is made, the second under way included.
        aggregate.absorb_second(0, 3, measured(4));
        aggregate.reporter_done(0);
        aggregate.reporter_done(1);
        aggregate.close_all_seconds(at(3_400), 0);
        let history = aggregate.history();
        assert_eq!(history.len(), 4);
        assert_eq!(history[3].requests, 4);
        assert_eq!(history[3].unix_seconds, 1_700_000_004);
    }

    #[test]
    fn ticks_make_history_and_live_rates() {
        let mut aggregate = Aggregate::new();
        let mut worker = Tally::new();
        for second in 0..3u64 {
            for _ in 0..10 {
                get(&mut worker, "/a", 10 + second, false);
            }
            get(&mut worker, "/b", 100, true);
            aggregate.absorb(worker.take());
            aggregate.tick(1_700_000_000 + second, 5);
        }
        let history = aggregate.history();
        assert_eq!(history.len(), 3);
        assert_eq!(history[2].rps, 11.0);
        assert_eq!(history[2].failures_per_sec, 1.0);
        assert_eq!(history[2].total_requests, 33);
        assert_eq!(history[2].users, 5);
        // 3 significant digits: within 0.1 % of 10 ms
        assert!((10_000..=10_010).contains(&history[0].p50_us()));
        let rows = aggregate.rows();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].name, "/a");
        assert_eq!(rows[0].requests, 30);
        assert_eq!(rows[0].current_rps, 10.0);
        assert_eq!(rows[1].failures, 3);
        assert_eq!(aggregate.total_row().requests, 33);

        aggregate.reset();
        assert_eq!(aggregate.total_row().requests, 0);
        assert!(aggregate.rows().is_empty());
        assert_eq!(aggregate.history().len(), 3);
        let result = aggregate.finish(RunMeta {
            start_unix_ms: 1_699_999_999_000,
            end_unix_ms: 1_700_000_010_000,
            ..RunMeta::default()
        });
        assert_eq!(result.meta.start_unix_ms, 1_700_000_002_000);
        assert_eq!(result.total.requests, 0);
    }

    #[test]
    fn interleaved_takes_count_every_request_once() {
        let mut workers: Vec<Tally> = (0..4).map(|_| Tally::new()).collect();
        let mut aggregate = Aggregate::new();
        let mut x: u64 = 42;
        let mut sent = 0u64;
        let names = ["/a", "/b", "/c"];
        for step in 0..20_000u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            let worker = (x >> 60) as usize % workers.len();
            get(
                &mut workers[worker],
                names[(x >> 40) as usize % 3],
                1 + (x >> 50) % 50,
                x.is_multiple_of(7),
            );
            sent += 1;
            if (x >> 20).is_multiple_of(97) {
                aggregate.absorb(workers[worker].take());
            }
            if step % 1000 == 999 {
                aggregate.tick(step / 1000, 4);
            }
        }
        for worker in &mut workers {
            aggregate.absorb(worker.take());
        }
        let rows = aggregate.rows();
        assert_eq!(rows.iter().map(|r| r.requests).sum::<u64>(), sent);
        assert_eq!(aggregate.total_row().requests, sent);
        assert_eq!(aggregate.total().histogram.len(), sent);
        let failures: u64 = rows.iter().map(|r| r.failures).sum();
        assert_eq!(aggregate.total_row().failures, failures);
    }
}
