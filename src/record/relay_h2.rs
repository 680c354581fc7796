//! HTTP/2 from the browser, inside an intercepted tunnel whose TLS handshake settled on `h2`:
//! the `h2` crate's server reads the browser's streams, and each stream is a task that sends
//! its request to the application ([`super::applications`]: HTTP/2 when the application takes it by
//! ALPN, else HTTP/1.1), streams the answer back piece by piece as it comes (event streams
//! and downloads flow; nothing is held but what the flow-control windows allow), and hands
//! the exchange to the sink with heads the capture reads as HTTP/2 ones ([`head`]).
//!
//! Bounded: at most [`MAX_STREAMS`] streams at once (SETTINGS_MAX_CONCURRENT_STREAMS; the
//! `h2` crate refuses streams past it), header lists of at most 64 KiB and
//! [`crate::http1::MAX_HEADERS`] fields, flow-control windows that let a browser's uploads
//! run at most [`CONNECTION_WINDOW`] ahead of the application. Extended CONNECT (RFC 8441)
//! is not offered, so browsers open their WebSockets on an HTTP/1.1 connection, which
//! [`super::relay`] serves.

mod head;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{Reason, RecvStream, SendStream};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::{Body as _, Incoming};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::applications::{Applications, Sender, Sent, Upload};
use super::capture::{CapturedBody, RequestParts, ResponseParts};
use super::events::{EventCapture, is_event_stream};
use super::relay::{ProxyState, bad_gateway_page, timing};
use super::sink::Exchange;
use super::upstream::Origin;

/// Streams a browser may have open at once on one connection.
pub(crate) const MAX_STREAMS: u32 = 100;
/// The header list a browser may send (names, values and 32 bytes per field, as RFC 9113
/// counts them).
const MAX_HEADER_LIST: u32 = 64 * 1024;
/// How far one stream's upload may run ahead of the application.
const STREAM_WINDOW: u32 = 256 * 1024;
/// How far all of a connection's uploads together may run ahead.
const CONNECTION_WINDOW: u32 = 1024 * 1024;

/// Serves the browser's HTTP/2 connection `browser` to the HTTPS `origin` its CONNECT named,
/// until it closes or `stop` is cancelled (then a GOAWAY, and the streams in flight finish).
pub(crate) async fn serve<S>(
    shared: Arc<ProxyState>,
    browser: S,
    origin: Origin,
    stop: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let handshake = h2::server::Builder::new()
        .max_concurrent_streams(MAX_STREAMS)
        .max_header_list_size(MAX_HEADER_LIST)
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .handshake::<_, Bytes>(browser)
        .await;
    let Ok(mut connection) = handshake else {
        return;
    };
    let origin = Arc::new(origin);
    let mut streams = JoinSet::new();
    let mut stopping = false;
    loop {
        let accepted = tokio::select! {
            accepted = connection.accept() => accepted,
            () = stop.cancelled(), if !stopping => {
                stopping = true;
                connection.graceful_shutdown();
                continue;
            }
            Some(_) = streams.join_next(), if !streams.is_empty() => continue,
        };
        match accepted {
            Some(Ok((request, respond))) => {
                streams.spawn(exchange(shared.clone(), origin.clone(), request, respond));
            }
            // The connection ended (closed, or broken by a protocol error): the streams in
            // flight see it as a reset and record what came.
            Some(Err(_)) | None => break,
        }
    }
    let drive = std::future::poll_fn(|cx| connection.poll_closed(cx));
    let finish = async { while streams.join_next().await.is_some() {} };
    let _ = tokio::join!(drive, finish);
}

