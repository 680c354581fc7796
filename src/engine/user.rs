//! One virtual user: its variables, cookie jar and connections; `on_start`, then flows picked
//! at random by weight (one after the other in the closed model, one per arrival in the open
//! model), then `on_stop`. A stop lets the user finish what it is doing and then run `on_stop`
//! (`engine::stop` says how long each may take). A user's context is here too: what the
//! users of one worker share ([`WorkerShared`]), the open model's pool of idle users, and how
//! a user records an exchange into its worker's tally.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::fmt::Display;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use cookie_store::CookieStore;
use http::Method;
use rand::RngExt as _;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::SetupMode;
use super::auth::Auth;
use super::http::Client;
use super::http::Session;
use super::socket::Sockets;
use super::step::{Outcome, run_steps};
use super::stop::{Phase, StopSignal};
use super::target::Target;
use super::trace::{self, Stage};
use crate::scenario::{Scenario, Step, StepKind, Vars};
use crate::stats::{Failure, FailureKind, Phases, RequestSample, Tally};

/// A user whose iteration ended on an error waits this long before the next, so a broken
/// scenario cannot spin a worker.
const ERROR_BACKOFF: Duration = Duration::from_secs(1);
/// After a connect failure a user waits this long before its next request, doubling with
/// each failure in a row up to [`ERROR_BACKOFF`]: a server that is down, or a machine out of
/// sockets, must not turn users into a hot loop of failed connects.
const CONNECT_BACKOFF: Duration = Duration::from_millis(50);

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
    /// Open model: how late the current iteration started; added to every latency.
    pub(super) lag: Duration,
    pub(super) section: Section,
    /// Step indexes below the section, for error messages.
    pub(super) path: Vec<usize>,
    /// The flow iteration under way (from 0), `None` outside flows: for observations.
    pub(super) iteration: Option<u64>,
    /// Where the trailing thinks of the current flow begin (steps after the last one that is
    /// not a think): pacing between iterations, skipped once the user is asked to stop.
    pub(super) pacing_from: usize,
    /// Connect failures in a row, for the backoff.
    pub(super) connect_failures: u32,
    /// The last HTML page this user got: what its next requests name as their `Referer`,
    /// as a browser's do (Trac's logout goes back to it, Django checks it over HTTPS).
    pub(super) page: Option<url::Url>,
    /// HTTP authentication learnt from the server's challenges (`auth:`).
    pub(super) auth: Auth,
    /// The open WebSocket and event stream (`ws:`, `sse:`), once a socket step ran.
    pub(super) sockets: Option<Box<Sockets>>,
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
            lag: Duration::ZERO,
            section: Section::OnStart,
            path: Vec::new(),
            iteration: None,
            pacing_from: usize::MAX,
            connect_failures: 0,
            page: None,
            auth: Auth::default(),
            sockets: None,
        }
    }

    /// A copy for one iteration of a parallel `repeat`: the same variables and cookies, its
    /// own HTTP/1.1 connections, the user's HTTP/2 ones (more streams on them).
    pub(super) fn fork(&self) -> User {
        User {
            index: self.index,
            worker: self.worker.clone(),
            session: self.session.fork(),
            cookies: self.cookies.clone(),
            vars: self.vars.clone(),
            stop: self.stop.clone(),
            lag: self.lag,
            section: self.section,
            path: self.path.clone(),
            iteration: self.iteration,
            pacing_from: self.pacing_from,
            connect_failures: self.connect_failures,
            page: self.page.clone(),
            auth: self.auth.fork(),
            // Sockets stay with the user: an iteration of a parallel `repeat` opens its own.
            sockets: None,
        }
    }

    /// `on_stop` is clean-up; everything else is work (see `engine::stop`).
    pub(super) fn phase(&self) -> Phase {
        match self.section {
            Section::OnStop => Phase::CleanUp,
            _ => Phase::Work,
        }
    }

    /// Whether the user leaves its step list before the next step: the stop's deadline for
    /// what it does has passed, or (a setup run) it was asked to stop at all.
    pub(super) fn leaving(&self) -> Option<Outcome> {
        if !self.stop.is_stopping() {
            return None;
        }
        if self.stop.is_cut(self.phase()) {
            return Some(Outcome::Cut);
        }
        let setup_stop = self.worker.setup.stop_between_steps && self.phase() == Phase::Work;
        setup_stop.then_some(Outcome::Stopped)
    }

    /// Whether step `index` of a list `depth` levels down is pacing after the iteration's last
    /// request (a trailing think of the flow), which a stop skips.
    pub(super) fn is_pacing(&self, depth: usize, index: usize) -> bool {
        matches!(self.section, Section::Flow(_)) && depth == 0 && index >= self.pacing_from
    }

    /// A think: waits, unless the stop cuts it (or, for pacing after the iteration's last
    /// request and in a setup run, as soon as a stop is asked for).
    pub(super) async fn pause(&self, pause: Duration) -> Outcome {
        let pacing = self.path.len() == 1 && self.is_pacing(0, self.path[0]);
        let ends_on_stop = pacing || self.worker.setup.stop_between_steps;
        tokio::select! {
            _ = tokio::time::sleep(pause) => Outcome::Continue,
            _ = self.stop.stopping(), if ends_on_stop => {
                if pacing { Outcome::Continue } else { Outcome::Stopped }
            }
            _ = self.stop.cut(self.phase()) => Outcome::Cut,
        }
    }

    /// Waits between attempts (an error, a failed connect); a stop ends the wait.
    pub(super) async fn back_off(&self, pause: Duration) -> Outcome {
        tokio::select! {
            _ = tokio::time::sleep(pause) => Outcome::Continue,
            _ = self.stop.stopping() => Outcome::Stopped,
        }
    }

    /// After a connect failure: waits longer with each one in a row.
    pub(super) async fn connect_failed(&mut self) -> Outcome {
        let doublings = self.connect_failures.min(8);
        self.connect_failures = self.connect_failures.saturating_add(1);
        let pause = (CONNECT_BACKOFF * 2u32.pow(doublings)).min(ERROR_BACKOFF);
        self.back_off(pause).await
    }

    /// Counts an error that is not a request (Locust's exceptions) and abandons the sequence.
    pub(super) fn error(&self, field: &str, err: &dyn Display) -> Outcome {
        let message = format!("{}: {field}: {err}", self.here());
        self.worker.tally.borrow_mut().record_error(&message);
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
        let steps = &scenario.flows[flow].steps;
        self.pacing_from = pacing_from(steps);
        let outcome = run_steps(self, steps).await;
        self.pacing_from = usize::MAX;
        if outcome == Outcome::Abandon && self.worker.setup.rounds.is_none() {
            self.back_off(ERROR_BACKOFF).await;
        }
        // A flow of thinks of zero and false conditions never waits; let others run (once the
        // task's budget is spent: yielding after every iteration costs a reschedule each).
        tokio::task::consume_budget().await;
        outcome
    }

    /// Counts a sequence the stop cut short.
    fn count_cut(&self, outcome: Outcome) {
        if outcome == Outcome::Cut {
            self.worker.tally.borrow_mut().record_cut_iteration();
        }
    }
}

