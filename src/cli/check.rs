//! `chorus run SCENARIO --check`: two users each run `on_start`, every flow twice in order and
//! `on_stop`, with no pauses and each `repeat` once, so that per-iteration and per-user
//! mistakes show. Every exchange gets a line: PASS, DIFF (it did something else than the
//! capture entry it replays: `crate::fidelity`) or FAIL (a status, check, extract or
//! transport failure). Exit status 1 on any DIFF or FAIL.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::mpsc;

use super::{EXIT_OK, EXIT_THRESHOLDS};
use crate::engine::{Engine, EngineOptions, Plan};
use crate::fidelity::{self, Observation, Verdict};
use crate::scenario::{Count, Repeat, Scenario, Step, StepKind};

/// Users that replay at once: two, so that values one user's session handed over to another
/// (a token, an id) show.
const USERS: u64 = 2;
/// Iterations of each flow per user: two, so that values the first iteration used up (a
/// per-iteration token, a deleted object, a logout) show.
const ROUNDS: u64 = 2;

/// The scenario with thinks dropped and each `repeat` run once.
pub(super) fn quick_pass(scenario: &Scenario) -> Scenario {
    let mut pass = scenario.clone();
    pass.on_start = quick(&scenario.on_start);
    for flow in &mut pass.flows {
        flow.steps = quick(&flow.steps);
    }
    pass.on_stop = quick(&scenario.on_stop);
    pass
}

fn quick(steps: &[Step]) -> Vec<Step> {
    steps
        .iter()
        .filter(|step| !matches!(step.kind, StepKind::Think(_)))
        .map(|step| match &step.kind {
            StepKind::Repeat(repeat) => Step {
                when: step.when.clone(),
                kind: StepKind::Repeat(Repeat {
                    count: Count::Fixed(1),
                    steps: quick(&repeat.steps),
                    index_as: repeat.index_as.clone(),
                    parallel: None,
                }),
            },
            _ => step.clone(),
        })
        .collect()
}

/// Runs the check; `capture` replaces the scenario's `capture:`.
pub(super) async fn check(
    scenario: &Scenario,
    capture: Option<&Path>,
    mut options: EngineOptions,
) -> anyhow::Result<ExitCode> {
    let capture_path = capture.map(Path::to_path_buf).or(scenario.capture.clone());
    let entries = match &capture_path {
        Some(path) => Some(
            crate::har::read::read_file(path)
                .map(|(har, _)| har.log.entries)
                .with_context(|| {
                    format!(
                        "the capture to compare with, {}, cannot be read (pass --capture FILE, or remove `capture:` to check without it)",
                        path.display()
                    )
                })?,
        ),
        None => None,
    };
    let users = if scenario.flows.is_empty() { 1 } else { USERS };
    scenario.check_capacity(users)?;
    let (sender, mut observed) = mpsc::unbounded_channel();
    options.setup.rounds = Some(ROUNDS);
    options.setup.observe = Some(sender);
    let plan = Plan::users(users, Some(100.0), None)?;
    let handle = Engine::start(Arc::new(quick_pass(scenario)), plan, options)?;
    let result = handle.wait().await;
    let mut observations = Vec::new();
    while let Ok(observation) = observed.try_recv() {
        observations.push(observation);
    }
    // Each user's exchanges together, in the order that user had them.
    observations.sort_by_key(|o| o.user);
    let recorded = entries
        .as_deref()
        .map(|entries| fidelity::recorded_account(scenario, entries))
        .unwrap_or_default();
    let verdicts = fidelity::review(&observations, entries.as_deref(), |user| {
        fidelity::accounts_for(scenario, &recorded, user)
    });
    let errors: Vec<String> = result.errors.iter().map(|e| e.message.clone()).collect();
    print!("{}", report(&observations, &verdicts, &errors));
    let clean = verdicts.iter().all(|v| *v == Verdict::Pass) && result.errors.is_empty();
    Ok(if clean {
        EXIT_OK.into()
    } else {
        EXIT_THRESHOLDS.into()
    })
}

