//! The master's state: which workers are there and what each was told, where the plan
//! stands, and the merged measurements. Driven by events (joins, messages, losses), the stage
//! timer and the one-second tick; its only IO is sending on the workers' channels, so it is
//! tested without sockets.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Notify;
use super::bundle::Bundle;
use super::link::Event;
use super::protocol::{SecondStats, ToMaster, ToWorker};
use super::share::{RowPool, rows_to_give, split_arrivals, split_rate, split_users};
use super::status::{Status, WorkerState, WorkerStatus};
use super::watch::Watch;
use crate::engine::{Load, Plan, RunState};
use crate::stats::RunMeta;
use crate::stats::now_unix_ms as unix_ms;
use crate::stats::{Aggregate, ErrorCount, RunResult, Snapshot, report};

#[cfg(test)]
mod fuzz;
mod page;

/// A lost worker's users are started on the others within about this long, whatever the
/// spawn rate (the page and the terminal show the count back within a few seconds).
const TAKE_OVER: Duration = Duration::from_secs(2);

/// A worker's second of the run is never later than this many seconds past the master's own
/// (a worker counts from the master's start; its reports arrive after the second they cover).
/// A later one, from a broken or hostile worker, is counted in the latest second allowed: the
/// master would otherwise close every second up to it, one point each.
const FAR_AHEAD: u64 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Waiting,
    Running,
    Stopping,
    Done,
}

/// Everything a master needs.
#[derive(Clone)]
pub struct MasterConfig {
    /// Where workers connect (`--master-bind`).
    pub bind: SocketAddr,
    pub token: Option<String>,
    /// Start when this many workers are ready (at least 1).
    pub expect_workers: usize,
    pub bundle: Bundle,
    /// The plan: users (stages) or arrival rates, shared out over the workers.
    pub plan: Plan,
    /// Rows of the scenario's `unique` sources, if it has any.
    pub unique_rows: Option<u64>,
    pub stop_timeout: Duration,
    /// `--max-body` (`None`: the scenario's own).
    pub max_body: Option<u64>,
    pub accept_invalid_certs: bool,
    /// Scenario, host, users, spawn rate and thresholds for the result.
    pub meta: RunMeta,
    /// `--iterations`: each user runs this many and ends; the run ends when every worker's
    /// users have (or at the plan's end).
    pub iterations: Option<u64>,
    /// `--monitor`: sampled here, on the master's machine, each second of the run.
    pub monitors: Vec<crate::monitor::Spec>,
    pub notify: Notify,
}

struct Member {
    name: String,
    peer: SocketAddr,
    sender: mpsc::UnboundedSender<ToWorker>,
    state: WorkerState,
    /// Indexes of `unique` rows given to it (for the rest of the run).
    rows: Vec<u32>,
    /// Users it was told to run (in the open model: the most users it may keep busy).
    share: u64,
    /// Open model: the arrivals per second it was told to start.
    rate: f64,
    /// Users it said it runs.
    users: u64,
    requests: u64,
}

/// The master's state, driven by events, timers and ticks (no IO but channel sends).
pub(super) struct Run {
    config: MasterConfig,
    status: Arc<Mutex<Status>>,
    phase: Phase,
    members: BTreeMap<u32, Member>,
    /// The merged measurements; a page's run shares it with the engine's handle.
    aggregate: Arc<Mutex<Aggregate>>,
    rows: Option<RowPool>,
    stage: usize,
    stage_started: Instant,
    /// Second 0 of the run: the workers count its seconds from here (see `ToWorker::Start`).
    run_started: Instant,
    /// When the stopping workers are given up on.
    stop_deadline: Option<Instant>,
    start_unix_ms: u64,
    short_warned: bool,
    /// The live table as of the last tick.
    table: String,
    /// A rebalance after a loss (see [`Run::take_over`]).
    taking_over: bool,
    /// Begin as soon as the expected workers are ready (headless); a page's master waits for
    /// [`Run::start`] instead.
    autostart: bool,
    /// An open-model run whose arrivals are paused (see [`Run::set_arrivals`]).
    arrivals_paused: bool,
    /// Each worker's own CPU and memory.
    watch: Watch,
    /// `--monitor`s (and the master's own CPU and memory) during a run, and the notices
    /// already said.
    sampler: Option<(crate::monitor::Sampler, usize)>,
}

