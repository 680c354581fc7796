//! Turning one exchange (the raw request and response heads, captured bodies, timings) into
//! the JSON of its HAR entry, written straight into the caller's buffer: cookies, query
//! string, form parameters, body decoding as browsers write it (gzip, deflate, br), base64
//! for binary, truncation marks. Plain functions, no IO.
//!
//! This runs on the recorder's capture thread once per exchange, so it borrows from the heads
//! instead of building an owned [`crate::har::Entry`]: `head` reads the heads with
//! `httparse`, `json` writes views over them as JSON by hand. What it writes reads back as
//! the same `har::Entry` the owned path wrote, byte for byte as `serde_json` writes it.

mod head;
mod json;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::io::Read;
use std::time::{Duration, SystemTime};

use regex::Regex;

use crate::har::{EventSourceMessage, WebSocketMessage};

/// What was kept of a body: its first bytes (at most the `--max-body` limit) and how many
/// bytes went through in all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapturedBody {
    pub bytes: Vec<u8>,
    /// Every byte forwarded, kept or not.
    pub total: u64,
    pub truncated: bool,
}

impl CapturedBody {
    /// Adds a forwarded chunk, keeping at most `limit` bytes in all.
    pub fn push(&mut self, chunk: &[u8], limit: usize) {
        self.total += chunk.len() as u64;
        let room = limit.saturating_sub(self.bytes.len());
        if chunk.len() > room {
            self.truncated = true;
        }
        self.bytes
            .extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
}

/// The request as forwarded to the application.
#[derive(Debug, Clone)]
pub struct RequestParts {
    /// The absolute URL the application was asked for, e.g. `http://127.0.0.1:8001/api/x?y=1`.
    pub url: String,
    /// The request line and header lines exactly as sent to the application, through the
    /// blank line: `POST /api/x?y=1 HTTP/1.1\r\nhost: 127.0.0.1:8001\r\ncontent-type: …\r\n\r\n`.
    pub head: bytes::Bytes,
    pub body: CapturedBody,
}

/// The response as the application sent it.
#[derive(Debug, Clone)]
pub struct ResponseParts {
    /// The status line and header lines as received, through the blank line:
    /// `HTTP/1.1 200 OK\r\n…\r\n\r\n`.
    pub head: bytes::Bytes,
    pub body: CapturedBody,
}

/// When the exchange started (wall clock) and how long each phase took.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub started: SystemTime,
    /// Until the request body had been read from the browser.
    pub send: Duration,
    /// From then until the response head arrived.
    pub wait: Duration,
    /// From the response head to the end of the response body.
    pub receive: Duration,
}

/// Which URLs are recorded: `--include` (any of them; all when none) minus `--exclude`.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub include: Vec<Regex>,
    pub exclude: Vec<Regex>,
}

impl Filter {
    pub fn records(&self, url: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|re| re.is_match(url)))
            && !self.exclude.iter().any(|re| re.is_match(url))
    }
}

/// What the terminal line and the summary need of an entry, read while writing it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outline<'a> {
    pub method: &'a str,
    pub url: &'a str,
    /// 0 when no response head came.
    pub status: u16,
    /// The exchange did not complete (the entry has an `_error`).
    pub failed: bool,
    /// The entry's `time` in milliseconds.
    pub time: f64,
    /// Request body bytes forwarded.
    pub request_bytes: u64,
    /// Response body bytes forwarded (as sent, before decoding).
    pub response_bytes: u64,
}

impl Outline<'_> {
    /// The path and query, e.g. `/a?b=1`.
    pub fn path(&self) -> &str {
        split_url(self.url).map_or(self.url, |(_, _, path)| path)
    }

    /// `host` or `host:port`, lower case, a scheme's default port left out.
    pub fn host(&self) -> Cow<'_, str> {
        host_of(self.url)
    }
}

/// The terminal line for one exchange: method, path, status, milliseconds, size, e.g.
/// `GET     /a?b=1 ERR 5 ms 0 B`.
pub fn summary_line(outline: &Outline<'_>) -> String {
    let status: Cow<'_, str> = if outline.failed && outline.status == 0 {
        "ERR".into()
    } else {
        outline.status.to_string().into()
    };
    format!(
        "{:<7} {} {status} {:.0} ms {}",
        outline.method,
        outline.path(),
        outline.time,
        human_bytes(outline.response_bytes)
    )
}

pub fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
    }
}