/// One stream: its request to the application, the answer back, the exchange recorded.
async fn exchange(
    shared: Arc<ProxyState>,
    origin: Arc<Origin>,
    request: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
) {
    let started = SystemTime::now();
    let start = Instant::now();
    shared.forwarded.fetch_add(1, Ordering::Relaxed);
    let (mut parts, body) = request.into_parts();
    // The recorder's own credentials are neither recorded nor passed on.
    parts.headers.remove(http::header::PROXY_AUTHORIZATION);
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let url = format!("{}{path}", origin.url_prefix());
    if let Some((status, text)) = refusal(&parts) {
        let _ = answer(
            &mut respond,
            status,
            "text/plain; charset=utf-8",
            text.as_bytes(),
        );
        return;
    }
    let recorded = shared.filter.records(&url);
    let limit = if recorded { shared.max_body } else { 0 };
    let (upload, sent) = Upload::new(body, limit);
    let mut recording = recorded.then(|| Recording {
        url: url.clone(),
        head: head::recorded_request(
            &parts.method,
            &parts.uri,
            origin.authority(),
            &parts.headers,
        ),
        started,
        start,
        sent: sent.clone(),
    });
    let request = Outgoing {
        parts: &parts,
        path: &path,
        origin: &origin,
    };
    let sending = send(&shared.applications, request, upload);
    tokio::pin!(sending);
    let outcome = tokio::select! {
        outcome = &mut sending => outcome,
        reset = std::future::poll_fn(|cx| respond.poll_reset(cx)) => {
            let what = match reset {
                Ok(reason) => format!("the browser reset the stream ({reason})"),
                Err(_) => "the browser's connection closed".to_owned(),
            };
            let uploaded = sent.lock().unwrap_or_else(|e| e.into_inner()).ended.is_some();
            let error = if uploaded {
                format!("{what} before the answer came")
            } else {
                format!("the browser's request body ended early: {what}")
            };
            if let Some(recording) = recording.take() {
                recording.send(&shared, None, Instant::now(), Some(error), None);
            }
            return;
        }
    };
    let (sender, response) = match outcome {
        Ok(sent) => sent,
        Err(reason) => {
            let broken = sent.lock().unwrap_or_else(|e| e.into_inner()).broken.take();
            match broken {
                Some(broken) => {
                    if let Some(recording) = recording {
                        let error = format!("the browser's request body ended early: {broken}");
                        recording.send(&shared, None, Instant::now(), Some(error), None);
                    }
                }
                None => bad_gateway(&shared, &mut respond, recording, &url, &reason).await,
            }
            return;
        }
    };
    let head_at = Instant::now();
    let relayed = respond_with(&shared, &mut respond, response, recording.is_some()).await;
    if relayed.error.is_none() {
        shared.applications.checkin(&origin, sender);
    }
    if let Some(recording) = recording {
        let response = ResponseParts {
            head: Bytes::from(relayed.head),
            body: relayed.body,
        };
        recording.send(
            &shared,
            Some(response),
            head_at,
            relayed.error,
            relayed.events,
        );
    }
}

/// The proxy's own answer to a request it does not pass on: CONNECT (extended CONNECT is not
/// offered, so this is no WebSocket), or more header fields than the HTTP/1.1 relay takes.
fn refusal(parts: &http::request::Parts) -> Option<(StatusCode, String)> {
    if parts.method == http::Method::CONNECT {
        let text = "chorus record: CONNECT inside an intercepted tunnel is not served (WebSockets go over HTTP/1.1)";
        return Some((StatusCode::METHOD_NOT_ALLOWED, text.to_owned()));
    }
    let most = crate::http1::MAX_HEADERS;
    (parts.headers.len() > most).then(|| {
        let text = format!("chorus record: the browser sent more than {most} header fields");
        (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, text)
    })
}

/// What the record needs of an exchange in progress.
struct Recording {
    url: String,
    head: Vec<u8>,
    started: SystemTime,
    start: Instant,
    sent: Arc<Mutex<Sent>>,
}

