//! The HAR entry written by hand as JSON, from views over borrowed data: the parsed heads,
//! the captured bodies, the URL. It writes the same fields, in the same order and with the
//! same values and number formats, as `serde_json` writes [`crate::har::Entry`] (a unit test
//! compares the bytes), without building one: header names, values, cookies and parameters
//! are never copied but into the output, and keys are literals instead of escaped strings
//! (with `serde_json` the escaping of keys and short values was most of the capture's time).
//! Bytes that are not UTF-8 are written lossily (U+FFFD), as the owned entry did.

use std::borrow::Cow;
use std::time::SystemTime;

use httparse::Header;

use crate::har::{EventSourceMessage, WebSocketMessage};

/// The output buffer, with JSON's value writers.
pub(super) struct Out<'o>(pub(super) &'o mut Vec<u8>);

impl Out<'_> {
    fn raw(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    /// A JSON string from UTF-8 text, escaped as `serde_json` escapes it.
    fn str(&mut self, text: &str) {
        self.0.push(b'"');
        escape_into(self.0, text.as_bytes());
        self.0.push(b'"');
    }

    /// A JSON string from bytes: as they are when UTF-8, else with U+FFFD for what is not.
    fn lossy(&mut self, bytes: &[u8]) {
        self.0.push(b'"');
        let start = self.0.len();
        if !escape_into(self.0, bytes) && std::str::from_utf8(bytes).is_err() {
            self.0.truncate(start);
            escape_into(self.0, String::from_utf8_lossy(bytes).as_bytes());
        }
        self.0.push(b'"');
    }

    fn uint(&mut self, n: u64) {
        crate::http1::push_decimal(self.0, n);
    }

    fn int(&mut self, n: i64) {
        if n < 0 {
            self.0.push(b'-');
        }
        self.uint(n.unsigned_abs());
    }

    /// A float as `serde_json` writes it (`3.0`, `4.75`), so entries read back equal.
    fn float(&mut self, n: f64) {
        if serde_json::to_writer(&mut *self.0, &n).is_err() {
            self.0.push(b'0');
        }
    }

    /// `"name":"value"` pairs in an object: `{"name":...,"value":...}`.
    fn pair(&mut self, first: bool, name: &str, value: &str) {
        self.raw(if first { b"{\"name\":" } else { b",{\"name\":" });
        self.str(name);
        self.raw(b",\"value\":");
        self.str(value);
        self.raw(b"}");
    }
}

