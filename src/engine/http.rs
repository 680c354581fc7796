//! The client edge: the HTTP session of one virtual user (one keep-alive connection per
//! origin, plain TCP or rustls; HTTP/1.1 spoken in the user's own task, HTTP/2 in `http2`), connect and whole-request
//! timeouts, and the classification of transport problems into a small closed set of kinds. It knows nothing of scenarios, cookies
//! or statistics; the latency it reports runs from just before the request is written to the
//! end of the response body.

use std::cell::Cell;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf as _, Bytes, BytesMut};
use http::{HeaderMap, Method, Request};
use http_body_util::Full;
use hyper::body::Body as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _, ReadBuf};
use tokio::time::Instant;

use self::body::Collector;
pub(crate) use self::body::{decoded_body, decoded_start};
use self::connect::tls_config;
use self::wire::{
    Chunk, Framing, HeadScan, ReadError, decode_chunks, framing, keep_alive, parse_head,
    write_request,
};
use crate::scenario::HttpVersion;
use crate::stats::{FailureKind, Phases, Setup};
use crate::tls::ClientStream;

mod body;
mod connect;
#[cfg(test)]
mod fuzz;
mod http2;
mod stream;
mod wire;

pub(crate) use self::stream::Streaming;

/// Where a connection goes: scheme, host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) https: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl Endpoint {
    pub(crate) fn of(url: &url::Url) -> Option<Endpoint> {
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            _ => return None,
        };
        let host = match url.host()? {
            url::Host::Ipv6(ip) => ip.to_string(),
            other => other.to_string(),
        };
        Some(Endpoint {
            https,
            host,
            port: url.port_or_known_default()?,
        })
    }

    /// `host` or `host:port`, as a `Host` header says it.
    pub(crate) fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.https { 443 } else { 80 };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

#[derive(Debug)]
pub(crate) struct TransportError {
    /// One of the transport kinds (connect, TLS, timeout, closed, invalid response).
    pub(crate) kind: FailureKind,
    pub(crate) message: String,
    /// Time spent before the failure was known.
    pub(crate) latency: Duration,
}

/// A complete response.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    /// The body as it came on the wire (still compressed, if it was): whole when the caller
    /// wanted it, else only its first [`PREFIX`] bytes.
    pub(crate) body: Bytes,
    /// The body's length on the wire (all of it, kept or not).
    pub(crate) body_len: u64,
    pub(crate) latency: Duration,
    /// Where the time went: `ttfb + download` is `latency` exactly; a new connection's
    /// setup came before it, outside `latency` (which starts once the connection is ready).
    pub(crate) phases: Phases,
}

impl Reply {
    /// The latency and the phases, as a sample of the run records them.
    pub(crate) fn timing(&self) -> (Duration, Option<&Phases>) {
        (self.latency, Some(&self.phases))
    }
}

/// What every session of one run shares: timeouts, the body limit and the TLS
/// configuration.
pub(crate) struct Client {
    connect_timeout: Duration,
    timeout: Duration,
    max_body: usize,
    /// Offers HTTP/1.1 only by ALPN.
    tls: tokio_rustls::TlsConnector,
    /// Offers HTTP/2, then HTTP/1.1, by ALPN.
    tls_http2: tokio_rustls::TlsConnector,
    /// The local addresses connections leave from, in turn (`--source-addrs`); empty: the
    /// kernel picks.
    sources: Vec<IpAddr>,
    /// The next of `sources` (a count of connections, not of requests).
    next_source: AtomicUsize,
    /// Whether running out of source ports was said already (once a run, not per request).
    ports_said: AtomicBool,
}

impl Client {
    pub(crate) fn new(
        connect_timeout: Duration,
        timeout: Duration,
        max_body: u64,
        accept_invalid_certs: bool,
        sources: Vec<IpAddr>,
    ) -> Result<Client, rustls::Error> {
        Ok(Client {
            connect_timeout,
            timeout,
            max_body: usize::try_from(max_body).unwrap_or(usize::MAX),
            tls: tokio_rustls::TlsConnector::from(tls_config(
                accept_invalid_certs,
                crate::tls::ALPN_HTTP1,
            )?),
            tls_http2: tokio_rustls::TlsConnector::from(tls_config(
                accept_invalid_certs,
                crate::tls::ALPN_HTTP2_OR_1,
            )?),
            sources,
            next_source: AtomicUsize::new(0),
            ports_said: AtomicBool::new(false),
        })
    }

