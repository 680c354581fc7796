//! `chorus run`: settles its arguments ([`RunSettings`]), hands the run to the way it is
//! driven (`--check`, `--headless` here or as a master, the page here or as a master), and
//! ends every way alike: the summary printed, the reports written, the result's exit code.

use std::process::ExitCode;

use anyhow::{Context as _, bail};

use super::args::{OutputArgs, RunArgs};
use super::processes::{LocalWorkers, Started};
use super::settings::{RunSettings, Way};
use crate::cluster::{Master, MasterConfig};
use crate::stats::{RunResult, report};

pub(super) async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let mut settings = RunSettings::settle(args).await?;
    let master = settings.master.take();
    let processes = settings.processes.take();
    let (code, result, after) = match (&settings.way, master) {
        (Way::Check { capture }, _) => {
            return super::check::check(
                &settings.scenario,
                capture.as_deref(),
                settings.engine.clone(),
            )
            .await;
        }
        (Way::Headless, None) => {
            let (result, after) = match &settings.capacity {
                Some(search) => super::headless::capacity(&settings, search.clone()).await?,
                None => super::headless::local(&settings).await?,
            };
            (result.exit_code(), Some(result), after)
        }
        (Way::Headless, Some(config)) => {
            let master = bind_master(config, processes.is_none()).await?;
            let mut workers = start_processes(processes.as_ref(), &master)?;
            let watch = workers.as_mut().map(|w| w.watch_start(master.control()));
            let (result, after) = match &settings.capacity {
                Some(search) => {
                    super::headless::master_capacity(&settings, master, search.clone()).await?
                }
                None => super::headless::master(&settings, master).await?,
            };
            end_processes(workers, watch).await?;
            (result.exit_code(), Some(result), after)
        }
        (Way::Page(page), None) => {
            let (code, result) = super::page::local(&settings, page).await?;
            (code, result, String::new())
        }
        (Way::Page(page), Some(config)) => {
            let expect_workers = config.expect_workers;
            let master = bind_master(config, processes.is_none()).await?;
            let mut workers = start_processes(processes.as_ref(), &master)?;
            let watch = workers.as_mut().map(|w| w.watch_start(master.control()));
            let (code, result) =
                super::page::master(&settings, page, master, expect_workers).await?;
            end_processes(workers, watch).await?;
            (code, result, String::new())
        }
    };
    if let Some(result) = &result {
        // With the page too, as Locust does: the terminal keeps the last run's numbers.
        println!("{}", report::summary(result));
        print!("{after}");
        if let Some(baseline) = &settings.baseline {
            println!("{}", super::compare::after_run(baseline, result));
        }
        write_reports(&settings.output, result)?;
    }
    Ok(code.into())
}

/// Binds a master and (`say_how`) says how workers join it.
async fn bind_master(config: MasterConfig, say_how: bool) -> anyhow::Result<Master> {
    let master = Master::bind(config)
        .await
        .context("could not start the master")?;
    if say_how {
        eprintln!(
            "chorus master: workers join with: chorus worker --master {}",
            master.local_addr()
        );
    }
    Ok(master)
}

/// Starts `--processes`' worker processes, pointed at `master`.
fn start_processes(
    processes: Option<&LocalWorkers>,
    master: &Master,
) -> anyhow::Result<Option<Started>> {
    processes
        .map(|processes| processes.start(master.local_addr()))
        .transpose()
}

/// Once the master is done: the worker processes exit (or are killed) and are reaped; a
/// run that never began because one of them failed is an error.
async fn end_processes(
    workers: Option<Started>,
    watch: Option<tokio::task::JoinHandle<Option<String>>>,
) -> anyhow::Result<()> {
    let failure = match watch {
        Some(watch) if watch.is_finished() => watch.await.ok().flatten(),
        Some(watch) => {
            watch.abort();
            None
        }
        None => None,
    };
    if let Some(workers) = workers {
        workers.finish().await;
    }
    match failure {
        Some(failure) => bail!("{failure}; its error is above"),
        None => Ok(()),
    }
}

/// Writes every report asked for; one that fails does not keep the others from being
/// written, and every failure is named.
pub(super) fn write_reports(output: &OutputArgs, result: &RunResult) -> anyhow::Result<()> {
    let mut failures = Vec::new();
    let mut attempt = |what: String, written: std::io::Result<()>| {
        if let Err(err) = written {
            failures.push(format!("{what}: {}", crate::files::os_error(&err)));
        }
    };
    if let Some(prefix) = &output.csv {
        attempt(
            format!("the CSV reports {}_*.csv", prefix.display()),
            report::csv::write(result, prefix).map(drop),
        );
    }
    if let Some(path) = &output.json {
        attempt(
            format!("the JSON result {}", path.display()),
            report::json::write(result, path),
        );
    }
    if let Some(path) = &output.html {
        attempt(
            format!("the HTML report {}", path.display()),
            report::html::write(result, path),
        );
    }
    for (path, what, text) in [
        (
            &output.markdown,
            "Markdown report",
            report::markdown::for_run as fn(_) -> _,
        ),
        (&output.junit, "JUnit report", report::junit::for_run),
    ] {
        if let Some(path) = path {
            attempt(
                format!("the {what} {}", path.display()),
                std::fs::write(path, text(result)),
            );
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        bail!("could not write {}", failures.join("; "))
    }
}
