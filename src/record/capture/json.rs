//! The HAR entry as serde views over borrowed data: the parsed heads, the captured bodies,
//! the URL. Serialized with `serde_json` straight into the capture's buffer, they write the
//! same fields, in the same order and with the same values, as [`crate::har::Entry`] does,
//! without building one. Header names, values, cookies and parameters are never copied;
//! bytes that are not UTF-8 are written lossily (U+FFFD), as the owned entry did.

use std::time::SystemTime;

use httparse::Header;
use serde::ser::{Serialize, SerializeSeq, SerializeStruct, Serializer};

use crate::har::WebSocketMessage;

/// Bytes written as a JSON string; invalid UTF-8 replaced.
pub(super) struct Lossy<'a>(pub(super) &'a [u8]);

impl Serialize for Lossy<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(self.0) {
            Ok(text) => serializer.serialize_str(text),
            Err(_) => serializer.serialize_str(&String::from_utf8_lossy(self.0)),
        }
    }
}

/// A body as HAR writes it: text when it is UTF-8, else base64 (with `encoding`).
pub(super) enum BodyText<'a> {
    Text(&'a str),
    Base64(String),
}

impl<'a> BodyText<'a> {
    pub(super) fn of(bytes: &'a [u8]) -> Self {
        use base64::Engine as _;
        match std::str::from_utf8(bytes) {
            Ok(text) => BodyText::Text(text),
            Err(_) => BodyText::Base64(base64::engine::general_purpose::STANDARD.encode(bytes)),
        }
    }

    fn text(&self) -> &str {
        match self {
            BodyText::Text(text) => text,
            BodyText::Base64(text) => text,
        }
    }

    fn encoding(&self) -> Option<&'static str> {
        match self {
            BodyText::Text(_) => None,
            BodyText::Base64(_) => Some("base64"),
        }
    }
}

pub(super) struct Entry<'a> {
    pub(super) started: SystemTime,
    pub(super) time: f64,
    pub(super) request: Request<'a>,
    pub(super) response: Option<Response<'a>>,
    /// send, wait, receive in milliseconds.
    pub(super) timings: [f64; 3],
    pub(super) comment: Option<&'a str>,
    pub(super) truncated: bool,
    pub(super) error: Option<&'a str>,
    pub(super) websocket: Option<&'a [WebSocketMessage]>,
}

impl Serialize for Entry<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut entry = serializer.serialize_struct("Entry", 12)?;
        entry.serialize_field(
            "startedDateTime",
            &Rfc3339(humantime::format_rfc3339_millis(self.started)),
        )?;
        entry.serialize_field("time", &self.time)?;
        entry.serialize_field("request", &self.request)?;
        match &self.response {
            Some(response) => entry.serialize_field("response", response)?,
            None => entry.serialize_field("response", &NoResponse)?,
        }
        entry.serialize_field("cache", &Empty)?;
        entry.serialize_field("timings", &Timings(self.timings))?;
        if let Some(comment) = self.comment {
            entry.serialize_field("comment", comment)?;
        }
        if self.truncated {
            entry.serialize_field("_truncated", &true)?;
        }
        if let Some(error) = self.error {
            entry.serialize_field("_error", error)?;
        }
        if let Some(messages) = self.websocket {
            entry.serialize_field("_resourceType", "websocket")?;
            if !messages.is_empty() {
                entry.serialize_field("_webSocketMessages", messages)?;
            }
        }
        entry.end()
    }
}

struct Rfc3339(humantime::Rfc3339Timestamp);

impl Serialize for Rfc3339 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// `{}`: a proxy never sees the browser's cache.
struct Empty;

impl Serialize for Empty {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_struct("Cache", 0)?.end()
    }
}

struct Timings([f64; 3]);

impl Serialize for Timings {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let [send, wait, receive] = self.0;
        let mut timings = serializer.serialize_struct("Timings", 7)?;
        timings.serialize_field("blocked", &-1.0)?;
        timings.serialize_field("dns", &-1.0)?;
        timings.serialize_field("connect", &-1.0)?;
        timings.serialize_field("send", &send)?;
        timings.serialize_field("wait", &wait)?;
        timings.serialize_field("receive", &receive)?;
        timings.serialize_field("ssl", &-1.0)?;
        timings.end()
    }
}