    /// The most of a body that is kept for a step that reads it.
    pub(crate) fn max_body(&self) -> usize {
        self.max_body
    }

    /// The time allowed for a whole request (a socket's handshake).
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// One keep-alive connection and the bytes read from it that no response used yet.
struct Connection {
    origin: Endpoint,
    stream: ClientStream,
    buffer: BytesMut,
    /// How long a new connection took to set up, until its first request says it.
    setup: Option<Setup>,
}

/// One user's connections: at most one keep-alive connection per origin.
///
/// HTTP/1.1 is spoken here directly, in the user's own task, rather than through hyper's
/// client: hyper runs each connection as a task of its own and hands every request and
/// response across channels between the two, which cost about half of the engine's own time
/// per request on one core. Here a request is one write, and its response is read, framed
/// (`Content-Length`, chunked, or to the end) and parsed (`httparse`) in the same task.
pub(crate) struct Session {
    client: Arc<Client>,
    connections: Vec<Connection>,
    /// HTTP/2 connections, shared with the user's `parallel:` copies.
    http2: http2::Shared,
    /// The request being written; kept, so that writing one allocates nothing.
    out: Vec<u8>,
}

impl Session {
    pub(crate) fn new(client: Arc<Client>) -> Session {
        Session {
            client,
            connections: Vec::new(),
            http2: http2::Shared::default(),
            out: Vec::new(),
        }
    }

    /// A session for a `parallel:` copy of the user: its own HTTP/1.1 connections, the same
    /// HTTP/2 ones (its requests are more streams on them, as a browser's would be).
    pub(crate) fn fork(&self) -> Session {
        Session {
            http2: self.http2.share(),
            ..Session::new(self.client.clone())
        }
    }

    /// Sends one request (its URI in origin form: path and query) and reads the whole
    /// response, all within the client's timeout, in the HTTP `http` asks for (HTTP/2 on a
    /// connection that takes it). `wants_body` says from the status and the headers whether
    /// the caller reads the body: then it is kept up to the body limit (past it the request
    /// fails as `BodyTooLarge`); else it is read, counted and dropped.
    pub(crate) async fn send(
        &mut self,
        origin: &Endpoint,
        request: Request<Full<Bytes>>,
        http: HttpVersion,
        wants_body: impl Fn(u16, &HeaderMap) -> bool,
    ) -> Result<Reply, TransportError> {
        let (parts, body) = request.into_parts();
        let body = full_bytes(body);
        let began = Instant::now();
        // Just before the request is written; until then, when connecting began.
        let written = Cell::new(began);
        let stalled = Cell::new(false);
        let timeout = self.client.timeout;
        let exchange = async {
            if http2::offers(http, origin) {
                let sent = Box::pin(self.try_http2(
                    origin,
                    &parts,
                    &body,
                    &wants_body,
                    began,
                    &written,
                    &stalled,
                ))
                .await;
                if let Some(sent) = sent {
                    return sent;
                }
            }
            self.out.clear();
            if self.out.capacity() > MAX_KEPT_BUFFER {
                self.out = Vec::new();
            }
            write_request(&mut self.out, origin, &parts, &body);
            let head_only = parts.method == Method::HEAD;
            self.exchange(origin, head_only, &wants_body, began, &written)
                .await
        };
        match tokio::time::timeout_at(began + timeout, exchange).await {
            Ok(result) => result,
            Err(_) if stalled.get() => Err(http2::stall(
                &origin.authority(),
                timeout,
                written.get().elapsed(),
            )),
            Err(_) => Err(TransportError {
                kind: FailureKind::Timeout,
                message: format!(
                    "no complete response within the timeout of {}",
                    humantime::format_duration(timeout)
                ),
                latency: written.get().elapsed(),
            }),
        }
    }

