//! `chorus compare --html FILE`: one self-contained page (inline CSS and SVG, no script) with
//! the verdicts and, per request, the two latency distributions overlaid as percentile curves
//! the way HdrHistogram plots them: percentiles on a log axis of `1 / (1 - q)` (so 90 %,
//! 99 %, 99.9 % are equally spaced) and latency on a log axis.

use std::fmt::Write as _;

use super::gate::Breach;
use super::render::{change, value};
use super::{Comparison, Presence, Row, Verdict};
use crate::stats::report::format::esc;

const STYLE: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:right}th:first-child,td:first-child{text-align:left}
.worse{color:#c0262d;font-weight:bold}.better{color:#17823b}.scroll{overflow-x:auto}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:1em}
svg{width:100%;height:auto;background:#fafafa;border:1px solid #eee}
svg text{font:11px system-ui,sans-serif;fill:#555}
";
const BASE_COLOUR: &str = "#2f6fb0";
const NEW_COLOUR: &str = "#d2691e";

/// The page of `comparison`.
pub fn render(comparison: &Comparison, breaches: &[Breach]) -> String {
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>chorus compare</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>chorus compare</h1>\n"
    );
    let _ = writeln!(
        page,
        "<p>Baseline ({BASE_COLOUR_NAME}): {} · {} requests.<br>New ({NEW_COLOUR_NAME}): {} · {} requests.<br>\
         Verdicts read {} % intervals (95 % that no verdict on the page is a false alarm); changes under {:.1} % count as no change (docs/compare.md).</p>",
        esc(&comparison.base.files.join(", ")),
        comparison.base.requests,
        esc(&comparison.new.files.join(", ")),
        comparison.new.requests,
        super::render::percent(comparison.confidence_each),
        comparison.min_effect * 100.0
    );
    if breaches.is_empty() {
        page.push_str("<p class=\"better\">No regression past the limits.</p>\n");
    } else {
        page.push_str("<h2>Regressions past the limits</h2>\n<ul>\n");
        for breach in breaches {
            let _ = writeln!(
                page,
                "<li class=\"worse\">{}: {}</li>",
                esc(&breach.request),
                esc(&breach.text)
            );
        }
        page.push_str("</ul>\n");
    }
    table(&mut page, comparison);
    page.push_str("<h2>Latency distributions</h2>\n<div class=\"charts\">\n");
    for row in comparison.all_rows() {
        if row.presence == Presence::Both && !row.base_curve.is_empty() && !row.new_curve.is_empty()
        {
            page.push_str(&curves(row));
        }
    }
    page.push_str("</div>\n</body>\n</html>\n");
    page
}

const BASE_COLOUR_NAME: &str = "blue";
const NEW_COLOUR_NAME: &str = "orange";

fn table(page: &mut String, comparison: &Comparison) {
    page.push_str("<h2>Changes</h2>\n<div class=\"scroll\"><table>\n<tr><th>Request</th><th>Metric</th><th>Base</th><th>New</th><th>Change</th><th>Interval</th><th>Verdict</th></tr>\n");
    for row in comparison.all_rows() {
        match row.presence {
            Presence::Both => {}
            Presence::Gone | Presence::New => {
                let where_ = if row.presence == Presence::Gone {
                    "gone: only in the baseline"
                } else {
                    "new: only in the new run"
                };
                let _ = writeln!(
                    page,
                    "<tr><td>{}</td><td colspan=\"6\" style=\"text-align:left\">{where_} ({} requests)</td></tr>",
                    esc(&row.label()),
                    row.base_requests.max(row.new_requests)
                );
                continue;
            }
        }
        for (i, c) in row.changes.iter().enumerate() {
            let class = match c.verdict {
                Verdict::Worse => " class=\"worse\"",
                Verdict::Better => " class=\"better\"",
                _ => "",
            };
            let label = if i == 0 {
                esc(&row.label())
            } else {
                String::new()
            };
            let interval = if c.verdict == Verdict::NotEnoughData {
                String::new()
            } else {
                format!(
                    "{} .. {}",
                    change(c.metric, c.low),
                    change(c.metric, c.high)
                )
            };
            let _ = writeln!(
                page,
                "<tr><td>{label}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td{class}>{}</td></tr>",
                c.metric.label(),
                value(c.metric, c.base),
                value(c.metric, c.new),
                change(c.metric, c.change),
                interval,
                c.verdict.word(c.metric)
            );
        }
    }
    page.push_str("</table></div>\n");
}

/// The SVG of one request's two percentile curves.
fn curves(row: &Row) -> String {
    const W: f64 = 600.0;
    const H: f64 = 300.0;
    const LEFT: f64 = 60.0;
    const RIGHT: f64 = 12.0;
    const TOP: f64 = 30.0;
    const BOTTOM: f64 = 34.0;
    // x: -log10(1 - q), 0 (0 %) .. 4 (99.99 %); y: log10 of ms.
    let hdr_x = |percentile: f64| -((1.0 - percentile / 100.0).max(1e-4)).log10();
    let values = row
        .base_curve
        .iter()
        .chain(&row.new_curve)
        .map(|p| p.1 as f64 / 1000.0);
    let (low, high) = values.fold((f64::MAX, 0.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let y_low = low.max(0.001).log10().floor();
    let y_high = high.max(0.001).log10().ceil().max(y_low + 1.0);
    let x = |percentile: f64| LEFT + hdr_x(percentile) / 4.0 * (W - LEFT - RIGHT);
    let y = |ms: f64| {
        H - BOTTOM - (ms.max(0.001).log10() - y_low) / (y_high - y_low) * (H - TOP - BOTTOM)
    };
    let title = format!("{}: latency by percentile", row.label());
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\"><title>{}</title>",
        esc(&title),
        esc(&title)
    );
    let _ = writeln!(
        svg,
        "<text x=\"{LEFT}\" y=\"16\" style=\"font-weight:bold\">{}</text>",
        esc(&row.label())
    );
    let mut decade = y_low;
    while decade <= y_high {
        let ms = 10f64.powf(decade);
        let yy = y(ms);
        let _ = writeln!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#e2e2e2\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{} ms</text>",
            W - RIGHT,
            LEFT - 4.0,
            yy + 4.0,
            short_ms(ms)
        );
        decade += 1.0;
    }
    for (percentile, label) in [
        (0.0, "0%"),
        (90.0, "90%"),
        (99.0, "99%"),
        (99.9, "99.9%"),
        (99.99, "99.99%"),
    ] {
        let xx = x(percentile);
        let _ = writeln!(
            svg,
            "<line x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{TOP}\" y2=\"{}\" stroke=\"#e2e2e2\"/>\
             <text x=\"{xx:.1}\" y=\"{}\" text-anchor=\"middle\">{label}</text>",
            H - BOTTOM,
            H - BOTTOM + 16.0
        );
    }
    for (name, colour, points) in [
        ("base", BASE_COLOUR, &row.base_curve),
        ("new", NEW_COLOUR, &row.new_curve),
    ] {
        let path: Vec<String> = (points.iter())
            .map(|(p, us)| format!("{:.1},{:.1}", x(*p), y(*us as f64 / 1000.0)))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"><title>{name}</title></polyline>",
            path.join(" ")
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"16\" fill=\"{BASE_COLOUR}\" style=\"fill:{BASE_COLOUR}\">base</text>\
         <text x=\"{}\" y=\"16\" style=\"fill:{NEW_COLOUR}\">new</text>",
        W - RIGHT - 70.0,
        W - RIGHT - 30.0
    );
    svg.push_str("</svg>\n");
    svg
}

fn short_ms(ms: f64) -> String {
    if ms >= 1.0 {
        format!("{ms:.0}")
    } else {
        format!("{ms}")
    }
}
