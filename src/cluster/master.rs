//! The master: listens for workers, waits for the ones it expects, follows the plan by telling
//! each worker its share of the users, merges their statistics (HDR deltas, exactly) into one
//! `stats::Aggregate`, moves the users of a lost worker to the others and gives a worker that
//! joins mid-run its share. The result is one `RunResult`, thresholds evaluated on the merge.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::auth;
use super::link::{self, LinkSetup};
use super::protocol::ScenarioPin;
use super::run::{MasterConfig, Run};
use super::status::Status;
use super::{ClusterError, HEARTBEAT_EVERY};
use crate::engine::{Engine, EngineHandle, Plan, RemoteRun, RunCommand, RunState};
use crate::scenario::Scenario;
use crate::stats::{Aggregate, RunMeta, RunResult, SecondsTap};

/// What the CLI (or a page) asks of a running master.
#[derive(Debug, Clone)]
pub struct MasterControl {
    commands: mpsc::UnboundedSender<Command>,
    status: Arc<Mutex<Status>>,
    expect_workers: usize,
    /// The merged measurements of a headless run ([`Master::run`]).
    aggregate: Arc<Mutex<Aggregate>>,
}

#[derive(Debug)]
enum Command {
    Stop,
    StopNow,
    /// A page's run (see [`MasterControl::start_run`]).
    Start {
        plan: Plan,
        meta: RunMeta,
        remote: RemoteRun,
        done: oneshot::Sender<RunResult>,
    },
    /// A page's master closes: the workers are told to quit.
    Quit,
    /// An open-model run's new rate (see [`MasterControl::set_arrival_rate`]).
    SetArrivals {
        per_second: Option<f64>,
        max_users: u64,
    },
    /// Where the merged seconds also go (see [`MasterControl::tap`]).
    Tap(Arc<Mutex<SecondsTap>>),
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

    /// Open model: from now on `per_second` iterations per second in all, split over the
    /// workers with at most `max_users` users busy; `None` starts none until the next call.
    /// Refused for a rate out of bounds; ignored by a closed-model run (said by the master).
    pub fn set_arrival_rate(&self, per_second: Option<f64>, max_users: u64) -> Result<(), String> {
        if let Some(per_second) = per_second {
            Plan::arrival_rate(per_second, max_users, None).map_err(|err| err.to_string())?;
        }
        let _ = self.commands.send(Command::SetArrivals {
            per_second,
            max_users,
        });
        Ok(())
    }

    /// From now on the merged measurements are also put into `tap` by second (as
    /// `EngineControl::tap` does on this machine).
    pub fn tap(&self, tap: Arc<Mutex<SecondsTap>>) {
        let _ = self.commands.send(Command::Tap(tap));
    }

    /// Starts a run of `plan` on the workers of a master that serves the page
    /// ([`Master::serve`]): the handle is driven like a local engine's, its users and spawn
    /// rate (or its arrival rate) are split over the workers and its measurements are the
    /// merged ones. Refused (with a sentence for the page) while fewer workers than expected
    /// are ready.
    pub fn start_run(
        &self,
        scenario: Arc<Scenario>,
        plan: Plan,
        meta: RunMeta,
    ) -> Result<EngineHandle, String> {
        scenario
            .check_capacity(plan.peak_users())
            .map_err(|err| err.to_string())?;
        let status = self.status();
        let ready = status.ready_workers();
        if status.state.is_some_and(|state| state != RunState::Stopped) {
            return Err(
                "the workers are still stopping the last run: try again in a few seconds"
                    .to_owned(),
            );
        }
        if ready < self.expect_workers.max(1) {
            return Err(format!(
                "{ready} of {} expected worker(s) ready: start more with `chorus worker --master                  HOST:PORT`, or wait for them to join (the workers panel lists them)",
                self.expect_workers.max(1)
            ));
        }
        let commands = self.commands.clone();
        let empty_meta = meta.clone();
        Ok(Engine::start_remote(
            scenario,
            meta.clone(),
            move |remote| {
                let (done, result) = oneshot::channel();
                let sent = commands.send(Command::Start {
                    plan,
                    meta,
                    remote,
                    done,
                });
                async move {
                    if sent.is_err() {
                        return RunResult::empty(empty_meta);
                    }
                    result
                        .await
                        .unwrap_or_else(|_| RunResult::empty(empty_meta))
                }
            },
        ))
    }

    /// Tells the workers to quit and ends [`Master::serve`].
    pub fn quit(&self) {
        let _ = self.commands.send(Command::Quit);
    }