/// What each byte becomes in a JSON string: 0 itself, else the letter after `\` (`u` for
/// `\u00XX`). The same table as `serde_json`'s.
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// Appends `bytes` escaped for the inside of a JSON string; `true` when they were all ASCII.
/// One pass counts what needs escaping (the compiler makes it vector code); most header
/// values need nothing and are copied whole. Otherwise a second pass writes without a branch
/// per `"` or `\\` (JSON bodies are full of quotes, and a mispredicted branch per quote was
/// the capture's largest cost); only control characters take a branch.
fn escape_into(out: &mut Vec<u8>, bytes: &[u8]) -> bool {
    let mut escapes = 0usize;
    let mut high = 0u8;
    // Counted in bytes per block: a wider counter per byte made the vector code slow.
    for block in bytes.chunks(128) {
        let mut in_block = 0u8;
        for &b in block {
            in_block += u8::from((b < 0x20) | (b == b'"') | (b == b'\\'));
            high |= b;
        }
        escapes += usize::from(in_block);
    }
    let ascii = high < 0x80;
    if escapes == 0 {
        out.extend_from_slice(bytes);
        return ascii;
    }
    let start = out.len();
    // Room for the worst case, `\u00XX` for each escape; cut back after.
    out.resize(start + bytes.len() + 5 * escapes, 0);
    let dst = &mut out[start..];
    let mut at = 0;
    for &b in bytes {
        if b < 0x20 {
            let escape = ESCAPE[usize::from(b)];
            if escape == b'u' {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                dst[at..at + 6].copy_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 0xf)],
                ]);
                at += 6;
            } else {
                dst[at..at + 2].copy_from_slice(&[b'\\', escape]);
                at += 2;
            }
        } else {
            // `\\` then the byte over it, or after it when it must be escaped.
            let quoted = usize::from((b == b'"') | (b == b'\\'));
            dst[at] = b'\\';
            dst[at + quoted] = b;
            at += 1 + quoted;
        }
    }
    out.truncate(start + at);
    ascii
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

    /// `"text":...` and, for base64, `,"encoding":"base64"`.
    fn write(&self, out: &mut Out<'_>) {
        out.raw(b"\"text\":");
        match self {
            BodyText::Text(text) => out.str(text),
            BodyText::Base64(text) => {
                out.str(text);
                out.raw(b",\"encoding\":\"base64\"");
            }
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
    pub(super) events: Option<&'a [EventSourceMessage]>,
}

impl Entry<'_> {
    pub(super) fn write(&self, out: &mut Out<'_>) {
        use std::io::Write as _;
        out.raw(b"{\"startedDateTime\":\"");
        // Digits, dashes, colons and a dot: nothing to escape.
        let _ = write!(out.0, "{}", humantime::format_rfc3339_millis(self.started));
        out.raw(b"\",\"time\":");
        out.float(self.time);
        out.raw(b",\"request\":");
        self.request.write(out);
        out.raw(b",\"response\":");
        match &self.response {
            Some(response) => response.write(out),
            None => out.raw(
                b"{\"status\":0,\"statusText\":\"\",\"httpVersion\":\"\",\"cookies\":[],\
                  \"headers\":[],\"content\":{\"size\":0,\"mimeType\":\"\"},\"redirectURL\":\"\",\
                  \"headersSize\":-1,\"bodySize\":-1}",
            ),
        }
        let [send, wait, receive] = self.timings;
        out.raw(
            b",\"cache\":{},\"timings\":{\"blocked\":-1.0,\"dns\":-1.0,\"connect\":-1.0,\"send\":",
        );
        out.float(send);
        out.raw(b",\"wait\":");
        out.float(wait);
        out.raw(b",\"receive\":");
        out.float(receive);
        out.raw(b",\"ssl\":-1.0}");
        if let Some(comment) = self.comment {
            out.raw(b",\"comment\":");
            out.str(comment);
        }
        if self.truncated {
            out.raw(b",\"_truncated\":true");
        }
        if let Some(error) = self.error {
            out.raw(b",\"_error\":");
            out.str(error);
        }
        if let Some(messages) = self.websocket {
            out.raw(b",\"_resourceType\":\"websocket\"");
            if !messages.is_empty() {
                out.raw(b",\"_webSocketMessages\":");
                // Rare and already owned: serde does it.
                if serde_json::to_writer(&mut *out.0, messages).is_err() {
                    out.raw(b"[]");
                }
            }
        }
        if let Some(events) = self.events {
            out.raw(b",\"_resourceType\":\"eventsource\"");
            if !events.is_empty() {
                out.raw(b",\"_eventSourceMessages\":");
                if serde_json::to_writer(&mut *out.0, events).is_err() {
                    out.raw(b"[]");
                }
            }
        }
        out.raw(b"}");
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

impl Request<'_> {
    fn write(&self, out: &mut Out<'_>) {
        out.raw(b"{\"method\":");
        out.str(self.method);
        out.raw(b",\"url\":");
        out.str(self.url);
        out.raw(b",\"httpVersion\":");
        out.str(self.version);
        out.raw(b",\"cookies\":[");
        request_cookies(out, self.headers);
        out.raw(b"],\"headers\":[");
        headers(out, self.headers);
        out.raw(b"],\"queryString\":[");
        query_string(out, self.url);
        out.raw(b"]");
        if let Some(post_data) = &self.post_data {
            out.raw(b",\"postData\":");
            post_data.write(out);
        }
        out.raw(b",\"headersSize\":-1,\"bodySize\":");
        out.uint(self.body_size);
        out.raw(b"}");
    }
}

fn headers(out: &mut Out<'_>, headers: &[Header<'_>]) {
    for (i, header) in headers.iter().enumerate() {
        out.raw(if i == 0 {
            b"{\"name\":"
        } else {
            b",{\"name\":"
        });
        out.str(header.name);
        out.raw(b",\"value\":");
        out.lossy(header.value);
        out.raw(b"}");
    }
}

/// A header value as text, copied only when it is not UTF-8.
fn text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// The `Cookie` headers' `name=value` pairs.
fn request_cookies(out: &mut Out<'_>, headers: &[Header<'_>]) {
    let mut first = true;
    for header in headers {
        if !header.name.eq_ignore_ascii_case("cookie") {
            continue;
        }
        let text = text(header.value);
        for pair in text.split(';') {
            if let Some((name, value)) = pair.split_once('=') {
                out.pair(first, name.trim(), value.trim());
                first = false;
            }
        }
    }
}

/// The URL's query, percent-decoded (the fragment left out).
fn query_string(out: &mut Out<'_>, url: &str) {
    let Some((_, query)) = url.split_once('?') else {
        return;
    };
    let query = query.split_once('#').map_or(query, |(query, _)| query);
    form_fields(out, query);
}

fn form_fields(out: &mut Out<'_>, text: &str) {
    for (i, (name, value)) in form_pairs(text).enumerate() {
        out.pair(i == 0, &name, &value);
    }
}

/// `url::form_urlencoded::parse`, field for field, without its decoding passes over the
/// fields that have nothing to decode (no `%`, no `+`): most query parameters.
fn form_pairs(text: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    text.split('&')
        .filter(|field| !field.is_empty())
        .filter_map(|field| {
            if field.bytes().any(|b| b == b'%' || b == b'+') {
                url::form_urlencoded::parse(field.as_bytes()).next()
            } else {
                let (name, value) = field.split_once('=').unwrap_or((field, ""));
                Some((Cow::Borrowed(name), Cow::Borrowed(value)))
            }
        })
}

pub(super) struct PostData<'a> {
    pub(super) mime_type: &'a [u8],
    pub(super) text: BodyText<'a>,
    /// An `application/x-www-form-urlencoded` body: its fields go to `params`.
    pub(super) form: bool,
}

