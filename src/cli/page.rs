//! `chorus run` without `--headless`: serve the page for runs on this machine's engine or on a
//! cluster's workers, optionally start at once (`--autostart`) and quit after the run
//! (`--autoquit`). Ctrl-C (or SIGTERM, SIGHUP) stops a run gracefully, a second one at once;
//! with no run going, it closes the page. The caller prints the last run's summary and writes
//! its reports.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use super::EXIT_OK;
use super::settings::{PageSettings, RunSettings};
use super::signals::{GRACEFUL, Interrupts};
use crate::cluster::Master;
use crate::stats::RunResult;
use crate::web::{self, Runs};

/// The page for runs on this machine.
pub(super) async fn local(
    settings: &RunSettings,
    page: &PageSettings,
) -> anyhow::Result<(u8, Option<RunResult>)> {
    let runs = Runs::new(settings.scenario.clone(), settings.engine.clone());
    serve(settings, page, runs, std::future::ready(())).await
}

/// The page for runs on a cluster's workers; the workers are told to quit when it closes.
/// `--autostart` waits for the workers `--expect-workers` asks for.
pub(super) async fn master(
    settings: &RunSettings,
    page: &PageSettings,
    master: Master,
    expect_workers: usize,
) -> anyhow::Result<(u8, Option<RunResult>)> {
    let control = master.control();
    let serving = tokio::spawn(master.serve());
    let runs = Runs::on_cluster(
        settings.scenario.clone(),
        settings.engine.clone(),
        control.clone(),
    );
    let ready = {
        let control = control.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tick.tick().await;
                if control.status().ready_workers() >= expect_workers {
                    break;
                }
            }
        }
    };
    let served = serve(settings, page, runs, ready).await;
    control.quit();
    let _ = serving.await;
    served
}

/// Serves the page for `runs` until the user is done; `--autostart` starts the settled plan
/// once `ready` has completed. Returns the exit code and the last run's result.
async fn serve(
    settings: &RunSettings,
    page: &PageSettings,
    runs: Arc<Runs>,
    ready: impl Future<Output = ()>,
) -> anyhow::Result<(u8, Option<RunResult>)> {
    let server = web::serve(page.web.clone(), runs.clone()).await?;
    let pushes = super::push::start(settings, {
        let runs = runs.clone();
        Arc::new(move |start, now| {
            Some(runs.with_exposition(|numbers| numbers.otlp_request(start, now)))
        })
    });
    println!("chorus: the page is on {}", server.url());
    println!(
        "  scenario {} with {} flow(s); enter users and a spawn rate and press Start",
        settings.scenario.source.display(),
        settings.scenario.flows.len()
    );
    if page.autostart {
        if !settings.load_given {
            anyhow::bail!("--autostart needs the load: -u and -r (or --stages, or --arrival-rate)");
        }
        ready.await;
        runs.start_plan(settings.plan.clone())
            .map_err(anyhow::Error::msg)?;
        println!("  started at once (--autostart)");
    }

    let exit_code = || runs.last_result().map_or(EXIT_OK, |r| r.exit_code());
    loop {
        tokio::select! {
            _ = runs.wait_finished() => {
                match page.autoquit {
                    Some(after) => {
                        println!("the run ended; closing the page in {} s (--autoquit)", after.as_secs());
                        tokio::time::sleep(after).await;
                        break;
                    }
                    // Keep the page up to look at the result or start another run.
                    None => {
                        if wait_for_ctrl_c(&runs).await {
                            break;
                        }
                    }
                }
            }
            signalled = interrupted() => {
                signalled.context("could not listen for Ctrl-C")?;
                if runs.is_running() {
                    eprintln!("stopping: {GRACEFUL} (Ctrl-C again to stop at once)");
                    runs.stop_gracefully();
                    tokio::select! {
                        _ = runs.wait_finished() => {},
                        _ = interrupted() => {
                            eprintln!("stopping now");
                            runs.stop_now();
                            runs.wait_finished().await;
                        }
                    }
                }
                break;
            }
        }
    }
    server.shutdown().await;
    super::push::finish(pushes, runs.last_result().as_ref()).await;
    Ok((exit_code(), runs.last_result()))
}

/// After a run: waits for Ctrl-C while a new run may be started from the page. True when the
/// user asked to quit with no run going.
async fn wait_for_ctrl_c(runs: &Arc<Runs>) -> bool {
    loop {
        if interrupted().await.is_err() {
            return true;
        }
        if !runs.is_running() {
            return true;
        }
        eprintln!("stopping: {GRACEFUL} (Ctrl-C again to stop at once)");
        runs.stop_gracefully();
    }
}

/// Ctrl-C, or (on Unix) SIGTERM or SIGHUP: what `kubectl delete` and `docker stop` send.
async fn interrupted() -> std::io::Result<()> {
    Interrupts::listen()?.next().await;
    Ok(())
}
