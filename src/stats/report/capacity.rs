//! A capacity search's outcome (`--find-capacity`) in the terminal summary and in the HTML
//! report: the rate found, why the search ended, and the curve (one row per step: rate,
//! answered rate, p50/p95/p99, failures, dropped iterations, held or not), with an SVG of the
//! percentiles against the rate.

use std::fmt::Write as _;

use super::format::esc;
use crate::stats::capacity::{Capacity, CapacityStep, show_rate};

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// The summary's section.
pub fn text(out: &mut String, capacity: &Capacity) {
    let _ = writeln!(out, "\nCapacity ({})", capacity.conditions.join(", "));
    let _ = writeln!(
        out,
        "{:>4} {:>10} {:>10} {:>9} {:>9} {:>9} {:>8} {:>8}  verdict",
        "step", "rate/s", "answered/s", "p50 ms", "p95 ms", "p99 ms", "fail %", "dropped"
    );
    for (number, step) in capacity.steps.iter().enumerate() {
        let _ = writeln!(
            out,
            "{:>4} {:>10} {:>10.1} {:>9.1} {:>9.1} {:>9.1} {:>8.2} {:>8}  {}",
            number + 1,
            show_rate(step.per_second),
            step.rps(),
            ms(step.p50_us),
            ms(step.p95_us),
            ms(step.p99_us),
            step.failure_percent(),
            step.dropped_iterations,
            step.verdict()
        );
    }
    let _ = match capacity.per_second {
        Some(rate) => writeln!(
            out,
            "Capacity: {}/s, the highest rate at which every condition held ({})",
            show_rate(rate),
            capacity.ended
        ),
        None => writeln!(out, "Capacity: no rate held ({})", capacity.ended),
    };
}

/// The HTML report's section: the answer, the chart and the table.
pub fn html(page: &mut String, capacity: &Capacity) {
    page.push_str("<h2>Capacity</h2>\n");
    let answer = match capacity.per_second {
        Some(rate) => format!(
            "<b>{}/s</b>: the highest arrival rate at which every condition held",
            show_rate(rate)
        ),
        None => "no rate held".to_owned(),
    };
    let _ = writeln!(
        page,
        "<p id=\"capacity\">{answer}. Conditions: {}. The search ended: {}.</p>",
        esc(&capacity.conditions.join(", ")),
        esc(&capacity.ended)
    );
    page.push_str(&chart(&capacity.steps));
    page.push_str(
        "<div class=\"scroll\"><table>\n<tr><th>Step</th><th>Rate /s</th><th>Answered /s</th>\
         <th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>Failures %</th><th>Dropped</th>\
         <th>Verdict</th></tr>\n",
    );
    for (number, step) in capacity.steps.iter().enumerate() {
        let class = if step.held { "pass" } else { "fail" };
        let word = step.verdict();
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td>\
             <td>{:.2}</td><td>{}</td><td class=\"{class}\">{}</td></tr>",
            number + 1,
            show_rate(step.per_second),
            step.rps(),
            ms(step.p50_us),
            ms(step.p95_us),
            ms(step.p99_us),
            step.failure_percent(),
            step.dropped_iterations,
            esc(&word)
        );
    }
    page.push_str("</table></div>\n");
}

/// One line of the chart: its label, its colour and what it shows of a step.
type Line = (&'static str, &'static str, fn(&CapacityStep) -> u64);

