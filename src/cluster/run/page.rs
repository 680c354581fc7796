//! A master that serves the page: runs one after another on the same workers, each started,
//! steered and stopped by the page (through the engine's `RemoteRun`) instead of by the
//! command line's plan.

use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use super::{Phase, Run, WorkerState};
use crate::engine::{Plan, RunState};
use crate::stats::{Aggregate, RunMeta, RunResult};

impl Run {
    /// A master whose runs the page starts ([`Run::start`]); workers that join only wait.
    pub(in crate::cluster) fn for_page(mut self) -> Run {
        self.autostart = false;
        self
    }

    /// True between runs.
    pub(in crate::cluster) fn is_idle(&self) -> bool {
        self.phase == Phase::Waiting
    }

    /// Starts `plan` on the workers there, merging into `aggregate` (the engine handle's).
    pub(in crate::cluster) fn start(
        &mut self,
        plan: Plan,
        meta: RunMeta,
        aggregate: Arc<Mutex<Aggregate>>,
    ) {
        self.members.retain(|_, m| m.state != WorkerState::Missing);
        self.arrivals_paused = false;
        for member in self.members.values_mut() {
            if member.state == WorkerState::Finished {
                member.state = WorkerState::Ready;
            }
            member.rows.clear();
            member.share = 0;
            member.rate = 0.0;
            member.users = 0;
            member.requests = 0;
        }
        self.rows = self.config.unique_rows.map(super::RowPool::new);
        self.config.plan = plan;
        self.config.meta = meta;
        self.aggregate = aggregate;
        self.short_warned = false;
        self.table.clear();
        self.stop_deadline = None;
        self.begin();
    }

    /// The page's "Change users": the rest of the plan is this count, split over the workers.
    pub(in crate::cluster) fn set_users(&mut self, users: u64, spawn_rate: f64) {
        if self.phase != Phase::Running {
            return;
        }
        if self.is_open_model() {
            self.notify("an open-model run (arrival rate) has no user count to set");
            return;
        }
        let Ok(plan) = Plan::users(users, Some(spawn_rate), None) else {
            return;
        };
        self.config.plan = plan;
        self.stage = 0;
        self.stage_started = Instant::now();
        for member in self.members.values_mut() {
            // Always send the new rate.
            member.share = u64::MAX;
        }
        self.notify(&format!("moving to {users} user(s)"));
        self.rebalance();
    }

    /// An open-model run's new rate (a capacity search's step), split over the workers;
    /// `None` starts no iteration until the next rate (the users finish what they started).
    pub(in crate::cluster) fn set_arrivals(&mut self, per_second: Option<f64>, max_users: u64) {
        if self.phase != Phase::Running {
            return;
        }
        if !self.is_open_model() {
            self.notify("a closed-model run (users) has no arrival rate to set");
            return;
        }
        self.arrivals_paused = per_second.is_none();
        if let Some(per_second) = per_second {
            let Ok(plan) = Plan::arrival_rate(per_second, max_users, None) else {
                return;
            };
            self.config.plan = plan;
            self.stage = 0;
            self.stage_started = Instant::now();
            self.notify(&format!(
                "moving to {} iterations per second",
                crate::stats::capacity::show_rate(per_second)
            ));
        }
        self.rebalance();
    }

    /// Where the merged seconds also go (a capacity search's tap).
    pub(in crate::cluster) fn tap(&mut self, tap: Arc<Mutex<crate::stats::SecondsTap>>) {
        self.aggregate().set_tap(tap);
    }

    /// "Reset stats": forgets the measurements here and the ones the workers have not sent.
    pub(in crate::cluster) fn reset(&mut self) {
        self.aggregate().reset();
        for member in self.members.values_mut() {
            member.requests = 0;
            if member.state == WorkerState::Running {
                let _ = member.sender.send(super::ToWorker::Reset);
            }
        }
        self.publish_status();
    }

