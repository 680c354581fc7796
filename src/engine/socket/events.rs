//! A user's event stream (`sse:`, the WHATWG server-sent events format): a GET answered
//! `text/event-stream`, then one task that reads the body as it comes and puts each event
//! into the inbox.

use std::rc::Rc;
use std::time::Duration;

use http::HeaderMap;
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, HeaderName};
use tokio::time::Instant;

use super::inbox::{Ended, Inbox};
use super::{Connect, OpenFailure};
use crate::engine::http::{Client, Streaming};
use crate::engine::user::WorkerShared;
use crate::event_stream::EventParser;
use crate::stats::{Failure, FailureKind, RequestSample};

/// The header a reconnect carries the last event's id in.
const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// Subscribes; the latency runs from the connect to the end of the response's head.
pub(super) async fn connect(
    client: &Client,
    connect: &Connect,
) -> Result<(Streaming, HeaderMap, Duration), OpenFailure> {
    let target = &connect.target;
    let began = Instant::now();
    let mut request = http::Request::new(());
    *request.uri_mut() = target.uri.clone();
    let headers = request.headers_mut();
    headers.extend(connect.headers.clone());
    headers
        .entry(ACCEPT)
        .or_insert(http::HeaderValue::from_static("text/event-stream"));
    headers
        .entry(CACHE_CONTROL)
        .or_insert(http::HeaderValue::from_static("no-cache"));
    let (head, body) = client
        .open_stream(&target.origin, request)
        .await
        .map_err(|err| OpenFailure {
            untimed: matches!(
                err.kind,
                FailureKind::ConnectRefused
                    | FailureKind::ConnectTimeout
                    | FailureKind::Connect
                    | FailureKind::Tls
            ),
            kind: err.kind,
            message: err.message,
            latency: err.latency,
        })?;
    let latency = began.elapsed();
    if head.status != 200 {
        return Err(OpenFailure {
            kind: FailureKind::Status(head.status),
            message: format!("HTTP {} instead of an event stream", head.status),
            latency,
            untimed: false,
        });
    }
    let media = head
        .headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if !media.trim_start().starts_with("text/event-stream") {
        return Err(OpenFailure {
            kind: FailureKind::ProtocolError,
            message: format!("answered {media:?}, not text/event-stream"),
            latency,
            untimed: false,
        });
    }
    Ok((body, head.headers, latency))
}

/// The statistics' method for an event stream's reconnect (`RECONNECT ticks`).
pub(super) const RECONNECT_METHOD: &str = "RECONNECT";

/// How long a browser waits before reconnecting when the server did not say (`retry:`):
/// Chromium's and WebKit's 3 s.
const DEFAULT_RETRY: Duration = Duration::from_secs(3);

/// The least wait between reconnects the network refused.
const RETRY_AFTER_FAILURE: Duration = Duration::from_millis(100);

/// What the stream's task needs to reconnect as a browser's `EventSource` does.
pub(super) struct Resubscribe {
    pub(super) client: std::sync::Arc<Client>,
    pub(super) connect: Connect,
    /// The `sse:` step's name: reconnects are counted under it.
    pub(super) name: Rc<str>,
    pub(super) worker: Rc<WorkerShared>,
}

/// The stream's task: events into the inbox; when the stream ends or drops, a reconnect after
/// the server's `retry:` time (else 3 s) with the last event's id as `Last-Event-ID`, each
/// counted as `RECONNECT name`. A reconnect the network refuses is tried again after the same
/// wait; one answered with anything but an event stream (or an event past the size limit)
/// ends the stream, as it fails an `EventSource` for good.
pub(super) fn spawn(
    body: Streaming,
    inbox: Rc<Inbox>,
    max_line: usize,
    again: Resubscribe,
) -> tokio::task::JoinHandle<()> {
    tokio::task::spawn_local(async move {
        let mut parser = EventParser::new(max_line);
        let mut body = body;
        loop {
            let dropped = match read(&mut body, &mut parser, &inbox).await {
                Ok(dropped) => dropped,
                Err(broken) => {
                    inbox.end(Ended::Broken(broken));
                    return;
                }
            };
            drop(body);
            parser.reset_event();
            body = match reconnect(&again, &parser).await {
                Ok(body) => body,
                Err(why) => {
                    inbox.end(Ended::Closed(format!(
                        "{dropped}, and reconnecting failed: {why}"
                    )));
                    return;
                }
            };
        }
    })
}

/// Reads events into the inbox until the stream ends (`Ok`: how) or breaks the format.
async fn read(
    body: &mut Streaming,
    parser: &mut EventParser,
    inbox: &Inbox,
) -> Result<String, String> {
    loop {
        match body.next().await {
            Ok(Some(bytes)) => parser.feed(&bytes, |event, data, _| inbox.push(event, data))?,
            Ok(None) => return Ok("the server ended the event stream".to_owned()),
            Err(why) => return Ok(why),
        }
    }
}

/// Subscribes again after the retry time, as long as the network refuses; `Err` when the
/// server answers with anything but an event stream.
async fn reconnect(again: &Resubscribe, parser: &EventParser) -> Result<Streaming, String> {
    let mut connect = Connect {
        target: super::Target {
            url: again.connect.target.url.clone(),
            origin: again.connect.target.origin.clone(),
            uri: again.connect.target.uri.clone(),
        },
        headers: again.connect.headers.clone(),
    };
    if let Some(id) = parser.last_event_id() {
        if let Ok(value) = http::HeaderValue::from_str(id) {
            connect.headers.insert(LAST_EVENT_ID, value);
        }
    }
    let mut wait = parser.retry().unwrap_or(DEFAULT_RETRY);
    loop {
        tokio::time::sleep(wait).await;
        // Not a tight loop against a refusing port when the server asked for `retry: 0`.
        wait = wait.max(RETRY_AFTER_FAILURE);
        let connected = self::connect(&again.client, &connect).await;
        let mut tally = again.worker.tally.borrow_mut();
        let name = &*again.name;
        match connected {
            Ok((body, _, latency)) => {
                tally.record(&RequestSample {
                    method: RECONNECT_METHOD,
                    name,
                    latency,
                    response_bytes: 0,
                    failure: None,
                });
                return Ok(body);
            }
            Err(failure) => {
                let sample = RequestSample {
                    method: RECONNECT_METHOD,
                    name,
                    latency: failure.latency,
                    response_bytes: 0,
                    failure: Some(Failure {
                        kind: failure.kind,
                        message: &failure.message,
                    }),
                };
                if failure.untimed {
                    tally.record_untimed(&sample);
                } else {
                    tally.record(&sample);
                }
                if refused_for_good(failure.kind) {
                    return Err(failure.message);
                }
            }
        }
    }
}

/// An answer that fails an `EventSource` for good (not a network error: those are retried).
fn refused_for_good(kind: FailureKind) -> bool {
    matches!(
        kind,
        FailureKind::Status(_) | FailureKind::ProtocolError | FailureKind::InvalidResponse
    )
}
