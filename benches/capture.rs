//! Times the recorder's capture thread per exchange: the HAR entry written as JSON straight
//! from the raw heads (`record::capture::write_entry`, what the sink runs) against, in the
//! same run, the owned path it replaced (a `har::Entry` with a `String` per header, cookie and
//! parameter built from hyper `HeaderMap`s, then `serde_json::to_writer`, then dropped), and
//! prints µs per entry and the ratio (no absolute numbers are asserted anywhere).
//!
//! The exchanges are demo-app-like: a Chromium `POST` with a JSON body, a `GET` and a form
//! login, each with 10 to 13 request headers including a cookie, 6 response headers and a
//! small JSON answer. Also printed: what handing one exchange to the capture thread costs
//! (copying the heads on the proxy side and dropping them on the capture side) in either
//! shape, and how much of the new path is `httparse`.
//!
//! Run with `cargo bench --bench capture` (`CHORUS_BENCH_ENTRIES` sets the entries per pass;
//! `CHORUS_BENCH_PROFILE=1` runs only the new path, for a profiler).

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use chorus::record::capture::{
    self, CapturedBody, ExchangeRef, RequestParts, ResponseParts, Timing,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};

/// Entries per batch, as the sink writes them (its `BATCH`).
const BATCH: usize = 256;
const MAX_BODY: usize = 10 << 20;

