//! A response whose body is read as it comes (an event stream): the head within the request
//! timeout, then the body's bytes piece by piece for as long as the server sends them, on a
//! connection of its own.

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use tokio::io::AsyncWriteExt as _;
use tokio::time::Instant;

use super::wire::{Chunk, Framing, HeadScan, ReadError, decode_chunks, framing, parse_head};
use super::{Client, Endpoint, READ_SIZE, TransportError, fill_stream, read_failure};
use crate::stats::FailureKind;
use crate::tls::ClientStream;

/// The head of a streamed response.
pub(crate) struct StreamHead {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
}

/// The body of a streamed response, read as it comes.
pub(crate) struct Streaming {
    stream: ClientStream,
    buffer: BytesMut,
    framing: Framing,
    chunk: Chunk,
    /// `Content-Length` framing: what is still to come.
    remaining: u64,
    /// A chunked body's end was read (with the last data, which went out first).
    finished: bool,
}

impl Client {
    /// Sends a GET (its URI in origin form) on a fresh connection and reads the response's
    /// head; the body is the caller's to read with [`Streaming::next`].
    pub(crate) async fn open_stream(
        &self,
        origin: &Endpoint,
        request: http::Request<()>,
    ) -> Result<(StreamHead, Streaming), TransportError> {
        let began = Instant::now();
        let mut stream = self.connect(origin, began).await?;
        let (parts, ()) = request.into_parts();
        let mut out = Vec::new();
        super::wire::write_request(&mut out, origin, &parts, b"");
        let start = Instant::now();
        let head = async {
            stream.write_all(&out).await?;
            stream.flush().await?;
            let mut buffer = BytesMut::with_capacity(READ_SIZE);
            let mut scan = HeadScan::default();
            loop {
                match parse_head(&mut buffer, &mut scan)? {
                    Some(head) if (100..200).contains(&head.status) => continue,
                    Some(head) => return Ok::<_, ReadError>((head, buffer)),
                    None => {
                        if !fill_stream(&mut stream, &mut buffer, READ_SIZE).await? {
                            return Err(ReadError::Closed);
                        }
                    }
                }
            }
        };
        let (head, buffer) = match tokio::time::timeout(self.timeout, head).await {
            Ok(Ok(head)) => head,
            Ok(Err(err)) => return Err(read_failure(err, origin, start.elapsed())),
            Err(_) => {
                return Err(TransportError {
                    kind: FailureKind::Timeout,
                    message: format!(
                        "no response head within the timeout of {}",
                        humantime::format_duration(self.timeout)
                    ),
                    latency: start.elapsed(),
                });
            }
        };
        let framing = framing(&head, false);
        let remaining = match framing {
            Framing::Length(length) => length,
            _ => 0,
        };
        let stream_head = StreamHead {
            status: head.status,
            headers: head.headers,
        };
        let body = Streaming {
            stream,
            buffer,
            framing,
            chunk: Chunk::default(),
            remaining,
            finished: false,
        };
        Ok((stream_head, body))
    }
}

impl Streaming {
    /// The next piece of the body; `Ok(None)` at its end. A broken stream is an error saying
    /// what broke.
    pub(crate) async fn next(&mut self) -> Result<Option<Bytes>, String> {
        loop {
            match self.framing {
                Framing::Chunked => {
                    if self.finished {
                        return Ok(None);
                    }
                    let mut data = BytesMut::new();
                    let done = decode_chunks(&mut self.buffer, &mut self.chunk, |piece| {
                        data.extend_from_slice(piece)
                    })
                    .map_err(describe)?;
                    self.finished = done;
                    if !data.is_empty() {
                        return Ok(Some(data.freeze()));
                    }
                    if done {
                        return Ok(None);
                    }
                }
                Framing::Length(_) => {
                    if self.remaining == 0 {
                        return Ok(None);
                    }
                    if !self.buffer.is_empty() {
                        let take = self.buffer.len().min(self.remaining as usize);
                        self.remaining -= take as u64;
                        return Ok(Some(self.buffer.split_to(take).freeze()));
                    }
                }
                Framing::Close => {
                    if !self.buffer.is_empty() {
                        let all = self.buffer.len();
                        let data = self.buffer.split_to(all).freeze();
                        return Ok(Some(data));
                    }
                }
            }
            // Room for the next read without keeping a large buffer per user.
            if self.buffer.capacity() > READ_SIZE * 4 && self.buffer.is_empty() {
                self.buffer = BytesMut::new();
            }
            let more = fill_stream(&mut self.stream, &mut self.buffer, READ_SIZE)
                .await
                .map_err(|err| format!("reading the event stream failed: {err}"))?;
            if !more {
                return match self.framing {
                    Framing::Close => Ok(None),
                    _ => Err(
                        "the server closed the event stream in the middle of its body".to_owned(),
                    ),
                };
            }
        }
    }
}

fn describe(err: ReadError) -> String {
    match err {
        ReadError::Invalid(detail) => {
            format!("the event stream's chunked body is broken: {detail}")
        }
        _ => "the event stream broke".to_owned(),
    }
}