impl Run {
    pub(super) fn new(config: MasterConfig, status: Arc<Mutex<Status>>) -> Run {
        let rows = config.unique_rows.map(RowPool::new);
        Run {
            config,
            status,
            phase: Phase::Waiting,
            members: BTreeMap::new(),
            aggregate: Arc::new(Mutex::new(Aggregate::new())),
            rows,
            stage: 0,
            stage_started: Instant::now(),
            run_started: Instant::now(),
            stop_deadline: None,
            start_unix_ms: 0,
            short_warned: false,
            table: String::new(),
            taking_over: false,
            autostart: true,
            arrivals_paused: false,
            watch: Watch::default(),
            sampler: None,
        }
    }

    /// Merges into `aggregate` (the one the master's control reads for `--otlp`).
    pub(super) fn share_aggregate(&mut self, aggregate: Arc<Mutex<Aggregate>>) {
        self.aggregate = aggregate;
    }

    fn aggregate(&self) -> MutexGuard<'_, Aggregate> {
        self.aggregate.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn notify(&self, line: &str) {
        (self.config.notify)(line);
    }

    pub(super) fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    pub(super) fn on_event(&mut self, event: Event) {
        match event {
            Event::Joined {
                id,
                name,
                peer,
                cores,
                sender,
            } => {
                self.notify(&format!(
                    "worker {name:?} joined from {peer} ({cores} core(s))"
                ));
                self.members.insert(
                    id,
                    Member {
                        name,
                        peer,
                        sender,
                        state: WorkerState::Loading,
                        rows: Vec::new(),
                        share: 0,
                        rate: 0.0,
                        users: 0,
                        requests: 0,
                    },
                );
            }
            Event::Message { id, message } => self.on_message(id, message),
            Event::Gone { id, why } => self.on_gone(id, &why),
        }
        self.publish_status();
    }

    fn on_message(&mut self, id: u32, message: ToMaster) {
        let Some(member) = self.members.get_mut(&id) else {
            return;
        };
        match message {
            ToMaster::Ready => {
                member.state = WorkerState::Ready;
                match self.phase {
                    Phase::Waiting => {
                        let ready = self.count(WorkerState::Ready);
                        if self.autostart && ready >= self.config.expect_workers.max(1) {
                            self.begin();
                        } else {
                            self.notify(&format!(
                                "{ready} of {} worker(s) ready",
                                self.config.expect_workers
                            ));
                        }
                    }
                    Phase::Running => self.rebalance(),
                    Phase::Stopping | Phase::Done => {}
                }
            }
            ToMaster::Failed { message } => {
                let name = member.name.clone();
                let had_users = member.state == WorkerState::Running;
                self.members.remove(&id);
                self.aggregate().reporter_done(u64::from(id));
                self.notify(&format!(
                    "worker {name:?} cannot run the scenario: {message}"
                ));
                if had_users && self.phase == Phase::Running {
                    self.take_over();
                }
            }
            ToMaster::Stats {
                users,
                seconds,
                process,
            } => {
                member.users = users;
                member.requests = member.requests.saturating_add(requests_in(&seconds));
                if let Some(load) = process {
                    let name = member.name.clone();
                    let latest =
                        Aggregate::second_at(self.run_started.elapsed()).saturating_add(FAR_AHEAD);
                    if let Some(said) = self.watch.record(id, &name, load, latest) {
                        self.notify(&said);
                    }
                }
                self.absorb_seconds(id, seconds, false);
            }
            ToMaster::Finished { seconds } => {
                member.users = 0;
                member.requests = member.requests.saturating_add(requests_in(&seconds));
                member.state = WorkerState::Finished;
                self.absorb_seconds(id, seconds, true);
                self.check_stopped();
                self.check_iterations_done();
            }
            ToMaster::Heartbeat | ToMaster::Hello(_) => {}
        }
    }

