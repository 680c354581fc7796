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

pub mod read;
pub mod write;

use serde::{Deserialize, Deserializer, Serialize};

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

fn minus_one() -> i64 {
    -1
}

fn minus_one_f() -> f64 {
    -1.0
}

/// `null` reads as the default, anything else as `T`.
fn or_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A loosely typed scalar, as some tools write numbers as strings and strings as numbers.
/// Read as `#[serde(untagged)]` read it (a boolean, else an `i64`, else an `f64`, else a
/// string), but straight from the value: the untagged enum copied every string (every body)
/// into a buffer and tried each variant in turn, each failure formatting an error that
/// quoted the whole string.
enum Loose {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

/// What [`LooseVisitor`] read: a scalar, or a list or an object no variant takes.
enum Read {
    Scalar(Loose),
    NoVariant,
}

struct LooseVisitor;

impl<'de> serde::de::Visitor<'de> for LooseVisitor {
    type Value = Read;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string, a number or a boolean")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Read, E> {
        Ok(Read::Scalar(Loose::Bool(value)))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Read, E> {
        Ok(Read::Scalar(Loose::Int(value)))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Read, E> {
        Ok(Read::Scalar(
            i64::try_from(value).map_or(Loose::Float(value as f64), Loose::Int),
        ))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Read, E> {
        Ok(Read::Scalar(Loose::Float(value)))
    }

    fn visit_str<E>(self, value: &str) -> Result<Read, E> {
        Ok(Read::Scalar(Loose::Text(value.to_owned())))
    }

    fn visit_string<E>(self, value: String) -> Result<Read, E> {
        Ok(Read::Scalar(Loose::Text(value)))
    }

    fn visit_unit<E>(self) -> Result<Read, E> {
        Ok(Read::NoVariant)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Read, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Read::NoVariant)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Read, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(Read::NoVariant)
    }
}

impl<'de> Deserialize<'de> for Loose {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        // A list or an object is read to its end before it is refused, as the untagged enum
        // did, so that the error names the same place.
        match deserializer.deserialize_any(LooseVisitor)? {
            Read::Scalar(loose) => Ok(loose),
            Read::NoVariant => Err(D::Error::custom(
                "data did not match any variant of untagged enum Loose",
            )),
        }
    }
}

fn loose<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Loose>, D::Error> {
    Option::<Loose>::deserialize(deserializer)
}

fn string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(opt_string(deserializer)?.unwrap_or_default())
}

fn opt_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match loose(deserializer)? {
        None => None,
        Some(Loose::Text(text)) => Some(text),
        Some(Loose::Int(n)) => Some(n.to_string()),
        Some(Loose::Float(n)) => Some(n.to_string()),
        Some(Loose::Bool(b)) => Some(b.to_string()),
    })
}

fn opt_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    use serde::de::Error as _;
    Ok(match loose(deserializer)? {
        None => None,
        Some(Loose::Bool(b)) => Some(b),
        Some(Loose::Int(n)) => Some(n != 0),
        Some(Loose::Float(n)) => Some(n != 0.0),
        Some(Loose::Text(text)) => match text.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" | "" => Some(false),
            _ => {
                return Err(D::Error::custom(format!(
                    "expected true or false, found {text:?}"
                )));
            }
        },
    })
}

fn opt_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    use serde::de::Error as _;
    Ok(match loose(deserializer)? {
        None => None,
        Some(Loose::Int(n)) => Some(n as f64),
        Some(Loose::Float(n)) => Some(n),
        Some(Loose::Bool(b)) => Some(f64::from(u8::from(b))),
        Some(Loose::Text(text)) if text.trim().is_empty() => None,
        Some(Loose::Text(text)) => Some(
            text.trim()
                .parse()
                .map_err(|_| D::Error::custom(format!("expected a number, found {text:?}")))?,
        ),
    })
}

fn number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(opt_number(deserializer)?.unwrap_or(-1.0))
}

fn opt_number_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    Ok(opt_number(deserializer)?.map(|n| n.round() as i64))
}

fn number_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    Ok(opt_number_i64(deserializer)?.unwrap_or(-1))
}

fn number_u16<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u16, D::Error> {
    use serde::de::Error as _;
    let n = opt_number(deserializer)?.unwrap_or(0.0);
    if (0.0..=f64::from(u16::MAX)).contains(&n) {
        Ok(n as u16)
    } else {
        Err(D::Error::custom(format!(
            "expected a number from 0 to 65535, found {n}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `Loose` was before it read values itself: the derived untagged enum (of the same
    /// name: its errors name it).
    mod derived {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        #[serde(untagged)]
        pub(super) enum Loose {
            Bool(bool),
            Int(i64),
            Float(f64),
            Text(String),
        }
    }
    use derived::Loose as Untagged;

    fn described(loose: Loose) -> Untagged {
        match loose {
            Loose::Bool(b) => Untagged::Bool(b),
            Loose::Int(n) => Untagged::Int(n),
            Loose::Float(n) => Untagged::Float(n),
            Loose::Text(text) => Untagged::Text(text),
        }
    }

    #[test]
    fn loose_values_read_as_the_untagged_enum_read_them_with_the_same_errors() {
        #[derive(Deserialize)]
        struct Now {
            #[serde(deserialize_with = "loose")]
            v: Option<Loose>,
        }
        #[derive(Deserialize)]
        struct Before {
            v: Option<Untagged>,
        }
        for value in [
            "true",
            "0",
            "-7",
            "42",
            "9223372036854775807",
            "9223372036854775808",
            "18446744073709551615",
            "1.5",
            "-0.0",
            "1e300",
            r#""text""#,
            r#""""#,
            r#""a \"quoted\" \u00e9 line\n""#,
            "null",
            "[]",
            "[1, [2, {}]]",
            "{}",
            r#"{"a": [1, 2], "b": {"c": null}}"#,
        ] {
            let text = format!("{{\n  \"v\": {value} , \"w\": 1}}");
            let now = serde_json::from_str::<Now>(&text).map(|n| n.v.map(described));
            let before = serde_json::from_str::<Before>(&text).map(|b| b.v);
            match (now, before) {
                (Ok(now), Ok(before)) => assert_eq!(now, before, "{value}"),
                (Err(now), Err(before)) => assert_eq!(now.to_string(), before.to_string()),
                (now, before) => panic!("{value}: {now:?} vs {before:?}"),
            }
        }
    }
}
