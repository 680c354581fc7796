//! The load engine: virtual users, spawning and stopping them to a plan, the HTTP session of
//! one user, executing steps. Measurements go to `stats`; nothing here prints.
//!
//! A run is `W` worker threads (each a current-thread tokio runtime with its own
//! `stats::Tally`) and one controller task on the caller's runtime that follows the
//! [`Plan`], relays commands, merges the workers' snapshots every second and publishes a
//! [`LiveUpdate`]. [`Engine::start`] returns an [`EngineHandle`] that the CLI and the web page
//! drive the same way.
//! [`Engine::start_remote`] gives the same handle for a run carried out elsewhere (a cluster
//! master's workers): its driver, a [`RemoteRun`], receives the commands and publishes.

mod auth;
mod headers;
mod http;
pub mod limits;
mod login;
mod observe;
pub mod plan;
mod redirect;
mod request_body;
mod response;
mod send;
mod socket;
pub mod sources;
mod spawner;
mod step;
mod stop;
mod target;
mod trace;
mod user;
mod worker;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{broadcast, mpsc};

pub use plan::{Load, Plan, PlanError, Stage, parse_rate, run_meta};

use crate::scenario::Scenario;
use crate::stats::{Aggregate, HistoryPoint, LiveRow, RunMeta, RunResult, Threshold};
use spawner::{Controller, Spawner};

/// A row an `emit` step produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmitRow {
    /// `(column, value)` in the step's order.
    pub columns: Vec<(String, String)>,
    /// The step's `outcome:`, rendered (`created`, `already there`, ...).
    pub outcome: Option<String>,
}

/// What changes when a run sets an application up (`chorus provision`) rather than loads
/// it. The default is a load test: every failure is a measurement and nothing is retried.
#[derive(Debug, Clone, Default)]
pub struct SetupMode {
    /// Where `emit` steps send their rows; without it they are ignored.
    pub emit: Option<mpsc::UnboundedSender<EmitRow>>,
    /// Transport errors (refused, reset, timed out) are retried this many times, after
    /// 200 ms, 400 ms, 800 ms, ... Only the last try is counted.
    pub transport_retries: u32,
    /// A failed request ends the step list it is in, and a `repeat` goes on with its next
    /// iteration: one account that cannot be created does not stop the others, a login that
    /// fails stops everything after it.
    pub failure_ends_sequence: bool,
    /// `--check`: each user runs every flow in order this many times, then `on_stop`, and
    /// ends; the run ends when every user has.
    pub rounds: Option<u64>,
    /// `--check`: where every exchange is described, in each user's order.
    pub observe: Option<mpsc::UnboundedSender<crate::fidelity::Observation>>,
    /// A graceful stop ends the step list at the next step (a setup run is one long
    /// `on_start`), rather than letting the user finish it.
    pub stop_between_steps: bool,
}

/// How a run is carried out (what it does is the scenario, how much is the plan).
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Worker threads; 0: one per available core.
    pub workers: usize,
    /// After a graceful stop, how long each user may take to finish `on_start` or the
    /// iteration under way; `on_stop` then gets as long again (see `engine::stop`).
    pub stop_timeout: Duration,
    /// The most of a response body kept for a step that reads it (`--max-body`); `None`: the
    /// scenario's `max_body:` (default 16 MiB).
    pub max_body: Option<u64>,
    /// Accept invalid or self-signed TLS certificates.
    pub accept_invalid_certs: bool,
    /// `--iterations`: each user runs this many iterations, then `on_stop`, and ends; the run
    /// ends when every user has (or at its run time).
    pub iterations: Option<u64>,
    /// Evaluated on the result (the CLI's `--threshold` and the scenario's `thresholds:`).
    pub thresholds: Vec<Threshold>,
    /// Setup runs (`chorus provision`): rows, retries, failures that end a sequence.
    pub setup: SetupMode,
    /// The run's seconds (its history points) count from this long before the start: a
    /// cluster worker that joins a run under way keeps the master's seconds.
    pub started_ago: Duration,
    /// What to watch beside the load (`--monitor`); chorus's own CPU and memory always.
    pub monitors: Vec<crate::monitor::Spec>,
    /// The local addresses connections leave from, in turn (`--source-addrs`, or 127.0.0.x
    /// for a loopback target with many users); empty: the kernel picks.
    pub source_addrs: Vec<std::net::IpAddr>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            workers: 0,
            stop_timeout: Duration::from_secs(10),
            max_body: None,
            accept_invalid_certs: false,
            iterations: None,
            thresholds: Vec::new(),
            setup: SetupMode::default(),
            started_ago: Duration::ZERO,
            monitors: Vec::new(),
            source_addrs: Vec::new(),
        }
    }
}

