//! One worker thread: a current-thread tokio runtime running its share of the users, its own
//! `stats::Tally` (nothing shared per request), and every second a report to the
//! controller. It starts and stops users when told, and in the open model hands arrivals to
//! idle users.

use futures_util::FutureExt as _;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::SetupMode;
use super::http::Client;
use super::stop::StopSignal;
use super::user::{self, Iterations, OpenPool, User, WorkerShared};
use crate::scenario::Scenario;
use crate::stats::{Snapshot, Tally};

/// What the controller tells a worker.
#[derive(Debug)]
pub(super) enum Command {
    /// Start user number `index` (closed model).
    Start(u64),
    /// Stop user number `index` gracefully.
    Stop(u64),
    /// Open model: this worker may run at most `max_users` users, numbered
    /// `first_index + k * stride`.
    Open {
        max_users: u64,
        first_index: u64,
        stride: u64,
    },
    /// Open model: an iteration meant to start at this instant.
    Arrival(Instant),
    /// Forget what was recorded so far ("reset stats").
    Reset,
    /// Stop every user gracefully (at most `stop_timeout`), report, and end.
    StopAll,
    /// Stop every user at once, report, and end.
    Abort,
}

/// What a worker tells the controller every second, and once more when it ends.
#[derive(Debug)]
pub(super) struct Report {
    pub(super) worker: usize,
    /// The second of the run (from the shared start) the snapshot belongs to; the worker has
    /// reported everything up to its end.
    pub(super) second: u64,
    pub(super) snapshot: Snapshot,
    /// Iterations started per flow since the last report.
    pub(super) flow_iterations: Vec<u64>,
    /// Users alive on this worker now.
    pub(super) users: u64,
    /// Users that ended on their own (a scenario without flows) since the last report.
    pub(super) exited: u64,
    /// The last report of this worker.
    pub(super) finished: bool,
}

/// Everything a worker thread needs.
pub(super) struct WorkerSetup {
    pub(super) scenario: Arc<Scenario>,
    pub(super) client: Arc<Client>,
    pub(super) setup: SetupMode,
    /// `--iterations`: how many each user runs before it ends.
    pub(super) iterations: Option<u64>,
    pub(super) stop_timeout: Duration,
    pub(super) commands: mpsc::UnboundedReceiver<Command>,
    pub(super) reports: mpsc::UnboundedSender<Report>,
    /// Second 0 of the run, the same for every worker: reports are made as each second ends.
    pub(super) epoch: Instant,
    /// Users that ended by themselves, told to the controller at once.
    pub(super) exits: Arc<Exits>,
}

/// Users that ended by themselves (a one-pass run: `--check`, provisioning, a scenario
/// without flows), counted across workers as they end, so that the controller ends such a
/// run as soon as the last user is done instead of at the next second's report.
#[derive(Debug, Default)]
pub(super) struct Exits {
    count: std::sync::atomic::AtomicU64,
    pub(super) changed: Notify,
}

impl Exits {
    fn one(&self) {
        self.count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.changed.notify_one();
    }

    pub(super) fn count(&self) -> u64 {
        self.count.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Starts a worker thread.
pub(super) fn spawn(number: usize, setup: WorkerSetup) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(format!("chorus-worker-{number}"))
        .spawn(move || {
            let reports = setup.reports.clone();
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(err) => {
                    let mut tally = Tally::new();
                    tally.record_error(&format!("worker {number} could not start: {err}"));
                    let _ = reports.send(Report {
                        worker: number,
                        second: 0,
                        snapshot: tally.take(),
                        flow_iterations: Vec::new(),
                        users: 0,
                        exited: 0,
                        finished: true,
                    });
                    return;
                }
            };
            let local = tokio::task::LocalSet::new();
            local.block_on(&runtime, work(number, setup));
        })
        .map(drop)
}

/// A user's task: how to stop it, and how to abort it.
type Running = (Rc<StopSignal>, JoinHandle<()>);

/// The users of one worker. A user asked to stop may still be finishing its iteration and
/// running `on_stop` when a new user with its index starts (a ramp down then up), so tasks are
/// keyed by a serial number of their own.
#[derive(Default)]
struct Users {
    /// Every user task still going, stopping ones included, by serial.
    tasks: RefCell<HashMap<u64, Running>>,
    /// Users not asked to stop: index -> serial.
    live: RefCell<HashMap<u64, u64>>,
    next_serial: Cell<u64>,
    exited: Cell<u64>,
    empty: Notify,
}

impl Users {
    fn stop_all(&self, stop_timeout: Duration) {
        self.live.borrow_mut().clear();
        for (signal, _) in self.tasks.borrow().values() {
            signal.stop(stop_timeout);
        }
    }

    fn stop_all_now(&self) {
        self.live.borrow_mut().clear();
        for (signal, _) in self.tasks.borrow().values() {
            signal.stop_now();
        }
    }

    /// Waits until every user task has ended, or until `deadline`; true if they all ended.
    async fn ended_by(&self, deadline: Instant) -> bool {
        loop {
            if self.tasks.borrow().is_empty() {
                return true;
            }
            tokio::select! {
                _ = self.empty.notified() => {}
                _ = tokio::time::sleep_until(deadline) => return self.tasks.borrow().is_empty(),
            }
        }
    }
}

/// After a stop at once, how long the users get to count what they cut before their tasks
/// are aborted (they only need to be polled once).
const CUT_GRACE: Duration = Duration::from_secs(1);

