//! The messages between a master and its workers, and how they travel: one JSON document per
//! frame, each frame a 4-byte big-endian length then the document. Statistics travel as
//! `stats::Snapshot`s, whose HDR histograms are serialized with hdrhistogram's V2 deflate
//! format (base64), so the master merges them exactly.
//!
//! The first three messages (`Challenge`, `Hello`, `Refused`) keep their shape across
//! versions: a worker of another version can always be told why it is refused.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use crate::stats::Snapshot;

/// The version of this protocol; a worker and a master of different chorus versions refuse
/// each other anyway, this names what changed on the wire (2: statistics by second; 3: a
/// worker's own CPU and memory in its statistics, `--iterations` in `Start`).
pub const PROTOCOL: u32 = 3;

/// The largest frame either side accepts (a scenario with its data files travels in one).
pub const MAX_FRAME: usize = 256 * 1024 * 1024;

/// The largest frame accepted before the other side is known: a `Hello` or a `Challenge` is a
/// few hundred bytes, so whoever reaches the port without the token cannot make the master
/// hold more than this per connection.
pub const MAX_HANDSHAKE_FRAME: usize = 16 * 1024;

/// A frame's body grows by at most this much before its bytes have come: the memory a frame
/// takes follows what was sent, never the length announced.
const GROW_BY: usize = 64 * 1024;

/// Master -> worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToWorker {
    /// The first frame on every connection.
    Challenge {
        protocol: u32,
        version: String,
        /// The worker proves it knows the cluster token by signing this.
        nonce: String,
    },
    /// The worker was not accepted; `message` says why and what to do.
    Refused { message: String },
    /// The worker was accepted: what to run, and the master's proof that it knows the token.
    Welcome {
        id: u32,
        /// HMAC of the worker's nonce; `None` when the cluster has no token.
        proof: Option<String>,
        bundle: Box<super::bundle::Bundle>,
    },
    /// Start users: `users` of them at `spawn_rate`, each with its own row of `rows` (indexes
    /// into every `unique` data source) in order.
    Start {
        users: u64,
        spawn_rate: f64,
        rows: Vec<u32>,
        stop_timeout_ms: u64,
        /// `--max-body` (absent: the scenario's own).
        #[serde(default)]
        max_body: Option<u64>,
        accept_invalid_certs: bool,
        /// How long ago the master's run began: the worker counts the run's seconds from
        /// there, so its seconds are the master's (0 for the workers that start it).
        #[serde(default)]
        started_ago_ms: u64,
        /// Open model: start this many iterations per second on the worker's own schedule,
        /// with at most `users` users busy (`spawn_rate` is then unused).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        arrival_rate: Option<f64>,
        /// `--iterations`: each user runs this many iterations and ends; the worker's users
        /// end (and it sends `Finished`) when all have.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        iterations: Option<u64>,
    },
    /// Move to this many users.
    SetUsers { users: u64, spawn_rate: f64 },
    /// Open model: from now on this many iterations per second, at most `max_users` busy.
    SetArrivals { per_second: f64, max_users: u64 },
    /// Stop the users: gracefully (each finishes its iteration within the stop timeout, then
    /// runs `on_stop`) or at once.
    Stop { now: bool },
    /// Forget the measurements not sent yet ("reset stats").
    Reset,
    /// The master is still there.
    Heartbeat,
    /// The master is exiting: stop and exit.
    Quit { message: String },
}

/// Worker -> master.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToMaster {
    /// The answer to `Challenge`.
    Hello(Hello),
    /// The scenario loaded; the worker waits for `Start`.
    Ready,
    /// The scenario could not be used on the worker.
    Failed { message: String },
    /// As each second of the run closes on the worker (and at least every second while
    /// users run): what was measured in the seconds closed since the last `Stats`, each under
    /// its second; a second may come again with measurements that came late.
    Stats {
        users: u64,
        seconds: Vec<SecondStats>,
        /// The worker process's own CPU and memory at its last sample (none before the first).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        process: Option<ProcessLoad>,
    },
    /// The users stopped after `Stop`; `seconds` are the rest of the measurements.
    Finished { seconds: Vec<SecondStats> },
    /// The worker is still there (when it has no stats to send).
    Heartbeat,
}