    fn on_gone(&mut self, id: u32, why: &str) {
        let Some(member) = self.members.get_mut(&id) else {
            return;
        };
        let was = member.state;
        if matches!(was, WorkerState::Finished | WorkerState::Missing) {
            return;
        }
        let (name, peer, users, requests) = (
            member.name.clone(),
            member.peer,
            member.share,
            member.requests,
        );
        let counted = matches!(was, WorkerState::Running | WorkerState::Stopping);
        if !counted {
            self.members.remove(&id);
            self.notify(&format!("worker {name:?} ({peer}) left: {why}"));
            return;
        }
        member.state = WorkerState::Missing;
        member.users = 0;
        self.aggregate().reporter_done(u64::from(id));
        let others = self
            .members
            .values()
            .any(|m| matches!(m.state, WorkerState::Ready | WorkerState::Running));
        let moved = if self.phase != Phase::Running {
            "the run was stopping".to_owned()
        } else if others {
            format!("its {users} user(s) were moved to the other workers")
        } else {
            format!("no other worker can take its {users} user(s) until one joins")
        };
        let message = format!(
            "worker {name:?} ({peer}) went missing: {why}; the {requests} requests it reported are \
             counted, {moved}"
        );
        self.notify(&message);
        self.aggregate().absorb(Snapshot {
            entries: Vec::new(),
            errors: vec![ErrorCount { message, count: 1 }],
            ..Snapshot::default()
        });
        match self.phase {
            Phase::Running => {
                self.take_over();
                // `--iterations`: the others may all have finished theirs already.
                self.check_iterations_done();
            }
            Phase::Stopping => self.check_stopped(),
            Phase::Waiting | Phase::Done => {}
        }
    }

    /// A worker's measurements, each in its second of the run; the seconds every worker has
    /// reported become points (see `stats::timeline`).
    fn absorb_seconds(&mut self, id: u32, seconds: Vec<SecondStats>, last: bool) {
        let users = self.users();
        let elapsed = self.run_started.elapsed();
        let mut aggregate = self.aggregate();
        let latest = Aggregate::second_at(elapsed).saturating_add(FAR_AHEAD);
        for SecondStats { second, snapshot } in seconds {
            aggregate.absorb_second(u64::from(id), second.min(latest), snapshot);
        }
        if last {
            aggregate.reporter_done(u64::from(id));
        }
        aggregate.close_seconds(elapsed, users);
    }

    fn count(&self, state: WorkerState) -> usize {
        self.members.values().filter(|m| m.state == state).count()
    }

    /// Starts the run with the ready workers.
    fn begin(&mut self) {
        self.phase = Phase::Running;
        self.stage = 0;
        self.stage_started = Instant::now();
        self.run_started = self.stage_started;
        self.start_unix_ms = unix_ms();
        self.aggregate()
            .start_seconds(self.start_unix_ms, std::iter::empty());
        self.notify(&format!(
            "starting with {} worker(s)",
            self.count(WorkerState::Ready)
        ));
        self.watch = Watch::default();
        // The master's own CPU counts against its whole machine: it measures no latency, so
        // only a machine that is full is worth a word.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        self.sampler = None;
        if !self.config.monitors.is_empty() {
            match crate::monitor::Sampler::new(&self.config.monitors, cores) {
                Ok(sampler) => self.sampler = Some((sampler, 0)),
                Err(err) => self.notify(&format!("the monitors cannot be sampled: {err}")),
            }
        }
        self.sample(0);
        self.rebalance();
    }

    /// The current stage's users (the most users, in the open model) and its spawn rate or
    /// arrival rate.
    fn stage_target(&self) -> (u64, f64) {
        match self.config.plan.stages()[self.stage].load {
            Load::Users { users, spawn_rate } => (users, spawn_rate),
            Load::Arrivals { max_users, .. } if self.arrivals_paused => (max_users, 0.0),
            Load::Arrivals {
                per_second,
                max_users,
            } => (max_users, per_second),
        }
    }

    /// Whether the current stage is the open model (arrivals at a rate).
    fn is_open_model(&self) -> bool {
        matches!(
            self.config.plan.stages()[self.stage].load,
            Load::Arrivals { .. }
        )
    }

