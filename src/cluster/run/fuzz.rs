//! Fuzz properties of what a master reads from its workers (docs/security.md, "Fuzzing"):
//! frames of any bytes, in any pieces, are messages or errors, and a frame is held as its
//! bytes arrive, whatever length it announces; the messages, with any numbers in them
//! (counts, seconds, users), are counted into the run without a panic, and the run still ends
//! with a history no longer than the run.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::FutureExt as _;
use proptest::collection::vec;
use proptest::prelude::*;
use tokio::io::{AsyncRead, ReadBuf};

use super::tests::{join, master_config};
use super::*;
use crate::cluster::protocol::{
    FirstWord, FrameError, Hello, MAX_FRAME, MAX_HANDSHAKE_FRAME, ScenarioPin, encode,
    read_frame_within,
};
use crate::engine::Plan;
use crate::fuzzing::{config, pieces};
use crate::stats::{Failure, FailureKind, RequestSample, Tally};

/// Bytes handed out in the pieces a socket might deliver; never pending.
struct Pieces<'a> {
    pieces: std::collections::VecDeque<&'a [u8]>,
}

impl AsyncRead for Pieces<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        while let Some(piece) = self.pieces.front_mut() {
            if piece.is_empty() {
                self.pieces.pop_front();
                continue;
            }
            let n = piece.len().min(buf.remaining());
            buf.put_slice(&piece[..n]);
            *piece = &piece[n..];
            break;
        }
        Poll::Ready(Ok(()))
    }
}

/// Reads every frame of `reader` (at most `limit` bytes each) until the first error.
fn read_all<T: for<'de> serde::Deserialize<'de>>(
    reader: &mut Pieces<'_>,
    limit: usize,
) -> (Vec<T>, FrameError) {
    let mut messages = Vec::new();
    loop {
        // The reader is never pending: every read completes at its first poll.
        match read_frame_within(reader, limit).now_or_never() {
            Some(Ok(message)) => messages.push(message),
            Some(Err(err)) => return (messages, err),
            None => unreachable!("a reader that is never pending"),
        }
    }
}

/// A master running 4 users on workers 1 and 2.
fn running() -> (Run, Vec<mpsc::UnboundedReceiver<ToWorker>>) {
    let plan = Plan::users(4, Some(100.0), Some(Duration::from_secs(60))).unwrap();
    let config = master_config(plan, None, 2, Arc::new(|_: &str| {}));
    let mut run = Run::new(config, Arc::new(Mutex::new(Status::default())));
    let inboxes = (1..=2).map(|id| join(&mut run, id)).collect();
    (run, inboxes)
}

/// A number as a worker might send one: small, or anything up to `u64::MAX`.
fn number() -> impl Strategy<Value = u64> {
    prop_oneof![4 => 0u64..10, 1 => any::<u64>(), 1 => Just(u64::MAX)]
}

/// A snapshot of real samples, its counters then set to any number now and then.
fn snapshot() -> impl Strategy<Value = Snapshot> {
    let sample = (
        prop::sample::select(vec!["/a", "/b", ""]),
        0u64..10_000_000_000,
        prop::option::of(prop::sample::select(vec![
            FailureKind::Status(500),
            FailureKind::CheckFailed,
        ])),
    );
    (
        vec(sample, 0..6),
        vec(("[a-z ]{0,6}", number()), 0..3),
        prop::option::of((number(), number(), number(), number(), number())),
        number(),
    )
        .prop_map(|(samples, errors, counters, dropped)| {
            let mut tally = Tally::new();
            for (name, micros, failure) in &samples {
                tally.record(&RequestSample {
                    method: "GET",
                    name,
                    latency: Duration::from_micros(*micros),
                    response_bytes: *micros,
                    failure: failure.map(|kind| Failure { kind, message: "x" }),
                });
            }
            let mut snapshot = tally.take();
            if let (Some((requests, failures, untimed, sum, bytes)), Some(entry)) =
                (counters, snapshot.entries.first_mut())
            {
                entry.requests = requests;
                entry.failures = failures;
                entry.untimed = untimed;
                entry.latency_sum_us = sum;
                entry.content_bytes = bytes;
                if let Some(failure) = entry.failures_by_kind.first_mut() {
                    failure.count = requests;
                }
            }
            snapshot.errors = errors
                .into_iter()
                .map(|(message, count)| ErrorCount { message, count })
                .collect();
            snapshot.dropped_iterations = dropped;
            snapshot.cut_iterations = dropped;
            snapshot
        })
}