    /// The numbers `--otlp` pushes from a headless run ([`Master::run`]) as it goes: the
    /// merged counters and latencies, the users, the monitors the master samples. Keep `f`
    /// short: the master merges under the same lock.
    pub fn with_exposition<R>(
        &self,
        f: impl FnOnce(&crate::stats::report::prometheus::Exposition<'_>) -> R,
    ) -> R {
        let status = self.status();
        let aggregate = self.aggregate.lock().unwrap_or_else(|e| e.into_inner());
        f(&crate::stats::report::prometheus::Exposition::of_aggregate(
            &aggregate,
            status.users,
            status.monitors.values(),
        ))
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
    /// Checks the settings (a token off loopback) and listens.
    pub async fn bind(config: MasterConfig) -> Result<Master, ClusterError> {
        auth::check_bind(&config.bind, config.token.as_deref()).map_err(ClusterError::Refused)?;
        let listener =
            TcpListener::bind(config.bind)
                .await
                .map_err(|source| ClusterError::Bind {
                    addr: config.bind,
                    source,
                })?;
        let (commands_sender, commands) = mpsc::unbounded_channel();
        let expect_workers = config.expect_workers;
        Ok(Master {
            listener,
            config,
            commands,
            control: MasterControl {
                commands: commands_sender,
                status: Arc::new(Mutex::new(Status::default())),
                expect_workers,
                aggregate: Arc::new(Mutex::new(Aggregate::new())),
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

    /// Starts accepting workers; the state machine that follows them, its commands and its
    /// control.
    #[allow(clippy::type_complexity)]
    fn open(
        self,
    ) -> (
        tokio::task::JoinHandle<()>,
        mpsc::UnboundedReceiver<link::Event>,
        mpsc::UnboundedReceiver<Command>,
        MasterControl,
        Run,
    ) {
        let Master {
            listener,
            config,
            commands,
            control,
        } = self;
        let (accept, events) = accept_workers(listener, &config);
        let mut run = Run::new(config, control.status.clone());
        run.share_aggregate(control.aggregate.clone());
        (accept, events, commands, control, run)
    }

    /// Waits for the expected workers, runs the plan, stops the workers and returns the
    /// merged result. The workers are told to quit at the end.
    pub async fn run(self) -> RunResult {
        let expect = self.config.expect_workers;
        // The control is held to the end: while it lives, the commands channel stays open.
        let (accept, mut events, mut commands, _control, mut run) = self.open();
        run.notify(&format!("waiting for {expect} worker(s) to join"));
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
                    Some(Command::Quit) => run.stop(true),
                    Some(Command::SetArrivals { per_second, max_users }) => {
                        run.set_arrivals(per_second, max_users);
                    }
                    Some(Command::Tap(tap)) => run.tap(tap),
                    Some(Command::Start { .. }) => {}
                    None => commands_open = false,
                },
                _ = tokio::time::sleep_until(wake) => run.on_timer(Instant::now()),
                _ = tick.tick() => run.on_tick(),
            }
        }
        accept.abort();
        let links = run.links();
        let result = run.finish();
        // Let each connection write its quit before this process goes on (and exits): a
        // worker that only saw the connection close would wait for a master to come back.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            for link in links {
                link.closed().await;
            }
        })
        .await;
        result
    }

    /// Serves the page's runs ([`MasterControl::start_run`]) one after another on the
    /// workers that join, until [`MasterControl::quit`]; then tells the workers to quit.
    pub async fn serve(self) {
        let (accept, mut events, mut commands, _control, run) = self.open();
        let mut run = run.for_page();
        let mut current: Option<(RemoteRun, oneshot::Sender<RunResult>)> = None;
        let mut remote_open = false;
        let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let far = Instant::now() + Duration::from_secs(86_400 * 365);
        loop {
            let wake = run.wake_at().unwrap_or(far);
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => run.on_event(event),
                    None => break,
                },
                command = commands.recv() => match command {
                    Some(Command::Start { plan, meta, remote, done }) => {
                        if current.is_some() || !run.is_idle() {
                            drop(done);
                        } else {
                            run.start(plan, meta, remote.aggregate());
                            remote.set_state(run.page_state());
                            remote.publish(run.users_now());
                            current = Some((remote, done));
                            remote_open = true;
                        }
                    }
                    Some(Command::Stop) if current.is_some() => run.stop(false),
                    Some(Command::StopNow) if current.is_some() => run.stop(true),
                    Some(Command::Stop | Command::StopNow) => {}
                    // A page's run is steered through its engine handle.
                    Some(Command::SetArrivals { .. } | Command::Tap(_)) => {}
                    Some(Command::Quit) | None => break,
                },
                command = async { current.as_mut()?.0.command().await }, if remote_open => match command {
                    Some(RunCommand::SetUsers { users, spawn_rate }) => run.set_users(users, spawn_rate),
                    Some(RunCommand::SetArrivals { per_second, max_users }) => run.set_arrivals(per_second, max_users),
                    Some(RunCommand::Stop) => run.stop(false),
                    Some(RunCommand::StopNow) => run.stop(true),
                    Some(RunCommand::Reset) => run.reset(),
                    None => remote_open = false,
                },
                _ = tokio::time::sleep_until(wake) => run.on_timer(Instant::now()),
                _ = tick.tick() => {
                    run.on_tick();
                    if let Some((remote, _)) = &current {
                        remote.set_state(run.page_state());
                        remote.set_monitors(run.monitors_now());
                        remote.publish(run.users_now());
                    }
                }
            }
            if run.is_done() {
                let result = run.end_run();
                if let Some((remote, done)) = current.take() {
                    remote.set_state(RunState::Stopped);
                    remote.publish(0);
                    let _ = done.send(result);
                }
                remote_open = false;
            }
        }
        if let Some((remote, _)) = &current {
            remote.set_state(RunState::Stopped);
            remote.publish(0);
        }
        run.stop(true);
        accept.abort();
        let links = run.links();
        let result = run.finish();
        if let Some((_, done)) = current.take() {
            let _ = done.send(result);
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            for link in links {
                link.closed().await;
            }
        })
        .await;
    }
}

/// Accepts workers' connections; each one's events (joined, messages, gone) come out of the
/// receiver.
fn accept_workers(
    listener: TcpListener,
    config: &MasterConfig,
) -> (
    tokio::task::JoinHandle<()>,
    mpsc::UnboundedReceiver<link::Event>,
) {
    let (events_sender, events) = mpsc::unbounded_channel();
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
    (accept, events)
}
