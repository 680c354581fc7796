//! Recorded sockets -> socket steps. A WebSocket's messages become `send:` and `receive:`
//! steps in recorded order: a `receive:` for the server message that answered a send (within
//! [`REPLY_WITHIN_MS`]), and for any server message whose value a later send carries; a
//! value a send carries that an earlier message or HTTP response handed over becomes an
//! `extract` there and a template in the send (inside JSON, past a Socket.IO packet number);
//! a text sent at a steady period becomes `every:`. An event stream's events become a
//! `receive:` for each event name, in order of first appearance.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use super::model::{
    DraftExtract, DraftRequest, DraftSocket, Exchange, ExtractSource, MessageStep, RecordedMessage,
    RecordedSocket, SendBody,
};
use super::names::sanitize;
use super::offers::json_child_path;
use super::request::as_data;
use super::ties::is_id_like;
use crate::scenario::message_json;
use crate::values::{Shape, shape};

/// A server message counts as the answer to a send when it came this soon after it.
const REPLY_WITHIN_MS: f64 = 2000.0;
/// How many earlier responses are searched for a value a message sends.
const HTTP_WINDOW: usize = 64;
/// Sends of one text at least this many times, at a steady period, are an `every:`.
const PERIODIC_AT_LEAST: usize = 3;
/// The keys that name a message's kind, tried in order.
const KIND_KEYS: &[&str] = &["type", "event", "action", "op", "method", "msg_type"];

/// How thinks between sends are written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Thinks {
    pub(crate) scale: f64,
    pub(crate) none: bool,
}

/// Gives each request that opened a socket its steps. `taken`: the variable names already
/// in use (extracts and generators); the new ones join them.
pub(crate) fn draft_sockets(
    requests: &mut [DraftRequest],
    exchanges: &[Exchange],
    taken: &mut HashSet<String>,
    thinks: Thinks,
    account: &[(String, String)],
) {
    for (index, exchange) in exchanges.iter().enumerate() {
        let Some(recorded) = &exchange.socket else {
            continue;
        };
        let (steps, at_ms) = if recorded.events {
            event_steps(recorded)
        } else {
            let mut known = http_values(exchanges, index);
            let mut drafting = Drafting {
                requests,
                taken,
                known: &mut known,
                account,
            };
            drafting.websocket_steps(recorded, exchange.wall_ms, thinks)
        };
        let request = &mut requests[index];
        request.socket = Some(Box::new(DraftSocket {
            events: recorded.events,
            steps,
            at_ms,
        }));
        request.checks.clear();
        request.extracts.clear();
    }
}

