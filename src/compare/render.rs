//! A comparison as text: the terminal table ([`text`]), Markdown for CI comments
//! ([`markdown`]) and JUnit XML, one test case per request ([`junit`]).

use std::fmt::Write as _;

use super::gate::Breach;
use super::{Change, Comparison, Metric, Presence, Row, SideInfo, Verdict};
use crate::stats::Verdict as ThresholdVerdict;
use crate::stats::report::format::ms;
use crate::stats::report::junit::{self, Case, Outcome, Suite};
use crate::stats::report::markdown::{self, cell};

/// A value of `metric` with its unit: `12.3 ms`, `410.2/s`, `0.50 %`.
pub fn value(metric: Metric, value: f64) -> String {
    match metric {
        Metric::Throughput => format!("{value:.1}/s"),
        Metric::FailureRate => format!("{value:.2} %"),
        _ => format!("{} ms", ms(value)),
    }
}

/// A change of `metric`: `+12.3 %` (relative), `+0.40 pp` for the failure rate.
pub fn change(metric: Metric, change: f64) -> String {
    match metric {
        Metric::FailureRate => format!("{change:+.2} pp"),
        _ => format!("{:+.1} %", change * 100.0),
    }
}

fn interval(c: &Change) -> String {
    if c.verdict == Verdict::NotEnoughData {
        return String::new();
    }
    format!(
        "{} .. {}",
        change(c.metric, c.low),
        change(c.metric, c.high)
    )
}

