//! The frames a server sends, taken into the connection's state: DATA against the windows,
//! header blocks (with their CONTINUATIONs) decoded into response heads, resets, SETTINGS,
//! PINGs, GOAWAY and WINDOW_UPDATEs; what breaks the protocol ends the connection with a
//! GOAWAY (or, for one stream, resets it).

use http::{HeaderMap, HeaderName, HeaderValue};

use super::{
    COMPRESSION_ERROR, FLOW_CONTROL_ERROR, Failure, Head, MAX_OUT, MAX_WINDOW, PROTOCOL_ERROR,
    State,
};
use crate::engine::http::http2::frames::{self, Frame};
use crate::engine::http::http2::hpack;

impl State {
    /// Bytes that are no frame a server may send: the connection ends.
    pub(in crate::engine::http::http2) fn receive_broken(&mut self, detail: String) {
        self.broken(PROTOCOL_ERROR, detail);
    }

    /// Takes one frame the server sent.
    pub(in crate::engine::http::http2) fn receive(&mut self, frame: Frame<'_>) {
        if self.ended.is_some() {
            return;
        }
        if self.partial.is_some() && !matches!(frame, Frame::Continuation { .. }) {
            let detail = "another frame inside a header block".to_owned();
            return self.broken(PROTOCOL_ERROR, detail);
        }
        match frame {
            Frame::Data {
                stream,
                data,
                end_stream,
                flow_len,
            } => self.data(stream, data, end_stream, flow_len),
            Frame::Headers {
                stream,
                block,
                end_stream,
                end_headers,
            } => {
                if end_headers {
                    self.headers(stream, block, end_stream);
                } else {
                    self.partial = Some((stream, end_stream, block.to_vec()));
                }
            }
            Frame::Continuation {
                stream,
                block,
                end_headers,
            } => {
                let Some((at, end_stream, mut whole)) = self.partial.take() else {
                    let detail = "a CONTINUATION frame after no HEADERS".to_owned();
                    return self.broken(PROTOCOL_ERROR, detail);
                };
                if at != stream {
                    let detail = format!(
                        "a CONTINUATION frame on stream {stream} inside stream {at}'s header block"
                    );
                    return self.broken(PROTOCOL_ERROR, detail);
                }
                if whole.len() + block.len() > hpack::MAX_HEADER_LIST {
                    let detail = format!(
                        "a header block larger than {} KiB",
                        hpack::MAX_HEADER_LIST / 1024
                    );
                    return self.broken(PROTOCOL_ERROR, detail);
                }
                whole.extend_from_slice(block);
                if end_headers {
                    self.headers(stream, &whole, end_stream);
                } else {
                    self.partial = Some((at, end_stream, whole));
                }
            }
            Frame::Reset { stream, code } => {
                if let Some(stream) = self.stream(stream) {
                    stream.fail(Failure::Reset(code));
                }
            }
            Frame::Settings { ack: true, .. } => {}
            Frame::Settings {
                ack: false,
                parameters,
            } => self.settings(parameters),
            Frame::Ping {
                ack: false,
                payload,
            } => {
                frames::put_ping_ack(&mut self.out, payload);
                self.bound_out();
            }
            Frame::Ping { ack: true, .. } | Frame::Ignored { .. } => {}
            Frame::GoAway { last, code } => {
                self.goaway = Some((last, code));
                for stream in self.streams.iter_mut().filter(|s| s.id > last) {
                    stream.fail(Failure::GoAway(code));
                }
                for waker in self.waiting.drain(..) {
                    waker.wake();
                }
            }
            Frame::WindowUpdate { stream, increment } => self.window_update(stream, increment),
            Frame::PushPromise => {
                let detail = "a PUSH_PROMISE frame, though push was disabled".to_owned();
                self.broken(PROTOCOL_ERROR, detail);
            }
        }
    }

    fn data(&mut self, id: u32, data: &[u8], end_stream: bool, flow_len: u32) {
        self.recv_window -= i64::from(flow_len);
        if self.recv_window < 0 {
            let detail = "more DATA than the connection's flow-control window allowed".to_owned();
            return self.broken(FLOW_CONTROL_ERROR, detail);
        }
        // Padding counts against the window but is never read: released at once.
        let padding = flow_len as usize - data.len();
        let Some(stream) = self.stream(id).filter(|s| !s.ended && s.failed.is_none()) else {
            // A stream closed or reset on this side: only the connection's window counts.
            return self.consumed(None, flow_len as usize);
        };
        stream.recv_window -= i64::from(flow_len);
        if stream.recv_window < 0 {
            let detail = "more DATA than the stream's flow-control window allowed".to_owned();
            return self.stream_error(id, FLOW_CONTROL_ERROR, detail);
        }
        if !stream.head_seen {
            let detail = "DATA before the response's HEADERS".to_owned();
            return self.stream_error(id, PROTOCOL_ERROR, detail);
        }
        stream.data.extend_from_slice(data);
        stream.ended = end_stream;
        stream.wake();
        if padding > 0 {
            self.consumed(None, padding);
        }
    }

