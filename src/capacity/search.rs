//! The search's rules as a state machine: [`Search::rate`] says which rate to run, and
//! [`Search::record`] takes the step measured at it and says what comes next. The schedule:
//! double the rate while the steps hold; after the first step that does not, bisect between
//! the highest rate that held and the lowest that did not until they are within
//! [`RESOLUTION`] of each other or [`MAX_BISECTIONS`] are done; when even the first rate does
//! not hold, halve it until one does (at most [`MAX_DESCENTS`] times) and bisect from there.
//! Every search ends by itself: after at most [`MAX_STEPS`] steps.

use crate::stats::capacity::{Capacity, CapacityStep, show_rate};
use crate::stats::{Aggregate, RunMeta, Snapshot, Threshold};

/// While the steps hold, each rate is this many times the last.
pub const GROWTH: f64 = 2.0;
/// The search ends when the lowest rate that failed is within this share of the highest
/// that held (5 %): the answer is known to that precision.
pub const RESOLUTION: f64 = 0.05;
/// Bisections at most (from a bracket of 2x, 6 of them narrow it to 1.6 %).
pub const MAX_BISECTIONS: u32 = 6;
/// Halvings at most when the first rate does not hold (down to 1/64 of it).
pub const MAX_DESCENTS: u32 = 6;
/// Steps at most, whatever happens.
pub const MAX_STEPS: usize = 30;
/// A step whose dropped iterations pass this share of its arrivals did not deliver its rate
/// (the users were all busy): it does not hold, whatever the latencies say.
pub const MAX_DROPPED_SHARE: f64 = 0.01;

/// What to do after a step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    /// Run this rate next.
    Step(f64),
    /// The search is over ([`Search::outcome`]).
    Done,
}

/// Where the search stands.
#[derive(Debug, Clone)]
pub struct Search {
    conditions: Vec<String>,
    rate: f64,
    max_rate: f64,
    /// The highest rate that held, and the lowest that did not.
    held: Option<f64>,
    failed: Option<f64>,
    bisections: u32,
    descents: u32,
    steps: Vec<CapacityStep>,
    ended: Option<String>,
}

impl Search {
    /// A search from `start` iterations per second, never above `max_rate`, judged on
    /// `conditions` (as written, for the report).
    pub fn new(start: f64, max_rate: f64, conditions: Vec<String>) -> Search {
        Search {
            conditions,
            rate: start.min(max_rate),
            max_rate,
            held: None,
            failed: None,
            bisections: 0,
            descents: 0,
            steps: Vec::new(),
            ended: None,
        }
    }

    /// The rate to run now.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// The steps so far.
    pub fn steps(&self) -> &[CapacityStep] {
        &self.steps
    }

    /// Takes the step measured at [`Search::rate`] and says what comes next.
    pub fn record(&mut self, step: CapacityStep) -> Next {
        if self.ended.is_some() {
            return Next::Done;
        }
        let rate = step.per_second;
        if step.held {
            self.held = Some(self.held.map_or(rate, |held| held.max(rate)));
        } else {
            self.failed = Some(self.failed.map_or(rate, |failed| failed.min(rate)));
        }
        self.steps.push(step);
        match self.next() {
            Ok(rate) => {
                self.rate = rate;
                Next::Step(rate)
            }
            Err(why) => {
                self.ended = Some(why);
                Next::Done
            }
        }
    }

    /// The next rate, or why the search ends.
    fn next(&mut self) -> Result<f64, String> {
        if self.steps.len() >= MAX_STEPS {
            return Err(format!("the search ran its {MAX_STEPS} steps"));
        }
        match (self.held, self.failed) {
            (Some(held), None) if held >= self.max_rate => Err(format!(
                "the conditions held at {}/s, the highest rate this run may start (raise --max-users or find the limit with more machines)",
                show_rate(held)
            )),
            (Some(held), None) => Ok((held * GROWTH).min(self.max_rate)),
            (None, Some(failed)) => {
                if self.descents >= MAX_DESCENTS {
                    return Err(format!("no rate held, down to {}/s", show_rate(failed)));
                }
                self.descents += 1;
                Ok(failed / GROWTH)
            }
            (Some(held), Some(failed)) => {
                if failed - held <= RESOLUTION * held {
                    return Err(format!(
                        "{}/s held and {}/s did not: within {:.0} %",
                        show_rate(held),
                        show_rate(failed),
                        RESOLUTION * 100.0
                    ));
                }
                if self.bisections >= MAX_BISECTIONS {
                    return Err(format!(
                        "{MAX_BISECTIONS} bisections between {}/s (held) and {}/s (did not)",
                        show_rate(held),
                        show_rate(failed)
                    ));
                }
                self.bisections += 1;
                Ok((held + failed) / 2.0)
            }
            (None, None) => Err("no step was measured".to_owned()),
        }
    }

