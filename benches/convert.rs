//! `chorus convert` at scale, on a realistic capture made up in the process
//! (`util/capture_gen.rs`: logins, pages with forms and links, JSON APIs with ids, tokens, a
//! paced telemetry loop, logouts):
//!
//! 1. time per entry at 10,000, 100,000 and 250,000 entries: reading the HAR text (the
//!    reference, a linear pass over the same bytes, measured in the same run) and
//!    converting it, each in seconds and µs per entry, their ratio, and how the time per
//!    entry grows from the smallest to the largest capture (1.0: linear). Target: 250,000
//!    entries read and converted in under 30 s (release).
//! 2. peak memory of a `chorus convert` process on a 50 MB capture (its `VmHWM`, read from
//!    /proc while it runs), against the file's size. Target: under 2x.
//!
//! `cargo bench --bench convert`. `CHORUS_BENCH_ENTRIES=10000,100000` chooses the sizes,
//! `CHORUS_BENCH_MB=50` the memory run's capture (0 skips it), `CHORUS_BENCH_HAR_OUT=FILE`
//! only writes a capture of the first size to FILE (to profile `chorus convert` or compare
//! two builds' output).

#[path = "util/capture_gen.rs"]
mod capture_gen;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chorus::convert::{Options, convert_owned};

const TARGET_250K: Duration = Duration::from_secs(30);
const TARGET_MEMORY_RATIO: f64 = 2.0;

fn sizes() -> Vec<usize> {
    std::env::var("CHORUS_BENCH_ENTRIES")
        .ok()
        .map(|list| {
            list.split(',')
                .filter_map(|n| n.trim().replace('_', "").parse().ok())
                .collect()
        })
        .unwrap_or_else(|| vec![10_000, 100_000, 250_000])
}

struct Timed {
    entries: usize,
    read: Duration,
    convert: Duration,
}

fn per_entry_us(time: Duration, entries: usize) -> f64 {
    time.as_secs_f64() * 1e6 / entries as f64
}

fn time_one(wanted: usize) -> Timed {
    let text = serde_json::to_string(&capture_gen::capture(wanted)).expect("a HAR serializes");
    let started = Instant::now();
    let (har, _) = chorus::har::read::read_str(&text, "generated.har").expect("the HAR reads");
    let read = started.elapsed();
    drop(text);
    let entries = har.log.entries.len();
    let started = Instant::now();
    let conversion =
        convert_owned(har, "generated.har", &Options::default()).expect("the capture converts");
    let convert = started.elapsed();
    eprintln!(
        "  ({entries} entries: {} requests kept, {} extracted values, {} flow(s), {} KB of YAML)",
        conversion.requests,
        conversion.extracted_values,
        conversion.flows,
        conversion.yaml.len() / 1024
    );
    Timed {
        entries,
        read,
        convert,
    }
}

fn time_per_entry() {
    println!("convert time per entry (reference: reading the same HAR text)");
    println!(
        "{:>9}  {:>9} {:>11}  {:>9} {:>11}  {:>13}",
        "entries", "read s", "read µs/e", "convert s", "convert µs/e", "convert/read"
    );
    let mut rows = Vec::new();
    for wanted in sizes() {
        let row = time_one(wanted);
        println!(
            "{:>9}  {:>9.2} {:>11.1}  {:>9.2} {:>11.1}  {:>12.1}x",
            row.entries,
            row.read.as_secs_f64(),
            per_entry_us(row.read, row.entries),
            row.convert.as_secs_f64(),
            per_entry_us(row.convert, row.entries),
            row.convert.as_secs_f64() / row.read.as_secs_f64()
        );
        rows.push(row);
    }
    if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
        if rows.len() > 1 {
            println!(
                "growth of convert µs/entry from {} to {} entries: {:.2}x (1.0 = linear; reading grew {:.2}x)",
                first.entries,
                last.entries,
                per_entry_us(last.convert, last.entries)
                    / per_entry_us(first.convert, first.entries),
                per_entry_us(last.read, last.entries) / per_entry_us(first.read, first.entries)
            );
        }
    }
    if let Some(row) = rows.iter().find(|r| r.entries >= 250_000) {
        let total = row.read + row.convert;
        println!(
            "{} entries read and converted in {:.1} s: {} (target < {} s)",
            row.entries,
            total.as_secs_f64(),
            if total < TARGET_250K { "PASS" } else { "MISS" },
            TARGET_250K.as_secs()
        );
    }
}

/// Peak resident memory of `chorus convert` on `capture`, in KiB, and how long it took.
fn peak_of_convert(capture: &Path, output: &Path) -> (u64, Duration) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_chorus"))
        .arg("convert")
        .arg(capture)
        .arg("-o")
        .arg(output)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chorus runs");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        // The high-water mark only grows; the last reading before the exit is the peak (the
        // process's last few milliseconds are writing what it already holds).
        if let Ok(status) = std::fs::read_to_string(&status_file) {
            if let Some(kib) = status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok())
            {
                peak = peak.max(kib);
            }
        }
        if let Some(status) = child.try_wait().expect("waiting for chorus") {
            let output = child.wait_with_output().expect("chorus's output");
            assert!(
                status.success(),
                "chorus convert failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    (peak, started.elapsed())
}

fn memory() {
    let megabytes: usize = std::env::var("CHORUS_BENCH_MB")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50);
    if megabytes == 0 {
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary folder");
    let capture = dir.path().join("capture.har");
    let (har, text) = capture_gen::capture_of_size(megabytes << 20);
    let entries = har.log.entries.len();
    drop(har);
    std::fs::write(&capture, &text).expect("the capture is written");
    drop(text);
    let size = std::fs::metadata(&capture).expect("the capture").len();
    let (peak_kib, took) = peak_of_convert(&capture, &dir.path().join("scenario.yaml"));
    let ratio = (peak_kib * 1024) as f64 / size as f64;
    println!(
        "\nconvert memory: a {:.1} MB capture ({entries} entries) converted in {:.1} s",
        size as f64 / 1e6,
        took.as_secs_f64()
    );
    println!(
        "peak resident memory {:.1} MB = {ratio:.2}x the file's size: {} (target < {TARGET_MEMORY_RATIO}x)",
        (peak_kib * 1024) as f64 / 1e6,
        if ratio < TARGET_MEMORY_RATIO {
            "PASS"
        } else {
            "MISS"
        }
    );
}

fn main() {
    if let Ok(path) = std::env::var("CHORUS_BENCH_HAR_OUT") {
        let entries = sizes().first().copied().unwrap_or(10_000);
        let text = serde_json::to_string(&capture_gen::capture(entries)).expect("serializes");
        std::fs::write(&path, text).expect("the capture is written");
        println!("wrote {path}");
        return;
    }
    time_per_entry();
    memory();
}
