//! Locust-compatible CSV: `PREFIX_stats.csv`, `PREFIX_stats_history.csv`,
//! `PREFIX_failures.csv`, `PREFIX_exceptions.csv`, with Locust 2.x's exact columns, row order,
//! `Aggregated` row, `\r\n` line ends and number formats (integer ms percentiles, Python float
//! `repr` for averages, `%f` rates and `N/A` percentiles in the history). The fixtures under
//! `tests/fixtures/stats/locust/` are what real Locust wrote.
//!
//! Where chorus knows more than Locust the CSV still says what Locust would: the history's
//! percentiles are cumulative (as Locust writes them for the `Aggregated` row), the failures'
//! `Error` is the one sample message of a (method, name, kind), and exceptions have no
//! traceback (`Nodes` is `local`). Two differences in meaning, not in form: a history row's
//! `Requests/s` and `Failures/s` are those of its own second (Locust smooths over ~10 s),
//! and `Requests/s` in `stats.csv` divides by the run's duration (Locust: by the time from
//! the start to the last request). Percentiles are whole milliseconds from chorus's HDR
//! histograms (Locust rounds samples to two significant digits first).

use std::io;
use std::path::{Path, PathBuf};

use crate::stats::{EntryStats, FailureKind, PERCENTILES, RunResult};

const PERCENTILE_COLUMNS: [&str; 11] = [
    "50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%",
];

/// Writes the four files next to `prefix` (`out/run` -> `out/run_stats.csv`, ...), creating
/// the folder if needed, and returns their paths.
pub fn write(result: &RunResult, prefix: &Path) -> io::Result<Vec<PathBuf>> {
    let base = prefix.as_os_str().to_string_lossy().into_owned();
    if let Some(parent) = prefix.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|err| {
            io::Error::new(
                err.kind(),
                format!(
                    "cannot create the folder {} for --csv: {err}",
                    parent.display()
                ),
            )
        })?;
    }
    let files = [
        ("_stats.csv", stats_csv(result)),
        ("_stats_history.csv", stats_history_csv(result)),
        ("_failures.csv", failures_csv(result)),
        ("_exceptions.csv", exceptions_csv(result)),
    ];
    let mut written = Vec::new();
    for (suffix, text) in files {
        let path = PathBuf::from(format!("{base}{suffix}"));
        std::fs::write(&path, text).map_err(|err| {
            io::Error::new(
                err.kind(),
                format!("cannot write {}: {err}", path.display()),
            )
        })?;
        written.push(path);
    }
    Ok(written)
}

/// `PREFIX_stats.csv`: one row per (method, name) by name then method, then `Aggregated`.
pub fn stats_csv(result: &RunResult) -> String {
    let mut header = vec![
        "Type",
        "Name",
        "Request Count",
        "Failure Count",
        "Median Response Time",
        "Average Response Time",
        "Min Response Time",
        "Max Response Time",
        "Average Content Size",
        "Requests/s",
        "Failures/s",
    ];
    header.extend(PERCENTILE_COLUMNS);
    let mut rows = vec![strings(&header)];
    for entry in result.entries.iter().chain([&result.total]) {
        let mut row = vec![
            entry.method.clone(),
            entry.name.clone(),
            entry.requests.to_string(),
            entry.failures.to_string(),
            ms_int(entry.percentile_us(50.0), entry.requests).replace("N/A", "0"),
            py_float(entry.avg_ms()),
            or_zero(entry.requests, entry.min_ms()),
            or_zero(entry.requests, entry.max_ms()),
            or_zero(entry.requests, entry.avg_content_bytes()),
            py_float(result.rps(entry)),
            py_float(result.failures_per_sec(entry)),
        ];
        row.extend(percentile_fields(entry));
        rows.push(row);
    }
    to_csv(&rows)
}

/// `PREFIX_stats_history.csv`: one `Aggregated` row per history point (Locust's default
/// without `--csv-full-history`).
pub fn stats_history_csv(result: &RunResult) -> String {
    let mut header = vec![
        "Timestamp",
        "User Count",
        "Type",
        "Name",
        "Requests/s",
        "Failures/s",
    ];
    header.extend(PERCENTILE_COLUMNS);
    header.extend([
        "Total Request Count",
        "Total Failure Count",
        "Total Median Response Time",
        "Total Average Response Time",
        "Total Min Response Time",
        "Total Max Response Time",
        "Total Average Content Size",
    ]);
    let mut rows = vec![strings(&header)];
    for point in &result.history {
        let n = point.total_requests;
        let mut row = vec![
            point.unix_seconds.to_string(),
            point.users.to_string(),
            String::new(),
            "Aggregated".to_owned(),
            format!("{:.6}", point.rps),
            format!("{:.6}", point.failures_per_sec),
        ];
        row.extend(
            (0..PERCENTILES.len())
                .map(|i| ms_int(point.total_percentiles_us.get(i).copied().unwrap_or(0), n)),
        );
        row.extend([
            n.to_string(),
            point.total_failures.to_string(),
            ms_int(point.total_median_us(), n).replace("N/A", "0"),
            py_float(point.total_avg_ms()),
            or_zero(n, point.total_min_us as f64 / 1000.0),
            or_zero(n, point.total_max_us as f64 / 1000.0),
            or_zero(n, point.total_avg_content_bytes()),
        ]);
        rows.push(row);
    }
    to_csv(&rows)
}

