//! The application side of the browser's HTTP/2 streams, through hyper's client connections
//! (their bodies stream both ways): one HTTP/2 connection per origin shared by every stream
//! when the application takes `h2` by ALPN, as the browser's own connection would have been;
//! else HTTP/1.1 connections, one exchange at a time each, idle ones kept for the next.
//! The request body is the browser's stream itself ([`Upload`]), read as the application's
//! connection asks for it, so a browser can run at most its flow-control window ahead.

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming};
use hyper::client::conn::{TrySendError, http1, http2};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio_rustls::TlsConnector;

use crate::record::capture::CapturedBody;
use crate::record::upstream::{Origin, UpstreamError, open, tls_connector};

/// The largest response head taken from an application: as the HTTP/1.1 relay allows.
const MAX_HEADERS: usize = crate::http1::MAX_HEADERS;
const MAX_HEADER_LIST: u32 = 64 * 1024;
/// Idle HTTP/1.1 connections kept per origin.
const MAX_IDLE: usize = 16;

/// Connections to the applications, shared by every browser connection.
pub(crate) struct Applications {
    tls: TlsConnector,
    http2: Mutex<HashMap<Origin, http2::SendRequest<Upload>>>,
    idle: Mutex<HashMap<Origin, Vec<http1::SendRequest<Upload>>>>,
    /// Origins that answered a TLS handshake without `h2`: their connections need not wait
    /// for each other.
    http1_only: Mutex<HashSet<Origin>>,
    /// One connection attempt at a time per origin while it may take HTTP/2, so that a page's
    /// first burst of streams shares one connection instead of opening one each.
    connecting: Mutex<HashMap<Origin, Arc<tokio::sync::Mutex<()>>>>,
}

/// A way to send one request to an application.
pub(crate) enum Sender {
    Http2(http2::SendRequest<Upload>),
    Http1(http1::SendRequest<Upload>),
}

impl Sender {
    pub(crate) fn speaks_http2(&self) -> bool {
        matches!(self, Sender::Http2(_))
    }

