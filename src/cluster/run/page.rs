//! A master that serves the page: runs one after another on the same workers, each started,
//! steered and stopped by the page (through the engine's `RemoteRun`) instead of by the
//! command line's plan.

use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use super::{MemberState, Phase, Run};
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
        self.members.retain(|_, m| m.state != MemberState::Missing);
        for member in self.members.values_mut() {
            if member.state == MemberState::Finished {
                member.state = MemberState::Ready;
            }
            member.rows.clear();
            member.share = 0;
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

    /// "Reset stats": forgets the measurements here and the ones the workers have not sent.
    pub(in crate::cluster) fn reset(&mut self) {
        self.aggregate().reset();
        for member in self.members.values_mut() {
            member.requests = 0;
            if member.state == MemberState::Running {
                let _ = member.sender.send(super::ToWorker::Reset);
            }
        }
        self.publish_status();
    }

    /// What the page shows as the run's state.
    pub(in crate::cluster) fn page_state(&self) -> RunState {
        match self.phase {
            Phase::Running => {
                let target: u64 = self
                    .members
                    .values()
                    .filter(|m| m.state == MemberState::Running)
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

    /// Ends a finished run without letting the workers go: the result, and idle again.
    pub(in crate::cluster) fn end_run(&mut self) -> RunResult {
        let result = self.result();
        for member in self.members.values_mut() {
            member.users = 0;
            if member.state == MemberState::Stopping {
                member.state = MemberState::Finished;
            }
        }
        self.phase = Phase::Waiting;
        self.start_unix_ms = 0;
        self.publish_status();
        result
    }
}
