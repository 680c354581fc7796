//! The relay: one browser connection's HTTP/1.1 exchanges, each passed to the application on a
//! pooled connection and its answer streamed back, bytes and framing unchanged apart from the
//! heads ([`wire`]); a bounded copy of each recorded exchange goes to the sink. WebSocket
//! upgrades become a two-way pump; an application that cannot be reached becomes a 502 page
//! that says why; forward mode's CONNECT hands the connection back to [`super::forward`].
//!
//! Each browser connection is one task that reads a request, writes it upstream, reads the
//! answer and writes it back: no task or channel per request, no header maps, and the
//! recorded heads are the bytes that went over the wire.

mod answer;
mod body;
#[cfg(test)]
mod fuzz;
mod route;
mod upgrade;
pub(crate) mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use bytes::{Buf as _, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

use super::capture::{CapturedBody, Filter, RequestParts, ResponseParts, Timing};
use super::events::EventCapture;
use super::rewrite::ReverseRewrite;
use super::sink::{Exchange, Sink};
use super::upstream::{Origin, Pool, Upstream};
pub(crate) use answer::bad_gateway_page;
use answer::{ResponseError, plain, read_response};
use body::{BodyReader, READ_SIZE, RelayError, relay_body, write_flush};
pub(crate) use route::Route;
use route::{Destination, destination};
use upgrade::Upgrade;
use wire::{Framing, Head, HeadError};

/// What every connection task shares.
pub(crate) struct ProxyState {
    pub(crate) pool: Pool,
    /// The application side of HTTP/2 browser streams ([`super::relay_h2`]).
    pub(crate) applications: super::applications::Applications,
    pub(crate) sink: Sink,
    pub(crate) filter: Filter,
    pub(crate) max_body: usize,
    pub(crate) forwarded: AtomicU64,
    /// `--proxy-auth`: asked of every request on a forward or reverse route (a tunnel
    /// intercepted with `--mitm` was asked at its CONNECT).
    pub(crate) auth: Option<super::access::ProxyAuth>,
}

/// How a browser connection's relay ended.
pub(crate) enum Ended<S> {
    Closed,
    /// Forward mode's CONNECT: the connection and the request, for [`super::forward`].
    Connect {
        browser: S,
        head: Head,
    },
}

/// Relays the browser connection's requests until it closes, `stop` is cancelled between
/// requests, or (forward mode) a CONNECT comes.
pub(crate) async fn serve<S>(
    shared: Arc<ProxyState>,
    mut browser: S,
    route: &Route,
    local: Option<SocketAddr>,
    stop: CancellationToken,
) -> Ended<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut connection = Connection {
        buffer: BytesMut::with_capacity(READ_SIZE),
        out: Vec::with_capacity(4096),
        rewrite: None,
    };
    loop {
        let head = match read_request(&mut browser, &mut connection.buffer, &stop).await {
            Ok(Some(head)) => head,
            Ok(None) => return Ended::Closed,
            Err(err) => {
                let text = format!("chorus record: the browser sent {err}\n");
                let _ = write_flush(
                    &mut browser,
                    &wire::answer(
                        400,
                        "Bad Request",
                        "text/plain; charset=utf-8",
                        text.as_bytes(),
                    ),
                )
                .await;
                return Ended::Closed;
            }
        };
        let forward = matches!(route, Route::Forward);
        let asked = match (&shared.auth, route) {
            (Some(auth), Route::Forward | Route::Reverse { .. }) => auth.refusal(forward, &head),
            _ => None,
        };
        if let Some(refusal) = asked {
            let _ = write_flush(&mut browser, &refusal).await;
            return Ended::Closed;
        }
        if head.method() == "CONNECT" {
            if forward {
                return Ended::Connect { browser, head };
            }
            let _ = write_flush(
                &mut browser,
                &plain(
                    405,
                    "Method Not Allowed",
                    "CONNECT is for forward proxies: this is chorus record's reverse mode",
                ),
            )
            .await;
            return Ended::Closed;
        }
        match connection
            .exchange(&shared, &mut browser, head, route, local)
            .await
        {
            Next::Request => {}
            Next::Close => return Ended::Closed,
            Next::Upgrade(upgrade) => {
                upgrade.pump(&shared, browser, connection.buffer).await;
                return Ended::Closed;
            }
        }
    }
}