    /// Ends the search early (the run time ran out, the run was stopped).
    pub fn stop(&mut self, why: &str) {
        if self.ended.is_none() {
            self.ended = Some(why.to_owned());
        }
    }

    /// The search so far (the page draws its curve while it runs): the highest rate that
    /// held yet, the steps measured, and why it ended if it did (empty while it goes on).
    pub fn so_far(&self) -> Capacity {
        Capacity {
            conditions: self.conditions.clone(),
            per_second: self.held,
            ended: self.ended.clone().unwrap_or_default(),
            steps: self.steps.clone(),
        }
    }

    /// The highest rate that held, the curve, and why the search ended.
    pub fn outcome(self) -> Capacity {
        Capacity {
            conditions: self.conditions,
            per_second: self.held,
            ended: self
                .ended
                .unwrap_or_else(|| "the run ended before the search".to_owned()),
            steps: self.steps,
        }
    }
}

/// Judges one step: `measured` holds what its `seconds` seconds from `first_second` on
/// measured at `per_second`. It holds when something was answered, every condition holds on
/// it, and at most [`MAX_DROPPED_SHARE`] of its arrivals were dropped.
pub fn judge_step(
    per_second: f64,
    first_second: u64,
    seconds: u64,
    measured: &Snapshot,
    conditions: &[Threshold],
) -> CapacityStep {
    let mut aggregate = Aggregate::new();
    aggregate.absorb(measured.clone());
    // The step's own span, so `rps` conditions read the step's rate.
    let result = aggregate.finish(RunMeta {
        start_unix_ms: 1,
        end_unix_ms: 1 + seconds.max(1) * 1000,
        ..RunMeta::default()
    });
    let total = &result.total;
    let mut why: Vec<String> = conditions
        .iter()
        .map(|condition| condition.evaluate(&result))
        .filter(|verdict| !verdict.passed)
        .map(|verdict| format!("{} ({})", verdict.expression, verdict.observed_text))
        .collect();
    if total.requests == 0 {
        why.push("no request was answered".to_owned());
    }
    let arrivals = per_second * seconds as f64;
    if result.dropped_iterations as f64 > MAX_DROPPED_SHARE * arrivals {
        why.push(format!(
            "{} iterations dropped: every user was busy (raise --max-users)",
            result.dropped_iterations
        ));
    }
    CapacityStep {
        per_second,
        first_second,
        seconds,
        requests: total.requests,
        failures: total.failures,
        dropped_iterations: result.dropped_iterations,
        p50_us: total.percentile_us(50.0),
        p95_us: total.percentile_us(95.0),
        p99_us: total.percentile_us(99.0),
        held: why.is_empty(),
        why: why.join("; "),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::stats::{Failure, FailureKind, RequestSample, Tally};

    fn step(per_second: f64, held: bool) -> CapacityStep {
        CapacityStep {
            per_second,
            first_second: 0,
            seconds: 5,
            requests: 100,
            failures: 0,
            dropped_iterations: 0,
            p50_us: 1,
            p95_us: 1,
            p99_us: 1,
            held,
            why: String::new(),
        }
    }

    /// Runs a search against a server that holds up to `capacity`, and returns the rates
    /// tried and the outcome.
    fn against(capacity: f64, start: f64) -> (Vec<f64>, Capacity) {
        let mut search = Search::new(start, 10_000_000.0, vec!["p95<300ms".to_owned()]);
        let mut rates = Vec::new();
        loop {
            let rate = search.rate();
            rates.push(rate);
            if search.record(step(rate, rate <= capacity)) == Next::Done {
                break;
            }
        }
        (rates, search.outcome())
    }

    #[test]
    fn doubles_while_it_holds_then_bisects_to_five_percent() {
        let (rates, outcome) = against(200.0, 50.0);
        assert_eq!(
            rates,
            [
                50.0, 100.0, 200.0, 400.0, 300.0, 250.0, 225.0, 212.5, 206.25
            ]
        );
        assert_eq!(outcome.per_second, Some(200.0));
        assert_eq!(outcome.ended, "200/s held and 206.25/s did not: within 5 %");
        assert_eq!(outcome.steps.len(), rates.len());
    }

    #[test]
    fn finds_any_capacity_within_the_resolution_in_few_steps() {
        for capacity in [3.0, 17.0, 99.0, 195.0, 1234.5, 77_777.0] {
            let (rates, outcome) = against(capacity, 10.0);
            let found = outcome.per_second.unwrap();
            assert!(found <= capacity, "{capacity}: {found}");
            assert!(
                found >= capacity / (1.0 + RESOLUTION) - 1e-9,
                "{capacity}: {found}"
            );
            assert!(rates.len() <= 20, "{capacity}: {rates:?}");
        }
    }

    #[test]
    fn a_first_rate_that_fails_is_halved_until_one_holds() {
        let (rates, outcome) = against(30.0, 100.0);
        assert_eq!(&rates[..3], [100.0, 50.0, 25.0]);
        assert_eq!(rates[3], 37.5);
        let found = outcome.per_second.unwrap();
        assert!((28.5..=30.0).contains(&found), "{found}");
        // Nothing holds: it gives up after the halvings.
        let (rates, outcome) = against(0.0, 64.0);
        assert_eq!(rates, [64.0, 32.0, 16.0, 8.0, 4.0, 2.0, 1.0]);
        assert_eq!(outcome.per_second, None);
        assert_eq!(outcome.ended, "no rate held, down to 1/s");
    }

    #[test]
    fn ends_at_the_highest_rate_and_after_the_steps_allowed() {
        let mut search = Search::new(30.0, 100.0, Vec::new());
        let mut rates = Vec::new();
        while let Next::Step(rate) = search.record(step(search.rate(), true)) {
            rates.push(rate);
        }
        assert_eq!(rates, [60.0, 100.0]);
        assert!(
            search
                .outcome()
                .ended
                .starts_with("the conditions held at 100/s")
        );
        // A server that answers at random still ends the search.
        let mut search = Search::new(10.0, 1e7, Vec::new());
        let mut steps = 0;
        let mut flip = false;
        while search.record(step(search.rate(), flip)) != Next::Done {
            flip = !flip;
            steps += 1;
            assert!(steps <= MAX_STEPS);
        }
        // Stopped from outside: no more steps.
        let mut search = Search::new(10.0, 1e7, Vec::new());
        search.stop("the run time ended");
        assert_eq!(search.record(step(10.0, true)), Next::Done);
        assert_eq!(search.outcome().ended, "the run time ended");
    }

    #[test]
    fn a_step_is_judged_on_its_conditions_and_on_the_rate_it_delivered() {
        let mut tally = Tally::new();
        for ms in 1..=100u64 {
            let failure = (ms > 97).then_some(Failure {
                kind: FailureKind::Status(503),
                message: "busy",
            });
            tally.record(&RequestSample {
                method: "GET",
                name: "/a",
                latency: Duration::from_millis(ms * 4),
                response_bytes: 1,
                failure,
            });
        }
        let measured = tally.take();
        let conditions = |list: &[&str]| {
            list.iter()
                .map(|c| Threshold::parse(c).unwrap())
                .collect::<Vec<_>>()
        };
        let held = judge_step(20.0, 3, 5, &measured, &conditions(&["p95<500ms", "rps>19"]));
        assert!(held.held, "{}", held.why);
        assert_eq!((held.requests, held.failures), (100, 3));
        assert!(
            (380_000..=381_000).contains(&held.p95_us),
            "{}",
            held.p95_us
        );
        assert_eq!(held.rps(), 20.0);
        let failed = judge_step(
            20.0,
            3,
            5,
            &measured,
            &conditions(&["p95<300ms", "failures<1%"]),
        );
        assert!(!failed.held);
        assert_eq!(failed.why, "p95<300ms (380.2 ms); failures<1% (3.00 %)");
        let mut dropped = measured.clone();
        dropped.dropped_iterations = 2;
        let step = judge_step(20.0, 3, 5, &dropped, &[]);
        assert_eq!(
            step.why,
            "2 iterations dropped: every user was busy (raise --max-users)"
        );
        let nothing = judge_step(20.0, 3, 5, &Snapshot::default(), &[]);
        assert_eq!(nothing.why, "no request was answered");
    }
}
