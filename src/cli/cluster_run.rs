//! `chorus run --master`: maps the run's arguments onto a `cluster::Master`, prints what the
//! workers do and a live table, and writes the same reports as a single-machine run. The
//! first Ctrl-C stops gracefully, the second at once; the reports are written either way.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::args::RunArgs;
use super::run::write_reports;
use super::{EXIT_OK, EXIT_THRESHOLDS};
use crate::cluster::bundle::{self, Bundle};
use crate::cluster::{Master, MasterConfig};
use crate::engine::{Load, Plan};
use crate::scenario::Scenario;
use crate::stats::{self, RunMeta, report};

/// How often the live table is printed.
const LIVE_EVERY: Duration = Duration::from_secs(5);

pub(super) async fn run_master(
    args: &RunArgs,
    scenario: &Arc<Scenario>,
    plan: Plan,
) -> anyhow::Result<ExitCode> {
    if !args.headless {
        bail!(
            "chorus run --master serves no web page yet: add --headless (with -u/-r/-t or --stages \
             and --expect-workers N)"
        );
    }
    let cluster = &args.cluster;
    scenario.check_capacity(plan.peak_users())?;
    let bundle = match &args.scenario {
        Some(path) => {
            Bundle::from_file(path, scenario, args.load.host.clone()).map_err(anyhow::Error::msg)?
        }
        None => Bundle::from_urls(&args.url, args.think),
    };
    let mut expressions = args.thresholds.clone();
    expressions.extend(scenario.thresholds.iter().cloned());
    let thresholds = stats::thresholds::parse_all(&expressions).map_err(anyhow::Error::msg)?;
    let spawn_rate = match plan.stages().first().map(|stage| stage.load) {
        Some(Load::Users { spawn_rate, .. }) => Some(spawn_rate),
        _ => None,
    };
    let quiet = args.quiet;
    let config = MasterConfig {
        bind: cluster.master_bind,
        token: cluster.cluster_token.clone().filter(|t| !t.is_empty()),
        expect_workers: cluster.expect_workers.max(1),
        bundle,
        unique_rows: bundle::unique_rows(scenario),
        stop_timeout: args.stop_timeout,
        accept_invalid_certs: args.insecure,
        meta: RunMeta {
            scenario: scenario.source.display().to_string(),
            host: scenario.host.as_ref().map(|host| host.to_string()),
            start_unix_ms: 0,
            end_unix_ms: 0,
            users: plan.peak_users(),
            spawn_rate,
            thresholds,
        },
        plan,
        notify: Arc::new(|line: &str| eprintln!("chorus master: {line}")),
    };
    let master = Master::bind(config)
        .await
        .context("could not start the master")?;
    eprintln!(
        "chorus master: workers join with: chorus worker --master {}",
        master.local_addr()
    );
    let control = master.control();
    let interrupts = tokio::spawn({
        let control = control.clone();
        async move {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            eprintln!("stopping: letting requests in flight finish (Ctrl-C again to stop at once)");
            control.stop();
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("stopping now");
                control.stop_now();
            }
        }
    });
    let live = (!quiet).then(|| {
        let control = control.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(LIVE_EVERY);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let status = control.status();
                if status.state.is_none() {
                    continue;
                }
                let workers: Vec<String> = status
                    .workers
                    .iter()
                    .map(|w| format!("{} {} ({} users)", w.name, w.state, w.users))
                    .collect();
                println!("{} users on {}", status.users, workers.join(", "));
                if !status.table.is_empty() {
                    println!("{}", status.table);
                }
            }
        })
    });
    let result = master.run().await;
    interrupts.abort();
    if let Some(live) = live {
        live.abort();
    }
    println!("{}", report::summary(&result));
    write_reports(&args.output, &result)?;
    Ok(if result.passed() {
        EXIT_OK.into()
    } else {
        EXIT_THRESHOLDS.into()
    })
}
