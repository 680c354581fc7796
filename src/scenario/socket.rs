//! The steps of WebSocket and server-sent-events scenarios (`ws:`, `sse:`, `send:`,
//! `receive:`, `every:`, `close`) and the one rule that says whether a message is the one a
//! `receive:` waits for: plain functions over a message's text, no IO.

use std::time::Duration;

use regex::Regex;
use serde_json_path::JsonPath;

use super::check::Expected;
use super::extract::{Extract, snippet};
use super::template::Template;
use super::vars::Vars;

/// Which of a user's sockets a step acts on: a user has at most one of each open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    /// `ws:` a WebSocket.
    WebSocket,
    /// `sse:` a server-sent-events stream (`text/event-stream`).
    Events,
}

impl SocketKind {
    /// The statistics' method for the connect row (`WS /chat`, `SSE /events`).
    pub fn connect_method(self) -> &'static str {
        match self {
            SocketKind::WebSocket => "WS",
            SocketKind::Events => "SSE",
        }
    }

    /// The statistics' method for a message received (`RECV joined`, `EVENT tick`).
    pub fn receive_method(self) -> &'static str {
        match self {
            SocketKind::WebSocket => "RECV",
            SocketKind::Events => "EVENT",
        }
    }

    /// As the scenario writes it (`ws`, `sse`).
    pub fn key(self) -> &'static str {
        match self {
            SocketKind::WebSocket => "ws",
            SocketKind::Events => "sse",
        }
    }
}

/// The statistics' method for a message sent on a WebSocket (`SEND join`).
pub const SEND_METHOD: &str = "SEND";

/// One socket step.
#[derive(Debug, Clone)]
pub enum SocketStep {
    Open(Open),
    Send(Send),
    Receive(Receive),
    /// `every: 1s` with `send:`: a periodic send while the user's other steps go on, until the
    /// socket closes or the user stops.
    Every {
        period: Duration,
        send: Send,
    },
    /// `close` (both sockets) or `close: ws|sse`.
    Close(Option<SocketKind>),
}

/// `ws: URL` or `sse: URL`: opens the user's socket of that kind (closing one it had).
#[derive(Debug, Clone)]
pub struct Open {
    pub kind: SocketKind,
    /// The connect row's name (default: the path, templated parts as `[name]`).
    pub name: String,
    /// `http(s)://`, `ws(s)://` (written as `http(s)://` after loading) or a path.
    pub url: Template,
    pub headers: Vec<(http::HeaderName, Template)>,
    /// `subprotocols:` offered in `Sec-WebSocket-Protocol` (WebSocket only).
    pub subprotocols: Vec<String>,
}

/// `send:` a text message on the user's WebSocket.
#[derive(Debug, Clone)]
pub struct Send {
    /// The row it is counted under (`SEND name`).
    pub name: String,
    /// Renders to the message's text (`json:` renders to JSON text).
    pub message: Template,
}

/// `receive:` waits for a message that matches, within the timeout.
#[derive(Debug, Clone)]
pub struct Receive {
    /// `from: ws|sse`; absent: the socket the user opened last.
    pub from: Option<SocketKind>,
    /// The row it is counted under (default: the condition, as [`MessageCondition::describe`]).
    pub name: String,
    pub condition: MessageCondition,
    /// `timeout:`; absent: the scenario's request timeout.
    pub timeout: Option<Duration>,
    /// `jsonpath` and `regex` extracts over the message's text.
    pub extract: Vec<Extract>,
}

/// What a message must be. Every part given must hold; none given: any message.
#[derive(Debug, Clone, Default)]
pub struct MessageCondition {
    /// An event stream's event name (`message` when the event names none).
    pub event: Option<String>,
    pub jsonpath: Option<JsonCondition>,
    /// A regex over the whole text (an event's data).
    pub regex: Option<Regex>,
}

/// A JSONPath that finds something in the message (JSON, possibly after a Socket.IO-style
/// packet number), and optionally what its first value is.
#[derive(Debug, Clone)]
pub struct JsonCondition {
    pub path: JsonPath,
    pub source: String,
    pub expected: Option<Expected>,
}

