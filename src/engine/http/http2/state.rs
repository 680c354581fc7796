//! One HTTP/2 connection's state without its socket: the streams open on it, flow control
//! both ways, the server's settings, its GOAWAY, the HPACK decoder, and the frames owed to the
//! server (the preface and SETTINGS, acks, WINDOW_UPDATEs, resets, requests) in `out`. Frames
//! read go in through [`State::receive`]; requests and their bodies through [`State::open`]
//! and [`State::send_data`]; answers come out per stream. Plain functions over frames, so
//! every rule is unit-tested without a socket; the socket is `link`'s.

use std::task::Waker;

use bytes::{Buf as _, Bytes, BytesMut};
use http::HeaderMap;

use super::frames;
use super::hpack::Decoder;

mod receive;
#[cfg(test)]
mod tests;

/// The flow-control window each side starts with (§6.9.2), which this client keeps (as `h2`
/// did by default): a server may send 64 KiB ahead of what was read.
pub(super) const WINDOW: i64 = 65_535;
/// The most a window may reach (§6.9.1).
const MAX_WINDOW: i64 = 0x7fff_ffff;
/// Frames owed to a server that does not read them are bounded: past this, the connection
/// is given up.
const MAX_OUT: usize = 1024 * 1024;

/// Error codes (§7) the client sends.
pub(super) const PROTOCOL_ERROR: u32 = 0x1;
const FLOW_CONTROL_ERROR: u32 = 0x3;
const CANCEL: u32 = 0x8;
const COMPRESSION_ERROR: u32 = 0x9;

/// Why a stream ended without its whole answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Failure {
    /// The server reset the stream (RST_STREAM, its error code).
    Reset(u32),
    /// The server's GOAWAY (its error code) did not cover the stream: it was not processed.
    GoAway(u32),
    /// The connection ended after a GOAWAY that covered the stream (its last stream id and
    /// code), as the socket said.
    ClosedAfterGoAway {
        last: u32,
        code: u32,
        detail: String,
    },
    /// The connection ended, as the socket said.
    Closed(String),
    /// The server broke the protocol.
    Protocol(String),
}

/// A response's head.
#[derive(Debug)]
pub(super) struct Head {
    pub(super) status: u16,
    pub(super) headers: HeaderMap,
}

/// One stream the client opened.
#[derive(Debug)]
struct Stream {
    id: u32,
    /// What the client may still send on it.
    send_window: i64,
    /// What the server may still send on it.
    recv_window: i64,
    /// Bytes read by the request's task since the last WINDOW_UPDATE for the stream.
    recv_unacked: i64,
    head: Option<Head>,
    head_seen: bool,
    /// Body bytes received that the request's task did not take yet (bounded by the
    /// stream's window).
    data: BytesMut,
    /// The server ended the stream (END_STREAM).
    ended: bool,
    /// The client ended its side (the request's last frame had END_STREAM).
    sent_end: bool,
    failed: Option<Failure>,
    /// The request's task, woken when something for it arrives.
    waker: Option<Waker>,
}

impl Stream {
    fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    fn fail(&mut self, failure: Failure) {
        if !self.ended && self.failed.is_none() {
            self.failed = Some(failure);
        }
        self.wake();
    }
}

/// The connection's state.
#[derive(Debug)]
pub(super) struct State {
    /// Frames to write, in order.
    pub(super) out: Vec<u8>,
    hpack: Decoder,
    streams: Vec<Stream>,
    next_id: u32,
    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS.
    max_streams: usize,
    /// The server's SETTINGS_INITIAL_WINDOW_SIZE.
    initial_send_window: i64,
    send_window: i64,
    recv_window: i64,
    recv_unacked: i64,
    /// A header block still coming in CONTINUATION frames: its stream, END_STREAM, bytes.
    partial: Option<(u32, bool, Vec<u8>)>,
    /// The server's GOAWAY: last stream id, code.
    goaway: Option<(u32, u32)>,
    /// Why the connection ended, once it did.
    ended: Option<Failure>,
    /// Tasks waiting for a stream (the server's limit of concurrent streams was reached).
    waiting: Vec<Waker>,
    /// Whether the server's first bytes were looked at.
    heard: bool,
}

impl Default for State {
    fn default() -> State {
        let mut out = frames::PREFACE.to_vec();
        // What `h2` sent: push off, the rest (a 4,096-byte HPACK table, 64 KiB windows, 16 KiB
        // frames) the protocol's defaults.
        frames::put_settings(&mut out, &[(frames::SETTINGS_ENABLE_PUSH, 0)]);
        State {
            out,
            hpack: Decoder::default(),
            streams: Vec::new(),
            next_id: 1,
            max_streams: usize::MAX,
            initial_send_window: WINDOW,
            send_window: WINDOW,
            recv_window: WINDOW,
            recv_unacked: 0,
            partial: None,
            goaway: None,
            ended: None,
            waiting: Vec::new(),
            heard: false,
        }
    }
}