/// The table, one line per exchange, and the summary.
fn report(observations: &[Observation], verdicts: &[Verdict], errors: &[String]) -> String {
    let mut out = String::new();
    let mut first_divergence: Option<String> = None;
    let (mut passed, mut differ, mut failed) = (0, 0, 0);
    for (observation, verdict) in observations.iter().zip(verdicts) {
        let when = match observation.iteration {
            Some(iteration) => format!("iteration {}", iteration + 1),
            None if observation.place.starts_with("on_stop") => "on_stop".to_owned(),
            None => "on_start".to_owned(),
        };
        let entry = match observation.recorded {
            Some(n) if !observation.hop => format!(" (entry {n})"),
            _ if observation.hop => " (redirect followed)".to_owned(),
            _ => String::new(),
        };
        let what = format!(
            "user {} {when:<12} {} {}{entry}",
            observation.user, observation.method, observation.name
        );
        let (mark, detail) = match verdict {
            Verdict::Pass => {
                passed += 1;
                ("PASS", String::new())
            }
            Verdict::Fail(message) => {
                failed += 1;
                ("FAIL", format!(": {message}"))
            }
            Verdict::Diff {
                differences,
                failure,
            } => {
                differ += 1;
                let mut detail = String::new();
                for difference in differences {
                    let _ = write!(
                        detail,
                        "\n      {}: recorded {}, replayed {}",
                        difference.what, difference.recorded, difference.replayed
                    );
                }
                if let Some(failure) = failure {
                    let _ = write!(detail, "\n      and it failed: {failure}");
                }
                ("DIFF", detail)
            }
        };
        if mark != "PASS" && first_divergence.is_none() {
            first_divergence = Some(format!(
                "user {}, {when}, {}: {} {}{entry}",
                observation.user, observation.place, observation.method, observation.name
            ));
        }
        let _ = writeln!(out, "{mark}  {what}{detail}");
    }
    for error in errors {
        let _ = writeln!(out, "ERROR {error}");
    }
    let _ = writeln!(
        out,
        "{} request(s) sent: {passed} PASS, {differ} DIFF, {failed} FAIL{}",
        observations.len(),
        if errors.is_empty() {
            String::new()
        } else {
            format!(", {} error(s) outside requests", errors.len())
        }
    );
    if let Some(first) = first_divergence {
        let _ = writeln!(out, "first to go wrong: {first}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fidelity::{Difference, Outcome};

    fn observation(user: u64, iteration: Option<u64>, method: &str, name: &str) -> Observation {
        Observation {
            user,
            iteration,
            place: "flows[0] (recorded session).steps[1]".to_owned(),
            recorded: Some(7),
            hop: false,
            method: method.to_owned(),
            name: name.to_owned(),
            url: format!("http://h{name}"),
            sent: Vec::new(),
            outcome: Outcome::default(),
            failure: None,
        }
    }

    #[test]
    fn one_line_per_exchange_and_the_first_to_go_wrong() {
        let observations = [
            observation(0, None, "GET", "/admin/"),
            observation(0, Some(0), "POST", "/admin/x/[id]/change/"),
            observation(0, Some(1), "POST", "/admin/x/[id]/change/"),
        ];
        let verdicts = [
            Verdict::Pass,
            Verdict::Pass,
            Verdict::Diff {
                differences: vec![Difference {
                    what: "redirect",
                    recorded: "/admin/x/".to_owned(),
                    replayed: "/admin/login/?next=/admin/x/".to_owned(),
                }],
                failure: None,
            },
        ];
        let text = report(&observations, &verdicts, &[]);
        let expected = "\
PASS  user 0 on_start     GET /admin/ (entry 7)
PASS  user 0 iteration 1  POST /admin/x/[id]/change/ (entry 7)
DIFF  user 0 iteration 2  POST /admin/x/[id]/change/ (entry 7)
      redirect: recorded /admin/x/, replayed /admin/login/?next=/admin/x/
3 request(s) sent: 2 PASS, 1 DIFF, 0 FAIL
first to go wrong: user 0, iteration 2, flows[0] (recorded session).steps[1]: POST /admin/x/[id]/change/ (entry 7)
";
        assert_eq!(text, expected);
    }
}