/// A value something handed over, and where.
struct Known {
    value: String,
    origin: Origin,
    path: String,
    key: Option<String>,
    var: Option<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Origin {
    /// An HTTP response (the request's index).
    Http(usize),
    /// A message the server sent on this socket (its index).
    Message(usize),
}

/// (JSONPath, key, value) of each text and number in a JSON value.
fn leaves(
    value: &Value,
    path: &str,
    key: Option<&str>,
    out: &mut Vec<(String, Option<String>, String)>,
) {
    match value {
        Value::Object(map) => {
            for (name, child) in map {
                leaves(child, &json_child_path(path, name), Some(name), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                leaves(child, &format!("{path}[{i}]"), key, out);
            }
        }
        Value::String(text) => out.push((path.to_owned(), key.map(str::to_owned), text.clone())),
        Value::Number(number) => {
            out.push((path.to_owned(), key.map(str::to_owned), number.to_string()))
        }
        Value::Bool(_) | Value::Null => {}
    }
}

/// Whether a value is one a server hands out (a token; a number under an id's name): only
/// those are tied, so that words and counts never are.
fn ties(key: Option<&str>, value: &str) -> bool {
    match shape(value) {
        Shape::Token => true,
        Shape::Number => value.len() >= 3 && key.is_some_and(is_id_like),
        Shape::Word | Shape::Text => false,
    }
}

/// The tied values of the JSON responses before `index` (the newest last).
fn http_values(exchanges: &[Exchange], index: usize) -> Vec<Known> {
    let mut known = Vec::new();
    for (j, exchange) in exchanges
        .iter()
        .enumerate()
        .take(index)
        .skip(index.saturating_sub(HTTP_WINDOW))
    {
        let Some(json) = exchange
            .response_body
            .as_deref()
            .and_then(|body| serde_json::from_str::<Value>(body).ok())
        else {
            continue;
        };
        let mut found = Vec::new();
        leaves(&json, "$", None, &mut found);
        for (path, key, value) in found {
            if ties(key.as_deref(), &value) {
                known.push(Known {
                    value,
                    origin: Origin::Http(j),
                    path,
                    key,
                    var: None,
                });
            }
        }
    }
    known
}

/// A message's packet number and JSON, when it has JSON (`42["chat",{}]`: `42`).
fn split_packet(text: &str) -> Option<(&str, Value)> {
    let json = message_json(text)?;
    let trimmed = text.trim_start();
    let digits = trimmed.len()
        - trimmed
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .len();
    let prefix = if serde_json::from_str::<Value>(text.trim()).is_ok() {
        ""
    } else {
        &trimmed[..digits]
    };
    Some((prefix, json))
}

struct Drafting<'a> {
    requests: &'a mut [DraftRequest],
    taken: &'a mut HashSet<String>,
    known: &'a mut Vec<Known>,
    /// (recorded value, users CSV column) of the account that logged in.
    account: &'a [(String, String)],
}

/// The acknowledgement id of a Socket.IO event that asks for one (`421["chat",...]`: `1`).
fn ack_id(prefix: &str) -> Option<&str> {
    prefix
        .strip_prefix("42")
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
}

/// What the pass learnt of one server message.
#[derive(Default)]
struct Received {
    needed: bool,
    extracts: Vec<(String, String)>,
    equals: Option<(String, String)>,
    /// The packet number it must start with: a Socket.IO acknowledgement's (`431`).
    packet: Option<String>,
}

impl Drafting<'_> {
    fn websocket_steps(
        &mut self,
        recorded: &RecordedSocket,
        opened_ms: f64,
        thinks: Thinks,
    ) -> (Vec<MessageStep>, Vec<f64>) {
        let messages = &recorded.messages;
        let periodic = periodic_sends(messages);
        let mut received: Vec<Received> = messages.iter().map(|_| Received::default()).collect();
        let mut bodies: BTreeMap<usize, SendBody> = BTreeMap::new();
        // The send waiting for its answer: its index, time, and (value, template) of its leaves.
        let mut waiting: Option<(f64, Vec<(String, String)>)> = None;
        // Socket.IO events waiting for their acknowledgement: (the ack's packet number, the
        // sent leaves). Their answer is that packet, whenever it comes; what the server
        // broadcasts meanwhile answers nothing.
        let mut acks: Vec<(String, Vec<(String, String)>)> = Vec::new();
        // The values sends carried so far.
        let mut sent_before: HashSet<String> = HashSet::new();
        for (i, message) in messages.iter().enumerate() {
            if message.sent {
                if periodic
                    .get(&message.text)
                    .is_some_and(|(first, _)| *first != i)
                {
                    continue;
                }
                let (body, sent) = self.send_body(&message.text, &mut received);
                let earlier = sent_before.clone();
                sent_before.extend(sent.iter().map(|(value, _)| value.clone()));
                let sent_before = &earlier;
                bodies.insert(i, body);
                let ack = split_packet(&message.text)
                    .and_then(|(prefix, _)| ack_id(prefix).map(|id| format!("43{id}")));
                match ack {
                    Some(packet) => {
                        // An answer comes before the next send.
                        waiting = None;
                        acks.push((packet, sent));
                    }
                    None if !periodic.contains_key(&message.text) => {
                        // Its answer is the first message within the window that echoes a
                        // value this send was the first to carry (an id made for it, as
                        // Jupyter's `msg_id`), however many messages or sends came between;
                        // else the first message after it.
                        let own: Vec<(String, String)> = sent
                            .iter()
                            .filter(|(value, _)| !sent_before.contains(value))
                            .cloned()
                            .collect();
                        match answer_echoing(messages, i, &own) {
                            Some((j, equals)) => {
                                received[j].needed = true;
                                received[j].equals = Some(equals);
                                waiting = None;
                            }
                            None => waiting = Some((message.wall_ms, sent.clone())),
                        }
                    }
                    None => {}
                }
                continue;
            }
            let packet = split_packet(&message.text);
            let mut found = Vec::new();
            if let Some((_, json)) = &packet {
                leaves(json, "$", None, &mut found);
            }
            let acked = packet
                .as_ref()
                .and_then(|(prefix, _)| acks.iter().position(|(ack, _)| ack == prefix));
            if let Some(at) = acked {
                let (packet, sent) = acks.remove(at);
                received[i].needed = true;
                received[i].equals = echoed(&found, &sent);
                received[i].packet = Some(packet);
            } else if received[i].needed {
                // The answer a send found ahead ([`answer_echoing`]).
            } else if let Some((at, sent)) = waiting.take() {
                if message.wall_ms - at <= REPLY_WITHIN_MS {
                    received[i].needed = true;
                    received[i].equals = echoed(&found, &sent);
                }
            }
            for (path, key, value) in found {
                if ties(key.as_deref(), &value) {
                    self.known.push(Known {
                        value,
                        origin: Origin::Message(i),
                        path,
                        key,
                        var: None,
                    });
                }
            }
        }
        // The steps, in recorded order.
        let mut steps = Vec::new();
        let mut at_ms = Vec::new();
        let mut last_ms = opened_ms;
        for (i, message) in messages.iter().enumerate() {
            let gap_s = ((message.wall_ms - last_ms) / 1000.0).max(0.0);
            if let Some(body) = bodies.remove(&i) {
                match periodic.get(&message.text) {
                    // In the background: the pauses around it are the other steps'.
                    Some((_, period)) => {
                        steps.push(MessageStep::Every(*period, body));
                        at_ms.push(message.wall_ms);
                    }
                    None => {
                        if !thinks.none && gap_s * thinks.scale >= 1.0 {
                            let seconds = (gap_s * thinks.scale * 10.0).round() / 10.0;
                            steps.push(MessageStep::Think(seconds));
                            at_ms.push(message.wall_ms);
                        }
                        steps.push(MessageStep::Send(body));
                        at_ms.push(message.wall_ms);
                        last_ms = message.wall_ms;
                    }
                }
            } else if !message.sent && received[i].needed {
                let answer = std::mem::take(&mut received[i]);
                steps.push(receive_step(message, answer, gap_s));
                at_ms.push(message.wall_ms);
                last_ms = message.wall_ms;
            }
        }
        // Never decreasing, so that the steps keep their order among the requests.
        for i in 1..at_ms.len() {
            at_ms[i] = at_ms[i].max(at_ms[i - 1]);
        }
        (steps, at_ms)
    }

