//! `chorus run` without `--headless`: serve the page, optionally start at once
//! (`--autostart`) and quit after the run (`--autoquit`), and write the reports of the last run
//! on the way out. Ctrl-C (or SIGTERM, SIGHUP) stops a run gracefully, a second one at once; with no
//! run going, it closes the page.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::args::{RunArgs, WebArgs};
use super::{EXIT_OK, EXIT_THRESHOLDS};
use crate::engine::{EngineOptions, Plan};
use crate::scenario::Scenario;
use crate::web::{self, Runs, WebConfig};

pub(super) async fn run_with_page(
    args: &RunArgs,
    page: WebConfig,
    scenario: Arc<Scenario>,
    options: EngineOptions,
    plan: Option<Plan>,
) -> anyhow::Result<(ExitCode, Option<crate::stats::RunResult>)> {
    let runs = Runs::new(scenario.clone(), options);
    serve_runs(args, page, &scenario, runs, plan, std::future::ready(())).await
}

/// Where the page listens, its password and the host names it answers to, from `--web-host`,
/// `--web-port`, `--web-auth` and `--web-allowed-host`. A page other machines can reach needs
/// `--web-auth` (or `--i-know-this-is-open`): anyone who reaches it can send load from here.
pub(super) async fn web_config(flags: &WebArgs) -> anyhow::Result<WebConfig> {
    let text = flags.web_host.trim();
    let mut allowed_hosts = flags.web_allowed_host.clone();
    let ip: IpAddr = match text {
        "localhost" => IpAddr::from([127, 0, 0, 1]),
        text => match text.trim_start_matches('[').trim_end_matches(']').parse() {
            Ok(ip) => ip,
            Err(_) => {
                let found = tokio::net::lookup_host((text, flags.web_port))
                    .await
                    .ok()
                    .and_then(|mut addrs| addrs.next());
                let Some(addr) = found else {
                    bail!(
                        "--web-host {text:?}: not an IP address, and no address was found for \
                         that name; give an address such as 127.0.0.1 or 0.0.0.0"
                    );
                };
                allowed_hosts.push(text.to_owned());
                addr.ip()
            }
        },
    };
    let addr = SocketAddr::new(ip, flags.web_port);
    let auth = match &flags.web_auth {
        Some(text) => match text.split_once(':') {
            Some((user, pass)) if !user.is_empty() && !pass.is_empty() => {
                Some((user.to_owned(), pass.to_owned()))
            }
            _ => bail!("--web-auth expects USER:PASS with neither empty, got {text:?}"),
        },
        None => None,
    };
    if !web::is_loopback(&addr) && auth.is_none() && !flags.i_know_this_is_open {
        bail!(
            "--web-host {text}: the page would be reachable from other machines without a \
             password, and anyone who reaches it can send load from this machine to any host; \
             add --web-auth USER:PASS, or bind to 127.0.0.1 and reach it through an SSH tunnel \
             (ssh -L 8089:127.0.0.1:8089 ...); --i-know-this-is-open serves it open anyway"
        );
    }
    if !web::is_loopback(&addr) && auth.is_none() {
        eprintln!(
            "warning: the page on {addr} can be reached from other machines and has no password \
             (--i-know-this-is-open)"
        );
    }
    Ok(WebConfig {
        addr,
        auth,
        allowed_hosts,
    })
}

/// Serves the page for `runs` (on this machine's engine or a cluster's workers) until the
/// user is done; `--autostart` starts `plan` once `ready` has completed.
pub(super) async fn serve_runs(
    args: &RunArgs,
    page: WebConfig,
    scenario: &Arc<Scenario>,
    runs: Arc<Runs>,
    plan: Option<Plan>,
    ready: impl std::future::Future<Output = ()>,
) -> anyhow::Result<(ExitCode, Option<crate::stats::RunResult>)> {
    let server = web::serve(page, runs.clone()).await?;
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
