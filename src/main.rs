//! The `chorus` binary: parse the command line, run it, map the outcome to an exit code.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = chorus::cli::Cli::parse();
    match chorus::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            // Never a panic, even with stderr closed: the exit status still says it.
            let _ = writeln!(
                std::io::stderr(),
                "error: {}",
                chorus::cli::error_text(&err)
            );
            chorus::cli::EXIT_ERROR.into()
        }
    }
}