    /// The send's body with the values earlier messages or responses handed over templated,
    /// and (recorded value, what the replay sends) of its tied leaves.
    fn send_body(
        &mut self,
        text: &str,
        received: &mut [Received],
    ) -> (SendBody, Vec<(String, String)>) {
        let Some((prefix, mut json)) = split_packet(text) else {
            return (SendBody::Text(as_data(text)), Vec::new());
        };
        let mut found = Vec::new();
        leaves(&json, "$", None, &mut found);
        let mut sent = Vec::new();
        for (path, key, value) in found {
            if !ties(key.as_deref(), &value) {
                // The account's values are the user's own here too, whole or inside text.
                let text = as_data(&value);
                let templated = super::login::with_account_values(&text, self.account);
                if templated != text {
                    set_leaf(&mut json, &path, &templated);
                }
                continue;
            }
            let template = match self.var_for(&value, key.as_deref(), received) {
                Some(var) => {
                    let template = format!("{{{{ {var} }}}}");
                    set_leaf(&mut json, &path, &template);
                    template
                }
                None => as_data(&value),
            };
            sent.push((value, template));
        }
        let body = if prefix.is_empty() {
            SendBody::Json(json)
        } else {
            SendBody::Text(format!("{prefix}{json}"))
        };
        (body, sent)
    }

