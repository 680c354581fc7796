//! The `chorus` binary: parse the command line, run it, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = chorus::cli::Cli::parse();
    match chorus::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", chorus::cli::error_text(&err));
            chorus::cli::EXIT_ERROR.into()
        }
    }
}