/// `PREFIX_failures.csv`: one row per (method, name, kind) with its sample message.
pub fn failures_csv(result: &RunResult) -> String {
    let mut rows = vec![strings(&[
        "Method",
        "Name",
        "Error",
        "Occurrences",
        "First Seen",
        "Last Seen",
    ])];
    let mut failures: Vec<(&EntryStats, FailureKind, u64, &str, u64, u64)> = Vec::new();
    for entry in &result.entries {
        for f in &entry.failures_by_kind {
            failures.push((
                entry,
                f.kind,
                f.count,
                &f.message,
                f.first_seen_unix_ms,
                f.last_seen_unix_ms,
            ));
        }
    }
    failures.sort_by(|a, b| (&a.0.name, &a.0.method, a.1).cmp(&(&b.0.name, &b.0.method, b.1)));
    for (entry, kind, count, message, first, last) in failures {
        let error = if message.is_empty() {
            kind.to_string()
        } else {
            message.to_owned()
        };
        rows.push(vec![
            entry.method.clone(),
            entry.name.clone(),
            error,
            count.to_string(),
            utc_timestamp(first),
            utc_timestamp(last),
        ]);
    }
    to_csv(&rows)
}

/// `PREFIX_exceptions.csv`: one row per exception message.
pub fn exceptions_csv(result: &RunResult) -> String {
    let mut rows = vec![strings(&["Count", "Message", "Traceback", "Nodes"])];
    for error in &result.errors {
        rows.push(vec![
            error.count.to_string(),
            error.message.clone(),
            String::new(),
            "local".to_owned(),
        ]);
    }
    to_csv(&rows)
}

fn strings(fields: &[&str]) -> Vec<String> {
    fields.iter().map(|f| (*f).to_owned()).collect()
}

fn percentile_fields(entry: &EntryStats) -> Vec<String> {
    PERCENTILES
        .iter()
        .map(|p| ms_int(entry.percentile_us(*p), entry.requests))
        .collect()
}

/// Whole milliseconds (rounded), or `N/A` without requests, as Locust writes percentiles.
fn ms_int(micros: u64, requests: u64) -> String {
    if requests == 0 {
        "N/A".to_owned()
    } else {
        (micros.saturating_add(500) / 1000).to_string()
    }
}

/// Locust writes `min_response_time or 0` and friends: the integer `0` without requests.
fn or_zero(requests: u64, value: f64) -> String {
    if requests == 0 {
        "0".to_owned()
    } else {
        py_float(value)
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` (UTC) of Unix ms, or empty when unknown.
pub(crate) fn utc_timestamp(unix_ms: u64) -> String {
    if unix_ms == 0 {
        return String::new();
    }
    let secs = unix_ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A float as Python's `repr` writes it: shortest round-trip digits, always a `.0` or an
/// exponent, exponent form below 1e-4 and from 1e16 (`5e-05`, `1e+16`).
pub(crate) fn py_float(value: f64) -> String {
    if value.is_nan() {
        return "nan".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    if value == 0.0 {
        return if value.is_sign_negative() {
            "-0.0"
        } else {
            "0.0"
        }
        .to_owned();
    }
    let magnitude = value.abs();
    if !(1e-4..1e16).contains(&magnitude) {
        let text = format!("{value:e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let (sign, digits) = match exponent.strip_prefix('-') {
            Some(digits) => ('-', digits),
            None => ('+', exponent),
        };
        return format!("{mantissa}e{sign}{digits:0>2}");
    }
    let text = format!("{value}");
    if text.contains('.') {
        text
    } else {
        format!("{text}.0")
    }
}

fn to_csv(rows: &[Vec<String>]) -> String {
    let mut writer = ::csv::WriterBuilder::new()
        .terminator(::csv::Terminator::CRLF)
        .flexible(true)
        .from_writer(Vec::new());
    for row in rows {
        // Writing to a Vec cannot fail.
        let _ = writer.write_record(row);
    }
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_read_like_python_repr() {
        assert_eq!(py_float(42.0), "42.0");
        assert_eq!(py_float(0.0), "0.0");
        assert_eq!(py_float(2.756998999939242), "2.756998999939242");
        assert_eq!(py_float(1.248650370489451), "1.248650370489451");
        assert_eq!(py_float(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(py_float(0.0001), "0.0001");
        assert_eq!(py_float(0.00005), "5e-05");
        assert_eq!(py_float(1e16), "1e+16");
        assert_eq!(py_float(123456789.5), "123456789.5");
    }

    #[test]
    fn percentiles_are_whole_milliseconds_or_na() {
        assert_eq!(ms_int(2_499, 1), "2");
        assert_eq!(ms_int(2_500, 1), "3");
        assert_eq!(ms_int(0, 0), "N/A");
        assert_eq!(or_zero(0, 1.5), "0");
        assert_eq!(or_zero(3, 1.5), "1.5");
    }

    #[test]
    fn timestamps_are_iso_utc() {
        assert_eq!(utc_timestamp(1_795_588_582_000), "2026-11-25T06:36:22Z");
        assert_eq!(utc_timestamp(0), "");
        assert_eq!(utc_timestamp(951_782_400_000), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn an_empty_run_writes_locusts_zero_row() {
        let result = RunResult::empty(crate::stats::RunMeta::default());
        let text = stats_csv(&result);
        let last = text.lines().last().unwrap();
        assert_eq!(
            last,
            ",Aggregated,0,0,0,0.0,0,0,0,0.0,0.0,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A"
        );
        assert_eq!(
            failures_csv(&result),
            "Method,Name,Error,Occurrences,First Seen,Last Seen\r\n"
        );
        assert_eq!(exceptions_csv(&result), "Count,Message,Traceback,Nodes\r\n");
    }

    #[test]
    fn fields_are_quoted_like_python_csv() {
        let text = to_csv(&[vec![
            "a,b".to_owned(),
            "say \"hi\"".to_owned(),
            String::new(),
            "two\nlines".to_owned(),
        ]]);
        assert_eq!(text, "\"a,b\",\"say \"\"hi\"\"\",,\"two\nlines\"\r\n");
    }
}
