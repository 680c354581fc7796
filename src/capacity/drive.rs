//! Runs a capacity search on an engine (this machine's, or a master's workers'): sets each step's rate, lets it settle, takes the
//! step's seconds from the engine's tap (exact HDR merges, by the second they belong to),
//! asks the [`Search`] what comes next, and after a step that did not hold pauses the arrivals
//! until what was queued has drained, so the next step starts from an idle system. Every wait
//! is bounded; the run ends when the search does, at `-t`, or when the run is stopped.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::search::{Next, Search, judge_step};
use crate::cluster::MasterControl;
use crate::engine::{EngineControl, RunState};
use crate::stats::capacity::{Capacity, show_rate};
use crate::stats::{GRACE, RunResult, SecondsTap, Snapshot, Threshold, Verdict};

/// How often the driver looks at the tap and the run's state.
const POLL: Duration = Duration::from_millis(100);
/// A second's measurements are looked for this long after it ended (the workers report at
/// once; the aggregate waits for a late one at most `GRACE`).
const LOOK_AFTER: Duration = Duration::from_millis(600);
/// After a step that did not hold, the arrivals pause at most this long for the queue to
/// drain (the server's and the users' own backlog).
pub const MAX_DRAIN: Duration = Duration::from_secs(20);

/// How the search runs.
#[derive(Debug, Clone)]
pub struct SearchSettings {
    /// The first step's rate (`--arrival-rate`, default 10/s).
    pub start: f64,
    /// The most users busy at once (`--max-users`).
    pub max_users: u64,
    /// How long each step's rate is measured (`--step-time`).
    pub step_time: Duration,
    /// Before a step's measured seconds: the rest of the second under way and this much more.
    pub settle: Duration,
    /// `-t`: the whole search ends by then.
    pub run_time: Option<Duration>,
    /// Every step is judged on these (`--find-capacity`, `--threshold`, the scenario's).
    pub conditions: Vec<Threshold>,
}

/// What the search steers: a run on this machine's engine or on a master's workers.
pub trait Steered {
    /// From now on the run's measurements are also merged into `tap` by second.
    fn tap(&self, tap: Arc<Mutex<SecondsTap>>);
    /// The open model's rate from now on; `None` starts no iteration until the next call.
    fn set_arrival_rate(&self, per_second: Option<f64>, max_users: u64) -> Result<(), String>;
    /// Whether the run is stopping or stopped (by the user, or at its end).
    fn is_stopping(&self) -> bool;
    /// Graceful stop.
    fn stop(&self);
}

impl Steered for EngineControl {
    fn tap(&self, tap: Arc<Mutex<SecondsTap>>) {
        EngineControl::tap(self, tap);
    }
    fn set_arrival_rate(&self, per_second: Option<f64>, max_users: u64) -> Result<(), String> {
        EngineControl::set_arrival_rate(self, per_second, max_users).map_err(|e| e.to_string())
    }
    fn is_stopping(&self) -> bool {
        matches!(self.state(), RunState::Stopping | RunState::Stopped)
    }
    fn stop(&self) {
        EngineControl::stop(self);
    }
}

impl Steered for MasterControl {
    fn tap(&self, tap: Arc<Mutex<SecondsTap>>) {
        MasterControl::tap(self, tap);
    }
    fn set_arrival_rate(&self, per_second: Option<f64>, max_users: u64) -> Result<(), String> {
        MasterControl::set_arrival_rate(self, per_second, max_users)
    }
    fn is_stopping(&self) -> bool {
        matches!(
            self.status().state,
            Some(RunState::Stopping | RunState::Stopped)
        )
    }
    fn stop(&self) {
        MasterControl::stop(self);
    }
}

/// Runs the search on the run `control` steers (an open-model run at `settings.start`,
/// started at `epoch`, its second 0; `finished` is its result) and returns the run's result
/// with the search's outcome in `capacity` and one verdict: passed when some rate held.
/// `say` gets one line per step.
pub async fn run(
    control: impl Steered,
    finished: impl Future<Output = RunResult>,
    epoch: Instant,
    settings: SearchSettings,
    say: impl Fn(&str),
) -> RunResult {
    run_watched(control, finished, epoch, settings, say, |_| {}).await
}

