//! One virtual user: its variables, cookie jar and connections; `on_start`, then flows picked
//! at random by weight (one after the other in the closed model, one per arrival in the open
//! model), then `on_stop`. A graceful stop lets the request in flight finish and starts no new
//! iteration.

use std::cell::Cell;
use std::fmt::Display;
use std::rc::Rc;
use std::time::Duration;

use cookie_store::CookieStore;
use rand::RngExt as _;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::http::Session;
use super::step::{Outcome, run_steps};
use super::worker::{OpenPool, WorkerShared};
use crate::scenario::Vars;

/// A user whose iteration ended on an error waits this long before the next, so a broken
/// scenario cannot spin a worker.
const ERROR_BACKOFF: Duration = Duration::from_secs(1);

/// Where in the scenario a user is, for error messages.
#[derive(Debug, Clone, Copy)]
pub(super) enum Section {
    OnStart,
    Flow(usize),
    OnStop,
}

pub(super) struct User {
    pub(super) index: u64,
    pub(super) worker: Rc<WorkerShared>,
    pub(super) session: Session,
    pub(super) cookies: CookieStore,
    pub(super) vars: Vars,
    pub(super) stop: Rc<StopSignal>,
    /// False while `on_stop` runs: it runs whole even though the user was asked to stop.
    pub(super) interruptible: bool,
    /// Open model: how late the current iteration started; added to every latency.
    pub(super) lag: Duration,
    pub(super) section: Section,
    /// Step indexes below the section, for error messages.
    pub(super) path: Vec<usize>,
    /// The flow iteration under way (from 0), `None` outside flows: for observations.
    pub(super) iteration: Option<u64>,
}

/// A user's "stop gracefully" flag; cheap to test between steps, awaitable during thinks.
#[derive(Debug, Default)]
pub(super) struct StopSignal {
    stopped: Cell<bool>,
    notify: Notify,
}

impl StopSignal {
    pub(super) fn stop(&self) {
        self.stopped.set(true);
        self.notify.notify_waiters();
    }

    pub(super) fn is_stopped(&self) -> bool {
        self.stopped.get()
    }

    /// Resolves once `stop` was called (at once if it was already).
    pub(super) async fn stopped(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_stopped() {
                return;
            }
            notified.await;
        }
    }
}

/// Where a user's iterations come from.
pub(super) enum Iterations {
    /// Closed model: one after the other until stopped.
    Closed,
    /// Open model: one per arrival; the first arrival is the one that created the user.
    Open {
        pool: Rc<std::cell::RefCell<OpenPool>>,
        first: Instant,
    },
}

impl User {
    pub(super) fn new(index: u64, worker: Rc<WorkerShared>, stop: Rc<StopSignal>) -> User {
        User {
            index,
            session: Session::new(worker.client.clone()),
            worker,
            cookies: CookieStore::default(),
            vars: Vars::new(),
            stop,
            interruptible: true,
            lag: Duration::ZERO,
            section: Section::OnStart,
            path: Vec::new(),
            iteration: None,
        }
    }

    /// A copy for one iteration of a parallel `repeat`: the same variables and cookies, its
    /// own connections.
    pub(super) fn fork(&self) -> User {
        User {
            index: self.index,
            worker: self.worker.clone(),
            session: Session::new(self.worker.client.clone()),
            cookies: self.cookies.clone(),
            vars: self.vars.clone(),
            stop: self.stop.clone(),
            interruptible: self.interruptible,
            lag: self.lag,
            section: self.section,
            path: self.path.clone(),
            iteration: self.iteration,
        }
    }

    pub(super) fn stop_requested(&self) -> bool {
        self.interruptible && self.stop.is_stopped()
    }

    /// Waits, unless the user is asked to stop first.
    pub(super) async fn pause(&self, pause: Duration) -> Outcome {
        if !self.interruptible {
            tokio::time::sleep(pause).await;
            return Outcome::Continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => Outcome::Continue,
            _ = self.stop.stopped() => Outcome::Stopped,
        }
    }

    /// Counts an error that is not a request (Locust's exceptions) and abandons the sequence.
    pub(super) fn error(&self, field: &str, err: &dyn Display) -> Outcome {
        let message = format!("{}: {field}: {err}", self.here());
        self.worker.recorder.borrow_mut().record_error(&message);
        Outcome::Abandon
    }

