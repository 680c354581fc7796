//! Executing steps for one user: runs a step list in order, and the steps that are not
//! exchanges: thinks, repeats (one after another or `parallel`), conditions, emits and `js:`
//! steps. A request step is `engine::send`'s, a socket step `engine::socket`'s. Nothing here
//! stops the run.

use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use rand::RngExt as _;

use super::EmitRow;
use super::send::send;
use super::user::User;
use crate::scenario::{Count, Repeat, Step, StepKind, Think};

/// What the user does after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Go on with the next step.
    Continue,
    /// Leave the rest of this sequence: an error made its later steps meaningless (a value
    /// that was not extracted, a template that does not render).
    Abandon,
    /// The user was asked to stop, and left its steps between two of them.
    Stopped,
    /// The stop cut the sequence short (its deadline passed, or the stop was at once).
    Cut,
}

/// Runs steps in order until one abandons or the stop ends the sequence.
pub(super) async fn run_steps(user: &mut User, steps: &[Step]) -> Outcome {
    for (index, step) in steps.iter().enumerate() {
        if let Some(outcome) = user.leaving() {
            return outcome;
        }
        if user.stop.is_stopping() && user.is_pacing(user.path.len(), index) {
            // Only pacing is left of this iteration: it is done.
            return Outcome::Continue;
        }
        user.path.push(index);
        let outcome = run_step(user, step).await;
        user.path.pop();
        if outcome != Outcome::Continue {
            return outcome;
        }
    }
    Outcome::Continue
}

async fn run_step(user: &mut User, step: &Step) -> Outcome {
    if let Some(condition) = &step.when {
        match condition.evaluate(&user.vars) {
            Ok(true) => {}
            Ok(false) => return Outcome::Continue,
            Err(err) => return user.error("when", &err),
        }
    }
    match &step.kind {
        StepKind::Request(request) => send(user, request).await,
        StepKind::Think(think) => {
            let pause = match think {
                Think::Fixed(pause) => *pause,
                Think::Range(low, high) => random_between(*low, *high),
                Think::Template(template) => {
                    let seconds = template.render(&user.vars).map_err(|e| e.to_string());
                    match seconds.and_then(|text| parse_seconds(&text)) {
                        Ok(pause) => pause,
                        Err(err) => return user.error("think", &err),
                    }
                }
            };
            user.pause(pause).await
        }
        StepKind::Repeat(repeat) => {
            let count = match evaluate_count(user, &repeat.count) {
                Ok(count) => count,
                Err(err) => return user.error("repeat", &err),
            };
            let parallel = match &repeat.parallel {
                Some(parallel) => match evaluate_count(user, parallel) {
                    Ok(parallel) => parallel.max(1),
                    Err(err) => return user.error("parallel", &err),
                },
                None => 1,
            };
            if parallel > 1 {
                return run_parallel(user, repeat, count, parallel).await;
            }
            for index in 0..count {
                if let Some(name) = &repeat.index_as {
                    user.vars.set(name, index.into());
                }
                match Box::pin(run_steps(user, &repeat.steps)).await {
                    Outcome::Continue => {}
                    Outcome::Abandon if user.worker.setup.failure_ends_sequence => {}
                    other => return other,
                }
            }
            Outcome::Continue
        }
        StepKind::Emit(emit) => {
            let mut columns = Vec::with_capacity(emit.columns.len());
            for (column, template) in &emit.columns {
                match template.render(&user.vars) {
                    Ok(value) => columns.push((column.clone(), value)),
                    Err(err) => return user.error(&format!("emit.{column}"), &err),
                }
            }
            let outcome = match emit.outcome.as_ref().map(|t| t.render(&user.vars)) {
                Some(Ok(outcome)) => Some(outcome),
                Some(Err(err)) => return user.error("outcome", &err),
                None => None,
            };
            if let Some(sink) = &user.worker.setup.emit {
                let _ = sink.send(EmitRow { columns, outcome });
            }
            Outcome::Continue
        }
        // Boxed: a socket step's future is large, and inline it would be part of every
        // user's task, sockets or not.
        StepKind::Socket(socket) => Box::pin(super::socket::run(user, socket)).await,
        StepKind::Script(call) => {
            let scripts = user.worker.scenario.scripts.clone();
            match scripts.map(|scripts| scripts.run_step(call, &mut user.vars)) {
                Some(Err(failure)) => user.error("js", &failure),
                _ => Outcome::Continue,
            }
        }
    }
}

