//! The page's copy of the run going, brought up to date once per engine update with one look
//! at the engine's `Aggregate` (under its lock, however many pages are open): each row's
//! JSON, the total, the failures, the exceptions, the history points and the monitors' series.
//! Every page's `update` event and every connecting page's `full` event are rendered from it,
//! so an open page costs the engine nothing (issue 19, item 5).

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use super::system::SystemSeries;
use super::views;
use crate::engine::LiveUpdate;
use crate::monitor::Look;
use crate::stats::{Aggregate, HistoryPoint};

/// History points kept for a page that connects: past this many the older half is thinned.
const KEEP_POINTS: usize = 3600;

/// What the pages have of the run going.
#[derive(Debug, Default)]
pub(super) struct LiveView {
    /// (name, method) -> the row as the page shows it.
    rows: BTreeMap<(String, String), Value>,
    /// What each row's JSON was made from: (requests, failures, rps × 100).
    made_from: HashMap<(String, String), (u64, u64, u64)>,
    aggregated: Value,
    failures: Value,
    failures_seen: u64,
    exceptions: Value,
    exceptions_seen: u64,
    history: Vec<HistoryPoint>,
    system: SystemSeries,
}

impl LiveView {
    /// A run started at `start_unix_ms` (its monitors' seconds count from there).
    pub(super) fn new(start_unix_ms: u64) -> Self {
        let empty = Aggregate::new();
        Self {
            aggregated: views::total_row(&empty, 0.0, 0.0),
            failures: json!([]),
            exceptions: json!([]),
            system: SystemSeries::new(start_unix_ms),
            ..Self::default()
        }
    }

    /// Brings the view up to the engine's `update` (called with the engine's aggregate, once
    /// per update) and returns what changed, for every page: the rows that changed, the
    /// total, the new points, the failures and exceptions when they changed.
    pub(super) fn advance(&mut self, aggregate: &Aggregate, update: &LiveUpdate) -> Value {
        let mut changed = Vec::new();
        let mut present = Vec::with_capacity(update.rows.len());
        for row in &update.rows {
            let key = (row.name.clone(), row.method.clone());
            let now = (row.requests, row.failures, (row.current_rps * 100.0) as u64);
            if self.made_from.get(&key) != Some(&now) || !self.rows.contains_key(&key) {
                let json = views::live_row(aggregate, row);
                self.made_from.insert(key.clone(), now);
                self.rows.insert(key.clone(), json.clone());
                changed.push(json);
            }
            present.push(key);
        }
        if present.len() != self.rows.len() {
            // A reset forgot rows.
            let present: std::collections::HashSet<_> = present.into_iter().collect();
            self.rows.retain(|key, _| present.contains(key));
            self.made_from.retain(|key, _| present.contains(key));
        }
        let total = &update.total;
        self.aggregated =
            views::total_row(aggregate, total.current_rps, total.current_failures_per_sec);
        for point in &update.points {
            self.add_point(point);
        }
        let mut body = json!({
            "rows": changed,
            "aggregated": self.aggregated,
            "point": update.point.as_ref().map(views::point_json),
            // The seconds made (or amended by a late report) since the last update.
            "points": update.points.iter().map(views::point_json).collect::<Vec<_>>(),
        });
        let failures = aggregate.total().failures;
        if std::mem::replace(&mut self.failures_seen, failures) != failures {
            self.failures = views::failures_json(aggregate);
            body["failures"] = self.failures.clone();
        }
        let exceptions: u64 = aggregate.errors().iter().map(|e| e.count).sum();
        if std::mem::replace(&mut self.exceptions_seen, exceptions) != exceptions {
            self.exceptions = views::exceptions_json(aggregate);
            body["exceptions"] = self.exceptions.clone();
        }
        body
    }

    /// Takes in the monitors' newest look; what is new for the pages, if anything.
    pub(super) fn absorb_monitors(&mut self, look: &Look) -> Option<Value> {
        self.system.absorb(look)
    }

    fn add_point(&mut self, point: &HistoryPoint) {
        let history = &mut self.history;
        let mut at = history.len();
        while at > 0 && history[at - 1].unix_seconds > point.unix_seconds {
            at -= 1;
        }
        if at > 0 && history[at - 1].unix_seconds == point.unix_seconds {
            history[at - 1] = point.clone();
        } else {
            history.insert(at, point.clone());
        }
        if history.len() > KEEP_POINTS {
            let half = history.len() / 2;
            let older: Vec<HistoryPoint> = history.drain(..half).step_by(2).collect();
            history.splice(0..0, older);
        }
    }

    /// Everything, for a page that connects (the body of `GET /api/stats` less `info`).
    pub(super) fn full_json(&self) -> Value {
        json!({
            "rows": self.rows.values().collect::<Vec<_>>(),
            "aggregated": self.aggregated,
            "failures": self.failures,
            "exceptions": self.exceptions,
            "history": views::thin(&self.history).iter().map(views::point_json).collect::<Vec<_>>(),
            "system": self.system.full_json(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::engine::RunState;
    use crate::stats::{RequestSample, Tally};

    fn aggregate_of(names: &[(&'static str, u64)]) -> Aggregate {
        let mut tally = Tally::new();
        for (name, count) in names {
            for _ in 0..*count {
                tally.record(&RequestSample {
                    method: "GET",
                    name,
                    latency: Duration::from_millis(5),
                    response_bytes: 10,
                    failure: None,
                });
            }
        }
        let mut aggregate = Aggregate::new();
        aggregate.absorb(tally.take());
        aggregate
    }

    fn update_of(aggregate: &Aggregate) -> LiveUpdate {
        LiveUpdate {
            state: RunState::Running,
            users: 1,
            unix_seconds: 0,
            rows: aggregate.rows(),
            total: aggregate.total_row(),
            point: None,
            points: Vec::new(),
            flows: Vec::new(),
            dropped_iterations: 0,
            cut_iterations: 0,
            errors: 0,
        }
    }

    #[test]
    fn an_update_carries_only_the_rows_that_changed_and_the_full_view_carries_all() {
        let mut view = LiveView::new(0);
        let first = aggregate_of(&[("/a", 2), ("/b", 3)]);
        let body = view.advance(&first, &update_of(&first));
        assert_eq!(body["rows"].as_array().unwrap().len(), 2);
        let mut second = aggregate_of(&[("/a", 2), ("/b", 3)]);
        second.absorb({
            let mut tally = Tally::new();
            tally.record(&RequestSample {
                method: "GET",
                name: "/b",
                latency: Duration::from_millis(5),
                response_bytes: 10,
                failure: None,
            });
            tally.take()
        });
        let body = view.advance(&second, &update_of(&second));
        let rows = body["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{body}");
        assert_eq!(rows[0]["name"], json!("/b"));
        assert_eq!(rows[0]["requests"], json!(4));
        assert_eq!(body["aggregated"]["requests"], json!(6));
        let full = view.full_json();
        assert_eq!(full["rows"].as_array().unwrap().len(), 2);
        assert_eq!(full["rows"][1]["requests"], json!(4));
        // A reset that forgot /a: the full view forgets it too.
        let after_reset = aggregate_of(&[("/b", 1)]);
        view.advance(&after_reset, &update_of(&after_reset));
        assert_eq!(view.full_json()["rows"].as_array().unwrap().len(), 1);
    }
}
