//! A user's sockets: at most one WebSocket (`ws:`) and one event stream (`sse:`) open at a
//! time, each read by a task of its own into a small inbox while the user's other steps run.
//! `send:` hands a message to the WebSocket's task (which writes it and counts it), `every:`
//! has that task send one periodically, `receive:` takes the first message in the inbox that
//! matches (the others stay, the oldest dropped past the inbox's bound) within its timeout,
//! `close` closes. Counting: the connect as a request (`WS /path`, `SSE /path`: connect and
//! handshake time), each message sent (`SEND name`) and each `receive:` (`RECV name`, `EVENT
//! name`: the time since the user's last send, receive or open on that socket, so a reply's
//! latency is the time from the request that asked for it).

mod events;
mod inbox;
mod websocket;

use std::rc::Rc;
use std::time::Duration;

use http::HeaderMap;
use http::header::USER_AGENT;
use tokio::sync::mpsc;
use tokio::time::Instant;

use self::inbox::{Ended, Inbox};
use self::websocket::Outgoing;
use super::headers::{USER_AGENT_VALUE, add_cookies, store_cookies};
use super::step::Outcome;
use super::target::{Target, resolve};
use super::user::User;
use crate::scenario::{
    Extract, ExtractKind, Open, Receive, ResponseView, SEND_METHOD, Send, SocketKind, SocketStep,
    json_part,
};
use crate::stats::FailureKind;

/// The open sockets of one user (boxed in the user, absent until a socket step runs, so a
/// user without sockets pays one pointer).
#[derive(Default)]
pub(super) struct Sockets {
    websocket: Option<Socket>,
    events: Option<Socket>,
    /// The kind opened last: where a `receive:` without `from:` waits.
    last: Option<SocketKind>,
}

/// The user's side of one open socket.
struct Socket {
    inbox: Rc<Inbox>,
    /// A WebSocket's: what its task is to send. Dropping it closes the socket.
    outgoing: Option<mpsc::UnboundedSender<Outgoing>>,
    /// Since when the next `receive:`'s latency counts: the open, the last send or receive.
    mark: Instant,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        // A WebSocket's task closes it when its sender goes (bounded: see `websocket`); an
        // event stream has nothing to say goodbye with.
        if self.outgoing.is_none() {
            self.task.abort();
        }
    }
}

impl Sockets {
    fn get(&mut self, kind: SocketKind) -> &mut Option<Socket> {
        match kind {
            SocketKind::WebSocket => &mut self.websocket,
            SocketKind::Events => &mut self.events,
        }
    }
}

/// Runs one socket step.
pub(super) async fn run(user: &mut User, step: &SocketStep) -> Outcome {
    match step {
        SocketStep::Open(open) => self::open(user, open).await,
        SocketStep::Send(send) => self::send(user, send, None),
        SocketStep::Every { period, send } => self::send(user, send, Some(*period)),
        SocketStep::Receive(receive) => self::receive(user, receive).await,
        SocketStep::Close(which) => {
            let sockets = user.sockets.get_or_insert_default();
            match which {
                Some(kind) => *sockets.get(*kind) = None,
                None => {
                    sockets.websocket = None;
                    sockets.events = None;
                }
            }
            // A `receive:` without `from:` waits on the socket still open.
            sockets.last = match (&sockets.websocket, &sockets.events) {
                (Some(_), None) => Some(SocketKind::WebSocket),
                (None, Some(_)) => Some(SocketKind::Events),
                _ => sockets.last,
            };
            Outcome::Continue
        }
    }
}

/// What a connect needs: where (checked against the scenario's hosts) and the headers the
/// user's session adds (defaults, the step's own, cookies, `User-Agent`).
struct Connect {
    target: Target,
    headers: HeaderMap,
}

fn prepare(user: &User, open: &Open) -> Result<Connect, Outcome> {
    let text = open
        .url
        .render(&user.vars)
        .map_err(|err| user.error(open.kind.key(), &err))?;
    let url = resolve(user.worker.scenario.host.as_ref(), &text)
        .map_err(|err| user.error(open.kind.key(), &err))?;
    let target = Target::new(user, url).map_err(|err| user.error(open.kind.key(), &err))?;
    let defaults = &user.worker.scenario.defaults.headers;
    let mut headers = HeaderMap::new();
    for (name, template) in defaults.iter().chain(&open.headers) {
        let value = template
            .render(&user.vars)
            .map_err(|err| user.error(&format!("headers.{name}"), &err))?;
        let value = http::HeaderValue::from_str(&value).map_err(|_| {
            let message = format!("{value:?} is not a valid header value");
            user.error(&format!("headers.{name}"), &message)
        })?;
        headers.insert(name.clone(), value);
    }
    if !headers.contains_key(USER_AGENT) {
        headers.insert(USER_AGENT, http::HeaderValue::from_static(USER_AGENT_VALUE));
    }
    add_cookies(user, &target.url, &mut headers);
    Ok(Connect { target, headers })
}