/// How many times: a `repeat`'s count or its `parallel`.
fn evaluate_count(user: &User, count: &Count) -> Result<u64, String> {
    Ok(match count {
        Count::Fixed(count) => *count,
        Count::Range(low, high) if low < high => rand::rng().random_range(*low..=*high),
        Count::Range(low, _) => *low,
        Count::Template(template) => {
            let text = template.render(&user.vars).map_err(|e| e.to_string())?;
            parse_count(&text)?
        }
    })
}

/// A `repeat` with `parallel: N`: up to N iterations at once, each on a copy of the user
/// (variables, cookies; its own connections). Ends when all have ended.
async fn run_parallel(user: &mut User, repeat: &Repeat, count: u64, parallel: u64) -> Outcome {
    let ends_sequence = user.worker.setup.failure_ends_sequence;
    let mut pending = (0..count).map(|index| {
        let mut copy = user.fork();
        if let Some(name) = &repeat.index_as {
            copy.vars.set(name, index.into());
        }
        async move { Box::pin(run_steps(&mut copy, &repeat.steps)).await }
    });
    let mut running = FuturesUnordered::new();
    let mut outcome = Outcome::Continue;
    loop {
        while outcome == Outcome::Continue && (running.len() as u64) < parallel {
            match pending.next() {
                Some(iteration) => running.push(iteration),
                None => break,
            }
        }
        match running.next().await {
            None => return outcome,
            Some(Outcome::Cut) => outcome = Outcome::Cut,
            Some(Outcome::Stopped) if outcome != Outcome::Cut => outcome = Outcome::Stopped,
            Some(Outcome::Abandon) if !ends_sequence && outcome == Outcome::Continue => {
                outcome = Outcome::Abandon
            }
            Some(_) => {}
        }
    }
}

fn random_between(low: Duration, high: Duration) -> Duration {
    if high <= low {
        return low;
    }
    let micros = rand::rng().random_range(low.as_micros() as u64..=high.as_micros() as u64);
    Duration::from_micros(micros)
}

/// A think template's text: seconds, fractions allowed, within a think time's bounds.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let seconds = trimmed
        .parse::<f64>()
        .ok()
        .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
        .ok_or_else(|| format!("expected a number of seconds, the template gave {trimmed:?}"))?;
    crate::units::from_seconds(seconds, crate::units::THINK)
        .map_err(|err| format!("the template gave {trimmed:?}: {err}"))
}

/// A repeat template's text: a whole number.
fn parse_count(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    match trimmed.parse::<f64>() {
        Ok(count) if count >= 0.0 && count.fract() == 0.0 && count <= u32::MAX as f64 => {
            Ok(count as u64)
        }
        Ok(count) if count.fract() == 0.0 && count > u32::MAX as f64 => Err(format!(
            "a repeat runs at most {} times, the template gave {trimmed:?}",
            u32::MAX
        )),
        _ => Err(format!(
            "expected a whole number of times, the template gave {trimmed:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_numbers() {
        assert_eq!(parse_seconds(" 1.5 "), Ok(Duration::from_millis(1500)));
        assert!(parse_seconds("soon").is_err());
        assert_eq!(
            parse_seconds("1e300"),
            Err(
                "the template gave \"1e300\": a think time must be from 0s to 1d, found 1e300"
                    .to_owned()
            )
        );
        assert_eq!(parse_count("3"), Ok(3));
        assert_eq!(parse_count("3.0"), Ok(3));
        assert_eq!(
            parse_count("100000000000"),
            Err(
                "a repeat runs at most 4294967295 times, the template gave \"100000000000\""
                    .to_owned()
            )
        );
        assert_eq!(
            parse_count("2.5"),
            Err("expected a whole number of times, the template gave \"2.5\"".to_owned())
        );
    }
}
