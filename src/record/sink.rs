//! The capture's single writer: a thread that turns finished exchanges into HAR entries
//! (via [`super::capture`]), appends them with the crash-safe writer, keeps the summary and
//! tells the terminal. Forwarding never waits for it; when writing fails, recording stops
//! and forwarding goes on.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::capture::{self, RequestParts, ResponseParts, Timing};
use super::{Event, Summary};
use crate::har::WebSocketMessage;
use crate::har::write::Writer;

/// One finished exchange, as the proxy saw it.
pub(crate) struct Exchange {
    pub(crate) request: RequestParts,
    pub(crate) response: Option<ResponseParts>,
    pub(crate) timing: Timing,
    pub(crate) error: Option<String>,
    /// The messages of a WebSocket connection, for an upgraded exchange.
    pub(crate) websocket: Option<Vec<WebSocketMessage>>,
}

enum Message {
    Exchange(Box<Exchange>),
    Tunnel(String),
    Finish(oneshot::Sender<Summary>),
}

/// Where the proxy hands finished exchanges; cheap to clone.
#[derive(Clone)]
pub(crate) struct Sink {
    tx: mpsc::Sender<Message>,
}

impl Sink {
    pub(crate) fn send(&self, exchange: Exchange) {
        let _ = self.tx.send(Message::Exchange(Box::new(exchange)));
    }

    /// A CONNECT tunnel that passed through unrecorded.
    pub(crate) fn tunnel(&self, host: String) {
        let _ = self.tx.send(Message::Tunnel(host));
    }

    /// Finishes the file and returns the summary.
    pub(crate) async fn finish(&self) -> Option<Summary> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Message::Finish(tx)).ok()?;
        rx.await.ok()
    }
}

/// Starts the writer thread. `writer` is `Err` when the file could not even be started.
pub(crate) fn spawn(
    writer: Result<Writer, String>,
    path: PathBuf,
    max_body: usize,
    events: tokio::sync::mpsc::UnboundedSender<Event>,
    summary: Arc<Mutex<Summary>>,
) -> std::io::Result<Sink> {
    let (tx, rx) = mpsc::channel();
    let mut state = State {
        writer: None,
        path,
        max_body,
        events,
        summary,
        hosts: BTreeSet::new(),
    };
    match writer {
        Ok(writer) => state.writer = Some(writer),
        Err(reason) => state.stop(reason),
    }
    std::thread::Builder::new()
        .name("chorus-capture".to_owned())
        .spawn(move || state.run(&rx))?;
    Ok(Sink { tx })
}

struct State {
    writer: Option<Writer>,
    path: PathBuf,
    max_body: usize,
    events: tokio::sync::mpsc::UnboundedSender<Event>,
    summary: Arc<Mutex<Summary>>,
    hosts: BTreeSet<String>,
}

impl State {
    fn run(mut self, rx: &mpsc::Receiver<Message>) {
        while let Ok(message) = rx.recv() {
            match message {
                Message::Exchange(exchange) => self.exchange(*exchange),
                Message::Tunnel(host) => self.tunnel(host),
                Message::Finish(reply) => {
                    if let Some(writer) = self.writer.take() {
                        if let Err(err) = writer.finish() {
                            self.stop(format!("could not finish {}: {err}", self.path.display()));
                        }
                    }
                    let _ = reply.send(self.snapshot());
                    return;
                }
            }
        }
    }

    fn snapshot(&self) -> Summary {
        self.summary
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn update(&self, change: impl FnOnce(&mut Summary)) {
        change(&mut self.summary.lock().unwrap_or_else(|e| e.into_inner()));
    }

    fn exchange(&mut self, exchange: Exchange) {
        let host = url::Url::parse(&exchange.request.url)
            .ok()
            .and_then(|url| {
                Some(match url.port() {
                    Some(port) => format!("{}:{port}", url.host_str()?),
                    None => url.host_str()?.to_owned(),
                })
            })
            .unwrap_or_default();
        let mut entry = capture::entry(
            &exchange.request,
            exchange.response.as_ref(),
            &exchange.timing,
            exchange.error,
            self.max_body,
        );
        if let Some(messages) = exchange.websocket {
            entry.resource_type = Some("websocket".to_owned());
            entry.web_socket_messages = messages;
        }
        // The line is shown once the entry is on disk, so what the terminal lists survives
        // the recorder being killed.
        let line = capture::summary_line(&entry);
        let Some(writer) = self.writer.as_mut() else {
            let _ = self.events.send(Event::Exchange { line });
            return;
        };
        match writer.append(&entry) {
            Ok(()) => {
                let bytes = entry.request.body_size.max(0) + entry.response.body_size.max(0);
                let new_host = self.hosts.insert(host.clone());
                self.update(|summary| {
                    summary.exchanges += 1;
                    summary.bytes += bytes as u64;
                    if new_host {
                        summary.hosts.push(host);
                    }
                });
            }
            Err(err) => self.stop(format!("could not write to {}: {err}", self.path.display())),
        }
        let _ = self.events.send(Event::Exchange { line });
    }

    fn tunnel(&mut self, host: String) {
        let known = self.snapshot().tunnelled_hosts.contains(&host);
        if !known {
            self.update(|summary| summary.tunnelled_hosts.push(host.clone()));
        }
        if let Some(writer) = self.writer.as_mut() {
            if let Err(err) = writer.add_tunnelled_host(&host) {
                self.stop(format!("could not write to {}: {err}", self.path.display()));
            }
        }
    }

    fn stop(&mut self, reason: String) {
        self.writer = None;
        self.update(|summary| summary.recording_error = Some(reason.clone()));
        let _ = self.events.send(Event::RecordingStopped { reason });
    }
}