fn seconds() -> impl Strategy<Value = Vec<SecondStats>> {
    vec((prop_oneof![4 => 0u64..4, 1 => number()], snapshot()), 0..4).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(second, snapshot)| SecondStats { second, snapshot })
            .collect()
    })
}

/// A worker's own CPU and memory, any numbers at all (NaN, infinite, negative, huge).
fn load() -> impl Strategy<Value = crate::cluster::protocol::ProcessLoad> {
    (number(), any::<f64>(), number(), any::<u32>()).prop_map(
        |(second, cpu_percent, memory_bytes, cores)| crate::cluster::protocol::ProcessLoad {
            second,
            cpu_percent,
            memory_bytes,
            cores,
        },
    )
}

fn message() -> impl Strategy<Value = ToMaster> {
    prop_oneof![
        4 => (number(), seconds(), proptest::option::of(load())).prop_map(|(users, seconds, process)| ToMaster::Stats { users, seconds, process }),
        1 => seconds().prop_map(|seconds| ToMaster::Finished { seconds }),
        1 => Just(ToMaster::Ready),
        1 => Just(ToMaster::Heartbeat),
        1 => "[ -~]{0,20}".prop_map(|message| ToMaster::Failed { message }),
        1 => (number(), "[ -~]{0,8}").prop_map(|(cores, name)| ToMaster::Hello(Hello {
            protocol: cores as u32,
            version: "0".to_owned(),
            name,
            cores: cores as u32,
            proof: None,
            nonce: String::new(),
            scenario: Some(ScenarioPin { sha256: String::new(), name: String::new() }),
        })),
    ]
}

/// A frame: a message as a worker writes it, the same damaged, or bytes of any kind.
fn frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => message().prop_map(|message| encode(&message)),
        2 => (message(), any::<usize>(), any::<u8>()).prop_map(|(message, at, byte)| {
            let mut bytes = encode(&message);
            let at = at % bytes.len();
            bytes[at] ^= byte;
            bytes
        }),
        1 => (any::<u32>(), vec(any::<u8>(), 0..40)).prop_map(|(length, body)| {
            let mut bytes = length.to_be_bytes().to_vec();
            bytes.extend(body);
            bytes
        }),
        1 => vec(any::<u8>(), 0..12),
    ]
}

proptest! {
    // Each case decodes histograms (some hundred KiB of counters each) and runs a master.
    #![proptest_config(config(256))]

    #[test]
    fn any_frames_are_counted_or_refused_and_the_run_still_ends(
        frames in vec(frame(), 0..8),
        cuts in vec(any::<usize>(), 0..8),
        from in 1u32..=2,
    ) {
        let bytes = frames.concat();
        let mut reader = Pieces { pieces: pieces(&bytes, &cuts).into() };
        let mut read = None;
        let info = allocation_counter::measure(|| {
            read = Some(read_all::<ToMaster>(&mut reader, MAX_FRAME));
        });
        let (messages, _) = read.expect("read");
        // The frames and their messages, one step of a frame that has not come whole, and
        // each histogram as hdrhistogram holds it (its counters for up to an hour): a worker
        // that knows the token is trusted with that much.
        let histograms = bytes.windows(9).filter(|word| word == b"histogram").count() as u64;
        prop_assert!(
            info.bytes_max <= 24 * bytes.len() as u64 + (256 << 10) + histograms * (512 << 10),
            "{} bytes held for {}", info.bytes_max, bytes.len()
        );
        // Before the token is proven, only a hello is read: nothing is held per histogram.
        let mut reader = Pieces { pieces: [bytes.as_slice()].into() };
        let info = allocation_counter::measure(|| {
            let _ = read_all::<FirstWord>(&mut reader, MAX_HANDSHAKE_FRAME);
        });
        prop_assert!(
            info.bytes_max <= 24 * bytes.len() as u64 + (128 << 10),
            "{} bytes held for {} before the token", info.bytes_max, bytes.len()
        );
        let mut reader = Pieces { pieces: [bytes.as_slice()].into() };
        let _ = read_all::<ToWorker>(&mut reader, MAX_FRAME);

        let (mut run, _inboxes) = running();
        for message in messages {
            run.on_event(Event::Message { id: from, message });
            run.on_tick();
        }
        run.stop(true);
        let result = run.finish();
        // Nothing was measured before the run began: a second far in the future is counted
        // in the run's own seconds, not made into a point of its own (or billions of them).
        prop_assert!(result.history.len() <= 2 * FAR_AHEAD as usize, "{} points", result.history.len());
    }
}