/// [`run`], and `watch` gets the search so far after each step (the page's curve).
pub async fn run_watched(
    control: impl Steered,
    finished: impl Future<Output = RunResult>,
    epoch: Instant,
    settings: SearchSettings,
    say: impl Fn(&str),
    watch: impl Fn(&Capacity),
) -> RunResult {
    let tap = Arc::new(Mutex::new(SecondsTap::default()));
    control.tap(tap.clone());
    let expressions: Vec<String> = settings
        .conditions
        .iter()
        .map(|c| c.expression().to_owned())
        .collect();
    let max_rate = crate::units::MAX_RATE_PER_SECOND;
    let mut search = Search::new(settings.start, max_rate, expressions.clone());
    let mut seen = Seen::new(tap);
    let deadline = settings.run_time.map(|time| epoch + time);
    let step_seconds = settings.step_time.as_secs().max(1);
    let mut first = true;
    loop {
        let rate = search.rate();
        if !first {
            if let Err(err) = control.set_arrival_rate(Some(rate), settings.max_users) {
                search.stop(&format!("could not set {}/s: {err}", show_rate(rate)));
                break;
            }
        }
        first = false;
        let changed = epoch.elapsed() + settings.settle;
        let first_second = changed.as_secs() + u64::from(changed.subsec_nanos() > 0);
        let end = first_second + step_seconds;
        let measured_by = epoch + Duration::from_secs(end) + LOOK_AFTER;
        if deadline.is_some_and(|deadline| measured_by > deadline) {
            search.stop("the run time (-t) ended before the next step could be measured");
            break;
        }
        if !seen.wait_until(&control, measured_by).await {
            search.stop("the run was stopped");
            break;
        }
        // A late second: looked for until its grace is over.
        let grace = measured_by + GRACE;
        while !seen.has(end - 1) && Instant::now() < grace {
            if !seen.wait_until(&control, Instant::now() + POLL).await {
                break;
            }
        }
        let measured = seen.merged(first_second..end);
        let step = judge_step(
            rate,
            first_second,
            step_seconds,
            &measured,
            &settings.conditions,
        );
        say(&step_line(search.steps().len() + 1, &step));
        let held = step.held;
        let next = search.record(step);
        watch(&search.so_far());
        if next == Next::Done {
            break;
        }
        if !held {
            // Let the queue drain before the next step: nothing starts until a whole second
            // passed with no request answered (or MAX_DRAIN).
            let _ = control.set_arrival_rate(None, settings.max_users);
            let paused = epoch.elapsed().as_secs();
            let give_up = Instant::now() + MAX_DRAIN;
            loop {
                let quiet_since = seen.last_busy().max(paused) + 2;
                let drained = epoch + Duration::from_secs(quiet_since) + LOOK_AFTER;
                if Instant::now() >= drained || Instant::now() >= give_up {
                    break;
                }
                if !seen.wait_until(&control, drained.min(give_up)).await {
                    break;
                }
            }
            if control.is_stopping() {
                search.stop("the run was stopped");
                break;
            }
        }
    }
    control.stop();
    let mut result = finished.await;
    let outcome = search.outcome();
    say(&format!("capacity search: {}", outcome.ended));
    result.verdicts.push(Verdict {
        expression: format!("find-capacity {}", expressions.join(", ")),
        observed: outcome.per_second,
        observed_text: match outcome.per_second {
            Some(rate) => format!("held up to {}/s", show_rate(rate)),
            None => "no rate held".to_owned(),
        },
        passed: outcome.per_second.is_some(),
    });
    result.capacity = Some(outcome);
    result
}

/// One step as the terminal shows it.
fn step_line(number: usize, step: &crate::stats::capacity::CapacityStep) -> String {
    let ms = |us: u64| us as f64 / 1000.0;
    format!(
        "capacity step {number}: {}/s: {} requests, p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, {:.2} % failed, {} dropped: {}",
        show_rate(step.per_second),
        step.requests,
        ms(step.p50_us),
        ms(step.p95_us),
        ms(step.p99_us),
        step.failure_percent(),
        step.dropped_iterations,
        step.verdict()
    )
}

/// The run's closed seconds taken out of the tap so far.
struct Seen {
    tap: Arc<Mutex<SecondsTap>>,
    seconds: BTreeMap<u64, Snapshot>,
}

impl Seen {
    fn new(tap: Arc<Mutex<SecondsTap>>) -> Seen {
        Seen {
            tap,
            seconds: BTreeMap::new(),
        }
    }

    fn take(&mut self) {
        let closed = self
            .tap
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take_closed();
        for (second, snapshot) in closed {
            self.seconds.entry(second).or_default().merge(&snapshot);
        }
    }

    /// Takes seconds as they close until `until`; false when the run is stopping.
    async fn wait_until(&mut self, control: &impl Steered, until: Instant) -> bool {
        loop {
            self.take();
            if control.is_stopping() {
                return false;
            }
            let now = Instant::now();
            if now >= until {
                return true;
            }
            tokio::time::sleep_until(until.min(now + POLL)).await;
        }
    }

    fn has(&self, second: u64) -> bool {
        self.seconds.keys().any(|&s| s >= second)
    }

    /// The last second in which a request was answered (0 when none was).
    fn last_busy(&self) -> u64 {
        self.seconds
            .iter()
            .rev()
            .find(|(_, snapshot)| snapshot.requests() > 0)
            .map_or(0, |(second, _)| *second)
    }

    fn merged(&self, seconds: std::ops::Range<u64>) -> Snapshot {
        let mut merged = Snapshot::default();
        for (_, snapshot) in self.seconds.range(seconds) {
            merged.merge(snapshot);
        }
        merged
    }
}
