//! HTTP/2 for one user: one connection per origin (taken by ALPN on https, or with prior
//! knowledge, h2c, on http), shared as streams by the user's `parallel:` iterations; a request
//! as one stream, its body sent as the server's flow-control window allows and its answer read
//! as `Session::send` reads an HTTP/1.1 one (the same body limit, phases and failure kinds,
//! plus a stream reset, a GOAWAY and a flow-control stall).
//!
//! Spoken with the `h2` crate directly, not through hyper's `client::conn::http2`: hyper wraps
//! every request in a dispatch channel and a body type of its own on top of `h2`, which costs
//! a hop between tasks per request; here the user's task opens the stream and reads the
//! answer itself, and only the connection's frame reading and writing runs as a task.

use std::cell::Cell;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use h2::client::SendRequest;
use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TE, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use tokio::time::Instant;

use super::body::{Collector, too_large};
use super::goaway::{GoAwaySeen, Watched};
use super::{Connection, Endpoint, Phases, Reply, Session, Setup, TransportError};
use crate::scenario::HttpVersion;
use crate::stats::FailureKind;
use crate::tls::ClientStream;

/// The HTTP/2 connections of a user and its `parallel:` copies: one per origin, each a handle
/// whose clones open streams on the same connection. Nothing is allocated until the user
/// speaks HTTP/2 or forks (most users of most runs never do either).
#[derive(Default)]
pub(super) struct Shared(OnceLock<Arc<Mutex<Vec<Kept>>>>);

/// A connection's origin, a handle on it and the GOAWAY it received, if any.
type Kept = (Endpoint, SendRequest<Bytes>, GoAwaySeen);

impl Shared {
    /// The same connections, for a `parallel:` copy of the user (made now if there were none,
    /// so that a connection either opens is the other's too).
    pub(super) fn share(&self) -> Shared {
        Shared(OnceLock::from(self.connections().clone()))
    }

    fn connections(&self) -> &Arc<Mutex<Vec<Kept>>> {
        self.0.get_or_init(Arc::default)
    }

    /// A handle on the connection to `origin` ready for one more stream, unless there is none
    /// or it ended (a GOAWAY, the server closed it): then it is forgotten.
    pub(super) async fn ready(
        &self,
        origin: &Endpoint,
    ) -> Option<(SendRequest<Bytes>, GoAwaySeen)> {
        let (sender, seen) = {
            let connections = self.0.get()?.lock().ok()?;
            let (_, sender, seen) = connections.iter().find(|(at, ..)| at == origin)?;
            (sender.clone(), seen.clone())
        };
        match sender.ready().await {
            Ok(sender) => Some((sender, seen)),
            Err(_) => {
                if let Ok(mut connections) = self.connections().lock() {
                    connections.retain(|(at, ..)| at != origin);
                }
                None
            }
        }
    }

    fn keep(&self, origin: &Endpoint, sender: &SendRequest<Bytes>, seen: &GoAwaySeen) {
        if let Ok(mut connections) = self.connections().lock() {
            connections.retain(|(at, ..)| at != origin);
            // One origin is the common case: room for exactly one more, not a growth step's 4.
            connections.reserve_exact(1);
            connections.push((origin.clone(), sender.clone(), seen.clone()));
        }
    }
}

/// The HTTP/2 handshake on a new connection; its frames are then read and written by a task
/// of its own, which ends with the connection (and notes a GOAWAY it reads). The handle is
/// kept in `shared`.
pub(super) async fn handshake(
    stream: ClientStream,
    origin: &Endpoint,
    shared: &Shared,
    began: Instant,
) -> Result<(SendRequest<Bytes>, GoAwaySeen), TransportError> {
    let seen = GoAwaySeen::default();
    let (sender, connection) = h2::client::Builder::new()
        .enable_push(false)
        .handshake::<_, Bytes>(Watched::new(stream, seen.clone()))
        .await
        .map_err(|err| failure(&err, origin, began.elapsed()))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let sender = sender
        .ready()
        .await
        .map_err(|err| failure(&err, origin, began.elapsed()))?;
    shared.keep(origin, &sender, &seen);
    Ok((sender, seen))
}

/// What one exchange needs besides the connection.
pub(super) struct Exchange<'a, F> {
    pub(super) origin: &'a Endpoint,
    pub(super) parts: &'a http::request::Parts,
    pub(super) body: &'a Bytes,
    pub(super) wants_body: &'a F,
    pub(super) limit: usize,
    /// The setup of a new connection (`None` on a kept one).
    pub(super) setup: Option<Setup>,
    /// Set just before the request is sent (the timeout's latency runs from it).
    pub(super) written: &'a Cell<Instant>,
    /// True while the request's body waits for the server's flow-control window.
    pub(super) stalled: &'a Cell<bool>,
    /// The GOAWAY the connection received, if any.
    pub(super) goaway: &'a GoAwaySeen,
}