async fn open(user: &mut User, open: &Open) -> Outcome {
    let connect = match prepare(user, open) {
        Ok(connect) => connect,
        Err(outcome) => return outcome,
    };
    let method = open.kind.connect_method();
    let connect_url = connect.target.url.clone();
    let phase = user.phase();
    let opened = tokio::select! {
        biased;
        _ = user.stop.cut(phase) => None,
        opened = connect_socket(user, open, connect) => Some(opened),
    };
    let url = connect_url.clone();
    let opened = match opened {
        Some(opened) => opened,
        None => {
            let message = "the run stopped while this socket was being opened";
            user.record_untimed_named(method, &open.name, (FailureKind::CutAtStop, message));
            return Outcome::Cut;
        }
    };
    match opened {
        Ok((socket, latency, answer)) => {
            store_cookies(user, &url, &answer);
            user.connect_failures = 0;
            user.record_named(method, &open.name, latency, 0, None);
            let sockets = user.sockets.get_or_insert_default();
            *sockets.get(open.kind) = Some(socket);
            sockets.last = Some(open.kind);
            Outcome::Continue
        }
        Err(failure) => {
            let failure_ref = (failure.kind, failure.message.as_str());
            if failure.untimed {
                user.record_untimed_named(method, &open.name, failure_ref);
                user.connect_failed().await;
            } else {
                user.record_named(method, &open.name, failure.latency, 0, Some(failure_ref));
            }
            // The steps after it would only meet a socket that is not there.
            Outcome::Abandon
        }
    }
}

/// Why a socket did not open.
struct OpenFailure {
    kind: FailureKind,
    message: String,
    latency: Duration,
    /// Nothing was sent (a connect failure): no latency to count.
    untimed: bool,
}

async fn connect_socket(
    user: &User,
    open: &Open,
    connect: Connect,
) -> Result<(Socket, Duration, HeaderMap), OpenFailure> {
    let inbox = Rc::new(Inbox::default());
    let client = user.worker.client.clone();
    match open.kind {
        SocketKind::WebSocket => {
            let (stream, response_headers, latency) =
                websocket::connect(&client, &connect, &open.subprotocols).await?;
            let (outgoing, receiver) = mpsc::unbounded_channel();
            let task = websocket::spawn(stream, inbox.clone(), receiver, user.worker.clone());
            let socket = Socket {
                inbox,
                outgoing: Some(outgoing),
                mark: Instant::now(),
                task,
            };
            Ok((socket, latency, response_headers))
        }
        SocketKind::Events => {
            let (body, response_headers, latency) = events::connect(&client, &connect).await?;
            let max_line = client.max_body();
            let again = events::Resubscribe {
                client,
                connect,
                name: Rc::from(open.name.as_str()),
                worker: user.worker.clone(),
            };
            let task = events::spawn(body, inbox.clone(), max_line, again);
            let socket = Socket {
                inbox,
                outgoing: None,
                mark: Instant::now(),
                task,
            };
            Ok((socket, latency, response_headers))
        }
    }
}

/// `send:` (or `every:`, with its period): hands the message to the WebSocket's task.
fn send(user: &mut User, send: &Send, every: Option<Duration>) -> Outcome {
    let text = match send.message.render(&user.vars) {
        Ok(text) => text,
        Err(err) => return user.error("send", &err),
    };
    let Some(socket) = user.sockets.as_mut().and_then(|s| s.websocket.as_mut()) else {
        return user.error(
            "send",
            &"no WebSocket is open: open one with `ws: URL` first",
        );
    };
    let name: Rc<str> = Rc::from(send.name.as_str());
    let message = match every {
        Some(period) => Outgoing::Every { period, text, name },
        None => Outgoing::Text { text, name },
    };
    let handed = socket
        .outgoing
        .as_ref()
        .is_some_and(|outgoing| outgoing.send(message).is_ok());
    socket.mark = Instant::now();
    if handed && socket.inbox.ended().is_none() {
        return Outcome::Continue;
    }
    let why = describe_end(socket.inbox.ended().as_ref());
    let message = format!("not sent: {why}");
    user.record_untimed_named(
        SEND_METHOD,
        &send.name,
        (FailureKind::SocketClosed, &message),
    );
    Outcome::Continue
}

