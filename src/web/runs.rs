//! The page's run controller: starts runs on the engine, relays the engine's one-per-second
//! updates to every open page as JSON, and keeps the last result for downloads. The page and
//! the CLI's `--autostart` both go through it, so they share every check.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};

use super::form::{StartRequest, UsersChange};
use crate::cluster::MasterControl;
use crate::engine::{self, Engine, EngineControl, EngineOptions, LiveUpdate, Load, Plan, RunState};
use crate::scenario::Scenario;
use crate::stats::now_unix_ms as now_ms;
use crate::stats::{Aggregate, EntryStats, HistoryPoint, RunMeta, RunResult};

/// At most this many history points go to a page that connects; older ones are thinned.
const MAX_FULL_HISTORY: usize = 1800;

/// How often a cluster's workers are looked at for the page's workers panel.
const WORKERS_EVERY: Duration = Duration::from_millis(500);

/// A refusal of the control API: the status to answer and a sentence for the page.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Refusal {
    pub(crate) status: u16,
    pub(crate) message: String,
}

impl Refusal {
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            message: message.into(),
        }
    }

    fn conflict(message: impl Into<String>) -> Self {
        Self {
            status: 409,
            message: message.into(),
        }
    }
}

/// One message for the pages: an SSE event name and its JSON data.
#[derive(Debug, Clone)]
pub(crate) struct PageEvent {
    pub(crate) name: &'static str,
    pub(crate) data: String,
}

#[derive(Debug, Default)]
struct Inner {
    control: Option<EngineControl>,
    /// The result of the last finished run.
    result: Option<RunResult>,
    meta: Option<RunMeta>,
    host: Option<String>,
    target_users: Option<u64>,
    spawn_rate: Option<f64>,
    arrival_rate: Option<f64>,
    run_time: Option<Duration>,
    runs: u64,
}

/// How a run is started: on this machine's engine, or on a cluster master's workers. The page,
/// the API and the downloads see the same `EngineHandle` either way.
#[derive(Debug, Clone)]
enum Starter {
    Local,
    Cluster(MasterControl),
}

/// The web page's view of runs: at most one at a time, any number one after another.
pub struct Runs {
    scenario: Arc<Scenario>,
    starter: Starter,
    options: EngineOptions,
    inner: Mutex<Inner>,
    events: broadcast::Sender<Arc<PageEvent>>,
    /// Whether the last run passed its thresholds, once its result is in.
    finished: watch::Sender<Option<bool>>,
}

impl std::fmt::Debug for Runs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runs")
            .field("scenario", &self.scenario.source)
            .finish_non_exhaustive()
    }
}

impl Runs {
    /// Runs of `scenario` with `options` (thresholds, stop timeout, TLS).
    pub fn new(scenario: Arc<Scenario>, options: EngineOptions) -> Arc<Self> {
        Self::with_starter(scenario, options, Starter::Local)
    }

    /// Runs of `scenario` on the workers of a master that serves the page
    /// (`cluster::Master::serve`). The pages get a `workers` event whenever a worker joins,
    /// leaves, goes missing or changes its user count (checked twice a second). Call it inside
    /// a tokio runtime.
    pub fn on_cluster(
        scenario: Arc<Scenario>,
        options: EngineOptions,
        master: MasterControl,
    ) -> Arc<Self> {
        let runs = Self::with_starter(scenario, options, Starter::Cluster(master));
        let weak = Arc::downgrade(&runs);
        tokio::spawn(async move {
            let mut last = Value::Null;
            let mut tick = tokio::time::interval(WORKERS_EVERY);
            loop {
                tick.tick().await;
                let Some(runs) = weak.upgrade() else { break };
                let workers = runs.workers_json();
                if workers != last {
                    runs.publish("workers", json!({ "workers": workers }));
                    last = workers;
                }
            }
        });
        runs
    }