    async fn exchange(
        &mut self,
        origin: &Endpoint,
        head_only: bool,
        wants_body: &impl Fn(u16, &HeaderMap) -> bool,
        began: Instant,
        written: &Cell<Instant>,
    ) -> Result<Reply, TransportError> {
        for attempt in 0..2 {
            // Connecting (with a TLS handshake inline) is large and rare: boxed, so the future
            // every request moves around stays small.
            let (mut connection, reused, setup) = match self.take(origin).await {
                Some(mut connection) => match connection.setup.take() {
                    Some(setup) => (connection, false, Some(setup)),
                    None => (connection, true, None),
                },
                None => {
                    let (connection, setup) = Box::pin(self.connect(origin, began)).await?;
                    (connection, false, Some(setup))
                }
            };
            // A kept connection is ready at once: the clock read as `send` began will do.
            let start = if reused && attempt == 0 {
                began
            } else {
                Instant::now()
            };
            written.set(start);
            if let Err(err) = write_all(&mut connection.stream, &self.out).await {
                // A write that fails did not reach the server: on a connection the server
                // closed while it was idle, one retry on a fresh connection is honest.
                if reused && attempt == 0 {
                    continue;
                }
                let target = origin.authority();
                return Err(TransportError {
                    kind: FailureKind::ConnectionClosed,
                    message: match err.kind() {
                        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => {
                            format!("{target} closed the connection before the request was written")
                        }
                        _ => format!("writing the request to {target} failed: {err}"),
                    },
                    latency: start.elapsed(),
                });
            }
            let limit = self.client.max_body;
            let (status, headers, body, keep_alive, first_byte) =
                match read_response(&mut connection, head_only, wants_body, limit).await {
                    Ok(response) => response,
                    Err(err) => return Err(read_failure(err, origin, start.elapsed())),
                };
            let end = Instant::now();
            let latency = end - start;
            let phases = Phases {
                setup,
                ttfb: first_byte.saturating_duration_since(start),
                download: end.saturating_duration_since(first_byte),
            };
            if keep_alive {
                // An idle connection keeps no read buffer: a user thinks far longer than it
                // reads, and 100,000 thinking users would hold 4 KiB each for nothing.
                if connection.buffer.is_empty() || connection.buffer.capacity() > MAX_KEPT_BUFFER {
                    connection.buffer = BytesMut::new();
                }
                self.connections.push(connection);
            }
            return Ok(Reply {
                status,
                headers,
                body: body.bytes,
                body_len: body.wire_len,
                latency,
                phases,
            });
        }
        Err(TransportError {
            kind: FailureKind::ConnectionClosed,
            message: format!(
                "{} closed the connection twice before the request was written",
                origin.authority()
            ),
            latency: began.elapsed(),
        })
    }

    /// The kept connection to `origin`, unless the server closed it (or sent something
    /// unasked) while it was idle.
    async fn take(&mut self, origin: &Endpoint) -> Option<Connection> {
        let index = self.connections.iter().position(|c| &c.origin == origin)?;
        let mut connection = self.connections.swap_remove(index);
        if !connection.buffer.is_empty() {
            return None;
        }
        let mut probe = [0u8; 1];
        if let ClientStream::Plain(stream) = &connection.stream {
            // Without a syscall while tokio saw nothing arrive on the socket.
            return match stream.try_read(&mut probe) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => Some(connection),
                // End of stream, bytes nobody asked for, or an error.
                _ => None,
            };
        }
        let idle = std::future::poll_fn(|cx| {
            let mut probe = ReadBuf::new(&mut probe);
            match Pin::new(&mut connection.stream).poll_read(cx, &mut probe) {
                // Nothing to read: still open. (The waker it registered is this task's.)
                Poll::Pending => Poll::Ready(true),
                // End of stream, bytes nobody asked for, or an error.
                Poll::Ready(_) => Poll::Ready(false),
            }
        })
        .await;
        idle.then_some(connection)
    }

    /// A new connection to `origin`, and how long its name, TCP and TLS took.
    async fn connect(
        &self,
        origin: &Endpoint,
        began: Instant,
    ) -> Result<(Connection, Setup), TransportError> {
        let (stream, setup) = self.client.connect_timed(origin, began, false).await?;
        let connection = Connection {
            origin: origin.clone(),
            stream,
            buffer: BytesMut::new(),
            setup: None,
        };
        Ok((connection, setup))
    }
}

/// Buffers past this size are not kept between requests (a large body once must not cost
/// every idle user that much memory).
const MAX_KEPT_BUFFER: usize = 64 * 1024;
/// Room made for each read.
const READ_SIZE: usize = 4 * 1024;
async fn write_all(stream: &mut ClientStream, bytes: &[u8]) -> io::Result<()> {
    stream.write_all(bytes).await?;
    // TLS keeps what was written until flushed; a plain socket has nothing to flush.
    if let ClientStream::Tls(_) = stream {
        stream.flush().await?;
    }
    Ok(())
}

