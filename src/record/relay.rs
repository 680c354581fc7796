//! The relay: one browser connection's HTTP/1.1 exchanges, each passed to the application on a
//! pooled connection and its answer streamed back, bytes and framing unchanged apart from the
//! heads ([`wire`]); a bounded copy of each recorded exchange goes to the sink. WebSocket
//! upgrades become a two-way pump; an application that cannot be reached becomes a 502 page
//! that says why; forward mode's CONNECT hands the connection back to [`super::forward`].
//!
//! Each browser connection is one task that reads a request, writes it upstream, reads the
//! answer and writes it back: no task or channel per request, no header maps, and the
//! recorded heads are the bytes that went over the wire.

pub(crate) mod wire;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use bytes::{Buf as _, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

use super::capture::{CapturedBody, Filter, RequestParts, ResponseParts, Timing};
use super::rewrite::ReverseRewrite;
use super::sink::{Exchange, Sink};
use super::upstream::{Origin, Pool, Upstream};
use super::websocket::{self, FrameParser};
use wire::{Chunk, Framing, Head, HeadError};

/// How much is read from a socket at a time.
const READ_SIZE: usize = 16 * 1024;

/// What every connection task shares.
pub(crate) struct Shared {
    pub(crate) pool: Pool,
    pub(crate) sink: Sink,
    pub(crate) filter: Filter,
    pub(crate) max_body: usize,
    pub(crate) forwarded: AtomicU64,
}

/// Where a browser connection's requests go.
pub(crate) enum Route {
    /// Reverse mode: every request to the target, whose path prefix (no trailing slash) goes
    /// before the request's path.
    Reverse { origin: Origin, prefix: String },
    /// Forward mode: each request names its URL; CONNECT ends the relay.
    Forward,
    /// Inside an intercepted CONNECT tunnel: every request to this HTTPS origin.
    Intercepted { origin: Origin },
}

impl Route {
    /// Reverse mode's route to `target` (validated: http or https, with a host).
    pub(crate) fn reverse(target: &url::Url) -> Route {
        let authority = &target[url::Position::BeforeHost..url::Position::AfterPort];
        let origin = Origin::new(target.scheme() == "https", authority)
            .expect("a validated target has a host");
        Route::Reverse {
            origin,
            prefix: target.path().trim_end_matches('/').to_owned(),
        }
    }
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

/// Where one request goes.
struct Destination<'a> {
    origin: Cow<'a, Origin>,
    /// The absolute URL, as recorded.
    url: String,
    /// The request target sent to the application.
    path: String,
}

/// Relays the browser connection's requests until it closes, `stop` is cancelled between
/// requests, or (forward mode) a CONNECT comes.
pub(crate) async fn serve<S>(
    shared: Arc<Shared>,
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
        if head.method() == "CONNECT" {
            if matches!(route, Route::Forward) {
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
    loop {
        if let Some(head) = wire::parse_request(buffer)? {
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
    fn send(
        self,
        sink: &Sink,
        response: Option<ResponseParts>,
        head_at: Instant,
        error: Option<String>,
    ) {
        let end = Instant::now();
        let timing = timing(self.started, self.start, self.sent, head_at, end);
        sink.send(Exchange {
            request: RequestParts {
                url: self.url,
                head: self.head,
                body: self.body,
            },
            response,
            timing,
            error,
            websocket: None,
        });
    }
}

/// Phases from instants: send until the request body was read, wait until the response
/// head, receive until the end.
fn timing(
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

impl Connection {
    async fn exchange<S>(
        &mut self,
        shared: &Shared,
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
        let framing = match wire::request_framing(&head) {
            Ok(framing) => framing,
            Err(err) => {
                let _ = write_flush(
                    browser,
                    &plain(
                        400,
                        "Bad Request",
                        &format!("chorus record: the browser sent {err}"),
                    ),
                )
                .await;
                return Next::Close;
            }
        };
        let browser_keeps = wire::keep_alive(&head, framing);
        let destination = match destination(route, &head) {
            Ok(destination) => destination,
            Err(message) => {
                let _ = write_flush(browser, &plain(400, "Bad Request", &message)).await;
                return Next::Close;
            }
        };
        let rewrite = match route {
            Route::Reverse { origin, .. } => Some(self.rewrite_for(&head, origin, local)),
            _ => None,
        };
        let record = shared.filter.records(&destination.url);
        if head.expect_continue
            && write_flush(browser, b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .is_err()
        {
            return Next::Close;
        }
        let upgrade = head.upgrade_websocket && head.connection_upgrade;
        let mut request = std::mem::take(&mut self.out);
        request.clear();
        wire::upstream_request_head(
            &mut request,
            &head,
            &destination.path,
            &destination.origin.authority,
            rewrite.as_deref(),
        );
        let mut recording = record.then(|| Recording {
            url: destination.url.clone(),
            head: Bytes::copy_from_slice(&request),
            body: CapturedBody::default(),
            started,
            start,
            sent: None,
        });
        let mut body = BodyReader::new(framing, shared.max_body);
        let capture = recording.as_mut().map(|r| &mut r.body);
        let whole = match body.take(&mut self.buffer, &mut request, capture) {
            Ok(whole) => whole,
            Err(err) => {
                self.out = request;
                let _ = write_flush(
                    browser,
                    &plain(
                        400,
                        "Bad Request",
                        &format!("chorus record: the browser sent {err}"),
                    ),
                )
                .await;
                return Next::Close;
            }
        };
        let origin = &destination.origin;
        let mut retried = false;
        let (mut upstream, response) = loop {
            let (mut upstream, reused) = match shared.pool.checkout(origin) {
                Some(upstream) => (upstream, true),
                None => match shared.pool.connect(origin).await {
                    Ok(upstream) => (upstream, false),
                    Err(err) => {
                        self.out = request;
                        return self
                            .bad_gateway(
                                shared,
                                browser,
                                recording,
                                &destination.url,
                                &err.to_string(),
                                whole && browser_keeps,
                            )
                            .await;
                    }
                },
            };
            let retry = reused && !retried;
            if let Err(err) = write_flush(&mut upstream.stream, &request).await {
                if retry {
                    retried = true;
                    continue;
                }
                self.out = request;
                let reason = format!("the application closed the connection: {err}");
                return self
                    .bad_gateway(
                        shared,
                        browser,
                        recording,
                        &destination.url,
                        &reason,
                        whole && browser_keeps,
                    )
                    .await;
            }
            if !whole {
                let capture = recording.as_mut().map(|r| &mut r.body);
                request.clear();
                match relay_body(
                    browser,
                    &mut self.buffer,
                    &mut upstream.stream,
                    &mut request,
                    &mut body,
                    capture,
                )
                .await
                {
                    Ok(()) => {}
                    Err(RelayError::Write(err)) => {
                        self.out = request;
                        let reason =
                            format!("the application stopped reading the request body: {err}");
                        return self
                            .bad_gateway(
                                shared,
                                browser,
                                recording,
                                &destination.url,
                                &reason,
                                false,
                            )
                            .await;
                    }
                    Err(err) => {
                        self.out = request;
                        if let Some(recording) = recording {
                            let error = format!(
                                "the browser's request body ended early: {}",
                                err.text("the connection closed")
                            );
                            recording.send(&shared.sink, None, Instant::now(), Some(error));
                        }
                        return Next::Close;
                    }
                }
            }
            if let Some(recording) = recording.as_mut() {
                recording.sent = Some(Instant::now());
            }
            match read_response(&mut upstream, browser).await {
                Ok(response) => break (upstream, response),
                Err(ResponseError::Closed) if retry && whole => {
                    retried = true;
                    continue;
                }
                Err(err) => {
                    self.out = request;
                    let reason = err.to_string();
                    return self
                        .bad_gateway(
                            shared,
                            browser,
                            recording,
                            &destination.url,
                            &reason,
                            browser_keeps,
                        )
                        .await;
                }
            }
        };
        let head_at = Instant::now();
        request.clear();
        self.out = request;

        if response.status == 101 && upgrade {
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
        let framing = wire::response_framing(&response, head.is_head_request());
        let upstream_keeps = wire::keep_alive(&response, framing) && response.status != 101;
        let close = !browser_keeps || framing == Framing::Close || response.status == 101;
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        let connection = match (close, head.version) {
            (true, _) => Some("close"),
            (false, 0) => Some("keep-alive"),
            (false, _) => None,
        };
        wire::browser_response_head(&mut out, &response, connection, rewrite.as_deref());
        let mut body = BodyReader::new(framing, shared.max_body);
        let mut captured = CapturedBody::default();
        let capture = recording.is_some().then_some(&mut captured);
        let Upstream { stream, buffer } = &mut upstream;
        let relayed = relay_body(stream, buffer, browser, &mut out, &mut body, capture).await;
        out.clear();
        self.out = out;
        let error = match &relayed {
            Ok(()) => None,
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
            recording.send(&shared.sink, Some(response), head_at, error);
        }
        if relayed.is_err() || close {
            let _ = browser.shutdown().await;
            return Next::Close;
        }
        Next::Request
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
            target_origin: origin.url_prefix(),
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
        shared: &Shared,
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

fn destination<'a>(route: &'a Route, head: &Head) -> Result<Destination<'a>, String> {
    let target = head.target();
    match route {
        Route::Reverse { origin, prefix } => {
            let path = if prefix.is_empty() {
                target.to_owned()
            } else {
                format!("{prefix}{target}")
            };
            Ok(Destination {
                url: format!("{}{path}", origin.url_prefix()),
                origin: Cow::Borrowed(origin),
                path,
            })
        }
        Route::Intercepted { origin } => Ok(Destination {
            url: format!("{}{target}", origin.url_prefix()),
            origin: Cow::Borrowed(origin),
            path: target.to_owned(),
        }),
        Route::Forward => {
            let not_a_proxy_request = || {
                "this is chorus record --forward, an HTTP proxy: set it as the browser's HTTP and HTTPS proxy \
                 instead of opening it as a page (or record with --target URL for reverse mode)"
                    .to_owned()
            };
            let (scheme, rest) = target.split_once("://").ok_or_else(not_a_proxy_request)?;
            let https = match scheme.to_ascii_lowercase().as_str() {
                "http" => false,
                "https" => true,
                _ => return Err(not_a_proxy_request()),
            };
            let end = rest.find(['/', '?']).unwrap_or(rest.len());
            let (authority, path) = rest.split_at(end);
            let origin = Origin::new(https, authority)?;
            let path = match path {
                "" => "/".to_owned(),
                query if query.starts_with('?') => format!("/{query}"),
                path => path.to_owned(),
            };
            Ok(Destination {
                url: format!("{}{path}", origin.url_prefix()),
                origin: Cow::Owned(origin),
                path,
            })
        }
    }
}

/// Why a response head did not come.
#[derive(Debug)]
enum ResponseError {
    /// The connection closed (or was reset) before a byte of the answer.
    Closed,
    Io(std::io::Error),
    /// It closed in the middle of the head.
    Cut,
    Invalid(HeadError),
}

impl std::fmt::Display for ResponseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResponseError::Closed => {
                f.write_str("the application closed the connection without answering")
            }
            ResponseError::Io(err) => write!(f, "reading the answer failed: {err}"),
            ResponseError::Cut => f.write_str(
                "the application closed the connection in the middle of the response head",
            ),
            ResponseError::Invalid(err) => write!(f, "the application sent {err}"),
        }
    }
}

/// Reads the final response head; interim answers (`103 Early Hints`) go on to the browser,
/// `100 Continue` does not (the relay sent its own).
async fn read_response<B: AsyncWrite + Unpin>(
    upstream: &mut Upstream,
    browser: &mut B,
) -> Result<Head, ResponseError> {
    loop {
        let head = loop {
            if let Some(head) =
                wire::parse_response(&mut upstream.buffer).map_err(ResponseError::Invalid)?
            {
                break head;
            }
            upstream.buffer.reserve(READ_SIZE);
            match upstream.stream.read_buf(&mut upstream.buffer).await {
                Ok(0) if upstream.buffer.is_empty() => return Err(ResponseError::Closed),
                Ok(0) => return Err(ResponseError::Cut),
                Ok(_) => {}
                Err(err)
                    if upstream.buffer.is_empty()
                        && err.kind() == std::io::ErrorKind::ConnectionReset =>
                {
                    return Err(ResponseError::Closed);
                }
                Err(err) => return Err(ResponseError::Io(err)),
            }
        };
        if (100..200).contains(&head.status) && head.status != 101 {
            if head.status != 100 {
                let _ = write_flush(browser, &head.bytes).await;
            }
            continue;
        }
        return Ok(head);
    }
}

/// Why a body could not be relayed to its end.
#[derive(Debug)]
enum RelayError {
    /// The sending side closed before the body's end.
    Closed,
    Read(std::io::Error),
    Write(std::io::Error),
    Invalid(HeadError),
}

impl RelayError {
    /// What went wrong on the reading side, `closed` when it just closed.
    fn text(&self, closed: &str) -> String {
        match self {
            RelayError::Closed => closed.to_owned(),
            RelayError::Read(err) | RelayError::Write(err) => err.to_string(),
            RelayError::Invalid(err) => err.to_string(),
        }
    }
}

/// Follows a body's framing, moving the bytes that belong to it from a read buffer to the
/// bytes to write, and keeping a copy (up to the limit) when recording.
struct BodyReader {
    framing: Framing,
    left: u64,
    chunk: Chunk,
    limit: usize,
}

impl BodyReader {
    fn new(framing: Framing, limit: usize) -> BodyReader {
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
    fn take(
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
async fn relay_body<R, W>(
    from: &mut R,
    buffer: &mut BytesMut,
    to: &mut W,
    out: &mut Vec<u8>,
    body: &mut BodyReader,
    mut capture: Option<&mut CapturedBody>,
) -> Result<(), RelayError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    loop {
        let done = body
            .take(buffer, out, capture.as_deref_mut())
            .map_err(RelayError::Invalid)?;
        if !out.is_empty() {
            write_flush(to, out).await.map_err(RelayError::Write)?;
            out.clear();
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

async fn write_flush<W: AsyncWrite + Unpin>(to: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    to.write_all(bytes).await?;
    to.flush().await
}

/// A plain-text answer from the proxy itself.
fn plain(status: u16, reason: &str, text: &str) -> Vec<u8> {
    wire::answer(
        status,
        reason,
        "text/plain; charset=utf-8",
        format!("{text}\n").as_bytes(),
    )
}

/// A WebSocket connection after its `101`: both sides pumped until either ends, the
/// messages recorded with the exchange.
struct Upgrade {
    browser_head: Vec<u8>,
    upstream: Upstream,
    recording: Option<(Recording, Bytes)>,
    head_at: Instant,
    limit: usize,
}

impl Upgrade {
    async fn pump<S>(self, shared: &Shared, mut browser: S, browser_buffer: BytesMut)
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        if write_flush(&mut browser, &self.browser_head).await.is_err() {
            return;
        }
        let Upstream { stream, buffer } = self.upstream;
        let messages = websocket::Messages::default();
        let (browser_read, browser_write) = tokio::io::split(browser);
        let (app_read, app_write) = tokio::io::split(stream);
        // Bytes that came right behind the heads are the first of each direction.
        let browser_read =
            AsyncReadExt::chain(std::io::Cursor::new(browser_buffer.freeze()), browser_read);
        let app_read = AsyncReadExt::chain(std::io::Cursor::new(buffer.freeze()), app_read);
        tokio::join!(
            websocket::pump(
                browser_read,
                app_write,
                FrameParser::new("send", self.limit),
                messages.clone()
            ),
            websocket::pump(
                app_read,
                browser_write,
                FrameParser::new("receive", self.limit),
                messages.clone()
            ),
        );
        if let Some((recording, head)) = self.recording {
            let messages = std::mem::take(&mut *messages.lock().unwrap_or_else(|e| e.into_inner()));
            let timing = timing(
                recording.started,
                recording.start,
                recording.sent,
                self.head_at,
                Instant::now(),
            );
            shared.sink.send(Exchange {
                request: RequestParts {
                    url: recording.url,
                    head: recording.head,
                    body: recording.body,
                },
                response: Some(ResponseParts {
                    head,
                    body: CapturedBody::default(),
                }),
                timing,
                error: None,
                websocket: Some(messages),
            });
        }
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page the browser gets when the application cannot be reached.
pub(crate) fn bad_gateway_page(url: &str, reason: &str) -> String {
    let target = url::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| url.to_owned());
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>502 chorus record: {target} unreachable</title></head>\n\
         <body><h1>502 Bad Gateway</h1>\n<p>chorus record could not reach <b>{target}</b> for <code>{url}</code>:</p>\n\
         <pre>{reason}</pre>\n<p>Is the application running? The exchange is recorded in the capture with this error.</p></body></html>\n",
        target = escape(&target),
        url = escape(url),
        reason = escape(reason),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destination_of(route: &Route, request: &str) -> Result<(String, String, String), String> {
        let head = wire::parse_request(&mut BytesMut::from(request.as_bytes()))
            .unwrap()
            .unwrap();
        destination(route, &head).map(|d| (d.url, d.path, d.origin.authority.clone()))
    }

    #[test]
    fn requests_go_where_the_mode_says() {
        let target = url::Url::parse("http://127.0.0.1:8001/app/").unwrap();
        assert_eq!(
            destination_of(&Route::reverse(&target), "GET /api/x?y=1 HTTP/1.1\r\n\r\n"),
            Ok((
                "http://127.0.0.1:8001/app/api/x?y=1".to_owned(),
                "/app/api/x?y=1".to_owned(),
                "127.0.0.1:8001".to_owned()
            ))
        );
        let target = url::Url::parse("https://example.org").unwrap();
        assert_eq!(
            destination_of(&Route::reverse(&target), "GET / HTTP/1.1\r\n\r\n")
                .unwrap()
                .0,
            "https://example.org/"
        );
        assert_eq!(
            destination_of(
                &Route::Forward,
                "GET http://[::1]:8080?q=1 HTTP/1.1\r\n\r\n"
            ),
            Ok((
                "http://[::1]:8080/?q=1".to_owned(),
                "/?q=1".to_owned(),
                "[::1]:8080".to_owned()
            ))
        );
        assert_eq!(
            destination_of(
                &Route::Forward,
                "GET http://example.org:80/a HTTP/1.1\r\n\r\n"
            )
            .unwrap()
            .0,
            "http://example.org/a"
        );
        let refused = destination_of(&Route::Forward, "GET /a HTTP/1.1\r\n\r\n").unwrap_err();
        assert!(
            refused.contains("set it as the browser's HTTP and HTTPS proxy"),
            "{refused}"
        );
        let origin = Origin::new(true, "example.org:443").unwrap();
        assert_eq!(
            destination_of(&Route::Intercepted { origin }, "GET /p HTTP/1.1\r\n\r\n")
                .unwrap()
                .0,
            "https://example.org/p"
        );
    }
}
