//! Bodies that stream through the proxy untouched while keeping a bounded copy for the
//! capture: the request body on its way to the application, the response body on its way to
//! the browser. The response body hands the finished exchange to the sink when hyper drops
//! it, whether it ended, failed, or the browser went away.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http_body_util::BodyExt as _;
use http_body_util::combinators::BoxBody;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use super::capture::{CapturedBody, RequestParts, ResponseParts, Timing};
use super::sink::{Exchange, Sink};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// What the proxy sends either way.
pub(crate) type ProxyBody = BoxBody<Bytes, BoxError>;

pub(crate) fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub(crate) fn empty() -> ProxyBody {
    full(Bytes::new())
}

pub(crate) fn passthrough(body: Incoming) -> ProxyBody {
    body.map_err(BoxError::from).boxed()
}

/// What the request body tee learnt, shared with the response side.
#[derive(Debug, Default)]
pub(crate) struct RequestCapture {
    pub(crate) body: CapturedBody,
    pub(crate) done: Option<Instant>,
    pub(crate) error: Option<String>,
}

pub(crate) type SharedRequestCapture = Arc<Mutex<RequestCapture>>;

pub(crate) fn lock(capture: &SharedRequestCapture) -> std::sync::MutexGuard<'_, RequestCapture> {
    capture.lock().unwrap_or_else(|e| e.into_inner())
}

/// The browser's request body, copied (up to the limit) as it goes to the application.
pub(crate) struct RequestTee {
    inner: Incoming,
    capture: SharedRequestCapture,
    limit: usize,
}

impl RequestTee {
    pub(crate) fn new(inner: Incoming, capture: SharedRequestCapture, limit: usize) -> Self {
        Self {
            inner,
            capture,
            limit,
        }
    }
}

impl Body for RequestTee {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    lock(&this.capture).body.push(data, this.limit);
                }
            }
            Poll::Ready(Some(Err(err))) => {
                let mut capture = lock(&this.capture);
                capture.error = Some(format!("the browser's request body ended early: {err}"));
                capture.done = Some(Instant::now());
            }
            Poll::Ready(None) => lock(&this.capture).done = Some(Instant::now()),
            Poll::Pending => {}
        }
        polled.map(|frame| frame.map(|result| result.map_err(BoxError::from)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Everything needed to write the entry once the response body is over.
pub(crate) struct Pending {
    pub(crate) sink: Sink,
    pub(crate) request: RequestParts,
    pub(crate) request_capture: SharedRequestCapture,
    pub(crate) response: ResponseParts,
    pub(crate) started: SystemTime,
    pub(crate) start: Instant,
    pub(crate) head_at: Instant,
}

impl Pending {
    /// Hands the exchange to the sink; `end` is when the response body ended (or failed).
    pub(crate) fn finish(mut self, end: Instant, error: Option<String>) {
        let (body, done, request_error) = {
            let mut capture = lock(&self.request_capture);
            (
                std::mem::take(&mut capture.body),
                capture.done,
                capture.error.take(),
            )
        };
        self.request.body = body;
        let timing = timing(self.started, self.start, done, self.head_at, end);
        self.sink.send(Exchange {
            request: self.request,
            response: Some(self.response),
            timing,
            error: request_error.or(error),
            websocket: None,
        });
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

/// The application's response body, copied (up to the limit) as it goes to the browser.
pub(crate) struct ResponseTee {
    inner: Incoming,
    limit: usize,
    pending: Option<Pending>,
    ended: bool,
    error: Option<String>,
}

impl ResponseTee {
    pub(crate) fn new(inner: Incoming, limit: usize, pending: Pending) -> Self {
        Self {
            inner,
            limit,
            pending: Some(pending),
            ended: false,
            error: None,
        }
    }
}

impl Body for ResponseTee {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(pending)) = (frame.data_ref(), this.pending.as_mut()) {
                    pending.response.body.push(data, this.limit);
                }
            }
            Poll::Ready(Some(Err(err))) => {
                this.error = Some(format!(
                    "the application closed the connection mid-response: {err}"
                ));
                this.finish();
            }
            Poll::Ready(None) => {
                this.ended = true;
                this.finish();
            }
            Poll::Pending => {}
        }
        polled.map(|frame| frame.map(|result| result.map_err(BoxError::from)))
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl ResponseTee {
    fn finish(&mut self) {
        if let Some(pending) = self.pending.take() {
            let error = match (&self.error, self.ended || self.inner.is_end_stream()) {
                (Some(error), _) => Some(error.clone()),
                (None, true) => None,
                (None, false) => {
                    Some("the browser disconnected before the response ended".to_owned())
                }
            };
            pending.finish(Instant::now(), error);
        }
    }
}

impl Drop for ResponseTee {
    fn drop(&mut self) {
        self.finish();
    }
}
