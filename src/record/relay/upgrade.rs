//! A WebSocket connection after its `101`: bytes pumped both ways until either side ends,
//! the messages recorded with the exchange.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::body::write_flush;
use super::{Recording, Shared, timing};
use crate::record::capture::{CapturedBody, RequestParts, ResponseParts};
use crate::record::sink::Exchange;
use crate::record::upstream::Upstream;
use crate::record::websocket::{self, FrameParser};

/// A WebSocket connection after its `101`: both sides pumped until either ends, the
/// messages recorded with the exchange.
pub(super) struct Upgrade {
    pub(super) browser_head: Vec<u8>,
    pub(super) upstream: Upstream,
    pub(super) recording: Option<(Recording, Bytes)>,
    pub(super) head_at: std::time::Instant,
    pub(super) limit: usize,
}

impl Upgrade {
    pub(super) async fn pump<S>(self, shared: &Shared, mut browser: S, browser_buffer: BytesMut)
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
                std::time::Instant::now(),
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