    /// The variable that carries `value` from where it was last handed over (an extract added
    /// there), if anything handed it over.
    fn var_for(
        &mut self,
        value: &str,
        key: Option<&str>,
        received: &mut [Received],
    ) -> Option<String> {
        // A value carried already keeps its variable; else the newest that handed it over.
        if let Some(var) = (self.known.iter())
            .find(|known| known.value == value && known.var.is_some())
            .and_then(|known| known.var.clone())
        {
            return Some(var);
        }
        let known = self
            .known
            .iter_mut()
            .rev()
            .find(|known| known.value == value)?;
        let wanted = known.key.as_deref().or(key).unwrap_or("value");
        let base = sanitize(wanted);
        let mut var = base.clone();
        let mut n = 2;
        while self.taken.contains(&var) {
            var = format!("{base}_{n}");
            n += 1;
        }
        self.taken.insert(var.clone());
        known.var = Some(var.clone());
        match known.origin {
            Origin::Http(j) => self.requests[j].extracts.push(DraftExtract {
                var: var.clone(),
                source: ExtractSource::JsonPath(known.path.clone()),
                comment: format!("{var}: sent over the WebSocket later"),
            }),
            Origin::Message(i) => {
                received[i].needed = true;
                received[i].extracts.push((var.clone(), known.path.clone()));
            }
        }
        Some(var)
    }
}

/// The first server message after `messages[send]` within [`REPLY_WITHIN_MS`] that echoes one
/// of `own` (the values no earlier send carried), and (its JSONPath there, what the replay
/// sends).
fn answer_echoing(
    messages: &[RecordedMessage],
    send: usize,
    own: &[(String, String)],
) -> Option<(usize, (String, String))> {
    if own.is_empty() {
        return None;
    }
    let at = messages[send].wall_ms;
    messages
        .iter()
        .enumerate()
        .skip(send + 1)
        .take_while(|(_, message)| message.wall_ms - at <= REPLY_WITHIN_MS)
        .filter(|(_, message)| !message.sent)
        .find_map(|(j, message)| {
            let mut found = Vec::new();
            if let Some((_, json)) = split_packet(&message.text) {
                leaves(&json, "$", None, &mut found);
            }
            echoed(&found, own).map(|equals| (j, equals))
        })
}

/// The first tied value of a server message that a send carried, as (its JSONPath there,
/// what the replay sends): the answer names what it answers.
fn echoed(
    found: &[(String, Option<String>, String)],
    sent: &[(String, String)],
) -> Option<(String, String)> {
    found.iter().find_map(|(path, key, value)| {
        (ties(key.as_deref(), value))
            .then(|| sent.iter().find(|(sent, _)| sent == value))
            .flatten()
            .map(|(_, template)| (path.clone(), template.clone()))
    })
}

/// Replaces the leaf at a JSONPath written by [`leaves`] with a text.
fn set_leaf(json: &mut Value, path: &str, text: &str) {
    fn visit(value: &mut Value, here: &str, path: &str, text: &str) -> bool {
        if here == path {
            *value = Value::String(text.to_owned());
            return true;
        }
        match value {
            Value::Object(map) => map
                .iter_mut()
                .any(|(name, child)| visit(child, &json_child_path(here, name), path, text)),
            Value::Array(items) => items
                .iter_mut()
                .enumerate()
                .any(|(i, child)| visit(child, &format!("{here}[{i}]"), path, text)),
            _ => false,
        }
    }
    visit(json, "$", path, text);
}

