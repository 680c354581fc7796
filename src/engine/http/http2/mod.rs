//! HTTP/2 for one user: one connection per origin (taken by ALPN on https, or with prior
//! knowledge, h2c, on http), shared as streams by the user's `parallel:` iterations; a request
//! as one stream, its body sent as the server's flow-control window allows and its answer read
//! as `Session::send` reads an HTTP/1.1 one (the same body limit, phases and failure kinds,
//! plus a stream reset, a GOAWAY and a flow-control stall).
//!
//! Spoken by a small client of our own (no server role, no push, no priority, few streams at
//! once) rather than the `h2` crate, for memory: `h2` keeps per connection, whatever it is
//! told, an 8 KiB read buffer, a 16 KiB write buffer, a stream store, a task, and an HPACK
//! table whose entries hold whole network buffers alive; 2,000 thinking users paid 2.6 to
//! 3.5 times the memory of HTTP/1.1 for it. Here a connection that has no stream open holds
//! its state and its HPACK table (the entries' bytes, compactly) and nothing else, and a
//! request's own task reads and writes the socket (no task per connection, no hop between
//! tasks per request). The parts: `frames` (the wire format), `huffman` and `hpack` (header
//! compression), `state` (streams, flow control, settings, GOAWAY; no socket), `link` (the
//! socket, shared by the streams on it).

use std::cell::Cell;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TE, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use tokio::time::Instant;

use self::failure::failure_text;
pub(super) use self::failure::stall;
use self::link::Link;
use self::state::Failure;
use super::body::{Collector, response_too_large};
use super::{Connection, Endpoint, Phases, Reply, Session, Setup, TransportError};
use crate::scenario::HttpVersion;
use crate::stats::FailureKind;
use crate::tls::ClientStream;

mod failure;
mod frames;
#[cfg(test)]
mod fuzz;
mod hpack;
mod huffman;
mod link;
mod state;

/// The HTTP/2 connections of a user and its `parallel:` copies: one per origin, each a handle
/// whose clones open streams on the same connection. Nothing is allocated until the user
/// speaks HTTP/2 or forks (most users of most runs never do either).
#[derive(Default)]
pub(super) struct Shared(OnceLock<Arc<Mutex<Vec<Kept>>>>);

/// A connection's origin and a handle on it.
type Kept = (Endpoint, Link);

impl Shared {
    /// The same connections, for a `parallel:` copy of the user (made now if there were none,
    /// so that a connection either opens is the other's too).
    pub(super) fn share(&self) -> Shared {
        Shared(OnceLock::from(self.connections().clone()))
    }

    fn connections(&self) -> &Arc<Mutex<Vec<Kept>>> {
        self.0.get_or_init(Arc::default)
    }

    /// The connection to `origin`, unless there is none or it is known to have ended (a
    /// GOAWAY, the server closed it): then it is forgotten.
    fn ready(&self, origin: &Endpoint) -> Option<Link> {
        let link = {
            let connections = self.0.get()?.lock().ok()?;
            let (_, link) = connections.iter().find(|(at, _)| at == origin)?;
            link.clone()
        };
        if link.usable() {
            return Some(link);
        }
        self.forget(origin, &link);
        None
    }

    fn forget(&self, origin: &Endpoint, link: &Link) {
        if let Ok(mut connections) = self.connections().lock() {
            connections.retain(|(at, kept)| at != origin || !kept.same(link));
        }
    }

    fn keep(&self, origin: &Endpoint, link: &Link) {
        if let Ok(mut connections) = self.connections().lock() {
            connections.retain(|(at, ..)| at != origin);
            // One origin is the common case: room for exactly one more, not a growth step's 4.
            connections.reserve_exact(1);
            connections.push((origin.clone(), link.clone()));
        }
    }
}

/// HTTP/2 on a new connection, kept in `shared`: its preface and SETTINGS go out with its
/// first request.
fn handshake(stream: ClientStream, origin: &Endpoint, shared: &Shared) -> Link {
    let link = Link::new(stream);
    shared.keep(origin, &link);
    link
}