    /// Gives ready workers their rows and every live worker its share of the current stage.
    /// Moves a lost worker's users to the others within about [`TAKE_OVER`], even when the
    /// spawn rate is slower.
    fn take_over(&mut self) {
        self.taking_over = true;
        self.rebalance();
        self.taking_over = false;
    }

    fn rebalance(&mut self) {
        let (target, rate) = self.stage_target();
        // A page's run may be moved to any count later: its workers get every row.
        let peak = match (self.autostart, self.config.unique_rows) {
            (false, Some(rows)) => rows,
            _ => self.config.plan.peak_users(),
        };
        let live: Vec<u32> = self
            .members
            .iter()
            .filter(|(_, m)| matches!(m.state, WorkerState::Ready | WorkerState::Running))
            .map(|(id, _)| *id)
            .collect();
        let starting: Vec<u32> = live
            .iter()
            .copied()
            .filter(|id| self.members[id].state == WorkerState::Ready)
            .collect();
        if let Some(pool) = &mut self.rows {
            if !starting.is_empty() {
                // Shares of the peak: the running keep what their rows allow.
                let peak_caps: Vec<u64> = live
                    .iter()
                    .map(|id| match self.members[id].state {
                        WorkerState::Running => self.members[id].rows.len() as u64,
                        _ => u64::MAX,
                    })
                    .collect();
                let peak_shares = split_users(peak, &peak_caps);
                let starting_shares: Vec<u64> = live
                    .iter()
                    .zip(&peak_shares)
                    .filter(|(id, _)| starting.contains(id))
                    .map(|(_, share)| *share)
                    .collect();
                let running = live.len() - starting.len();
                let give = rows_to_give(&starting_shares, running, pool.free());
                for (id, count) in starting.iter().zip(give) {
                    if let Some(member) = self.members.get_mut(id) {
                        member.rows = pool.take(count);
                    }
                }
            }
        }
        let all_caps: Vec<u64> = live
            .iter()
            .map(|id| {
                if self.rows.is_some() {
                    self.members[id].rows.len() as u64
                } else {
                    u64::MAX
                }
            })
            .collect();
        let shares = split_users(target, &all_caps);
        let placed: u64 = shares.iter().sum();
        if placed < target && !self.short_warned {
            self.short_warned = true;
            self.notify(&format!(
                "only {placed} of {target} users can run: the workers hold too few `unique` data \
                 rows between them (rows are never given to two workers); add rows to the data file"
            ));
        }
        // Closed model: users and a spawn rate each; open model: an arrival rate and the most
        // users each, the rates adding up to the stage's.
        let loads: Vec<(u64, f64)> = if self.is_open_model() {
            split_arrivals(rate, &shares)
                .into_iter()
                .map(|(rate, users)| (users, rate))
                .collect()
        } else {
            shares
                .iter()
                .copied()
                .zip(split_rate(rate, &shares))
                .collect()
        };
        let open = self.is_open_model();
        let aggregate = self.aggregate.clone();
        let started_ago = self.run_started.elapsed();
        for (id, (share, spawn_rate)) in live.iter().zip(loads) {
            let Some(member) = self.members.get_mut(id) else {
                continue;
            };
            if member.state == WorkerState::Ready {
                member.state = WorkerState::Running;
                member.share = share;
                member.rate = if open { spawn_rate } else { 0.0 };
                // Its seconds are the run's: it reports from the second under way.
                aggregate
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .expect_reporter(u64::from(*id), started_ago.as_secs());
                let _ = member.sender.send(ToWorker::Start {
                    users: share,
                    spawn_rate: if open { 1.0 } else { spawn_rate },
                    rows: member.rows.clone(),
                    stop_timeout_ms: self.config.stop_timeout.as_millis() as u64,
                    max_body: self.config.max_body,
                    accept_invalid_certs: self.config.accept_invalid_certs,
                    started_ago_ms: u64::try_from(started_ago.as_millis()).unwrap_or(u64::MAX),
                    arrival_rate: open.then_some(spawn_rate),
                    iterations: self.config.iterations,
                });
            } else if open {
                if member.share != share || member.rate != spawn_rate {
                    member.share = share;
                    member.rate = spawn_rate;
                    let _ = member.sender.send(ToWorker::SetArrivals {
                        per_second: spawn_rate,
                        max_users: share,
                    });
                }
            } else if member.share != share {
                let spawn_rate = if self.taking_over && share > member.share {
                    let extra = (share - member.share) as f64;
                    spawn_rate.max(extra / TAKE_OVER.as_secs_f64())
                } else {
                    spawn_rate
                };
                member.share = share;
                let _ = member.sender.send(ToWorker::SetUsers {
                    users: share,
                    spawn_rate,
                });
            }
        }
        self.publish_status();
    }

