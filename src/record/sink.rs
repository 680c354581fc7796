//! The capture's single writer: a thread that writes finished exchanges as HAR entries
//! (JSON straight from the raw heads, via [`super::capture::write_entry`]) into one buffer per
//! batch, appends the batch with the crash-safe writer, keeps the summary and tells the
//! terminal. Forwarding never waits for it; when writing fails, recording stops and
//! forwarding goes on.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::capture::{self, ExchangeRef, RequestParts, ResponseParts, Timing};
use super::{Event, Summary};
use crate::har::write::Writer;
use crate::har::{EventSourceMessage, WebSocketMessage};

/// One finished exchange, as the proxy saw it.
pub(crate) struct Exchange {
    pub(crate) request: RequestParts,
    pub(crate) response: Option<ResponseParts>,
    pub(crate) timing: Timing,
    pub(crate) error: Option<String>,
    /// The messages of a WebSocket connection, for an upgraded exchange.
    pub(crate) websocket: Option<Vec<WebSocketMessage>>,
    /// The events of an event-stream response.
    pub(crate) events: Option<Vec<EventSourceMessage>>,
}

/// At most this many exchanges go to the file in one write.
const BATCH: usize = 256;
/// How long the writer lets exchanges gather after a write; an exchange is on disk at most
/// about this long after it ended (plus the writing itself).
const GATHER: std::time::Duration = std::time::Duration::from_millis(2);

/// A batch buffer larger than this is not kept for the next batch (bodies can be big).
const KEEP_BUFFER: usize = 4 << 20;

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
    events: tokio::sync::broadcast::Sender<Event>,
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
        buffer: Vec::new(),
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
    events: tokio::sync::broadcast::Sender<Event>,
    summary: Arc<Mutex<Summary>>,
    hosts: BTreeSet<String>,
    /// The batch's entries, kept between batches.
    buffer: Vec<u8>,
}

impl State {
    fn run(mut self, rx: &mpsc::Receiver<Message>) {
        let mut batch = Vec::new();
        while let Ok(first) = rx.recv() {
            // Under load several exchanges wait: they go to the file in one write.
            let mut next = Some(first);
            while let Some(message) = next.take() {
                match message {
                    Message::Exchange(exchange) => {
                        batch.push(*exchange);
                        if batch.len() < BATCH {
                            next = rx.try_recv().ok();
                        }
                    }
                    other => {
                        self.exchanges(std::mem::take(&mut batch));
                        if !self.control(other) {
                            return;
                        }
                    }
                }
            }
            self.exchanges(std::mem::take(&mut batch));
            // Exchanges that finish meanwhile wait in the channel: sending to a thread that
            // sleeps wakes nothing, where one blocked in `recv` would be woken (a context
            // switch on the proxy's core) for every exchange.
            std::thread::sleep(GATHER);
        }
    }

    /// Handles a message other than an exchange; `false` when the sink is finished.
    fn control(&mut self, message: Message) -> bool {
        {
            match message {
                Message::Exchange(exchange) => self.exchanges(vec![*exchange]),
                Message::Tunnel(host) => self.tunnel(host),
                Message::Finish(reply) => {
                    if let Some(writer) = self.writer.take() {
                        if let Err(err) = writer.finish() {
                            self.stop(format!("could not finish {}: {err}", self.path.display()));
                        }
                    }
                    let _ = reply.send(self.snapshot());
                    return false;
                }
            }
        }
        true
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

    fn exchanges(&mut self, batch: Vec<Exchange>) {
        if batch.is_empty() {
            return;
        }
        let mut buffer = std::mem::take(&mut self.buffer);
        buffer.clear();
        let mut outlines = Vec::with_capacity(batch.len());
        for exchange in &batch {
            // The writer's format: each entry preceded by `,\n`.
            buffer.extend_from_slice(b",\n");
            outlines.push(capture::write_entry(
                &mut buffer,
                ExchangeRef {
                    request: &exchange.request,
                    response: exchange.response.as_ref(),
                    timing: &exchange.timing,
                    error: exchange.error.as_deref(),
                    websocket: exchange.websocket.as_deref(),
                    events: exchange.events.as_deref(),
                },
                self.max_body,
            ));
        }
        if let Some(writer) = self.writer.as_mut() {
            // The lines are shown once the entries are on disk, so what the terminal lists
            // survives the recorder being killed.
            match writer.append_serialized(&mut buffer, outlines.len() as u64) {
                Ok(()) => {
                    let mut new_hosts = Vec::new();
                    for outline in &outlines {
                        let host = outline.host();
                        if !self.hosts.contains(host.as_ref()) {
                            self.hosts.insert(host.clone().into_owned());
                            new_hosts.push(host.into_owned());
                        }
                    }
                    let bytes: u64 = outlines
                        .iter()
                        .map(|o| o.request_bytes + o.response_bytes)
                        .sum();
                    let count = outlines.len() as u64;
                    self.update(|summary| {
                        summary.exchanges += count;
                        summary.bytes += bytes;
                        summary.hosts.extend(new_hosts);
                    });
                }
                Err(err) => {
                    self.stop(format!("could not write to {}: {err}", self.path.display()));
                }
            }
        }
        if self.events.receiver_count() > 0 {
            for outline in &outlines {
                let _ = self.events.send(Event::Exchange {
                    line: capture::summary_line(outline),
                });
            }
        }
        drop(outlines);
        if buffer.capacity() <= KEEP_BUFFER {
            self.buffer = buffer;
        }
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