impl Recording {
    fn send(
        self,
        shared: &ProxyState,
        response: Option<ResponseParts>,
        head_at: Instant,
        error: Option<String>,
        events: Option<Vec<crate::har::EventSourceMessage>>,
    ) {
        let sent = std::mem::take(&mut *self.sent.lock().unwrap_or_else(|e| e.into_inner()));
        shared.sink.send(Exchange {
            request: RequestParts {
                url: self.url,
                head: Bytes::from(self.head),
                body: sent.body,
            },
            response,
            timing: timing(
                self.started,
                self.start,
                sent.ended,
                head_at,
                Instant::now(),
            ),
            error,
            websocket: None,
            events,
        });
    }
}

/// The browser's request, as the application is to get it.
struct Outgoing<'a> {
    parts: &'a http::request::Parts,
    path: &'a str,
    origin: &'a Origin,
}

impl Outgoing<'_> {
    fn build(&self, http2: bool, body: Upload) -> Result<Request<Upload>, String> {
        let Outgoing {
            parts,
            path,
            origin,
        } = self;
        head::for_application(&parts.method, path, &parts.headers, origin, http2, body)
    }
}

/// Sends the request and waits for the answer's head; a request that found a kept
/// connection closed before it went out is sent once more on a new one.
async fn send(
    applications: &Applications,
    request: Outgoing<'_>,
    upload: Upload,
) -> Result<(Sender, Response<Incoming>), String> {
    let mut sender = applications
        .sender(request.origin)
        .await
        .map_err(|err| err.to_string())?;
    let mut message = request.build(sender.speaks_http2(), upload)?;
    let mut retried = false;
    loop {
        match sender.send(message).await {
            Ok(response) => return Ok((sender, response)),
            Err(mut err) => match err.take_message() {
                Some(back) if !retried => {
                    retried = true;
                    sender = applications
                        .fresh(request.origin)
                        .await
                        .map_err(|err| err.to_string())?;
                    message = request.build(sender.speaks_http2(), back.into_body())?;
                }
                _ => return Err(failure_text(&err.into_error())),
            },
        }
    }
}

fn failure_text(err: &hyper::Error) -> String {
    use std::error::Error as _;
    let mut text = format!("the application did not answer: {err}");
    if let Some(source) = err.source() {
        text.push_str(&format!(" ({source})"));
    }
    text
}

/// How relaying an answer went.
struct Relayed {
    head: Vec<u8>,
    body: CapturedBody,
    events: Option<Vec<crate::har::EventSourceMessage>>,
    error: Option<String>,
}

/// Sends the answer's head and streams its body to the browser as it comes; notices a
/// browser that resets the stream meanwhile.
async fn respond_with(
    shared: &ProxyState,
    respond: &mut SendResponse<Bytes>,
    response: Response<Incoming>,
    recorded: bool,
) -> Relayed {
    let (mut parts, mut body) = response.into_parts();
    head::strip_connection_fields(&mut parts.headers, false);
    let mut relayed = Relayed {
        head: if recorded {
            head::recorded_response(parts.status.as_u16(), &parts.headers)
        } else {
            Vec::new()
        },
        body: CapturedBody::default(),
        events: None,
        error: None,
    };
    let limit = if recorded { shared.max_body } else { 0 };
    let mut events = (recorded
        && parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|value| is_event_stream(value.as_bytes())))
    .then(|| EventCapture::new(shared.max_body));
    let empty = body.is_end_stream();
    let mut stream = match respond.send_response(Response::from_parts(parts, ()), empty) {
        Ok(stream) => stream,
        Err(_) => {
            relayed.error =
                Some("the browser reset the stream before the answer's head went".to_owned());
            return relayed;
        }
    };
    if empty {
        relayed.events = events.map(EventCapture::finish);
        return relayed;
    }
    relayed.error = loop {
        let frame = tokio::select! {
            frame = body.frame() => frame,
            reset = std::future::poll_fn(|cx| stream.poll_reset(cx)) => break Some(browser_gone(reset)),
        };
        match frame {
            None => {
                break stream
                    .send_data(Bytes::new(), true)
                    .err()
                    .map(|_| "the browser reset the stream as the response ended".to_owned());
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    relayed.body.push(&data, limit);
                    if let Err(reason) = send_data(&mut stream, data.clone()).await {
                        break Some(reason);
                    }
                    if let Some(events) = events.as_mut() {
                        events.feed(&data, SystemTime::now());
                    }
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        break stream.send_trailers(trailers).err().map(|_| {
                            "the browser reset the stream as the response ended".to_owned()
                        });
                    }
                }
            },
            Some(Err(err)) => {
                stream.send_reset(Reason::INTERNAL_ERROR);
                break Some(format!("the application's response broke off: {err}"));
            }
        }
    };
    relayed.events = events.map(EventCapture::finish);
    relayed
}

