//! Compiling socket steps (`ws:`, `sse:`, `send:`, `receive:`, `every:`, `close`): part of
//! loading; problems go to the `Context` at their place.

use super::extract::ExtractKind;
use super::load::Context;
use super::raw::{RawMessageCondition, RawStep};
use super::socket::{JsonCondition, MessageCondition, Open, Receive, Send, SocketKind, SocketStep};
use super::template::Template;
use super::yaml::{self, Node, join};

/// The keys that make a step a socket step.
pub(super) const SOCKET_KEYS: &[&str] = &["ws", "sse", "send", "receive", "every", "close"];

impl Context<'_> {
    /// A socket step of kind `kind` (one of [`SOCKET_KEYS`]); `raw` was read from `node`.
    pub(super) fn socket_step(
        &mut self,
        node: &Node,
        raw: RawStep,
        path: &str,
        kind: &str,
    ) -> Option<SocketStep> {
        if !self.socket_fields_fit(&raw, path, kind) {
            return None;
        }
        let name = raw.name.clone().filter(|name| !name.trim().is_empty());
        match kind {
            "ws" | "sse" => {
                let (kind, url) = match kind {
                    "ws" => (SocketKind::WebSocket, raw.ws.as_deref()?),
                    _ => (SocketKind::Events, raw.sse.as_deref()?),
                };
                self.open(
                    raw.headers.map(|h| h.0),
                    raw.subprotocols,
                    path,
                    kind,
                    url,
                    name,
                )
                .map(SocketStep::Open)
            }
            "send" => self.send(node, path, name).map(SocketStep::Send),
            "every" => {
                let here = join(path, "every");
                let period = self.duration(raw.every.as_deref(), &here);
                if raw.send.is_none() {
                    self.problem(
                        path,
                        false,
                        "`every` sends a message periodically: add `send:` with the message",
                    );
                    return None;
                }
                let send = self.send(node, path, name)?;
                Some(SocketStep::Every {
                    period: period?,
                    send,
                })
            }
            "receive" => self.receive(node, raw, path, name).map(SocketStep::Receive),
            _ => {
                let which = self.socket_kind(raw.close.as_deref(), &join(path, "close"))?;
                Some(SocketStep::Close(Some(which)))
            }
        }
    }

    /// Refuses the keys that do not belong to a socket step of this kind.
    fn socket_fields_fit(&mut self, raw: &RawStep, path: &str, kind: &str) -> bool {
        let allowed: &[&str] = match kind {
            "ws" => &["name", "headers", "subprotocols"],
            "sse" => &["name", "headers"],
            "send" | "every" => &["name", "send"],
            "receive" => &["name", "timeout", "from", "extract"],
            _ => &[],
        };
        let mut present = raw.request_fields();
        for (key, here) in [
            ("steps", raw.steps.is_some()),
            ("as", raw.index_as.is_some()),
            ("parallel", raw.parallel.is_some()),
            ("outcome", raw.outcome.is_some()),
            ("subprotocols", raw.subprotocols.is_some()),
            ("timeout", raw.timeout.is_some()),
            ("from", raw.from.is_some()),
            ("send", raw.send.is_some() && kind != "send"),
        ] {
            if here {
                present.push(key);
            }
        }
        match present.iter().find(|key| !allowed.contains(key)) {
            Some(key) => {
                let owner = socket_owner(key);
                let message = format!("`{key}` belongs to a {owner}, not to a `{kind}` step");
                self.problem(&join(path, key), true, message);
                false
            }
            None => true,
        }
    }

    fn open(
        &mut self,
        headers: Option<Vec<(String, String)>>,
        subprotocols: Option<Vec<String>>,
        path: &str,
        kind: SocketKind,
        url: &str,
        name: Option<String>,
    ) -> Option<Open> {
        let here = join(path, kind.key());
        // A WebSocket URL is an HTTP URL with another scheme: kept as http(s) from here on, so
        // hosts and relative paths are judged as a request's are.
        let lower = url.to_ascii_lowercase();
        let url = if lower.starts_with("ws://") {
            format!("http://{}", &url[5..])
        } else if lower.starts_with("wss://") {
            format!("https://{}", &url[6..])
        } else {
            url.to_owned()
        };
        let template = self.template(&here, &url);
        let template = template.and_then(|template| self.check_url(template, &here));
        let headers = headers
            .map(|headers| self.headers(headers, &join(path, "headers")))
            .unwrap_or_default();
        let subprotocols = subprotocols.unwrap_or_default();
        let sub_path = join(path, "subprotocols");
        for protocol in &subprotocols {
            let token = !protocol.is_empty()
                && protocol
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
            if !token {
                self.problem(
                    &sub_path,
                    false,
                    format!("{protocol:?} is not a subprotocol name (a token such as chat.v1)"),
                );
                return None;
            }
        }
        let url = template?;
        let name = name.unwrap_or_else(|| self.default_name(&url));
        Some(Open {
            kind,
            name,
            url,
            headers,
            subprotocols,
        })
    }

    /// `send: text` (a template) or `send: {json: ...}` (JSON written as YAML).
    fn send(&mut self, node: &Node, path: &str, name: Option<String>) -> Option<Send> {
        let here = join(path, "send");
        let value = node.get("send")?;
        let message = match &value.value {
            yaml::Value::Map(entries) => match entries.as_slice() {
                [(key, json)] if key.text == "json" => {
                    self.json_template(json, &join(&here, "json"))?
                }
                [(key, text)] if key.text == "text" => {
                    let text_path = join(&here, "text");
                    let Some(text) = text.as_text() else {
                        self.problem(&text_path, false, "expected the message's text");
                        return None;
                    };
                    self.template(&text_path, text)?
                }
                _ => {
                    self.problem(
                        &here,
                        false,
                        "expected the message's text, `{json: ...}` or `{text: ...}`",
                    );
                    return None;
                }
            },
            _ => match value.as_text() {
                Some(text) => self.template(&here, text)?,
                None => {
                    self.problem(
                        &here,
                        false,
                        format!(
                            "expected the message's text or `{{json: ...}}`, found {}",
                            value.describe()
                        ),
                    );
                    return None;
                }
            },
        };
        let name = name.unwrap_or_else(|| default_send_name(&message));
        Some(Send { name, message })
    }

    fn receive(
        &mut self,
        node: &Node,
        raw: RawStep,
        path: &str,
        name: Option<String>,
    ) -> Option<Receive> {
        let here = join(path, "receive");
        let condition = match node.get("receive") {
            Some(value) if matches!(value.value, yaml::Value::Map(_)) => {
                let raw_condition: RawMessageCondition = self.read(value, &here)?;
                self.message_condition(raw_condition, &here)?
            }
            Some(value) if matches!(value.value, yaml::Value::Null) => MessageCondition::default(),
            Some(value) if value.as_text() == Some("any") => MessageCondition::default(),
            _ => {
                self.problem(
                    &here,
                    false,
                    "expected a condition: `{jsonpath: $.type, equals: pong}`, `{regex: ...}`, `{event: tick}` or `any`",
                );
                return None;
            }
        };
        let timeout = match raw.timeout.as_deref() {
            Some(text) => Some(self.duration(Some(text), &join(path, "timeout"))?),
            None => None,
        };
        let from = match raw.from.as_deref() {
            Some(text) => Some(self.socket_kind(Some(text), &join(path, "from"))?),
            None => None,
        };
        let mut extract = Vec::new();
        for (var, rule) in raw.extract.map(|e| e.0).unwrap_or_default() {
            let at = join(&join(path, "extract"), &var);
            let Some(rule) = self.extract(&var, rule, &at) else {
                continue;
            };
            if matches!(
                rule.kind,
                ExtractKind::JsonPath { .. } | ExtractKind::Regex(_)
            ) {
                extract.push(rule);
            } else {
                self.problem(
                    &at,
                    false,
                    "a message has no headers, cookies or HTML page: extract with `jsonpath` or `regex`",
                );
            }
        }
        let name = name.unwrap_or_else(|| condition.describe());
        Some(Receive {
            from,
            name,
            condition,
            timeout,
            extract,
        })
    }

    fn message_condition(
        &mut self,
        raw: RawMessageCondition,
        path: &str,
    ) -> Option<MessageCondition> {
        let expected = self.expected(raw.equals, raw.matches, path)?;
        let jsonpath = match raw.jsonpath {
            Some(source) => Some(JsonCondition {
                path: self.jsonpath(&source, &join(path, "jsonpath"))?,
                source,
                expected,
            }),
            None if expected.is_some() => {
                self.problem(
                    path,
                    false,
                    "`equals` and `matches` say what a `jsonpath` finds: add `jsonpath:`",
                );
                return None;
            }
            None => None,
        };
        let regex = match raw.regex {
            Some(source) => Some(self.regex(&join(path, "regex"), &source)?),
            None => None,
        };
        Some(MessageCondition {
            event: raw.event,
            jsonpath,
            regex,
        })
    }

    fn socket_kind(&mut self, text: Option<&str>, path: &str) -> Option<SocketKind> {
        match text.map(str::trim) {
            Some("ws") => Some(SocketKind::WebSocket),
            Some("sse") => Some(SocketKind::Events),
            other => {
                self.problem(
                    path,
                    false,
                    format!("expected `ws` or `sse`, found {:?}", other.unwrap_or("")),
                );
                None
            }
        }
    }
}

