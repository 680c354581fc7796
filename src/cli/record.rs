//! `chorus record`: maps its arguments onto library calls.

use std::process::ExitCode;

use super::args::*;

pub(super) async fn record(_args: RecordArgs) -> anyhow::Result<ExitCode> {
    super::not_yet("record")
}
