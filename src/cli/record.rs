//! `chorus record`: maps its arguments onto library calls.

use std::process::ExitCode;

use anyhow::Context as _;

use super::args::*;
use super::{EXIT_ERROR, EXIT_OK};
use crate::record::{self, Event, Mode, RecordConfig, RecordOptions};

pub(super) async fn record(args: RecordArgs) -> anyhow::Result<ExitCode> {
    if args.output.is_file() && !args.force {
        anyhow::bail!(
            "-o {}: the file exists, and recording would replace it: give another name, a folder \
             (each recording gets a new file there), or --force to replace it",
            args.output.display()
        );
    }
    let config = RecordConfig::new(RecordOptions {
        target: args.target,
        mitm: args.mitm,
        listen: args.listen,
        output: args.output,
        include: args.include,
        exclude: args.exclude,
        max_body: args.max_body,
        insecure: args.insecure,
        ca_dir: args.ca_dir,
        proxy_auth: args.proxy_auth,
        open: args.i_know_this_is_open,
    })?;
    let mode = config.mode.clone();
    // Listening from before the proxy starts: a Ctrl-C or SIGTERM right after its first
    // message still finishes the capture instead of ending the process.
    let mut interrupts =
        super::signals::Interrupts::listen().context("could not listen for Ctrl-C and SIGTERM")?;
    let recorder = record::start(config).await?;
    let mut events = recorder.subscribe();
    match &mode {
        Mode::Reverse { target } => {
            println!(
                "chorus record: recording {target} through {}",
                recorder.url()
            );
            println!(
                "  open {}/ in your browser and use the application",
                recorder.url()
            );
        }
        Mode::Forward { mitm, .. } => {
            println!("chorus record: forward proxy on {}", recorder.url());
            println!(
                "  set your browser's HTTP and HTTPS proxy to {}{}",
                recorder.local_addr(),
                if *mitm {
                    ""
                } else {
                    " (HTTPS passes through unrecorded; add --mitm to record it)"
                }
            );
        }
    }
    if let Some(ca) = recorder.ca() {
        if ca.created() {
            println!("  created a new CA for HTTPS interception");
        }
        println!("  {}", ca.trust_instructions());
    }
    println!("  writing {}", recorder.capture_path().display());
    println!("  press Ctrl-C to finish the capture");
    // Writing may have failed before anyone listened for events.
    let mut stop_shown = false;
    if let Some(reason) = recorder.summary().recording_error {
        loud(&reason, recorder.capture_path());
        stop_shown = true;
    }
    // Lines are printed a few times a second, each time all that came: waking up for every
    // exchange would cost the proxy's core a context switch per exchange.
    let mut tick = tokio::time::interval(PRINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let printed = print_waiting(&mut events);
                if let Some(reason) = printed.stopped {
                    if !std::mem::replace(&mut stop_shown, true) {
                        loud(&reason, recorder.capture_path());
                    }
                }
                if printed.closed {
                    break;
                }
            }
            _ = interrupts.next() => break,
        }
    }
    let summary = recorder.shutdown().await;
    // Events that arrived while finishing.
    while let Ok(event) = events.try_recv() {
        match event {
            Event::Exchange { line } => println!("{line}"),
            Event::RecordingStopped { reason } => {
                if !std::mem::replace(&mut stop_shown, true) {
                    loud(&reason, &summary.path);
                }
            }
        }
    }
    println!();
    println!(
        "recorded {} exchanges with {} host{} ({}), {} of bodies, in {}",
        summary.exchanges,
        summary.hosts.len(),
        if summary.hosts.len() == 1 { "" } else { "s" },
        summary.hosts.join(", "),
        record::capture::human_bytes(summary.bytes),
        summary.path.display()
    );
    if !summary.tunnelled_hosts.is_empty() {
        println!(
            "HTTPS passed through unrecorded for: {} (record it with --mitm)",
            summary.tunnelled_hosts.join(", ")
        );
    }
    match summary.recording_error {
        Some(reason) => {
            eprintln!("error: the capture is incomplete: recording stopped early: {reason}");
            Ok(EXIT_ERROR.into())
        }
        None => Ok(EXIT_OK.into()),
    }
}

/// How often the terminal shows the exchanges that finished.
const PRINT_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// What [`print_waiting`] met besides lines.
struct Printed {
    /// Recording stopped, for this reason.
    stopped: Option<String>,
    /// The recorder is gone.
    closed: bool,
}

/// Prints the lines of the exchanges waiting, in one write.
fn print_waiting(events: &mut tokio::sync::broadcast::Receiver<Event>) -> Printed {
    use std::io::Write as _;
    use tokio::sync::broadcast::error::TryRecvError;
    let mut text = String::new();
    let mut printed = Printed {
        stopped: None,
        closed: false,
    };
    loop {
        match events.try_recv() {
            Ok(Event::Exchange { line }) => {
                text.push_str(&line);
                text.push('\n');
            }
            Ok(Event::RecordingStopped { reason }) => printed.stopped = Some(reason),
            Err(TryRecvError::Lagged(n)) => {
                text.push_str(&format!("({n} exchanges not shown)\n"));
            }
            Err(TryRecvError::Closed) => {
                printed.closed = true;
                break;
            }
            Err(TryRecvError::Empty) => break,
        }
    }
    if !text.is_empty() {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
    }
    printed
}

fn loud(reason: &str, path: &std::path::Path) {
    eprintln!();
    eprintln!("!!! RECORDING STOPPED: {reason}");
    eprintln!(
        "!!! the proxy keeps forwarding, but nothing more is written to {}",
        path.display()
    );
    eprintln!();
}
