//! `--markdown FILE`: a compact table of a run for CI comments and job summaries (GitHub's
//! `$GITHUB_STEP_SUMMARY`, GitLab merge request notes): one line per request, the aggregate,
//! the thresholds.

use std::fmt::Write as _;

use super::format::ms;
use crate::stats::{EntryStats, RunResult, Verdict};

/// The Markdown of `result`.
pub fn for_run(result: &RunResult) -> String {
    let mut out = String::new();
    let verdict = match (result.verdicts.is_empty(), result.passed()) {
        (true, _) => String::new(),
        (false, true) => " — thresholds passed".to_owned(),
        (false, false) => {
            let failed = result.verdicts.iter().filter(|v| !v.passed).count();
            format!(" — **{failed} threshold(s) failed**")
        }
    };
    let title = if result.meta.scenario.is_empty() {
        "chorus run".to_owned()
    } else {
        format!("chorus run: {}", cell(&result.meta.scenario))
    };
    let _ = writeln!(out, "### {title}{verdict}\n");
    let _ = writeln!(
        out,
        "{} requests in {:.1} s, {} failed ({:.2} %), {} users.\n",
        result.total.requests,
        result.duration_secs(),
        result.total.failures,
        result.total.failure_percent(),
        result.meta.users
    );
    out.push_str(
        "| Request | Requests | Failures | req/s | p50 (ms) | p95 (ms) | p99 (ms) | Mean (ms) |\n",
    );
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    let row = |out: &mut String, label: &str, entry: &EntryStats| {
        let latency = |p: f64| {
            if entry.timed() == 0 {
                "–".to_owned()
            } else {
                ms(entry.percentile_us(p) as f64 / 1000.0)
            }
        };
        let _ = writeln!(
            out,
            "| {label} | {} | {} ({:.2} %) | {:.1} | {} | {} | {} | {} |",
            entry.requests,
            entry.failures,
            entry.failure_percent(),
            result.rps(entry),
            latency(50.0),
            latency(95.0),
            latency(99.0),
            if entry.timed() == 0 {
                "–".to_owned()
            } else {
                ms(entry.avg_ms())
            }
        );
    };
    for entry in &result.entries {
        row(
            &mut out,
            &format!("`{} {}`", entry.method, cell(&entry.name)),
            entry,
        );
    }
    row(&mut out, "**Aggregated**", &result.total);
    thresholds_table(&mut out, "Threshold", &result.verdicts);
    out
}

/// The table of `verdicts` (none: no table), its first column headed `heading`.
pub fn thresholds_table(out: &mut String, heading: &str, verdicts: &[Verdict]) {
    if verdicts.is_empty() {
        return;
    }
    let _ = write!(out, "\n| {heading} | Result | Observed |\n|---|---|---|\n");
    for v in verdicts {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            cell(&v.expression),
            if v.passed { "pass" } else { "**FAIL**" },
            cell(&v.observed_text)
        );
    }
}

/// Text safe inside a table cell (and inside backticks): pipes escaped, line breaks and
/// backticks replaced.
pub fn cell(text: &str) -> String {
    text.replace('|', "\\|")
        .replace(['\r', '\n'], " ")
        .replace('`', "'")
}
