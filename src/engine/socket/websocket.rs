//! A user's WebSocket (RFC 6455, through tokio-tungstenite on the engine's own TCP/TLS
//! connection): the handshake, then one task that reads messages into the inbox and writes
//! what the user's steps hand it (once, or every period), counting each message sent.
//! Buffers are kept small: memory per user matters more than a socket's throughput.

use std::rc::Rc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use http::HeaderMap;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};

use super::inbox::{Ended, Inbox};
use super::{Connect, OpenFailure};
use crate::engine::http::Client;
use crate::engine::user::WorkerShared;
use crate::scenario::SEND_METHOD;
use crate::stats::{Failure, FailureKind, RequestSample};
use crate::tls::ClientStream;

/// How long a closing socket waits for the server's close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// The read buffer (tungstenite's default is 128 KiB, allocated at once: too much per user).
const READ_BUFFER: usize = 4 * 1024;
/// The largest message accepted.
const MAX_MESSAGE: usize = 16 << 20;

/// What the user's steps hand the socket's task.
pub(super) enum Outgoing {
    /// Send this text once, counted under `name`.
    Text { text: String, name: Rc<str> },
    /// Send this text every `period` (the first after one period) until the socket closes.
    Every {
        period: Duration,
        text: String,
        name: Rc<str>,
    },
}

type Socket = WebSocketStream<ClientStream>;

/// Connects and shakes hands; the latency runs from the connect to the end of the `101`.
pub(super) async fn connect(
    client: &Client,
    connect: &Connect,
    subprotocols: &[String],
) -> Result<(Socket, HeaderMap, Duration), OpenFailure> {
    let target = &connect.target;
    let began = Instant::now();
    let stream = client
        .connect(&target.origin, began)
        .await
        .map_err(|err| OpenFailure {
            kind: err.kind,
            message: err.message,
            latency: err.latency,
            untimed: true,
        })?;
    let mut url = target.url.clone();
    let scheme = if target.origin.https { "wss" } else { "ws" };
    let _ = url.set_scheme(scheme);
    url.set_fragment(None);
    let protocol_error = |message: String| OpenFailure {
        kind: FailureKind::ProtocolError,
        message,
        latency: began.elapsed(),
        untimed: false,
    };
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|err| protocol_error(format!("{url} cannot be a WebSocket request: {err}")))?;
    for (name, value) in &connect.headers {
        request.headers_mut().insert(name.clone(), value.clone());
    }
    if !subprotocols.is_empty() {
        let offered = subprotocols.join(", ");
        if let Ok(value) = http::HeaderValue::from_str(&offered) {
            request
                .headers_mut()
                .insert(http::header::SEC_WEBSOCKET_PROTOCOL, value);
        }
    }
    if !request.headers().contains_key(http::header::ORIGIN) {
        // A browser's page names its origin; servers that check it (Socket.IO, Jupyter)
        // expect one.
        let origin = target.url.origin().ascii_serialization();
        if let Ok(value) = http::HeaderValue::from_str(&origin) {
            request.headers_mut().insert(http::header::ORIGIN, value);
        }
    }
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let timeout = client.timeout();
    let handshake = tokio_tungstenite::client_async_with_config(request, stream, Some(config));
    match tokio::time::timeout(timeout, handshake).await {
        Ok(Ok((socket, response))) => {
            let (parts, _) = response.into_parts();
            Ok((socket, parts.headers, began.elapsed()))
        }
        Ok(Err(tungstenite::Error::Http(response))) => {
            let status = response.status().as_u16();
            let body = response
                .body()
                .as_deref()
                .map(|body| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned())
                .unwrap_or_default();
            Err(OpenFailure {
                kind: FailureKind::Status(status),
                message: format!("HTTP {status} instead of 101 Switching Protocols: {body}"),
                latency: began.elapsed(),
                untimed: false,
            })
        }
        Ok(Err(err)) => Err(protocol_error(format!(
            "the WebSocket handshake with {} failed: {err}",
            target.origin.authority()
        ))),
        Err(_) => Err(OpenFailure {
            kind: FailureKind::Timeout,
            message: format!(
                "no WebSocket handshake within the timeout of {}",
                humantime::format_duration(timeout)
            ),
            latency: began.elapsed(),
            untimed: false,
        }),
    }
}

