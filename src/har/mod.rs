//! HAR 1.2: the serde types of a capture, a tolerant reader and a crash-safe writer.
//!
//! Owns the file format only; what goes into an entry is `record`'s business and what an entry
//! means is `convert`'s.
//!
//! The types follow <http://www.softwareishard.com/blog/har-12-spec/>. They are lenient when
//! read (a missing array is empty, a missing number is -1, `null` is the default, a number
//! written as a string is a number) because browsers, mitmproxy, Charles and Fiddler each
//! bend the specification a little; see [`read`]. Custom fields that chorus writes or reads
//! start with `_`, as the specification asks: `_truncated` and `_error` on an entry,
//! `_webSocketMessages` (Chromium's form), `_tunnelledHosts` on the log.

mod loose;
pub mod read;
mod repair;
mod scan;
pub mod write;

use serde::{Deserialize, Serialize};

use loose::{
    minus_one, minus_one_f, number, number_i64, number_u16, opt_bool, opt_number, opt_number_i64,
    opt_string, or_default, string,
};

/// A whole HAR file: `{"log": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Har {
    pub log: Log,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Log {
    #[serde(default = "default_version", deserialize_with = "string")]
    pub version: String,
    #[serde(default, deserialize_with = "or_default")]
    pub creator: Creator,
    #[serde(
        default,
        deserialize_with = "or_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub browser: Option<Creator>,
    #[serde(default, deserialize_with = "or_default")]
    pub pages: Vec<Page>,
    #[serde(default, deserialize_with = "or_default")]
    pub entries: Vec<Entry>,
    #[serde(
        default,
        deserialize_with = "or_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub comment: Option<String>,
    /// Hosts (`host:port`) whose CONNECT tunnels passed through a forward-mode recorder without
    /// being recorded (no `--mitm`).
    #[serde(
        rename = "_tunnelledHosts",
        default,
        deserialize_with = "or_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tunnelled_hosts: Vec<String>,
}