/// A confidence in percent with the digits that matter: `99.82`.
pub fn percent(confidence: f64) -> String {
    let text = format!("{:.3}", confidence * 100.0);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn side(info: &SideInfo) -> String {
    let runs = info.files.len();
    format!(
        "{runs} run{} ({}; {} requests in {:.1} s)",
        if runs == 1 { "" } else { "s" },
        info.files.join(", "),
        info.requests,
        info.seconds
    )
}

/// The terminal report: per request a block of metrics, the requests on one side only, and
/// the breaches (or that there are none).
pub fn text(
    comparison: &Comparison,
    breaches: &[Breach],
    thresholds: &[ThresholdVerdict],
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Baseline: {}", side(&comparison.base));
    let _ = writeln!(out, "New:      {}", side(&comparison.new));
    let _ = writeln!(
        out,
        "Verdicts: {} % intervals ({:.0} % that no verdict of the table is a false alarm); changes under {:.1} % (failures: {} percentage points) count as no change",
        percent(comparison.confidence_each),
        super::CONFIDENCE * 100.0,
        comparison.min_effect * 100.0,
        super::MIN_FAILURE_RATE_CHANGE
    );
    for row in comparison
        .all_rows()
        .filter(|r| r.presence == Presence::Both)
    {
        let _ = writeln!(
            out,
            "\n{:<38} {:>11} {:>11} {:>9}  {:<22} verdict",
            row.label(),
            "base",
            "new",
            "change",
            "interval"
        );
        for c in &row.changes {
            let _ = writeln!(
                out,
                "  {:<36} {:>11} {:>11} {:>9}  {:<22} {}",
                c.metric.label(),
                value(c.metric, c.base),
                value(c.metric, c.new),
                change(c.metric, c.change),
                interval(c),
                c.verdict.word(c.metric)
            );
        }
    }
    lonely(
        &mut out,
        comparison,
        Presence::Gone,
        "Gone (only in the baseline)",
    );
    lonely(
        &mut out,
        comparison,
        Presence::New,
        "New (only in the new run)",
    );
    if !thresholds.is_empty() {
        let _ = writeln!(out, "\nThresholds (on the new run)");
        for v in thresholds {
            let _ = writeln!(
                out,
                "{}  {}  (observed {})",
                if v.passed { "PASS" } else { "FAIL" },
                v.expression,
                v.observed_text
            );
        }
    }
    if breaches.is_empty() {
        let _ = writeln!(out, "\nNo regression past the limits.");
    } else {
        let _ = writeln!(out, "\nRegressions past the limits:");
        for breach in breaches {
            let _ = writeln!(out, "  {}: {}", breach.request, breach.text);
        }
    }
    out
}

fn lonely(out: &mut String, comparison: &Comparison, presence: Presence, title: &str) {
    let rows: Vec<&Row> = (comparison.rows.iter())
        .filter(|r| r.presence == presence)
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{title}:");
    for row in rows {
        let _ = writeln!(
            out,
            "  {} ({} requests)",
            row.label(),
            row.base_requests.max(row.new_requests)
        );
    }
}

/// The Markdown report: one table line per request, each cell `base → new change verdict`.
pub fn markdown(
    comparison: &Comparison,
    breaches: &[Breach],
    thresholds: &[ThresholdVerdict],
) -> String {
    let mut out = String::new();
    let failed_thresholds = thresholds.iter().filter(|v| !v.passed).count();
    let headline = match (breaches.len(), failed_thresholds) {
        (0, 0) => "no regression".to_owned(),
        (b, 0) => format!("**{b} regression(s)**"),
        (0, t) => format!("**{t} threshold(s) failed**"),
        (b, t) => format!("**{b} regression(s), {t} threshold(s) failed**"),
    };
    let _ = writeln!(out, "### chorus compare: {headline}\n");
    let _ = writeln!(
        out,
        "Baseline: {}. New: {}. Changes under {:.1} % count as no change.\n",
        cell(&side(&comparison.base)),
        cell(&side(&comparison.new)),
        comparison.min_effect * 100.0
    );
    out.push_str("| Request |");
    for metric in Metric::ALL {
        let _ = write!(out, " {} |", metric.label());
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(Metric::ALL.len()));
    out.push('\n');
    for row in comparison.all_rows() {
        let label = if row.method.is_empty() {
            format!("**{}**", cell(&row.name))
        } else {
            format!("`{}`", cell(&row.label()))
        };
        let _ = write!(out, "| {label} |");
        match row.presence {
            Presence::Both => {
                for c in &row.changes {
                    let verdict = match c.verdict {
                        Verdict::Worse => format!(" **{}**", c.verdict.word(c.metric)),
                        Verdict::Better => format!(" {}", c.verdict.word(c.metric)),
                        _ => String::new(),
                    };
                    let _ = write!(
                        out,
                        " {} → {} {}{verdict} |",
                        value(c.metric, c.base),
                        value(c.metric, c.new),
                        change(c.metric, c.change)
                    );
                }
            }
            Presence::Gone => {
                let _ = write!(out, " gone: only in the baseline |{}", " |".repeat(6));
            }
            Presence::New => {
                let _ = write!(out, " new: only in the new run |{}", " |".repeat(6));
            }
        }
        out.push('\n');
    }
    if !breaches.is_empty() {
        out.push_str("\nRegressions past the limits:\n\n");
        for breach in breaches {
            let _ = writeln!(out, "- `{}`: {}", cell(&breach.request), breach.text);
        }
    }
    markdown::thresholds_table(&mut out, "Threshold (new run)", thresholds);
    out
}

/// JUnit XML: one test case per request (failed when it has a breach, skipped when it is on
/// one side only), the aggregate, and one per threshold.
pub fn junit(
    comparison: &Comparison,
    breaches: &[Breach],
    thresholds: &[ThresholdVerdict],
) -> String {
    let mut cases = Vec::new();
    for row in comparison.all_rows() {
        let label = row.label();
        let mine: Vec<&Breach> = breaches.iter().filter(|b| b.request == label).collect();
        let output = (row.changes.iter())
            .map(|c| {
                format!(
                    "{}: {} -> {} ({}; {})",
                    c.metric.label(),
                    value(c.metric, c.base),
                    value(c.metric, c.new),
                    change(c.metric, c.change),
                    c.verdict.word(c.metric)
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        let outcome = match row.presence {
            Presence::Gone => Outcome::Skipped {
                message: "only in the baseline".to_owned(),
            },
            Presence::New => Outcome::Skipped {
                message: "only in the new run".to_owned(),
            },
            Presence::Both if mine.is_empty() => Outcome::Passed,
            Presence::Both => Outcome::Failed {
                kind: "regression".to_owned(),
                message: (mine.iter().map(|b| b.text.as_str()))
                    .collect::<Vec<_>>()
                    .join("; "),
                details: output.clone(),
            },
        };
        // A failure carries the metrics itself; a passed case keeps them as its output.
        let output = match outcome {
            Outcome::Failed { .. } => String::new(),
            _ => output,
        };
        cases.push(Case {
            classname: "chorus.compare".to_owned(),
            name: label,
            outcome,
            output,
        });
    }
    for v in thresholds {
        cases.push(Case {
            classname: "chorus.thresholds".to_owned(),
            name: v.expression.clone(),
            outcome: if v.passed {
                Outcome::Passed
            } else {
                Outcome::Failed {
                    kind: "threshold".to_owned(),
                    message: format!("{} crossed: observed {}", v.expression, v.observed_text),
                    details: String::new(),
                }
            },
            output: format!("observed {}", v.observed_text),
        });
    }
    junit::render(&[Suite {
        name: "chorus compare".to_owned(),
        timestamp: String::new(),
        seconds: 0.0,
        cases,
    }])
}