impl State {
    /// Whether a new stream may go on the connection (it did not end, no GOAWAY, ids left).
    pub(super) fn usable(&self) -> bool {
        self.ended.is_none() && self.goaway.is_none() && self.next_id < 0x7fff_ffff
    }

    /// Whether no stream is open.
    pub(super) fn idle(&self) -> bool {
        self.streams.is_empty()
    }

    /// Takes in the whole frames at the front of `read` (what is left is the start of one).
    pub(super) fn take_frames(&mut self, read: &mut BytesMut) {
        if !self.heard && read.len() >= 5 {
            self.heard = true;
            if read.starts_with(b"HTTP/") {
                // An HTTP/1.x server answering the preface (h2c to a server that does not
                // expect it).
                let detail = "it answered in HTTP/1.x (on http, HTTP/2 is spoken with prior knowledge: the server must expect it, as nginx's `listen ... http2` does; or use `http: auto`)".to_owned();
                return self.end(Failure::Protocol(detail));
            }
        }
        while !self.ended() {
            match frames::parse(read) {
                Ok(Some((frame, used))) => {
                    self.receive(frame);
                    read.advance(used);
                }
                Ok(None) => break,
                Err(err) => self.receive_broken(err.0),
            }
        }
    }

    /// Whether the connection ended.
    pub(super) fn ended(&self) -> bool {
        self.ended.is_some()
    }

    /// Whether the server's limit leaves room for one more stream; if not, `waker` is woken
    /// when a stream closes.
    pub(super) fn room(&mut self, waker: &Waker) -> bool {
        if self.streams.len() < self.max_streams {
            return true;
        }
        if !self.waiting.iter().any(|w| w.will_wake(waker)) {
            self.waiting.push(waker.clone());
        }
        false
    }

    /// Opens a stream with the request's header block (END_STREAM when it has no body).
    pub(super) fn open(&mut self, block: &[u8], end_stream: bool) -> u32 {
        let id = self.next_id;
        self.next_id += 2;
        frames::put_headers(&mut self.out, id, block, end_stream);
        // Room for one more at a time, not a growth step's four (a stream is 200-odd bytes,
        // and most connections have one at a time).
        self.streams.reserve_exact(1);
        self.streams.push(Stream {
            id,
            send_window: self.initial_send_window,
            recv_window: WINDOW,
            recv_unacked: 0,
            head: None,
            head_seen: false,
            data: BytesMut::new(),
            ended: false,
            sent_end: end_stream,
            failed: None,
            waker: None,
        });
        id
    }

    fn stream(&mut self, id: u32) -> Option<&mut Stream> {
        self.streams.iter_mut().find(|s| s.id == id)
    }

    /// Sends as much of `rest` on stream `id` as the windows allow (END_STREAM with its last
    /// byte); true when all of it went, or the stream needs no more of it (the server ended
    /// it already). Not waiting: the caller waits for a WINDOW_UPDATE.
    pub(super) fn send_data(&mut self, id: u32, rest: &mut Bytes) -> Result<bool, Failure> {
        let connection_window = self.send_window;
        let Some(stream) = self.streams.iter_mut().find(|s| s.id == id) else {
            return Ok(true);
        };
        if let Some(failure) = &stream.failed {
            return Err(failure.clone());
        }
        if stream.ended {
            return Ok(true);
        }
        let mut sent = 0i64;
        while !rest.is_empty() {
            let room = (connection_window - sent)
                .min(stream.send_window)
                .min(frames::MAX_FRAME_SIZE as i64);
            if room <= 0 {
                break;
            }
            let piece = rest.split_to((room as usize).min(rest.len()));
            frames::put_data(&mut self.out, id, &piece, rest.is_empty());
            stream.send_window -= piece.len() as i64;
            sent += piece.len() as i64;
        }
        stream.sent_end = rest.is_empty();
        self.send_window -= sent;
        Ok(rest.is_empty())
    }

    /// The response head of stream `id`, once it came or the stream failed.
    pub(super) fn head(&mut self, id: u32) -> Option<Result<Head, Failure>> {
        let stream = self.stream(id)?;
        if let Some(head) = stream.head.take() {
            return Some(Ok(head));
        }
        if let Some(failure) = &stream.failed {
            return Some(Err(failure.clone()));
        }
        None
    }

