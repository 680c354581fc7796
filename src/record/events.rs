//! An event stream's events as the recorder passes the response on, for the entry's
//! `_eventSourceMessages` (Chromium's HAR form): each event with the time its last byte went
//! through to the browser. Pure: the relay feeds it the body's bytes and the time.

use std::time::SystemTime;

use crate::event_stream::EventParser;
use crate::har::EventSourceMessage;

/// The events read so far from one response.
pub(crate) struct EventCapture {
    parser: EventParser,
    messages: Vec<EventSourceMessage>,
    /// The stream broke the format (an event past the limit): nothing more is read.
    broken: bool,
}

impl EventCapture {
    /// Events of at most `limit` bytes each.
    pub(crate) fn new(limit: usize) -> EventCapture {
        EventCapture {
            parser: EventParser::new(limit),
            messages: Vec::new(),
            broken: false,
        }
    }

    /// Reads the body's next bytes, which went through at `at`.
    pub(crate) fn feed(&mut self, bytes: &[u8], at: SystemTime) {
        if self.broken || bytes.is_empty() {
            return;
        }
        let time = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |since| since.as_secs_f64());
        let messages = &mut self.messages;
        let fed = self.parser.feed(bytes, |event, data, id| {
            messages.push(EventSourceMessage {
                time,
                event_name: event.unwrap_or("message").to_owned(),
                event_id: id.to_owned(),
                data: data.to_owned(),
            });
        });
        self.broken = fed.is_err();
    }

    pub(crate) fn finish(self) -> Vec<EventSourceMessage> {
        self.messages
    }
}

/// Whether a response's `Content-Type` is an event stream.
pub(crate) fn is_event_stream(content_type: &[u8]) -> bool {
    let media = content_type
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default();
    media
        .trim_ascii()
        .eq_ignore_ascii_case(b"text/event-stream")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn events_are_kept_with_their_name_id_and_the_time_they_went_through() {
        let mut capture = EventCapture::new(1 << 20);
        let first = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
        let second = first + Duration::from_millis(500);
        capture.feed(
            b"retry: 10\nid: 1\ndata: {\"n\":1}\n\nevent: tick\nda",
            first,
        );
        capture.feed(b"ta: two\n\n", second);
        let got = capture.finish();
        assert_eq!(
            got,
            [
                EventSourceMessage {
                    time: 1_700_000_000.25,
                    event_name: "message".to_owned(),
                    event_id: "1".to_owned(),
                    data: "{\"n\":1}".to_owned(),
                },
                EventSourceMessage {
                    time: 1_700_000_000.75,
                    event_name: "tick".to_owned(),
                    event_id: "1".to_owned(),
                    data: "two".to_owned(),
                },
            ]
        );
    }

    #[test]
    fn event_streams_are_told_by_their_media_type() {
        assert!(is_event_stream(b"text/event-stream"));
        assert!(is_event_stream(b" Text/Event-Stream; charset=utf-8"));
        assert!(!is_event_stream(b"text/plain"));
        assert!(!is_event_stream(b"text/event-streams"));
    }
}
