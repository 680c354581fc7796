//! The server-sent events format (WHATWG HTML, "event stream interpretation"), read as the
//! bytes come: the engine's `sse:` steps and the recorder's `_eventSourceMessages` read event
//! streams through this one parser.

use std::time::Duration;

/// Reads the event-stream format: lines of `field: value`, an event dispatched at each blank
/// line (`data` lines joined with line breaks; `event` names it); `id` and `retry` kept for a
/// reconnect, comments set aside.
pub(crate) struct EventParser {
    line: Vec<u8>,
    event: Option<String>,
    data: String,
    has_data: bool,
    /// The last `id:` read (the spec's last event ID buffer).
    id: String,
    /// The id of the last event dispatched: what a reconnect sends as `Last-Event-ID`.
    last_id: String,
    /// The server's `retry:`, the reconnection time.
    retry: Option<Duration>,
    /// The last byte fed was a `\r`: a `\n` right after it ends nothing more.
    after_cr: bool,
    max_line: usize,
}

impl EventParser {
    pub(crate) fn new(max_line: usize) -> EventParser {
        EventParser {
            line: Vec::new(),
            event: None,
            data: String::new(),
            has_data: false,
            id: String::new(),
            last_id: String::new(),
            retry: None,
            after_cr: false,
            max_line,
        }
    }

    /// The id a reconnect sends as `Last-Event-ID` (none before any event with an id).
    pub(crate) fn last_event_id(&self) -> Option<&str> {
        Some(self.last_id.as_str()).filter(|id| !id.is_empty())
    }

    /// The reconnection time the server set with `retry:`.
    pub(crate) fn retry(&self) -> Option<Duration> {
        self.retry
    }

    /// Forgets an event cut off by the stream's end (a reconnect starts a fresh one).
    pub(crate) fn reset_event(&mut self) {
        self.line.clear();
        self.event = None;
        self.data.clear();
        self.has_data = false;
        self.after_cr = false;
    }

    /// Feeds bytes as they came; `dispatch(event name, data, id)` for each complete event. A line
    /// or event past the limit is an error.
    pub(crate) fn feed(
        &mut self,
        bytes: &[u8],
        mut dispatch: impl FnMut(Option<&str>, &str, &str),
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

    fn end_line(&mut self, dispatch: &mut impl FnMut(Option<&str>, &str, &str)) {
        if self.line.is_empty() {
            self.last_id.clone_from(&self.id);
            if self.has_data {
                if self.data.ends_with('\n') {
                    self.data.pop();
                }
                dispatch(self.event.as_deref(), &self.data, &self.last_id);
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
            "id" if !value.contains('\0') => value.clone_into(&mut self.id),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry = value.parse().ok().map(Duration::from_millis);
            }
            // Comments (an empty field) and unknown fields.
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
                .feed(chunk.as_bytes(), |event, data, _| {
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
    fn ids_and_retry_are_kept_for_a_reconnect() {
        let mut parser = EventParser::new(1 << 20);
        assert_eq!(parser.last_event_id(), None);
        parser
            .feed(
                b"id: 7\ndata: a\n\nretry: 250\nid: 8\ndata: b",
                |_, _, _| {},
            )
            .unwrap();
        // The event with id 8 was not complete: a reconnect asks from 7.
        assert_eq!(parser.last_event_id(), Some("7"));
        assert_eq!(parser.retry(), Some(Duration::from_millis(250)));
        parser
            .feed(b"\n\nretry: soon\nid\n\n", |_, _, _| {})
            .unwrap();
        // An empty `id` clears it; a `retry` that is not a number is ignored.
        assert_eq!(parser.last_event_id(), None);
        assert_eq!(parser.retry(), Some(Duration::from_millis(250)));
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut parser = EventParser::new(8);
        assert!(parser.feed(b"data: 0123456789", |_, _, _| {}).is_err());
    }
}