#[test]
fn a_frame_that_announces_gigabytes_holds_what_came() {
    let mut bytes = (MAX_FRAME as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(&[b' '; 10]);
    let mut reader = Pieces {
        pieces: [bytes.as_slice()].into(),
    };
    let info = allocation_counter::measure(|| {
        let (messages, err) = read_all::<ToMaster>(&mut reader, MAX_FRAME);
        assert!(messages.is_empty());
        assert!(matches!(err, FrameError::Io(_)), "{err}");
    });
    assert!(info.bytes_max < 256 << 10, "{} bytes", info.bytes_max);
}

#[test]
fn a_stats_frame_before_the_token_is_proven_is_not_decoded() {
    // Regression: the master read its first frame as any message, so 16 KiB of `Stats` with a
    // few dozen small histograms held megabytes per connection before the token was checked.
    let mut tally = Tally::new();
    let entries: Vec<String> = (0..60).map(|n| format!("/{n}")).collect();
    for name in &entries {
        tally.record(&RequestSample {
            method: "GET",
            name,
            latency: Duration::from_millis(3),
            response_bytes: 1,
            failure: None,
        });
    }
    let stats = encode(&ToMaster::Stats {
        process: None,
        users: 1,
        seconds: vec![SecondStats {
            second: 0,
            snapshot: tally.take(),
        }],
    });
    assert!(stats.len() < MAX_HANDSHAKE_FRAME, "{} bytes", stats.len());
    let mut reader = Pieces {
        pieces: [stats.as_slice()].into(),
    };
    let info = allocation_counter::measure(|| {
        let (words, _) = read_all::<FirstWord>(&mut reader, MAX_HANDSHAKE_FRAME);
        assert!(matches!(words.as_slice(), [FirstWord::Other]), "{words:?}");
    });
    assert!(info.bytes_max < 1 << 20, "{} bytes", info.bytes_max);
    // What reading it as any message holds.
    let mut reader = Pieces {
        pieces: [stats.as_slice()].into(),
    };
    let info = allocation_counter::measure(|| {
        let (messages, _) = read_all::<ToMaster>(&mut reader, MAX_HANDSHAKE_FRAME);
        assert_eq!(messages.len(), 1);
    });
    assert!(info.bytes_max > 4 << 20, "{} bytes", info.bytes_max);
    let hello = ToMaster::Hello(Hello {
        protocol: 2,
        version: "v".to_owned(),
        name: "w".to_owned(),
        cores: 1,
        proof: None,
        nonce: "n".to_owned(),
        scenario: None,
    });
    let bytes = encode(&hello);
    let mut reader = Pieces {
        pieces: [bytes.as_slice()].into(),
    };
    let (words, _) = read_all::<FirstWord>(&mut reader, MAX_HANDSHAKE_FRAME);
    assert!(
        matches!(&words[..], [FirstWord::Hello(Hello { name, .. })] if name == "w"),
        "{words:?}"
    );
}

#[test]
fn a_second_far_in_the_future_is_counted_now_and_the_run_still_ends() {
    // Regression: a worker's `second: u64::MAX` made the master close every second up to it,
    // one point each (a loop that never ended, then an overflow), and counts of u64::MAX
    // overflowed the master's sums (a panic in a debug build).
    let (mut run, _inboxes) = running();
    let mut snapshot = super::tests::snapshot_of(1);
    snapshot.dropped_iterations = u64::MAX;
    for id in 1..=2 {
        run.on_event(Event::Message {
            id,
            message: ToMaster::Stats {
                process: None,
                users: u64::MAX,
                seconds: vec![SecondStats {
                    second: u64::MAX,
                    snapshot: snapshot.clone(),
                }],
            },
        });
    }
    run.stop(true);
    let result = run.finish();
    assert_eq!(result.total.requests, 2);
    assert_eq!(result.dropped_iterations, u64::MAX);
    assert!(
        result.history.len() <= FAR_AHEAD as usize + 2,
        "{} points",
        result.history.len()
    );
    assert_eq!(
        result.history.iter().map(|p| p.requests).sum::<u64>(),
        2,
        "the requests are in the run's seconds"
    );
}