/// Why a run could not start. Nothing was sent.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A `--monitor` that cannot watch anything (a PID that does not exist).
    #[error("{0}")]
    Monitor(String),
    #[error("{0}")]
    Data(#[from] crate::data::DataError),
    #[error("{0}")]
    Plan(#[from] PlanError),
    #[error("could not set up TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("{0}")]
    OpenFiles(#[from] limits::OpenFilesError),
    #[error("could not start worker thread {number}: {source}")]
    Worker {
        number: usize,
        source: std::io::Error,
    },
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Users are being started or stopped towards the plan's count.
    Spawning,
    /// At the plan's count (or, in the open model, arrivals are flowing).
    Running,
    /// No new iterations; requests in flight are finishing.
    Stopping,
    /// Over; `EngineHandle::wait` has the result.
    Stopped,
}

/// How often one flow ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowCount {
    pub name: String,
    pub weight: u32,
    /// Iterations started since the run began (or since the last reset).
    pub iterations: u64,
}

impl FlowCount {
    /// Each flow of the scenario, not run yet.
    fn zeroed(scenario: &Scenario) -> Vec<FlowCount> {
        scenario
            .flows
            .iter()
            .map(|flow| FlowCount {
                name: flow.name.clone(),
                weight: flow.weight,
                iterations: 0,
            })
            .collect()
    }
}

/// What the page shows each second.
#[derive(Debug, Clone, Serialize)]
pub struct LiveUpdate {
    pub state: RunState,
    pub users: u64,
    pub unix_seconds: u64,
    /// One row per (method, name), by name then method.
    #[serde(skip)]
    pub rows: Vec<LiveRow>,
    /// The `Aggregated` row.
    #[serde(skip)]
    pub total: LiveRow,
    /// The newest point of the time series.
    pub point: Option<HistoryPoint>,
    /// The points made or amended since the last update (usually the one second that just
    /// closed; a point comes again when a late report amends it).
    #[serde(skip)]
    pub points: Vec<HistoryPoint>,
    pub flows: Vec<FlowCount>,
    /// Open model: iterations not started because every user was busy.
    pub dropped_iterations: u64,
    /// Iterations (or `on_start`/`on_stop`) the stop cut short.
    pub cut_iterations: u64,
    /// Errors that are not requests (template errors and the like), counted.
    pub errors: u64,
}

/// The entry point: `Engine::start(scenario, plan, options)`.
#[derive(Debug)]
pub struct Engine;

impl Engine {
    /// Checks what can be checked before any traffic (unique data sources cover the plan's
    /// peak users, TLS), starts the worker threads and the controller, and returns at once.
    /// Call it inside a tokio runtime: the controller is a task of the caller's runtime.
    pub fn start(
        scenario: Arc<Scenario>,
        plan: Plan,
        options: EngineOptions,
    ) -> Result<EngineHandle, EngineError> {
        scenario.check_capacity(plan.peak_users())?;
        limits::check_open_files(plan.peak_users(), limits::connections_per_user(&scenario))?;
        let client = Arc::new(http::Client::new(
            scenario.defaults.connect_timeout,
            scenario.defaults.timeout,
            options.max_body.unwrap_or(scenario.defaults.max_body),
            options.accept_invalid_certs,
            options.source_addrs.clone(),
        )?);
        let workers = if options.workers == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            options.workers
        };
        let monitors = crate::monitor::Sampler::new(&options.monitors, workers)
            .map_err(EngineError::Monitor)?;
        let (report_sender, reports) = mpsc::unbounded_channel();
        // Second 0 of the run: the workers report each second's measurements by its number.
        let now = tokio::time::Instant::now();
        let epoch = now.checked_sub(options.started_ago).unwrap_or(now);
        let start_unix_ms = spawner::unix_ms()
            .saturating_sub(u64::try_from(options.started_ago.as_millis()).unwrap_or(0));
        let mut senders = Vec::with_capacity(workers);
        let exits = Arc::new(worker::Exits::default());
        for number in 0..workers {
            let (sender, commands) = mpsc::unbounded_channel();
            let setup = worker::WorkerSetup {
                scenario: scenario.clone(),
                client: client.clone(),
                setup: options.setup.clone(),
                iterations: options.iterations,
                stop_timeout: options.stop_timeout,
                commands,
                reports: report_sender.clone(),
                epoch,
                exits: exits.clone(),
            };
            if let Err(source) = worker::spawn(number, setup) {
                for sender in &senders {
                    let _ = mpsc::UnboundedSender::send(sender, worker::Command::Abort);
                }
                return Err(EngineError::Worker { number, source });
            }
            senders.push(sender);
        }
        drop(report_sender);
        let (updates, _) = broadcast::channel(16);
        let flows = FlowCount::zeroed(&scenario);
        let shared = Published::new(scenario.clone(), flows.clone(), updates);
        shared
            .aggregate()
            .start_seconds(start_unix_ms, (0..workers).map(|n| n as u64));
        let meta = run_meta(
            &scenario,
            Some(&plan),
            options.thresholds.clone(),
            start_unix_ms,
        );
        let (control, control_receiver) = mpsc::unbounded_channel();
        let controller = Controller {
            spawner: Spawner::new(plan, senders, tokio::time::Instant::now()),
            control: control_receiver,
            reports,
            shared: shared.clone(),
            meta: meta.clone(),
            flows,
            one_pass: scenario.flows.is_empty()
                || options.setup.rounds.is_some()
                || options.iterations.is_some(),
            exits,
            epoch,
            monitors,
        };
        let task = tokio::spawn(controller.run());
        Ok(EngineHandle {
            control: EngineControl { control, shared },
            task,
            meta,
        })
    }
}