    /// Gives the body bytes stream `id` received to `sink`; then `Some(Ok(true))` when the
    /// body is complete, `Some(Ok(false))` when there were bytes, `Some(Err(_))` when the
    /// stream failed, `None` when there is nothing yet.
    pub(super) fn body(
        &mut self,
        id: u32,
        sink: &mut impl FnMut(&[u8]),
    ) -> Option<Result<bool, Failure>> {
        let stream = self.stream(id)?;
        let taken = stream.data.len();
        if taken > 0 {
            sink(&stream.data);
            stream.data.clear();
        }
        let answer = match (&stream.failed, stream.ended) {
            (Some(failure), _) => Some(Err(failure.clone())),
            (None, true) => Some(Ok(true)),
            (None, false) if taken > 0 => Some(Ok(false)),
            (None, false) => None,
        };
        if taken > 0 {
            self.consumed(Some(id), taken);
        }
        answer
    }

    /// Notes `waker` as stream `id`'s, to be woken when something arrives for it.
    pub(super) fn set_waker(&mut self, id: u32, waker: &Waker) {
        if let Some(stream) = self.stream(id) {
            match &stream.waker {
                Some(kept) if kept.will_wake(waker) => {}
                _ => stream.waker = Some(waker.clone()),
            }
        }
    }

    /// Forgets stream `id`'s waker (its own task is about to read the socket).
    pub(super) fn clear_waker(&mut self, id: u32) {
        if let Some(stream) = self.stream(id) {
            stream.waker = None;
        }
    }

    /// Wakes the tasks of the open streams: a task that read the socket last is leaving it,
    /// so one of theirs reads on.
    pub(super) fn wake_streams(&mut self) {
        for stream in &mut self.streams {
            stream.wake();
        }
    }

    /// Closes stream `id` (its answer was read, or its request gave up: then it is reset,
    /// CANCEL), and wakes the others: one of them reads the socket from now on.
    pub(super) fn close(&mut self, id: u32) {
        if let Some(at) = self.streams.iter().position(|s| s.id == id) {
            let stream = self.streams.swap_remove(at);
            let complete = stream.ended && stream.sent_end;
            if !complete && stream.failed.is_none() && self.ended.is_none() {
                frames::put_reset(&mut self.out, id, CANCEL);
            }
            if !stream.data.is_empty() {
                self.consumed(None, stream.data.len());
            }
        }
        if self.streams.is_empty() {
            // An idle connection keeps no room for streams.
            self.streams = Vec::new();
        }
        self.wake_streams();
        for waker in self.waiting.drain(..) {
            waker.wake();
        }
    }

    /// `taken` bytes of DATA were read (of stream `id`, or of none): the windows reopened
    /// by a WINDOW_UPDATE once half of a window was read, as `h2` does.
    fn consumed(&mut self, id: Option<u32>, taken: usize) {
        self.recv_unacked += taken as i64;
        if self.recv_unacked >= WINDOW / 2 {
            frames::put_window_update(&mut self.out, 0, self.recv_unacked as u32);
            self.recv_window += self.recv_unacked;
            self.recv_unacked = 0;
        }
        let Some(stream) = id.and_then(|id| self.streams.iter_mut().find(|s| s.id == id)) else {
            return;
        };
        stream.recv_unacked += taken as i64;
        if !stream.ended && stream.recv_unacked >= WINDOW / 2 {
            frames::put_window_update(&mut self.out, stream.id, stream.recv_unacked as u32);
            stream.recv_window += stream.recv_unacked;
            stream.recv_unacked = 0;
        }
    }

    /// The connection ended: every stream not complete fails (covered by a GOAWAY the server
    /// sent before: that GOAWAY's failure).
    pub(super) fn end(&mut self, failure: Failure) {
        if self.ended.is_some() {
            return;
        }
        let failure = match (failure, self.goaway) {
            (Failure::Closed(detail), Some((last, code))) => {
                Failure::ClosedAfterGoAway { last, code, detail }
            }
            (failure, _) => failure,
        };
        for stream in &mut self.streams {
            stream.fail(failure.clone());
        }
        for waker in self.waiting.drain(..) {
            waker.wake();
        }
        self.ended = Some(failure);
        self.partial = None;
    }

    /// The server broke the protocol: a GOAWAY with `code` is owed, and the connection ends.
    fn broken(&mut self, code: u32, detail: String) {
        if self.ended.is_none() {
            frames::put_goaway(&mut self.out, 0, code);
        }
        self.end(Failure::Protocol(detail));
    }

    /// A stream-level error: the stream fails and is reset.
    fn stream_error(&mut self, id: u32, code: u32, detail: String) {
        if let Some(stream) = self.stream(id) {
            stream.fail(Failure::Protocol(detail));
            frames::put_reset(&mut self.out, id, code);
        }
    }

    /// Room for streams (for tests).
    #[cfg(test)]
    pub(super) fn streams_room(&self) -> usize {
        self.streams.capacity()
    }

    /// The send windows: the connection's, and stream `id`'s (for tests).
    #[cfg(test)]
    pub(super) fn send_windows(&self, id: u32) -> (i64, Option<i64>) {
        let stream = self.streams.iter().find(|s| s.id == id);
        (self.send_window, stream.map(|s| s.send_window))
    }
}
