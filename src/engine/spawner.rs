//! The controller of a run: follows the plan (moving the user count at the spawn rate, or
//! dispatching the open model's arrivals with their intended start times), relays the
//! page's and the CLI's commands to the workers, merges the workers' reports into the
//! `stats::Aggregate` by the second each belongs to, and publishes a `LiveUpdate` as each
//! second's point is made (every worker reported it) and at least every second.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::worker::{Command, Report};
use super::{FlowCount, Published, RunCommand, RunState};
use crate::engine::plan::{Load, Plan, Stage};
pub(super) use crate::stats::now_unix_ms as unix_ms;
use crate::stats::{RunMeta, RunResult};

/// Where the plan stands.
pub(super) struct Spawner {
    plan: Plan,
    stage: usize,
    stage_started: Instant,
    /// Users when the stage began.
    from: u64,
    /// Users started or stopped so far in this stage.
    changes: u64,
    /// Arrivals dispatched so far in this stage.
    arrivals: u64,
    /// Closed-model users, newest last: `(index, worker)`. Ramping down stops the newest, so
    /// the users alive are always numbered from 0 and unique data rows are never shared.
    running: Vec<(u64, usize)>,
    next_worker: usize,
    workers: Vec<mpsc::UnboundedSender<Command>>,
    /// Workers that take arrivals (those with a share of `max_users`).
    open_workers: Vec<usize>,
    started_total: u64,
    /// Open model: no arrivals until the next rate (`RunCommand::SetArrivals` with none).
    paused: bool,
}

/// What the spawner wants next.
enum Next {
    /// Wake at this instant.
    At(Instant),
    /// Nothing to do until a command comes (an open-ended stage at its target).
    Idle,
    /// The plan is over.
    Done,
}

impl Spawner {
    pub(super) fn new(
        plan: Plan,
        workers: Vec<mpsc::UnboundedSender<Command>>,
        now: Instant,
    ) -> Spawner {
        let mut spawner = Spawner {
            plan,
            stage: 0,
            stage_started: now,
            from: 0,
            changes: 0,
            arrivals: 0,
            running: Vec::new(),
            next_worker: 0,
            workers,
            open_workers: Vec::new(),
            started_total: 0,
            paused: false,
        };
        spawner.begin_stage(0, now);
        spawner
    }

    fn current(&self) -> Stage {
        self.plan.stages()[self.stage]
    }

    fn begin_stage(&mut self, stage: usize, at: Instant) {
        self.stage = stage;
        self.stage_started = at;
        self.from = self.running.len() as u64;
        self.changes = 0;
        self.arrivals = 0;
        if let Load::Arrivals { max_users, .. } = self.current().load {
            let count = self.workers.len() as u64;
            self.open_workers.clear();
            for (number, worker) in self.workers.iter().enumerate() {
                let number_u64 = number as u64;
                let share = max_users / count + u64::from(number_u64 < max_users % count);
                if share > 0 {
                    self.open_workers.push(number);
                }
                let _ = worker.send(Command::Open {
                    max_users: share,
                    first_index: number_u64,
                    stride: count,
                });
            }
        }
    }

    /// Replaces the plan by one open-ended closed-model stage from now on.
    fn set_users(&mut self, users: u64, spawn_rate: f64, now: Instant) -> Result<(), String> {
        if matches!(self.current().load, Load::Arrivals { .. }) {
            return Err("an open-model run (arrival rate) has no user count to set".to_owned());
        }
        self.plan = Plan::users(users, Some(spawn_rate), None).map_err(|e| e.to_string())?;
        self.begin_stage(0, now);
        Ok(())
    }

    /// Replaces an open-model plan by one open-ended stage at `per_second` (or no arrivals
    /// at all) from now on. The first arrival at the new rate comes when the old schedule's
    /// next one was due, or one new interval from now if that is sooner: a change of rate
    /// neither adds an arrival nor leaves a gap.
    fn set_arrivals(
        &mut self,
        per_second: Option<f64>,
        max_users: u64,
        now: Instant,
    ) -> Result<(), String> {
        let Load::Arrivals {
            per_second: old, ..
        } = self.current().load
        else {
            return Err("a closed-model run (users) has no arrival rate to set".to_owned());
        };
        let Some(per_second) = per_second else {
            self.paused = true;
            return Ok(());
        };
        let plan = Plan::new(vec![Stage {
            load: Load::Arrivals {
                per_second,
                max_users,
            },
            duration: None,
        }])
        .map_err(|e| e.to_string())?;
        let old_next = self.stage_started + Duration::from_secs_f64(self.arrivals as f64 / old);
        let soonest = now + Duration::from_secs_f64(1.0 / per_second);
        let first = if self.paused {
            now
        } else {
            old_next.max(now).min(soonest)
        };
        self.paused = false;
        self.plan = plan;
        self.begin_stage(0, first);
        Ok(())
    }