/// A worker's answer to `Challenge`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol: u32,
    pub version: String,
    pub name: String,
    pub cores: u32,
    /// HMAC of the master's nonce; `None` when the worker has no token.
    pub proof: Option<String>,
    /// The master proves it knows the token by signing this.
    pub nonce: String,
    /// `chorus worker --scenario FILE`: the SHA-256 of the scenario it expects, and its name.
    pub scenario: Option<ScenarioPin>,
}

/// The first frame a master reads from a connection, before it knows who is there: a
/// `Hello`, or another message whose contents are not read. A `Stats` frame read in full
/// would decode its histograms, some hundred KiB each from a hundred bytes: whoever reaches
/// the port without the token could make the master hold megabytes per 16 KiB frame.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FirstWord {
    Hello(Hello),
    #[serde(other)]
    Other,
}

/// What a worker measured in one second of the run (counted from the run's start).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecondStats {
    pub second: u64,
    pub snapshot: Snapshot,
}

impl SecondStats {
    /// The tap's `(second, snapshot)` pairs as they travel.
    pub fn list(pairs: Vec<(u64, Snapshot)>) -> Vec<SecondStats> {
        pairs
            .into_iter()
            .map(|(second, snapshot)| SecondStats { second, snapshot })
            .collect()
    }
}

/// A worker process's own use of its machine, sampled once a second (chorus's own monitor,
/// `chorus.cpu` and `chorus.memory`). The master checks the numbers (`cluster::watch`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProcessLoad {
    /// The second of the run it was sampled in.
    pub second: u64,
    /// CPU, in percent of one core.
    pub cpu_percent: f64,
    /// Resident memory.
    pub memory_bytes: u64,
    /// The cores its engine runs on (100 % each): above 90 % of them its latencies include
    /// its own queueing.
    pub cores: u32,
}

/// The scenario a worker insists on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioPin {
    pub sha256: String,
    pub name: String,
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("the connection closed")]
    Closed,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("a frame of {0} bytes is larger than the {1} bytes allowed")]
    TooLarge(usize, usize),
    #[error("a message could not be read: {0} (is the other side a chorus of another version?)")]
    Json(#[from] serde_json::Error),
}

/// The bytes of one frame holding `message`.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    // Every message is plain data (strings, numbers, base64 histograms): it serialises.
    let body = serde_json::to_vec(message).unwrap_or_default();
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// Reads one message from the body of a frame.
pub fn decode<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, FrameError> {
    Ok(serde_json::from_slice(body)?)
}

/// Writes one frame.
pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(
    writer: &mut W,
    message: &T,
) -> std::io::Result<()> {
    writer.write_all(&encode(message)).await?;
    writer.flush().await
}

/// Reads one frame of at most [`MAX_FRAME`] bytes; `Closed` at a clean end of stream between
/// frames.
pub async fn read_frame<R: AsyncRead + Unpin, T: for<'de> Deserialize<'de>>(
    reader: &mut R,
) -> Result<T, FrameError> {
    read_frame_within(reader, MAX_FRAME).await
}

