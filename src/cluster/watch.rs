//! Each worker's own CPU and memory as the master keeps them: a series of each per worker for
//! the result (`worker:NAME.cpu`, `worker:NAME.memory` beside the monitors), the newest values
//! for the terminal and the page, and a notice when a worker's CPU stays above 90 % of its
//! cores for a few seconds (its latencies then include its own queueing). Plain data: the
//! master's state machine feeds it what the workers sent.

use std::collections::BTreeMap;

use super::protocol::ProcessLoad;
use crate::monitor::{Monitored, Notice, Series, Unit};

/// Seconds above this share of its cores make a worker's latencies suspect (as for chorus's
/// own CPU on one machine).
const SATURATED_PERCENT: f64 = 90.0;
/// How many seconds in a row before the master says so.
const SATURATED_FOR: u64 = 3;
/// The most cores a worker may claim (its `--threads` bound).
const MAX_CORES: u32 = 1024;

/// One worker's numbers.
#[derive(Debug, Default)]
struct Watched {
    name: String,
    cpu: Vec<(u64, f64)>,
    memory: Vec<(u64, f64)>,
    /// The newest sample, as it came (checked).
    latest: Option<ProcessLoad>,
    /// Seconds in a row above [`SATURATED_PERCENT`], and in all.
    saturated_run: u64,
    saturated_seconds: u64,
}

/// The newest values of one worker, for the status.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorkerLoad {
    pub cpu_percent: f64,
    pub memory_bytes: u64,
    pub cores: u32,
    /// Its CPU has stayed above 90 % of its cores for 3 seconds or more.
    pub saturated: bool,
}

/// Every worker's numbers over a run.
#[derive(Debug, Default)]
pub(super) struct Watch {
    workers: BTreeMap<u32, Watched>,
    notices: Vec<Notice>,
}

impl Watch {
    /// Takes worker `id`'s sample, its second at most `latest_second` (a later one is a
    /// broken or hostile worker's: counted there). A sample whose second is not after the
    /// worker's last one is dropped, so a series holds at most one point per second of the
    /// run. Returns the notice to say when the worker has just become saturated.
    pub(super) fn record(
        &mut self,
        id: u32,
        name: &str,
        load: ProcessLoad,
        latest_second: u64,
    ) -> Option<String> {
        let watched = self.workers.entry(id).or_insert_with(|| Watched {
            name: name.to_owned(),
            ..Watched::default()
        });
        let second = load.second.min(latest_second);
        if watched.cpu.last().is_some_and(|(last, _)| *last >= second) {
            return None;
        }
        let cores = load.cores.clamp(1, MAX_CORES);
        let ceiling = f64::from(cores) * 100.0;
        let cpu = if load.cpu_percent.is_finite() {
            load.cpu_percent.clamp(0.0, ceiling)
        } else {
            0.0
        };
        let load = ProcessLoad {
            second,
            cpu_percent: cpu,
            memory_bytes: load.memory_bytes,
            cores,
        };
        watched.cpu.push((second, cpu));
        watched.memory.push((second, load.memory_bytes as f64));
        watched.latest = Some(load);
        if cpu / f64::from(cores) < SATURATED_PERCENT {
            watched.saturated_run = 0;
            return None;
        }
        watched.saturated_run += 1;
        watched.saturated_seconds += 1;
        if watched.saturated_run != SATURATED_FOR {
            return None;
        }
        let text = format!(
            "worker {:?} used {cpu:.0} % CPU ({cores} core(s)) for {SATURATED_FOR} s: its latencies from here include its own queueing; run fewer users per worker or more workers",
            watched.name
        );
        self.notices.push(Notice {
            second,
            text: text.clone(),
        });
        Some(text)
    }

    /// Worker `id`'s newest values (none before its first sample).
    pub(super) fn latest(&self, id: u32) -> Option<WorkerLoad> {
        let watched = self.workers.get(&id)?;
        let load = watched.latest?;
        Some(WorkerLoad {
            cpu_percent: load.cpu_percent,
            memory_bytes: load.memory_bytes,
            cores: load.cores,
            saturated: watched.saturated_run >= SATURATED_FOR,
        })
    }

    /// Puts every worker's series, notices and saturated seconds into `monitored` (the
    /// watch starts over).
    pub(super) fn finish_into(&mut self, monitored: &mut Monitored) {
        for watched in std::mem::take(&mut self.workers).into_values() {
            let label = format!("worker:{}", watched.name);
            if watched.saturated_seconds > 0 {
                monitored
                    .workers_saturated_seconds
                    .insert(watched.name.clone(), watched.saturated_seconds);
            }
            monitored.series.push(Series {
                name: format!("{label}.cpu"),
                unit: Unit::Percent,
                points: watched.cpu,
            });
            monitored.series.push(Series {
                name: format!("{label}.memory"),
                unit: Unit::Bytes,
                points: watched.memory,
            });
        }
        monitored.notices.append(&mut self.notices);
        monitored.notices.sort_by_key(|notice| notice.second);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(second: u64, cpu_percent: f64, cores: u32) -> ProcessLoad {
        ProcessLoad {
            second,
            cpu_percent,
            memory_bytes: 50 << 20,
            cores,
        }
    }

    #[test]
    fn a_worker_above_ninety_percent_of_its_cores_for_three_seconds_is_said_once() {
        let mut watch = Watch::default();
        // 150 % of 2 cores is 75 %: not saturated.
        assert_eq!(watch.record(1, "w1", load(0, 150.0, 2), 10), None);
        assert_eq!(watch.record(1, "w1", load(1, 190.0, 2), 10), None);
        assert_eq!(watch.record(1, "w1", load(2, 195.0, 2), 10), None);
        let said = watch.record(1, "w1", load(3, 199.0, 2), 10).unwrap();
        assert_eq!(
            said,
            "worker \"w1\" used 199 % CPU (2 core(s)) for 3 s: its latencies from here include its own queueing; run fewer users per worker or more workers"
        );
        assert_eq!(watch.record(1, "w1", load(4, 199.0, 2), 10), None);
        assert!(watch.latest(1).unwrap().saturated);
        assert_eq!(watch.record(1, "w1", load(5, 20.0, 2), 10), None);
        assert!(!watch.latest(1).unwrap().saturated);
        let mut monitored = Monitored::default();
        watch.finish_into(&mut monitored);
        assert_eq!(monitored.workers_saturated_seconds["w1"], 4);
        assert_eq!(monitored.notices.len(), 1);
        assert_eq!(monitored.notices[0].second, 3);
        let names: Vec<&str> = monitored.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["worker:w1.cpu", "worker:w1.memory"]);
        assert_eq!(monitored.series[0].points.len(), 6);
    }

    #[test]
    fn a_hostile_worker_cannot_grow_the_series_or_send_impossible_numbers() {
        let mut watch = Watch::default();
        watch.record(7, "bad", load(u64::MAX, f64::NAN, 0), 5);
        // Every later second is counted at the latest allowed, so it is dropped.
        for _ in 0..1000 {
            watch.record(7, "bad", load(u64::MAX, 1e12, u32::MAX), 5);
        }
        watch.record(7, "bad", load(2, -5.0, 1), 5);
        let latest = watch.latest(7).unwrap();
        assert_eq!((latest.cpu_percent, latest.cores), (0.0, 1));
        let mut monitored = Monitored::default();
        watch.finish_into(&mut monitored);
        assert_eq!(monitored.series[0].points, [(5, 0.0)]);
    }
}
