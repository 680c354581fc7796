//! A WebSocket connection after its `101`: bytes pumped both ways until either side ends,
//! the messages recorded with the exchange.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::body::write_flush;
use super::{ProxyState, Recording};
use crate::record::capture::{CapturedBody, ResponseParts};
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
    pub(super) async fn pump<S>(self, shared: &ProxyState, mut browser: S, browser_buffer: BytesMut)
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
            let response = ResponseParts {
                head,
                body: CapturedBody::default(),
            };
            let mut exchange = recording.exchange(Some(response), self.head_at, None);
            exchange.websocket = Some(messages);
            shared.sink.send(exchange);
        }
    }
}