    fn with_starter(
        scenario: Arc<Scenario>,
        options: EngineOptions,
        starter: Starter,
    ) -> Arc<Self> {
        let (events, _) = broadcast::channel(64);
        let (finished, _) = watch::channel(None);
        Arc::new(Self {
            scenario,
            starter,
            options,
            inner: Mutex::new(Inner::default()),
            events,
            finished,
        })
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The control of the run going, if one is: started and its result not in yet. (Not the
    /// engine's state alone: an engine that failed never says it stopped, and must not keep
    /// the page from starting another run.)
    fn going(inner: &Inner) -> Option<&EngineControl> {
        inner.control.as_ref().filter(|_| inner.result.is_none())
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<PageEvent>> {
        self.events.subscribe()
    }

    /// Waits until a run has ended and says whether it passed (every threshold held).
    pub async fn wait_finished(&self) -> bool {
        let mut finished = self.finished.subscribe();
        loop {
            if let Some(passed) = *finished.borrow_and_update() {
                return passed;
            }
            if finished.changed().await.is_err() {
                return false;
            }
        }
    }

    /// True while a run is going (spawning, running or stopping).
    pub fn is_running(&self) -> bool {
        Self::going(&self.inner()).is_some()
    }

    /// The last finished run's result, if any.
    pub fn last_result(&self) -> Option<RunResult> {
        self.inner().result.clone()
    }

    /// Starts a run of `plan` at once (`--autostart`, which may give `--stages` too).
    pub fn start_plan(self: &Arc<Self>, plan: Plan) -> Result<(), String> {
        self.start(StartRequest { plan, host: None })
            .map(|_| ())
            .map_err(|refusal| refusal.message)
    }

    /// Starts a run; refused while one is going.
    pub(crate) fn start(self: &Arc<Self>, request: StartRequest) -> Result<Value, Refusal> {
        let StartRequest { plan, host } = request;
        let mut inner = self.inner();
        if Self::going(&inner).is_some() {
            return Err(Refusal::conflict(
                "a run is already going: stop it first, or change its user count with \"Change users\"",
            ));
        }
        let first = plan.stages().first().map(|stage| stage.load);
        let scenario = match &host {
            Some(host) => Arc::new(
                self.scenario
                    .with_host(host)
                    .map_err(Refusal::bad_request)?,
            ),
            None => self.scenario.clone(),
        };
        let handle = match &self.starter {
            Starter::Local => Engine::start(scenario.clone(), plan.clone(), self.options.clone())
                .map_err(|err| Refusal::bad_request(err.to_string()))?,
            Starter::Cluster(master) => {
                refuse_on_cluster(&plan, &self.scenario, &scenario)?;
                let meta = engine::run_meta(
                    &scenario,
                    Some(&plan),
                    self.options.thresholds.clone(),
                    now_ms(),
                );
                master
                    .start_run(scenario.clone(), plan.clone(), meta)
                    .map_err(Refusal::conflict)?
            }
        };
        let control = handle.control();
        inner.control = Some(control.clone());
        inner.result = None;
        inner.host = scenario
            .host
            .as_ref()
            .map(|h| h.as_str().trim_end_matches('/').to_owned());
        inner.run_time = plan.duration();
        inner.runs += 1;
        (inner.target_users, inner.spawn_rate, inner.arrival_rate) = match first {
            Some(Load::Users { users, spawn_rate }) => (Some(users), Some(spawn_rate), None),
            Some(Load::Arrivals {
                per_second,
                max_users,
            }) => (Some(max_users), None, Some(per_second)),
            None => (None, None, None),
        };
        inner.meta = Some(engine::run_meta(
            &scenario,
            Some(&plan),
            self.options.thresholds.clone(),
            now_ms(),
        ));
        self.finished.send_replace(None);
        drop(inner);

        let runs = self.clone();
        let mut updates = control.subscribe();
        let engine = control.clone();
        tokio::spawn(async move {
            let mut sent = SentRows::default();
            loop {
                match updates.recv().await {
                    Ok(update) => {
                        runs.publish("update", runs.update_json(&engine, &update, &mut sent))
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        let runs = self.clone();
        tokio::spawn(async move {
            let mut result = handle.wait().await;
            if control.state() != RunState::Stopped {
                // The run's task ended without stopping: it failed inside.
                result.errors.push(crate::stats::ErrorCount {
                    message: "the run ended on an internal error (the terminal shows it); \
                              what it measured is lost, and another run can be started"
                        .to_owned(),
                    count: 1,
                });
            }
            result.evaluate_thresholds();
            let passed = result.passed();
            runs.inner().result = Some(result);
            runs.publish("full", runs.full_json());
            runs.finished.send_replace(Some(passed));
        });
        Ok(self.state_json())
    }

    pub(crate) fn set_users(&self, change: &UsersChange) -> Result<Value, Refusal> {
        let mut inner = self.inner();
        let Some(control) = Self::going(&inner)
            .filter(|c| !matches!(c.state(), RunState::Stopped | RunState::Stopping))
            .cloned()
        else {
            return Err(Refusal::conflict("no run is going: start one first"));
        };
        if inner.arrival_rate.is_some() {
            return Err(Refusal::bad_request(
                "this run has a fixed arrival rate; the user count follows it",
            ));
        }
        let spawn_rate = change.spawn_rate.or(inner.spawn_rate).unwrap_or(1.0);
        control
            .set_users(change.users, spawn_rate)
            .map_err(|err| Refusal::bad_request(err.to_string()))?;
        inner.target_users = Some(change.users);
        inner.spawn_rate = Some(spawn_rate);
        drop(inner);
        let state = self.state_json();
        self.publish("update", json!({ "info": state }));
        Ok(state)
    }

    pub(crate) fn stop(&self) -> Result<Value, Refusal> {
        let control = Self::going(&self.inner()).cloned();
        match control {
            Some(control) => {
                control.stop();
                Ok(json!({ "state": "stopping" }))
            }
            None => Err(Refusal::conflict("no run is going")),
        }
    }

    /// Stops at once (a second Ctrl-C).
    pub fn stop_now(&self) {
        if let Some(control) = self.inner().control.clone() {
            control.stop_now();
        }
    }

    /// Stops gracefully, if a run is going (Ctrl-C).
    pub fn stop_gracefully(&self) {
        let _ = self.stop();
    }

    pub(crate) fn reset(&self) -> Value {
        if let Some(control) = self.inner().control.clone() {
            control.reset_stats();
        }
        json!({ "status": "reset" })
    }

    fn publish(&self, name: &'static str, data: Value) {
        let _ = self.events.send(Arc::new(PageEvent {
            name,
            data: data.to_string(),
        }));
    }

    /// `GET /api/state`.
    pub(crate) fn state_json(&self) -> Value {
        let inner = self.inner();
        let (state, users, flows) = match &inner.control {
            Some(control) => {
                let latest = control.latest();
                let state = control.state();
                (
                    state_name(state),
                    control.users(),
                    serde_json::to_value(&latest.flows).unwrap_or_default(),
                )
            }
            None => (
                "ready",
                0,
                Value::Array(
                    self.scenario
                        .flows
                        .iter()
                        .map(|f| json!({ "name": f.name, "weight": f.weight, "iterations": 0 }))
                        .collect(),
                ),
            ),
        };
        // "stopped" once the result is in: the engine (or a master) says it stopped a moment
        // before its result reaches the page, and the downloads are of the result.
        let state = match (&inner.result, state) {
            (Some(_), _) => "stopped",
            (None, "stopped") => "stopping",
            (None, state) => state,
        };
        let cut_iterations = match (&inner.result, &inner.control) {
            (Some(result), _) => result.cut_iterations,
            (None, Some(control)) => control.latest().cut_iterations,
            (None, None) => 0,
        };
        json!({
            "state": state,
            "users": users,
            "target_users": inner.target_users,
            "spawn_rate": inner.spawn_rate,
            "arrival_rate": inner.arrival_rate,
            "run_time": inner.run_time.map(|d| humantime::format_duration(d).to_string()),
            "host": inner.host.clone().or_else(|| self.scenario.host.as_ref().map(|h| h.as_str().trim_end_matches('/').to_owned())),
            "scenario": self.scenario.source.display().to_string(),
            "flows": flows,
            "cut_iterations": cut_iterations,
            "started_at": inner.meta.as_ref().map(|m| m.start_unix_ms),
            "exit_code": inner.result.as_ref().map(RunResult::exit_code),
            "runs": inner.runs,
            "workers": self.workers_json(),
        })
    }

    /// A cluster's workers (name, address, state, users, requests); `null` on one machine.
    fn workers_json(&self) -> Value {
        let Starter::Cluster(master) = &self.starter else {
            return Value::Null;
        };
        Value::Array(
            master
                .status()
                .workers
                .iter()
                .map(|w| {
                    json!({
                        "name": w.name,
                        "address": w.peer.to_string(),
                        "state": w.state,
                        "users": w.users,
                        "requests": w.requests,
                    })
                })
                .collect(),
        )
    }

    /// What the page needs each second: the state, changed rows, the newest point.
    fn update_json(
        &self,
        control: &EngineControl,
        update: &LiveUpdate,
        sent: &mut SentRows,
    ) -> Value {
        let (rows, aggregated, failures, exceptions) = control.inspect(|aggregate| {
            let rows: Vec<Value> = update
                .rows
                .iter()
                .filter(|row| {
                    sent.changed(
                        &row.method,
                        &row.name,
                        row.requests,
                        row.failures,
                        row.current_rps,
                    )
                })
                .map(|row| {
                    page_row(
                        aggregate,
                        &row.method,
                        &row.name,
                        row.current_rps,
                        row.current_failures_per_sec,
                    )
                })
                .collect();
            let total = &update.total;
            let aggregated = page_row(
                aggregate,
                "",
                "",
                total.current_rps,
                total.current_failures_per_sec,
            );
            let failures = sent
                .failures_changed(aggregate)
                .then(|| failures_json(aggregate));
            let exceptions = sent
                .exceptions_changed(aggregate)
                .then(|| exceptions_json(aggregate));
            (rows, aggregated, failures, exceptions)
        });
        let mut body = json!({
            "info": self.state_json(),
            "rows": rows,
            "aggregated": aggregated,
            "point": update.point.as_ref().map(point_json),
            // The seconds made (or amended by a late report) since the last update.
            "points": update.points.iter().map(point_json).collect::<Vec<_>>(),
        });
        if let Some(failures) = failures {
            body["failures"] = failures;
        }
        if let Some(exceptions) = exceptions {
            body["exceptions"] = exceptions;
        }
        body
    }

    /// Everything, for a page that just connected and after a run ends.
    pub(crate) fn full_json(&self) -> Value {
        let info = self.state_json();
        let (control, result) = {
            let inner = self.inner();
            (inner.control.clone(), inner.result.clone())
        };
        let mut full = match (result, control) {
            (Some(result), _) => result_json(&result),
            (None, Some(control)) => control.inspect(live_json),
            (None, None) => live_json(&Aggregate::new()),
        };
        full["info"] = info;
        full
    }

    /// The current run's result so far, or the last run's (downloads).
    pub(crate) fn result_so_far(&self) -> RunResult {
        let inner = self.inner();
        if let Some(result) = &inner.result {
            return result.clone();
        }
        let meta = inner.meta.clone().unwrap_or_else(|| {
            engine::run_meta(
                &self.scenario,
                None,
                self.options.thresholds.clone(),
                now_ms(),
            )
        });
        let mut result = match &inner.control {
            Some(control) => control.inspect(|aggregate| aggregate.clone().finish(meta)),
            None => RunResult::empty(meta),
        };
        result.evaluate_thresholds();
        result
    }
}

/// Everything a page shows of a run in progress, from its aggregate: every row, the
/// failures, the exceptions and the history (thinned).
pub(super) fn live_json(aggregate: &Aggregate) -> Value {
    let rows: Vec<Value> = aggregate
        .rows()
        .iter()
        .map(|row| {
            page_row(
                aggregate,
                &row.method,
                &row.name,
                row.current_rps,
                row.current_failures_per_sec,
            )
        })
        .collect();
    let total = aggregate.total_row();
    json!({
        "rows": rows,
        "aggregated": page_row(aggregate, "", "", total.current_rps, total.current_failures_per_sec),
        "failures": failures_json(aggregate),
        "exceptions": exceptions_json(aggregate),
        "history": thin(&aggregate.history()).iter().map(point_json).collect::<Vec<_>>(),
    })
}

/// What was last sent per row, so each update carries only rows that changed.
#[derive(Debug, Default)]
struct SentRows {
    rows: HashMap<(String, String), (u64, u64, u64)>,
    failures: u64,
    exceptions: u64,
}

impl SentRows {
    fn changed(
        &mut self,
        method: &str,
        name: &str,
        requests: u64,
        failures: u64,
        rps: f64,
    ) -> bool {
        let now = (requests, failures, (rps * 100.0) as u64);
        let key = (method.to_owned(), name.to_owned());
        self.rows.insert(key, now) != Some(now)
    }

    fn failures_changed(&mut self, aggregate: &Aggregate) -> bool {
        let now = aggregate.total().failures;
        std::mem::replace(&mut self.failures, now) != now
    }

    fn exceptions_changed(&mut self, aggregate: &Aggregate) -> bool {
        let now: u64 = aggregate.errors().iter().map(|e| e.count).sum();
        std::mem::replace(&mut self.exceptions, now) != now
    }
}

fn state_name(state: RunState) -> &'static str {
    match state {
        RunState::Spawning => "spawning",
        RunState::Running => "running",
        RunState::Stopping => "stopping",
        RunState::Stopped => "stopped",
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn entry_row(entry: &EntryStats, current_rps: f64, current_fps: f64) -> Value {
    let empty = entry.requests == 0;
    json!({
        "method": entry.method,
        "name": if entry.name.is_empty() { "Aggregated" } else { entry.name.as_str() },
        "requests": entry.requests,
        "failures": entry.failures,
        "median_ms": (!empty).then(|| ms(entry.percentile_us(50.0))),
        "p90_ms": (!empty).then(|| ms(entry.percentile_us(90.0))),
        "p95_ms": (!empty).then(|| ms(entry.percentile_us(95.0))),
        "p99_ms": (!empty).then(|| ms(entry.percentile_us(99.0))),
        "avg_ms": (!empty).then(|| entry.avg_ms()),
        "min_ms": (!empty).then(|| entry.min_ms()),
        "max_ms": (!empty).then(|| entry.max_ms()),
        "avg_size": (!empty).then(|| entry.avg_content_bytes()),
        "current_rps": current_rps,
        "current_fps": current_fps,
    })
}

fn page_row(
    aggregate: &Aggregate,
    method: &str,
    name: &str,
    current_rps: f64,
    current_fps: f64,
) -> Value {
    if method.is_empty() && name.is_empty() {
        return entry_row(aggregate.total(), current_rps, current_fps);
    }
    match aggregate.entry(method, name) {
        Some(entry) => entry_row(entry, current_rps, current_fps),
        None => entry_row(&EntryStats::new(method, name), current_rps, current_fps),
    }
}

fn failures_of<'a>(entries: impl Iterator<Item = &'a EntryStats>) -> Value {
    let mut list = Vec::new();
    for entry in entries {
        for failure in &entry.failures_by_kind {
            list.push(json!({
                "method": entry.method,
                "name": entry.name,
                "kind": failure.kind.to_string(),
                "occurrences": failure.count,
                "message": failure.message,
            }));
        }
    }
    Value::Array(list)
}

fn failures_json(aggregate: &Aggregate) -> Value {
    let rows = aggregate.rows();
    failures_of(
        rows.iter()
            .filter_map(|row| aggregate.entry(&row.method, &row.name)),
    )
}

fn exceptions_json(aggregate: &Aggregate) -> Value {
    Value::Array(
        aggregate
            .errors()
            .iter()
            .map(|e| json!({ "count": e.count, "message": e.message }))
            .collect(),
    )
}

fn point_json(point: &HistoryPoint) -> Value {
    json!({
        "t": point.unix_seconds,
        "users": point.users,
        "rps": point.rps,
        "fps": point.failures_per_sec,
        "p50": ms(point.p50_us()),
        "p95": ms(point.p95_us()),
    })
}

fn thin(points: &[HistoryPoint]) -> Vec<HistoryPoint> {
    if points.len() <= MAX_FULL_HISTORY {
        return points.to_vec();
    }
    let step = points.len().div_ceil(MAX_FULL_HISTORY);
    points.iter().step_by(step).cloned().collect()
}

fn result_json(result: &RunResult) -> Value {
    let duration = result.duration_secs().max(1e-9);
    let rows: Vec<Value> = result
        .entries
        .iter()
        .map(|e| {
            entry_row(
                e,
                e.requests as f64 / duration,
                e.failures as f64 / duration,
            )
        })
        .collect();
    json!({
        "rows": rows,
        "aggregated": entry_row(&result.total, result.total.requests as f64 / duration, result.total.failures as f64 / duration),
        "failures": failures_of(result.entries.iter()),
        "exceptions": Value::Array(result.errors.iter().map(|e| json!({ "count": e.count, "message": e.message })).collect()),
        "history": thin(&result.history).iter().map(point_json).collect::<Vec<_>>(),
    })
}

/// What a cluster's run cannot do that a local one can: an arrival rate, and another host
/// (the workers were sent the scenario when they joined).
fn refuse_on_cluster(plan: &Plan, sent: &Scenario, asked: &Scenario) -> Result<(), Refusal> {
    let shown = |s: &Scenario| {
        s.host
            .as_ref()
            .map(|h| h.as_str().trim_end_matches('/').to_owned())
    };
    if plan.spawn_rate().is_none() {
        return Err(Refusal::bad_request(
            "a fixed arrival rate is not supported on a cluster yet: give users and a \
             spawn rate",
        ));
    }
    if shown(asked) != shown(sent) {
        return Err(Refusal::bad_request(
            "the workers were sent the scenario with its host: give another host to \
             the master with --host (and restart it), not on the page",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_refuses_another_host_and_an_arrival_rate_in_plain_words() {
        let sent = Scenario::from_urls(&["http://app.test/".parse().unwrap()], None);
        let users = Plan::users(1, Some(1.0), None).unwrap();
        assert_eq!(refuse_on_cluster(&users, &sent, &sent), Ok(()));
        let elsewhere = sent.with_host("http://other.test/").unwrap();
        assert_eq!(
            refuse_on_cluster(&users, &sent, &elsewhere),
            Err(Refusal::bad_request(
                "the workers were sent the scenario with its host: give another host to the \
                 master with --host (and restart it), not on the page"
            ))
        );
        let arrivals = Plan::arrivals("5/s", 10, None).unwrap();
        assert_eq!(
            refuse_on_cluster(&arrivals, &sent, &sent)
                .unwrap_err()
                .message,
            "a fixed arrival rate is not supported on a cluster yet: give users and a spawn rate"
        );
    }
}