impl Engine {
    /// A run carried out elsewhere (a cluster master's workers) behind the same
    /// [`EngineHandle`]: `drive` receives the [`RemoteRun`] (the handle's commands, and where
    /// to publish state, users and updates) and returns the result. Nothing is checked and no
    /// thread is started here; `drive` runs as a task of the caller's runtime.
    pub fn start_remote<F, Fut>(scenario: Arc<Scenario>, meta: RunMeta, drive: F) -> EngineHandle
    where
        F: FnOnce(RemoteRun) -> Fut,
        Fut: std::future::Future<Output = RunResult> + Send + 'static,
    {
        let flows = FlowCount::zeroed(&scenario);
        let (updates, _) = broadcast::channel(16);
        let shared = Published::new(scenario, flows.clone(), updates);
        let (control, commands) = mpsc::unbounded_channel();
        let remote = RemoteRun {
            commands,
            shared: shared.clone(),
            flows,
        };
        let task = tokio::spawn(drive(remote));
        EngineHandle {
            control: EngineControl { control, shared },
            task,
            meta,
        }
    }
}

/// What an [`EngineControl`] asks of its run: of the engine's own controller, or of a run
/// carried out elsewhere (through [`RemoteRun::command`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RunCommand {
    SetUsers {
        users: u64,
        spawn_rate: f64,
    },
    /// An open-model run's new rate (`None`: start no iteration until the next one).
    SetArrivals {
        per_second: Option<f64>,
        max_users: u64,
    },
    Stop,
    StopNow,
    Reset,
}

/// The driver's side of [`Engine::start_remote`]: the commands of the handle, and where the
/// state, the users and the one-per-second [`LiveUpdate`] go.
#[derive(Debug)]
pub struct RemoteRun {
    commands: mpsc::UnboundedReceiver<RunCommand>,
    shared: Arc<Published>,
    flows: Vec<FlowCount>,
}

impl RemoteRun {
    /// The next command; `None` once every control is dropped.
    pub async fn command(&mut self) -> Option<RunCommand> {
        self.commands.recv().await
    }

    /// The run's measurements, read by `EngineControl::inspect`: merge into it here.
    pub fn aggregate(&self) -> Arc<Mutex<Aggregate>> {
        self.shared.aggregate.clone()
    }

    pub fn set_state(&self, state: RunState) {
        *self.shared.state.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }

    /// The monitors' newest values (sampled by the driver: a master samples `--monitor`).
    pub fn set_monitors(&self, look: crate::monitor::Look) {
        self.shared.set_monitors(look);
    }