/// Where the trailing thinks of a flow's steps begin (the length when the last step is not a
/// think).
fn pacing_from(steps: &[Step]) -> usize {
    steps
        .iter()
        .rposition(|step| !matches!(step.kind, StepKind::Think(_)))
        .map_or(0, |last| last + 1)
}

/// The life of one user. Returns when it stopped or, for a scenario without flows, when it
/// ran `on_start` and `on_stop` once. A stop lets it finish `on_start` or the iteration under
/// way, then it runs `on_stop` (see `engine::stop`).
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
    let outcome = run_steps(&mut user, &scenario.on_start).await;
    user.count_cut(outcome);
    let mut ended = matches!(outcome, Outcome::Stopped | Outcome::Cut);
    let mut number = 0;
    match iterations {
        Iterations::Closed => {
            // `--check`: every flow in order, its rounds; `--iterations`: that many.
            let last = user
                .worker
                .setup
                .rounds
                .map(|rounds| rounds * scenario.flows.len() as u64)
                .or(user.worker.iterations);
            while !ended
                && !user.stop.is_stopping()
                && !scenario.flows.is_empty()
                && last.is_none_or(|last| number < last)
            {
                let outcome = user.iteration(number).await;
                user.count_cut(outcome);
                ended = matches!(outcome, Outcome::Stopped | Outcome::Cut);
                number += 1;
            }
        }
        Iterations::Open { pool, first } => {
            let mut intended = Some(first);
            while let Some(start) = intended {
                if ended || user.stop.is_stopping() {
                    break;
                }
                user.lag = Instant::now().saturating_duration_since(start);
                let outcome = user.iteration(number).await;
                user.count_cut(outcome);
                ended = matches!(outcome, Outcome::Stopped | Outcome::Cut);
                user.lag = Duration::ZERO;
                number += 1;
                intended = OpenPool::next_arrival(&pool, user.index, &user.stop).await;
            }
        }
    }
    if user.stop.is_now() {
        return;
    }
    user.section = Section::OnStop;
    user.iteration = None;
    user.path.clear();
    let outcome = run_steps(&mut user, &scenario.on_stop).await;
    user.count_cut(outcome);
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

