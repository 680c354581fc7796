//! `chorus run`: maps its arguments onto library calls (scenario, plan, engine, reports) and
//! the outcome onto an exit status. The first Ctrl-C (or SIGTERM, SIGHUP) stops gracefully,
//! the second at once; the reports are written either way.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::args::*;
use super::signals::{GRACEFUL, Interrupts};
use super::{EXIT_OK, EXIT_THRESHOLDS};
use crate::engine::{Engine, EngineOptions, Plan, RunState};
use crate::scenario::{self, LoadOptions, Scenario};
use crate::stats::{self, Threshold, report};

/// How often the live table is printed.
const LIVE_EVERY: Duration = Duration::from_secs(5);
/// `--arrival-rate` without `--max-users` or `-u`.
const DEFAULT_MAX_USERS: u64 = 1000;

/// The `--threshold`s and the scenario's own thresholds, parsed.
pub(super) fn thresholds_of(args: &RunArgs, scenario: &Scenario) -> anyhow::Result<Vec<Threshold>> {
    let mut expressions = args.thresholds.clone();
    expressions.extend(scenario.thresholds.iter().cloned());
    stats::thresholds::parse_all(&expressions).map_err(anyhow::Error::msg)
}

/// What the engine is told for a run of `chorus run`, local or distributed.
pub(super) fn engine_options(args: &RunArgs, thresholds: Vec<Threshold>) -> EngineOptions {
    EngineOptions {
        workers: args.workers.unwrap_or(0),
        stop_timeout: args.stop_timeout,
        max_body: args.max_body,
        accept_invalid_certs: args.insecure,
        thresholds,
        setup: Default::default(),
        started_ago: Duration::ZERO,
        monitors: args.monitors.clone(),
    }
}

pub(super) async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let scenario = Arc::new(load_scenario(&args)?);
    let plan = plan(&args)?;
    // Before any traffic: a report that cannot be written would lose the whole run.
    super::outputs::check(
        &super::outputs::reports(&args.output),
        &super::outputs::run_inputs(args.scenario.as_deref(), &scenario, args.capture.as_deref()),
    )?;
    // The page's settings are checked before anything listens or runs.
    let page = match args.headless || args.check {
        true => None,
        false => Some(super::page::web_config(&args.web).await?),
    };
    if args.cluster.master {
        return super::cluster_run::run_master(&args, &scenario, plan, page).await;
    }
    let options = engine_options(&args, thresholds_of(&args, &scenario)?);
    if args.check {
        return super::check::check(&scenario, args.capture.as_deref(), options).await;
    }
    if let Some(page) = page {
        let plan =
            (args.load.users.is_some() || args.stages.is_some() || args.arrival_rate.is_some())
                .then_some(plan);
        let (code, result) =
            super::page::run_with_page(&args, page, scenario, options, plan).await?;
        if let Some(result) = &result {
            // As Locust does: the terminal keeps the last run's numbers after the page closes.
            println!("{}", report::summary(result));
            write_reports(&args.output, result)?;
        }
        return Ok(code);
    }
    // Listening before the run starts: a SIGTERM that comes early still gets the reports.
    let listening = Interrupts::listen().context("could not listen for Ctrl-C and SIGTERM")?;
    let handle = Engine::start(scenario.clone(), plan, options)?;
    let control = handle.control();
    let (interrupts, _) = listening.on_stop(
        GRACEFUL,
        {
            let control = control.clone();
            move || control.stop()
        },
        {
            let control = control.clone();
            move || control.stop_now()
        },
    );
    let live = (!args.quiet).then(|| {
        let control = control.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(LIVE_EVERY);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                if control.state() == RunState::Stopped {
                    break;
                }
                let table = control.inspect(report::live_table);
                println!("{} users, {:?}\n{table}", control.users(), control.state());
            }
        })
    });
    let result = handle.wait().await;
    interrupts.abort();
    if let Some(live) = live {
        live.abort();
    }
    println!("{}", report::summary(&result));
    let flows = control.latest().flows.clone();
    if flows.len() > 1 {
        for flow in &flows {
            println!(
                "flow {:?} (weight {}): {} iterations",
                flow.name, flow.weight, flow.iterations
            );
        }
    }
    write_reports(&args.output, &result)?;
    Ok(if result.passed() {
        EXIT_OK.into()
    } else {
        EXIT_THRESHOLDS.into()
    })
}

/// What `chorus run`'s flags add to or change in the scenario file.
pub(super) fn load_options(args: &RunArgs) -> LoadOptions {
    LoadOptions {
        data_overrides: args.data.clone(),
        host_override: args.load.host.clone(),
        vars: args.vars.clone(),
        scripts: args.scripts.clone(),
        ..LoadOptions::default()
    }
}

fn load_scenario(args: &RunArgs) -> anyhow::Result<Scenario> {
    if let Some(path) = &args.scenario {
        return Ok(scenario::load(path, &load_options(args))?);
    }
    if let Some((name, _)) = args.vars.first() {
        bail!("--var {name}=...: a --url run has no variables to set; write a scenario file");
    }
    let mut urls = Vec::with_capacity(args.url.len());
    for text in &args.url {
        let url = url::Url::parse(text).with_context(|| {
            format!("--url {text:?}: expected an absolute URL such as http://127.0.0.1:8080/")
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            bail!("--url {text:?}: only http:// and https:// URLs can be run");
        }
        urls.push(url);
    }
    Ok(Scenario::from_urls(&urls, args.think))
}

fn plan(args: &RunArgs) -> anyhow::Result<Plan> {
    let load = &args.load;
    let plan = if let Some(stages) = &args.stages {
        Plan::parse_stages(stages)?
    } else if let Some(rate) = &args.arrival_rate {
        let max_users = args.max_users.or(load.users).unwrap_or(DEFAULT_MAX_USERS);
        Plan::arrivals(rate, max_users, load.run_time())?
    } else {
        Plan::users(load.users.unwrap_or(1), load.spawn_rate, load.run_time())?
    };
    Ok(plan)
}

/// Writes every report asked for; one that fails does not keep the others from being
/// written, and every failure is named.
pub(super) fn write_reports(output: &OutputArgs, result: &stats::RunResult) -> anyhow::Result<()> {
    let mut failures = Vec::new();
    if let Some(prefix) = &output.csv {
        if let Err(err) = report::csv::write(result, prefix) {
            failures.push(format!(
                "the CSV reports {}_*.csv: {}",
                prefix.display(),
                crate::files::os_error(&err)
            ));
        }
    }
    if let Some(path) = &output.json {
        if let Err(err) = report::json::write(result, path) {
            failures.push(format!(
                "the JSON result {}: {}",
                path.display(),
                crate::files::os_error(&err)
            ));
        }
    }
    if let Some(path) = &output.html {
        if let Err(err) = report::html::write(result, path) {
            failures.push(format!(
                "the HTML report {}: {}",
                path.display(),
                crate::files::os_error(&err)
            ));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        bail!("could not write {}", failures.join("; "))
    }
}
