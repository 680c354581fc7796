//! The seconds of a run while their reports come in. Every reporter (an engine worker
//! thread, or a cluster worker) says which second its measurements belong to, counted from the
//! run's shared start; each second adds what every reporter measured in it, and is closed
//! (made a history point by the `Aggregate`) once every reporter has reported it, or once it
//! has been over for [`GRACE`] (a report that comes later amends its point). So a second
//! holds what happened in it, whenever the reports arrive. Bookkeeping only: no clock, no IO.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::{Histogram, Snapshot};

/// How long a second waits, once over, for reporters that have not reported it; then it is
/// closed with what came.
pub const GRACE: Duration = Duration::from_secs(2);

/// What one second gathered from every reporter so far.
#[derive(Debug, Clone, Default)]
pub(crate) struct Window {
    pub(crate) requests: u64,
    pub(crate) failures: u64,
    /// Every latency of the second (all names).
    pub(crate) latencies: Histogram,
    /// Requests and failures by the aggregate's entry index (for the live table's current
    /// rates).
    pub(crate) by_entry: HashMap<usize, (u64, u64)>,
}

impl Window {
    /// Adds a snapshot whose `i`-th entry is the aggregate's entry `indexes[i]`.
    pub(crate) fn add(&mut self, snapshot: &Snapshot, indexes: &[usize]) {
        for (entry, index) in snapshot.entries.iter().zip(indexes) {
            // A cluster worker's counts are whatever it sent: they saturate.
            self.requests = self.requests.saturating_add(entry.requests);
            self.failures = self.failures.saturating_add(entry.failures);
            self.latencies.add(&entry.histogram);
            let counts = self.by_entry.entry(*index).or_default();
            counts.0 = counts.0.saturating_add(entry.requests);
            counts.1 = counts.1.saturating_add(entry.failures);
        }
    }
}

/// Where a report's second stands.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// Not closed yet: added to its window.
    Open,
    /// Closed already: the caller amends its point.
    Closed,
}

/// The open seconds, who has reported what, and the first second not closed yet.
#[derive(Debug, Clone, Default)]
pub(crate) struct Timeline {
    windows: BTreeMap<u64, Window>,
    /// Reporter -> the first second it has not reported.
    reporters: BTreeMap<u64, u64>,
    /// The first second not closed.
    next: u64,
}

impl Timeline {
    /// `reporter` will report every second from `from` (the ones before are not waited for).
    pub(crate) fn expect(&mut self, reporter: u64, from: u64) {
        let next = self.reporters.entry(reporter).or_insert(from);
        *next = (*next).max(from);
    }

    /// `reporter` reports no more (it finished or was lost): no second waits for it.
    pub(crate) fn leave(&mut self, reporter: u64) {
        self.reporters.remove(&reporter);
    }

    /// Notes that `reporter` has reported everything up to the end of `second`, and says
    /// where `second` stands; `window` is the open window to add its measurements to.
    pub(crate) fn report(&mut self, reporter: u64, second: u64) -> Place {
        if let Some(next) = self.reporters.get_mut(&reporter) {
            *next = (*next).max(second.saturating_add(1));
        }
        if second < self.next {
            Place::Closed
        } else {
            Place::Open
        }
    }

    /// The open window of `second` (made empty if nothing came for it yet).
    pub(crate) fn window(&mut self, second: u64) -> &mut Window {
        self.windows.entry(second).or_default()
    }

    /// Every open window (for "reset stats", which forgets their per-entry counts).
    pub(crate) fn windows_mut(&mut self) -> impl Iterator<Item = &mut Window> {
        self.windows.values_mut()
    }

    /// The first second not closed yet.
    pub(crate) fn next_open(&self) -> u64 {
        self.next
    }

    /// Closes the next second if it may be closed `elapsed` after the start: every reporter
    /// has reported it, or it has been over for [`GRACE`], or no reporter is left and it is
    /// over. Returns the second and what it gathered.
    pub(crate) fn close_next(&mut self, elapsed: Duration) -> Option<(u64, Window)> {
        let second = self.next;
        let end = Duration::from_secs(second.saturating_add(1));
        let reported = !self.reporters.is_empty() && self.reporters.values().all(|n| *n > second);
        let over = elapsed >= end;
        let waited = elapsed >= end.saturating_add(GRACE);
        if !(reported || waited || (over && self.reporters.is_empty())) {
            return None;
        }
        Some(self.take_next())
    }

    /// Closes the next second whatever has been reported (the run is over); `None` once
    /// every second up to `last` is closed.
    pub(crate) fn close_next_up_to(&mut self, last: u64) -> Option<(u64, Window)> {
        (self.next <= last).then(|| self.take_next())
    }