fn browser_gone(reset: Result<Reason, h2::Error>) -> String {
    match reset {
        Ok(reason) => format!("the browser reset the stream ({reason}) before the response ended"),
        Err(_) => "the browser's connection closed before the response ended".to_owned(),
    }
}

/// Sends `data` as the browser's flow-control window allows.
async fn send_data(stream: &mut SendStream<Bytes>, mut data: Bytes) -> Result<(), String> {
    while !data.is_empty() {
        stream.reserve_capacity(data.len());
        let room = std::future::poll_fn(|cx| {
            if let std::task::Poll::Ready(reset) = stream.poll_reset(cx) {
                return std::task::Poll::Ready(Err(browser_gone(reset)));
            }
            stream.poll_capacity(cx).map(|room| match room {
                Some(Ok(room)) => Ok(room),
                Some(Err(err)) => Err(browser_gone(Err(err))),
                None => Err(browser_gone(Err(h2::Error::from(Reason::CANCEL)))),
            })
        })
        .await?;
        if room == 0 {
            continue;
        }
        let piece = data.split_to(room.min(data.len()));
        stream
            .send_data(piece, false)
            .map_err(|err| browser_gone(Err(err)))?;
    }
    Ok(())
}

/// A whole answer from the proxy itself; `false` when the browser had gone.
fn answer(
    respond: &mut SendResponse<Bytes>,
    status: StatusCode,
    content_type: &'static str,
    body: &[u8],
) -> bool {
    let mut response = Response::new(());
    *response.status_mut() = status;
    let headers: &mut HeaderMap = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    match respond.send_response(response, body.is_empty()) {
        Ok(mut stream) if !body.is_empty() => {
            stream.send_data(Bytes::copy_from_slice(body), true).is_ok()
        }
        Ok(_) => true,
        Err(_) => false,
    }
}

/// Answers a 502 page naming the application and the error, and records it.
async fn bad_gateway(
    shared: &ProxyState,
    respond: &mut SendResponse<Bytes>,
    recording: Option<Recording>,
    url: &str,
    reason: &str,
) {
    let page = bad_gateway_page(url, reason);
    let content_type = "text/html; charset=utf-8";
    answer(
        respond,
        StatusCode::BAD_GATEWAY,
        content_type,
        page.as_bytes(),
    );
    if let Some(recording) = recording {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(content_type),
        );
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(page.len()));
        let mut body = CapturedBody::default();
        body.push(page.as_bytes(), shared.max_body);
        let response = ResponseParts {
            head: Bytes::from(head::recorded_response(502, &headers)),
            body,
        };
        let error = format!("chorus record could not get a response from {url}: {reason}");
        recording.send(shared, Some(response), Instant::now(), Some(error), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_and_too_many_fields_are_refused() {
        let parts = |method: &str, fields: usize| {
            let mut request = http::Request::builder().method(method).uri("https://a/x");
            for n in 0..fields {
                request = request.header(format!("x-{n}"), "1");
            }
            request.body(()).unwrap().into_parts().0
        };
        assert_eq!(refusal(&parts("GET", 128)), None);
        assert_eq!(
            refusal(&parts("GET", 129)).map(|(status, _)| status),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
        assert_eq!(
            refusal(&parts("CONNECT", 0)).map(|(status, _)| status),
            Some(StatusCode::METHOD_NOT_ALLOWED)
        );
    }
}
