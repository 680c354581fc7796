//! Terminal tables: the final [`summary`] (laid out like Locust's closing stats: requests,
//! percentiles, errors, then chorus's threshold verdicts) and the compact [`live_table`]
//! printed every few seconds during a run.

use std::fmt::Write as _;

use super::format::ms;
use crate::monitor::Monitored;
use crate::stats::{Aggregate, EntryStats, LiveRow, PERCENTILES, RunResult};

/// The final report: statistics, percentiles, failures, exceptions, thresholds.
pub fn summary(result: &RunResult) -> String {
    let width = name_width(result.entries.iter().map(|e| e.name.as_str()));
    let mut out = String::new();
    let rule = format!(
        "--------|{}|-------|-------------|-------|-------|-------|-------|--------|-----------",
        "-".repeat(width + 2)
    );
    let _ = writeln!(
        out,
        "{:<8} {:<width$} {:>7} {:>12} | {:>7} {:>7} {:>7} {:>7} | {:>7} {:>11}",
        "Type", "Name", "# reqs", "# fails", "Avg", "Min", "Max", "Med", "req/s", "failures/s"
    );
    let _ = writeln!(out, "{rule}");
    let row = |out: &mut String, entry: &EntryStats| {
        let fails = format!("{}({:.2}%)", entry.failures, entry.failure_percent());
        let _ = writeln!(
            out,
            "{:<8} {:<width$} {:>7} {:>12} | {:>7} {:>7} {:>7} {:>7} | {:>7.2} {:>11.2}",
            entry.method,
            entry.name,
            entry.requests,
            fails,
            ms(entry.avg_ms()),
            ms(entry.min_ms()),
            ms(entry.max_ms()),
            ms(entry.percentile_us(50.0) as f64 / 1000.0),
            result.rps(entry),
            result.failures_per_sec(entry),
        );
    };
    for entry in &result.entries {
        row(&mut out, entry);
    }
    let _ = writeln!(out, "{rule}");
    row(&mut out, &result.total);

    let _ = writeln!(out, "\nResponse time percentiles (ms)");
    let mut header = format!("{:<8} {:<width$}", "Type", "Name");
    for p in PERCENTILES {
        let _ = write!(header, " {:>7}", format!("{p}%"));
    }
    let _ = writeln!(out, "{header} {:>7}", "# reqs");
    let rule = format!(
        "--------|{}|{}",
        "-".repeat(width + 1),
        "--------".repeat(PERCENTILES.len() + 1)
    );
    let _ = writeln!(out, "{rule}");
    let row = |out: &mut String, entry: &EntryStats| {
        let mut line = format!("{:<8} {:<width$}", entry.method, entry.name);
        for p in PERCENTILES {
            let value = if entry.requests == 0 {
                "N/A".to_owned()
            } else {
                ms(entry.percentile_us(p) as f64 / 1000.0)
            };
            let _ = write!(line, " {value:>7}");
        }
        let _ = writeln!(out, "{line} {:>7}", entry.requests);
    };
    for entry in &result.entries {
        row(&mut out, entry);
    }
    let _ = writeln!(out, "{rule}");
    row(&mut out, &result.total);

    phases(&mut out, &result.total);

    let mut failures: Vec<(u64, String)> = result
        .entries
        .iter()
        .flat_map(|e| {
            e.failures_by_kind.iter().map(move |f| {
                (
                    f.count,
                    format!("{} {}: {} ({})", e.method, e.name, f.message, f.kind),
                )
            })
        })
        .collect();
    if !failures.is_empty() {
        failures.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let _ = writeln!(out, "\nError report");
        let _ = writeln!(out, "{:<18} Error", "# occurrences");
        for (count, text) in failures {
            let _ = writeln!(out, "{count:<18} {}", one_line(&text));
        }
    }
    if !result.errors.is_empty() {
        let _ = writeln!(out, "\nExceptions (errors not tied to a request)");
        let _ = writeln!(out, "{:<18} Message", "# occurrences");
        for error in &result.errors {
            let _ = writeln!(out, "{:<18} {}", error.count, one_line(&error.message));
        }
    }
    if result.dropped_iterations > 0 {
        let _ = writeln!(
            out,
            "\n{} iterations were dropped: the open model could not start them in time",
            result.dropped_iterations
        );
    }
    if result.cut_iterations > 0 {
        let _ = writeln!(
            out,
            "\n{} iterations were cut at the stop: their users did not finish them within the stop timeout (raise --stop-timeout to let them finish)",
            result.cut_iterations
        );
    }
    monitors(&mut out, &result.monitors);
    if let Some(capacity) = &result.capacity {
        super::capacity::text(&mut out, capacity);
    }
    if !result.verdicts.is_empty() {
        let _ = writeln!(out, "\nThresholds");
        for verdict in &result.verdicts {
            let _ = writeln!(
                out,
                "{}  {}  (observed {})",
                if verdict.passed { "PASS" } else { "FAIL" },
                verdict.expression,
                verdict.observed_text
            );
        }
    }
    out
}