    /// When the current stage ends, or the stopping workers are given up on.
    pub(super) fn wake_at(&self) -> Option<Instant> {
        match self.phase {
            Phase::Running => self.config.plan.stages()[self.stage]
                .duration
                .map(|duration| self.stage_started + duration),
            Phase::Stopping => self.stop_deadline,
            Phase::Waiting | Phase::Done => None,
        }
    }

    pub(super) fn on_timer(&mut self, now: Instant) {
        match self.phase {
            Phase::Running => {
                let Some(end) = self.wake_at() else { return };
                if now < end {
                    return;
                }
                if self.stage + 1 < self.config.plan.stages().len() {
                    self.stage += 1;
                    self.stage_started = end;
                    let (users, rate) = self.stage_target();
                    for member in self.members.values_mut() {
                        // A new stage always sends the new rate.
                        member.share = u64::MAX;
                    }
                    if self.is_open_model() {
                        self.notify(&format!(
                            "stage {}: {rate}/s, at most {users} users",
                            self.stage + 1
                        ));
                    } else {
                        self.notify(&format!("stage {}: {users} users", self.stage + 1));
                    }
                    self.rebalance();
                } else {
                    self.stop(false);
                }
            }
            Phase::Stopping => {
                if self.stop_deadline.is_some_and(|deadline| now >= deadline) {
                    let late: Vec<String> = self
                        .members
                        .values()
                        .filter(|m| m.state == WorkerState::Stopping)
                        .map(|m| m.name.clone())
                        .collect();
                    self.notify(&format!(
                        "gave up waiting for the last statistics of {late:?}"
                    ));
                    self.phase = Phase::Done;
                }
            }
            Phase::Waiting | Phase::Done => {}
        }
    }

    /// Tells every running worker to stop; the run ends when each has sent its last
    /// statistics (or is lost, or twice the stop timeout and 5 s more have passed: the users
    /// finish their iterations within the stop timeout, then `on_stop` gets as long again).
    pub(super) fn stop(&mut self, now: bool) {
        match self.phase {
            Phase::Waiting => {
                self.phase = Phase::Done;
                return;
            }
            Phase::Done => return,
            Phase::Running | Phase::Stopping => {}
        }
        if self.phase == Phase::Running || now {
            for member in self.members.values_mut() {
                if matches!(member.state, WorkerState::Running | WorkerState::Stopping) {
                    member.state = WorkerState::Stopping;
                    let _ = member.sender.send(ToWorker::Stop { now });
                }
            }
        }
        self.phase = Phase::Stopping;
        let grace = if now {
            Duration::from_secs(5)
        } else {
            self.config.stop_timeout.saturating_mul(2) + Duration::from_secs(5)
        };
        // A second stop never moves the deadline later (only "stop now" brings it closer).
        let deadline = Instant::now() + grace;
        self.stop_deadline = Some(
            self.stop_deadline
                .map_or(deadline, |known| known.min(deadline)),
        );
        self.check_stopped();
    }

    fn check_stopped(&mut self) {
        if self.phase == Phase::Stopping && self.count(WorkerState::Stopping) == 0 {
            self.phase = Phase::Done;
        }
    }

    /// `--iterations`: the run is over once every worker that ran users has finished them
    /// (a worker with no users has nothing to finish).
    fn check_iterations_done(&mut self) {
        let Some(iterations) = self.config.iterations else {
            return;
        };
        let running = self
            .members
            .values()
            .any(|m| m.state == WorkerState::Running && m.share > 0);
        if self.phase == Phase::Running && !running && self.count(WorkerState::Finished) > 0 {
            self.notify(&format!(
                "every worker's users ran their {iterations} iteration(s)"
            ));
            self.phase = Phase::Done;
        }
    }

