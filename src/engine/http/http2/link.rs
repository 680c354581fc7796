//! An HTTP/2 connection's socket and state, shared by the streams on it. There is no task per
//! connection: whichever request's task waits on the connection reads and writes its socket
//! (under a lock never held across an await), takes in every frame that came, for any stream,
//! and wakes the tasks whose streams got something; a task done with its stream wakes the
//! others, so one of them reads on. While no stream is open nothing reads: a GOAWAY or a
//! close that came meanwhile is read before the next stream opens, and the read and write
//! buffers are released (a thinking user's connection holds only its state and HPACK table).

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWrite;

use super::frames;
use super::state::{Failure, Head, State};
use crate::tls::ClientStream;

/// Room made for each read (more when a frame being read needs it), as the HTTP/1.1 path
/// reads: most answers of most requests are smaller.
const READ_SIZE: usize = 4 * 1024;
/// Reads taken in one go before letting other tasks run.
const READS_PER_POLL: usize = 32;

/// A handle on one connection; clones share it.
#[derive(Clone)]
pub(super) struct Link(Arc<Mutex<Conn>>);

struct Conn {
    io: ClientStream,
    state: State,
    /// Bytes read and not yet taken as frames.
    read: BytesMut,
    /// How much of `state.out` was written.
    written: usize,
    /// Written, but perhaps not flushed (TLS keeps what it encrypted until flushed).
    unflushed: bool,
    /// Why writing failed: the connection ends once what the server sent before is read
    /// (a GOAWAY, say, that tells why).
    write_error: Option<String>,
}

/// The connection cannot take a new stream (it ended, or the server sent GOAWAY); nothing of
/// the request was sent.
#[derive(Debug)]
pub(super) struct Unusable;

