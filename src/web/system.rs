//! The page's System tab: every monitor series (`--monitor`, and chorus's own CPU and memory)
//! on the page's time axis (Unix seconds, as the history points), and whether chorus's own CPU
//! has stayed above 90 % (then latencies include chorus's own queueing). Kept from the
//! engine's look each second while a run goes on, or read from a finished result.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::monitor::{Look, Monitored, Unit};

/// At most this many points per series go to a page that connects; older ones are thinned.
const MAX_POINTS: usize = 1800;

/// Unix time at the end of `second` of a run started at `start_unix_ms` (the time of the
/// history point of that second).
pub(super) fn unix_seconds_of(start_unix_ms: u64, second: u64) -> u64 {
    start_unix_ms.saturating_add(second.saturating_add(1).saturating_mul(1000)) / 1000
}

fn unit_name(unit: Unit) -> &'static str {
    match unit {
        Unit::Percent => "percent",
        Unit::Bytes => "bytes",
        Unit::BytesPerSecond => "bytes_per_second",
        Unit::Count => "count",
        Unit::Number => "number",
        Unit::PerSecond => "per_second",
    }
}

/// The series of the run going, as the page has them.
#[derive(Debug, Default)]
pub(super) struct SystemSeries {
    start_unix_ms: u64,
    /// name -> (unit, (unix second, value)); a second comes once.
    series: BTreeMap<String, (Unit, Vec<(u64, f64)>)>,
    saturated: bool,
    saturated_seconds: u64,
    notices: Vec<Value>,
}

impl SystemSeries {
    pub(super) fn new(start_unix_ms: u64) -> Self {
        Self {
            start_unix_ms,
            ..Self::default()
        }
    }

    /// Takes in the engine's newest look; returns what is new for the pages (`None` when
    /// nothing is).
    pub(super) fn absorb(&mut self, look: &Look) -> Option<Value> {
        let mut fresh = Vec::new();
        for (name, unit, second, value) in &look.points {
            let t = unix_seconds_of(self.start_unix_ms, *second);
            let (_, points) = self
                .series
                .entry(name.clone())
                .or_insert_with(|| (*unit, Vec::new()));
            if points.last().is_some_and(|(last, _)| *last >= t) {
                continue;
            }
            points.push((t, *value));
            if points.len() > 2 * MAX_POINTS {
                *points = thin(points);
            }
            fresh.push(json!({ "name": name, "unit": unit_name(*unit), "t": t, "v": value }));
        }
        let notices_changed = look.notices.len() != self.notices.len();
        if notices_changed {
            self.notices = notices_json(self.start_unix_ms, &look.notices);
        }
        let state_changed =
            (look.saturated, look.saturated_seconds) != (self.saturated, self.saturated_seconds);
        self.saturated = look.saturated;
        self.saturated_seconds = look.saturated_seconds;
        if fresh.is_empty() && !notices_changed && !state_changed {
            return None;
        }
        let mut body = json!({
            "points": fresh,
            "saturated": self.saturated,
            "saturated_seconds": self.saturated_seconds,
        });
        if notices_changed {
            body["notices"] = Value::Array(self.notices.clone());
        }
        Some(body)
    }

    /// Everything so far, for a page that connects.
    pub(super) fn full_json(&self) -> Value {
        json!({
            "series": self.series.iter().map(|(name, (unit, points))| series_json(name, *unit, &thin(points))).collect::<Vec<_>>(),
            "saturated": self.saturated,
            "saturated_seconds": self.saturated_seconds,
            "notices": self.notices,
        })
    }
}

/// A finished run's series, as [`SystemSeries::full_json`] shows a live one.
pub(super) fn result_system_json(monitored: &Monitored, start_unix_ms: u64) -> Value {
    json!({
        "series": monitored.series.iter().map(|s| {
            let points: Vec<(u64, f64)> = s.points.iter().map(|(second, v)| (unix_seconds_of(start_unix_ms, *second), *v)).collect();
            series_json(&s.name, s.unit, &thin(&points))
        }).collect::<Vec<_>>(),
        "saturated": false,
        "saturated_seconds": monitored.generator_saturated_seconds,
        "notices": notices_json(start_unix_ms, &monitored.notices),
    })
}

fn series_json(name: &str, unit: Unit, points: &[(u64, f64)]) -> Value {
    json!({ "name": name, "unit": unit_name(unit), "points": points })
}

fn notices_json(start_unix_ms: u64, notices: &[crate::monitor::Notice]) -> Vec<Value> {
    notices
        .iter()
        .map(|n| json!({ "t": unix_seconds_of(start_unix_ms, n.second), "text": n.text }))
        .collect()
}

fn thin(points: &[(u64, f64)]) -> Vec<(u64, f64)> {
    if points.len() <= MAX_POINTS {
        return points.to_vec();
    }
    let step = points.len().div_ceil(MAX_POINTS);
    points.iter().step_by(step).copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::Notice;

    fn look(second: u64, cpu: f64, saturated: bool, notices: usize) -> Look {
        Look {
            points: vec![
                ("process:7.cpu".to_owned(), Unit::Percent, second, cpu),
                ("host.memory".to_owned(), Unit::Percent, second, 40.0),
            ],
            saturated,
            saturated_seconds: u64::from(saturated),
            notices: (0..notices)
                .map(|i| Notice {
                    second: i as u64,
                    text: format!("notice {i}"),
                })
                .collect(),
        }
    }

    #[test]
    fn each_second_of_a_series_goes_to_the_pages_once_on_the_history_s_time_axis() {
        let mut system = SystemSeries::new(1_700_000_000_500);
        let first = system.absorb(&look(0, 5.0, false, 0)).unwrap();
        assert_eq!(first["points"][0]["t"], json!(1_700_000_001));
        assert_eq!(first["points"].as_array().unwrap().len(), 2);
        assert!(first.get("notices").is_none());
        // The same look again (no new second): nothing for the pages.
        assert_eq!(system.absorb(&look(0, 5.0, false, 0)), None);
        let next = system.absorb(&look(1, 60.0, true, 1)).unwrap();
        assert_eq!(next["saturated"], json!(true));
        assert_eq!(next["notices"][0]["text"], json!("notice 0"));
        let full = system.full_json();
        let cpu = full["series"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "process:7.cpu")
            .unwrap();
        assert_eq!(cpu["unit"], json!("percent"));
        assert_eq!(
            cpu["points"],
            json!([[1_700_000_001u64, 5.0], [1_700_000_002u64, 60.0]])
        );
    }

    #[test]
    fn a_finished_run_s_series_are_on_the_same_axis_with_its_saturated_seconds() {
        let monitored = Monitored {
            series: vec![crate::monitor::Series {
                name: "host.cpu".to_owned(),
                unit: Unit::Percent,
                points: vec![(0, 10.0), (1, 20.0)],
            }],
            notices: Vec::new(),
            generator_saturated_seconds: 4,
            workers_saturated_seconds: Default::default(),
        };
        let json = result_system_json(&monitored, 1_700_000_000_000);
        assert_eq!(
            json["series"][0]["points"],
            json!([[1_700_000_001u64, 10.0], [1_700_000_002u64, 20.0]])
        );
        assert_eq!(json["saturated_seconds"], json!(4));
    }
}
