//! JUnit XML, the test report format CI systems read (Jenkins, GitLab, GitHub Actions
//! reporters, Azure DevOps): a small model ([`Suite`], [`Case`]), its writer ([`render`]), and
//! a run's report ([`for_run`]): one test case per threshold and one per request with
//! failures. `tests/fixtures/junit/junit.xsd` is the schema the output is checked against.

use std::fmt::Write as _;

use super::csv::utc_timestamp;
use crate::stats::RunResult;

/// One `<testsuite>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Suite {
    pub name: String,
    /// ISO 8601, UTC, without a zone (what the format expects); empty to leave it out.
    pub timestamp: String,
    pub seconds: f64,
    pub cases: Vec<Case>,
}

/// One `<testcase>`: passed, failed, or skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub classname: String,
    pub name: String,
    pub outcome: Outcome,
    /// Text for `<system-out>` (what was measured); empty to leave it out.
    pub output: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Passed,
    /// `<failure type=.. message=..>details</failure>`.
    Failed {
        kind: String,
        message: String,
        details: String,
    },
    /// `<skipped message=../>`.
    Skipped {
        message: String,
    },
}

/// The XML document of `suites` (`<testsuites>` around them).
pub fn render(suites: &[Suite]) -> String {
    let count = |f: &dyn Fn(&Case) -> bool| -> usize {
        suites
            .iter()
            .flat_map(|s| &s.cases)
            .filter(|c| f(c))
            .count()
    };
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites tests=\"{}\" failures=\"{}\" errors=\"0\" time=\"{:.3}\">",
        count(&|_| true),
        count(&|c| matches!(c.outcome, Outcome::Failed { .. })),
        suites.iter().map(|s| s.seconds).sum::<f64>()
    );
    for suite in suites {
        let failed = (suite.cases.iter())
            .filter(|c| matches!(c.outcome, Outcome::Failed { .. }))
            .count();
        let skipped = (suite.cases.iter())
            .filter(|c| matches!(c.outcome, Outcome::Skipped { .. }))
            .count();
        let _ = write!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" skipped=\"{skipped}\" time=\"{:.3}\"",
            xml(&suite.name),
            suite.cases.len(),
            suite.seconds.max(0.0)
        );
        if !suite.timestamp.is_empty() {
            let _ = write!(out, " timestamp=\"{}\"", xml(&suite.timestamp));
        }
        out.push_str(">\n");
        for case in &suite.cases {
            case_xml(&mut out, case);
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn case_xml(out: &mut String, case: &Case) {
    let _ = write!(
        out,
        "    <testcase classname=\"{}\" name=\"{}\" time=\"0\"",
        xml(&case.classname),
        xml(&case.name)
    );
    if case.outcome == Outcome::Passed && case.output.is_empty() {
        out.push_str("/>\n");
        return;
    }
    out.push_str(">\n");
    match &case.outcome {
        Outcome::Passed => {}
        Outcome::Failed {
            kind,
            message,
            details,
        } => {
            let _ = writeln!(
                out,
                "      <failure type=\"{}\" message=\"{}\">{}</failure>",
                xml(kind),
                xml(message),
                xml(details)
            );
        }
        Outcome::Skipped { message } => {
            let _ = writeln!(out, "      <skipped message=\"{}\"/>", xml(message));
        }
    }
    if !case.output.is_empty() {
        let _ = writeln!(out, "      <system-out>{}</system-out>", xml(&case.output));
    }
    out.push_str("    </testcase>\n");
}

/// Text for XML content and attribute values: the five special characters escaped, line
/// breaks kept as character references (so attributes keep them), and characters XML 1.0
/// cannot hold replaced by U+FFFD.
pub fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || matches!(c, '\u{fffe}' | '\u{ffff}') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// The JUnit report of a run: one test case per threshold (failed when it was crossed), one
/// per request (method and name) that had failures (failed, with its failures by kind).
pub fn for_run(result: &RunResult) -> String {
    let mut cases = Vec::new();
    for verdict in &result.verdicts {
        cases.push(Case {
            classname: "chorus.thresholds".to_owned(),
            name: verdict.expression.clone(),
            outcome: if verdict.passed {
                Outcome::Passed
            } else {
                Outcome::Failed {
                    kind: "threshold".to_owned(),
                    message: format!(
                        "{} crossed: observed {}",
                        verdict.expression, verdict.observed_text
                    ),
                    details: String::new(),
                }
            },
            output: format!("observed {}", verdict.observed_text),
        });
    }
    for entry in result.entries.iter().filter(|e| e.failures > 0) {
        let details = (entry.failures_by_kind.iter())
            .map(|f| format!("{} × {}: {}", f.count, f.kind, f.message))
            .collect::<Vec<_>>()
            .join("\n");
        cases.push(Case {
            classname: "chorus.requests".to_owned(),
            name: format!("{} {}", entry.method, entry.name),
            outcome: Outcome::Failed {
                kind: "failed requests".to_owned(),
                message: format!(
                    "{} of {} requests failed ({:.2} %)",
                    entry.failures,
                    entry.requests,
                    entry.failure_percent()
                ),
                details,
            },
            output: String::new(),
        });
    }
    let name = if result.meta.scenario.is_empty() {
        "chorus run".to_owned()
    } else {
        format!("chorus run: {}", result.meta.scenario)
    };
    let timestamp = utc_timestamp(result.meta.start_unix_ms);
    render(&[Suite {
        name,
        timestamp: timestamp.trim_end_matches('Z').to_owned(),
        seconds: result.duration_secs(),
        cases,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_xml() {
        assert_eq!(
            xml("a<b & \"c\" 'd'\n\u{1}"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&#10;\u{fffd}"
        );
    }
}