/// Which step a socket-only key belongs to, for messages.
fn socket_owner(key: &str) -> &'static str {
    match key {
        "subprotocols" => "`ws` step",
        "timeout" | "from" => "`receive` step",
        "extract" => "`receive` step or a request",
        "send" => "`send` or `every` step",
        "steps" | "as" | "parallel" => "`repeat` step",
        "outcome" => "`emit` step",
        _ => "request",
    }
}

/// A sent message's row name when the step names none: a JSON object's `type` (or `event`,
/// `action`, `op`, `method`) when written out, a Socket.IO event's name (`42["edit",...]`,
/// `421["edit",...]`: `edit`), else the start of a text written out, else `message`.
fn default_send_name(message: &Template) -> String {
    let source = message.source();
    match super::message_json(source) {
        Some(serde_json::Value::Object(object)) => {
            if let Some(kind) = kind_of(&object) {
                return kind;
            }
        }
        Some(serde_json::Value::Array(items))
            if source
                .trim_start()
                .starts_with(|c: char| c.is_ascii_digit()) =>
        {
            if let Some(serde_json::Value::String(event)) = items.first() {
                if !event.contains("{{") {
                    return event.clone();
                }
            }
        }
        _ => {}
    }
    if message.is_static() && !source.trim().is_empty() {
        super::extract::snippet(source, 40)
    } else {
        "message".to_owned()
    }
}