pub(super) struct Request<'a> {
    pub(super) method: &'a str,
    pub(super) url: &'a str,
    pub(super) version: &'a str,
    pub(super) headers: &'a [Header<'a>],
    pub(super) post_data: Option<PostData<'a>>,
    pub(super) body_size: u64,
}

impl Serialize for Request<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut request = serializer.serialize_struct("Request", 9)?;
        request.serialize_field("method", self.method)?;
        request.serialize_field("url", self.url)?;
        request.serialize_field("httpVersion", self.version)?;
        request.serialize_field("cookies", &RequestCookies(self.headers))?;
        request.serialize_field("headers", &Headers(self.headers))?;
        request.serialize_field("queryString", &QueryString(self.url))?;
        if let Some(post_data) = &self.post_data {
            request.serialize_field("postData", post_data)?;
        }
        request.serialize_field("headersSize", &-1)?;
        request.serialize_field("bodySize", &self.body_size)?;
        request.end()
    }
}

/// `{"name": ..., "value": ...}`: a header, a query parameter, a request cookie, a form field.
struct Pair<N, V>(N, V);

impl<N: Serialize, V: Serialize> Serialize for Pair<N, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut pair = serializer.serialize_struct("Header", 2)?;
        pair.serialize_field("name", &self.0)?;
        pair.serialize_field("value", &self.1)?;
        pair.end()
    }
}

struct Headers<'a>(&'a [Header<'a>]);

impl Serialize for Headers<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|h| Pair(h.name, Lossy(h.value))))
    }
}

/// The `Cookie` headers' `name=value` pairs.
struct RequestCookies<'a>(&'a [Header<'a>]);

impl Serialize for RequestCookies<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut cookies = serializer.serialize_seq(None)?;
        for header in self.0 {
            if !header.name.eq_ignore_ascii_case("cookie") {
                continue;
            }
            let text = String::from_utf8_lossy(header.value);
            for pair in text.split(';') {
                if let Some((name, value)) = pair.split_once('=') {
                    cookies.serialize_element(&Pair(name.trim(), value.trim()))?;
                }
            }
        }
        cookies.end()
    }
}

/// The URL's query, percent-decoded (the fragment left out).
struct QueryString<'a>(&'a str);

impl Serialize for QueryString<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let query = self
            .0
            .split_once('?')
            .map(|(_, query)| query.split_once('#').map_or(query, |(query, _)| query));
        let mut params = serializer.serialize_seq(None)?;
        if let Some(query) = query {
            for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
                params.serialize_element(&Pair(name, value))?;
            }
        }
        params.end()
    }
}

pub(super) struct PostData<'a> {
    pub(super) mime_type: &'a [u8],
    pub(super) text: BodyText<'a>,
    /// An `application/x-www-form-urlencoded` body: its fields go to `params`.
    pub(super) form: bool,
}

impl Serialize for PostData<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut post = serializer.serialize_struct("PostData", 4)?;
        post.serialize_field("mimeType", &Lossy(self.mime_type))?;
        post.serialize_field("text", self.text.text())?;
        if let Some(encoding) = self.text.encoding() {
            post.serialize_field("encoding", encoding)?;
        }
        if let (true, BodyText::Text(text)) = (self.form, &self.text) {
            let mut fields = url::form_urlencoded::parse(text.as_bytes()).peekable();
            if fields.peek().is_some() {
                post.serialize_field("params", &FormFields(text))?;
            }
        }
        post.end()
    }
}

struct FormFields<'a>(&'a str);

impl Serialize for FormFields<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer
            .collect_seq(url::form_urlencoded::parse(self.0.as_bytes()).map(|(n, v)| Pair(n, v)))
    }
}

pub(super) struct Response<'a> {
    pub(super) status: u16,
    pub(super) status_text: &'a str,
    pub(super) version: &'a str,
    pub(super) headers: &'a [Header<'a>],
    pub(super) content: Content<'a>,
    pub(super) redirect_url: &'a [u8],
    pub(super) body_size: u64,
}

impl Serialize for Response<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut response = serializer.serialize_struct("Response", 9)?;
        response.serialize_field("status", &self.status)?;
        response.serialize_field("statusText", self.status_text)?;
        response.serialize_field("httpVersion", self.version)?;
        response.serialize_field("cookies", &ResponseCookies(self.headers))?;
        response.serialize_field("headers", &Headers(self.headers))?;
        response.serialize_field("content", &self.content)?;
        response.serialize_field("redirectURL", &Lossy(self.redirect_url))?;
        response.serialize_field("headersSize", &-1)?;
        response.serialize_field("bodySize", &self.body_size)?;
        response.end()
    }
}

