//! Integration tests for `stats` (see tests/integration.rs): the report files as a user gets
//! them, checked against what real Locust 2.x writes (tests/fixtures/stats/locust/), and the
//! HTML page's self-containedness.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chorus::stats::{
    Aggregate, Failure, FailureKind, RequestSample, RunMeta, RunResult, Tally, report, thresholds,
};

mod phases;
mod seconds;

const START_S: u64 = 1_795_588_582;

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/stats/locust")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// A small run shaped like the Locust capture: two workers, several names and methods,
/// failures of two kinds, an exception, a quiet first second.
fn sample_run() -> RunResult {
    let mut workers = [Tally::new(), Tally::new()];
    let mut aggregate = Aggregate::new();
    aggregate.tick(START_S, 0);
    let names = [
        ("POST", "/api/user/login"),
        ("GET", "/api/course"),
        ("GET", "/api/v2/data/config/[gameId]"),
        ("GET", "/api/does-not-exist"),
        ("POST", "/api/code/valid, \"quoted\""),
    ];
    for second in 1..=4u64 {
        for i in 0..200u64 {
            let (method, name) = names[(i % 5) as usize];
            let failure = match i % 5 {
                3 => Some(Failure {
                    kind: FailureKind::Status(404),
                    message: "HTTP 404: {\"error\":\"no route\"}",
                }),
                4 if i % 2 == 0 => Some(Failure {
                    kind: FailureKind::Timeout,
                    message: "no response within 30s",
                }),
                _ => None,
            };
            workers[(i % 2) as usize].record(&RequestSample {
                method,
                name,
                latency: Duration::from_micros(800 + i * 137 + second * 1000),
                response_bytes: 40 + i % 90,
                failure,
            });
        }
        workers[0].record_error("template error in flows[0].steps[2].url: undefined value");
        for worker in &mut workers {
            aggregate.absorb(worker.take());
        }
        aggregate.tick(START_S + second, 5);
    }
    aggregate.finish(RunMeta {
        scenario: "scenario.yaml".to_owned(),
        host: Some("http://127.0.0.1:8001".to_owned()),
        start_unix_ms: START_S * 1000,
        end_unix_ms: (START_S + 4) * 1000 + 500,
        users: 5,
        spawn_rate: Some(5.0),
        thresholds: thresholds::parse_all(&["p95<300ms", "/api/does-not-exist: failures<1%"])
            .unwrap(),
    })
}

fn write_csv(dir: &Path) -> Vec<PathBuf> {
    report::csv::write(&sample_run(), &dir.join("out/run")).expect("the CSV files are written")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// What a field looks like: Locust's formats, not its values.
fn shape(field: &str) -> &'static str {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if field.is_empty() {
        "empty"
    } else if field == "N/A" {
        "N/A"
    } else if digits(field) {
        "int"
    } else if let Some((a, b)) = field.split_once('.') {
        let b = b.split_once('e').map_or(b, |(m, _)| m);
        if digits(a) && digits(b) {
            "float"
        } else {
            "text"
        }
    } else if field.len() == 20 && field.ends_with('Z') && field.as_bytes()[10] == b'T' {
        "utc"
    } else {
        "text"
    }
}

fn rows(text: &str) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

fn shapes(row: &[String]) -> Vec<&'static str> {
    row.iter().map(|f| shape(f)).collect()
}

#[test]
fn csv_headers_are_locusts_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_csv(dir.path());
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    crate::eqnice!(
        [
            "run_stats.csv",
            "run_stats_history.csv",
            "run_failures.csv",
            "run_exceptions.csv"
        ]
        .to_vec(),
        names
    );
    for (file, kind) in files
        .iter()
        .zip(["stats", "stats_history", "failures", "exceptions"])
    {
        let ours = read(file);
        let first_line = &ours[..ours.find('\n').unwrap() + 1];
        crate::eqnice!(
            fixture(&format!("header_{kind}.csv")),
            first_line.to_owned()
        );
        assert!(
            ours.ends_with("\r\n"),
            "{kind}: lines end with \\r\\n like Python's csv"
        );
    }
}

