//! The master: listens for workers, waits for the ones it expects, follows the plan by telling
//! each worker its share of the users, merges their statistics (HDR deltas, exactly) into one
//! `stats::Aggregate`, moves the users of a lost worker to the others and gives a worker that
//! joins mid-run its share. The result is one `RunResult`, thresholds evaluated on the merge.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::auth;
use super::bundle::Bundle;
use super::link::{self, Event, LinkSetup};
use super::protocol::{ScenarioPin, ToMaster, ToWorker};
use super::share::{RowPool, rows_to_give, split_rate, split_users};
use super::{ClusterError, HEARTBEAT_EVERY, Notify};
use crate::engine::{Load, Plan, RunState};
use crate::stats::{Aggregate, ErrorCount, RunMeta, RunResult, Snapshot};

/// Everything a master needs.
#[derive(Clone)]
pub struct MasterConfig {
    /// Where workers connect (`--master-bind`).
    pub bind: SocketAddr,
    pub token: Option<String>,
    /// Start when this many workers are ready (at least 1).
    pub expect_workers: usize,
    pub bundle: Bundle,
    /// A closed-model plan (users, stages).
    pub plan: Plan,
    /// Rows of the scenario's `unique` sources, if it has any.
    pub unique_rows: Option<u64>,
    pub stop_timeout: Duration,
    pub accept_invalid_certs: bool,
    /// Scenario, host, users, spawn rate and thresholds for the result.
    pub meta: RunMeta,
    pub notify: Notify,
}

/// What the CLI (or a page) asks of a running master.
#[derive(Debug, Clone)]
pub struct MasterControl {
    commands: mpsc::UnboundedSender<Command>,
    status: Arc<Mutex<Status>>,
}

#[derive(Debug)]
enum Command {
    Stop,
    StopNow,
}

/// What the master shows about its workers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Status {
    pub state: Option<RunState>,
    pub workers: Vec<WorkerStatus>,
    pub users: u64,
}

/// One worker as the master sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerStatus {
    pub id: u32,
    pub name: String,
    pub peer: SocketAddr,
    /// `ready`, `running`, `stopping`, `finished` or `missing`.
    pub state: &'static str,
    pub users: u64,
    pub requests: u64,
}

impl MasterControl {
    /// Graceful stop: workers let requests in flight finish (the stop timeout).
    pub fn stop(&self) {
        let _ = self.commands.send(Command::Stop);
    }

    /// Stops every worker at once.
    pub fn stop_now(&self) {
        let _ = self.commands.send(Command::StopNow);
    }