/// A `receive:` for a server message: what it must be (the value it answers, else its kind,
/// else its short text), what it hands over, and a timeout with room to spare.
fn receive_step(message: &RecordedMessage, answer: Received, gap_s: f64) -> MessageStep {
    let json = split_packet(&message.text).map(|(_, json)| json);
    let equals = answer.equals.or_else(|| json.as_ref().and_then(kind_of));
    let regex = match (&answer.packet, &equals, &json) {
        (Some(packet), _, _) => Some(format!("^{}\\D", regex::escape(packet))),
        (None, None, None) if message.text.len() <= 40 && !message.text.is_empty() => {
            Some(format!("^{}$", regex::escape(&message.text)))
        }
        _ => None,
    };
    let timeout_s = (gap_s * 4.0).ceil().max(10.0);
    let comment = format!(
        "recorded: {}",
        crate::scenario::json_part(&message.text)
            .chars()
            .take(80)
            .collect::<String>()
    );
    MessageStep::Receive {
        event: None,
        equals,
        regex,
        timeout_s,
        extracts: answer.extracts,
        comment,
    }
}

/// A message's kind: a kind key's text, or a Socket.IO event's name (`["chat", ...]`).
fn kind_of(json: &Value) -> Option<(String, String)> {
    match json {
        Value::Object(map) => KIND_KEYS.iter().find_map(|key| match map.get(*key) {
            Some(Value::String(kind)) => Some((json_child_path("$", key), as_data(kind))),
            _ => None,
        }),
        Value::Array(items) => match items.first() {
            Some(Value::String(kind)) => Some(("$[0]".to_owned(), as_data(kind))),
            _ => None,
        },
        _ => None,
    }
}

/// Texts sent at a steady period: text -> (the first send's index, the period in seconds).
fn periodic_sends(messages: &[RecordedMessage]) -> BTreeMap<String, (usize, f64)> {
    let mut by_text: BTreeMap<&str, Vec<(usize, f64)>> = BTreeMap::new();
    for (i, message) in messages.iter().enumerate().filter(|(_, m)| m.sent) {
        by_text
            .entry(message.text.as_str())
            .or_default()
            .push((i, message.wall_ms));
    }
    let mut periodic = BTreeMap::new();
    for (text, sends) in by_text {
        if sends.len() < PERIODIC_AT_LEAST {
            continue;
        }
        let mut gaps: Vec<f64> = sends.windows(2).map(|w| w[1].1 - w[0].1).collect();
        gaps.sort_by(f64::total_cmp);
        let median = gaps[gaps.len() / 2];
        let steady = median >= 500.0 && gaps.iter().all(|gap| (gap - median).abs() <= median * 0.3);
        if steady {
            let seconds = (median / 100.0).round() / 10.0;
            periodic.insert(text.to_owned(), (sends[0].0, seconds));
        }
    }
    periodic
}

