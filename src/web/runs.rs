//! The page's run controller: starts runs on the engine, relays the engine's one-per-second
//! updates to every open page as JSON, and keeps the last result for downloads. The page and
//! the CLI's `--autostart` both go through it, so they share every check.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};

use super::form::{CapacityAsk, StartRequest, UsersChange};
use super::live::LiveView;
use super::views::{capacity_json, live_json, phases_json, result_json, state_name};
use crate::capacity::SearchSettings;
use crate::cluster::MasterControl;
use crate::engine::{self, Engine, EngineControl, EngineOptions, Load, Plan, RunState};
use crate::scenario::Scenario;
use crate::stats::capacity::Capacity;
use crate::stats::now_unix_ms as now_ms;
use crate::stats::report::prometheus::Exposition;
use crate::stats::{Aggregate, RunMeta, RunResult};

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
    /// The capacity search going (or last run), as far as it got.
    capacity: Option<Capacity>,
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
    /// The pages' copy of the run going, brought up to date once per engine update.
    live: Mutex<LiveView>,
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
            live: Mutex::new(LiveView::new(now_ms())),
            events,
            finished,
        })
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn live(&self) -> MutexGuard<'_, LiveView> {
        self.live
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
        self.start(StartRequest {
            plan,
            host: None,
            capacity: None,
        })
        .map(|_| ())
        .map_err(|refusal| refusal.message)
    }

    /// Starts a run; refused while one is going.
    pub(crate) fn start(self: &Arc<Self>, request: StartRequest) -> Result<Value, Refusal> {
        let StartRequest {
            plan,
            host,
            capacity,
        } = request;
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
        // A search judges each step on its conditions and the run's thresholds; the run as a
        // whole (steps that did not hold included) is judged by the search's outcome alone.
        let search = capacity.map(|ask| self.search_settings(ask, &plan));
        let mut options = self.options.clone();
        if search.is_some() {
            options.thresholds.clear();
        }
        // Second 0 of the run: the engine's seconds count from about now (within its start).
        let epoch = tokio::time::Instant::now();
        let handle = match &self.starter {
            Starter::Local => Engine::start(scenario.clone(), plan.clone(), options.clone())
                .map_err(|err| Refusal::bad_request(err.to_string()))?,
            Starter::Cluster(master) => {
                refuse_on_cluster(&plan, &self.scenario, &scenario)?;
                let meta =
                    engine::run_meta(&scenario, Some(&plan), options.thresholds.clone(), now_ms());
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
        let meta = engine::run_meta(&scenario, Some(&plan), options.thresholds.clone(), now_ms());
        *self.live() = LiveView::new(meta.start_unix_ms);
        inner.meta = Some(meta);
        inner.capacity = search.as_ref().map(|settings| Capacity {
            conditions: settings
                .conditions
                .iter()
                .map(|c| c.expression().to_owned())
                .collect(),
            ..Capacity::default()
        });
        self.finished.send_replace(None);
        drop(inner);

        self.relay_updates(&control);
        tokio::spawn(
            self.clone()
                .finish(handle, search.map(|settings| (settings, epoch))),
        );
        Ok(self.state_json())
    }

    /// Sends every page an update for each of the engine's, rendered from the pages' copy:
    /// one look at the engine per update, however many pages are open.
    fn relay_updates(self: &Arc<Self>, control: &EngineControl) {
        let runs = self.clone();
        let mut updates = control.subscribe();
        let engine = control.clone();
        tokio::spawn(async move {
            loop {
                match updates.recv().await {
                    Ok(update) => {
                        let mut body =
                            engine.inspect(|aggregate| runs.live().advance(aggregate, &update));
                        if let Some(system) = runs.live().absorb_monitors(&engine.monitor_look()) {
                            body["system"] = system;
                        }
                        body["info"] = runs.state_json();
                        runs.publish("update", body);
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
    }

    /// Waits for the run's end (and runs the capacity search on it, if one was asked, from
    /// the run's second 0), keeps its result and tells the pages.
    async fn finish(
        self: Arc<Self>,
        handle: engine::EngineHandle,
        search: Option<(SearchSettings, tokio::time::Instant)>,
    ) {
        let control = handle.control();
        let searching = search.is_some();
        let mut result = match search {
            Some((settings, epoch)) => {
                let watcher = self.clone();
                let watch = move |so_far: &Capacity| {
                    watcher.inner().capacity = Some(so_far.clone());
                    watcher.publish("capacity", json!({ "capacity": capacity_json(so_far) }));
                };
                let say = |line: &str| tracing::info!("{line}");
                let finished = handle.wait();
                crate::capacity::run_watched(control.clone(), finished, epoch, settings, say, watch)
                    .await
            }
            None => handle.wait().await,
        };
        if control.state() != RunState::Stopped {
            // The run's task ended without stopping: it failed inside.
            result.errors.push(crate::stats::ErrorCount {
                message: "the run ended on an internal error (the terminal shows it); \
                          what it measured is lost, and another run can be started"
                    .to_owned(),
                count: 1,
            });
        }
        // A search's result carries its one verdict (the thresholds judged every step).
        if !searching {
            result.evaluate_thresholds();
        }
        let passed = result.passed();
        {
            let mut inner = self.inner();
            inner.capacity = result.capacity.clone();
            inner.result = Some(result);
        }
        self.publish("full", self.full_json());
        self.finished.send_replace(Some(passed));
    }

    /// How a search asked from the page runs: from the plan's arrival rate, with its max
    /// users, each step judged on the asked conditions and the run's thresholds.
    fn search_settings(&self, ask: CapacityAsk, plan: &Plan) -> SearchSettings {
        let (start, max_users) = match plan.stages().first().map(|stage| stage.load) {
            Some(Load::Arrivals {
                per_second,
                max_users,
            }) => (per_second, max_users),
            // The form gives a search an arrival rate (form::capacity_ask).
            _ => (1.0, 1),
        };
        let mut conditions = ask.conditions;
        conditions.extend(self.options.thresholds.iter().cloned());
        SearchSettings {
            start,
            max_users,
            step_time: ask.step_time,
            settle: Duration::from_secs(1),
            run_time: plan.duration(),
            conditions,
        }
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
                        "state": w.state.name(),
                        "users": w.users,
                        "requests": w.requests,
                        // Its own CPU (percent of one core) and resident memory, and
                        // whether its CPU stays above 90 % of its cores.
                        "cpu_percent": w.load.map(|l| (l.cpu_percent * 10.0).round() / 10.0),
                        "memory_bytes": w.load.map(|l| l.memory_bytes),
                        "cores": w.load.map(|l| l.cores),
                        "saturated": w.load.is_some_and(|l| l.saturated),
                    })
                })
                .collect(),
        )
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
            // From the pages' copy: a page that connects costs the engine nothing.
            (None, Some(_)) => {
                let mut full = self.live().full_json();
                full["capacity"] = self.inner().capacity.as_ref().map(capacity_json).into();
                full
            }
            (None, None) => live_json(&Aggregate::new()),
        };
        full["info"] = info;
        full
    }

    /// `GET /api/stats/phases`: one name's time broken down into its phases (a page's row
    /// opened): from the result once it is in, else one look at the engine per request.
    pub(crate) fn phases_json(&self, method: &str, name: &str) -> Result<Value, Refusal> {
        let (control, result) = {
            let inner = self.inner();
            (inner.control.clone(), inner.result.clone())
        };
        let found = match (result, control) {
            (Some(result), _) => result
                .entries
                .iter()
                .find(|e| e.method == method && e.name == name)
                .map(phases_json),
            (None, Some(control)) => {
                control.inspect(|aggregate| aggregate.entry(method, name).map(phases_json))
            }
            (None, None) => None,
        };
        found.ok_or_else(|| Refusal {
            status: 404,
            message: format!("no requests named {method} {name} in this run"),
        })
    }

    /// `GET /metrics`: the current run's counters, latency summaries, users and monitors'
    /// newest values, or the last run's when none goes on (Prometheus text format).
    pub(crate) fn metrics_text(&self) -> String {
        self.with_exposition(|exposition| exposition.render())
    }

    /// The numbers `GET /metrics` and `--otlp` show now: the current run's, or the last
    /// run's when none goes on.
    pub fn with_exposition<R>(&self, f: impl FnOnce(&Exposition<'_>) -> R) -> R {
        let (control, result) = {
            let inner = self.inner();
            (inner.control.clone(), inner.result.clone())
        };
        match (result, control) {
            (Some(result), _) => f(&Exposition::of_result(&result)),
            (None, Some(control)) => control.with_exposition(f),
            (None, None) => f(&Exposition::default()),
        }
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