    /// Sends `request`; an error that hands the request back means it was not sent.
    pub(crate) async fn send(
        &mut self,
        request: Request<Upload>,
    ) -> Result<Response<Incoming>, TrySendError<Request<Upload>>> {
        match self {
            Sender::Http2(sender) => sender.try_send_request(request).await,
            Sender::Http1(sender) => sender.try_send_request(request).await,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Applications {
    /// `insecure` accepts any certificate. HTTP/2 is offered first by ALPN.
    pub(crate) fn new(insecure: bool) -> Applications {
        Applications {
            tls: tls_connector(insecure, crate::tls::ALPN_HTTP2_OR_1),
            http2: Mutex::default(),
            idle: Mutex::default(),
            http1_only: Mutex::default(),
            connecting: Mutex::default(),
        }
    }

    /// A sender for `origin`: the shared HTTP/2 connection, an idle HTTP/1.1 one, or a new
    /// connection.
    pub(crate) async fn sender(&self, origin: &Origin) -> Result<Sender, UpstreamError> {
        if let Some(sender) = self.kept(origin).await {
            return Ok(sender);
        }
        if lock(&self.http1_only).contains(origin) {
            return self.connect(origin).await;
        }
        let gate = lock(&self.connecting)
            .entry(origin.clone())
            .or_default()
            .clone();
        let _turn = gate.lock().await;
        if let Some(sender) = self.kept_http2(origin) {
            return Ok(sender);
        }
        self.connect(origin).await
    }

    /// A new connection, for a request that found a kept one closed.
    pub(crate) async fn fresh(&self, origin: &Origin) -> Result<Sender, UpstreamError> {
        self.connect(origin).await
    }

    /// Keeps an HTTP/1.1 connection whose answer was read to the end.
    pub(crate) fn checkin(&self, origin: &Origin, sender: Sender) {
        if let Sender::Http1(sender) = sender {
            let mut idle = lock(&self.idle);
            let list = idle.entry(origin.clone()).or_default();
            if list.len() < MAX_IDLE && !sender.is_closed() {
                list.push(sender);
            }
        }
    }

    fn kept_http2(&self, origin: &Origin) -> Option<Sender> {
        let mut http2 = lock(&self.http2);
        match http2.get(origin) {
            Some(sender) if !sender.is_closed() => Some(Sender::Http2(sender.clone())),
            Some(_) => {
                http2.remove(origin);
                None
            }
            None => None,
        }
    }

    async fn kept(&self, origin: &Origin) -> Option<Sender> {
        if let Some(sender) = self.kept_http2(origin) {
            return Some(sender);
        }
        loop {
            let mut sender = lock(&self.idle).get_mut(origin)?.pop()?;
            if sender.ready().await.is_ok() {
                return Some(Sender::Http1(sender));
            }
        }
    }

    async fn connect(&self, origin: &Origin) -> Result<Sender, UpstreamError> {
        let stream = open(origin, &self.tls).await?;
        let failed = |err: hyper::Error| {
            UpstreamError(format!(
                "the connection to {} failed at once: {err}",
                origin.authority()
            ))
        };
        if stream.negotiated_http2() {
            let (sender, connection) = http2::Builder::new(TokioExecutor::new())
                .max_header_list_size(MAX_HEADER_LIST)
                .handshake(TokioIo::new(stream))
                .await
                .map_err(failed)?;
            tokio::spawn(connection);
            lock(&self.http2).insert(origin.clone(), sender.clone());
            return Ok(Sender::Http2(sender));
        }
        lock(&self.http1_only).insert(origin.clone());
        let (sender, connection) = http1::Builder::new()
            .max_headers(MAX_HEADERS)
            .handshake(TokioIo::new(stream))
            .await
            .map_err(failed)?;
        tokio::spawn(connection);
        Ok(Sender::Http1(sender))
    }
}

/// What the capture keeps of a request body on its way, and how it ended.
#[derive(Debug, Default)]
pub(crate) struct Sent {
    pub(crate) body: CapturedBody,
    /// When the last byte went on.
    pub(crate) ended: Option<Instant>,
    /// Why the browser's body ended early (a reset stream, a closed connection).
    pub(crate) broken: Option<String>,
}

/// The browser's request body as the body of the application's request: each piece read
/// gives its flow-control capacity back to the browser, and a bounded copy goes to `sent`.
pub(crate) struct Upload {
    stream: Option<h2::RecvStream>,
    sent: Arc<Mutex<Sent>>,
    limit: usize,
}

impl Upload {
    /// `stream` that has already ended is an empty body; `limit` bounds the copy (0: none).
    pub(crate) fn new(stream: h2::RecvStream, limit: usize) -> (Upload, Arc<Mutex<Sent>>) {
        let sent = Arc::new(Mutex::new(Sent::default()));
        let stream = (!stream.is_end_stream()).then_some(stream);
        if stream.is_none() {
            lock(&sent).ended = Some(Instant::now());
        }
        let upload = Upload {
            stream,
            sent: sent.clone(),
            limit,
        };
        (upload, sent)
    }

    fn broken(&mut self, err: &h2::Error) {
        let reason = match err.reason() {
            Some(reason) if err.is_reset() => format!("the browser reset the stream ({reason})"),
            _ if err.is_io() => "the browser's connection closed".to_owned(),
            _ => err.to_string(),
        };
        lock(&self.sent).broken = Some(reason);
        self.stream = None;
    }
}

impl Body for Upload {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        let this = &mut *self;
        let Some(stream) = this.stream.as_mut() else {
            return Poll::Ready(None);
        };
        match ready!(stream.poll_data(cx)) {
            Some(Ok(data)) => {
                let _ = stream.flow_control().release_capacity(data.len());
                lock(&this.sent).body.push(&data, this.limit);
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            Some(Err(err)) => {
                this.broken(&err);
                return Poll::Ready(Some(Err(err)));
            }
            None => {}
        }
        let trailers = match ready!(stream.poll_trailers(cx)) {
            Ok(trailers) => trailers,
            Err(err) => {
                this.broken(&err);
                return Poll::Ready(Some(Err(err)));
            }
        };
        this.stream = None;
        lock(&this.sent).ended = Some(Instant::now());
        Poll::Ready(trailers.map(|trailers| Ok(Frame::trailers(trailers))))
    }

    fn is_end_stream(&self) -> bool {
        self.stream.is_none()
    }
}
