//! An HTTP/2 connection's incoming bytes watched for a GOAWAY frame. The `h2` crate keeps
//! what a GOAWAY said to itself: a stream the GOAWAY covered (its last stream id is at or past
//! the stream's) that then dies with the connection fails as a broken pipe. Knowing the
//! GOAWAY, such a request is reported as the server's GOAWAY with its error code. Reading the
//! frame headers costs a few comparisons per frame; nothing is copied but a GOAWAY's first
//! eight bytes.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The last GOAWAY a connection received, shared between its reading side and the requests
/// on it.
#[derive(Clone, Default)]
pub(super) struct GoAwaySeen(Arc<AtomicU64>);

/// Set in a stored value: a GOAWAY was seen.
const SEEN: u64 = 1 << 63;
/// Stream ids and (known) error codes are 31 bits.
const MASK: u32 = 0x7fff_ffff;

impl GoAwaySeen {
    /// The last GOAWAY's last stream id and reason, if one came.
    pub(super) fn get(&self) -> Option<(u32, h2::Reason)> {
        let value = self.0.load(Ordering::Acquire);
        (value & SEEN != 0).then(|| {
            let last = (value & u64::from(MASK)) as u32;
            let code = ((value >> 31) & u64::from(MASK)) as u32;
            (last, h2::Reason::from(code))
        })
    }

    fn set(&self, last: u32, code: u32) {
        let value = SEEN | (u64::from(code & MASK) << 31) | u64::from(last & MASK);
        self.0.store(value, Ordering::Release);
    }
}

/// A connection's stream whose reading side is watched for a GOAWAY.
pub(super) struct Watched<S> {
    inner: S,
    scan: FrameScan,
    seen: GoAwaySeen,
}

impl<S> Watched<S> {
    pub(super) fn new(inner: S, seen: GoAwaySeen) -> Watched<S> {
        Watched {
            inner,
            scan: FrameScan::default(),
            seen,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            if let Some((last, code)) = this.scan.feed(&buf.filled()[before..]) {
                this.seen.set(last, code);
            }
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Where the reading is in the server's frames (a client receives no preface: its first
/// bytes are a frame).
#[derive(Default)]
struct FrameScan {
    header: [u8; 9],
    /// Header bytes read of the current frame (9: its payload is being read).
    have: usize,
    /// Payload bytes of the current frame still to come.
    left: u32,
    /// A GOAWAY's payload start (last stream id, error code) as it comes.
    goaway: Option<([u8; 8], usize)>,
}

/// HTTP/2's frame type GOAWAY.
const GOAWAY: u8 = 7;

impl FrameScan {
    /// Reads `bytes` on; a GOAWAY whose last stream id and error code were completed in
    /// them (the last, when several).
    fn feed(&mut self, mut bytes: &[u8]) -> Option<(u32, u32)> {
        let mut found = None;
        while !bytes.is_empty() {
            if self.have < 9 {
                let take = (9 - self.have).min(bytes.len());
                self.header[self.have..self.have + take].copy_from_slice(&bytes[..take]);
                self.have += take;
                bytes = &bytes[take..];
                if self.have == 9 {
                    let [a, b, c, kind, ..] = self.header;
                    self.left = u32::from_be_bytes([0, a, b, c]);
                    self.goaway = (kind == GOAWAY).then_some(([0; 8], 0));
                    if self.left == 0 {
                        self.have = 0;
                    }
                }
                continue;
            }
            let take = (self.left as usize).min(bytes.len());
            if let Some((start, got)) = &mut self.goaway {
                let copy = (8 - *got).min(take);
                start[*got..*got + copy].copy_from_slice(&bytes[..copy]);
                *got += copy;
                if copy > 0 && *got == 8 {
                    let [a, b, c, d, e, f, g, h] = *start;
                    found = Some((
                        u32::from_be_bytes([a, b, c, d]) & MASK,
                        u32::from_be_bytes([e, f, g, h]),
                    ));
                }
            }
            self.left -= take as u32;
            bytes = &bytes[take..];
            if self.left == 0 {
                self.have = 0;
                self.goaway = None;
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let length = (payload.len() as u32).to_be_bytes();
        let mut out = vec![length[1], length[2], length[3], kind, 0, 0, 0, 0, 0];
        out.extend(payload);
        out
    }

    #[test]
    fn a_goaway_is_found_among_frames_however_the_bytes_are_cut() {
        let mut goaway = 3u32.to_be_bytes().to_vec();
        goaway.extend(2u32.to_be_bytes());
        goaway.extend(b"debug data");
        let mut bytes = frame(4, &[]);
        bytes.extend(frame(0, &[7; 300]));
        bytes.extend(frame(GOAWAY, &goaway));
        bytes.extend(frame(6, &[0; 8]));
        for cut in 1..bytes.len() {
            let mut scan = FrameScan::default();
            let mut found = None;
            for piece in bytes.chunks(cut) {
                found = scan.feed(piece).or(found);
            }
            assert_eq!(found, Some((3, 2)), "pieces of {cut}");
        }
        // A frame whose payload only looks like a GOAWAY's header is not one.
        let mut scan = FrameScan::default();
        assert_eq!(scan.feed(&frame(0, &frame(GOAWAY, &goaway))), None);
    }

    #[test]
    fn the_last_goaway_is_what_the_connection_remembers() {
        let seen = GoAwaySeen::default();
        assert_eq!(seen.get(), None);
        seen.set(5, 0xb);
        assert_eq!(seen.get(), Some((5, h2::Reason::ENHANCE_YOUR_CALM)));
        seen.set(0x7fff_ffff, 2);
        assert_eq!(seen.get(), Some((0x7fff_ffff, h2::Reason::INTERNAL_ERROR)));
    }
}