/// What one exchange needs besides the connection.
struct Exchange<'a, F> {
    origin: &'a Endpoint,
    parts: &'a http::request::Parts,
    body: &'a Bytes,
    wants_body: &'a F,
    limit: usize,
    /// The setup of a new connection (`None` on a kept one).
    setup: Option<Setup>,
    /// Set just before the request is sent (the timeout's latency runs from it).
    written: &'a Cell<Instant>,
    /// True while the request's body waits for the server's flow-control window.
    stalled: &'a Cell<bool>,
}

/// A stream open on a connection: closed when dropped (reset, if its answer was not read to
/// the end: a request that failed or timed out).
struct Open<'a> {
    link: &'a Link,
    id: u32,
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.link.close(self.id);
    }
}

/// Sends one request as a stream and reads its whole answer; `None` when the connection
/// turned out unusable (closed, or going away) before anything of the request was sent.
async fn exchange<F: Fn(u16, &HeaderMap) -> bool>(
    link: &Link,
    exchange: Exchange<'_, F>,
) -> Option<Result<Reply, TransportError>> {
    let Exchange {
        origin,
        parts,
        body,
        wants_body,
        limit,
        setup,
        written,
        stalled,
    } = exchange;
    let block = request_block(origin, parts, body);
    let start = Instant::now();
    written.set(start);
    let target = origin.authority();
    let fail = |failure: Failure| {
        let (kind, message) = failure_text(&failure, &target);
        TransportError {
            kind,
            message,
            latency: start.elapsed(),
        }
    };
    let opened = std::future::poll_fn(|cx| link.poll_open(cx, &block, body.is_empty())).await;
    let open = Open {
        link,
        id: opened.ok()?,
    };
    drop(block);
    let id = open.id;
    if !body.is_empty() {
        let mut rest = body.clone();
        stalled.set(true);
        let sent = std::future::poll_fn(|cx| link.poll_send(cx, id, &mut rest)).await;
        stalled.set(false);
        if let Err(failure) = sent {
            return Some(Err(fail(failure)));
        }
    }
    let head = match std::future::poll_fn(|cx| link.poll_head(cx, id)).await {
        Ok(head) => head,
        Err(failure) => return Some(Err(fail(failure))),
    };
    let first_byte = Instant::now();
    let status = head.status;
    let keep = wants_body(status, &head.headers);
    let announced = head
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    let body_too_large = |announced: Option<u64>| {
        let failure = response_too_large(limit, announced);
        TransportError {
            kind: failure.kind,
            message: failure.message,
            latency: start.elapsed(),
        }
    };
    if keep && announced.is_some_and(|length| length > limit as u64) {
        return Some(Err(body_too_large(announced)));
    }
    let mut collector = Collector::new(keep, limit);
    loop {
        let mut sink = |data: &[u8]| collector.push(data);
        match std::future::poll_fn(|cx| link.poll_body(cx, id, &mut sink)).await {
            Ok(true) => break,
            Ok(false) => {}
            Err(failure) => return Some(Err(fail(failure))),
        }
        if collector.too_large() {
            return Some(Err(body_too_large(None)));
        }
    }
    if collector.too_large() {
        return Some(Err(body_too_large(None)));
    }
    drop(open);
    let end = Instant::now();
    let phases = Phases {
        setup,
        ttfb: first_byte.saturating_duration_since(start),
        download: end.saturating_duration_since(first_byte),
    };
    let kept = collector.finish();
    Some(Ok(Reply {
        status,
        headers: head.headers,
        body: kept.bytes,
        body_len: kept.wire_len,
        latency: end - start,
        phases,
    }))
}