    fn ramping(&self) -> bool {
        match self.current().load {
            Load::Users { users, .. } => self.changes < users.abs_diff(self.from),
            Load::Arrivals { .. } => false,
        }
    }

    /// Does everything due by `now` and says when to come back.
    fn advance(&mut self, now: Instant) -> Next {
        loop {
            let stage = self.current();
            if let Some(duration) = stage.duration {
                let end = self.stage_started + duration;
                if now >= end {
                    if self.stage + 1 < self.plan.stages().len() {
                        self.begin_stage(self.stage + 1, end);
                        continue;
                    }
                    return Next::Done;
                }
            }
            let next = match stage.load {
                Load::Users { users, spawn_rate } => {
                    let total = users.abs_diff(self.from);
                    let mut next = None;
                    while self.changes < total {
                        let at = self.stage_started
                            + Duration::from_secs_f64(self.changes as f64 / spawn_rate);
                        if at > now {
                            next = Some(at);
                            break;
                        }
                        if users > self.from {
                            self.start_user();
                        } else {
                            self.stop_user();
                        }
                        self.changes += 1;
                    }
                    next
                }
                Load::Arrivals { .. } if self.paused => None,
                Load::Arrivals { per_second, .. } => loop {
                    let at = self.stage_started
                        + Duration::from_secs_f64(self.arrivals as f64 / per_second);
                    if at > now {
                        break Some(at);
                    }
                    self.dispatch_arrival(at);
                    self.arrivals += 1;
                },
            };
            let end = stage.duration.map(|duration| self.stage_started + duration);
            return match (next, end) {
                (Some(next), Some(end)) => Next::At(next.min(end)),
                (Some(at), None) | (None, Some(at)) => Next::At(at),
                (None, None) => Next::Idle,
            };
        }
    }

    fn start_user(&mut self) {
        let index = self.running.len() as u64;
        let worker = self.next_worker % self.workers.len();
        self.next_worker = self.next_worker.wrapping_add(1);
        let _ = self.workers[worker].send(Command::Start(index));
        self.running.push((index, worker));
        self.started_total += 1;
    }

    fn stop_user(&mut self) {
        if let Some((index, worker)) = self.running.pop() {
            let _ = self.workers[worker].send(Command::Stop(index));
        }
    }

    fn dispatch_arrival(&mut self, intended: Instant) {
        if self.open_workers.is_empty() {
            return;
        }
        let worker = self.open_workers[self.next_worker % self.open_workers.len()];
        self.next_worker = self.next_worker.wrapping_add(1);
        let _ = self.workers[worker].send(Command::Arrival(intended));
    }

    fn broadcast(&self, command: impl Fn() -> Command) {
        for worker in &self.workers {
            let _ = worker.send(command());
        }
    }

    fn is_open_model(&self) -> bool {
        matches!(self.current().load, Load::Arrivals { .. })
    }
}

/// Everything the controller task owns.
pub(super) struct Controller {
    pub(super) spawner: Spawner,
    pub(super) control: mpsc::UnboundedReceiver<RunCommand>,
    pub(super) reports: mpsc::UnboundedReceiver<Report>,
    pub(super) shared: Arc<Published>,
    pub(super) meta: RunMeta,
    pub(super) flows: Vec<FlowCount>,
    /// A scenario without flows: the run ends when every user ran once.
    pub(super) one_pass: bool,
    /// Users that ended by themselves, as they end (a one-pass run ends with the last).
    pub(super) exits: Arc<super::worker::Exits>,
    /// Second 0 of the run (the workers' reports count seconds from it).
    pub(super) epoch: Instant,
    /// Sampled at each second's look, on the run's seconds.
    pub(super) monitors: crate::monitor::Sampler,
}

/// Between the end of a second and the controller's own look at it: the workers' reports of
/// that second normally come first (and the update goes out with its point); the look makes
/// the point of a second a worker is late for once its grace is over, and sends an update if
/// none went out for a second (so the page sees the state and users at least that often).
const LOOK_AFTER: Duration = Duration::from_millis(500);

/// An update at most this long after the last one is not sent again by the look.
const QUIET: Duration = Duration::from_millis(900);