fn describe_end(ended: Option<&Ended>) -> String {
    match ended {
        Some(Ended::Closed(why)) | Some(Ended::Broken(why)) => why.clone(),
        None => "the socket's task ended".to_owned(),
    }
}

/// `receive:`: the first message that matches, within the timeout.
async fn receive(user: &mut User, receive: &Receive) -> Outcome {
    let sockets = user.sockets.get_or_insert_default();
    let Some(kind) = receive.from.or(sockets.last) else {
        return user.error(
            "receive",
            &"no socket is open: open one with `ws:` or `sse:` first",
        );
    };
    let method = kind.receive_method();
    let Some(socket) = sockets.get(kind).as_ref() else {
        let message = format!(
            "no {} is open: open one with `{}: URL` first",
            if kind == SocketKind::WebSocket {
                "WebSocket"
            } else {
                "event stream"
            },
            kind.key()
        );
        return user.error("receive", &message);
    };
    let inbox = socket.inbox.clone();
    let mark = socket.mark;
    let timeout = receive
        .timeout
        .unwrap_or(user.worker.scenario.defaults.timeout);
    let began = Instant::now();
    let deadline = began + timeout;
    let phase = user.phase();
    loop {
        let vars = &user.vars;
        let found = inbox.take_first(|event, text| receive.condition.matches(event, text, vars));
        if let Some(message) = found {
            let now = Instant::now();
            if let Some(socket) = user.sockets.as_mut().and_then(|s| s.get(kind).as_mut()) {
                socket.mark = now;
            }
            let latency = message.at.saturating_duration_since(mark);
            let bytes = message.text.len() as u64;
            return match extract(&receive.extract, &message.text, &mut user.vars) {
                Ok(()) => {
                    user.record_named(method, &receive.name, latency, bytes, None);
                    Outcome::Continue
                }
                Err(why) => {
                    let failure = Some((FailureKind::ExtractFailed, why.as_str()));
                    user.record_named(method, &receive.name, latency, bytes, failure);
                    Outcome::Abandon
                }
            };
        }
        if let Some(ended) = inbox.ended() {
            let (kind, why) = match &ended {
                Ended::Closed(why) => (FailureKind::SocketClosed, why),
                Ended::Broken(why) => (FailureKind::ProtocolError, why),
            };
            let message = format!("no matching message before the socket ended: {why}");
            let latency = began.elapsed();
            user.record_named(method, &receive.name, latency, 0, Some((kind, &message)));
            return after_failure(receive);
        }
        tokio::select! {
            biased;
            _ = user.stop.cut(phase) => {
                let message = "the run stopped while this step waited for a message";
                user.record_untimed_named(method, &receive.name, (FailureKind::CutAtStop, message));
                return Outcome::Cut;
            }
            _ = inbox.arrived() => {}
            _ = tokio::time::sleep_until(deadline) => {
                let message = format!(
                    "no message matching {} within {}",
                    receive.condition.describe(),
                    humantime::format_duration(timeout)
                );
                let failure = Some((FailureKind::MessageTimeout, message.as_str()));
                user.record_named(method, &receive.name, timeout, 0, failure);
                return after_failure(receive);
            }
        }
    }
}

/// After a failed `receive:`: one whose extracts did not run abandons the sequence (its later
/// steps would only fail to render).
fn after_failure(receive: &Receive) -> Outcome {
    if receive.extract.is_empty() {
        Outcome::Continue
    } else {
        Outcome::Abandon
    }
}

/// The `jsonpath` (over the message's JSON, past a Socket.IO packet number) and `regex`
/// (over its text) extracts of a message.
fn extract(rules: &[Extract], text: &str, vars: &mut crate::scenario::Vars) -> Result<(), String> {
    let headers = HeaderMap::new();
    let whole = ResponseView::new(200, &headers, text.as_bytes());
    let json = ResponseView::new(200, &headers, json_part(text).as_bytes());
    for rule in rules {
        let view = match rule.kind {
            ExtractKind::JsonPath { .. } => &json,
            _ => &whole,
        };
        rule.apply(view, vars).map_err(|err| err.to_string())?;
    }
    Ok(())
}
