//! `chorus run`: maps its arguments onto library calls.

use std::process::ExitCode;

use super::args::*;

pub(super) async fn run(_args: RunArgs) -> anyhow::Result<ExitCode> {
    super::not_yet("run")
}