/// What `har::Response::default()` writes: no response head came.
struct NoResponse;

impl Serialize for NoResponse {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut response = serializer.serialize_struct("Response", 9)?;
        response.serialize_field("status", &0)?;
        response.serialize_field("statusText", "")?;
        response.serialize_field("httpVersion", "")?;
        response.serialize_field("cookies", &[(); 0])?;
        response.serialize_field("headers", &[(); 0])?;
        response.serialize_field("content", &NoContent)?;
        response.serialize_field("redirectURL", "")?;
        response.serialize_field("headersSize", &-1)?;
        response.serialize_field("bodySize", &-1)?;
        response.end()
    }
}

struct NoContent;

impl Serialize for NoContent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut content = serializer.serialize_struct("Content", 2)?;
        content.serialize_field("size", &0)?;
        content.serialize_field("mimeType", "")?;
        content.end()
    }
}

/// The `Set-Cookie` headers, each read as `name=value; Path=/; Domain=x; Expires=...;
/// HttpOnly; Secure`.
struct ResponseCookies<'a>(&'a [Header<'a>]);

impl Serialize for ResponseCookies<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut cookies = serializer.serialize_seq(None)?;
        for header in self.0 {
            if !header.name.eq_ignore_ascii_case("set-cookie") {
                continue;
            }
            let text = String::from_utf8_lossy(header.value);
            if let Some(cookie) = SetCookie::parse(&text) {
                cookies.serialize_element(&cookie)?;
            }
        }
        cookies.end()
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct SetCookie<'a> {
    pub(super) name: &'a str,
    pub(super) value: &'a str,
    pub(super) path: Option<&'a str>,
    pub(super) domain: Option<&'a str>,
    pub(super) expires: Option<&'a str>,
    pub(super) http_only: bool,
    pub(super) secure: bool,
}

impl<'a> SetCookie<'a> {
    pub(super) fn parse(text: &'a str) -> Option<Self> {
        let mut parts = text.split(';');
        let (name, value) = parts.next()?.split_once('=')?;
        let mut cookie = SetCookie {
            name: name.trim(),
            value: value.trim(),
            ..SetCookie::default()
        };
        for attribute in parts {
            let (key, value) = match attribute.split_once('=') {
                Some((key, value)) => (key.trim(), Some(value.trim())),
                None => (attribute.trim(), None),
            };
            if key.eq_ignore_ascii_case("path") {
                cookie.path = value;
            } else if key.eq_ignore_ascii_case("domain") {
                cookie.domain = value;
            } else if key.eq_ignore_ascii_case("expires") {
                cookie.expires = value;
            } else if key.eq_ignore_ascii_case("httponly") {
                cookie.http_only = true;
            } else if key.eq_ignore_ascii_case("secure") {
                cookie.secure = true;
            }
        }
        Some(cookie)
    }
}

impl Serialize for SetCookie<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut cookie = serializer.serialize_struct("Cookie", 7)?;
        cookie.serialize_field("name", self.name)?;
        cookie.serialize_field("value", self.value)?;
        if let Some(path) = self.path {
            cookie.serialize_field("path", path)?;
        }
        if let Some(domain) = self.domain {
            cookie.serialize_field("domain", domain)?;
        }
        if let Some(expires) = self.expires {
            cookie.serialize_field("expires", expires)?;
        }
        if self.http_only {
            cookie.serialize_field("httpOnly", &true)?;
        }
        if self.secure {
            cookie.serialize_field("secure", &true)?;
        }
        cookie.end()
    }
}

pub(super) struct Content<'a> {
    /// The decoded body's length.
    pub(super) size: usize,
    pub(super) compression: Option<i64>,
    pub(super) mime_type: &'a [u8],
    pub(super) text: Option<BodyText<'a>>,
}

impl Serialize for Content<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut content = serializer.serialize_struct("Content", 5)?;
        content.serialize_field("size", &self.size)?;
        if let Some(compression) = self.compression {
            content.serialize_field("compression", &compression)?;
        }
        content.serialize_field("mimeType", &Lossy(self.mime_type))?;
        if let Some(text) = &self.text {
            content.serialize_field("text", text.text())?;
            if let Some(encoding) = text.encoding() {
                content.serialize_field("encoding", encoding)?;
            }
        }
        content.end()
    }
}