    /// The last second anything was reported for, if any is still open.
    pub(crate) fn last_open_window(&self) -> Option<u64> {
        self.windows.keys().next_back().copied()
    }

    fn take_next(&mut self) -> (u64, Window) {
        let second = self.next;
        self.next = self.next.saturating_add(1);
        (second, self.windows.remove(&second).unwrap_or_default())
    }
}

/// What a cluster worker takes out of its engine's aggregate: the measurements by the second
/// they belong to, and which seconds are closed (every thread reported them). See
/// [`Aggregate::set_tap`](super::Aggregate::set_tap).
#[derive(Debug, Clone, Default)]
pub struct SecondsTap {
    by_second: BTreeMap<u64, Snapshot>,
    closed_before: u64,
}

impl SecondsTap {
    pub(crate) fn add(&mut self, second: u64, snapshot: &Snapshot) {
        self.by_second.entry(second).or_default().merge(snapshot);
    }

    pub(crate) fn closed_before(&mut self, second: u64) {
        self.closed_before = self.closed_before.max(second);
    }

    /// The closed seconds' measurements not taken yet (a closed second may come again with a
    /// thread's late report).
    pub fn take_closed(&mut self) -> Vec<(u64, Snapshot)> {
        let open = self.by_second.split_off(&self.closed_before);
        std::mem::replace(&mut self.by_second, open)
            .into_iter()
            .filter(|(_, snapshot)| !snapshot.is_empty())
            .collect()
    }

    /// Every second's measurements not taken yet (the run is over).
    pub fn take_all(&mut self) -> Vec<(u64, Snapshot)> {
        std::mem::take(&mut self.by_second)
            .into_iter()
            .filter(|(_, snapshot)| !snapshot.is_empty())
            .collect()
    }

    /// Forgets what was not taken ("reset stats").
    pub fn clear(&mut self) {
        self.by_second.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: f64) -> Duration {
        Duration::from_secs_f64(seconds)
    }

    #[test]
    fn a_second_closes_when_every_reporter_reported_it_or_its_grace_is_over() {
        let mut timeline = Timeline::default();
        timeline.expect(0, 0);
        timeline.expect(1, 0);
        assert_eq!(timeline.report(0, 0), Place::Open);
        assert!(
            timeline.close_next(at(1.1)).is_none(),
            "reporter 1 is missing"
        );
        assert_eq!(timeline.report(1, 0), Place::Open);
        assert_eq!(timeline.close_next(at(1.1)).map(|(s, _)| s), Some(0));
        // Second 1: reporter 1 is slow; after the grace the second closes anyway.
        timeline.report(0, 1);
        assert!(timeline.close_next(at(2.5)).is_none());
        assert_eq!(timeline.close_next(at(4.0)).map(|(s, _)| s), Some(1));
        // Its late report is for a closed second: the point is amended.
        assert_eq!(timeline.report(1, 1), Place::Closed);
        // A reporter that left is not waited for; with none left, a second closes when over.
        timeline.report(0, 2);
        timeline.leave(1);
        assert_eq!(timeline.close_next(at(3.0)).map(|(s, _)| s), Some(2));
        timeline.leave(0);
        assert!(
            timeline.close_next(at(3.5)).is_none(),
            "second 3 is not over"
        );
        assert_eq!(timeline.close_next(at(4.0)).map(|(s, _)| s), Some(3));
    }

    #[test]
    fn a_reporter_that_joins_later_is_waited_for_from_its_first_second() {
        let mut timeline = Timeline::default();
        timeline.expect(0, 0);
        timeline.report(0, 4);
        for second in 0..5 {
            assert_eq!(timeline.close_next(at(5.0)).map(|(s, _)| s), Some(second));
        }
        timeline.expect(7, 5);
        timeline.report(0, 5);
        assert!(
            timeline.close_next(at(6.1)).is_none(),
            "7 has not reported 5"
        );
        timeline.report(7, 5);
        assert_eq!(timeline.close_next(at(6.1)).map(|(s, _)| s), Some(5));
        // The end of the run closes what is left, reported or not.
        timeline.window(8).requests = 3;
        assert_eq!(timeline.last_open_window(), Some(8));
        let rest: Vec<(u64, u64)> = std::iter::from_fn(|| timeline.close_next_up_to(8))
            .map(|(s, w)| (s, w.requests))
            .collect();
        assert_eq!(rest, [(6, 0), (7, 0), (8, 3)]);
    }
}
