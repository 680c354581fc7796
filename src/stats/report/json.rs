//! `--json FILE`: the complete result, versioned (`"format": "chorus-result", "version": 1`),
//! with every histogram serialised (base64 HDR V2 deflate). [`RunResult::from_json`] reads it.

use std::io;
use std::path::Path;

use crate::stats::RunResult;

/// The JSON text of `result`.
pub fn to_string(result: &RunResult) -> String {
    result.to_json()
}

/// Writes `result` as JSON to `path`.
pub fn write(result: &RunResult, path: &Path) -> io::Result<()> {
    std::fs::write(path, to_string(result))
}