const UA: &[u8] = b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/// One exchange in both shapes: raw heads (new) and header maps (old).
struct Sample {
    url: String,
    request_head: Vec<u8>,
    response_head: Vec<u8>,
    method: Method,
    request_headers: Vec<(&'static str, Vec<u8>)>,
    status: StatusCode,
    response_headers: Vec<(&'static str, Vec<u8>)>,
    request_body: Vec<u8>,
    response_body: Vec<u8>,
}

fn sample(
    method: &str,
    url: &str,
    extra: &[(&'static str, &[u8])],
    request_body: &[u8],
    response_body: &[u8],
    set_cookie: bool,
) -> Sample {
    let target = url
        .splitn(4, '/')
        .nth(3)
        .map_or("/".to_owned(), |t| format!("/{t}"));
    let mut request_headers: Vec<(&'static str, Vec<u8>)> = vec![
        ("host", b"127.0.0.1:8001".to_vec()),
        ("user-agent", UA.to_vec()),
        ("accept", b"application/json, text/plain, */*".to_vec()),
        ("accept-language", b"en-US,en;q=0.9".to_vec()),
        ("accept-encoding", b"gzip, deflate, br, zstd".to_vec()),
        ("referer", b"http://127.0.0.1:9090/student".to_vec()),
        ("sec-fetch-mode", b"cors".to_vec()),
        ("sec-fetch-site", b"same-origin".to_vec()),
        (
            "cookie",
            b"sid=3f9a1c2e-77b4-4f0a-9d2e-5b1c8e7a6d40; theme=dark; _ga=GA1.1.1234567890.1700000000"
                .to_vec(),
        ),
    ];
    request_headers.extend(extra.iter().map(|(n, v)| (*n, v.to_vec())));
    if !request_body.is_empty() {
        request_headers.push((
            "content-length",
            request_body.len().to_string().into_bytes(),
        ));
    }
    let mut response_headers: Vec<(&'static str, Vec<u8>)> = vec![
        ("content-type", b"application/json".to_vec()),
        (
            "content-length",
            response_body.len().to_string().into_bytes(),
        ),
        ("date", b"Wed, 25 Nov 2026 12:00:00 GMT".to_vec()),
        ("cache-control", b"no-store".to_vec()),
        ("vary", b"origin, access-control-request-method".to_vec()),
    ];
    response_headers.push(if set_cookie {
        (
            "set-cookie",
            b"sid=3f9a1c2e-77b4-4f0a-9d2e-5b1c8e7a6d40; Path=/; HttpOnly; SameSite=Lax".to_vec(),
        )
    } else {
        ("x-request-id", b"7c1e0b9a4d2f".to_vec())
    });
    let mut request_head = format!("{method} {target} HTTP/1.1\r\n").into_bytes();
    let mut response_head = b"HTTP/1.1 200 OK\r\n".to_vec();
    for (head, headers) in [
        (&mut request_head, &request_headers),
        (&mut response_head, &response_headers),
    ] {
        for (name, value) in headers {
            head.extend_from_slice(name.as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value);
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"\r\n");
    }
    Sample {
        url: url.to_owned(),
        request_head,
        response_head,
        method: method.parse().unwrap(),
        request_headers,
        status: StatusCode::OK,
        response_headers,
        request_body: request_body.to_vec(),
        response_body: response_body.to_vec(),
    }
}

fn samples() -> Vec<Sample> {
    vec![
        sample(
            "POST",
            "http://127.0.0.1:8001/api/v2/data/events?gameSessionId=g-1842",
            &[
                ("content-type", b"application/json"),
                ("origin", b"http://127.0.0.1:9090"),
            ],
            br#"{"gameSessionId":"g-1842","events":[{"name":"level_start","level":3,"ts":1764072000123},{"name":"score","value":420,"ts":1764072004567}]}"#,
            br#"{"ok":true,"received":2}"#,
            false,
        ),
        sample(
            "GET",
            "http://127.0.0.1:8001/api/v2/data/game/AA-1/playInfo",
            &[],
            b"",
            br#"{"gameId":"AA-1","totalTimePlayed":98231,"sessions":14,"lastPlayed":"2026-11-25T11:58:00Z","eventsPeriodSecs":2}"#,
            false,
        ),
        sample(
            "POST",
            "http://127.0.0.1:8001/api/user/login",
            &[
                ("content-type", b"application/x-www-form-urlencoded"),
                ("origin", b"http://127.0.0.1:9090"),
            ],
            b"username=student_0042%40example.org&password=secret%2042",
            br#"{"id":42,"username":"student_0042@example.org","role":"student"}"#,
            true,
        ),
    ]
}

fn body(bytes: &[u8]) -> CapturedBody {
    let mut body = CapturedBody::default();
    body.push(bytes, MAX_BODY);
    body
}

fn new_parts(sample: &Sample) -> (RequestParts, ResponseParts) {
    (
        RequestParts {
            url: sample.url.clone(),
            head: bytes::Bytes::copy_from_slice(&sample.request_head),
            body: body(&sample.request_body),
        },
        ResponseParts {
            head: bytes::Bytes::copy_from_slice(&sample.response_head),
            body: body(&sample.response_body),
        },
    )
}

fn header_map(headers: &[(&'static str, Vec<u8>)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(
            HeaderName::from_static(name),
            HeaderValue::from_bytes(value).unwrap(),
        );
    }
    map
}

fn old_parts(sample: &Sample) -> (old::RequestParts, old::ResponseParts) {
    (
        old::RequestParts {
            method: sample.method.clone(),
            url: sample.url.clone(),
            version: Version::HTTP_11,
            headers: header_map(&sample.request_headers),
            body: body(&sample.request_body),
        },
        old::ResponseParts {
            status: sample.status,
            version: Version::HTTP_11,
            headers: header_map(&sample.response_headers),
            body: body(&sample.response_body),
        },
    )
}

/// Seconds per entry: one warm-up pass, then the best of three.
fn time(entries: usize, mut pass: impl FnMut()) -> f64 {
    pass();
    (0..3)
        .map(|_| {
            let start = Instant::now();
            pass();
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
        .as_secs_f64()
        / entries as f64
}

fn report(what: &str, ours: f64, reference: f64, reference_name: &str) {
    let (ours_us, reference_us) = (ours * 1e6, reference * 1e6);
    println!(
        "{what:<34} {ours_us:>7.2} µs/entry   {reference_name:<40} {reference_us:>7.2} µs/entry   ratio {:>5.2}",
        ours_us / reference_us.max(1e-9)
    );
}

fn main() {
    let entries: usize = std::env::var("CHORUS_BENCH_ENTRIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(60_000);
    let timing = Timing {
        started: SystemTime::now(),
        send: Duration::from_micros(180),
        wait: Duration::from_micros(2_350),
        receive: Duration::from_micros(95),
    };
    let samples = samples();
    let new: Vec<_> = samples.iter().map(new_parts).collect();
    let old: Vec<_> = samples.iter().map(old_parts).collect();

    // The same entries both ways (read back, they are equal).
    for ((request, response), (old_request, old_response)) in new.iter().zip(&old) {
        let mut written = Vec::new();
        capture::write_entry(
            &mut written,
            ExchangeRef {
                request,
                response: Some(response),
                timing: &timing,
                error: None,
                websocket: None,
                events: None,
            },
            MAX_BODY,
        );
        let written: chorus::har::Entry = serde_json::from_slice(&written).unwrap();
        let reference = old::entry(old_request, Some(old_response), &timing, None, MAX_BODY);
        assert_eq!(
            written, reference,
            "the two paths disagree on {}",
            request.url
        );
    }

    let mut buffer = Vec::new();
    let write_new = |buffer: &mut Vec<u8>| {
        for i in 0..entries {
            if i % BATCH == 0 {
                buffer.clear();
            }
            let (request, response) = &new[i % new.len()];
            buffer.extend_from_slice(b",\n");
            black_box(capture::write_entry(
                buffer,
                ExchangeRef {
                    request,
                    response: Some(response),
                    timing: &timing,
                    error: None,
                    websocket: None,
                    events: None,
                },
                MAX_BODY,
            ));
        }
    };
    if std::env::var_os("CHORUS_BENCH_PROFILE").is_some() {
        // Only the new path, for a profiler: `perf record` this run.
        for _ in 0..20 {
            write_new(&mut buffer);
        }
        return;
    }
    let new_time = time(entries, || write_new(&mut buffer));
    let old_time = time(entries, || {
        for i in 0..entries {
            if i % BATCH == 0 {
                buffer.clear();
            }
            let (request, response) = &old[i % old.len()];
            let entry = old::entry(request, Some(response), &timing, None, MAX_BODY);
            buffer.extend_from_slice(b",\n");
            serde_json::to_writer(&mut buffer, &entry).unwrap();
            drop(black_box(entry));
        }
    });
    let bytes_per_entry = {
        buffer.clear();
        for (request, response) in &new {
            buffer.extend_from_slice(b",\n");
            capture::write_entry(
                &mut buffer,
                ExchangeRef {
                    request,
                    response: Some(response),
                    timing: &timing,
                    error: None,
                    websocket: None,
                    events: None,
                },
                MAX_BODY,
            );
        }
        buffer.len() / new.len()
    };
    println!(
        "capture thread, per exchange ({} demo-like exchanges in turn, {bytes_per_entry} B of JSON each on average, batches of {BATCH}):",
        new.len()
    );
    report(
        "entry JSON from raw heads",
        new_time,
        old_time,
        "owned har::Entry + to_writer + drop",
    );

    // What handing an exchange over costs: the copy made on the proxy side and its drop on
    // the capture side (the relay copies its heads once; the hyper proxy cloned header maps).
    let handover_new = time(entries, || {
        for i in 0..entries {
            let sample = &samples[i % samples.len()];
            let request_head = bytes::Bytes::copy_from_slice(&sample.request_head);
            let response_head = bytes::Bytes::copy_from_slice(&sample.response_head);
            drop(black_box((request_head, response_head)));
        }
    });
    let maps: Vec<_> = old
        .iter()
        .map(|(request, response)| (request.headers.clone(), response.headers.clone()))
        .collect();
    let handover_old = time(entries, || {
        for i in 0..entries {
            let (request, response) = &maps[i % maps.len()];
            drop(black_box((request.clone(), response.clone())));
        }
    });
    report(
        "heads copied and dropped",
        handover_new,
        handover_old,
        "header maps cloned and dropped",
    );

    let parse = time(entries, || {
        for i in 0..entries {
            let sample = &samples[i % samples.len()];
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut request = httparse::Request::new(&mut headers);
            black_box(request.parse(&sample.request_head).ok());
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut response = httparse::Response::new(&mut headers);
            black_box(response.parse(&sample.response_head).ok());
        }
    });
    report(
        "of which httparse (both heads)",
        parse,
        new_time,
        "entry JSON from raw heads",
    );
}

/// The owned path as it was before the capture wrote JSON from the raw heads (`git show
/// d833578:src/record/capture.rs`), kept here as the reference: an owned `har::Entry` with a
/// `String` per header, cookie and parameter, from hyper `HeaderMap`s.
mod old {
    use std::time::Duration;

    use base64::Engine as _;
    use chorus::har::{self, Content, Cookie, Entry, Header, Param, PostData, Timings};
    use chorus::record::capture::{CapturedBody, Timing};
    use http::{HeaderMap, Method, StatusCode, Version, header};

    /// The request as it was forwarded to the application.
    #[derive(Debug, Clone)]
    pub(crate) struct RequestParts {
        pub(crate) method: Method,
        /// The absolute URL the application was asked for.
        pub(crate) url: String,
        pub(crate) version: Version,
        pub(crate) headers: HeaderMap,
        pub(crate) body: CapturedBody,
    }

    /// The response as the application sent it (before any rewriting for the browser).
    #[derive(Debug, Clone)]
    pub(crate) struct ResponseParts {
        pub(crate) status: StatusCode,
        pub(crate) version: Version,
        pub(crate) headers: HeaderMap,
        pub(crate) body: CapturedBody,
    }

    /// Builds the HAR entry of one exchange. `response` is `None` when no response head came;
    /// `error` says what went wrong, if anything. Decoded bodies are capped at `max_body` too.
    pub(crate) fn entry(
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
                    redirect_url: header_text(&response.headers, header::LOCATION)
                        .unwrap_or_default(),
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
            event_source_messages: Vec::new(),
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
    pub(crate) fn parse_set_cookie(text: &str) -> Option<Cookie> {
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
    fn content(
        headers: &HeaderMap,
        body: &CapturedBody,
        max_body: usize,
    ) -> (Content, Option<String>) {
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

    /// The samples are not compressed, so the reference never decodes (the new path's
    /// decoding is the same code as before).
    fn decode(encoding: &str, _bytes: &[u8], _limit: usize) -> Result<(Vec<u8>, bool), String> {
        Err(format!("{encoding}: not decoded by the reference"))
    }
}
