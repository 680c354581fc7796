//! `chorus provision`: maps its arguments onto library calls.

use std::process::ExitCode;

use super::args::*;

pub(super) async fn provision(_args: ProvisionArgs) -> anyhow::Result<ExitCode> {
    super::not_yet("provision")
}