fn kind_of(object: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    ["type", "event", "action", "op", "method"]
        .iter()
        .find_map(|key| match object.get(*key) {
            Some(serde_json::Value::String(kind)) if !kind.contains("{{") => Some(kind.clone()),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{LoadOptions, Scenario, StepKind, load_str};
    use super::*;

    fn load(text: &str) -> Result<Scenario, String> {
        load_str(text, Path::new("s.yaml"), &LoadOptions::default()).map_err(|e| e.to_string())
    }

    fn sockets(scenario: &Scenario) -> Vec<&SocketStep> {
        scenario.flows[0]
            .steps
            .iter()
            .filter_map(|step| match &step.kind {
                StepKind::Socket(socket) => Some(&**socket),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_socket_io_event_is_counted_under_its_name() {
        let scenario = load(
            r#"
host: http://127.0.0.1:9000
flows:
  - steps:
      - ws: /socket.io/?EIO=4&transport=websocket
      - send: "421[\"message\",{\"text\":\"hello from {{ vu }}\"}]"
      - send: "42[\"edit\",{\"id\":\"{{ iteration }}\"}]"
      - send: "[\"not\",\"socket.io\"]"
"#,
        )
        .unwrap();
        let names: Vec<String> = sockets(&scenario)
            .into_iter()
            .filter_map(|step| match step {
                SocketStep::Send(send) => Some(send.name.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(names, ["message", "edit", "[\"not\",\"socket.io\"]"]);
    }

    #[test]
    fn socket_steps_load() {
        let scenario = load(
            r#"
host: http://127.0.0.1:9000
flows:
  - steps:
      - ws: ws://127.0.0.1:9000/chat?room=1
        subprotocols: [chat.v1]
        headers: { X-Room: "1" }
      - send: "hello {{ vu }}"
      - send: { json: { type: join, user: "{{ vu }}" } }
      - every: 500ms
        send: { json: { type: ping } }
        name: keepalive
      - receive: { jsonpath: $.type, equals: joined }
        timeout: 2s
        extract: { memberId: $.id, greeting: { regex: 'hi (\w+)' } }
      - send: "{{ memberId }} {{ greeting }}"
      - sse: /events
      - receive: { event: tick, regex: "^n=" }
        from: sse
      - receive: any
      - close: sse
      - close
"#,
        )
        .unwrap();
        assert_eq!(scenario.allowed_hosts, ["127.0.0.1:9000"]);
        let steps = sockets(&scenario);
        assert_eq!(steps.len(), 11);
        let SocketStep::Open(ws) = steps[0] else {
            panic!()
        };
        assert_eq!(
            (ws.kind, ws.name.as_str(), ws.url.source()),
            (
                SocketKind::WebSocket,
                "/chat?room=1",
                "http://127.0.0.1:9000/chat?room=1"
            )
        );
        assert_eq!(ws.subprotocols, ["chat.v1"]);
        let names: Vec<String> = steps
            .iter()
            .filter_map(|step| match step {
                SocketStep::Send(send) | SocketStep::Every { send, .. } => Some(send.name.clone()),
                SocketStep::Receive(receive) => Some(receive.name.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            names,
            [
                "message",
                "join",
                "keepalive",
                "$.type == joined",
                "message",
                "tick /^n=/",
                "any"
            ]
        );
        let SocketStep::Every { period, .. } = steps[3] else {
            panic!()
        };
        assert_eq!(*period, std::time::Duration::from_millis(500));
        let SocketStep::Receive(joined) = steps[4] else {
            panic!()
        };
        assert_eq!(joined.extract.len(), 2);
        assert_eq!(joined.timeout, Some(std::time::Duration::from_secs(2)));
        assert!(matches!(steps[10], SocketStep::Close(None)));
    }

    #[test]
    fn socket_mistakes_are_placed_and_explained() {
        let err = load(
            r#"
host: http://127.0.0.1:9000
flows:
  - steps:
      - ws: /chat
        timeout: 2s
      - receive: { equals: 3 }
      - receive: { jsonpath: $.a }
        extract: { sid: { cookie: sid } }
      - every: often
        send: ping
      - every: 1s
      - close: both
      - send: [1]
      - get: /
        subprotocols: [x]
      - ws: ftp://elsewhere/
"#,
        )
        .unwrap_err();
        assert_eq!(
            err,
            "s.yaml:6:9: flows[0].steps[0].timeout: `timeout` belongs to a `receive` step, not to a `ws` step\n\
             s.yaml:7:18: flows[0].steps[1].receive: `equals` and `matches` say what a `jsonpath` finds: add `jsonpath:`\n\
             s.yaml:9:25: flows[0].steps[2].extract.sid: a message has no headers, cookies or HTML page: extract with `jsonpath` or `regex`\n\
             s.yaml:10:16: flows[0].steps[3].every: expected a duration such as 500ms, 10s, 1m30s or 1h (a bare number is seconds), found \"often\"\n\
             s.yaml:12:9: flows[0].steps[4]: `every` sends a message periodically: add `send:` with the message\n\
             s.yaml:13:16: flows[0].steps[5].close: expected `ws` or `sse`, found \"both\"\n\
             s.yaml:14:15: flows[0].steps[6].send: expected the message's text or `{json: ...}`, found a list\n\
             s.yaml:16:9: flows[0].steps[7].subprotocols: `subprotocols` belongs to a `ws` step\n\
             s.yaml:17:13: flows[0].steps[8].ws: \"ftp://elsewhere/\" is neither a path (/...) nor an http:// or https:// URL"
        );
    }
}