/// Reads the next request head; `None` when the browser closed between requests or `stop`
/// came while it was idle.
async fn read_request<S: AsyncRead + Unpin>(
    browser: &mut S,
    buffer: &mut BytesMut,
    stop: &CancellationToken,
) -> Result<Option<Head>, HeadError> {
    let mut scan = wire::HeadScan::default();
    loop {
        if let Some(head) = wire::parse_request(buffer, &mut scan)? {
            return Ok(Some(head));
        }
        buffer.reserve(READ_SIZE);
        let read = if buffer.is_empty() {
            tokio::select! {
                read = browser.read_buf(buffer) => read,
                () = stop.cancelled() => return Ok(None),
            }
        } else {
            browser.read_buf(buffer).await
        };
        match read {
            Ok(0) if buffer.is_empty() => return Ok(None),
            Ok(0) => return Err(HeadError("an incomplete request head".to_owned())),
            Ok(_) => {}
            Err(_) => return Ok(None),
        }
    }
}

/// What comes after an exchange.
enum Next {
    Request,
    Close,
    Upgrade(Box<Upgrade>),
}

/// One browser connection's buffers.
struct Connection {
    /// What the browser sent that has not been relayed yet.
    buffer: BytesMut,
    /// The bytes being written, reused from message to message.
    out: Vec<u8>,
    /// Reverse mode's rewriting for the `Host` the browser uses.
    rewrite: Option<(String, Arc<ReverseRewrite>)>,
}

/// Everything known about an exchange in progress that the record needs.
struct Recording {
    url: String,
    head: Bytes,
    body: CapturedBody,
    started: SystemTime,
    start: Instant,
    sent: Option<Instant>,
}

impl Recording {
    /// The finished exchange, ending now.
    fn exchange(
        self,
        response: Option<ResponseParts>,
        head_at: Instant,
        error: Option<String>,
    ) -> Exchange {
        let timing = timing(self.started, self.start, self.sent, head_at, Instant::now());
        Exchange {
            request: RequestParts {
                url: self.url,
                head: self.head,
                body: self.body,
            },
            response,
            timing,
            error,
            websocket: None,
            events: None,
        }
    }

    fn send(
        self,
        sink: &Sink,
        response: Option<ResponseParts>,
        head_at: Instant,
        error: Option<String>,
    ) {
        sink.send(self.exchange(response, head_at, error));
    }
}

/// Phases from instants: send until the request body was read, wait until the response
/// head, receive until the end.
pub(crate) fn timing(
    started: SystemTime,
    start: Instant,
    request_done: Option<Instant>,
    head_at: Instant,
    end: Instant,
) -> Timing {
    let sent = request_done.unwrap_or(start).clamp(start, head_at);
    Timing {
        started,
        send: sent - start,
        wait: head_at - sent,
        receive: end.saturating_duration_since(head_at),
    }
}

/// The application's answer head and what responding to it depends on.
struct Answer {
    response: Head,
    head_request: bool,
    /// 0 for an HTTP/1.0 browser.
    browser_version: u8,
    browser_keeps: bool,
    /// The answer came before the request body was all sent: the rest of the body is still
    /// on its way, so neither connection can carry another exchange.
    answered_early: bool,
    head_at: Instant,
}

/// Why an exchange ended without the application's answer.
enum Failed {
    /// The browser sent something that cannot be relayed: a 400 and the connection closes.
    BadRequest(String),
    /// The application could not be reached or did not answer: a 502 page saying why;
    /// `keep` when the browser's connection can carry on.
    Unreachable { reason: String, keep: bool },
    /// The browser went away in the middle of its request body.
    BrowserGone(RelayError),
}

/// One request on its way: what is sent, how its body ends, what is recorded.
struct Outgoing<'a> {
    destination: Destination<'a>,
    /// The head (and as much of the body as came with it) for the application.
    bytes: Vec<u8>,
    body: BodyReader,
    /// Whether `bytes` holds the whole request, so that it can be sent again.
    whole: bool,
    browser_keeps: bool,
    recording: Option<Recording>,
}