fn default_version() -> String {
    "1.2".to_owned()
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Creator {
    #[serde(default, deserialize_with = "string")]
    pub name: String,
    #[serde(default, deserialize_with = "string")]
    pub version: String,
    #[serde(
        default,
        deserialize_with = "or_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    #[serde(default, deserialize_with = "string")]
    pub started_date_time: String,
    #[serde(default, deserialize_with = "string")]
    pub id: String,
    #[serde(default, deserialize_with = "string")]
    pub title: String,
    #[serde(default, deserialize_with = "or_default")]
    pub page_timings: PageTimings,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageTimings {
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub on_content_load: Option<f64>,
    #[serde(
        default,
        deserialize_with = "opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub on_load: Option<f64>,
}

/// One exchange: a request and its response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    #[serde(
        default,
        deserialize_with = "or_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub pageref: Option<String>,
    /// ISO 8601 with milliseconds, e.g. `2026-11-25T06:31:14.123Z`.
    #[serde(default, deserialize_with = "string")]
    pub started_date_time: String,
    /// Total time in milliseconds (the sum of the non-negative timings).
    #[serde(default, deserialize_with = "number")]
    pub time: f64,
    pub request: Request,
    #[serde(default, deserialize_with = "or_default")]
    pub response: Response,
    #[serde(default, deserialize_with = "or_default")]
    pub cache: Cache,
    #[serde(default, deserialize_with = "or_default")]
    pub timings: Timings,
    #[serde(
        rename = "serverIPAddress",
        default,
        deserialize_with = "or_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub server_ip_address: Option<String>,
    #[serde(
        default,
        deserialize_with = "or_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub connection: Option<String>,
    #[serde(
        default,
        deserialize_with = "or_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub comment: Option<String>,
    /// A body (request or response) was larger than `--max-body` and is recorded truncated.
    #[serde(
        rename = "_truncated",
        default,
        deserialize_with = "or_default",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub truncated: bool,
    /// What went wrong, when the exchange did not complete (Chromium writes the same field).
    #[serde(
        rename = "_error",
        default,
        deserialize_with = "or_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub error: Option<String>,
    /// Chromium's `_resourceType` (`document`, `xhr`, `fetch`, `websocket`, ...), when known.
    #[serde(
        rename = "_resourceType",
        default,
        deserialize_with = "or_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub resource_type: Option<String>,
    /// WebSocket messages, in Chromium's form.
    #[serde(
        rename = "_webSocketMessages",
        default,
        deserialize_with = "or_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub web_socket_messages: Vec<WebSocketMessage>,
    /// Server-sent events, in Chromium's form.
    #[serde(
        rename = "_eventSourceMessages",
        default,
        deserialize_with = "or_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub event_source_messages: Vec<EventSourceMessage>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    #[serde(deserialize_with = "string")]
    pub method: String,
    #[serde(deserialize_with = "string")]
    pub url: String,
    #[serde(default, deserialize_with = "string")]
    pub http_version: String,
    #[serde(default, deserialize_with = "or_default")]
    pub cookies: Vec<Cookie>,
    #[serde(default, deserialize_with = "or_default")]
    pub headers: Vec<Header>,
    #[serde(default, deserialize_with = "or_default")]
    pub query_string: Vec<QueryParam>,
    #[serde(
        default,
        deserialize_with = "or_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub post_data: Option<PostData>,
    #[serde(default = "minus_one", deserialize_with = "number_i64")]
    pub headers_size: i64,
    #[serde(default = "minus_one", deserialize_with = "number_i64")]
    pub body_size: i64,
    #[serde(
        default,
        deserialize_with = "or_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    #[serde(default, deserialize_with = "number_u16")]
    pub status: u16,
    #[serde(default, deserialize_with = "string")]
    pub status_text: String,
    #[serde(default, deserialize_with = "string")]
    pub http_version: String,
    #[serde(default, deserialize_with = "or_default")]
    pub cookies: Vec<Cookie>,
    #[serde(default, deserialize_with = "or_default")]
    pub headers: Vec<Header>,
    #[serde(default, deserialize_with = "or_default")]
    pub content: Content,
    #[serde(rename = "redirectURL", default, deserialize_with = "string")]
    pub redirect_url: String,
    #[serde(default = "minus_one", deserialize_with = "number_i64")]
    pub headers_size: i64,
    #[serde(default = "minus_one", deserialize_with = "number_i64")]
    pub body_size: i64,
    #[serde(
        default,
        deserialize_with = "or_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub comment: Option<String>,
}

impl Default for Response {
    fn default() -> Self {
        Self {
            status: 0,
            status_text: String::new(),
            http_version: String::new(),
            cookies: Vec::new(),
            headers: Vec::new(),
            content: Content::default(),
            redirect_url: String::new(),
            headers_size: -1,
            body_size: -1,
            comment: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cookie {
    #[serde(default, deserialize_with = "string")]
    pub name: String,
    #[serde(default, deserialize_with = "string")]
    pub value: String,
    #[serde(
        default,
        deserialize_with = "or_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub path: Option<String>,
    #[serde(
        default,
        deserialize_with = "or_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub domain: Option<String>,
    #[serde(
        default,
        deserialize_with = "opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires: Option<String>,
    #[serde(
        default,
        deserialize_with = "opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub http_only: Option<bool>,
    #[serde(
        default,
        deserialize_with = "opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub secure: Option<bool>,
    #[serde(
        default,
        deserialize_with = "or_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub comment: Option<String>,
}

/// A header as written on the wire; names keep their case, repeated headers repeat.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    #[serde(default, deserialize_with = "string")]
    pub name: String,
    #[serde(default, deserialize_with = "string")]
    pub value: String,
    #[serde(
        default,
        deserialize_with = "or_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub comment: Option<String>,
}

impl Header {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
            comment: None,
        }
    }
}

/// A query-string parameter, percent-decoded.
pub type QueryParam = Header;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostData {
    #[serde(default, deserialize_with = "string")]
    pub mime_type: String,
    /// The body as text. A body that is not UTF-8 is base64, with `encoding` = `base64`
    /// (an extension browsers and mitmproxy also use).
    #[serde(default, deserialize_with = "string")]
    pub text: String,
    #[serde(
        default,
        deserialize_with = "or_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub encoding: Option<String>,
    /// Form fields of an `application/x-www-form-urlencoded` body, percent-decoded.
    #[serde(
        default,
        deserialize_with = "or_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub params: Vec<Param>,
    #[serde(
        default,
        deserialize_with = "or_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Param {
    #[serde(default, deserialize_with = "string")]
    pub name: String,
    #[serde(
        default,
        deserialize_with = "opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub value: Option<String>,
    #[serde(
        default,
        deserialize_with = "or_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub file_name: Option<String>,
    #[serde(
        default,
        deserialize_with = "or_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub content_type: Option<String>,
}

/// A response body, decoded as browsers write it (no `Content-Encoding` left).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Content {
    /// Length of the decoded body in bytes.
    #[serde(default, deserialize_with = "number_i64")]
    pub size: i64,
    #[serde(
        default,
        deserialize_with = "opt_number_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub compression: Option<i64>,
    #[serde(default, deserialize_with = "string")]
    pub mime_type: String,
    #[serde(
        default,
        deserialize_with = "or_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub text: Option<String>,
    /// `base64` when `text` is base64 (a binary body).
    #[serde(
        default,
        deserialize_with = "or_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub encoding: Option<String>,
    #[serde(
        default,
        deserialize_with = "or_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub comment: Option<String>,
}

