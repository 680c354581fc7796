//! `chorus convert`: maps its arguments onto library calls.

use std::process::ExitCode;

use super::args::*;

pub(super) async fn convert(_args: ConvertArgs) -> anyhow::Result<ExitCode> {
    super::not_yet("convert")
}