impl MessageCondition {
    /// Whether a message (its event name, for an event stream, and its text) is the one.
    pub fn matches(&self, event: Option<&str>, text: &str, vars: &Vars) -> bool {
        if let Some(wanted) = &self.event {
            if event.unwrap_or("message") != wanted {
                return false;
            }
        }
        if let Some(regex) = &self.regex {
            if !regex.is_match(text) {
                return false;
            }
        }
        let Some(condition) = &self.jsonpath else {
            return true;
        };
        let Some(json) = message_json(text) else {
            return false;
        };
        let nodes = condition.path.query(&json);
        let Some(found) = nodes.first() else {
            return false;
        };
        let found = match found {
            serde_json::Value::String(text) => std::borrow::Cow::Borrowed(text.as_str()),
            other => std::borrow::Cow::Owned(other.to_string()),
        };
        match &condition.expected {
            None => true,
            Some(Expected::Equals(template)) => template
                .render(vars)
                .is_ok_and(|expected| expected == found.as_ref()),
            Some(Expected::Matches(regex)) => regex.is_match(&found),
        }
    }

    /// The condition in a few words: the default name of a `receive:`'s row.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(event) = &self.event {
            parts.push(event.clone());
        }
        if let Some(condition) = &self.jsonpath {
            parts.push(match &condition.expected {
                None => condition.source.clone(),
                Some(Expected::Equals(template)) => {
                    format!("{} == {}", condition.source, template.source())
                }
                Some(Expected::Matches(regex)) => {
                    format!("{} =~ /{}/", condition.source, regex.as_str())
                }
            });
        }
        if let Some(regex) = &self.regex {
            parts.push(format!("/{}/", regex.as_str()));
        }
        if parts.is_empty() {
            "any".to_owned()
        } else {
            snippet(&parts.join(" "), 80)
        }
    }
}

/// A message's JSON: the whole text, or what follows a Socket.IO-style packet type (a run of
/// digits, as in `42["chat",{...}]` or `3{"id":1}`) when the whole is not JSON.
pub fn message_json(text: &str) -> Option<serde_json::Value> {
    let text = text.trim();
    if let Ok(json) = serde_json::from_str(text) {
        return Some(json);
    }
    let payload = text.trim_start_matches(|c: char| c.is_ascii_digit());
    if payload.len() == text.len() || !payload.starts_with(['[', '{']) {
        return None;
    }
    serde_json::from_str(payload).ok()
}

/// The part of a message that is JSON (see [`message_json`]), for extracts: the whole text,
/// or the text after the packet number.
pub fn json_part(text: &str) -> &str {
    let trimmed = text.trim_start();
    let payload = trimmed.trim_start_matches(|c: char| c.is_ascii_digit());
    if payload.len() != trimmed.len()
        && payload.starts_with(['[', '{'])
        && serde_json::from_str::<serde_json::Value>(trimmed).is_err()
    {
        payload
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jsonpath(source: &str, expected: Option<Expected>) -> MessageCondition {
        MessageCondition {
            jsonpath: Some(JsonCondition {
                path: JsonPath::parse(source).unwrap(),
                source: source.to_owned(),
                expected,
            }),
            ..MessageCondition::default()
        }
    }

    #[test]
    fn a_condition_matches_json_text_and_events() {
        let vars = Vars::new();
        let joined = jsonpath(
            "$.type",
            Some(Expected::Equals(Template::literal("joined"))),
        );
        assert!(joined.matches(None, r#"{"type":"joined","id":7}"#, &vars));
        assert!(!joined.matches(None, r#"{"type":"left"}"#, &vars));
        assert!(!joined.matches(None, "not json", &vars));
        assert_eq!(joined.describe(), "$.type == joined");
        let number = jsonpath("$.n", Some(Expected::Equals(Template::literal("3"))));
        assert!(number.matches(None, r#"{"n":3}"#, &vars));
        let any = MessageCondition::default();
        assert!(any.matches(Some("tick"), "", &vars));
        assert_eq!(any.describe(), "any");
        let tick = MessageCondition {
            event: Some("tick".to_owned()),
            regex: Some(Regex::new("^n=").unwrap()),
            ..MessageCondition::default()
        };
        assert!(tick.matches(Some("tick"), "n=1", &vars));
        assert!(!tick.matches(None, "n=1", &vars));
        assert!(!tick.matches(Some("tick"), "m=1", &vars));
        assert_eq!(tick.describe(), "tick /^n=/");
    }

    #[test]
    fn socket_io_packets_are_read_past_their_type_number() {
        assert_eq!(
            message_json(r#"42["chat",{"id":5}]"#),
            Some(serde_json::json!(["chat", {"id": 5}]))
        );
        assert_eq!(message_json("3"), Some(serde_json::json!(3)));
        assert_eq!(message_json("2probe"), None);
        assert_eq!(json_part(r#"42["chat"]"#), r#"["chat"]"#);
        assert_eq!(json_part(r#"{"a":1}"#), r#"{"a":1}"#);
        let condition = jsonpath("$[1].id", None);
        assert!(condition.matches(None, r#"42["chat",{"id":5}]"#, &Vars::new()));
    }
}