    /// Sets the users and sends a [`LiveUpdate`] of the aggregate as it is (the driver
    /// makes the history points itself, with `Aggregate::close_seconds`).
    pub fn publish(&self, users: u64) {
        self.shared.publish(users, &self.flows);
    }
}

/// A running engine. Dropping it (and every [`EngineControl`]) stops the run gracefully.
#[derive(Debug)]
pub struct EngineHandle {
    control: EngineControl,
    task: tokio::task::JoinHandle<RunResult>,
    meta: RunMeta,
}

impl std::ops::Deref for EngineHandle {
    type Target = EngineControl;

    fn deref(&self) -> &EngineControl {
        &self.control
    }
}

impl EngineHandle {
    /// A cloneable remote control (the web page keeps one per connection).
    pub fn control(&self) -> EngineControl {
        self.control.clone()
    }

    /// Waits for the run to end (the plan is over, or `stop`/`stop_now` was called) and
    /// returns everything it measured.
    pub async fn wait(self) -> RunResult {
        let EngineHandle {
            control,
            task,
            meta,
        } = self;
        let result = task.await;
        drop(control);
        result.unwrap_or_else(|_| RunResult::empty(meta))
    }
}

/// The control API (for the CLI and the web page). Every method returns at once.
#[derive(Debug, Clone)]
pub struct EngineControl {
    control: mpsc::UnboundedSender<RunCommand>,
    shared: Arc<Published>,
}

impl EngineControl {
    /// Moves the user count to `users` at `spawn_rate` users per second and keeps it there
    /// until the next call or a stop (replacing the rest of the plan). Refused in an
    /// open-model run and for a non-positive rate.
    /// Refused, before anything changes, when a `unique` data source has fewer rows.
    pub fn set_users(&self, users: u64, spawn_rate: f64) -> Result<(), EngineError> {
        Plan::users(users, Some(spawn_rate), None)?;
        self.shared.scenario.check_capacity(users)?;
        limits::check_open_files(users, limits::connections_per_user(&self.shared.scenario))?;
        let _ = self
            .control
            .send(RunCommand::SetUsers { users, spawn_rate });
        Ok(())
    }

    /// Open model: starts `per_second` iterations per second from now on, with at most
    /// `max_users` users busy (replacing the rest of the plan); `None` starts none until the
    /// next call (the users finish what they started). Refused in a closed-model run (said in
    /// the log) and for a rate out of bounds.
    pub fn set_arrival_rate(
        &self,
        per_second: Option<f64>,
        max_users: u64,
    ) -> Result<(), EngineError> {
        if let Some(per_second) = per_second {
            Plan::arrival_rate(per_second, max_users, None)?;
        }
        self.shared.scenario.check_capacity(max_users)?;
        let _ = self.control.send(RunCommand::SetArrivals {
            per_second,
            max_users,
        });
        Ok(())
    }

    /// Graceful stop: no new iterations; each user finishes what it is doing within the stop
    /// timeout, then runs `on_stop`.
    pub fn stop(&self) {
        let _ = self.control.send(RunCommand::Stop);
    }

    /// Stops at once: requests in flight are counted as cut at the stop, `on_stop` does not
    /// run.
    pub fn stop_now(&self) {
        let _ = self.control.send(RunCommand::StopNow);
    }

    /// Forgets every count so far ("reset stats"); the history stays.
    pub fn reset_stats(&self) {
        let _ = self.control.send(RunCommand::Reset);
    }

    pub fn state(&self) -> RunState {
        self.shared.state()
    }

    /// Users alive now.
    pub fn users(&self) -> u64 {
        self.shared.users.load(Ordering::Relaxed)
    }