impl Connection {
    async fn exchange<S>(
        &mut self,
        shared: &ProxyState,
        browser: &mut S,
        head: Head,
        route: &Route,
        local: Option<SocketAddr>,
    ) -> Next
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let started = SystemTime::now();
        let start = Instant::now();
        shared.forwarded.fetch_add(1, Ordering::Relaxed);
        let rewrite = match route {
            Route::Reverse { origin, .. } => Some(self.rewrite_for(&head, origin, local)),
            _ => None,
        };
        let began = (started, start);
        let mut outgoing = match self.outgoing(shared, &head, route, rewrite.as_deref(), began) {
            Ok(outgoing) => outgoing,
            Err(failed) => return self.failed(shared, browser, None, "", failed).await,
        };
        if head.expect_continue
            && write_flush(browser, b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .is_err()
        {
            return Next::Close;
        }
        let sent = self.send(shared, browser, &mut outgoing).await;
        let Outgoing {
            destination,
            bytes,
            browser_keeps,
            recording,
            ..
        } = outgoing;
        self.out = bytes;
        let (upstream, response, early) = match sent {
            Ok(sent) => sent,
            Err(failed) => {
                return self
                    .failed(shared, browser, recording, &destination.url, failed)
                    .await;
            }
        };
        let head_at = Instant::now();
        if response.status == 101 && head.upgrade_websocket && head.facts.connection_upgrade {
            self.out.clear();
            wire::browser_response_head(&mut self.out, &response, None, rewrite.as_deref());
            return Next::Upgrade(Box::new(Upgrade {
                browser_head: std::mem::take(&mut self.out),
                upstream,
                recording: recording.map(|r| (r, response.bytes.clone())),
                head_at,
                limit: shared.max_body,
            }));
        }
        let answer = Answer {
            response,
            head_request: head.is_head_request(),
            browser_version: head.version,
            browser_keeps,
            answered_early: early,
            head_at,
        };
        self.respond(
            shared,
            browser,
            upstream,
            &destination.origin,
            answer,
            rewrite.as_deref(),
            recording,
        )
        .await
    }