#[test]
fn stats_csv_numbers_have_locusts_shape() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_csv(dir.path());
    let locust = rows(&fixture("sample_stats.csv"));
    let ours = rows(&read(&files[0]));
    let locust_row = shapes(&locust[1]);
    // Type, Name, counts, int median, float avg/min/max/size/rates, int percentiles
    crate::eqnice!(
        [
            "text", "text", "int", "int", "int", "float", "float", "float", "float", "float",
            "float", "int", "int", "int", "int", "int", "int", "int", "int", "int", "int", "int"
        ]
        .to_vec(),
        locust_row
    );
    for row in &ours[1..] {
        crate::eqnice!(locust_row[2..], shapes(row)[2..]);
    }
    let last = ours.last().unwrap();
    let locust_last = locust.last().unwrap();
    crate::eqnice!(locust_last[..2], last[..2]);
    crate::eqnice!(shapes(locust_last), shapes(last));
    // Locust's row order: by name, then method; every request counted once.
    let names: Vec<&str> = ours[1..ours.len() - 1]
        .iter()
        .map(|r| r[1].as_str())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    crate::eqnice!(sorted, names);
    let sum: u64 = ours[1..ours.len() - 1]
        .iter()
        .map(|r| r[2].parse::<u64>().unwrap())
        .sum();
    crate::eqnice!(last[2], sum.to_string());
    crate::eqnice!("800", last[2]);
    crate::eqnice!("/api/code/valid, \"quoted\"", ours[1][1]);
}

#[test]
fn stats_history_csv_has_locusts_shape() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_csv(dir.path());
    let locust = rows(&fixture("sample_stats_history.csv"));
    let ours = rows(&read(&files[1]));
    crate::eqnice!(6, ours.len());
    // the quiet first second: N/A percentiles and Locust's zeros
    crate::eqnice!(shapes(&locust[1]), shapes(&ours[1]));
    crate::eqnice!(locust[1][4..], ours[1][4..]);
    // seconds with requests
    let locust_busy = shapes(locust.last().unwrap());
    for row in &ours[2..] {
        crate::eqnice!(locust_busy, shapes(row));
        assert!(row[4].ends_with(".000000") || row[4].split('.').nth(1).unwrap().len() == 6);
    }
    crate::eqnice!(
        ["1795588586", "5", "", "Aggregated", "200.000000"],
        ours[5][..5]
    );
    crate::eqnice!("800", ours[5][17]);
}

#[test]
fn failures_and_exceptions_csv_have_locusts_shape() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_csv(dir.path());
    let locust = rows(&fixture("sample_failures.csv"));
    let ours = rows(&read(&files[2]));
    crate::eqnice!(3, ours.len());
    for row in &ours[1..] {
        crate::eqnice!(shapes(&locust[1]), shapes(row));
    }
    crate::eqnice!(
        [
            "POST",
            "/api/code/valid, \"quoted\"",
            "no response within 30s",
            "80"
        ],
        ours[1][..4]
    );
    crate::eqnice!(
        [
            "GET",
            "/api/does-not-exist",
            "HTTP 404: {\"error\":\"no route\"}",
            "160"
        ],
        ours[2][..4]
    );

    let locust = rows(&fixture("sample_exceptions.csv"));
    let ours = rows(&read(&files[3]));
    crate::eqnice!(2, ours.len());
    crate::eqnice!(
        [
            "4",
            "template error in flows[0].steps[2].url: undefined value",
            "",
            "local"
        ]
        .to_vec(),
        ours[1]
    );
    crate::eqnice!(shape(&locust[1][0]), shape(&ours[1][0]));
    crate::eqnice!(locust[1][3], ours[1][3]);
}