    /// `flows[0].steps[2].steps[1]`: where the user is.
    pub(super) fn here(&self) -> String {
        let mut text = match self.section {
            Section::OnStart => "on_start".to_owned(),
            Section::Flow(index) => format!(
                "flows[{index}] ({}).steps",
                self.worker.scenario.flows[index].name
            ),
            Section::OnStop => "on_stop".to_owned(),
        };
        for (depth, index) in self.path.iter().enumerate() {
            if depth > 0 {
                text.push_str(".steps");
            }
            text.push_str(&format!("[{index}]"));
        }
        text
    }

    async fn iteration(&mut self, number: u64) -> Outcome {
        let flows = self.worker.scenario.flows.len() as u64;
        // `--check` runs the flows in order; a load test picks them by weight.
        let picked = match self.worker.setup.rounds {
            Some(_) if flows > 0 => Some((number % flows) as usize),
            _ => self.worker.pick_flow(),
        };
        let Some(flow) = picked else {
            return Outcome::Stopped;
        };
        self.vars.set_iteration(number);
        self.iteration = Some(number);
        self.section = Section::Flow(flow);
        self.worker.flow_iterations.borrow_mut()[flow] += 1;
        let scenario = self.worker.scenario.clone();
        let outcome = run_steps(self, &scenario.flows[flow].steps).await;
        if outcome == Outcome::Abandon && self.worker.setup.rounds.is_none() {
            self.pause(ERROR_BACKOFF).await;
        }
        // A flow of thinks of zero and false conditions never waits; let others run (once the
        // task's budget is spent: yielding after every iteration costs a reschedule each).
        tokio::task::consume_budget().await;
        outcome
    }
}

/// The life of one user. Returns when it stopped or, for a scenario without flows, when it
/// ran `on_start` and `on_stop` once.
pub(super) async fn run(mut user: User, iterations: Iterations) {
    let scenario = user.worker.scenario.clone();
    match Vars::for_user(&scenario, user.index) {
        Ok(vars) => user.vars = vars,
        Err(err) => {
            user.error("vars", &err);
            return;
        }
    }
    user.section = Section::OnStart;
    let mut stopped = run_steps(&mut user, &scenario.on_start).await == Outcome::Stopped;
    let mut number = 0;
    match iterations {
        Iterations::Closed => {
            let last = user
                .worker
                .setup
                .rounds
                .map(|rounds| rounds * scenario.flows.len() as u64);
            while !stopped
                && !user.stop.is_stopped()
                && !scenario.flows.is_empty()
                && last.is_none_or(|last| number < last)
            {
                stopped = user.iteration(number).await == Outcome::Stopped;
                number += 1;
            }
        }
        Iterations::Open { pool, first } => {
            let mut intended = Some(first);
            while let Some(start) = intended {
                if stopped || user.stop.is_stopped() {
                    break;
                }
                user.lag = Instant::now().saturating_duration_since(start);
                stopped = user.iteration(number).await == Outcome::Stopped;
                user.lag = Duration::ZERO;
                number += 1;
                intended = OpenPool::next_arrival(&pool, user.index, &user.stop).await;
            }
        }
    }
    user.section = Section::OnStop;
    user.iteration = None;
    user.path.clear();
    user.interruptible = false;
    run_steps(&mut user, &scenario.on_stop).await;
}

/// The index of a flow picked at random in proportion to the weights (cumulative sums).
pub(super) fn pick_weighted(cumulative: &[u64]) -> Option<usize> {
    let total = *cumulative.last()?;
    if total == 0 {
        return None;
    }
    let ticket = rand::rng().random_range(0..total);
    Some(cumulative.partition_point(|&sum| sum <= ticket))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flows_are_picked_by_weight() {
        let cumulative = [82, 89, 94];
        let mut counts = [0u32; 3];
        for _ in 0..10_000 {
            counts[pick_weighted(&cumulative).unwrap()] += 1;
        }
        // 82 / 7 / 5 of 94: loose bounds, the test is about the mapping, not the generator.
        assert!(
            counts[0] > 8_000 && counts[1] > 450 && counts[2] > 300,
            "{counts:?}"
        );
        assert_eq!(pick_weighted(&[]), None);
        assert_eq!(pick_weighted(&[0]), None);
    }
}