/// One exchange as the capture thread got it, by reference.
#[derive(Debug, Clone, Copy)]
pub struct ExchangeRef<'a> {
    pub request: &'a RequestParts,
    /// `None` when no response head came.
    pub response: Option<&'a ResponseParts>,
    pub timing: &'a Timing,
    /// What went wrong, if anything.
    pub error: Option<&'a str>,
    /// The messages of a WebSocket connection, for an upgraded exchange.
    pub websocket: Option<&'a [WebSocketMessage]>,
    /// The events of an event-stream response (`_eventSourceMessages`).
    pub events: Option<&'a [EventSourceMessage]>,
}

/// Appends the HAR entry of one exchange to `out` as one JSON object, and returns what the
/// terminal and the summary need of it. Decoded bodies are capped at `max_body` too. Never
/// fails: a head that does not parse gives an entry with what could be read and a comment
/// saying so.
pub fn write_entry<'a>(
    out: &mut Vec<u8>,
    exchange: ExchangeRef<'a>,
    max_body: usize,
) -> Outline<'a> {
    let ExchangeRef {
        request,
        response,
        timing,
        error,
        websocket,
        events,
    } = exchange;
    let mut request_storage = head::storage();
    let request_head = head::request(&request.head, &mut request_storage);
    let mut response_storage = head::storage();
    let response_head = response.map(|r| (r, head::response(&r.head, &mut response_storage)));

    let mut notes = Notes::default();
    let mut truncated = request.body.truncated;
    if request.body.truncated {
        notes.push(&format!(
            "request body truncated: recorded {} of {} bytes (--max-body)",
            request.body.bytes.len(),
            request.body.total
        ));
    }
    let request_headers = request_head.headers.all();
    let post_data = (request.body.total > 0).then(|| {
        let mime_type = request_head
            .headers
            .first("content-type")
            .unwrap_or_default();
        json::PostData {
            mime_type,
            text: json::BodyText::of(&request.body.bytes),
            form: starts_with_ignore_case(mime_type, b"application/x-www-form-urlencoded"),
        }
    });
    let send = millis(timing.send);
    let wait = millis(timing.wait);
    let receive = millis(timing.receive);
    let time = ((send + wait + receive) * 1000.0).round() / 1000.0;
    let har_request = json::Request {
        method: request_head.method,
        url: &request.url,
        version: request_head.version,
        headers: request_headers,
        post_data,
        body_size: request.body.total,
    };

    let decoded;
    let har_response = match &response_head {
        Some((response, head)) => {
            decoded = decode_content(&head.headers, &response.body, max_body);
            if let Some(note) = &decoded.note {
                notes.push(note);
            }
            truncated |= response.body.truncated || decoded.truncated;
            let content = json::Content {
                size: decoded.bytes.len(),
                compression: decoded
                    .encoded
                    .then(|| decoded.bytes.len() as i64 - response.body.total as i64),
                mime_type: head.headers.first("content-type").unwrap_or_default(),
                text: (response.body.total > 0).then(|| json::BodyText::of(&decoded.bytes)),
            };
            let status_text = match head.reason {
                // HTTP/2 has no reason phrase, and Chromium's HAR writes none.
                "" if head.version == head::HTTP2 => "",
                "" => http::StatusCode::from_u16(head.status)
                    .ok()
                    .and_then(|status| status.canonical_reason())
                    .unwrap_or_default(),
                reason => reason,
            };
            Some(json::Response {
                status: head.status,
                status_text,
                version: head.version,
                headers: head.headers.all(),
                content,
                redirect_url: head.headers.first("location").unwrap_or_default(),
                body_size: response.body.total,
            })
        }
        None => None,
    };
    if let Some(problem) = &request_head.problem {
        notes.push(problem);
    }
    if let Some(problem) = response_head
        .as_ref()
        .and_then(|(_, head)| head.problem.as_ref())
    {
        notes.push(problem);
    }
    if let Some(error) = error {
        notes.push(error);
    }
    let entry = json::Entry {
        started: timing.started,
        time,
        request: har_request,
        response: har_response,
        timings: [send, wait, receive],
        comment: notes.text(),
        truncated,
        error,
        websocket,
        events,
    };
    entry.write(&mut json::Out(out));
    Outline {
        method: request_head.method,
        url: &request.url,
        status: response_head.as_ref().map_or(0, |(_, head)| head.status),
        failed: error.is_some(),
        time,
        request_bytes: request.body.total,
        response_bytes: response.map_or(0, |r| r.body.total),
    }
}

/// The entry's comment: notes joined with `; `, allocated only when there is one.
#[derive(Default)]
struct Notes(String);

impl Notes {
    fn push(&mut self, note: &str) {
        if !self.0.is_empty() {
            self.0.push_str("; ");
        }
        self.0.push_str(note);
    }