impl Controller {
    /// Runs the plan to its end (or until stopped) and returns the result.
    pub(super) async fn run(mut self) -> RunResult {
        let workers = self.spawner.workers.len();
        let mut worker_users = vec![0u64; workers];
        let mut finished = 0;
        let mut exited = 0u64;
        let mut published = Instant::now();
        let mut stopping = false;
        let mut control_open = true;
        let mut next = self.spawner.advance(Instant::now());
        let mut tick = tokio::time::interval_at(
            self.epoch + Duration::from_secs(1) + LOOK_AFTER,
            Duration::from_secs(1),
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let far = Instant::now() + Duration::from_secs(86_400 * 365);
        // The monitors' baseline: rates of second 1 are counted from here.
        self.monitors.sample(0);
        self.shared.set_monitors(self.monitors.look());
        self.set_state(if self.spawner.ramping() {
            RunState::Spawning
        } else {
            RunState::Running
        });
        while finished < workers {
            if !stopping && matches!(next, Next::Done) {
                stopping = self.stop();
            }
            let wake = match next {
                Next::At(at) if !stopping => at,
                _ => far,
            };
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {
                    next = self.spawner.advance(Instant::now());
                }
                control = self.control.recv(), if control_open => match control {
                    Some(RunCommand::SetUsers { users, spawn_rate }) if !stopping => {
                        if let Err(message) = self.spawner.set_users(users, spawn_rate, Instant::now()) {
                            tracing::warn!("{message}");
                        }
                        next = self.spawner.advance(Instant::now());
                    }
                    Some(RunCommand::SetUsers { .. }) => {}
                    Some(RunCommand::SetArrivals { per_second, max_users }) if !stopping => {
                        if let Err(message) = self.spawner.set_arrivals(per_second, max_users, Instant::now()) {
                            tracing::warn!("{message}");
                        }
                        next = self.spawner.advance(Instant::now());
                    }
                    Some(RunCommand::SetArrivals { .. }) => {}
                    Some(RunCommand::Stop) | None => {
                        // Every handle gone counts as a stop: nobody could stop the run later.
                        control_open = control.is_some();
                        if !stopping {
                            stopping = self.stop();
                        }
                    }
                    Some(RunCommand::StopNow) => {
                        stopping = true;
                        self.set_state(RunState::Stopping);
                        self.spawner.broadcast(|| Command::Abort);
                    }
                    Some(RunCommand::Reset) => {
                        self.spawner.broadcast(|| Command::Reset);
                        self.shared.aggregate().reset();
                        self.flows.iter_mut().for_each(|flow| flow.iterations = 0);
                    }
                },
                report = self.reports.recv() => {
                    // Every worker holds a sender until it ends, so `None` means all ended.
                    let Some(report) = report else { break };
                    for (flow, count) in self.flows.iter_mut().zip(&report.flow_iterations) {
                        flow.iterations += count;
                    }
                    exited += report.exited;
                    worker_users[report.worker] = report.users;
                    let closed = {
                        let mut aggregate = self.shared.aggregate();
                        let worker = report.worker as u64;
                        aggregate.absorb_second(worker, report.second, report.snapshot);
                        if report.finished {
                            aggregate.reporter_done(worker);
                        }
                        aggregate.close_seconds(self.epoch.elapsed(), self.users(&worker_users))
                    };
                    if report.finished {
                        finished += 1;
                    }
                    if closed > 0 && finished < workers {
                        self.publish(self.users(&worker_users));
                        published = Instant::now();
                    }
                    if self.all_ran_once(exited) && !stopping {
                        stopping = self.stop();
                    }
                }
                _ = self.exits.changed.notified(), if self.one_pass && !stopping => {
                    if self.all_ran_once(self.exits.count()) {
                        stopping = self.stop();
                    }
                }
                _ = tick.tick() => {
                    // The look comes LOOK_AFTER into the next second: this is the second
                    // that just ended.
                    let second = self.epoch.elapsed().saturating_sub(LOOK_AFTER).as_secs();
                    self.monitors.sample(second);
                    self.shared.set_monitors(self.monitors.look());
                    let users = self.users(&worker_users);
                    if !stopping {
                        self.set_state(if self.spawner.ramping() {
                            RunState::Spawning
                        } else {
                            RunState::Running
                        });
                    }
                    let closed = self.shared.aggregate().close_seconds(self.epoch.elapsed(), users);
                    if closed > 0 || published.elapsed() >= QUIET {
                        self.publish(users);
                        published = Instant::now();
                    }
                }
            }
        }
        self.set_state(RunState::Stopped);
        self.shared.set_users(0);
        self.shared
            .aggregate()
            .close_all_seconds(self.epoch.elapsed(), self.users(&worker_users));
        self.publish(0);
        let mut meta = self.meta.clone();
        meta.end_unix_ms = unix_ms();
        let aggregate = std::mem::take(&mut *self.shared.aggregate());
        let mut result = aggregate.finish(meta);
        // The run's last (partial) second.
        self.monitors.sample(self.epoch.elapsed().as_secs());
        result.monitors = self.monitors.finish();
        // Thresholds on monitors read the series just added.
        result.evaluate_thresholds();
        result
    }

    /// Graceful stop: no new users or iterations; the workers give requests in flight the
    /// stop timeout.
    fn stop(&mut self) -> bool {
        self.set_state(RunState::Stopping);
        self.spawner.broadcast(|| Command::StopAll);
        true
    }