async fn work(number: usize, setup: WorkerSetup) {
    let WorkerSetup {
        scenario,
        client,
        setup,
        iterations,
        stop_timeout,
        mut commands,
        reports,
        epoch,
        exits,
    } = setup;
    let cumulative_weights = scenario
        .flows
        .iter()
        .scan(0u64, |sum, flow| {
            *sum += u64::from(flow.weight);
            Some(*sum)
        })
        .collect();
    let shared = Rc::new(WorkerShared {
        flow_iterations: RefCell::new(vec![0; scenario.flows.len()]),
        scenario,
        client,
        tally: RefCell::new(Tally::new()),
        setup,
        iterations,
        targets: RefCell::new(HashMap::default()),
        cumulative_weights,
    });
    let users = Rc::new(Users::default());
    let pool = Rc::new(RefCell::new(OpenPool::default()));
    // `second`: the second of the run the measurements since the last report belong to.
    let report = |second: u64, finished: bool| {
        let flow_iterations = std::mem::replace(
            &mut *shared.flow_iterations.borrow_mut(),
            vec![0; shared.scenario.flows.len()],
        );
        let _ = reports.send(Report {
            worker: number,
            second,
            snapshot: shared.tally.borrow_mut().take(),
            flow_iterations,
            users: users.tasks.borrow().len() as u64,
            exited: users.exited.replace(0),
            finished,
        });
    };
    // A tick as each second of the run ends (the same instants on every worker): what was
    // measured since the last one belongs to the second that just ended. A tick more than a
    // second late (a stalled thread) reports the last second that ended; missed ticks are
    // skipped (the seconds between had nothing more from this worker).
    let mut tick = tokio::time::interval_at(epoch + Duration::from_secs(1), Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let ended = || {
        Instant::now()
            .saturating_duration_since(epoch)
            .as_secs()
            .saturating_sub(1)
    };
    let graceful = loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Start(index)) => {
                    start_user(&shared, &users, &exits, index, Iterations::Closed);
                }
                Some(Command::Stop(index)) => {
                    let serial = users.live.borrow_mut().remove(&index);
                    let signal = serial.and_then(|serial| {
                        users.tasks.borrow().get(&serial).map(|(signal, _)| signal.clone())
                    });
                    if let Some(signal) = signal {
                        signal.stop(stop_timeout);
                    }
                }
                Some(Command::Open { max_users, first_index, stride }) => {
                    let mut pool = pool.borrow_mut();
                    pool.max_users = max_users;
                    pool.first_index = first_index;
                    pool.stride = stride.max(1);
                }
                Some(Command::Arrival(intended)) => {
                    let spawn = pool.borrow_mut().arrive(intended, &shared);
                    if let Some(index) = spawn {
                        let iterations = Iterations::Open { pool: pool.clone(), first: intended };
                        start_user(&shared, &users, &exits, index, iterations);
                    }
                }
                Some(Command::Reset) => {
                    shared.tally.borrow_mut().take();
                    shared.flow_iterations.borrow_mut().iter_mut().for_each(|n| *n = 0);
                }
                Some(Command::StopAll) => break true,
                Some(Command::Abort) | None => break false,
            },
            _ = tick.tick() => report(ended(), false),
        }
    };
    pool.borrow_mut().close();
    // A second that ended as the stop came (its tick not yet taken) is reported as that
    // second, not folded into the last report's second under way.
    if tick.tick().now_or_never().is_some() {
        report(ended(), false);
    }
    if graceful {
        // Each user finishes its iteration within the stop timeout and then runs `on_stop`,
        // which gets as long again (`engine::stop`); a second stop makes it at once.
        users.stop_all(stop_timeout);
        let deadline = Instant::now() + stop_timeout.saturating_mul(2) + CUT_GRACE;
        loop {
            tokio::select! {
                _ = users.ended_by(deadline) => break,
                command = commands.recv() => {
                    if matches!(command, Some(Command::Abort) | None) {
                        break;
                    }
                }
                _ = tick.tick() => report(ended(), false),
            }
        }
    }
    // What is still going is cut now and counted; a task that does not end even then (it
    // cannot: every wait races the cut) is aborted.
    users.stop_all_now();
    users.ended_by(Instant::now() + CUT_GRACE).await;
    // On a starved machine the grace can pass before the users woken by the stop ran: each
    // round lets every ready one run (and count its cut request) before the rest is aborted.
    for _ in 0..3 {
        if users.tasks.borrow().is_empty() {
            break;
        }
        tokio::task::yield_now().await;
    }
    for (_, (_, handle)) in users.tasks.borrow_mut().drain() {
        handle.abort();
    }
    if tick.tick().now_or_never().is_some() {
        report(ended(), false);
    }
    // The last report: what came since the last tick belongs to the second under way.
    report(
        Instant::now().saturating_duration_since(epoch).as_secs(),
        true,
    );
}

fn start_user(
    shared: &Rc<WorkerShared>,
    users: &Rc<Users>,
    exits: &Arc<Exits>,
    index: u64,
    iterations: Iterations,
) {
    let signal = Rc::new(StopSignal::default());
    let user = User::new(index, shared.clone(), signal.clone());
    let serial = users.next_serial.get();
    users.next_serial.set(serial + 1);
    let done = users.clone();
    let exits = exits.clone();
    let handle = tokio::task::spawn_local(async move {
        user::run(user, iterations).await;
        let mut tasks = done.tasks.borrow_mut();
        if let Some((signal, _)) = tasks.remove(&serial) {
            if !signal.is_stopping() {
                done.exited.set(done.exited.get() + 1);
                exits.one();
            }
        }
        let mut live = done.live.borrow_mut();
        if live.get(&index) == Some(&serial) {
            live.remove(&index);
        }
        if tasks.is_empty() {
            done.empty.notify_one();
        }
    });
    users.tasks.borrow_mut().insert(serial, (signal, handle));
    users.live.borrow_mut().insert(index, serial);
}