/// Where the answered requests' time went, one line per phase in k6's manner
/// (`http_req_connecting`, `http_req_waiting`, ...): avg, min, med, max, p(90), p(95) and how
/// many requests had it (dns, connect and tls only those that opened a connection).
fn phases(out: &mut String, total: &EntryStats) {
    if total.phases.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nRequest phases (ms; dns, connect and tls of the requests that opened a connection)"
    );
    for (name, times) in total.phases.all() {
        let Some(times) = times.filter(|t| t.count > 0) else {
            continue;
        };
        let at = |p: f64| ms(times.percentile_us(p) as f64 / 1000.0);
        let _ = writeln!(
            out,
            "{:.<12}: avg={:<8} min={:<8} med={:<8} max={:<8} p(90)={:<8} p(95)={:<8} count={}",
            format!("{name} "),
            ms(times.avg_us() / 1000.0),
            ms(times.min_us as f64 / 1000.0),
            at(50.0),
            ms(times.max_us as f64 / 1000.0),
            at(90.0),
            at(95.0),
            times.count
        );
    }
}

/// The monitors' series (min, mean, max, last), what happened to them, and whether chorus
/// itself was short of CPU. chorus's own series alone are not shown (they are in the JSON).
fn monitors(out: &mut String, monitored: &Monitored) {
    let asked = monitored
        .series
        .iter()
        .any(|s| !s.name.starts_with("chorus."));
    if asked {
        let width = name_width(monitored.series.iter().map(|s| s.name.as_str()));
        let _ = writeln!(
            out,
            "\n{:<width$} {:>11} {:>11} {:>11} {:>11}",
            "Monitors (each second)", "min", "mean", "max", "last"
        );
        for series in monitored.series.iter().filter(|s| !s.points.is_empty()) {
            let values = series.points.iter().map(|(_, v)| *v);
            let min = values.clone().fold(f64::INFINITY, f64::min);
            let max = values.clone().fold(f64::NEG_INFINITY, f64::max);
            let mean = values.sum::<f64>() / series.points.len() as f64;
            let last = series.points.last().map_or(0.0, |(_, v)| *v);
            let show = |v: f64| series.unit.show(v);
            let _ = writeln!(
                out,
                "{:<width$} {:>11} {:>11} {:>11} {:>11}",
                series.name,
                show(min),
                show(mean),
                show(max),
                show(last)
            );
        }
    }
    for notice in &monitored.notices {
        let _ = writeln!(out, "at {} s: {}", notice.second, one_line(&notice.text));
    }
    if monitored.generator_saturated_seconds > 0 {
        let _ = writeln!(
            out,
            "\nchorus was short of CPU for {} s of this run: the latencies of those seconds include its own queueing",
            monitored.generator_saturated_seconds
        );
    }
    for (worker, seconds) in &monitored.workers_saturated_seconds {
        let _ = writeln!(
            out,
            "\nworker {worker:?} was short of CPU for {seconds} s of this run: its latencies of those seconds include its own queueing"
        );
    }
}

/// A compact table of the run so far: per name requests, failures, current req/s, p50, p95,
/// p99 (ms), then the `Aggregated` row.
pub fn live_table(aggregate: &Aggregate) -> String {
    let rows = aggregate.rows();
    let total = aggregate.total_row();
    let width = name_width(rows.iter().map(|r| r.name.as_str()));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<7} {:<width$} {:>8} {:>7} {:>8} {:>7} {:>7} {:>7}",
        "Type", "Name", "reqs", "fails", "req/s", "p50", "p95", "p99"
    );
    let line = |out: &mut String, row: &LiveRow| {
        let _ = writeln!(
            out,
            "{:<7} {:<width$} {:>8} {:>7} {:>8.1} {:>7} {:>7} {:>7}",
            row.method,
            row.name,
            row.requests,
            row.failures,
            row.current_rps,
            ms(row.p50_us as f64 / 1000.0),
            ms(row.p95_us as f64 / 1000.0),
            ms(row.p99_us as f64 / 1000.0),
        );
    };
    for row in &rows {
        line(&mut out, row);
    }
    line(&mut out, &total);
    out
}

fn name_width<'a>(names: impl Iterator<Item = &'a str>) -> usize {
    names
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(10, 80)
}

fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::stats::{Phases, RequestSample, RunMeta, Setup, Tally};

    #[test]
    fn the_summary_says_where_the_time_went_phase_by_phase() {
        let mut tally = Tally::new();
        for (ms, opened) in [(10u64, true), (20, false), (30, false)] {
            let sample = RequestSample {
                method: "GET",
                name: "/a",
                latency: Duration::from_millis(ms),
                response_bytes: 10,
                failure: None,
            };
            let phases = Phases {
                setup: opened.then_some(Setup {
                    dns: Duration::from_micros(500),
                    connect: Duration::from_millis(2),
                    tls: None,
                }),
                ttfb: Duration::from_millis(ms - 1),
                download: Duration::from_millis(1),
            };
            tally.record_phased(&sample, &phases);
        }
        let mut aggregate = Aggregate::new();
        aggregate.absorb(tally.take());
        let text = summary(&aggregate.finish(RunMeta::default()));
        let lines: Vec<&str> = text
            .lines()
            .skip_while(|line| !line.starts_with("Request phases"))
            .take(5)
            .collect();
        assert_eq!(
            lines[1],
            "dns ........: avg=0.50     min=0.50     med=0.50     max=0.50     p(90)=0.50     p(95)=0.50     count=1",
            "{text}"
        );
        assert!(lines[2].starts_with("connect ....: avg=2.00 "), "{text}");
        // No TLS was measured: no line for it.
        assert!(lines[3].starts_with("ttfb .......: avg=19.0 "), "{text}");
        assert!(
            lines[3].ends_with("max=29.0     p(90)=29.0     p(95)=29.0     count=3"),
            "{text}"
        );
        assert!(lines[4].starts_with("download ...: avg=1.00 "), "{text}");
    }
}
