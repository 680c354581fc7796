//! The command line: clap definitions and the mapping of each subcommand onto library calls.
//! Nothing else lives here: no protocol, no measurement, no report format.

mod args;
mod check;
mod compare;
mod convert;
mod demo;
mod headless;
mod outputs;
mod page;
mod parse;
mod processes;
mod provision;
mod push;
mod record;
mod run;
mod settings;
mod signals;
mod worker;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

pub use args::{
    ConvertArgs, DemoArgs, LoadArgs, OutputArgs, ProvisionArgs, RecordArgs, RunArgs, WebArgs,
};
pub use args::{MasterArgs, WorkerArgs};
pub use compare::CompareArgs;
pub use parse::{Processes, RunTime, parse_data_source, parse_seed};

/// The run finished and nothing went wrong.
pub const EXIT_OK: u8 = crate::stats::EXIT_PASSED;
/// The run finished but a threshold was crossed (or, for `demo --headless`, a request failed).
pub const EXIT_THRESHOLDS: u8 = crate::stats::EXIT_FAILED;
/// chorus could not do what it was asked: bad input, a port in use, an unwritable file.
pub const EXIT_ERROR: u8 = 2;

/// Record real user sessions, turn them into readable scenarios, replay them with thousands of
/// virtual users.
#[derive(Debug, Parser)]
#[command(name = "chorus", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Record what a browser does through a proxy into a HAR capture
    Record(RecordArgs),
    /// Turn a HAR capture into a readable, runnable scenario
    Convert(ConvertArgs),
    /// Create the test accounts a scenario needs by running a setup scenario once
    Provision(ProvisionArgs),
    /// Run a scenario with many virtual users (web page on 127.0.0.1:8089, or --headless)
    Run(Box<RunArgs>),
    /// The whole workflow against the built-in demo application
    Demo(Box<DemoArgs>),
    /// Run users for a master (`chorus run --master`); needs nothing but this binary
    Worker(WorkerArgs),
    /// Compare results (`run --json`): per request faster, slower or no significant change;
    /// exit 1 on a regression
    Compare(CompareArgs),
}

/// An error as one line: each cause after the context it came with, except a cause whose
/// text the line already holds (an error that prints its source and also returns it as its
/// `source()` would otherwise be said twice: `X: X`).
pub fn error_text(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let cause = cause.to_string();
        if cause.is_empty() || text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

/// Runs one parsed command line and says which exit code it ends with.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    init_tracing();
    // Each user needs a socket; the soft limit is often far below what the system allows.
    crate::engine::limits::raise_open_files_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    runtime.block_on(dispatch(cli.command))
}

async fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Demo(args) => demo::demo(*args).await,
        Command::Record(args) => record::record(args).await,
        Command::Convert(args) => convert::convert(args).await,
        Command::Provision(args) => provision::provision(args).await,
        Command::Run(args) => run::run(*args).await,
        Command::Worker(args) => worker::worker(args).await,
        Command::Compare(args) => compare::compare(args),
    }
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_max_level(tracing::Level::WARN)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn errors_are_said_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("could not create out.har: {0}")]
        struct Create(#[source] std::io::Error);
        let io = std::io::Error::new(std::io::ErrorKind::IsADirectory, "Is a directory");
        let err = anyhow::Error::new(Create(io)).context("recording");
        assert_eq!(
            error_text(&err),
            "recording: could not create out.har: Is a directory"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_text(&plain), "outer: inner");
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn locust_style_command_line_parses() {
        let cli = Cli::try_parse_from([
            "chorus",
            "run",
            "scenario.yaml",
            "--headless",
            "-u",
            "500",
            "-r",
            "50",
            "-t",
            "10m",
            "--csv",
            "out/run",
            "--html",
            "out/run.html",
        ])
        .unwrap();
        let Command::Run(run) = cli.command else {
            panic!("expected run")
        };
        assert!(run.headless);
        assert_eq!(run.load.users, Some(500));
        assert_eq!(run.load.spawn_rate, Some(50.0));
        assert_eq!(
            run.load.run_time(),
            Some(std::time::Duration::from_secs(600))
        );
    }
}