impl Session {
    /// The request over HTTP/2: on the kept connection to `origin`, or on a new one that
    /// takes HTTP/2. `None` when the request goes over HTTP/1.1 after all (a kept HTTP/1.1
    /// connection, or a server that picked it by ALPN; its new connection is kept for it).
    #[expect(
        clippy::too_many_arguments,
        reason = "the parts of one request, borrowed from send"
    )]
    pub(super) async fn try_http2(
        &mut self,
        origin: &Endpoint,
        parts: &http::request::Parts,
        body: &Bytes,
        wants_body: &impl Fn(u16, &HeaderMap) -> bool,
        began: Instant,
        written: &Cell<Instant>,
        stalled: &Cell<bool>,
    ) -> Option<Result<Reply, TransportError>> {
        let request = |setup| Exchange {
            origin,
            parts,
            body,
            wants_body,
            limit: self.client.max_body,
            setup,
            written,
            stalled,
        };
        match self.http2.ready(origin) {
            Some(link) => match exchange(&link, request(None)).await {
                Some(sent) => return Some(sent),
                // Closed or going away while idle: a new connection takes the request.
                None => self.http2.forget(origin, &link),
            },
            None if self.connections.iter().any(|c| &c.origin == origin) => return None,
            None => {}
        }
        let (stream, phases) = match self.client.connect_timed(origin, began, true).await {
            Ok(connected) => connected,
            Err(err) => return Some(Err(err)),
        };
        if origin.https && !stream.negotiated_http2() {
            self.connections.push(Connection {
                origin: origin.clone(),
                stream,
                buffer: BytesMut::new(),
                setup: Some(phases),
            });
            return None;
        }
        let link = handshake(stream, origin, &self.http2);
        let sent = exchange(&link, request(Some(phases))).await;
        Some(sent.unwrap_or_else(|| {
            self.http2.forget(origin, &link);
            Err(TransportError {
                kind: FailureKind::ConnectionClosed,
                message: format!(
                    "the HTTP/2 connection to {} failed before the request was sent",
                    origin.authority()
                ),
                latency: written.get().elapsed(),
            })
        }))
    }
}

/// Whether a request in `http` goes over HTTP/2 where it can: `auto` on https (by ALPN),
/// `2` on https (by ALPN) and on http (with prior knowledge).
pub(super) fn offers(http: HttpVersion, origin: &Endpoint) -> bool {
    match http {
        HttpVersion::Http1 => false,
        HttpVersion::Http2 => true,
        HttpVersion::Auto => origin.https,
    }
}

/// The request as a stream's header block (HPACK): the target in absolute form (the
/// pseudo-headers), the headers HTTP/2 forbids (those of one HTTP/1.1 connection) left out,
/// and the body's length.
fn request_block(origin: &Endpoint, parts: &http::request::Parts, body: &Bytes) -> Vec<u8> {
    let authority = parts
        .headers
        .get(HOST)
        .map(HeaderValue::as_bytes)
        .map_or_else(|| origin.authority().into_bytes(), <[u8]>::to_vec);
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |target| target.as_str());
    let scheme = if origin.https { "https" } else { "http" };
    let mut block = Vec::with_capacity(64 + parts.headers.len() * 32);
    hpack::encode_field(&mut block, b":method", parts.method.as_str().as_bytes());
    hpack::encode_field(&mut block, b":scheme", scheme.as_bytes());
    hpack::encode_field(&mut block, b":authority", &authority);
    hpack::encode_field(&mut block, b":path", path.as_bytes());
    for (name, value) in &parts.headers {
        if !connection_specific(name, value) {
            hpack::encode_field(&mut block, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    if !body.is_empty() || matches!(parts.method, Method::POST | Method::PUT | Method::PATCH) {
        let length = body.len().to_string();
        hpack::encode_field(&mut block, b"content-length", length.as_bytes());
    }
    block
}

/// Headers that belong to one HTTP/1.1 connection (RFC 9113 §8.2.2), and `Host` (said as
/// `:authority`) and `Content-Length` (written from the body).
fn connection_specific(name: &HeaderName, value: &HeaderValue) -> bool {
    const OTHERS: [&str; 2] = ["keep-alive", "proxy-connection"];
    *name == CONNECTION
        || *name == TRANSFER_ENCODING
        || *name == UPGRADE
        || *name == HOST
        || *name == CONTENT_LENGTH
        || (*name == TE && value != "trailers")
        || OTHERS.contains(&name.as_str())
}

#[cfg(test)]
mod tests;

/// Bytes written as hex digits, spaces between them allowed (RFC 7541's examples), for the
/// tests of the parts.
#[cfg(test)]
fn hex(text: &str) -> Vec<u8> {
    let digits: String = text.split_whitespace().collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}
