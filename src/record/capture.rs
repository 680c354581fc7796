//! Turning one exchange (request and response parts, captured bodies, timings) into a
//! [`har::Entry`]: cookies, query string, form parameters, body decoding as browsers write it
//! (gzip, deflate, br), base64 for binary, truncation marks. Plain functions, no IO.

use std::io::Read;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use http::{HeaderMap, Method, StatusCode, Version, header};
use regex::Regex;

use crate::har::{self, Content, Cookie, Entry, Header, Param, PostData, Timings};

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

/// The request as it was forwarded to the application.
#[derive(Debug, Clone)]
pub struct RequestParts {
    pub method: Method,
    /// The absolute URL the application was asked for.
    pub url: String,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: CapturedBody,
}

/// The response as the application sent it (before any rewriting for the browser).
#[derive(Debug, Clone)]
pub struct ResponseParts {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
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

/// Builds the HAR entry of one exchange. `response` is `None` when no response head came;
/// `error` says what went wrong, if anything. Decoded bodies are capped at `max_body` too.
pub fn entry(
    request: &RequestParts,
    response: Option<&ResponseParts>,
    timing: &Timing,
    error: Option<String>,
    max_body: usize,
) -> Entry {
    let mut notes = Vec::new();
    let har_request = har::Request {
        method: request.method.as_str().to_owned(),
        url: request.url.clone(),
        http_version: version_text(request.version),
        cookies: request_cookies(&request.headers),
        headers: headers(&request.headers),
        query_string: query_string(&request.url),
        post_data: post_data(&request.headers, &request.body),
        headers_size: -1,
        body_size: request.body.total as i64,
        comment: None,
    };
    if request.body.truncated {
        notes.push(format!(
            "request body truncated: recorded {} of {} bytes (--max-body)",
            request.body.bytes.len(),
            request.body.total
        ));
    }
    let har_response = match response {
        Some(response) => {
            let (content, note) = content(&response.headers, &response.body, max_body);
            notes.extend(note);
            har::Response {
                status: response.status.as_u16(),
                status_text: response
                    .status
                    .canonical_reason()
                    .unwrap_or_default()
                    .to_owned(),
                http_version: version_text(response.version),
                cookies: response_cookies(&response.headers),
                headers: headers(&response.headers),
                content,
                redirect_url: header_text(&response.headers, header::LOCATION).unwrap_or_default(),
                headers_size: -1,
                body_size: response.body.total as i64,
                comment: None,
            }
        }
        None => har::Response::default(),
    };
    let timings = Timings {
        blocked: -1.0,
        dns: -1.0,
        connect: -1.0,
        send: millis(timing.send),
        wait: millis(timing.wait),
        receive: millis(timing.receive),
        ssl: -1.0,
        comment: None,
    };
    let truncated = request.body.truncated
        || response.is_some_and(|r| r.body.truncated)
        || notes.iter().any(|n| n.contains("truncated"));
    if let Some(error) = &error {
        notes.push(error.clone());
    }
    Entry {
        pageref: None,
        started_date_time: humantime::format_rfc3339_millis(timing.started).to_string(),
        time: (timings.total() * 1000.0).round() / 1000.0,
        request: har_request,
        response: har_response,
        cache: har::Cache::default(),
        timings,
        server_ip_address: None,
        connection: None,
        comment: (!notes.is_empty()).then(|| notes.join("; ")),
        truncated,
        error,
        resource_type: None,
        web_socket_messages: Vec::new(),
    }
}

/// The terminal line for one exchange: method, path, status, milliseconds, size.
pub fn summary_line(entry: &Entry) -> String {
    let path =
        split_url(&entry.request.url).map_or(entry.request.url.as_str(), |(_, _, path)| path);
    let status = match (&entry.error, entry.response.status) {
        (Some(_), 0) => "ERR".to_owned(),
        (_, status) => status.to_string(),
    };
    let size = entry.response.body_size.max(0) as u64;
    format!(
        "{:<7} {path} {status} {:.0} ms {}",
        entry.request.method,
        entry.time,
        human_bytes(size)
    )
}

pub fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
    }
}

fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

fn version_text(version: Version) -> String {
    format!("{version:?}")
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
}

fn headers(map: &HeaderMap) -> Vec<Header> {
    map.iter()
        .map(|(name, value)| {
            Header::new(
                name.as_str(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

fn request_cookies(headers: &HeaderMap) -> Vec<Cookie> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .flat_map(|value| {
            String::from_utf8_lossy(value.as_bytes())
                .split(';')
                .filter_map(|pair| {
                    let (name, value) = pair.split_once('=')?;
                    Some(Cookie {
                        name: name.trim().to_owned(),
                        value: value.trim().to_owned(),
                        ..Cookie::default()
                    })
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Parses one `Set-Cookie` value: `name=value; Path=/; Domain=x; Expires=...; HttpOnly; Secure`.
pub fn parse_set_cookie(text: &str) -> Option<Cookie> {
    let mut parts = text.split(';');
    let (name, value) = parts.next()?.split_once('=')?;
    let mut cookie = Cookie {
        name: name.trim().to_owned(),
        value: value.trim().to_owned(),
        ..Cookie::default()
    };
    for attribute in parts {
        let (key, value) = match attribute.split_once('=') {
            Some((key, value)) => (key.trim(), Some(value.trim().to_owned())),
            None => (attribute.trim(), None),
        };
        match key.to_ascii_lowercase().as_str() {
            "path" => cookie.path = value,
            "domain" => cookie.domain = value,
            "expires" => cookie.expires = value,
            "httponly" => cookie.http_only = Some(true),
            "secure" => cookie.secure = Some(true),
            _ => {}
        }
    }
    Some(cookie)
}

fn response_cookies(headers: &HeaderMap) -> Vec<Cookie> {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| parse_set_cookie(&String::from_utf8_lossy(value.as_bytes())))
        .collect()
}

fn query_string(url: &str) -> Vec<Header> {
    let Some((_, query)) = url.split_once('?') else {
        return Vec::new();
    };
    let query = query.split_once('#').map_or(query, |(query, _)| query);
    url::form_urlencoded::parse(query.as_bytes())
        .map(|(name, value)| Header::new(name, value))
        .collect()
}

/// `(scheme, authority, path?query)` of an absolute URL as the proxy writes them
/// (`http://host:port/path?query`), without a full parse: this runs for every exchange.
pub(crate) fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    Some((scheme, authority, if path.is_empty() { "/" } else { path }))
}

fn mime_type(headers: &HeaderMap) -> String {
    header_text(headers, header::CONTENT_TYPE).unwrap_or_default()
}

fn post_data(headers: &HeaderMap, body: &CapturedBody) -> Option<PostData> {
    if body.total == 0 {
        return None;
    }
    let mime_type = mime_type(headers);
    let (text, encoding) = text_or_base64(&body.bytes);
    let params = if encoding.is_none()
        && mime_type
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    {
        url::form_urlencoded::parse(text.as_bytes())
            .map(|(name, value)| Param {
                name: name.into_owned(),
                value: Some(value.into_owned()),
                file_name: None,
                content_type: None,
            })
            .collect()
    } else {
        Vec::new()
    };
    Some(PostData {
        mime_type,
        text,
        encoding,
        params,
        comment: None,
    })
}

fn text_or_base64(bytes: &[u8]) -> (String, Option<String>) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_owned(), None),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(bytes),
            Some("base64".to_owned()),
        ),
    }
}

/// The response content as a browser writes it: decoded, text or base64; plus a note when
/// decoding was partial or impossible.
fn content(headers: &HeaderMap, body: &CapturedBody, max_body: usize) -> (Content, Option<String>) {
    let encodings: Vec<String> = headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .flat_map(|value| {
            String::from_utf8_lossy(value.as_bytes())
                .split(',')
                .map(|e| e.trim().to_ascii_lowercase())
                .filter(|e| !e.is_empty() && e != "identity")
                .collect::<Vec<_>>()
        })
        .collect();
    let mut note = None;
    let mut bytes = body.bytes.clone();
    // Encodings apply in the order listed, so they come off in reverse.
    for encoding in encodings.iter().rev() {
        match decode(encoding, &bytes, max_body) {
            Ok((decoded, complete)) => {
                if !complete && !body.truncated {
                    note = Some(format!(
                        "response body truncated: decoded {} bytes (--max-body)",
                        decoded.len()
                    ));
                }
                bytes = decoded;
            }
            Err(reason) => {
                note = Some(format!(
                    "response body recorded as sent ({encoding}): {reason}"
                ));
                break;
            }
        }
    }
    if body.truncated {
        note = Some(format!(
            "response body truncated: recorded {} of {} bytes (--max-body)",
            body.bytes.len(),
            body.total
        ));
    }
    let size = bytes.len() as i64;
    let (text, encoding) = text_or_base64(&bytes);
    let compression = (!encodings.is_empty()).then(|| size - body.total as i64);
    (
        Content {
            size,
            compression,
            mime_type: mime_type(headers),
            text: (body.total > 0).then_some(text),
            encoding,
            comment: None,
        },
        note,
    )
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

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    #[test]
    fn urls_are_split_and_queries_read_without_a_full_parse() {
        assert_eq!(
            split_url("http://127.0.0.1:8001/api/x?a=1&b=two%20words#frag"),
            Some(("http", "127.0.0.1:8001", "/api/x?a=1&b=two%20words#frag"))
        );
        assert_eq!(
            split_url("https://example.org"),
            Some(("https", "example.org", "/"))
        );
        assert_eq!(
            split_url("https://example.org?q=1"),
            Some(("https", "example.org", "?q=1"))
        );
        assert_eq!(split_url("not a url"), None);
        let pairs: Vec<(String, String)> = query_string("http://h/p?a=1&b=two%20words&c#frag")
            .into_iter()
            .map(|h| (h.name, h.value))
            .collect();
        assert_eq!(
            pairs,
            [("a", "1"), ("b", "two words"), ("c", "")].map(|(n, v)| (n.to_owned(), v.to_owned()))
        );
        assert!(query_string("http://h/p").is_empty());
    }

    fn body(bytes: &[u8]) -> CapturedBody {
        let mut body = CapturedBody::default();
        body.push(bytes, 1 << 20);
        body
    }

    fn timing() -> Timing {
        Timing {
            started: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            send: Duration::from_micros(500),
            wait: Duration::from_millis(3),
            receive: Duration::from_micros(1250),
        }
    }

    fn request(method: Method, url: &str, headers: &[(&str, &str)], bytes: &[u8]) -> RequestParts {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        RequestParts {
            method,
            url: url.to_owned(),
            version: Version::HTTP_11,
            headers: map,
            body: body(bytes),
        }
    }

    fn response(headers: &[(&str, &str)], bytes: &[u8]) -> ResponseParts {
        let request = request(Method::GET, "http://x/", headers, bytes);
        ResponseParts {
            status: StatusCode::OK,
            version: Version::HTTP_11,
            headers: request.headers,
            body: request.body,
        }
    }

    #[test]
    fn a_form_post_has_params_cookies_and_query() {
        let req = request(
            Method::POST,
            "http://app/api/events?b=2&name=a%20b",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", "sid=abc; theme=dark"),
            ],
            b"gameSessionId=g1&events=%5B%5D",
        );
        let resp = response(
            &[
                ("content-type", "application/json"),
                ("set-cookie", "sid=new; Path=/; HttpOnly"),
            ],
            b"{\"ok\":true}",
        );
        let entry = entry(&req, Some(&resp), &timing(), None, 1 << 20);
        assert_eq!(entry.started_date_time, "2023-11-14T22:13:20.123Z");
        assert_eq!(entry.time, 4.75);
        let post = entry.request.post_data.as_ref().unwrap();
        assert_eq!(post.text, "gameSessionId=g1&events=%5B%5D");
        assert_eq!(post.params[1].value.as_deref(), Some("[]"));
        assert_eq!(entry.request.cookies.len(), 2);
        assert_eq!(entry.request.cookies[1].value, "dark");
        assert_eq!(entry.request.query_string[1].value, "a b");
        assert_eq!(entry.response.cookies[0].http_only, Some(true));
        assert_eq!(
            entry.response.content.text.as_deref(),
            Some("{\"ok\":true}")
        );
        assert_eq!(entry.response.content.size, 11);
        assert!(!entry.truncated);
    }

    #[test]
    fn gzip_and_brotli_bodies_are_decoded() {
        let plain = b"hello hello hello hello".repeat(10);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        let mut br = Vec::new();
        brotli::CompressorWriter::new(&mut br, 4096, 5, 22)
            .write_all(&plain)
            .unwrap();
        for (coding, bytes) in [("gzip", gz), ("br", br)] {
            let resp = response(&[("content-encoding", coding)], &bytes);
            let req = request(Method::GET, "http://x/", &[], b"");
            let entry = entry(&req, Some(&resp), &timing(), None, 1 << 20);
            let content = &entry.response.content;
            assert_eq!(
                content.text.as_deref().unwrap().as_bytes(),
                &plain[..],
                "{coding}"
            );
            assert_eq!(content.size, plain.len() as i64);
            assert_eq!(entry.response.body_size, bytes.len() as i64);
            assert!(entry.request.post_data.is_none());
        }
    }

    #[test]
    fn binary_is_base64_and_big_bodies_are_truncated() {
        let req = request(
            Method::PUT,
            "http://x/upload",
            &[],
            &[0xff, 0xfe, 0x00, 0x01],
        );
        let post = entry(&req, None, &timing(), None, 10)
            .request
            .post_data
            .unwrap();
        assert_eq!(post.encoding.as_deref(), Some("base64"));
        assert_eq!(post.text, "//4AAQ==");

        let mut big = CapturedBody::default();
        for _ in 0..5 {
            big.push(b"0123456789", 25);
        }
        assert_eq!((big.bytes.len(), big.total, big.truncated), (25, 50, true));
        let resp = ResponseParts {
            body: big,
            ..response(&[("content-type", "text/plain")], b"")
        };
        let entry = entry(&req, Some(&resp), &timing(), None, 25);
        assert!(entry.truncated);
        assert_eq!(entry.response.content.size, 25);
        assert_eq!(entry.response.body_size, 50);
        assert!(
            entry
                .comment
                .as_deref()
                .unwrap()
                .contains("recorded 25 of 50 bytes"),
            "{:?}",
            entry.comment
        );
    }

    #[test]
    fn a_failed_exchange_keeps_its_error() {
        let req = request(Method::GET, "http://x/a?b=1", &[], b"");
        let entry = entry(
            &req,
            None,
            &timing(),
            Some("connection refused".to_owned()),
            10,
        );
        assert_eq!(entry.response.status, 0);
        assert_eq!(entry.error.as_deref(), Some("connection refused"));
        assert_eq!(summary_line(&entry), "GET     /a?b=1 ERR 5 ms 0 B");
    }

    #[test]
    fn filters_include_then_exclude() {
        let filter = Filter {
            include: vec![Regex::new("/api/").unwrap()],
            exclude: vec![Regex::new(r"\.png$").unwrap()],
        };
        assert!(filter.records("http://a/api/x"));
        assert!(!filter.records("http://a/api/x.png"));
        assert!(!filter.records("http://a/index.html"));
        assert!(Filter::default().records("http://a/anything"));
    }
}