/// What a worker's users share: read-mostly, and never across threads.
pub(super) struct WorkerShared {
    pub(super) scenario: Arc<Scenario>,
    pub(super) client: Arc<Client>,
    pub(super) tally: RefCell<Tally>,
    pub(super) flow_iterations: RefCell<Vec<u64>>,
    pub(super) setup: SetupMode,
    /// `--iterations`: how many each user runs before it ends.
    pub(super) iterations: Option<u64>,
    /// Resolved targets of requests whose URL has no template, by the request's address.
    pub(super) targets: RefCell<HashMap<usize, Rc<Target>, BuildHasherDefault<AddressHasher>>>,
    pub(super) cumulative_weights: Vec<u64>,
}

/// Hashes a request's address (the key of `WorkerShared::targets`, looked up for every
/// request): it is unique already, so a multiply spreads it, where SipHash would cost more
/// than the rest of the lookup.
#[derive(Default)]
pub(super) struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(self.0.rotate_left(8) ^ u64::from(byte));
        }
    }

    fn write_u64(&mut self, n: u64) {
        let mixed = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = mixed ^ (mixed >> 29);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

impl WorkerShared {
    pub(super) fn pick_flow(&self) -> Option<usize> {
        pick_weighted(&self.cumulative_weights)
    }
}

/// The open model's users on one worker: who is idle, which arrivals wait for a user.
#[derive(Default)]
pub(super) struct OpenPool {
    pub(super) max_users: u64,
    pub(super) first_index: u64,
    pub(super) stride: u64,
    pub(super) spawned: u64,
    idle: Vec<oneshot::Sender<Instant>>,
    /// Arrivals no user was free for yet, oldest first; at most `max_users` wait.
    waiting: VecDeque<Instant>,
    closed: bool,
}

impl OpenPool {
    /// Hands an arrival to an idle user, or says which new user to start for it, or lets it
    /// wait for a busy user, or drops it when that backlog is full.
    pub(super) fn arrive(&mut self, intended: Instant, shared: &WorkerShared) -> Option<u64> {
        if self.closed {
            return None;
        }
        let mut intended = intended;
        while let Some(user) = self.idle.pop() {
            match user.send(intended) {
                Ok(()) => return None,
                Err(returned) => intended = returned,
            }
        }
        if self.spawned < self.max_users {
            let index = self.first_index + self.spawned * self.stride;
            self.spawned += 1;
            return Some(index);
        }
        if (self.waiting.len() as u64) < self.max_users {
            self.waiting.push_back(intended);
        } else {
            shared.tally.borrow_mut().record_dropped_iteration();
        }
        None
    }

    /// The next iteration for a user that finished one; `None` when the run stops.
    pub(super) async fn next_arrival(
        pool: &RefCell<OpenPool>,
        _index: u64,
        stop: &StopSignal,
    ) -> Option<Instant> {
        let receiver = {
            let mut pool = pool.borrow_mut();
            if pool.closed {
                return None;
            }
            if let Some(intended) = pool.waiting.pop_front() {
                return Some(intended);
            }
            let (sender, receiver) = oneshot::channel();
            pool.idle.push(sender);
            receiver
        };
        tokio::select! {
            intended = receiver => intended.ok(),
            _ = stop.stopping() => None,
        }
    }

    pub(super) fn close(&mut self) {
        self.closed = true;
        self.idle.clear();
        self.waiting.clear();
    }
}

impl User {
    /// Records one exchange. In the open model the latency includes how late the iteration
    /// started, so a stalled server shows in the percentiles (no coordinated omission).
    /// The trace this user's requests are part of now (a trace per iteration, one for
    /// `on_start` and one for `on_stop`), when the scenario asks for trace headers.
    pub(super) fn trace(&self) -> Option<u128> {
        if !self.worker.scenario.defaults.trace_headers {
            return None;
        }
        let stage = match self.section {
            Section::OnStart => Stage::OnStart,
            Section::Flow(_) => Stage::Iteration(self.iteration.unwrap_or(0)),
            Section::OnStop => Stage::OnStop,
        };
        Some(trace::trace_id(self.index, stage))
    }

    /// The name of the part of the scenario the user is in: its flow, `on_start` or
    /// `on_stop`.
    pub(super) fn section_name(&self) -> &str {
        match self.section {
            Section::OnStart => "on_start",
            Section::Flow(index) => &self.worker.scenario.flows[index].name,
            Section::OnStop => "on_stop",
        }
    }

    /// The account the user is logged in as: its `user` row's `username` (or `email`,
    /// `login`), when it has one.
    pub(super) fn account(&self) -> Option<String> {
        let row = self.vars.lookup("user")?;
        ["username", "email", "login"].iter().find_map(|column| {
            row.get_attr(column)
                .ok()
                .and_then(|value| value.as_str().map(str::to_owned))
        })
    }

    /// `phases`: where the time of an exchange that got a whole answer went.
    pub(super) fn record(
        &self,
        method: &Method,
        name: &str,
        (latency, phases): (Duration, Option<&Phases>),
        response_bytes: u64,
        failure: Option<(FailureKind, &str)>,
    ) {
        let traced;
        let failure = match (failure, self.trace()) {
            (Some((kind, message)), Some(trace)) => {
                traced = trace::with_trace(message, trace);
                Some((kind, traced.as_str()))
            }
            (failure, _) => failure,
        };
        let sample = RequestSample {
            method: method.as_str(),
            name,
            latency: latency + self.lag,
            response_bytes,
            failure: failure.map(|(kind, message)| Failure { kind, message }),
        };
        let mut tally = self.worker.tally.borrow_mut();
        match phases {
            Some(phases) => tally.record_phased(&sample, phases),
            None => tally.record(&sample),
        }
    }

    /// Records an attempt that has no latency: a connect failure (nothing was sent) or a
    /// request cut at the stop.
    pub(super) fn record_untimed(&self, method: &Method, name: &str, failure: (FailureKind, &str)) {
        self.record_untimed_named(method.as_str(), name, failure);
    }

    /// [`User::record`] under a method that is not HTTP's (`WS`, `SEND`, `RECV`, ...).
    pub(super) fn record_named(
        &self,
        method: &str,
        name: &str,
        latency: Duration,
        response_bytes: u64,
        failure: Option<(FailureKind, &str)>,
    ) {
        let sample = RequestSample {
            method,
            name,
            latency: latency + self.lag,
            response_bytes,
            failure: failure.map(|(kind, message)| Failure { kind, message }),
        };
        self.worker.tally.borrow_mut().record(&sample);
        if let Some((_, message)) = failure {
            super::observe::note_failure(self, method, name, message);
        }
    }

    /// [`User::record_untimed`] under a method that is not HTTP's.
    pub(super) fn record_untimed_named(
        &self,
        method: &str,
        name: &str,
        failure: (FailureKind, &str),
    ) {
        let (kind, message) = failure;
        let traced = self.trace().map(|trace| trace::with_trace(message, trace));
        let message = traced.as_deref().unwrap_or(message);
        let sample = RequestSample {
            method,
            name,
            latency: Duration::ZERO,
            response_bytes: 0,
            failure: Some(Failure { kind, message }),
        };
        self.worker.tally.borrow_mut().record_untimed(&sample);
        if kind != FailureKind::CutAtStop {
            super::observe::note_failure(self, method, name, message);
        }
    }
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