/// A `Full` body's bytes (it is ready at once, so no waker is ever woken).
fn full_bytes(mut body: Full<Bytes>) -> Bytes {
    let mut context = Context::from_waker(std::task::Waker::noop());
    match Pin::new(&mut body).poll_frame(&mut context) {
        Poll::Ready(Some(Ok(frame))) => frame.into_data().unwrap_or_default(),
        _ => Bytes::new(),
    }
}

/// Reads more bytes into the connection's buffer; `Ok(false)` at the end of the stream.
async fn fill(connection: &mut Connection, want: usize) -> io::Result<bool> {
    fill_stream(&mut connection.stream, &mut connection.buffer, want).await
}

/// Reads more bytes from `stream` into `buffer`; `Ok(false)` at the end of the stream.
async fn fill_stream(
    stream: &mut ClientStream,
    buffer: &mut BytesMut,
    want: usize,
) -> io::Result<bool> {
    let spare = buffer.capacity() - buffer.len();
    if spare < want.clamp(1, READ_SIZE) {
        buffer.reserve(want.max(READ_SIZE));
    }
    Ok(stream.read_buf(buffer).await? > 0)
}

/// Reads one response: its head (skipping `100 Continue` and the like), then its body as the
/// head frames it: kept whole up to `limit` when `wants_body` says so, else read and dropped
/// (its start kept). Returns the status, headers, body and whether the connection can be
/// kept; a body past the limit is an error, and its connection is not kept. Also when the
/// first byte of the answer came (one clock read per response).
async fn read_response(
    connection: &mut Connection,
    head_only: bool,
    wants_body: &impl Fn(u16, &HeaderMap) -> bool,
    limit: usize,
) -> Result<(u16, HeaderMap, body::Kept, bool, Instant), ReadError> {
    let mut scan = HeadScan::default();
    let mut first_byte = None;
    let head = loop {
        match parse_head(&mut connection.buffer, &mut scan)? {
            Some(head) if (100..200).contains(&head.status) && head.status != 101 => continue,
            Some(head) => break head,
            None => {
                if !fill(connection, READ_SIZE).await? {
                    return Err(ReadError::Closed);
                }
                first_byte.get_or_insert_with(Instant::now);
            }
        }
    };
    // A kept connection starts with an empty buffer, so the head came through a read.
    let first_byte = first_byte.unwrap_or_else(Instant::now);
    let framing = framing(&head, head_only);
    let keep = wants_body(head.status, &head.headers);
    let too_large = |announced| ReadError::TooLarge { limit, announced };
    let body = match framing {
        Framing::Length(length) if keep && length > limit as u64 => {
            return Err(too_large(Some(length)));
        }
        // Within the limit (and, for a body nobody reads, a short one: most are): the body
        // is the buffer's own bytes, not a copy.
        Framing::Length(length) if keep || length <= body::PREFIX as u64 => {
            let length = length as usize;
            while connection.buffer.len() < length {
                let missing = length - connection.buffer.len();
                if !fill(connection, missing).await? {
                    return Err(ReadError::Closed);
                }
            }
            let bytes = connection.buffer.split_to(length).freeze();
            body::Kept {
                wire_len: bytes.len() as u64,
                bytes,
            }
        }
        Framing::Length(length) => {
            let mut body = Collector::new(false, limit);
            let mut missing = length;
            loop {
                let take = connection.buffer.len().min(missing as usize);
                body.push(&connection.buffer[..take]);
                connection.buffer.advance(take);
                missing -= take as u64;
                if missing == 0 {
                    break;
                }
                if !fill(connection, READ_SIZE).await? {
                    return Err(ReadError::Closed);
                }
            }
            body.finish()
        }
        Framing::Chunked => {
            let mut body = Collector::new(keep, limit);
            let mut state = Chunk::default();
            while !decode_chunks(&mut connection.buffer, &mut state, |data| body.push(data))? {
                if body.too_large() {
                    return Err(too_large(None));
                }
                if !fill(connection, READ_SIZE).await? {
                    return Err(ReadError::Closed);
                }
            }
            if body.too_large() {
                return Err(too_large(None));
            }
            body.finish()
        }
        Framing::Close => {
            let mut body = Collector::new(keep, limit);
            loop {
                body.push(&connection.buffer);
                connection.buffer.clear();
                if body.too_large() {
                    return Err(too_large(None));
                }
                if !fill(connection, READ_SIZE).await? {
                    break;
                }
            }
            body.finish()
        }
    };
    let keep_open = keep_alive(&head, framing);
    Ok((head.status, head.headers, body, keep_open, first_byte))
}