/// p50, p95 and p99 against the rate, the steps in rate order; a step that did not hold is a
/// red dot, one that held a green one.
fn chart(steps: &[CapacityStep]) -> String {
    const W: f64 = 600.0;
    const H: f64 = 260.0;
    const LEFT: f64 = 56.0;
    const RIGHT: f64 = 12.0;
    const TOP: f64 = 28.0;
    const BOTTOM: f64 = 30.0;
    let mut sorted: Vec<&CapacityStep> = steps.iter().collect();
    sorted.sort_by(|a, b| a.per_second.total_cmp(&b.per_second));
    let x_max = sorted.last().map_or(1.0, |s| s.per_second).max(1e-9) * 1.05;
    let y_max = sorted.iter().map(|s| ms(s.p99_us)).fold(1e-9, f64::max) * 1.1;
    let x = |v: f64| LEFT + v / x_max * (W - LEFT - RIGHT);
    let y = |v: f64| H - BOTTOM - v.min(y_max) / y_max * (H - TOP - BOTTOM);
    let mut svg = format!(
        "<svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"latency against arrival rate\">\
         <title>latency against arrival rate</title>\n<text x=\"{LEFT}\" y=\"16\" \
         style=\"font-weight:bold\">Latency (ms) against arrival rate (/s)</text>\n"
    );
    for i in 0..=4 {
        let (value, rate) = (y_max * f64::from(i) / 4.0, x_max * f64::from(i) / 4.0);
        let _ = writeln!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#e2e2e2\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{value:.0}</text>\
             <text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            W - RIGHT,
            LEFT - 4.0,
            y(value) + 4.0,
            x(rate),
            H - 10.0,
            show_rate((rate * 10.0).round() / 10.0),
            yy = y(value),
        );
    }
    let lines: [Line; 3] = [
        ("p50", "#2b7bb9", |s| s.p50_us),
        ("p95", "#e08a00", |s| s.p95_us),
        ("p99", "#b52b27", |s| s.p99_us),
    ];
    for (i, (label, color, value)) in lines.iter().enumerate() {
        let points: Vec<String> = sorted
            .iter()
            .map(|s| format!("{:.1},{:.1}", x(s.per_second), y(ms(value(s)))))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\">\
             <title>{label}</title></polyline><rect x=\"{:.0}\" y=\"8\" width=\"10\" height=\"10\" \
             fill=\"{color}\"/><text x=\"{:.0}\" y=\"17\">{label}</text>",
            points.join(" "),
            W - RIGHT - 70.0 * (3 - i) as f64,
            W - RIGHT - 70.0 * (3 - i) as f64 + 14.0
        );
    }
    for step in &sorted {
        let _ = writeln!(
            svg,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{}\"><title>{}/s: {}</title></circle>",
            x(step.per_second),
            y(ms(step.p95_us)),
            if step.held { "#2e8b3a" } else { "#c0392b" },
            show_rate(step.per_second),
            if step.held { "held" } else { "did not hold" }
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(per_second: f64, p95_ms: u64, held: bool) -> CapacityStep {
        CapacityStep {
            per_second,
            first_second: 2,
            seconds: 4,
            requests: (per_second * 4.0) as u64,
            failures: 0,
            dropped_iterations: 0,
            p50_us: p95_ms * 800,
            p95_us: p95_ms * 1000,
            p99_us: p95_ms * 1200,
            held,
            why: if held {
                String::new()
            } else {
                format!("p95<150ms ({p95_ms}.0 ms)")
            },
        }
    }

    fn capacity() -> Capacity {
        Capacity {
            conditions: vec!["p95<150ms".to_owned()],
            per_second: Some(200.0),
            ended: "200/s held and 206.25/s did not: within 5 %".to_owned(),
            steps: vec![
                step(100.0, 101, true),
                step(200.0, 120, true),
                step(400.0, 900, false),
            ],
        }
    }

    #[test]
    fn the_summary_lists_every_step_and_the_answer() {
        let mut out = String::new();
        text(&mut out, &capacity());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[1], "Capacity (p95<150ms)");
        assert!(
            lines[3].starts_with("   1        100      100.0      80.8     101.0"),
            "{out}"
        );
        assert!(
            lines[5].ends_with("did not hold: p95<150ms (900.0 ms)"),
            "{out}"
        );
        assert_eq!(
            lines[6],
            "Capacity: 200/s, the highest rate at which every condition held (200/s held and 206.25/s did not: within 5 %)"
        );
    }

    #[test]
    fn the_report_has_the_answer_the_chart_and_the_table() {
        let mut page = String::new();
        html(&mut page, &capacity());
        assert!(page.contains("<b>200/s</b>"), "{page}");
        assert_eq!(page.matches("<polyline").count(), 3);
        assert_eq!(page.matches("<circle").count(), 3);
        assert_eq!(page.matches("<tr>").count(), 4);
        assert!(
            page.contains("did not hold: p95&lt;150ms (900.0 ms)"),
            "{page}"
        );
    }
}
