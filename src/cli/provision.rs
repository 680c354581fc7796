//! `chorus provision`: maps its arguments onto library calls, shows the progress and writes
//! the CSV. Ctrl-C (or SIGTERM, SIGHUP) stops after the requests in flight; the rows so far are
//! written, the output says the job was interrupted, and the exit status is 1.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use indicatif::{ProgressBar, ProgressStyle};

use super::args::*;
use super::signals::Interrupts;
use super::{EXIT_OK, EXIT_THRESHOLDS};
use crate::provision::{self, Provisioned, Provisioning};
use crate::scenario::{self, LoadOptions};

pub(super) async fn provision(args: ProvisionArgs) -> anyhow::Result<ExitCode> {
    let (provisioned, interrupted) = provision_job(&args).await?;
    Ok(if provisioned.failed() == 0 && !interrupted {
        EXIT_OK.into()
    } else {
        EXIT_THRESHOLDS.into()
    })
}

/// Runs the file, prints the progress, the failures and the counts, writes the CSV; returns
/// what the run produced.
pub(super) async fn provision_file(args: &ProvisionArgs) -> anyhow::Result<Provisioned> {
    Ok(provision_job(args).await?.0)
}

/// [`provision_file`], and whether a stop signal cut the job short.
async fn provision_job(args: &ProvisionArgs) -> anyhow::Result<(Provisioned, bool)> {
    if args.concurrency == 0 {
        bail!("--concurrency 0: give at least 1 (requests in flight at once)");
    }
    let mut vars = vec![("concurrency".to_owned(), args.concurrency.to_string())];
    for text in &args.vars {
        let (name, value) = super::parse::parse_var(text)
            .map_err(|err| anyhow::anyhow!("--var {text:?}: {err}"))?;
        vars.retain(|(known, _)| *known != name);
        vars.push((name, value));
    }
    let options = LoadOptions {
        host_override: args.host.clone(),
        vars,
        ..LoadOptions::default()
    };
    let scenario = scenario::load(&args.file, &options)?;
    provision::check_setup_file(&scenario).map_err(anyhow::Error::msg)?;
    // Before any account is made: where they go must be writable, and not an input.
    let mut inputs = super::outputs::run_inputs(Some(&args.file), &scenario, None);
    inputs[0].what = "the provisioning file";
    super::outputs::check(&[super::outputs::Output::new("-o", &args.output)], &inputs)?;
    let bar = progress_bar(provision::expected_rows(&scenario));
    let listening = Interrupts::listen().context("could not listen for Ctrl-C and SIGTERM")?;
    let provisioning = Provisioning::start(Arc::new(scenario), args.insecure)?;
    let control = provisioning.control();
    let (interrupts, interrupted) = listening.on_stop(
        "the requests in flight finish, then the rows so far are written",
        {
            let control = control.clone();
            move || control.stop()
        },
        move || control.stop_now(),
    );
    let provisioned = provisioning
        .finish(|tally, requests, failed| {
            bar.set_position(tally.rows);
            bar.set_message(format!("{} · {requests} request(s)", tally.summary(failed)));
        })
        .await;
    bar.finish_and_clear();
    interrupts.abort();
    let interrupted = interrupted.get();

    let failed = provisioned.failed();
    for line in failure_lines(&provisioned.result) {
        eprintln!("{line}");
    }
    println!("{}", provisioned.tally.summary(failed));
    let requests = provisioned.result.total.requests;
    let seconds = provisioned.result.duration_secs();
    if interrupted {
        println!(
            "INTERRUPTED: the job was stopped before it finished; the rows above are only those made or found so far"
        );
    }
    // An interrupted job's rows are only part of the accounts: a file from an earlier, whole
    // run is worth more, so it is kept and the partial rows go beside it.
    let keep_existing = interrupted && args.output.exists();
    let output = if keep_existing {
        let mut name = args.output.clone().into_os_string();
        name.push(".interrupted");
        std::path::PathBuf::from(name)
    } else {
        args.output.clone()
    };
    if provisioned.rows.is_empty() {
        // An earlier, good CSV is worth more than an empty one.
        println!(
            "{requests} request(s) in {seconds:.1} s; no rows, so {} was left as it was",
            args.output.display()
        );
    } else {
        let text = provision::csv_text(&provisioned.rows).context("could not format the CSV")?;
        provision::write_atomically(&output, &text).with_context(|| {
            format!(
                "could not write {} (is the disk full, or the folder missing?); the accounts are made: running the same command again finds them and writes the file",
                output.display()
            )
        })?;
        println!(
            "{requests} request(s) in {seconds:.1} s; wrote {}",
            output.display()
        );
        if keep_existing {
            println!(
                "{} was left as it was (the rows of this interrupted job are in {})",
                args.output.display(),
                output.display()
            );
        }
    }
    if interrupted {
        println!("Run the same command again to finish: what exists is found, not created twice.");
    } else if failed > 0 {
        println!(
            "Something failed (above); fix it and run the same command again: what exists is found, not created twice."
        );
    }
    Ok((provisioned, interrupted))
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
