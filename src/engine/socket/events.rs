//! A user's event stream (`sse:`, the WHATWG server-sent events format): a GET answered
//! `text/event-stream`, then one task that reads the body as it comes and puts each event
//! into the inbox.

use std::rc::Rc;
use std::time::Duration;

use http::HeaderMap;
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use tokio::time::Instant;

use super::inbox::{Ended, Inbox};
use super::{Connect, OpenFailure};
use crate::engine::http::{Client, Streaming};
use crate::stats::FailureKind;

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

/// The stream's task: events into the inbox until the stream ends (or the user lets go).
pub(super) fn spawn(
    mut body: Streaming,
    inbox: Rc<Inbox>,
    max_line: usize,
) -> tokio::task::JoinHandle<()> {
    tokio::task::spawn_local(async move {
        let mut parser = EventParser::new(max_line);
        loop {
            match body.next().await {
                Ok(Some(bytes)) => {
                    let fed = parser.feed(&bytes, |event, data| inbox.push(event, data));
                    if let Err(why) = fed {
                        inbox.end(Ended::Broken(why));
                        return;
                    }
                }
                Ok(None) => {
                    inbox.end(Ended::Closed(
                        "the server ended the event stream".to_owned(),
                    ));
                    return;
                }
                Err(why) => {
                    inbox.end(Ended::Broken(why));
                    return;
                }
            }
        }
    })
}

/// Reads the event-stream format: lines of `field: value`, an event dispatched at each blank
/// line (`data` lines joined with line breaks; `event` names it; `id`, `retry` and comments
/// read and set aside).
pub(super) struct EventParser {
    line: Vec<u8>,
    event: Option<String>,
    data: String,
    has_data: bool,
    /// The last byte fed was a `\r`: a `\n` right after it ends nothing more.
    after_cr: bool,
    max_line: usize,
}

impl EventParser {
    pub(super) fn new(max_line: usize) -> EventParser {
        EventParser {
            line: Vec::new(),
            event: None,
            data: String::new(),
            has_data: false,
            after_cr: false,
            max_line,
        }
    }

    /// Feeds bytes as they came; `dispatch(event name, data)` for each complete event. A line
    /// or event past the limit is an error.
    pub(super) fn feed(
        &mut self,
        bytes: &[u8],
        mut dispatch: impl FnMut(Option<&str>, &str),
    ) -> Result<(), String> {
        for &byte in bytes {
            let after_cr = std::mem::replace(&mut self.after_cr, byte == b'\r');
            match byte {
                b'\n' if after_cr => {}
                b'\r' | b'\n' => self.end_line(&mut dispatch),
                _ => {
                    self.line.push(byte);
                    if self.line.len() + self.data.len() > self.max_line {
                        return Err(format!("an event longer than {} bytes", self.max_line));
                    }
                }
            }
        }
        Ok(())
    }

    fn end_line(&mut self, dispatch: &mut impl FnMut(Option<&str>, &str)) {
        if self.line.is_empty() {
            if self.has_data {
                if self.data.ends_with('\n') {
                    self.data.pop();
                }
                dispatch(self.event.as_deref(), &self.data);
            }
            self.data.clear();
            self.event = None;
            self.has_data = false;
            return;
        }
        let line = String::from_utf8_lossy(&self.line);
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_owned()).filter(|name| !name.is_empty()),
            // Comments (an empty field), `id`, `retry` and unknown fields.
            _ => {}
        }
        self.line.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(chunks: &[&str]) -> Vec<(Option<String>, String)> {
        let mut parser = EventParser::new(1 << 20);
        let mut out = Vec::new();
        for chunk in chunks {
            parser
                .feed(chunk.as_bytes(), |event, data| {
                    out.push((event.map(str::to_owned), data.to_owned()))
                })
                .unwrap();
        }
        out
    }

    #[test]
    fn events_are_read_across_chunks_and_line_ends() {
        let got = events(&[
            ": a comment\n\nevent: tick\nda",
            "ta: {\"n\":1}\r",
            "\n\r\ndata: a\ndata:b\nid: 7\n\n",
            "retry: 10\n\ndata: last\r\r",
        ]);
        assert_eq!(
            got,
            [
                (Some("tick".to_owned()), "{\"n\":1}".to_owned()),
                (None, "a\nb".to_owned()),
                (None, "last".to_owned()),
            ]
        );
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut parser = EventParser::new(8);
        assert!(parser.feed(b"data: 0123456789", |_, _| {}).is_err());
    }
}