    fn text(&self) -> Option<&str> {
        (!self.0.is_empty()).then_some(self.0.as_str())
    }
}

fn starts_with_ignore_case(text: &[u8], prefix: &[u8]) -> bool {
    text.get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// `(scheme, authority, path?query)` of an absolute URL as the proxy writes them
/// (`http://host:port/path?query`), without a full parse: this runs for every exchange.
pub(crate) fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    Some((scheme, authority, if path.is_empty() { "/" } else { path }))
}

/// `host` or `host:port` (a scheme's default port left out, lower case), as the summary lists
/// hosts; empty for something that is not an absolute URL.
pub(crate) fn host_of(url: &str) -> Cow<'_, str> {
    let Some((scheme, authority, _)) = split_url(url) else {
        return Cow::Borrowed("");
    };
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let default_port = match scheme {
        "http" | "ws" => ":80",
        "https" | "wss" => ":443",
        _ => "",
    };
    let host = match authority.strip_suffix(default_port) {
        Some(host) if !default_port.is_empty() => host,
        _ => authority,
    };
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

/// A response body as a browser writes it.
struct Decoded<'a> {
    bytes: Cow<'a, [u8]>,
    /// A `Content-Encoding` other than `identity` was listed.
    encoded: bool,
    note: Option<String>,
    /// The note is about truncation.
    truncated: bool,
}

/// Decodes the response content (codings come off in reverse order); the note says when
/// decoding was partial or impossible, or the body was cut at `--max-body`.
fn decode_content<'a>(
    headers: &head::Fields<'_, '_>,
    body: &'a CapturedBody,
    max_body: usize,
) -> Decoded<'a> {
    let mut codings: Vec<Cow<'_, str>> = Vec::new();
    for value in headers.values("content-encoding") {
        match std::str::from_utf8(value) {
            Ok(text) => codings.extend(
                text.split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("identity"))
                    .map(Cow::Borrowed),
            ),
            Err(_) => codings.push(String::from_utf8_lossy(value).into_owned().into()),
        }
    }
    let mut decoded = Decoded {
        bytes: Cow::Borrowed(&body.bytes),
        encoded: !codings.is_empty(),
        note: None,
        truncated: false,
    };
    for coding in codings.iter().rev() {
        let coding = coding.to_ascii_lowercase();
        match decode(&coding, &decoded.bytes, max_body) {
            Ok((bytes, complete)) => {
                if !complete && !body.truncated {
                    decoded.note = Some(format!(
                        "response body truncated: decoded {} bytes (--max-body)",
                        bytes.len()
                    ));
                    decoded.truncated = true;
                }
                decoded.bytes = Cow::Owned(bytes);
            }
            Err(reason) => {
                decoded.note = Some(format!(
                    "response body recorded as sent ({coding}): {reason}"
                ));
                decoded.truncated = false;
                break;
            }
        }
    }
    if body.truncated {
        decoded.note = Some(format!(
            "response body truncated: recorded {} of {} bytes (--max-body)",
            body.bytes.len(),
            body.total
        ));
        decoded.truncated = true;
    }
    decoded
}

/// Decodes one content coding; returns the decoded bytes and whether the stream ended
/// cleanly within `limit`. A cut-off stream (a truncated capture) decodes as far as it goes.
fn decode(encoding: &str, bytes: &[u8], limit: usize) -> Result<(Vec<u8>, bool), String> {
    let reader: Box<dyn Read + '_> = match encoding {
        "gzip" | "x-gzip" => Box::new(flate2::read::MultiGzDecoder::new(bytes)),
        // `deflate` is zlib-wrapped by the standard, raw in some servers.
        "deflate" if bytes.first().is_some_and(|b| b & 0x0f == 8) => {
            Box::new(flate2::read::ZlibDecoder::new(bytes))
        }
        "deflate" => Box::new(flate2::read::DeflateDecoder::new(bytes)),
        "br" => Box::new(brotli::Decompressor::new(bytes, 4096)),
        other => return Err(format!("unknown content coding {other:?}")),
    };
    let mut out = Vec::new();
    let mut limited = reader.take(limit as u64 + 1);
    let mut buffer = [0u8; 8192];
    let complete = loop {
        match limited.read(&mut buffer) {
            Ok(0) => break true,
            Ok(n) => out.extend_from_slice(&buffer[..n]),
            Err(err) if out.is_empty() => return Err(err.to_string()),
            Err(_) => break false,
        }
    };
    if out.len() > limit {
        out.truncate(limit);
        return Ok((out, false));
    }
    Ok((out, complete))
}
