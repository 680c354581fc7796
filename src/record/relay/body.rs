//! A body on its way through the relay: how much of what was read belongs to it (its framing
//! followed, a bounded copy kept when recording) and the loop that writes it on while reading
//! the rest.

use bytes::{Buf as _, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use super::wire::{self, Chunk, Framing, HeadError};
use crate::record::capture::CapturedBody;
use crate::record::events::EventCapture;

/// How much is read from a socket at a time.
pub(super) const READ_SIZE: usize = 16 * 1024;

/// Why a body could not be relayed to its end.
#[derive(Debug)]
pub(super) enum RelayError {
    /// The sending side closed before the body's end.
    Closed,
    Read(std::io::Error),
    Write(std::io::Error),
    Invalid(HeadError),
}

impl RelayError {
    /// What went wrong on the reading side, `closed` when it just closed.
    pub(super) fn text(&self, closed: &str) -> String {
        match self {
            RelayError::Closed => closed.to_owned(),
            RelayError::Read(err) | RelayError::Write(err) => err.to_string(),
            RelayError::Invalid(err) => err.to_string(),
        }
    }
}

/// Follows a body's framing, moving the bytes that belong to it from a read buffer to the
/// bytes to write, and keeping a copy (up to the limit) when recording.
pub(super) struct BodyReader {
    framing: Framing,
    left: u64,
    chunk: Chunk,
    limit: usize,
}

impl BodyReader {
    pub(super) fn new(framing: Framing, limit: usize) -> BodyReader {
        BodyReader {
            framing,
            left: match framing {
                Framing::Length(length) => length,
                _ => 0,
            },
            chunk: Chunk::default(),
            limit,
        }
    }

    /// Moves what `buffer` holds of the body to `out`; `true` once the body is complete.
    pub(super) fn take(
        &mut self,
        buffer: &mut BytesMut,
        out: &mut Vec<u8>,
        capture: Option<&mut CapturedBody>,
    ) -> Result<bool, HeadError> {
        let limit = self.limit;
        let (used, done) = match self.framing {
            Framing::Length(_) => {
                let used = self.left.min(buffer.len() as u64) as usize;
                self.left -= used as u64;
                if let Some(capture) = capture {
                    capture.push(&buffer[..used], limit);
                }
                (used, self.left == 0)
            }
            Framing::Close => {
                if let Some(capture) = capture {
                    capture.push(buffer, limit);
                }
                (buffer.len(), false)
            }
            Framing::Chunked => match capture {
                Some(capture) => {
                    wire::scan_chunks(buffer, &mut self.chunk, |data| capture.push(data, limit))
                        .map_err(HeadError)?
                }
                None => wire::scan_chunks(buffer, &mut self.chunk, |_| {}).map_err(HeadError)?,
            },
        };
        out.extend_from_slice(&buffer[..used]);
        buffer.advance(used);
        Ok(done)
    }
}

/// Writes `out` and then the rest of the body, reading it from `from` as it comes.
pub(super) async fn relay_body<R, W>(
    from: &mut R,
    buffer: &mut BytesMut,
    to: &mut W,
    out: &mut Vec<u8>,
    body: &mut BodyReader,
    mut capture: Option<&mut CapturedBody>,
    mut events: Option<&mut EventCapture>,
) -> Result<(), RelayError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    loop {
        let kept = capture.as_ref().map_or(0, |c| c.bytes.len());
        let done = body
            .take(buffer, out, capture.as_deref_mut())
            .map_err(RelayError::Invalid)?;
        if !out.is_empty() {
            write_flush(to, out).await.map_err(RelayError::Write)?;
            out.clear();
        }
        // An event stream's events, read from the kept copy once they went through.
        if let (Some(events), Some(capture)) = (events.as_deref_mut(), capture.as_deref()) {
            events.feed(&capture.bytes[kept..], std::time::SystemTime::now());
        }
        if done {
            return Ok(());
        }
        buffer.reserve(READ_SIZE);
        match from.read_buf(buffer).await {
            Ok(0) if body.framing == Framing::Close => return Ok(()),
            Ok(0) => return Err(RelayError::Closed),
            Ok(_) => {}
            Err(err) => return Err(RelayError::Read(err)),
        }
    }
}

pub(super) async fn write_flush<W: AsyncWrite + Unpin>(
    to: &mut W,
    bytes: &[u8],
) -> std::io::Result<()> {
    to.write_all(bytes).await?;
    to.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `wire` in pieces of `step` bytes; returns what was passed on, what was kept and
    /// after how many bytes the body was complete.
    fn follow(
        framing: Framing,
        wire: &[u8],
        step: usize,
        limit: usize,
    ) -> (Vec<u8>, CapturedBody, Option<usize>) {
        let mut body = BodyReader::new(framing, limit);
        let mut buffer = BytesMut::new();
        let mut out = Vec::new();
        let mut captured = CapturedBody::default();
        for (n, piece) in wire.chunks(step).enumerate() {
            buffer.extend_from_slice(piece);
            if body
                .take(&mut buffer, &mut out, Some(&mut captured))
                .unwrap()
            {
                return (out, captured, Some(n * step + piece.len() - buffer.len()));
            }
        }
        (out, captured, None)
    }

    #[test]
    fn bodies_end_where_their_framing_says_and_pass_unchanged() {
        let next = b"GET /next HTTP/1.1\r\n\r\n";
        for step in [1, 3, 64] {
            let mut wire = b"hello world".to_vec();
            wire.extend_from_slice(next);
            let (out, captured, end) = follow(Framing::Length(11), &wire, step, 5);
            assert_eq!(out, b"hello world", "step {step}");
            assert_eq!(
                (&captured.bytes[..], captured.total, captured.truncated),
                (&b"hello"[..], 11, true)
            );
            assert_eq!(end, Some(11));

            let mut wire = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n".to_vec();
            let length = wire.len();
            wire.extend_from_slice(next);
            let (out, captured, end) = follow(Framing::Chunked, &wire, step, 100);
            assert_eq!(out, &wire[..length], "step {step}");
            assert_eq!(captured.bytes, b"hello world");
            assert_eq!(end, Some(length));

            let (out, captured, end) = follow(Framing::Close, b"until the end", step, 100);
            assert_eq!(
                (out, captured.bytes, end),
                (b"until the end".to_vec(), b"until the end".to_vec(), None)
            );
        }
        let (out, _, end) = follow(Framing::Length(0), b"GET", 64, 100);
        assert_eq!((out, end), (Vec::new(), Some(0)));
        let mut body = BodyReader::new(Framing::Chunked, 10);
        let mut bad = BytesMut::from(&b"xyz\r\n"[..]);
        assert!(body.take(&mut bad, &mut Vec::new(), None).is_err());
    }
}