/// Reads one frame of at most `limit` bytes (a larger one is refused from its length alone);
/// the body is held as its bytes arrive.
pub async fn read_frame_within<R: AsyncRead + Unpin, T: for<'de> Deserialize<'de>>(
    reader: &mut R,
    limit: usize,
) -> Result<T, FrameError> {
    let mut length = [0u8; 4];
    match reader.read_exact(&mut length).await {
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(FrameError::Closed);
        }
        Err(err) => return Err(err.into()),
    }
    let length = u32::from_be_bytes(length) as usize;
    if length > limit {
        return Err(FrameError::TooLarge(length, limit));
    }
    let mut body = Vec::with_capacity(length.min(GROW_BY));
    while body.len() < length {
        let want = (length - body.len()).min(GROW_BY);
        body.reserve(want);
        let read = reader.take(want as u64).read_to_end(&mut body).await?;
        if read == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
    }
    decode(&body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Phases, RequestSample, Setup, Tally};
    use std::time::Duration;

    #[tokio::test]
    async fn frames_round_trip_with_exact_histograms() {
        let mut tally = Tally::new();
        for ms in [1, 2, 3, 250] {
            let sample = RequestSample {
                method: "GET",
                name: "/a",
                latency: Duration::from_millis(ms),
                response_bytes: 10,
                failure: None,
            };
            let phases = Phases {
                setup: (ms == 1).then_some(Setup {
                    dns: Duration::from_micros(5),
                    connect: Duration::from_micros(80),
                    tls: Some(Duration::from_micros(900)),
                }),
                ttfb: Duration::from_millis(ms) - Duration::from_micros(300),
                download: Duration::from_micros(300),
            };
            tally.record_phased(&sample, &phases);
        }
        let snapshot = tally.take();
        let message = ToMaster::Stats {
            users: 3,
            seconds: vec![SecondStats {
                second: 4,
                snapshot: snapshot.clone(),
            }],
            process: Some(ProcessLoad {
                second: 4,
                cpu_percent: 37.5,
                memory_bytes: 12 << 20,
                cores: 2,
            }),
        };
        let mut bytes = encode(&message);
        bytes.extend(encode(&ToMaster::Heartbeat));
        let mut reader = bytes.as_slice();
        let back: ToMaster = read_frame(&mut reader).await.unwrap();
        assert_eq!(back, message);
        let ToMaster::Stats { seconds, .. } = back else {
            panic!("stats")
        };
        let back = &seconds[0].snapshot;
        assert_eq!(
            back.entries[0].histogram.inner(),
            snapshot.entries[0].histogram.inner()
        );
        // The phases travel with their histograms, exactly.
        let (phases, sent) = (&back.entries[0].phases, &snapshot.entries[0].phases);
        assert_eq!(phases, sent);
        let ttfb = phases.ttfb.as_ref().expect("ttfb travelled");
        assert_eq!(ttfb.count, 4);
        assert_eq!(
            ttfb.histogram.inner(),
            sent.ttfb.as_ref().unwrap().histogram.inner()
        );
        assert_eq!(phases.tls.as_ref().map(|t| t.max_us), Some(900));
        let next: ToMaster = read_frame(&mut reader).await.unwrap();
        assert_eq!(next, ToMaster::Heartbeat);
        assert!(matches!(
            read_frame::<_, ToMaster>(&mut reader).await,
            Err(FrameError::Closed)
        ));
    }

    #[tokio::test]
    async fn oversized_and_garbled_frames_are_errors_not_panics() {
        let mut reader: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frame::<_, ToMaster>(&mut reader).await,
            Err(FrameError::TooLarge(..))
        ));
        // Before the handshake, a few KiB at most: refused from the length alone.
        let mut bytes = (255u32 << 20).to_be_bytes().to_vec();
        bytes.extend_from_slice(&[b' '; 100]);
        let mut reader = bytes.as_slice();
        let err = read_frame_within::<_, ToMaster>(&mut reader, MAX_HANDSHAKE_FRAME)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "a frame of 267386880 bytes is larger than the 16384 bytes allowed"
        );
        // A frame announced long that ends early is an error, after holding what came.
        let mut bytes = (1u32 << 20).to_be_bytes().to_vec();
        bytes.extend_from_slice(b"{\"type\":");
        let mut reader = bytes.as_slice();
        assert!(matches!(
            read_frame::<_, ToMaster>(&mut reader).await,
            Err(FrameError::Io(_))
        ));
        // A frame that arrives in pieces larger than one step reads whole.
        let message = ToWorker::Refused {
            message: "x".repeat(200_000),
        };
        let bytes = encode(&message);
        let mut reader = bytes.as_slice();
        assert_eq!(
            read_frame::<_, ToWorker>(&mut reader).await.unwrap(),
            message
        );
        let mut bytes = 5u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(b"{nope");
        let mut reader = bytes.as_slice();
        let err = read_frame::<_, ToMaster>(&mut reader).await.unwrap_err();
        assert!(err.to_string().contains("another version"), "{err}");
    }
}