impl Link {
    /// A new connection: the preface and SETTINGS go with its first request.
    pub(super) fn new(io: ClientStream) -> Link {
        Link(Arc::new(Mutex::new(Conn {
            io,
            state: State::default(),
            read: BytesMut::new(),
            written: 0,
            unflushed: false,
            write_error: None,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Conn> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn same(&self, other: &Link) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Whether a new stream may go on it, as far as is known without reading.
    pub(super) fn usable(&self) -> bool {
        self.lock().state.usable()
    }

    /// The capacity of the read buffer, of the write buffer and of the stream list (for
    /// tests).
    #[cfg(test)]
    pub(super) fn buffers(&self) -> (usize, usize, usize) {
        let conn = self.lock();
        let state = &conn.state;
        (
            conn.read.capacity(),
            state.out.capacity(),
            state.streams_room(),
        )
    }

    /// Opens a stream with the request's header block, once the server's limit of streams
    /// allows; `Unusable` when the connection turns out closed or going away first.
    pub(super) fn poll_open(
        &self,
        cx: &mut Context<'_>,
        block: &[u8],
        end_stream: bool,
    ) -> Poll<Result<u32, Unusable>> {
        let mut conn = self.lock();
        conn.drive(cx);
        // Either way this task may not come back to read the socket (it goes to another
        // connection, or its wait is cut short): the open streams' tasks read on.
        if !conn.state.usable() {
            conn.state.wake_streams();
            return Poll::Ready(Err(Unusable));
        }
        if !conn.state.room(cx.waker()) {
            conn.state.wake_streams();
            return Poll::Pending;
        }
        let id = conn.state.open(block, end_stream);
        conn.drive(cx);
        Poll::Ready(Ok(id))
    }

    /// Sends `rest` of stream `id`'s body as the windows allow; pending while they are shut.
    pub(super) fn poll_send(
        &self,
        cx: &mut Context<'_>,
        id: u32,
        rest: &mut Bytes,
    ) -> Poll<Result<(), Failure>> {
        let mut conn = self.lock();
        conn.state.clear_waker(id);
        conn.drive(cx);
        let done = conn.state.send_data(id, rest);
        conn.drive(cx);
        match done {
            Ok(true) => Poll::Ready(Ok(())),
            Ok(false) => {
                conn.state.set_waker(id, cx.waker());
                Poll::Pending
            }
            Err(failure) => Poll::Ready(Err(failure)),
        }
    }

    /// Stream `id`'s response head.
    pub(super) fn poll_head(&self, cx: &mut Context<'_>, id: u32) -> Poll<Result<Head, Failure>> {
        let mut conn = self.lock();
        conn.state.clear_waker(id);
        conn.drive(cx);
        match conn.state.head(id) {
            Some(head) => Poll::Ready(head),
            None => {
                conn.state.set_waker(id, cx.waker());
                Poll::Pending
            }
        }
    }

    /// Stream `id`'s body bytes, given to `sink`: `Ok(true)` once all came.
    pub(super) fn poll_body(
        &self,
        cx: &mut Context<'_>,
        id: u32,
        sink: &mut impl FnMut(&[u8]),
    ) -> Poll<Result<bool, Failure>> {
        let mut conn = self.lock();
        conn.state.clear_waker(id);
        conn.drive(cx);
        match conn.state.body(id, sink) {
            Some(answer) => {
                // WINDOW_UPDATEs the bytes taken earned.
                conn.drive(cx);
                Poll::Ready(answer)
            }
            None => {
                conn.state.set_waker(id, cx.waker());
                Poll::Pending
            }
        }
    }

    /// Closes stream `id` (reset if its answer was not read to the end), writing what that
    /// owes without waiting.
    pub(super) fn close(&self, id: u32) {
        let mut conn = self.lock();
        conn.state.close(id);
        conn.drive(&mut Context::from_waker(std::task::Waker::noop()));
    }
}

impl Conn {
    /// Writes what is owed and reads what came, taking in every whole frame, until the socket
    /// has nothing more either way (or after [`READS_PER_POLL`] reads: then the task is
    /// woken to go on). The socket wakes `cx`'s task when it is ready again.
    fn drive(&mut self, cx: &mut Context<'_>) {
        self.flush(cx);
        let mut reads = 0;
        while !self.state.ended() {
            if reads == READS_PER_POLL {
                cx.waker().wake_by_ref();
                break;
            }
            reads += 1;
            // Left after taking frames in: at most the start of one.
            let want = frames::needed(&self.read)
                .unwrap_or(0)
                .max(self.read.len() + READ_SIZE);
            if self.read.capacity() < want {
                self.read.reserve(want - self.read.len());
            }
            match tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.read) {
                Poll::Pending => break,
                Poll::Ready(Ok(0)) => {
                    self.state
                        .end(Failure::Closed("the server closed it".to_owned()));
                }
                Poll::Ready(Ok(_)) => self.state.take_frames(&mut self.read),
                Poll::Ready(Err(err)) => self.state.end(Failure::Closed(err.to_string())),
            }
            self.flush(cx);
        }
        if let Some(detail) = self.write_error.take() {
            self.state.end(Failure::Closed(detail));
        }
        if self.state.idle() && self.read.is_empty() && self.read.capacity() > 0 {
            self.read = BytesMut::new();
        }
        if self.state.idle() && self.state.out.is_empty() && self.state.out.capacity() > 0 {
            self.state.out = Vec::new();
        }
    }

    /// Writes what is owed, as far as the socket takes it now.
    fn flush(&mut self, cx: &mut Context<'_>) {
        if self.write_error.is_some() {
            self.state.out.clear();
            return;
        }
        while self.written < self.state.out.len() {
            let rest = &self.state.out[self.written..];
            match Pin::new(&mut self.io).poll_write(cx, rest) {
                Poll::Ready(Ok(0)) => {
                    let detail = "the socket took no more bytes".to_owned();
                    return self.write_failed(detail);
                }
                Poll::Ready(Ok(written)) => {
                    self.written += written;
                    self.unflushed = true;
                }
                Poll::Ready(Err(err)) => return self.write_failed(err.to_string()),
                Poll::Pending => return,
            }
        }
        self.state.out.clear();
        self.written = 0;
        if self.unflushed {
            match Pin::new(&mut self.io).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(err)) => self.write_failed(err.to_string()),
                Poll::Pending => {}
            }
        }
    }

    fn write_failed(&mut self, detail: String) {
        self.state.out.clear();
        self.written = 0;
        self.unflushed = false;
        self.write_error = Some(detail);
    }
}