/// Maps what went wrong while reading a response onto a kind and a sentence a person can act
/// on.
fn read_failure(err: ReadError, origin: &Endpoint, latency: Duration) -> TransportError {
    let target = origin.authority();
    let (kind, message) = match err {
        ReadError::Invalid(detail) => (
            FailureKind::InvalidResponse,
            format!("{target} answered something that is not an HTTP/1.1 response: {detail}"),
        ),
        ReadError::Closed => (
            FailureKind::ConnectionClosed,
            format!("{target} closed the connection before the response was complete"),
        ),
        ReadError::TooLarge { limit, announced } => {
            let failure = body::response_too_large(limit, announced);
            (failure.kind, failure.message)
        }
        ReadError::Io(err) if err.kind() == io::ErrorKind::ConnectionReset => (
            FailureKind::ConnectionClosed,
            format!("{target} reset the connection before the response was complete"),
        ),
        ReadError::Io(err) if err.kind() == io::ErrorKind::UnexpectedEof => (
            FailureKind::ConnectionClosed,
            format!("{target} closed the connection before the response was complete"),
        ),
        ReadError::Io(err) => (
            FailureKind::ConnectionClosed,
            format!("reading the response from {target} failed: {err}"),
        ),
    };
    TransportError {
        kind,
        message,
        latency,
    }
}

/// A session of its own on a client with the tests' settings (5 s to connect, 10 s a request,
/// 1 MiB bodies), and the origin of `addr` over http.
#[cfg(test)]
fn test_session(addr: std::net::SocketAddr) -> (Session, Endpoint) {
    let client = Client::new(
        Duration::from_secs(5),
        Duration::from_secs(10),
        1 << 20,
        false,
        Vec::new(),
    );
    let url = url::Url::parse(&format!("http://{addr}/")).unwrap();
    (
        Session::new(Arc::new(client.unwrap())),
        Endpoint::of(&url).unwrap(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_and_authorities() {
        let url = url::Url::parse("http://127.0.0.1:8001/a?b=1").unwrap();
        let origin = Endpoint::of(&url).unwrap();
        assert_eq!(origin.authority(), "127.0.0.1:8001");
        let url = url::Url::parse("https://example.org/").unwrap();
        let origin = Endpoint::of(&url).unwrap();
        assert_eq!(
            (origin.port, origin.authority().as_str()),
            (443, "example.org")
        );
        assert!(Endpoint::of(&url::Url::parse("ftp://example.org/").unwrap()).is_none());
    }

    /// A server on 127.0.0.1 that answers each request on one kept connection after
    /// `first_byte`, sends its head and half the body, and the other half `rest` later.
    async fn slow_server(first_byte: Duration, rest: Duration) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buffer = [0u8; 1024];
            loop {
                let read = stream.read(&mut buffer).await.unwrap();
                if read == 0 {
                    return;
                }
                request.extend_from_slice(&buffer[..read]);
                if !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    continue;
                }
                request.clear();
                tokio::time::sleep(first_byte).await;
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nab")
                    .await
                    .unwrap();
                tokio::time::sleep(rest).await;
                stream.write_all(b"cd").await.unwrap();
            }
        });
        addr
    }

    #[tokio::test]
    async fn each_phase_holds_the_time_the_server_took_in_it() {
        let (first_byte, rest) = (Duration::from_millis(120), Duration::from_millis(60));
        let addr = slow_server(first_byte, rest).await;
        let (mut session, origin) = test_session(addr);
        let request = || Request::get("/slow").body(Full::new(Bytes::new())).unwrap();
        let first = session
            .send(&origin, request(), HttpVersion::Auto, |_, _| true)
            .await
            .unwrap();
        assert_eq!(&first.body[..], b"abcd");
        let phases = first.phases;
        assert!(phases.ttfb >= first_byte, "{phases:?}");
        assert!(phases.download >= rest, "{phases:?}");
        assert_eq!(phases.ttfb + phases.download, first.latency);
        let setup = phases
            .setup
            .expect("the first request opened the connection");
        assert_eq!(setup.tls, None, "plain HTTP has no TLS handshake");
        // The second request goes on the kept connection: nothing to set up.
        let second = session
            .send(&origin, request(), HttpVersion::Auto, |_, _| true)
            .await
            .unwrap();
        let phases = second.phases;
        assert_eq!(phases.setup, None);
        assert!(
            phases.ttfb >= first_byte && phases.download >= rest,
            "{phases:?}"
        );
    }
}
