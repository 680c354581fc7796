//! WebSocket pass-through: bytes go both ways untouched while a frame parser on each side
//! notes the messages in Chromium's `_webSocketMessages` form. The parser is a plain state
//! machine fed with whatever the socket read, unit-tested without sockets.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use base64::Engine as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use crate::har::WebSocketMessage;

/// Reassembles frames (and fragmented messages) from a byte stream of one direction.
#[derive(Debug)]
pub(crate) struct FrameParser {
    kind: &'static str,
    buffer: Vec<u8>,
    /// The opcode and payload of a fragmented message in progress.
    partial: Option<(u8, Vec<u8>)>,
    limit: usize,
}

impl FrameParser {
    /// `kind` is `send` (browser to server) or `receive`; payloads are kept up to `limit`.
    pub(crate) fn new(kind: &'static str, limit: usize) -> Self {
        Self {
            kind,
            buffer: Vec::new(),
            partial: None,
            limit,
        }
    }

    /// Feeds bytes; returns the messages they completed.
    pub(crate) fn feed(&mut self, bytes: &[u8], now: f64) -> Vec<WebSocketMessage> {
        self.buffer.extend_from_slice(bytes);
        let mut messages = Vec::new();
        while let Some((fin, opcode, payload, used)) = parse_frame(&self.buffer) {
            self.buffer.drain(..used);
            match (opcode, self.partial.take()) {
                // A continuation frame adds to the message in progress.
                (0, Some((first, mut data))) => {
                    let room = self.limit.saturating_sub(data.len());
                    data.extend_from_slice(&payload[..payload.len().min(room)]);
                    if fin {
                        messages.push(self.message(first, &data, now));
                    } else {
                        self.partial = Some((first, data));
                    }
                }
                (0, None) => {}
                (opcode, partial) => {
                    // Control frames may come between fragments.
                    if opcode >= 8 {
                        self.partial = partial;
                        messages.push(self.message(opcode, &payload, now));
                    } else if fin {
                        messages.push(self.message(opcode, &payload, now));
                    } else {
                        let kept = payload[..payload.len().min(self.limit)].to_vec();
                        self.partial = Some((opcode, kept));
                    }
                }
            }
        }
        messages
    }

    fn message(&self, opcode: u8, payload: &[u8], now: f64) -> WebSocketMessage {
        let payload = &payload[..payload.len().min(self.limit)];
        let data = match (opcode, std::str::from_utf8(payload)) {
            (1, Ok(text)) => text.to_owned(),
            (1, Err(_)) => String::from_utf8_lossy(payload).into_owned(),
            _ => base64::engine::general_purpose::STANDARD.encode(payload),
        };
        WebSocketMessage {
            kind: self.kind.to_owned(),
            time: now,
            opcode: u16::from(opcode),
            data,
        }
    }
}

/// One complete frame at the start of `bytes`: (fin, opcode, unmasked payload, bytes used).
fn parse_frame(bytes: &[u8]) -> Option<(bool, u8, Vec<u8>, usize)> {
    let [first, second, ..] = *bytes else {
        return None;
    };
    let fin = first & 0x80 != 0;
    let opcode = first & 0x0f;
    let masked = second & 0x80 != 0;
    let (length, mut at) = match second & 0x7f {
        126 => (
            u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?) as u64,
            4,
        ),
        127 => (u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?), 10),
        n => (u64::from(n), 2),
    };
    let mask: Option<[u8; 4]> = if masked {
        let mask = bytes.get(at..at + 4)?.try_into().ok()?;
        at += 4;
        Some(mask)
    } else {
        None
    };
    let end = at.checked_add(usize::try_from(length).ok()?)?;
    let mut payload = bytes.get(at..end)?.to_vec();
    if let Some(mask) = mask {
        for (i, byte) in payload.iter_mut().enumerate() {
            *byte ^= mask[i % 4];
        }
    }
    Some((fin, opcode, payload, end))
}

pub(crate) fn unix_seconds() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

pub(crate) type Messages = Arc<Mutex<Vec<WebSocketMessage>>>;

/// Copies `from` to `to` until either side ends, noting the messages that pass.
pub(crate) async fn pump<R, W>(mut from: R, mut to: W, mut parser: FrameParser, messages: Messages)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buffer[..n]).await.is_err() {
            break;
        }
        let _ = to.flush().await;
        let found = parser.feed(&buffer[..n], unix_seconds());
        if !found.is_empty() {
            messages
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(found);
        }
    }
    let _ = to.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
        let mut out = vec![(u8::from(fin) << 7) | opcode];
        let mask_bit = if mask.is_some() { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => out.push(mask_bit | n as u8),
            n if n <= 0xffff => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        match mask {
            Some(mask) => {
                out.extend_from_slice(&mask);
                out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
            }
            None => out.extend_from_slice(payload),
        }
        out
    }

    #[test]
    fn masked_split_and_fragmented_frames_become_messages() {
        let mut parser = FrameParser::new("send", 1 << 20);
        let mut bytes = frame(true, 1, b"hello", Some([1, 2, 3, 4]));
        bytes.extend(frame(false, 1, b"frag", Some([9, 9, 9, 9])));
        bytes.extend(frame(true, 9, b"", Some([0, 0, 0, 0])));
        bytes.extend(frame(true, 0, b"mented", Some([7, 7, 7, 7])));
        let long = vec![0xAB; 300];
        bytes.extend(frame(true, 2, &long, None));
        // Fed a byte at a time, as a slow socket would.
        let mut messages = Vec::new();
        for byte in &bytes {
            messages.extend(parser.feed(std::slice::from_ref(byte), 1.5));
        }
        let summary: Vec<(u16, String)> = messages
            .iter()
            .map(|m| (m.opcode, m.data.chars().take(12).collect()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (1, "hello".to_owned()),
                (9, String::new()),
                (1, "fragmented".to_owned()),
                (2, "q6urq6urq6ur".to_owned()),
            ]
        );
        assert_eq!(messages[0].kind, "send");
        assert_eq!(messages[0].time, 1.5);
    }
}