    /// The request's destination, the head for the application and what is recorded.
    fn outgoing<'a>(
        &mut self,
        shared: &ProxyState,
        head: &Head,
        route: &'a Route,
        rewrite: Option<&ReverseRewrite>,
        (started, start): (SystemTime, Instant),
    ) -> Result<Outgoing<'a>, Failed> {
        let sent =
            |err: HeadError| Failed::BadRequest(format!("chorus record: the browser sent {err}"));
        let framing = wire::request_framing(head).map_err(sent)?;
        let destination = destination(route, head).map_err(Failed::BadRequest)?;
        let mut bytes = std::mem::take(&mut self.out);
        bytes.clear();
        // Reverse mode's `--proxy-auth` credentials are the recorder's, not the application's.
        let ours = match (&shared.auth, route) {
            (Some(_), Route::Reverse { .. }) => Some(super::access::ProxyAuth::header(false)),
            _ => None,
        };
        wire::upstream_request_head(
            &mut bytes,
            head,
            &destination.path,
            destination.origin.authority(),
            rewrite,
            ours,
        );
        let mut recording = shared.filter.records(&destination.url).then(|| Recording {
            url: destination.url.clone(),
            head: Bytes::copy_from_slice(&bytes),
            body: CapturedBody::default(),
            started,
            start,
            sent: None,
        });
        let mut body = BodyReader::new(framing, shared.max_body);
        let capture = recording.as_mut().map(|r| &mut r.body);
        let whole = body.take(&mut self.buffer, &mut bytes, capture);
        let whole = match whole {
            Ok(whole) => whole,
            Err(err) => {
                self.out = bytes;
                return Err(sent(err));
            }
        };
        Ok(Outgoing {
            destination,
            bytes,
            body,
            whole,
            browser_keeps: wire::keep_alive(head, framing),
            recording,
        })
    }

    /// Sends the request on a pooled or new connection and reads the answer's head (and
    /// whether it came before the whole body was sent); a request sent whole that finds a
    /// reused connection closed goes once more on a fresh one.
    async fn send<S>(
        &mut self,
        shared: &ProxyState,
        browser: &mut S,
        outgoing: &mut Outgoing<'_>,
    ) -> Result<(Upstream, Head, bool), Failed>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let origin = outgoing.destination.origin.as_ref();
        let whole = outgoing.whole;
        let unreachable = |reason: String, keep: bool| Failed::Unreachable {
            reason,
            keep: keep && outgoing.browser_keeps,
        };
        let mut retried = false;
        loop {
            let (mut upstream, reused) = match shared.pool.checkout(origin) {
                Some(upstream) => (upstream, true),
                None => match shared.pool.connect(origin).await {
                    Ok(upstream) => (upstream, false),
                    Err(err) => return Err(unreachable(err.to_string(), whole)),
                },
            };
            let retry = reused && !retried;
            retried |= retry;
            if let Err(err) = write_flush(&mut upstream.stream, &outgoing.bytes).await {
                if retry {
                    continue;
                }
                let reason = format!("the application closed the connection: {err}");
                return Err(unreachable(reason, whole));
            }
            let mut early = false;
            if !whole {
                let capture = outgoing.recording.as_mut().map(|r| &mut r.body);
                early = self
                    .upload(browser, &mut upstream, &mut outgoing.body, capture)
                    .await?;
            }
            if let Some(recording) = outgoing.recording.as_mut() {
                recording.sent = Some(Instant::now());
            }
            match read_response(&mut upstream, browser).await {
                Ok(response) => return Ok((upstream, response, early)),
                Err(ResponseError::Closed) if retry && whole => continue,
                Err(err) => return Err(unreachable(err.to_string(), true)),
            }
        }
    }

    /// Streams the rest of the request body to the application while watching for an early
    /// answer (a `413` before a big upload ends): `Ok(true)` when the final answer began
    /// before the body was all sent, and then the rest of the body is not forwarded. Interim
    /// answers that come meanwhile are dropped.
    async fn upload<S>(
        &mut self,
        browser: &mut S,
        upstream: &mut Upstream,
        body: &mut BodyReader,
        capture: Option<&mut CapturedBody>,
    ) -> Result<bool, Failed>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let unreachable = |reason: String| Failed::Unreachable {
            reason,
            keep: false,
        };
        let Upstream { stream, buffer } = upstream;
        let (mut app_read, mut app_write) = tokio::io::split(stream);
        let mut scratch = Vec::new();
        let relay = relay_body(
            browser,
            &mut self.buffer,
            &mut app_write,
            &mut scratch,
            body,
            capture,
            None,
        );
        tokio::pin!(relay);
        loop {
            buffer.reserve(READ_SIZE);
            tokio::select! {
                relayed = &mut relay => return match relayed {
                    Ok(()) => Ok(false),
                    Err(RelayError::Write(err)) => Err(unreachable(format!(
                        "the application stopped reading the request body: {err}"
                    ))),
                    Err(err) => Err(Failed::BrowserGone(err)),
                },
                read = app_read.read_buf(buffer) => match read {
                    Ok(0) => {
                        return Err(unreachable(
                            "the application closed the connection before the request body was sent"
                                .to_owned(),
                        ));
                    }
                    Err(err) => return Err(unreachable(format!("reading the answer failed: {err}"))),
                    Ok(_) => loop {
                        match wire::peek_response(buffer) {
                            wire::Peek::Interim(length) => buffer.advance(length),
                            wire::Peek::Incomplete => break,
                            wire::Peek::Final => return Ok(true),
                        }
                    },
                },
            }
        }
    }

    /// Streams the answer's body to the browser, gives the connection back to the pool when
    /// it can carry on, and records the exchange.
    #[allow(clippy::too_many_arguments)]
    async fn respond<S>(
        &mut self,
        shared: &ProxyState,
        browser: &mut S,
        mut upstream: Upstream,
        origin: &Origin,
        answer: Answer,
        rewrite: Option<&ReverseRewrite>,
        recording: Option<Recording>,
    ) -> Next
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let Answer {
            response,
            head_request,
            browser_version,
            browser_keeps,
            answered_early,
            head_at,
        } = answer;
        let framing = wire::response_framing(&response, head_request);
        let upstream_keeps = !answered_early && wire::keep_alive(&response, framing);
        let close =
            !browser_keeps || answered_early || framing == Framing::Close || response.status == 101;
        let connection = match (close, browser_version) {
            (true, _) => Some("close"),
            (false, 0) => Some("keep-alive"),
            (false, _) => None,
        };
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        wire::browser_response_head(&mut out, &response, connection, rewrite);
        let mut body = BodyReader::new(framing, shared.max_body);
        let mut captured = CapturedBody::default();
        let capture = recording.is_some().then_some(&mut captured);
        let mut events = (recording.is_some()
            && response
                .header("content-type")
                .is_some_and(super::events::is_event_stream))
        .then(|| EventCapture::new(shared.max_body));
        let Upstream { stream, buffer } = &mut upstream;
        let relayed = relay_body(
            stream,
            buffer,
            browser,
            &mut out,
            &mut body,
            capture,
            events.as_mut(),
        )
        .await;
        out.clear();
        self.out = out;
        let error = match &relayed {
            Ok(()) => answered_early.then(|| {
                "the application answered before the request body was all sent; the rest was not forwarded"
                    .to_owned()
            }),
            Err(RelayError::Write(_)) => {
                Some("the browser disconnected before the response ended".to_owned())
            }
            Err(err) => Some(format!(
                "the application closed the connection mid-response: {}",
                err.text("the connection closed")
            )),
        };
        if relayed.is_ok() && upstream_keeps && upstream.buffer.is_empty() {
            shared.pool.checkin(origin, upstream);
        }
        if let Some(recording) = recording {
            let response = ResponseParts {
                head: response.bytes,
                body: captured,
            };
            let mut exchange = recording.exchange(Some(response), head_at, error);
            exchange.events = events.map(EventCapture::finish);
            shared.sink.send(exchange);
        }
        if relayed.is_err() || close {
            let _ = browser.shutdown().await;
            return Next::Close;
        }
        Next::Request
    }

    /// Tells the browser (and the capture) why there is no answer from the application.
    async fn failed<S: AsyncWrite + Unpin>(
        &mut self,
        shared: &ProxyState,
        browser: &mut S,
        recording: Option<Recording>,
        url: &str,
        failed: Failed,
    ) -> Next {
        match failed {
            Failed::BadRequest(message) => {
                let _ = write_flush(browser, &plain(400, "Bad Request", &message)).await;
                Next::Close
            }
            Failed::Unreachable { reason, keep } => {
                self.bad_gateway(shared, browser, recording, url, &reason, keep)
                    .await
            }
            Failed::BrowserGone(err) => {
                if let Some(recording) = recording {
                    let error = format!(
                        "the browser's request body ended early: {}",
                        err.text("the connection closed")
                    );
                    recording.send(&shared.sink, None, Instant::now(), Some(error));
                }
                Next::Close
            }
        }
    }

    /// Reverse mode's rewriting for the `Host` this request names, kept while it stays the
    /// same.
    fn rewrite_for(
        &mut self,
        head: &Head,
        origin: &Origin,
        local: Option<SocketAddr>,
    ) -> Arc<ReverseRewrite> {
        let named = head
            .header("host")
            .and_then(|h| std::str::from_utf8(h).ok());
        if let (Some((known, rewrite)), Some(host)) = (&self.rewrite, named) {
            if known == host {
                return rewrite.clone();
            }
        }
        let host = named
            .map(str::to_owned)
            .or_else(|| local.map(|a| a.to_string()))
            .unwrap_or_default();
        let rewrite = Arc::new(ReverseRewrite {
            target_origin: origin.url_prefix().to_owned(),
            target_host: origin.host.clone(),
            browser_origin: format!("http://{host}"),
            strip_secure: origin.https,
        });
        self.rewrite = Some((host, rewrite.clone()));
        rewrite
    }

    /// Answers a 502 page naming the application and the error, and records it.
    async fn bad_gateway<S: AsyncWrite + Unpin>(
        &mut self,
        shared: &ProxyState,
        browser: &mut S,
        recording: Option<Recording>,
        url: &str,
        reason: &str,
        keep: bool,
    ) -> Next {
        let page = bad_gateway_page(url, reason);
        let answer = wire::answer(
            502,
            "Bad Gateway",
            "text/html; charset=utf-8",
            page.as_bytes(),
        );
        let written = write_flush(browser, &answer).await;
        if let Some(recording) = recording {
            let head_length = answer.len() - page.len();
            let mut body = CapturedBody::default();
            body.push(page.as_bytes(), shared.max_body);
            let response = ResponseParts {
                head: Bytes::copy_from_slice(&answer[..head_length]),
                body,
            };
            let error = format!("chorus record could not get a response from {url}: {reason}");
            recording.send(&shared.sink, Some(response), Instant::now(), Some(error));
        }
        if written.is_ok() && keep {
            Next::Request
        } else {
            Next::Close
        }
    }
}