/// Sends one request as a stream and reads its whole answer.
pub(super) async fn exchange<F: Fn(u16, &HeaderMap) -> bool>(
    mut sender: SendRequest<Bytes>,
    exchange: Exchange<'_, F>,
) -> Result<Reply, TransportError> {
    let Exchange {
        origin,
        parts,
        body,
        wants_body,
        limit,
        setup,
        written,
        stalled,
        goaway,
    } = exchange;
    let request = request(origin, parts, body);
    let start = Instant::now();
    written.set(start);
    let fail = |err: h2::Error| {
        let (kind, message) = failure_text(&err, &origin.authority(), goaway.get());
        TransportError {
            kind,
            message,
            latency: start.elapsed(),
        }
    };
    let (response, mut stream) = sender
        .send_request(request, body.is_empty())
        .map_err(fail)?;
    let mut rest = body.clone();
    while !rest.is_empty() {
        stream.reserve_capacity(rest.len());
        stalled.set(true);
        let granted = std::future::poll_fn(|cx| stream.poll_capacity(cx)).await;
        stalled.set(false);
        match granted {
            Some(Ok(0)) => continue,
            Some(Ok(room)) => {
                let piece = rest.split_to(room.min(rest.len()));
                stream.send_data(piece, rest.is_empty()).map_err(fail)?;
            }
            Some(Err(err)) => return Err(fail(err)),
            // The stream ended before its body was sent: the answer says why.
            None => break,
        }
    }
    let response = response.await.map_err(fail)?;
    let first_byte = Instant::now();
    let (head, mut received) = response.into_parts();
    let status = head.status.as_u16();
    let keep = wants_body(status, &head.headers);
    let announced = head
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    let body_too_large = |announced: Option<u64>| {
        let detail = match announced {
            Some(length) => format!("(Content-Length {length}) is larger than"),
            None => "went past".to_owned(),
        };
        let failure = too_large(limit, &detail);
        TransportError {
            kind: failure.kind,
            message: failure.message,
            latency: start.elapsed(),
        }
    };
    if keep && announced.is_some_and(|length| length > limit as u64) {
        return Err(body_too_large(announced));
    }
    let mut collector = Collector::new(keep, limit);
    while let Some(data) = received.data().await {
        let data = data.map_err(fail)?;
        collector.push(&data);
        let _ = received.flow_control().release_capacity(data.len());
        if collector.too_large() {
            return Err(body_too_large(None));
        }
    }
    let end = Instant::now();
    let phases = Phases {
        setup,
        ttfb: first_byte.saturating_duration_since(start),
        download: end.saturating_duration_since(first_byte),
    };
    let kept = collector.finish();
    Ok(Reply {
        status,
        headers: head.headers,
        body: kept.bytes,
        body_len: kept.wire_len,
        latency: end - start,
        phases,
    })
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
        let ((sender, goaway), setup) = match self.http2.ready(origin).await {
            Some(kept) => (kept, None),
            None if self.connections.iter().any(|c| &c.origin == origin) => return None,
            None => {
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
                match handshake(stream, origin, &self.http2, began).await {
                    Ok(kept) => (kept, Some(phases)),
                    Err(err) => return Some(Err(err)),
                }
            }
        };
        let request = Exchange {
            origin,
            parts,
            body,
            wants_body,
            limit: self.client.max_body,
            setup,
            written,
            stalled,
            goaway: &goaway,
        };
        Some(exchange(sender, request).await)
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

/// The request as a stream's headers: the target in absolute form (the pseudo-headers), the
/// headers HTTP/2 forbids (those of one HTTP/1.1 connection) left out, and the body's length.
fn request(origin: &Endpoint, parts: &http::request::Parts, body: &Bytes) -> http::Request<()> {
    let authority = parts
        .headers
        .get(HOST)
        .and_then(|host| host.to_str().ok())
        .map_or_else(|| origin.authority(), str::to_owned);
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |target| target.as_str());
    let scheme = if origin.https { "https" } else { "http" };
    let mut request = http::Request::new(());
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = http::Uri::builder()
        .scheme(scheme)
        .authority(authority)
        .path_and_query(path)
        .build()
        .unwrap_or_else(|_| parts.uri.clone());
    let headers = request.headers_mut();
    for (name, value) in &parts.headers {
        if !connection_specific(name, value) {
            headers.append(name, value.clone());
        }
    }
    if !body.is_empty() || matches!(parts.method, Method::POST | Method::PUT | Method::PATCH) {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    }
    request
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

/// Maps an HTTP/2 error onto a kind and a sentence a person can act on.
pub(super) fn failure(err: &h2::Error, origin: &Endpoint, latency: Duration) -> TransportError {
    let (kind, message) = failure_text(err, &origin.authority(), None);
    TransportError {
        kind,
        message,
        latency,
    }
}

/// `goaway`: the last stream id and reason of a GOAWAY the connection received before the
/// error: a request it covered that then died with the connection is that GOAWAY's failure.
fn failure_text(
    err: &h2::Error,
    target: &str,
    goaway: Option<(u32, h2::Reason)>,
) -> (FailureKind, String) {
    let reason = err
        .reason()
        .map_or_else(|| "no reason".to_owned(), |reason| format!("{reason:?}"));
    if err.is_go_away() {
        let from = if err.is_remote() { target } else { "chorus" };
        return (
            FailureKind::GoAway,
            format!(
                "{from} sent GOAWAY ({reason}) before this request's response was complete: the server closed the HTTP/2 connection under it (restarting or reloading, or at its limit of requests per connection, e.g. nginx's keepalive_requests); the next request opens a new connection"
            ),
        );
    }
    if err.is_reset() {
        let advice = match err.reason() {
            Some(h2::Reason::REFUSED_STREAM) => {
                "the server refused it unprocessed (too many streams at once: lower `parallel:`, or raise the server's max_concurrent_streams)"
            }
            Some(h2::Reason::CANCEL) => "the server cancelled it",
            _ => "the server gave up on it (look in the server's error log for this request)",
        };
        let from = if err.is_remote() { target } else { "chorus" };
        return (
            FailureKind::StreamReset,
            format!(
                "{from} reset the HTTP/2 stream ({reason}) before the response was complete: {advice}"
            ),
        );
    }
    if let (Some(io), Some((last, reason))) = (err.get_io(), goaway) {
        return (
            FailureKind::GoAway,
            format!(
                "{target} sent GOAWAY ({reason:?}, last stream {last}) and then the HTTP/2 connection closed ({io}) before this request's response was complete: the server gave up on the connection with the request on it (look in the server's error log); the next request opens a new connection"
            ),
        );
    }
    if let Some(io) = err.get_io() {
        return (
            FailureKind::ConnectionClosed,
            format!("the HTTP/2 connection to {target} failed: {io}"),
        );
    }
    (
        FailureKind::InvalidResponse,
        format!("{target} broke the HTTP/2 protocol: {err}"),
    )
}

/// The failure of a request whose body waited on the server's flow-control window until the
/// timeout.
pub(super) fn stall(target: &str, timeout: Duration, latency: Duration) -> TransportError {
    TransportError {
        kind: FailureKind::FlowControlStall,
        message: format!(
            "{target} did not open its HTTP/2 flow-control window for this request's body within the timeout of {}: the server stopped reading it (too slow, or its window settings too small for this body)",
            humantime::format_duration(timeout)
        ),
        latency,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_says_its_target_as_pseudo_headers_and_drops_connection_headers() {
        let origin = Endpoint {
            https: true,
            host: "example.org".to_owned(),
            port: 8443,
        };
        let (parts, ()) = http::Request::post("/a?b=1")
            .header("connection", "keep-alive")
            .header("te", "gzip")
            .header("cookie", "a=1")
            .header("content-length", "99")
            .body(())
            .unwrap()
            .into_parts();
        let request = request(&origin, &parts, &Bytes::from_static(b"xyz"));
        assert_eq!(request.uri(), "https://example.org:8443/a?b=1");
        let names: Vec<&str> = request.headers().keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["cookie", "content-length"]);
        assert_eq!(request.headers()[CONTENT_LENGTH], "3");
    }

    #[test]
    fn a_user_holds_no_http2_state_until_it_forks_and_its_copy_shares_it() {
        let user = Shared::default();
        assert!(user.0.get().is_none(), "allocated before HTTP/2 or a fork");
        let copy = user.share();
        assert!(Arc::ptr_eq(user.connections(), copy.connections()));
        let later = copy.share();
        assert!(Arc::ptr_eq(user.connections(), later.connections()));
    }

    #[test]
    fn resets_and_goaways_say_what_happened() {
        let reset = h2::Error::from(h2::Reason::REFUSED_STREAM);
        let (kind, message) = failure_text(&reset, "127.0.0.1:8443", None);
        // A reason made locally is neither a reset nor a GOAWAY.
        assert_eq!(kind, FailureKind::InvalidResponse, "{message}");
        let stalled = stall("127.0.0.1:8443", Duration::from_secs(2), Duration::ZERO);
        assert_eq!(stalled.kind, FailureKind::FlowControlStall);
        assert!(stalled.message.contains("within the timeout of 2s"));
    }
}
