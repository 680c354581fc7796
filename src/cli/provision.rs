//! `chorus provision`: maps its arguments onto library calls, shows the progress and writes
//! the CSV.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use indicatif::{ProgressBar, ProgressStyle};

use super::args::*;
use super::{EXIT_OK, EXIT_THRESHOLDS};
use crate::provision::{self, Provisioned, Provisioning};
use crate::scenario::{self, LoadOptions};

pub(super) async fn provision(args: ProvisionArgs) -> anyhow::Result<ExitCode> {
    Ok(if provision_file(&args).await?.failed() == 0 {
        EXIT_OK.into()
    } else {
        EXIT_THRESHOLDS.into()
    })
}

/// Runs the file, prints the progress, the failures and the counts, writes the CSV; returns
/// what the run produced.
pub(super) async fn provision_file(args: &ProvisionArgs) -> anyhow::Result<Provisioned> {
    if args.concurrency == 0 {
        bail!("--concurrency 0: give at least 1 (requests in flight at once)");
    }
    let mut vars = vec![("concurrency".to_owned(), args.concurrency.to_string())];
    for text in &args.vars {
        let Some((name, value)) = text.split_once('=') else {
            bail!("--var {text:?}: expected NAME=VALUE, e.g. --var classes=200");
        };
        vars.retain(|(known, _)| known != name.trim());
        vars.push((name.trim().to_owned(), value.to_owned()));
    }
    let options = LoadOptions {
        data_overrides: Vec::new(),
        host_override: args.host.clone(),
        vars,
    };
    let scenario = scenario::load(&args.file, &options)?;
    provision::check_setup_file(&scenario).map_err(anyhow::Error::msg)?;
    let bar = progress_bar(provision::expected_rows(&scenario));
    let provisioning = Provisioning::start(Arc::new(scenario), args.insecure)?;
    let control = provisioning.control();
    let interrupts = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("stopping: requests in flight finish, then the rows so far are written");
            control.stop();
        }
    });
    let provisioned = provisioning
        .finish(|tally, requests, failed| {
            bar.set_position(tally.rows);
            bar.set_message(format!("{} · {requests} request(s)", tally.summary(failed)));
        })
        .await;
    bar.finish_and_clear();
    interrupts.abort();

    let failed = provisioned.failed();
    for line in failure_lines(&provisioned.result) {
        eprintln!("{line}");
    }
    println!("{}", provisioned.tally.summary(failed));
    let requests = provisioned.result.total.requests;
    let seconds = provisioned.result.duration_secs();
    if provisioned.rows.is_empty() {
        // An earlier, good CSV is worth more than an empty one.
        println!(
            "{requests} request(s) in {seconds:.1} s; no rows, so {} was left as it was",
            args.output.display()
        );
    } else {
        let text = provision::csv_text(&provisioned.rows).context("could not format the CSV")?;
        provision::write_atomically(&args.output, &text).with_context(|| {
            format!(
                "could not write {} (is the disk full, or the folder missing?); the accounts are made: running the same command again finds them and writes the file",
                args.output.display()
            )
        })?;
        println!(
            "{requests} request(s) in {seconds:.1} s; wrote {}",
            args.output.display()
        );
    }
    if failed > 0 {
        println!(
            "Something failed (above); fix it and run the same command again: what exists is found, not created twice."
        );
    }
    Ok(provisioned)
}

/// A bar towards the rows the file will emit when that is known, else a spinner; both with
/// the counts so far. (indicatif draws nothing when stderr is not a terminal.)
fn progress_bar(expected_rows: Option<u64>) -> ProgressBar {
    let (bar, template) = match expected_rows {
        Some(rows) => (
            ProgressBar::new(rows),
            "{elapsed_precise} [{wide_bar}] {pos}/{len} rows, eta {eta} · {msg}",
        ),
        None => (
            ProgressBar::new_spinner(),
            "{spinner} {elapsed_precise} {msg}",
        ),
    };
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// One line per request name and failure kind, with the first reason, and one per error.
fn failure_lines(result: &crate::stats::RunResult) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in &result.entries {
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
    for error in &result.errors {
        lines.push(format!("ERROR {}", error.message));
    }
    lines
}
