//! Reading `--json` results for a comparison, and pooling several runs of one side into one
//! result whose histograms are the exact merge of theirs.

use std::path::Path;

use super::SideInfo;
use super::significance;
use crate::stats::{ResultError, RunResult};

/// The largest result file read (a result holds one histogram per request name, each under
/// 200 KiB of base64; a thousand names stay far below this).
pub const MAX_RESULT_BYTES: u64 = 1 << 30;

/// Why a result file could not be read: the file and the reason, as one line.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {why}")]
pub struct ReadError {
    pub file: String,
    pub why: String,
}

/// Reads one result written by `chorus run --json`.
pub fn read_result(path: &Path) -> Result<RunResult, ReadError> {
    let error = |why: String| ReadError {
        file: path.display().to_string(),
        why,
    };
    let bytes = crate::files::read_limited(path, MAX_RESULT_BYTES, "result file")
        .map_err(|err| error(err.to_string()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| error("not UTF-8 text, so not a chorus JSON result".to_owned()))?;
    parse_result(&text).map_err(error)
}

/// Parses a result's text, saying why it is not one (a file that ends early is named so).
pub fn parse_result(text: &str) -> Result<RunResult, String> {
    RunResult::from_json(text).map_err(|err| match &err {
        ResultError::Json { message, .. } if message.contains("EOF while parsing") => format!(
            "{err} (the file ends early: was it cut while being written? write it again with `chorus run --json FILE`)"
        ),
        ResultError::Json { line: 1, column: 1, .. } => {
            format!("{err} (not JSON: give the file `chorus run --json FILE` wrote)")
        }
        _ => err.to_string(),
    })
}

/// Several runs of one side taken as one: counts and histograms added exactly.
#[derive(Debug, Clone)]
pub struct Pooled {
    /// The files, as named on the command line.
    pub files: Vec<String>,
    /// The merge of every run ([`RunResult::merge`]).
    pub result: RunResult,
    /// The runs' durations added (the merged result's span would count the gaps between
    /// them).
    pub seconds: f64,
    /// The request-weighted mean of the runs' design effects (see docs/compare.md).
    pub design_effect: f64,
}

impl Pooled {
    pub(super) fn info(&self) -> SideInfo {
        SideInfo {
            files: self.files.clone(),
            requests: self.result.total.requests,
            seconds: self.seconds,
            design_effect: self.design_effect,
        }
    }
}

/// Pools the runs of one side (at least one) named by their files.
pub fn pool(runs: Vec<(String, RunResult)>) -> Pooled {
    let mut files = Vec::with_capacity(runs.len());
    let mut merged: Option<RunResult> = None;
    let mut seconds = 0.0;
    let (mut weighted, mut weights) = (0.0, 0.0);
    for (file, run) in runs {
        files.push(file);
        seconds += run.duration_secs();
        let weight = run.total.requests.max(1) as f64;
        weighted += significance::design_effect(&run) * weight;
        weights += weight;
        match &mut merged {
            Some(all) => all.merge(&run),
            None => merged = Some(run),
        }
    }
    let result = merged.unwrap_or_else(|| RunResult::empty(Default::default()));
    Pooled {
        files,
        result,
        seconds,
        design_effect: if weights > 0.0 {
            weighted / weights
        } else {
            1.0
        },
    }
}
