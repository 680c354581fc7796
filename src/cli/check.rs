//! `chorus run SCENARIO --check`: one user runs `on_start`, every flow once in order and
//! `on_stop`, with no pauses and each `repeat` once, and a line per request says whether it
//! passed and, if not, why — the quickest way to see what a converted scenario still needs.

use std::process::ExitCode;
use std::sync::Arc;

use super::{EXIT_OK, EXIT_THRESHOLDS};
use crate::engine::{Engine, EngineOptions, Plan};
use crate::scenario::{Count, Repeat, Scenario, Step, StepKind};
use crate::stats::RunResult;

/// The scenario as one pass: flows in order after `on_start`, thinks dropped, repeats once.
pub(super) fn one_pass(scenario: &Scenario) -> Scenario {
    let mut pass = scenario.clone();
    let mut steps = quick(&scenario.on_start);
    for flow in &scenario.flows {
        steps.extend(quick(&flow.steps));
    }
    pass.on_start = steps;
    pass.flows = Vec::new();
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

/// One line per request name, passed or failed with the first reason of each kind.
pub(super) fn lines(result: &RunResult) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in &result.entries {
        if entry.failures == 0 {
            lines.push(format!("PASS  {} {}", entry.method, entry.name));
        } else {
            for failure in &entry.failures_by_kind {
                let kind = failure.kind.to_string();
                let reason = if failure.message.starts_with(&kind) {
                    failure.message.clone()
                } else {
                    format!("{kind}: {}", failure.message)
                };
                lines.push(format!("FAIL  {} {}: {reason}", entry.method, entry.name));
            }
        }
    }
    for error in &result.errors {
        lines.push(format!("ERROR {}", error.message));
    }
    lines
}

pub(super) async fn check(scenario: &Scenario, options: EngineOptions) -> anyhow::Result<ExitCode> {
    let plan = Plan::users(1, Some(1.0), None)?;
    let handle = Engine::start(Arc::new(one_pass(scenario)), plan, options)?;
    let result = handle.wait().await;
    for line in lines(&result) {
        println!("{line}");
    }
    let failed = result.failures_and_errors();
    println!(
        "{} request(s), {} failed{}",
        result.total.requests,
        result.total.failures,
        if result.errors.is_empty() {
            String::new()
        } else {
            format!(", {} error(s) outside requests", result.errors.len())
        }
    );
    Ok(if failed == 0 {
        EXIT_OK.into()
    } else {
        EXIT_THRESHOLDS.into()
    })
}