    /// The workers and users now.
    pub fn status(&self) -> Status {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A master listening for workers.
pub struct Master {
    listener: TcpListener,
    config: MasterConfig,
    commands: mpsc::UnboundedReceiver<Command>,
    control: MasterControl,
}

impl Master {
    /// Checks the settings (a closed-model plan; a token off loopback) and listens.
    pub async fn bind(config: MasterConfig) -> Result<Master, ClusterError> {
        auth::check_bind(&config.bind, config.token.as_deref()).map_err(ClusterError::Refused)?;
        if config
            .plan
            .stages()
            .iter()
            .any(|stage| matches!(stage.load, Load::Arrivals { .. }))
        {
            return Err(ClusterError::Plan(
                "--arrival-rate is not supported with --master yet; give -u/-r/-t or --stages"
                    .to_owned(),
            ));
        }
        let listener =
            TcpListener::bind(config.bind)
                .await
                .map_err(|source| ClusterError::Bind {
                    addr: config.bind,
                    source,
                })?;
        let (commands_sender, commands) = mpsc::unbounded_channel();
        Ok(Master {
            listener,
            config,
            commands,
            control: MasterControl {
                commands: commands_sender,
                status: Arc::new(Mutex::new(Status::default())),
            },
        })
    }

    /// The address workers connect to (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.bind)
    }

    pub fn control(&self) -> MasterControl {
        self.control.clone()
    }

    /// Waits for the expected workers, runs the plan, stops the workers and returns the
    /// merged result. The workers are told to quit at the end.
    pub async fn run(self) -> RunResult {
        let Master {
            listener,
            config,
            mut commands,
            control,
        } = self;
        let (events_sender, mut events) = mpsc::unbounded_channel();
        let setup = Arc::new(LinkSetup {
            token: config.token.clone(),
            bundle: Arc::new(config.bundle.clone()),
            pin: ScenarioPin {
                sha256: auth::scenario_digest(&config.bundle.text()),
                name: config.bundle.name.clone(),
            },
            events: events_sender,
            notify: config.notify.clone(),
        });
        let accept = tokio::spawn(async move {
            let mut next_id = 1u32;
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    continue;
                };
                let id = next_id;
                next_id += 1;
                tokio::spawn(link::serve(stream, peer, id, setup.clone()));
            }
        });
        let mut run = Run::new(config, control.status.clone());
        run.notify(&format!(
            "waiting for {} worker(s) to join",
            run.config.expect_workers
        ));
        let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let far = Instant::now() + Duration::from_secs(86_400 * 365);
        let mut commands_open = true;
        while !run.is_done() {
            let wake = run.wake_at().unwrap_or(far);
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => run.on_event(event),
                    None => break,
                },
                command = commands.recv(), if commands_open => match command {
                    Some(Command::Stop) => run.stop(false),
                    Some(Command::StopNow) => run.stop(true),
                    None => commands_open = false,
                },
                _ = tokio::time::sleep_until(wake) => run.on_timer(Instant::now()),
                _ = tick.tick() => run.on_tick(),
            }
        }
        accept.abort();
        run.finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Waiting,
    Running,
    Stopping,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MemberState {
    /// Joined; loading the scenario.
    Loading,
    Ready,
    Running,
    Stopping,
    Finished,
    Missing,
}

impl MemberState {
    fn name(self) -> &'static str {
        match self {
            MemberState::Loading => "loading",
            MemberState::Ready => "ready",
            MemberState::Running => "running",
            MemberState::Stopping => "stopping",
            MemberState::Finished => "finished",
            MemberState::Missing => "missing",
        }
    }
}

struct Member {
    name: String,
    peer: SocketAddr,
    sender: mpsc::UnboundedSender<ToWorker>,
    state: MemberState,
    /// Indexes of `unique` rows given to it (for the rest of the run).
    rows: Vec<u32>,
    /// Users it was told to run.
    share: u64,
    /// Users it said it runs.
    users: u64,
    requests: u64,
}

/// The master's state, driven by events, timers and ticks (no IO but channel sends).
struct Run {
    config: MasterConfig,
    status: Arc<Mutex<Status>>,
    phase: Phase,
    members: BTreeMap<u32, Member>,
    aggregate: Aggregate,
    rows: Option<RowPool>,
    stage: usize,
    stage_started: Instant,
    /// When the stopping workers are given up on.
    stop_deadline: Option<Instant>,
    start_unix_ms: u64,
    short_warned: bool,
}

impl Run {
    fn new(config: MasterConfig, status: Arc<Mutex<Status>>) -> Run {
        let rows = config.unique_rows.map(RowPool::new);
        Run {
            config,
            status,
            phase: Phase::Waiting,
            members: BTreeMap::new(),
            aggregate: Aggregate::new(),
            rows,
            stage: 0,
            stage_started: Instant::now(),
            stop_deadline: None,
            start_unix_ms: 0,
            short_warned: false,
        }
    }

    fn notify(&self, line: &str) {
        (self.config.notify)(line);
    }

    fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    fn on_event(&mut self, event: Event) {
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
                        state: MemberState::Loading,
                        rows: Vec::new(),
                        share: 0,
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
                member.state = MemberState::Ready;
                match self.phase {
                    Phase::Waiting => {
                        let ready = self.count(MemberState::Ready);
                        if ready >= self.config.expect_workers.max(1) {
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
                let had_users = member.state == MemberState::Running;
                self.members.remove(&id);
                self.notify(&format!(
                    "worker {name:?} cannot run the scenario: {message}"
                ));
                if had_users && self.phase == Phase::Running {
                    self.rebalance();
                }
            }
            ToMaster::Stats { users, snapshot } => {
                member.users = users;
                member.requests += snapshot.requests();
                self.aggregate.absorb(snapshot);
            }
            ToMaster::Finished { snapshot } => {
                member.users = 0;
                member.requests += snapshot.requests();
                member.state = MemberState::Finished;
                self.aggregate.absorb(snapshot);
                self.check_stopped();
            }
            ToMaster::Heartbeat | ToMaster::Hello { .. } => {}
        }
    }

    fn on_gone(&mut self, id: u32, why: &str) {
        let Some(member) = self.members.get_mut(&id) else {
            return;
        };
        let was = member.state;
        if matches!(was, MemberState::Finished | MemberState::Missing) {
            return;
        }
        let (name, peer, users, requests) = (
            member.name.clone(),
            member.peer,
            member.share,
            member.requests,
        );
        let counted = matches!(was, MemberState::Running | MemberState::Stopping);
        if !counted {
            self.members.remove(&id);
            self.notify(&format!("worker {name:?} ({peer}) left: {why}"));
            return;
        }
        member.state = MemberState::Missing;
        member.users = 0;
        let others = self
            .members
            .values()
            .any(|m| matches!(m.state, MemberState::Ready | MemberState::Running));
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
        self.aggregate.absorb(Snapshot {
            entries: Vec::new(),
            errors: vec![ErrorCount { message, count: 1 }],
            dropped_iterations: 0,
        });
        match self.phase {
            Phase::Running => self.rebalance(),
            Phase::Stopping => self.check_stopped(),
            Phase::Waiting | Phase::Done => {}
        }
    }

    fn count(&self, state: MemberState) -> usize {
        self.members.values().filter(|m| m.state == state).count()
    }

    /// Starts the run with the ready workers.
    fn begin(&mut self) {
        self.phase = Phase::Running;
        self.stage = 0;
        self.stage_started = Instant::now();
        self.start_unix_ms = unix_ms();
        self.notify(&format!(
            "starting with {} worker(s)",
            self.count(MemberState::Ready)
        ));
        self.rebalance();
    }

    fn stage_target(&self) -> (u64, f64) {
        match self.config.plan.stages()[self.stage].load {
            Load::Users { users, spawn_rate } => (users, spawn_rate),
            Load::Arrivals { .. } => (0, 1.0),
        }
    }

    /// Gives ready workers their rows and every live worker its share of the current stage.
    fn rebalance(&mut self) {
        let (target, rate) = self.stage_target();
        let peak = self.config.plan.peak_users();
        let live: Vec<u32> = self
            .members
            .iter()
            .filter(|(_, m)| matches!(m.state, MemberState::Ready | MemberState::Running))
            .map(|(id, _)| *id)
            .collect();
        let starting: Vec<u32> = live
            .iter()
            .copied()
            .filter(|id| self.members[id].state == MemberState::Ready)
            .collect();
        if let Some(pool) = &mut self.rows {
            if !starting.is_empty() {
                // Shares of the peak: the running keep what their rows allow.
                let peak_caps: Vec<u64> = live
                    .iter()
                    .map(|id| match self.members[id].state {
                        MemberState::Running => self.members[id].rows.len() as u64,
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
        let rates = split_rate(rate, &shares);
        let placed: u64 = shares.iter().sum();
        if placed < target && !self.short_warned {
            self.short_warned = true;
            self.notify(&format!(
                "only {placed} of {target} users can run: the workers hold too few `unique` data \
                 rows between them (rows are never given to two workers); add rows to the data file"
            ));
        }
        for ((id, share), spawn_rate) in live.iter().zip(shares).zip(rates) {
            let Some(member) = self.members.get_mut(id) else {
                continue;
            };
            if member.state == MemberState::Ready {
                member.state = MemberState::Running;
                member.share = share;
                let _ = member.sender.send(ToWorker::Start {
                    users: share,
                    spawn_rate,
                    rows: member.rows.clone(),
                    stop_timeout_ms: self.config.stop_timeout.as_millis() as u64,
                    accept_invalid_certs: self.config.accept_invalid_certs,
                });
            } else if member.share != share {
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
    fn wake_at(&self) -> Option<Instant> {
        match self.phase {
            Phase::Running => self.config.plan.stages()[self.stage]
                .duration
                .map(|duration| self.stage_started + duration),
            Phase::Stopping => self.stop_deadline,
            Phase::Waiting | Phase::Done => None,
        }
    }

    fn on_timer(&mut self, now: Instant) {
        match self.phase {
            Phase::Running => {
                let Some(end) = self.wake_at() else { return };
                if now < end {
                    return;
                }
                if self.stage + 1 < self.config.plan.stages().len() {
                    self.stage += 1;
                    self.stage_started = end;
                    let (users, _) = self.stage_target();
                    for member in self.members.values_mut() {
                        // A new stage always sends the new rate.
                        member.share = u64::MAX;
                    }
                    self.notify(&format!("stage {}: {users} users", self.stage + 1));
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
                        .filter(|m| m.state == MemberState::Stopping)
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
    /// statistics (or is lost, or the stop timeout and 5 s more have passed).
    fn stop(&mut self, now: bool) {
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
                if matches!(member.state, MemberState::Running | MemberState::Stopping) {
                    member.state = MemberState::Stopping;
                    let _ = member.sender.send(ToWorker::Stop { now });
                }
            }
        }
        self.phase = Phase::Stopping;
        let grace = if now {
            Duration::from_secs(5)
        } else {
            self.config.stop_timeout + Duration::from_secs(5)
        };
        self.stop_deadline = Some(Instant::now() + grace);
        self.check_stopped();
    }

    fn check_stopped(&mut self) {
        if self.phase == Phase::Stopping && self.count(MemberState::Stopping) == 0 {
            self.phase = Phase::Done;
        }
    }

    /// Closes one history point, says the master is there, and updates the status.
    fn on_tick(&mut self) {
        for member in self.members.values() {
            if member.state != MemberState::Missing {
                let _ = member.sender.send(ToWorker::Heartbeat);
            }
        }
        if matches!(self.phase, Phase::Running | Phase::Stopping) {
            let users = self.users();
            self.aggregate.tick(unix_ms() / 1000, users as usize);
        }
        self.publish_status();
    }

    fn users(&self) -> u64 {
        self.members.values().map(|m| m.users).sum()
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
            users: self.users(),
            workers: self
                .members
                .iter()
                .map(|(id, m)| WorkerStatus {
                    id: *id,
                    name: m.name.clone(),
                    peer: m.peer,
                    state: m.state.name(),
                    users: m.users,
                    requests: m.requests,
                })
                .collect(),
        };
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = status;
    }

    /// Tells every worker to quit and makes the result.
    fn finish(mut self) -> RunResult {
        for member in self.members.values() {
            let _ = member.sender.send(ToWorker::Quit {
                message: "the run is over".to_owned(),
            });
        }
        self.phase = Phase::Done;
        self.publish_status();
        let mut meta = self.config.meta.clone();
        meta.start_unix_ms = if self.start_unix_ms == 0 {
            unix_ms()
        } else {
            self.start_unix_ms
        };
        meta.end_unix_ms = unix_ms();
        let aggregate = std::mem::take(&mut self.aggregate);
        aggregate.finish(meta)
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