    /// A one-pass run whose every started user ended by itself (`exited` of them did).
    fn all_ran_once(&self, exited: u64) -> bool {
        self.one_pass
            && !self.spawner.ramping()
            && self.spawner.started_total > 0
            && exited >= self.spawner.started_total
    }

    fn users(&self, worker_users: &[u64]) -> u64 {
        if self.spawner.is_open_model() {
            worker_users.iter().sum()
        } else {
            self.spawner.running.len() as u64
        }
    }

    fn set_state(&self, state: RunState) {
        *self.shared.state.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }

    /// Sends the live update (with the points made since the last one).
    fn publish(&self, users: u64) {
        self.shared.publish(users, &self.flows);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commands(receiver: &mut mpsc::UnboundedReceiver<Command>) -> Vec<String> {
        let mut seen = Vec::new();
        while let Ok(command) = receiver.try_recv() {
            seen.push(format!("{command:?}"));
        }
        seen
    }

    #[test]
    fn users_start_at_the_spawn_rate_and_stop_newest_first() {
        let (sender, mut receiver) = mpsc::unbounded_channel();
        let start = Instant::now();
        let plan = Plan::parse_stages("2s:4,1s:2").unwrap();
        let mut spawner = Spawner::new(plan, vec![sender], start);
        assert!(matches!(spawner.advance(start), Next::At(_)));
        assert_eq!(commands(&mut receiver), ["Start(0)"]);
        spawner.advance(start + Duration::from_millis(1600));
        assert_eq!(
            commands(&mut receiver),
            ["Start(1)", "Start(2)", "Start(3)"]
        );
        spawner.advance(start + Duration::from_millis(2600));
        assert_eq!(commands(&mut receiver), ["Stop(3)", "Stop(2)"]);
        assert!(matches!(
            spawner.advance(start + Duration::from_secs(3)),
            Next::Done
        ));
    }

    #[test]
    fn arrivals_keep_their_intended_times() {
        let (first, mut first_receiver) = mpsc::unbounded_channel();
        let (second, mut second_receiver) = mpsc::unbounded_channel();
        let start = Instant::now();
        let plan = Plan::arrivals("10/s", 3, Some(Duration::from_secs(1))).unwrap();
        let mut spawner = Spawner::new(plan, vec![first, second], start);
        spawner.advance(start + Duration::from_millis(250));
        let first_seen = commands(&mut first_receiver);
        let second_seen = commands(&mut second_receiver);
        assert_eq!(
            first_seen[0],
            "Open { max_users: 2, first_index: 0, stride: 2 }"
        );
        assert_eq!(
            second_seen[0],
            "Open { max_users: 1, first_index: 1, stride: 2 }"
        );
        // 0, 100 and 200 ms, alternating between the workers.
        assert_eq!(first_seen.len() + second_seen.len() - 2, 3);
    }

    #[test]
    fn a_new_arrival_rate_keeps_the_schedule_and_a_pause_stops_it() {
        let (sender, mut receiver) = mpsc::unbounded_channel();
        let start = Instant::now();
        let plan = Plan::arrivals("10/s", 5, None).unwrap();
        let mut spawner = Spawner::new(plan, vec![sender], start);
        // 0, 100 and 200 ms; the next was due at 300 ms.
        spawner.advance(start + Duration::from_millis(250));
        let arrivals = |seen: Vec<String>| seen.iter().filter(|c| c.starts_with("Arrival")).count();
        assert_eq!(arrivals(commands(&mut receiver)), 3);
        let now = start + Duration::from_millis(250);
        spawner.set_arrivals(Some(40.0), 5, now).unwrap();
        // At 40/s: the old schedule's next (300 ms) is later than one new interval (275 ms),
        // so 275, 300, 325, 350 and 375 ms; nothing at 250.
        spawner.advance(now);
        assert_eq!(arrivals(commands(&mut receiver)), 0);
        spawner.advance(start + Duration::from_millis(390));
        assert_eq!(arrivals(commands(&mut receiver)), 5);
        spawner
            .set_arrivals(None, 5, start + Duration::from_millis(390))
            .unwrap();
        assert!(matches!(
            spawner.advance(start + Duration::from_secs(5)),
            Next::Idle
        ));
        assert_eq!(arrivals(commands(&mut receiver)), 0);
        // After a pause the new rate starts at once.
        let later = start + Duration::from_secs(5);
        spawner.set_arrivals(Some(10.0), 5, later).unwrap();
        spawner.advance(later);
        assert_eq!(arrivals(commands(&mut receiver)), 1);
        let closed = Plan::users(2, None, None).unwrap();
        let (sender, _receiver) = mpsc::unbounded_channel();
        let mut closed = Spawner::new(closed, vec![sender], start);
        assert!(closed.set_arrivals(Some(1.0), 1, start).is_err());
    }
}
