//! Bad input handled once, at the edge (issue 14's reliability report, rows 3, 11, 16-20, 23-33,
//! 48-52, 58-59): every case exits 2 (or gets a 400) with one message that names the flag or
//! `file:line:col: field` and what is allowed; never a panic, a hang or a lost file.

mod durations;
mod files;
mod outputs;
mod scenario_limits;

use std::path::Path;
use std::process::Output;

use crate::util::chorus;

/// Runs chorus and returns (exit status, stderr), failing on a panic or an abort.
pub(crate) fn run(args: &[&str], dir: &Path) -> (Option<i32>, String) {
    let output: Output = chorus(args, dir);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !stderr.contains("panicked") && !stderr.contains("overflow"),
        "chorus {args:?} panicked:\n{stderr}"
    );
    (output.status.code(), stderr)
}

/// Asserts exit status 2 and exactly one `error:` line, which contains `expected`.
#[track_caller]
pub(crate) fn refused(args: &[&str], dir: &Path, expected: &str) {
    let (status, stderr) = run(args, dir);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("error:"))
        .collect();
    assert_eq!(status, Some(2), "chorus {args:?}:\n{stderr}");
    assert_eq!(
        errors.len(),
        1,
        "chorus {args:?}: one error line:\n{stderr}"
    );
    assert!(
        errors[0].contains(expected),
        "chorus {args:?}:\nexpected the error to contain\n  {expected}\ngot\n  {}",
        errors[0]
    );
}