/// An event stream: a `receive:` for each event name, in order of first appearance.
fn event_steps(recorded: &RecordedSocket) -> (Vec<MessageStep>, Vec<f64>) {
    let mut seen: HashSet<Option<&str>> = HashSet::new();
    let mut steps = Vec::new();
    let mut at_ms = Vec::new();
    let mut last_ms = recorded.messages.first().map_or(0.0, |m| m.wall_ms);
    for message in &recorded.messages {
        if !seen.insert(message.event.as_deref()) {
            continue;
        }
        let gap_s = ((message.wall_ms - last_ms) / 1000.0).max(0.0);
        last_ms = message.wall_ms;
        at_ms.push(message.wall_ms);
        steps.push(MessageStep::Receive {
            event: Some(
                message
                    .event
                    .clone()
                    .unwrap_or_else(|| "message".to_owned()),
            ),
            equals: None,
            regex: None,
            timeout_s: (gap_s * 4.0).ceil().max(10.0),
            extracts: Vec::new(),
            comment: format!(
                "recorded: {}",
                message.text.chars().take(80).collect::<String>()
            ),
        });
    }
    (steps, at_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(at_s: f64, text: &str) -> RecordedMessage {
        RecordedMessage {
            sent: true,
            wall_ms: at_s * 1000.0,
            event: None,
            text: text.to_owned(),
        }
    }

    #[test]
    fn steady_repeated_sends_are_periodic_and_others_are_not() {
        let mut messages: Vec<RecordedMessage> =
            (0..4).map(|n| sent(f64::from(n) * 25.0, "3")).collect();
        messages.push(sent(1.0, "hello"));
        messages.extend([sent(2.0, "x"), sent(3.0, "x"), sent(20.0, "x")]);
        let periodic = periodic_sends(&messages);
        assert_eq!(periodic.len(), 1, "{periodic:?}");
        assert_eq!(periodic.get("3"), Some(&(0, 25.0)));
    }

    fn received(at_s: f64, text: &str) -> RecordedMessage {
        RecordedMessage {
            sent: false,
            ..sent(at_s, text)
        }
    }

    #[test]
    fn a_send_is_answered_by_the_message_that_echoes_its_own_id() {
        // Jupyter's kernel channel: every request carries the client's session and an id of
        // its own; the reply to an earlier request (the same session) came first, and another
        // request went out before this one's reply came.
        let request = |id: &str, kind: &str| {
            format!(
                r#"{{"header":{{"msg_id":"{id}","msg_type":"{kind}","session":"sess-0926dbe7"}},"parent_header":{{}},"content":{{}}}}"#
            )
        };
        let reply = |id: &str, kind: &str| {
            format!(
                r#"{{"header":{{"msg_id":"k-{id}","msg_type":"{kind}"}},"parent_header":{{"msg_id":"{id}","session":"sess-0926dbe7"}},"content":{{}}}}"#
            )
        };
        let recorded = RecordedSocket {
            events: false,
            messages: vec![
                sent(1.0, &request("dbg-11111111", "debug_request")),
                sent(1.01, &request("exe-22222222", "execute_request")),
                received(1.02, &reply("dbg-11111111", "debug_reply")),
                sent(1.03, &request("dbg-33333333", "debug_request")),
                received(1.04, &reply("exe-22222222", "execute_reply")),
                received(1.05, &reply("dbg-33333333", "debug_reply")),
            ],
        };
        let mut drafting = Drafting {
            requests: &mut [],
            taken: &mut HashSet::new(),
            known: &mut Vec::new(),
            account: &[],
        };
        let thinks = Thinks {
            scale: 1.0,
            none: true,
        };
        let (steps, _) = drafting.websocket_steps(&recorded, 1000.0, thinks);
        let waited_for: Vec<(usize, Option<(String, String)>)> = steps
            .iter()
            .enumerate()
            .filter_map(|(at, step)| match step {
                MessageStep::Receive { equals, .. } => Some((at, equals.clone())),
                _ => None,
            })
            .collect();
        let on = |id: &str| Some(("$.parent_header.msg_id".to_owned(), id.to_owned()));
        // Each reply waited for by the id its request was the first to carry, not by the
        // session all of them share.
        assert_eq!(
            waited_for,
            [
                (2, on("dbg-11111111")),
                (4, on("exe-22222222")),
                (5, on("dbg-33333333")),
            ],
            "{steps:?}"
        );
    }

    #[test]
    fn a_socket_io_event_is_answered_by_its_acknowledgement() {
        // The server broadcasts the message to the room before it acknowledges it: under
        // load the broadcast may be anyone's, the acknowledgement is the sender's own.
        let recorded = RecordedSocket {
            events: false,
            messages: vec![
                sent(1.0, "5"),
                sent(
                    1.5,
                    r#"421["message",{"room":"lobby","text":"hello from user01"}]"#,
                ),
                received(
                    1.51,
                    r#"42["message",{"id":"m13ab8e41e58d","text":"hello"}]"#,
                ),
                received(1.52, r#"431[{"id":"m13ab8e41e58d"}]"#),
                sent(3.0, r#"422["edit",{"id":"m13ab8e41e58d","text":"x"}]"#),
                received(3.01, r#"42["edited",{"id":"m13ab8e41e58d","text":"x"}]"#),
                received(3.02, r#"432[{"id":"m13ab8e41e58d","text":"x"}]"#),
            ],
        };
        let account = [("user01".to_owned(), "username".to_owned())];
        let mut drafting = Drafting {
            requests: &mut [],
            taken: &mut HashSet::new(),
            known: &mut Vec::new(),
            account: &account,
        };
        let thinks = Thinks {
            scale: 1.0,
            none: false,
        };
        let (steps, at_ms) = drafting.websocket_steps(&recorded, 1000.0, thinks);
        let text = |text: &str| MessageStep::Send(SendBody::Text(text.to_owned()));
        let ack = |packet: &str, equals: Option<(&str, &str)>, extracts: &[(&str, &str)]| {
            MessageStep::Receive {
                event: None,
                equals: equals.map(|(path, value)| (path.to_owned(), value.to_owned())),
                regex: Some(format!("^{packet}\\D")),
                timeout_s: 10.0,
                extracts: (extracts.iter())
                    .map(|(var, path)| ((*var).to_owned(), (*path).to_owned()))
                    .collect(),
                comment: String::new(),
            }
        };
        let without_comments: Vec<MessageStep> = steps
            .into_iter()
            .map(|step| match step {
                MessageStep::Receive {
                    event,
                    equals,
                    regex,
                    timeout_s,
                    extracts,
                    comment: _,
                } => MessageStep::Receive {
                    event,
                    equals,
                    regex,
                    timeout_s,
                    extracts,
                    comment: String::new(),
                },
                other => other,
            })
            .collect();
        assert_eq!(
            without_comments,
            [
                MessageStep::Send(SendBody::Json(serde_json::json!(5))),
                text(r#"421["message",{"room":"lobby","text":"hello from {{ user.username }}"}]"#),
                ack("431", None, &[("id", "$[0].id")]),
                MessageStep::Think(1.5),
                text(r#"422["edit",{"id":"{{ id }}","text":"x"}]"#),
                ack("432", Some(("$[0].id", "{{ id }}")), &[]),
            ]
        );
        assert_eq!(at_ms, [1000.0, 1500.0, 1520.0, 3000.0, 3000.0, 3020.0]);
        assert_eq!(ack_id("421"), Some("1"));
        assert_eq!(ack_id("42"), None);
        assert_eq!(ack_id("431"), None);
    }

    #[test]
    fn packets_kinds_and_ties() {
        let (prefix, json) = split_packet(r#"42["said",{"id":"mem-s1-9k2"}]"#).unwrap();
        assert_eq!(prefix, "42");
        assert_eq!(kind_of(&json), Some(("$[0]".to_owned(), "said".to_owned())));
        let (prefix, json) = split_packet(r#"{"msg_type":"execute_reply"}"#).unwrap();
        assert_eq!(prefix, "");
        assert_eq!(
            kind_of(&json),
            Some(("$.msg_type".to_owned(), "execute_reply".to_owned()))
        );
        assert!(split_packet("2probe").is_none());
        assert!(ties(Some("room"), "room-s1-7f3a"));
        assert!(ties(Some("msg_id"), "1234"));
        assert!(!ties(Some("n"), "1234"));
        assert!(!ties(Some("type"), "joined"));
        let mut json = serde_json::json!({"a": [{"id": "x"}]});
        set_leaf(&mut json, "$.a[0].id", "{{ id }}");
        assert_eq!(json, serde_json::json!({"a": [{"id": "{{ id }}"}]}));
    }
}