    /// One [`LiveUpdate`] per second, and a last one when the run has stopped.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveUpdate>> {
        self.shared.updates.subscribe()
    }

    /// The newest update (for a page that just connected, or flow counts after the run).
    pub fn latest(&self) -> Arc<LiveUpdate> {
        self.shared
            .latest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// From now on (and including everything measured so far) the run's measurements are
    /// also merged into `tap` by second; take the closed seconds out of it under its lock.
    /// It keeps receiving until the run's last report, after the result is made.
    pub fn tap(&self, tap: Arc<Mutex<crate::stats::SecondsTap>>) {
        self.shared.aggregate().set_tap(tap);
    }

    /// Reads the live measurements, e.g. for `stats::report::live_table`. Keep `f` short:
    /// the controller waits for it.
    pub fn inspect<R>(&self, f: impl FnOnce(&Aggregate) -> R) -> R {
        f(&self.shared.aggregate())
    }

    /// Each monitor series' newest value (none in a cluster run yet).
    pub fn monitors(&self) -> Vec<(String, crate::monitor::Unit, f64)> {
        self.monitor_look().values()
    }

    /// The monitors at the controller's last look: each series' newest point with its
    /// second, chorus's own saturation, the notices (the page's System tab).
    pub fn monitor_look(&self) -> crate::monitor::Look {
        self.shared
            .monitors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The numbers `GET /metrics` and `--otlp` show now: each request name's counters and
    /// latency, the users, the monitors' newest values. Keep `f` short, as for [`inspect`].
    ///
    /// [`inspect`]: EngineControl::inspect
    pub fn with_exposition<R>(
        &self,
        f: impl FnOnce(&crate::stats::report::prometheus::Exposition<'_>) -> R,
    ) -> R {
        let (users, monitors) = (self.users(), self.monitors());
        self.inspect(|aggregate| {
            f(&crate::stats::report::prometheus::Exposition::of_aggregate(
                aggregate, users, monitors,
            ))
        })
    }
}

/// What the controller publishes and the controls read.
#[derive(Debug)]
pub(crate) struct Published {
    /// What the run runs, for checks on a change of plan.
    scenario: Arc<Scenario>,
    state: Mutex<RunState>,
    users: AtomicU64,
    /// Shared with a [`RemoteRun`]'s driver, which merges its measurements there.
    aggregate: Arc<Mutex<Aggregate>>,
    latest: Mutex<Arc<LiveUpdate>>,
    updates: broadcast::Sender<Arc<LiveUpdate>>,
    /// The monitors (`--monitor`, chorus's own) at the controller's last look.
    monitors: Mutex<crate::monitor::Look>,
}

impl Published {
    /// A run about to start: spawning, no users, an empty aggregate and a first update.
    fn new(
        scenario: Arc<Scenario>,
        flows: Vec<FlowCount>,
        updates: broadcast::Sender<Arc<LiveUpdate>>,
    ) -> Arc<Published> {
        Arc::new(Published {
            scenario,
            state: Mutex::new(RunState::Spawning),
            users: AtomicU64::new(0),
            aggregate: Arc::new(Mutex::new(Aggregate::new())),
            latest: Mutex::new(Arc::new(LiveUpdate {
                state: RunState::Spawning,
                users: 0,
                unix_seconds: spawner::unix_ms() / 1000,
                rows: Vec::new(),
                total: Aggregate::new().total_row(),
                point: None,
                points: Vec::new(),
                flows,
                dropped_iterations: 0,
                cut_iterations: 0,
                errors: 0,
            })),
            updates,
            monitors: Mutex::new(crate::monitor::Look::default()),
        })
    }

    pub(super) fn set_monitors(&self, look: crate::monitor::Look) {
        *self.monitors.lock().unwrap_or_else(|e| e.into_inner()) = look;
    }

    /// Sets the users and sends a [`LiveUpdate`] of the aggregate, with the history points
    /// made since the last one.
    fn publish(&self, users: u64, flows: &[FlowCount]) {
        self.set_users(users);
        let unix_seconds = spawner::unix_ms() / 1000;
        let update = {
            let mut aggregate = self.aggregate();
            LiveUpdate {
                points: aggregate.take_fresh_points(),
                state: self.state(),
                users,
                unix_seconds,
                rows: aggregate.rows(),
                total: aggregate.total_row(),
                point: aggregate.last_point().cloned(),
                flows: flows.to_vec(),
                dropped_iterations: aggregate.dropped_iterations(),
                cut_iterations: aggregate.cut_iterations(),
                errors: aggregate.errors().iter().map(|e| e.count).sum(),
            }
        };
        let update = Arc::new(update);
        *self.latest.lock().unwrap_or_else(|e| e.into_inner()) = update.clone();
        let _ = self.updates.send(update);
    }

    fn state(&self) -> RunState {
        *self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_users(&self, users: u64) {
        self.users.store(users, Ordering::Relaxed);
    }

    fn aggregate(&self) -> MutexGuard<'_, Aggregate> {
        self.aggregate.lock().unwrap_or_else(|e| e.into_inner())
    }
}