/// The socket's task: reads into `inbox`, writes what `outgoing` brings, and closes when the
/// user lets go of its sender (a `close` step, the user's end) or the server closes.
pub(super) fn spawn(
    socket: Socket,
    inbox: Rc<Inbox>,
    outgoing: mpsc::UnboundedReceiver<Outgoing>,
    worker: Rc<WorkerShared>,
) -> tokio::task::JoinHandle<()> {
    tokio::task::spawn_local(serve(socket, inbox, outgoing, worker))
}

/// A periodic send.
struct Every {
    period: Duration,
    next: Instant,
    text: String,
    name: Rc<str>,
}

async fn serve(
    mut socket: Socket,
    inbox: Rc<Inbox>,
    mut outgoing: mpsc::UnboundedReceiver<Outgoing>,
    worker: Rc<WorkerShared>,
) {
    let mut every: Option<Every> = None;
    let far = || Instant::now() + Duration::from_secs(86_400 * 365);
    loop {
        let tick = every.as_ref().map_or_else(far, |every| every.next);
        tokio::select! {
            read = socket.next() => match read {
                Some(Ok(Message::Text(text))) => inbox.push(None, text.as_str()),
                Some(Ok(Message::Binary(bytes))) => inbox.push(None, &String::from_utf8_lossy(&bytes)),
                Some(Ok(Message::Close(frame))) => {
                    let why = match frame {
                        Some(frame) => format!("the server closed the WebSocket ({} {})", u16::from(frame.code), frame.reason),
                        None => "the server closed the WebSocket".to_owned(),
                    };
                    inbox.end(Ended::Closed(why));
                    // tungstenite answers the close; reading on sends the answer.
                    let _ = tokio::time::timeout(CLOSE_WAIT, socket.next()).await;
                    return;
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => {
                    inbox.end(ended_by(&err));
                    return;
                }
                None => {
                    inbox.end(Ended::Closed("the connection ended without a close frame".to_owned()));
                    return;
                }
            },
            handed = outgoing.recv() => match handed {
                Some(Outgoing::Text { text, name }) => {
                    if !write(&mut socket, text, &name, &worker, &inbox).await {
                        return;
                    }
                }
                Some(Outgoing::Every { period, text, name }) => {
                    every = Some(Every { period, next: Instant::now() + period, text, name });
                }
                None => {
                    // The user closed it, or is gone: say goodbye, briefly.
                    let goodbye = async {
                        let _ = socket.close(None).await;
                        while let Some(Ok(_)) = socket.next().await {}
                    };
                    let _ = tokio::time::timeout(CLOSE_WAIT, goodbye).await;
                    return;
                }
            },
            _ = tokio::time::sleep_until(tick), if every.is_some() => {
                if let Some(periodic) = every.as_mut() {
                    periodic.next += periodic.period;
                    let (text, name) = (periodic.text.clone(), periodic.name.clone());
                    if !write(&mut socket, text, &name, &worker, &inbox).await {
                        return;
                    }
                }
            }
        }
    }
}

/// Writes one message and counts it (the latency: the write); `false` when the socket broke.
async fn write(
    socket: &mut Socket,
    text: String,
    name: &str,
    worker: &WorkerShared,
    inbox: &Inbox,
) -> bool {
    let began = Instant::now();
    let result = socket.send(Message::text(text)).await;
    let latency = began.elapsed();
    let mut tally = worker.tally.borrow_mut();
    match result {
        Ok(()) => {
            tally.record(&RequestSample {
                method: SEND_METHOD,
                name,
                latency,
                response_bytes: 0,
                failure: None,
            });
            true
        }
        Err(err) => {
            let ended = ended_by(&err);
            let message = match &ended {
                Ended::Closed(why) | Ended::Broken(why) => format!("not sent: {why}"),
            };
            tally.record_untimed(&RequestSample {
                method: SEND_METHOD,
                name,
                latency: Duration::ZERO,
                response_bytes: 0,
                failure: Some(Failure {
                    kind: FailureKind::SocketClosed,
                    message: &message,
                }),
            });
            drop(tally);
            inbox.end(ended);
            false
        }
    }
}

fn ended_by(err: &tungstenite::Error) -> Ended {
    match err {
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            Ended::Closed("the WebSocket was closed".to_owned())
        }
        tungstenite::Error::Io(io) => Ended::Closed(format!("the connection broke: {io}")),
        tungstenite::Error::Protocol(
            tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
        ) => Ended::Closed("the server dropped the connection without a close frame".to_owned()),
        other => Ended::Broken(format!("the server broke the WebSocket protocol: {other}")),
    }
}