impl Content {
    /// The body's bytes: `text` decoded from base64 when `encoding` says so.
    pub fn bytes(&self) -> Option<Vec<u8>> {
        decode_text(self.text.as_deref()?, self.encoding.as_deref())
    }
}

impl PostData {
    /// The body's bytes: `text` decoded from base64 when `encoding` says so.
    pub fn bytes(&self) -> Option<Vec<u8>> {
        decode_text(&self.text, self.encoding.as_deref())
    }
}

fn decode_text(text: &str, encoding: Option<&str>) -> Option<Vec<u8>> {
    use base64::Engine as _;
    match encoding {
        Some(encoding) if encoding.eq_ignore_ascii_case("base64") => {
            base64::engine::general_purpose::STANDARD.decode(text).ok()
        }
        _ => Some(text.as_bytes().to_vec()),
    }
}

/// Phases of an exchange in milliseconds; -1 when a phase does not apply (a reused
/// connection has no `connect`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    #[serde(default = "minus_one_f", deserialize_with = "number")]
    pub blocked: f64,
    #[serde(default = "minus_one_f", deserialize_with = "number")]
    pub dns: f64,
    #[serde(default = "minus_one_f", deserialize_with = "number")]
    pub connect: f64,
    #[serde(default, deserialize_with = "number")]
    pub send: f64,
    #[serde(default, deserialize_with = "number")]
    pub wait: f64,
    #[serde(default, deserialize_with = "number")]
    pub receive: f64,
    #[serde(default = "minus_one_f", deserialize_with = "number")]
    pub ssl: f64,
    #[serde(
        default,
        deserialize_with = "or_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub comment: Option<String>,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            blocked: -1.0,
            dns: -1.0,
            connect: -1.0,
            send: 0.0,
            wait: 0.0,
            receive: 0.0,
            ssl: -1.0,
            comment: None,
        }
    }
}

impl Timings {
    /// The entry's `time`: the sum of the phases that apply (`ssl` is part of `connect`).
    pub fn total(&self) -> f64 {
        [
            self.blocked,
            self.dns,
            self.connect,
            self.send,
            self.wait,
            self.receive,
        ]
        .iter()
        .filter(|t| **t >= 0.0)
        .sum()
    }
}

/// The browser cache's part in an exchange; a proxy never sees it, so chorus writes `{}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cache {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_request: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_request: Option<serde_json::Value>,
}

/// One WebSocket message as Chromium's HAR export writes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WebSocketMessage {
    /// `send` (browser to server) or `receive`.
    #[serde(rename = "type", default, deserialize_with = "string")]
    pub kind: String,
    /// Seconds since the Unix epoch, with fractions.
    #[serde(default, deserialize_with = "number")]
    pub time: f64,
    /// 1 text, 2 binary, 8 close, 9 ping, 10 pong.
    #[serde(default, deserialize_with = "number_u16")]
    pub opcode: u16,
    /// Text as is; binary payloads base64.
    #[serde(default, deserialize_with = "string")]
    pub data: String,
}

/// One server-sent event as Chromium's HAR export writes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventSourceMessage {
    /// Seconds since the Unix epoch, with fractions.
    #[serde(default, deserialize_with = "number")]
    pub time: f64,
    /// The event's name (`message` when the stream named none).
    #[serde(rename = "eventName", default, deserialize_with = "string")]
    pub event_name: String,
    #[serde(rename = "eventId", default, deserialize_with = "string")]
    pub event_id: String,
    #[serde(default, deserialize_with = "string")]
    pub data: String,
}