#[test]
fn json_report_reads_back_and_merges_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.json");
    let result = sample_run();
    report::json::write(&result, &path).unwrap();
    let text = read(&path);
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    crate::eqnice!("chorus-result", value["format"]);
    crate::eqnice!(1, value["version"]);
    assert!(value["total"]["histogram"].as_str().unwrap().len() > 20);
    crate::eqnice!(5, value["history"].as_array().unwrap().len());
    crate::eqnice!("p95<300ms", value["meta"]["thresholds"][0]);
    crate::eqnice!(false, value["verdicts"][1]["passed"]);
    let back = RunResult::from_json(&text).unwrap();
    crate::eqnice!(result, back);

    let mut merged = back.clone();
    merged.merge(&result);
    let mut all = result.total.histogram.clone();
    all.add(&result.total.histogram);
    crate::eqnice!(1600, merged.total.requests);
    for p in [50.0, 90.0, 95.0, 99.0, 99.9] {
        crate::eqnice!(
            all.percentile_micros(p).min(result.total.max_us),
            merged.total.percentile_us(p)
        );
    }
}

#[test]
fn html_report_is_self_contained_and_holds_the_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.html");
    report::html::write(&sample_run(), &path).unwrap();
    let page = read(&path);
    assert!(page.starts_with("<!DOCTYPE html>"));
    let lower = page.to_ascii_lowercase();
    for attribute in ["src=", "href="] {
        for (at, _) in lower.match_indices(attribute) {
            let value = lower[at + attribute.len()..].trim_start_matches(['"', '\'']);
            assert!(
                !value.starts_with("http:")
                    && !value.starts_with("https:")
                    && !value.starts_with("//"),
                "network resource at byte {at}: {}",
                &page[at..(at + 80).min(page.len())]
            );
        }
    }
    for forbidden in ["<script src", "<link", "@import", "url(", "<iframe"] {
        assert!(!lower.contains(forbidden), "the page contains {forbidden}");
    }
    for row in [
        "<td>GET</td><td>/api/course</td><td>160</td><td>0</td>",
        "<td>POST</td><td>/api/code/valid, &quot;quoted&quot;</td><td>160</td><td>80</td>",
        "<td></td><td>Aggregated</td><td>800</td><td>240</td>",
        "HTTP 404: {&quot;error&quot;:&quot;no route&quot;}",
        "template error in flows[0].steps[2].url: undefined value",
        "p95&lt;300ms",
    ] {
        assert!(page.contains(row), "the page lacks {row}");
    }
    crate::eqnice!(3, page.matches("<svg").count());
    assert!(page.contains("Requests and failures per second"));
    assert!(page.contains("Users"));
}

#[test]
fn terminal_summary_and_live_table() {
    let result = sample_run();
    let text = report::summary(&result);
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle} in\n{text}"))
            .to_owned()
    };
    assert!(line("# reqs").starts_with("Type     Name"));
    let aggregated = line("Aggregated");
    assert!(aggregated.contains(" 800 "), "{aggregated}");
    assert!(aggregated.contains("240(30.00%)"), "{aggregated}");
    assert!(line("99.99%").contains("100%"));
    assert!(line("HTTP 404").starts_with("160 "));
    assert!(line("template error").starts_with("4 "));
    crate::eqnice!("PASS  p95<300ms  (observed ", &line("p95<300ms")[..27]);
    assert!(line("does-not-exist: failures").starts_with("FAIL"));

    let mut aggregate = Aggregate::new();
    let mut worker = Tally::new();
    worker.record(&RequestSample {
        method: "GET",
        name: "/a",
        latency: Duration::from_millis(12),
        response_bytes: 1,
        failure: None,
    });
    aggregate.absorb(worker.take());
    aggregate.tick(START_S, 1);
    let table = report::live_table(&aggregate);
    let lines: Vec<&str> = table.lines().collect();
    crate::eqnice!(3, lines.len());
    assert!(
        lines[0].contains("req/s") && lines[0].contains("p99"),
        "{table}"
    );
    assert!(lines[1].starts_with("GET     /a"), "{table}");
    assert!(lines[2].contains("Aggregated"), "{table}");
}
