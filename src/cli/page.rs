//! `chorus run` without `--headless`: serve the page, optionally start at once
//! (`--autostart`) and quit after the run (`--autoquit`), and write the reports of the last run
//! on the way out. Ctrl-C (or SIGTERM, SIGHUP) stops a run gracefully, a second one at once; with no
//! run going, it closes the page.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::args::RunArgs;
use super::{EXIT_OK, EXIT_THRESHOLDS};
use crate::engine::{EngineOptions, Plan};
use crate::scenario::Scenario;
use crate::web::{self, Runs, WebConfig};

pub(super) async fn run_with_page(
    args: &RunArgs,
    scenario: Arc<Scenario>,
    options: EngineOptions,
    plan: Option<Plan>,
) -> anyhow::Result<(ExitCode, Option<crate::stats::RunResult>)> {
    let runs = Runs::new(scenario.clone(), options);
    serve_runs(args, &scenario, runs, plan, std::future::ready(())).await
}

/// Serves the page for `runs` (on this machine's engine or a cluster's workers) until the
/// user is done; `--autostart` starts `plan` once `ready` has completed.
pub(super) async fn serve_runs(
    args: &RunArgs,
    scenario: &Arc<Scenario>,
    runs: Arc<Runs>,
    plan: Option<Plan>,
    ready: impl std::future::Future<Output = ()>,
) -> anyhow::Result<(ExitCode, Option<crate::stats::RunResult>)> {
    let ip: IpAddr = match args.web.web_host.as_str() {
        "localhost" => IpAddr::from([127, 0, 0, 1]),
        text => text.parse().with_context(|| {
            format!("--web-host {text:?}: expected an IP address such as 127.0.0.1")
        })?,
    };
    let addr = SocketAddr::new(ip, args.web.web_port);
    let auth = match &args.web.web_auth {
        Some(text) => match text.split_once(':') {
            Some((user, pass)) if !user.is_empty() => Some((user.to_owned(), pass.to_owned())),
            _ => bail!("--web-auth expects USER:PASS, got {text:?}"),
        },
        None => None,
    };
    if !web::is_loopback(&addr) && auth.is_none() {
        eprintln!(
            "warning: the page on {addr} can be reached from other machines and has no password; \
             anyone who can reach it can start load from this machine (add --web-auth USER:PASS)"
        );
    }
    let server = web::serve(WebConfig { addr, auth }, runs.clone()).await?;
    println!("chorus: the page is on {}", server.url());
    println!(
        "  scenario {} with {} flow(s); enter users and a spawn rate and press Start",
        scenario.source.display(),
        scenario.flows.len()
    );
    if args.autostart {
        let plan =
            plan.context("--autostart needs the load: -u and -r (or --stages, or --arrival-rate)")?;
        ready.await;
        runs.start_plan(plan).map_err(anyhow::Error::msg)?;
        println!("  started at once (--autostart)");
    }

    let code = loop {
        tokio::select! {
            code = runs.wait_finished() => {
                match args.autoquit {
                    Some(seconds) => {
                        println!("the run ended; closing the page in {seconds} s (--autoquit)");
                        tokio::time::sleep(Duration::from_secs(seconds)).await;
                        break code;
                    }
                    // Keep the page up to look at the result or start another run.
                    None => {
                        if wait_for_ctrl_c(&runs).await {
                            break runs.last_result().map_or(EXIT_OK, |r| if r.passed() { EXIT_OK } else { EXIT_THRESHOLDS });
                        }
                    }
                }
            }
            signalled = interrupted() => {
                signalled.context("could not listen for Ctrl-C")?;
                if runs.is_running() {
                    eprintln!("stopping: {} (Ctrl-C again to stop at once)", super::signals::GRACEFUL);
                    runs.stop_gracefully();
                    tokio::select! {
                        code = runs.wait_finished() => break code,
                        _ = interrupted() => {
                            eprintln!("stopping now");
                            runs.stop_now();
                            break runs.wait_finished().await;
                        }
                    }
                }
                break runs.last_result().map_or(EXIT_OK, |r| if r.passed() { EXIT_OK } else { EXIT_THRESHOLDS });
            }
        }
    };
    server.shutdown().await;
    Ok((ExitCode::from(code), runs.last_result()))
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
        eprintln!(
            "stopping: {} (Ctrl-C again to stop at once)",
            super::signals::GRACEFUL
        );
        runs.stop_gracefully();
    }
}

/// Ctrl-C, or (on Unix) SIGTERM or SIGHUP: what `kubectl delete` and `docker stop` send.
async fn interrupted() -> std::io::Result<()> {
    super::signals::Interrupts::listen()?.next().await;
    Ok(())
}
