//! `--html FILE`: one self-contained page — inline CSS and inline SVG charts drawn here, no
//! script, nothing loaded from the network — with the run's facts, threshold verdicts, the
//! statistics and percentile tables, where the time went (DNS, connect, TLS, time to first
//! byte, download), failures, exceptions, and charts over time of
//! requests/s and failures/s, response-time p50 and p95 (of each second) and users.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use super::csv::utc_timestamp;
use super::format::{esc, ms};
use crate::monitor::{Series as MonitorSeries, Unit};
use crate::stats::{EntryStats, HistoryPoint, PERCENTILES, PHASE_NAMES, RunResult};

const STYLE: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:right}
th:nth-child(-n+2),td:nth-child(-n+2){text-align:left}
tr.total td{font-weight:bold;border-top:2px solid #999}\n.scroll{overflow-x:auto}td:nth-child(2){word-break:break-all;min-width:12em}
.pass{color:#17823b}.fail{color:#c0262d}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 1em}dt{color:#666}dd{margin:0}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:1em}
svg{width:100%;height:auto;background:#fafafa;border:1px solid #eee}
svg text{font:11px system-ui,sans-serif;fill:#555}
";

/// The page for `result`.
pub fn render(result: &RunResult) -> String {
    let mut page = String::new();
    let title = if result.meta.scenario.is_empty() {
        "chorus run".to_owned()
    } else {
        format!("chorus run: {}", result.meta.scenario)
    };
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        esc(&title),
        esc(&title)
    );
    facts(&mut page, result);
    thresholds(&mut page, result);
    if let Some(capacity) = &result.capacity {
        super::capacity::html(&mut page, capacity);
    }
    statistics(&mut page, result);
    percentiles(&mut page, result);
    phases(&mut page, result);
    failures(&mut page, result);
    exceptions(&mut page, result);
    charts(&mut page, &result.history);
    system_charts(&mut page, result);
    page.push_str("</body>\n</html>\n");
    page
}

/// Writes the page to `path`.
pub fn write(result: &RunResult, path: &Path) -> io::Result<()> {
    std::fs::write(path, render(result)).map_err(|err| {
        io::Error::new(
            err.kind(),
            format!("cannot write {}: {err}", path.display()),
        )
    })
}

fn facts(page: &mut String, result: &RunResult) {
    let meta = &result.meta;
    page.push_str("<dl>\n");
    let mut fact = |name: &str, value: String| {
        let _ = writeln!(page, "<dt>{}</dt><dd>{}</dd>", esc(name), esc(&value));
    };
    fact("Scenario", meta.scenario.clone());
    fact("Host", meta.host.clone().unwrap_or_default());
    fact("Start", utc_timestamp(meta.start_unix_ms));
    fact("End", utc_timestamp(meta.end_unix_ms));
    fact("Duration", format!("{:.1} s", result.duration_secs()));
    fact("Users", meta.users.to_string());
    fact(
        "Requests",
        format!(
            "{} ({} failed, {:.2} %)",
            result.total.requests,
            result.total.failures,
            result.total.failure_percent()
        ),
    );
    if result.dropped_iterations > 0 {
        fact("Dropped iterations", result.dropped_iterations.to_string());
    }
    if result.cut_iterations > 0 {
        fact(
            "Iterations cut at the stop",
            format!(
                "{} (not finished within the stop timeout)",
                result.cut_iterations
            ),
        );
    }
    page.push_str("</dl>\n");
}

fn thresholds(page: &mut String, result: &RunResult) {
    if result.verdicts.is_empty() {
        return;
    }
    page.push_str("<h2>Thresholds</h2>\n<div class=\"scroll\"><table>\n<tr><th>Result</th><th>Threshold</th><th>Observed</th></tr>\n");
    for v in &result.verdicts {
        let (class, word) = if v.passed {
            ("pass", "PASS")
        } else {
            ("fail", "FAIL")
        };
        let _ = writeln!(
            page,
            "<tr><td class=\"{class}\">{word}</td><td>{}</td><td>{}</td></tr>",
            esc(&v.expression),
            esc(&v.observed_text)
        );
    }
    page.push_str("</table></div>\n");
}

fn statistics(page: &mut String, result: &RunResult) {
    page.push_str(
        "<h2>Request statistics</h2>\n<div class=\"scroll\"><table>\n<tr><th>Type</th><th>Name</th><th># Requests</th>\
         <th># Fails</th><th>Average (ms)</th><th>Min (ms)</th><th>Max (ms)</th>\
         <th>Median (ms)</th><th>95%ile (ms)</th><th>99%ile (ms)</th><th>Average size (bytes)</th>\
         <th>RPS</th><th>Failures/s</th></tr>\n",
    );
    let row = |page: &mut String, entry: &EntryStats, class: &str| {
        let _ = writeln!(
            page,
            "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0}</td><td>{:.2}</td><td>{:.2}</td></tr>",
            esc(&entry.method),
            esc(&entry.name),
            entry.requests,
            entry.failures,
            ms(entry.avg_ms()),
            ms(entry.min_ms()),
            ms(entry.max_ms()),
            pct(entry, 50.0),
            pct(entry, 95.0),
            pct(entry, 99.0),
            entry.avg_content_bytes(),
            result.rps(entry),
            result.failures_per_sec(entry),
        );
    };
    for entry in &result.entries {
        row(page, entry, "");
    }
    row(page, &result.total, " class=\"total\"");
    page.push_str("</table></div>\n");
}

fn percentiles(page: &mut String, result: &RunResult) {
    page.push_str(
        "<h2>Response time percentiles (ms)</h2>\n<div class=\"scroll\"><table>\n<tr><th>Type</th><th>Name</th>",
    );
    for p in PERCENTILES {
        let _ = write!(page, "<th>{p}%</th>");
    }
    page.push_str("</tr>\n");
    let row = |page: &mut String, entry: &EntryStats, class: &str| {
        let _ = write!(
            page,
            "<tr{class}><td>{}</td><td>{}</td>",
            esc(&entry.method),
            esc(&entry.name)
        );
        for p in PERCENTILES {
            let _ = write!(page, "<td>{}</td>", pct(entry, p));
        }
        page.push_str("</tr>\n");
    };
    for entry in &result.entries {
        row(page, entry, "");
    }
    row(page, &result.total, " class=\"total\"");
    page.push_str("</table></div>\n");
}

/// Per name, each phase's mean, p95 and p99; dns, connect and tls are those of the requests
/// that opened a connection (the column "Connections" counts them).
fn phases(page: &mut String, result: &RunResult) {
    let measured = |entry: &&EntryStats| !entry.phases.is_empty();
    if !result.entries.iter().any(|entry| measured(&entry)) {
        return;
    }
    page.push_str(
        "<h2 id=\"phases\">Where the time went (ms: mean / p95 / p99)</h2>\n<div class=\"scroll\"><table>\n\
         <tr><th>Type</th><th>Name</th><th>Connections</th>",
    );
    for phase in PHASE_NAMES {
        let _ = write!(page, "<th>{}</th>", phase_title(phase));
    }
    page.push_str("</tr>\n");
    let row = |page: &mut String, entry: &EntryStats, class: &str| {
        let opened = entry.phases.connect.as_ref().map_or(0, |t| t.count);
        let _ = write!(
            page,
            "<tr{class}><td>{}</td><td>{}</td><td>{opened}</td>",
            esc(&entry.method),
            esc(&entry.name)
        );
        for (_, times) in entry.phases.all() {
            let cell = times.filter(|t| t.count > 0).map_or("–".to_owned(), |t| {
                let at = |p: f64| ms(t.percentile_us(p) as f64 / 1000.0);
                format!("{} / {} / {}", ms(t.avg_us() / 1000.0), at(95.0), at(99.0))
            });
            let _ = write!(page, "<td>{cell}</td>");
        }
        page.push_str("</tr>\n");
    };
    for entry in result.entries.iter().filter(measured) {
        row(page, entry, "");
    }
    row(page, &result.total, " class=\"total\"");
    page.push_str("</table></div>\n");
}

/// A phase as a column says it.
pub(crate) fn phase_title(phase: &str) -> &'static str {
    match phase {
        "dns" => "DNS",
        "connect" => "Connect",
        "tls" => "TLS",
        "ttfb" => "Time to first byte",
        _ => "Download",
    }
}

fn failures(page: &mut String, result: &RunResult) {
    page.push_str("<h2>Failures</h2>\n");
    let any = result
        .entries
        .iter()
        .any(|e| !e.failures_by_kind.is_empty());
    if !any {
        page.push_str("<p>No failures.</p>\n");
        return;
    }
    page.push_str("<div class=\"scroll\"><table>\n<tr><th>Type</th><th>Name</th><th>Kind</th><th># Occurrences</th><th>Sample message</th></tr>\n");
    for entry in &result.entries {
        for f in &entry.failures_by_kind {
            let _ = writeln!(
                page,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td style=\"text-align:left\">{}</td></tr>",
                esc(&entry.method),
                esc(&entry.name),
                esc(&f.kind.to_string()),
                f.count,
                esc(&f.message)
            );
        }
    }
    page.push_str("</table></div>\n");
}

fn exceptions(page: &mut String, result: &RunResult) {
    page.push_str("<h2>Exceptions</h2>\n");
    if result.errors.is_empty() {
        page.push_str("<p>No exceptions.</p>\n");
        return;
    }
    page.push_str(
        "<div class=\"scroll\"><table>\n<tr><th># Occurrences</th><th style=\"text-align:left\">Message</th></tr>\n",
    );
    for error in &result.errors {
        let _ = writeln!(
            page,
            "<tr><td style=\"text-align:left\">{}</td><td style=\"text-align:left\">{}</td></tr>",
            error.count,
            esc(&error.message)
        );
    }
    page.push_str("</table></div>\n");
}

fn charts(page: &mut String, history: &[HistoryPoint]) {
    page.push_str("<h2>Over time</h2>\n");
    if history.is_empty() {
        page.push_str("<p>No history was recorded.</p>\n");
        return;
    }
    let start = history[0].unix_seconds;
    let t = |p: &HistoryPoint| (p.unix_seconds - start) as f64;
    let series = |f: &dyn Fn(&HistoryPoint) -> f64| -> Vec<(f64, f64)> {
        history.iter().map(|p| (t(p), f(p))).collect()
    };
    // Seconds without requests have no latency: leave them out rather than draw a 0.
    let busy = |f: &dyn Fn(&HistoryPoint) -> f64| -> Vec<(f64, f64)> {
        history
            .iter()
            .filter(|p| p.requests > 0)
            .map(|p| (t(p), f(p)))
            .collect()
    };
    page.push_str("<div class=\"charts\">\n");
    page.push_str(&line_chart(
        "Requests and failures per second",
        "/s",
        &[
            ("requests/s", "#2f6fb0", series(&|p| p.rps)),
            ("failures/s", "#c0262d", series(&|p| p.failures_per_sec)),
        ],
    ));
    page.push_str(&line_chart(
        "Response time of each second (ms)",
        " ms",
        &[
            ("p50", "#17823b", busy(&|p| p.p50_us() as f64 / 1000.0)),
            ("p95", "#b06a2f", busy(&|p| p.p95_us() as f64 / 1000.0)),
        ],
    ));
    page.push_str(&line_chart(
        "Users",
        "",
        &[("users", "#6b4fb0", series(&|p| p.users as f64))],
    ));
    page.push_str("</div>\n");
}

/// The monitors' series (`--monitor`, and chorus's own), a chart per monitor and unit, on
/// the same seconds as the charts above.
fn system_charts(page: &mut String, result: &RunResult) {
    let monitored = &result.monitors;
    if monitored.is_empty() {
        return;
    }
    page.push_str("<h2>System</h2>\n");
    if monitored.generator_saturated_seconds > 0 {
        let _ = writeln!(
            page,
            "<p class=\"fail\">chorus was short of CPU for {} s of this run: the latencies of those seconds include its own queueing.</p>",
            monitored.generator_saturated_seconds
        );
    }
    for (worker, seconds) in &monitored.workers_saturated_seconds {
        let _ = writeln!(
            page,
            "<p class=\"fail\">worker {} was short of CPU for {seconds} s of this run: its latencies of those seconds include its own queueing.</p>",
            esc(&format!("{worker:?}"))
        );
    }
    if !monitored.notices.is_empty() {
        page.push_str("<ul>\n");
        for notice in &monitored.notices {
            let _ = writeln!(
                page,
                "<li>at {} s: {}</li>",
                notice.second,
                esc(&notice.text)
            );
        }
        page.push_str("</ul>\n");
    }
    // The history's seconds count from its first point; the monitors' from the run's start.
    let offset = result.history.first().map_or(0.0, |first| {
        (result.meta.start_unix_ms / 1000) as f64 - first.unix_seconds as f64
    });
    let mut groups: Vec<(String, Unit, Vec<&MonitorSeries>)> = Vec::new();
    for series in &monitored.series {
        let label = series.name.rsplit_once('.').map_or("", |(label, _)| label);
        match groups
            .iter_mut()
            .find(|(l, unit, _)| l == label && *unit == series.unit)
        {
            Some((_, _, members)) => members.push(series),
            None => groups.push((label.to_owned(), series.unit, vec![series])),
        }
    }
    const COLOURS: [&str; 6] = [
        "#2f6fb0", "#c0262d", "#17823b", "#b06a2f", "#6b4fb0", "#555",
    ];
    page.push_str("<div class=\"charts\">\n");
    for (label, unit, members) in &groups {
        let (scale, suffix, what) = match unit {
            Unit::Percent => (1.0, " %", "%"),
            Unit::Bytes => (1.0 / (1 << 20) as f64, " MiB", "MiB"),
            Unit::BytesPerSecond => (1.0 / (1 << 20) as f64, " MiB/s", "MiB/s"),
            Unit::Count | Unit::Number => (1.0, "", "count"),
            Unit::PerSecond => (1.0, "/s", "per second"),
        };
        let lines: Vec<Series<'_>> = members
            .iter()
            .zip(COLOURS.iter().cycle())
            .map(|(series, colour)| {
                let name = series.name.rsplit_once('.').map_or("", |(_, n)| n);
                let points = series
                    .points
                    .iter()
                    .map(|(second, value)| ((*second as f64 + offset).max(0.0), value * scale))
                    .collect();
                (name, *colour, points)
            })
            .collect();
        page.push_str(&line_chart(&format!("{label} ({what})"), suffix, &lines));
    }
    page.push_str("</div>\n");
}

/// One line of a chart: label, colour, (seconds, value) points.
type Series<'a> = (&'a str, &'a str, Vec<(f64, f64)>);

/// An SVG line chart: x is seconds since the first point, y starts at 0.
fn line_chart(title: &str, unit: &str, series: &[Series<'_>]) -> String {
    const W: f64 = 600.0;
    const H: f64 = 260.0;
    const LEFT: f64 = 56.0;
    const RIGHT: f64 = 12.0;
    const TOP: f64 = 28.0;
    const BOTTOM: f64 = 30.0;
    let x_data = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.0))
        .fold(0.0_f64, f64::max);
    let y_data = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.1))
        .fold(0.0_f64, f64::max);
    let x_step = time_step(x_data);
    let x_max = (x_data / x_step).ceil().max(1.0) * x_step;
    let y_step = nice_step(y_data / 4.0);
    let y_max = (y_data / y_step).ceil().max(1.0) * y_step;
    let x = |v: f64| LEFT + v / x_max * (W - LEFT - RIGHT);
    let y = |v: f64| H - BOTTOM - v / y_max * (H - TOP - BOTTOM);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\"><title>{}</title>",
        esc(title),
        esc(title)
    );
    let _ = writeln!(
        svg,
        "<text x=\"{LEFT}\" y=\"16\" style=\"font-weight:bold\">{}</text>",
        esc(title)
    );
    let y_ticks = (y_max / y_step).round() as u32;
    for i in 0..=y_ticks {
        let value = y_step * f64::from(i);
        let yy = y(value);
        let _ = writeln!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#e2e2e2\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}{}</text>",
            W - RIGHT,
            LEFT - 4.0,
            yy + 4.0,
            short(value),
            esc(unit)
        );
    }
    let x_ticks = (x_max / x_step).round() as u32;
    for i in 0..=x_ticks {
        let value = x_step * f64::from(i);
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            x(value),
            H - 10.0,
            duration_label(value)
        );
    }
    for (i, (label, color, points)) in series.iter().enumerate() {
        let mut path = String::new();
        for (px, py) in points {
            let _ = write!(path, "{:.1},{:.1} ", x(*px), y(*py));
        }
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\"{} points=\"{}\"><title>{}</title></polyline>",
            if i > 0 {
                " stroke-dasharray=\"5 3\""
            } else {
                ""
            },
            path.trim_end(),
            esc(label)
        );
        let lx = W - RIGHT - 110.0 * (series.len() - i) as f64;
        let _ = writeln!(
            svg,
            "<rect x=\"{lx:.0}\" y=\"8\" width=\"10\" height=\"10\" fill=\"{color}\"/>\
             <text x=\"{:.0}\" y=\"17\">{}</text>",
            lx + 14.0,
            esc(label)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// 1, 2 or 5 times a power of ten, at least `value` (and at least 0.001).
fn nice_step(value: f64) -> f64 {
    if value <= 0.001 || !value.is_finite() {
        return if value > 0.0 { 0.001 } else { 1.0 };
    }
    let power = 10f64.powf(value.log10().floor());
    for step in [1.0, 2.0, 5.0] {
        if step * power >= value {
            return step * power;
        }
    }
    10.0 * power
}

/// A step for a time axis of `seconds` with at most about six ticks, in round units.
fn time_step(seconds: f64) -> f64 {
    const STEPS: [f64; 16] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
        21600.0, 43200.0,
    ];
    STEPS
        .into_iter()
        .find(|step| seconds / step <= 6.0)
        .unwrap_or(86_400.0)
}

fn short(value: f64) -> String {
    if value >= 1000.0 {
        format!("{:.1}k", value / 1000.0)
    } else if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

fn duration_label(seconds: f64) -> String {
    let s = seconds.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

fn pct(entry: &EntryStats, percentile: f64) -> String {
    if entry.requests == 0 {
        "N/A".to_owned()
    } else {
        ms(entry.percentile_us(percentile) as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn chart_scales_are_round() {
        assert_eq!(nice_step(0.0), 1.0);
        assert_eq!(nice_step(0.8), 1.0);
        assert_eq!(nice_step(3.2), 5.0);
        assert_eq!(nice_step(120.0), 200.0);
        assert_eq!(nice_step(1000.0), 1000.0);
        assert_eq!(time_step(3.0), 1.0);
        assert_eq!(time_step(40.0), 10.0);
        assert_eq!(time_step(600.0), 120.0);
        assert_eq!(duration_label(75.0), "1m15s");
    }
}
