//! `chorus run --master`: maps the run's arguments onto a `cluster::Master`, prints what the
//! workers do and a live table, and writes the same reports as a single-machine run. The
//! first Ctrl-C (or SIGTERM, SIGHUP) stops gracefully, the second at once; the reports are
//! written either way, and the workers are told to quit.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use super::args::RunArgs;
use super::page;
use super::run::write_reports;
use super::{EXIT_OK, EXIT_THRESHOLDS};
use crate::cluster::bundle::{self, Bundle};
use crate::cluster::{Master, MasterConfig};
use crate::engine::{Load, Plan};
use crate::scenario::Scenario;
use crate::stats::{RunMeta, Threshold, report};
use crate::web::{Runs, WebConfig};

/// How often the live table is printed.
const LIVE_EVERY: Duration = Duration::from_secs(5);

pub(super) async fn run_master(
    args: &RunArgs,
    scenario: &Arc<Scenario>,
    plan: Plan,
    page: Option<WebConfig>,
) -> anyhow::Result<ExitCode> {
    let cluster = &args.cluster;
    scenario.check_capacity(plan.peak_users())?;
    let bundle = match &args.scenario {
        Some(path) => Bundle::from_file(path, scenario, &super::run::load_options(args))
            .map_err(anyhow::Error::msg)?,
        None => Bundle::from_urls(&args.url, args.think),
    };
    let thresholds = super::run::thresholds_of(args, scenario)?;
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
        max_body: args.max_body,
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
        plan: plan.clone(),
        notify: Arc::new(|line: &str| eprintln!("chorus master: {line}")),
    };
    let page_plan = plan;
    let master = Master::bind(config)
        .await
        .context("could not start the master")?;
    eprintln!(
        "chorus master: workers join with: chorus worker --master {}",
        master.local_addr()
    );
    if let Some(page) = page {
        return with_page(
            args,
            page,
            scenario,
            master,
            super::run::thresholds_of(args, scenario)?,
            page_plan,
        )
        .await;
    }
    let control = master.control();
    let listening =
        super::signals::Interrupts::listen().context("could not listen for Ctrl-C and SIGTERM")?;
    let (interrupts, _) = listening.on_stop(
        super::signals::GRACEFUL,
        {
            let control = control.clone();
            move || control.stop()
        },
        {
            let control = control.clone();
            move || control.stop_now()
        },
    );
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

/// `chorus run --master` without `--headless`: the page starts, steers and stops runs on the
/// workers; the reports of the last run are written on the way out, and the workers are told
/// to quit.
async fn with_page(
    args: &RunArgs,
    page: WebConfig,
    scenario: &Arc<Scenario>,
    master: Master,
    thresholds: Vec<Threshold>,
    plan: Plan,
) -> anyhow::Result<ExitCode> {
    let control = master.control();
    let serving = tokio::spawn(master.serve());
    let options = super::run::engine_options(args, thresholds);
    let runs = Runs::on_cluster(scenario.clone(), options, control.clone());
    let plan = (args.load.users.is_some() || args.stages.is_some()).then_some(plan);
    let expect = args.cluster.expect_workers.max(1);
    let ready = {
        let control = control.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tick.tick().await;
                if control.status().ready_workers() >= expect {
                    break;
                }
            }
        }
    };
    let served = page::serve_runs(args, page, scenario, runs, plan, ready).await;
    control.quit();
    let _ = serving.await;
    let (code, result) = served?;
    if let Some(result) = &result {
        println!("{}", report::summary(result));
        write_reports(&args.output, result)?;
    }
    Ok(code)
}
