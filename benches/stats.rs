//! Times the stats hot path against bare hdrhistogram in the same run and prints ns/op and
//! the ratio (no absolute numbers are asserted anywhere):
//!
//! - `Tally::record` (name lookup by `&str`, counters, histogram) vs
//!   `hdrhistogram::Histogram::record` alone, and vs recording into 20 bare histograms picked
//!   by index (the same cache footprint, without the name lookup);
//! - the same with 10 % failures;
//! - `Snapshot::merge` of 20 names vs 20 bare `Histogram::add` calls;
//! - a snapshot's JSON round trip (what a cluster worker would send).
//!
//! Run with `cargo bench --bench stats`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use chorus::stats::{Failure, FailureKind, RequestSample, Snapshot, Tally};

const NAMES: [&str; 20] = [
    "/api/user/login",
    "/api/v2/auth/login/glasslab",
    "/api/course",
    "/api/course/create",
    "/api/code/valid",
    "/api/user/register",
    "/api/v2/lms/courses",
    "/api/v2/data/config/[gameId]",
    "/api/v2/data/game/[gameId]/playInfo",
    "/api/v2/data/session/start",
    "/api/v2/data/events",
    "/api/v2/data/session/end",
    "/api/v2/data/game/[gameId]",
    "/api/v2/data/game/[gameId]/totalTimePlayed",
    "/",
    "/teacher",
    "/student",
    "/__demo/stats",
    "/static/app.js",
    "/static/app.css",
];

/// Latencies spread like a real run: mostly 1-50 ms, a tail to seconds.
fn latencies(n: usize) -> Vec<u64> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let base = 1_000 + x % 49_000;
            if x.is_multiple_of(100) {
                base * 40
            } else {
                base
            }
        })
        .collect()
}

/// Seconds per iteration.
fn time<F: FnMut()>(iterations: usize, mut f: F) -> f64 {
    // one warm-up pass, then the best of three
    f();
    (0..3)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
        .as_secs_f64()
        / iterations as f64
}

fn report(what: &str, ours: f64, reference: f64, reference_name: &str) {
    let ours_ns = ours * 1e9;
    let reference_ns = reference * 1e9;
    println!(
        "{what:<44} {ours_ns:>9.1} ns/op   {reference_name:<34} {reference_ns:>9.1} ns/op   ratio {:>5.2}",
        ours_ns / reference_ns.max(1e-9)
    );
}

fn snapshot(latencies: &[u64]) -> Snapshot {
    let mut tally = Tally::new();
    for (i, micros) in latencies.iter().enumerate() {
        tally.record(&RequestSample {
            method: "GET",
            name: NAMES[i % NAMES.len()],
            latency: Duration::from_micros(*micros),
            response_bytes: 512,
            failure: None,
        });
    }
    tally.take()
}

fn main() {
    const N: usize = 2_000_000;
    let values = latencies(N);

    let mut bare = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
    let reference = time(N, || {
        for v in &values {
            bare.saturating_record(black_box(*v));
        }
    });

    let mut bare20: Vec<_> = (0..NAMES.len())
        .map(|_| hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap())
        .collect();
    let reference20 = time(N, || {
        for (i, v) in values.iter().enumerate() {
            bare20[i % NAMES.len()].saturating_record(black_box(*v));
        }
    });

    let mut tally = Tally::new();
    let record = time(N, || {
        for (i, v) in values.iter().enumerate() {
            tally.record(black_box(&RequestSample {
                method: "GET",
                name: NAMES[i % NAMES.len()],
                latency: Duration::from_micros(*v),
                response_bytes: 512,
                failure: None,
            }));
        }
    });
    black_box(tally.take());
    report(
        "Tally::record (20 names)",
        record,
        reference,
        "hdrhistogram Histogram::record",
    );
    report(
        "Tally::record (20 names)",
        record,
        reference20,
        "20 histograms, record by index",
    );

    let failure = Failure {
        kind: FailureKind::Status(503),
        message: "HTTP 503: {\"error\":\"overloaded\"}",
    };
    let record_failures = time(N, || {
        for (i, v) in values.iter().enumerate() {
            tally.record(black_box(&RequestSample {
                method: "POST",
                name: NAMES[i % NAMES.len()],
                latency: Duration::from_micros(*v),
                response_bytes: 512,
                failure: (i % 10 == 0).then_some(failure),
            }));
        }
    });
    black_box(tally.take());
    report(
        "Tally::record (20 names, 10 % failures)",
        record_failures,
        reference,
        "hdrhistogram Histogram::record",
    );

    let a = snapshot(&values[..N / 2]);
    let b = snapshot(&values[N / 2..]);
    const MERGES: usize = 200;
    let merge = time(MERGES, || {
        let mut merged = a.clone();
        for _ in 0..MERGES {
            merged.merge(black_box(&b));
        }
        black_box(merged);
    });
    let bare_a: Vec<_> = a
        .entries
        .iter()
        .map(|e| e.histogram.inner().into_owned())
        .collect();
    let bare_b: Vec<_> = b
        .entries
        .iter()
        .map(|e| e.histogram.inner().into_owned())
        .collect();
    let bare_merge = time(MERGES, || {
        let mut merged = bare_a.clone();
        for _ in 0..MERGES {
            for (mine, theirs) in merged.iter_mut().zip(&bare_b) {
                mine.add(black_box(theirs)).unwrap();
            }
        }
        black_box(merged);
    });
    report(
        "Snapshot::merge (20 names)",
        merge,
        bare_merge,
        "20 x hdrhistogram Histogram::add",
    );

    const ROUND_TRIPS: usize = 20;
    let json = time(ROUND_TRIPS, || {
        for _ in 0..ROUND_TRIPS {
            let text = serde_json::to_string(black_box(&a)).unwrap();
            black_box(serde_json::from_str::<Snapshot>(&text).unwrap());
        }
    });
    report(
        "Snapshot JSON round trip (20 names)",
        json,
        merge,
        "Snapshot::merge (20 names)",
    );
    let size = serde_json::to_string(&a).unwrap().len();
    println!("a 20-name snapshot is {size} bytes of JSON");
}