    /// What the page shows as the run's state.
    pub(in crate::cluster) fn page_state(&self) -> RunState {
        match self.phase {
            Phase::Running if self.is_open_model() => RunState::Running,
            Phase::Running => {
                let target: u64 = self
                    .members
                    .values()
                    .filter(|m| m.state == WorkerState::Running)
                    .map(|m| m.share)
                    .sum();
                if self.users() < target {
                    RunState::Spawning
                } else {
                    RunState::Running
                }
            }
            Phase::Stopping => RunState::Stopping,
            Phase::Waiting | Phase::Done => RunState::Stopped,
        }
    }

    pub(in crate::cluster) fn users_now(&self) -> u64 {
        self.users()
    }

    /// The monitors' newest values (`--monitor`, the master's own), for the page.
    pub(in crate::cluster) fn monitors_now(&self) -> crate::monitor::Look {
        lock_status(&self.status).monitors.clone()
    }

    /// Ends a finished run without letting the workers go: the result, and idle again.
    pub(in crate::cluster) fn end_run(&mut self) -> RunResult {
        let result = self.result();
        for member in self.members.values_mut() {
            member.users = 0;
            if member.state == WorkerState::Stopping {
                member.state = WorkerState::Finished;
            }
        }
        self.phase = Phase::Waiting;
        self.start_unix_ms = 0;
        self.publish_status();
        result
    }
}

fn lock_status(status: &Mutex<super::Status>) -> std::sync::MutexGuard<'_, super::Status> {
    status.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tokio::sync::mpsc;

    use super::super::tests::{join, master_config};
    use super::super::{Event, Status, ToMaster, ToWorker};
    use super::*;

    fn page_run() -> Run {
        let plan = Plan::users(1, Some(1.0), None).unwrap();
        let config = master_config(plan, None, 2, Arc::new(|_: &str| {}));
        Run::new(config, Arc::new(Mutex::new(Status::default()))).for_page()
    }

    fn told(inbox: &mut mpsc::UnboundedReceiver<ToWorker>) -> Vec<ToWorker> {
        std::iter::from_fn(|| inbox.try_recv().ok()).collect()
    }

    fn start(run: &mut Run, users: u64) -> Arc<Mutex<Aggregate>> {
        let aggregate = Arc::new(Mutex::new(Aggregate::new()));
        let plan = Plan::users(users, Some(users as f64), None).unwrap();
        run.start(plan, RunMeta::default(), aggregate.clone());
        aggregate
    }

    #[test]
    fn page_runs_follow_one_another_on_the_same_workers() {
        let mut run = page_run();
        let mut inboxes: BTreeMap<u32, _> = (1..=2).map(|id| (id, join(&mut run, id))).collect();
        // Ready workers wait for the page.
        assert!(run.is_idle());
        assert!(inboxes.values_mut().all(|inbox| told(inbox).is_empty()));

        for round in 0..2 {
            start(&mut run, 10);
            for inbox in inboxes.values_mut() {
                assert!(
                    matches!(told(inbox)[..], [ToWorker::Start { users: 5, .. }]),
                    "round {round}"
                );
            }
            assert_eq!(run.page_state(), RunState::Spawning);
            run.set_users(20, 4.0);
            for inbox in inboxes.values_mut() {
                assert_eq!(
                    told(inbox),
                    [ToWorker::SetUsers {
                        users: 10,
                        spawn_rate: 2.0
                    }]
                );
            }
            run.reset();
            for inbox in inboxes.values_mut() {
                assert_eq!(told(inbox), [ToWorker::Reset]);
            }
            run.stop(false);
            for (id, inbox) in &mut inboxes {
                assert_eq!(told(inbox), [ToWorker::Stop { now: false }]);
                run.on_event(Event::Message {
                    id: *id,
                    message: ToMaster::Finished {
                        seconds: Vec::new(),
                    },
                });
            }
            assert!(run.is_done());
            run.end_run();
            assert!(run.is_idle());
            assert_eq!(run.page_state(), RunState::Stopped);
            // The workers are not let go between runs.
            assert!(inboxes.values_mut().all(|inbox| told(inbox).is_empty()));
        }
    }
}