    /// A whole header block: decoded whatever its stream (the table must stay in step), and
    /// a response head, 1xx heads skipped, or trailers (read, not kept).
    fn headers(&mut self, id: u32, block: &[u8], end_stream: bool) {
        let mut head = Head {
            status: 0,
            headers: HeaderMap::new(),
        };
        let mut malformed = None;
        let wanted = self
            .streams
            .iter()
            .any(|s| s.id == id && !s.ended && s.failed.is_none());
        let decoded = self.hpack.decode(block, &mut |name, value| {
            if !wanted || malformed.is_some() {
                return;
            }
            malformed = field(&mut head, name, value).err();
        });
        if let Err(err) = decoded {
            let detail = format!("a header block HPACK cannot decode: {}", err.0);
            return self.broken(COMPRESSION_ERROR, detail);
        }
        if !wanted {
            return;
        }
        let Some(stream) = self.stream(id) else {
            return;
        };
        if stream.head_seen {
            // Trailers: the body is complete with them.
            stream.ended |= end_stream;
            stream.wake();
            return;
        }
        if head.status == 0 && malformed.is_none() {
            malformed = Some("a response head without :status".to_owned());
        }
        if let Some(detail) = malformed {
            return self.stream_error(id, PROTOCOL_ERROR, detail);
        }
        if head.status < 200 && !end_stream {
            // 100 Continue, 103 Early Hints: the final head follows.
            return;
        }
        stream.head = Some(head);
        stream.head_seen = true;
        stream.ended = end_stream;
        stream.wake();
    }

    fn settings(&mut self, parameters: &[u8]) {
        for (id, value) in frames::settings(parameters) {
            match id {
                frames::SETTINGS_ENABLE_PUSH if value > 1 => {
                    let detail = format!("SETTINGS_ENABLE_PUSH {value}");
                    return self.broken(PROTOCOL_ERROR, detail);
                }
                frames::SETTINGS_MAX_CONCURRENT_STREAMS => {
                    self.max_streams = usize::try_from(value).unwrap_or(usize::MAX);
                }
                frames::SETTINGS_INITIAL_WINDOW_SIZE => {
                    let value = i64::from(value);
                    if value > MAX_WINDOW {
                        let detail = format!("SETTINGS_INITIAL_WINDOW_SIZE {value}");
                        return self.broken(FLOW_CONTROL_ERROR, detail);
                    }
                    let change = value - self.initial_send_window;
                    self.initial_send_window = value;
                    for stream in &mut self.streams {
                        stream.send_window += change;
                        stream.wake();
                    }
                }
                frames::SETTINGS_MAX_FRAME_SIZE if !(16_384..=16_777_215).contains(&value) => {
                    let detail = format!("SETTINGS_MAX_FRAME_SIZE {value}");
                    return self.broken(PROTOCOL_ERROR, detail);
                }
                // The table size our requests may use (none: they index nothing), the header
                // list size (advisory), and settings this client does not know.
                _ => {}
            }
        }
        frames::put_settings_ack(&mut self.out);
        self.bound_out();
    }

    fn window_update(&mut self, id: u32, increment: u32) {
        let increment = i64::from(increment);
        if id == 0 {
            if increment == 0 || self.send_window + increment > MAX_WINDOW {
                let detail = format!("a connection WINDOW_UPDATE of {increment}");
                return self.broken(FLOW_CONTROL_ERROR, detail);
            }
            self.send_window += increment;
            for stream in &mut self.streams {
                stream.wake();
            }
            return;
        }
        let Some(stream) = self.stream(id) else {
            return;
        };
        if increment == 0 || stream.send_window + increment > MAX_WINDOW {
            let detail = format!("a stream WINDOW_UPDATE of {increment}");
            return self.stream_error(id, FLOW_CONTROL_ERROR, detail);
        }
        stream.send_window += increment;
        stream.wake();
    }

    /// A server that sends PINGs or SETTINGS and never reads the answers is given up on.
    fn bound_out(&mut self) {
        if self.out.len() > MAX_OUT {
            self.end(Failure::Protocol(format!(
                "more than {} KiB of answers to its frames went unread",
                MAX_OUT / 1024
            )));
        }
    }
}

/// One field of a response head: `:status` first, then regular fields (lowercase names and
/// values as HTTP allows).
fn field(head: &mut Head, name: &[u8], value: &[u8]) -> Result<(), String> {
    if name.first() == Some(&b':') {
        if name != b":status" || head.status != 0 || !head.headers.is_empty() {
            return Err(format!(
                "a misplaced pseudo-header {:?}",
                String::from_utf8_lossy(name)
            ));
        }
        head.status = std::str::from_utf8(value)
            .ok()
            .filter(|text| text.len() == 3)
            .and_then(|text| text.parse::<u16>().ok())
            .filter(|status| (100..=999).contains(status))
            .ok_or_else(|| format!(":status {:?}", String::from_utf8_lossy(value)))?;
        return Ok(());
    }
    if name.iter().any(u8::is_ascii_uppercase) {
        return Err(format!(
            "an uppercase header name {:?}",
            String::from_utf8_lossy(name)
        ));
    }
    let name = HeaderName::from_bytes(name)
        .map_err(|_| format!("a header name {:?}", String::from_utf8_lossy(name)))?;
    let value = HeaderValue::from_bytes(value)
        .map_err(|_| format!("header {name}'s value {:?}", String::from_utf8_lossy(value)))?;
    head.headers.append(name, value);
    Ok(())
}
