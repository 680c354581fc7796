//! `--html FILE`: one self-contained page (inline CSS, inline SVG charts; nothing loaded from
//! the network) with the statistics table, failures, exceptions and charts over time.

use std::io;
use std::path::Path;

use crate::stats::RunResult;

/// The page for `result`.
pub fn render(result: &RunResult) -> String {
    let _ = result;
    String::new()
}

/// Writes the page to `path`.
pub fn write(result: &RunResult, path: &Path) -> io::Result<()> {
    std::fs::write(path, render(result))
}
