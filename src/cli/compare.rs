//! `chorus compare` and `chorus run --baseline`: read the results, call `crate::compare`, print
//! and write the reports, and map regressions to exit status 1.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use super::outputs::{self, Input, Output};
use super::{EXIT_OK, EXIT_THRESHOLDS};
use crate::compare::{self, Limits, Metric, Pooled, gate, render};
use crate::stats::{self, RunResult};

#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// The results (`chorus run --json FILE`) to compare: BASE.json NEW.json, or several
    /// runs a side, pooled: BASE1.json BASE2.json -- NEW1.json NEW2.json
    #[arg(required = true, value_name = "BASE.json")]
    pub base: Vec<PathBuf>,
    /// The new run(s), after `--`
    #[arg(last = true, value_name = "NEW.json")]
    pub new: Vec<PathBuf>,
    /// Exit 1 when a latency is significantly slower by more than this, METRIC=PERCENT with
    /// METRIC one of p50, p90, p95, p99, mean, e.g. p95=10% (repeatable) [default without this
    /// and --max-failure-rate-increase: any "slower" verdict at p95, any "more failures"]
    #[arg(long = "max-slowdown", value_name = "METRIC=PERCENT", value_parser = gate::parse_slowdown)]
    pub max_slowdown: Vec<(Metric, f64)>,
    /// Exit 1 when a failure rate is significantly higher by more than this many percentage
    /// points, e.g. 0.5%
    #[arg(long = "max-failure-rate-increase", value_name = "POINTS%", value_parser = gate::parse_failure_rate_increase)]
    pub max_failure_rate_increase: Option<f64>,
    /// The smallest change that counts: a smaller one, however significant, is "no
    /// significant change"
    #[arg(long = "min-effect", value_name = "PERCENT", default_value = "5%", value_parser = gate::parse_min_effect)]
    pub min_effect: f64,
    /// A threshold the new run must hold, as in `chorus run --threshold`, e.g. 'p95<300ms'
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,
    /// Write the comparison as a Markdown table (for CI comments and job summaries)
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Write JUnit XML: one test case per request
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a page with the verdicts and each request's latency percentile curves
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// `BASE NEW`, or `BASE... -- NEW...`.
fn sides(args: &CompareArgs) -> anyhow::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    if !args.new.is_empty() {
        return Ok((args.base.clone(), args.new.clone()));
    }
    match args.base.as_slice() {
        [base, new] => Ok((vec![base.clone()], vec![new.clone()])),
        files => anyhow::bail!(
            "{} result file(s) given without `--`: give BASE.json NEW.json, or several runs a side as BASE1.json BASE2.json -- NEW1.json NEW2.json",
            files.len()
        ),
    }
}

/// Reads and pools the result files of one side.
pub(super) fn read_side(files: &[PathBuf]) -> anyhow::Result<Pooled> {
    let mut runs = Vec::with_capacity(files.len());
    for file in files {
        let result = compare::read_result(file).context("cannot read a result to compare")?;
        runs.push((file.display().to_string(), result));
    }
    Ok(compare::pool(runs))
}

pub(super) fn compare(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let (base_files, new_files) = sides(&args)?;
    let thresholds = stats::thresholds::parse_all(&args.thresholds).map_err(anyhow::Error::msg)?;
    let mut reports = Vec::new();
    for (flag, path) in [
        ("--markdown", &args.markdown),
        ("--junit", &args.junit),
        ("--html", &args.html),
    ] {
        if let Some(path) = path {
            reports.push(Output::new(flag, path));
        }
    }
    let inputs: Vec<Input<'_>> = (base_files.iter().chain(&new_files))
        .map(|path| Input {
            what: "a result being compared",
            path,
        })
        .collect();
    outputs::check(&reports, &inputs)?;

    let base = read_side(&base_files)?;
    let mut new = read_side(&new_files)?;
    new.result.meta.thresholds = thresholds;
    new.result.evaluate_thresholds();
    let comparison = compare::compare(&base, &new, args.min_effect);
    let limits = Limits::new(args.max_slowdown.clone(), args.max_failure_rate_increase);
    let breaches = gate::judge(&comparison, &limits);
    let verdicts = &new.result.verdicts;
    print!("{}", render::text(&comparison, &breaches, verdicts));

    let mut failures = Vec::new();
    let mut write = |path: &Option<PathBuf>, what: &str, text: String| {
        if let Some(path) = path {
            if let Err(err) = std::fs::write(path, text) {
                failures.push(format!(
                    "the {what} {}: {}",
                    path.display(),
                    crate::files::os_error(&err)
                ));
            }
        }
    };
    write(
        &args.markdown,
        "Markdown report",
        render::markdown(&comparison, &breaches, verdicts),
    );
    write(
        &args.junit,
        "JUnit report",
        render::junit(&comparison, &breaches, verdicts),
    );
    write(
        &args.html,
        "HTML report",
        compare::html::render(&comparison, &breaches),
    );
    if !failures.is_empty() {
        anyhow::bail!("could not write {}", failures.join("; "));
    }
    Ok(if breaches.is_empty() && new.result.passed() {
        EXIT_OK.into()
    } else {
        EXIT_THRESHOLDS.into()
    })
}

/// `chorus run --baseline`: the baseline, read before the run so a wrong file stops it
/// before any traffic.
pub(super) fn baseline(files: &[PathBuf]) -> anyhow::Result<Option<Pooled>> {
    if files.is_empty() {
        return Ok(None);
    }
    read_side(files).map(Some).context("--baseline")
}

/// The comparison of a finished run with its baseline, for the terminal (default limits).
pub(super) fn after_run(baseline: &Pooled, result: &RunResult) -> String {
    let new = compare::pool(vec![("this run".to_owned(), result.clone())]);
    let comparison = compare::compare(baseline, &new, compare::DEFAULT_MIN_EFFECT);
    let breaches = gate::judge(&comparison, &Limits::new(Vec::new(), None));
    format!(
        "\nCompared with the baseline\n{}",
        render::text(&comparison, &breaches, &[])
    )
}