    /// Samples the monitors for `second` of the run and says what happened to them.
    fn sample(&mut self, second: u64) {
        let Some((sampler, said)) = &mut self.sampler else {
            return;
        };
        sampler.sample(second);
        let notices: Vec<String> = sampler
            .notices_from(*said)
            .iter()
            .map(|notice| notice.text.clone())
            .collect();
        *said += notices.len();
        for notice in notices {
            self.notify(&notice);
        }
    }

    /// Closes one history point, says the master is there, and updates the status.
    pub(super) fn on_tick(&mut self) {
        for member in self.members.values() {
            if member.state != WorkerState::Missing {
                let _ = member.sender.send(ToWorker::Heartbeat);
            }
        }
        if matches!(self.phase, Phase::Running | Phase::Stopping) {
            let users = self.users();
            let elapsed = self.run_started.elapsed();
            let mut aggregate = self.aggregate();
            // The seconds a worker is late for are made once their grace is over.
            aggregate.close_seconds(elapsed, users);
            let table = report::live_table(&aggregate);
            drop(aggregate);
            self.table = table;
            self.sample(elapsed.as_secs());
        }
        self.publish_status();
    }

    fn users(&self) -> u64 {
        self.members
            .values()
            .fold(0, |sum, m| sum.saturating_add(m.users))
    }

    fn publish_status(&self) {
        let state = match self.phase {
            Phase::Waiting => None,
            Phase::Running => Some(RunState::Running),
            Phase::Stopping => Some(RunState::Stopping),
            Phase::Done => Some(RunState::Stopped),
        };
        let status = Status {
            state,
            started: state.map(|_| self.run_started),
            users: self.users(),
            table: self.table.clone(),
            workers: self
                .members
                .iter()
                .map(|(id, m)| WorkerStatus {
                    id: *id,
                    name: m.name.clone(),
                    peer: m.peer,
                    state: m.state,
                    users: m.users,
                    requests: m.requests,
                    load: self.watch.latest(*id),
                })
                .collect(),
            monitors: self
                .sampler
                .as_ref()
                .map(|(sampler, _)| sampler.look())
                .unwrap_or_default(),
        };
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = status;
    }

    /// The channels to every connected worker (closed once its connection wrote its last
    /// message).
    pub(super) fn links(&self) -> Vec<mpsc::UnboundedSender<ToWorker>> {
        self.members.values().map(|m| m.sender.clone()).collect()
    }

    /// Tells every worker to quit and makes the result.
    pub(super) fn finish(mut self) -> RunResult {
        for member in self.members.values() {
            let _ = member.sender.send(ToWorker::Quit {
                message: "the run is over".to_owned(),
            });
        }
        self.phase = Phase::Done;
        self.publish_status();
        self.result()
    }

    /// The merged result of the run (the aggregate is emptied).
    fn result(&mut self) -> RunResult {
        let mut meta = self.config.meta.clone();
        meta.start_unix_ms = if self.start_unix_ms == 0 {
            unix_ms()
        } else {
            self.start_unix_ms
        };
        meta.end_unix_ms = unix_ms();
        let began = self.start_unix_ms != 0;
        let (elapsed, users) = (self.run_started.elapsed(), self.users());
        let mut aggregate = std::mem::take(&mut *self.aggregate());
        if began {
            aggregate.close_all_seconds(elapsed, users);
        }
        let mut result = aggregate.finish(meta);
        if let Some((mut sampler, _)) = self.sampler.take() {
            sampler.sample(elapsed.as_secs());
            result.monitors = sampler.finish();
        }
        self.watch.finish_into(&mut result.monitors);
        // Thresholds on monitors (and on the workers' own series) read the series just added.
        result.evaluate_thresholds();
        result
    }
}

/// The requests in a worker's report (its numbers are the worker's: they saturate).
fn requests_in(seconds: &[SecondStats]) -> u64 {
    seconds
        .iter()
        .fold(0, |sum, s| sum.saturating_add(s.snapshot.requests()))
}

#[cfg(test)]
mod tests;