impl PostData<'_> {
    fn write(&self, out: &mut Out<'_>) {
        out.raw(b"{\"mimeType\":");
        out.lossy(self.mime_type);
        out.raw(b",");
        self.text.write(out);
        if let (true, BodyText::Text(text)) = (self.form, &self.text) {
            if form_pairs(text).next().is_some() {
                out.raw(b",\"params\":[");
                form_fields(out, text);
                out.raw(b"]");
            }
        }
        out.raw(b"}");
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

impl Response<'_> {
    fn write(&self, out: &mut Out<'_>) {
        out.raw(b"{\"status\":");
        out.uint(u64::from(self.status));
        out.raw(b",\"statusText\":");
        out.str(self.status_text);
        out.raw(b",\"httpVersion\":");
        out.str(self.version);
        out.raw(b",\"cookies\":[");
        response_cookies(out, self.headers);
        out.raw(b"],\"headers\":[");
        headers(out, self.headers);
        out.raw(b"],\"content\":");
        self.content.write(out);
        out.raw(b",\"redirectURL\":");
        out.lossy(self.redirect_url);
        out.raw(b",\"headersSize\":-1,\"bodySize\":");
        out.uint(self.body_size);
        out.raw(b"}");
    }
}

/// The `Set-Cookie` headers, one cookie each.
fn response_cookies(out: &mut Out<'_>, headers: &[Header<'_>]) {
    let mut first = true;
    for header in headers {
        if !header.name.eq_ignore_ascii_case("set-cookie") {
            continue;
        }
        let text = text(header.value);
        if let Some(cookie) = SetCookie::parse(&text) {
            if !first {
                out.raw(b",");
            }
            cookie.write(out);
            first = false;
        }
    }
}

/// One `Set-Cookie` value: `name=value; Path=/; Domain=x; Expires=...; HttpOnly; Secure`.
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

    fn write(&self, out: &mut Out<'_>) {
        out.raw(b"{\"name\":");
        out.str(self.name);
        out.raw(b",\"value\":");
        out.str(self.value);
        for (key, value) in [
            (&b",\"path\":"[..], self.path),
            (b",\"domain\":", self.domain),
            (b",\"expires\":", self.expires),
        ] {
            if let Some(value) = value {
                out.raw(key);
                out.str(value);
            }
        }
        if self.http_only {
            out.raw(b",\"httpOnly\":true");
        }
        if self.secure {
            out.raw(b",\"secure\":true");
        }
        out.raw(b"}");
    }
}

pub(super) struct Content<'a> {
    /// The decoded body's length.
    pub(super) size: usize,
    pub(super) compression: Option<i64>,
    pub(super) mime_type: &'a [u8],
    pub(super) text: Option<BodyText<'a>>,
}

impl Content<'_> {
    fn write(&self, out: &mut Out<'_>) {
        out.raw(b"{\"size\":");
        out.uint(self.size as u64);
        if let Some(compression) = self.compression {
            out.raw(b",\"compression\":");
            out.int(compression);
        }
        out.raw(b",\"mimeType\":");
        out.lossy(self.mime_type);
        if let Some(text) = &self.text {
            out.raw(b",");
            text.write(out);
        }
        out.raw(b"}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut samples: Vec<String> = vec![
            String::new(),
            "plain ascii header value, longer than one chunk of sixteen".to_owned(),
            "\"quoted\" \\ back\tslash\r\n\u{8}\u{c}".to_owned(),
            "caf\u{e9} \u{1f600} \u{7f}".to_owned(),
        ];
        samples.push((0u8..0x80).map(char::from).collect());
        samples.push("x\"".repeat(40));
        for sample in &samples {
            let mut out = Vec::new();
            Out(&mut out).str(sample);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(sample).unwrap()
            );
        }
        for sample in &samples {
            let mut out = Vec::new();
            Out(&mut out).lossy(sample.as_bytes());
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(sample).unwrap()
            );
        }
        let long = b"0123456789abcdef0123\xff456789abcdef\"0123456789\xe9";
        for bytes in [&b"a\xffb\""[..], long] {
            let mut out = Vec::new();
            Out(&mut out).lossy(bytes);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&String::from_utf8_lossy(bytes)).unwrap()
            );
        }
        for n in [0, 7, 10, 99, 1234567890, u64::MAX] {
            let mut out = Vec::new();
            Out(&mut out).uint(n);
            assert_eq!(out, n.to_string().as_bytes());
        }
        for text in [
            "",
            "a=1&b=two+words&c&=x&&d=%5B%5D&e=caf%C3%A9&f=%ff&g==h&h=a=b",
            "&&",
            "k",
        ] {
            let ours: Vec<_> = form_pairs(text).collect();
            let theirs: Vec<_> = url::form_urlencoded::parse(text.as_bytes()).collect();
            assert_eq!(ours, theirs, "{text}");
        }
        for n in [i64::MIN, -1, 0, 42] {
            let mut out = Vec::new();
            Out(&mut out).int(n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }
}
