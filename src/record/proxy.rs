//! One exchange through the proxy, whichever the mode: forward the request to the
//! application, stream the response back, hand the copies to the sink; WebSocket upgrades
//! become a tunnel; an unreachable application becomes a 502 page that says why.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use super::body::{self, Pending, ProxyBody, RequestCapture, RequestTee, ResponseTee};
use super::capture::{CapturedBody, Filter, RequestParts, ResponseParts};
use super::rewrite::ReverseRewrite;
use super::sink::{Exchange, Sink};
use super::upstream::UpstreamClient;
use super::websocket::{self, FrameParser};

/// What every connection task shares.
pub(crate) struct Shared {
    pub(crate) client: UpstreamClient,
    pub(crate) sink: Sink,
    pub(crate) filter: Filter,
    pub(crate) max_body: usize,
    pub(crate) forwarded: AtomicU64,
}

const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Removes the headers that belong to one connection; an upgrade keeps `Connection: upgrade`
/// and `Upgrade`.
fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .filter(|name| *name != header::UPGRADE)
        .collect();
    for name in listed.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

/// Forwards `request` to `upstream` (an absolute URL) and returns what goes back to the
/// browser. `rewrite` is set in reverse mode.
pub(crate) async fn exchange(
    shared: Arc<Shared>,
    mut request: Request<Incoming>,
    upstream: Uri,
    rewrite: Option<&ReverseRewrite>,
) -> Response<ProxyBody> {
    let started = SystemTime::now();
    let start = Instant::now();
    shared.forwarded.fetch_add(1, Ordering::Relaxed);
    let url = upstream.to_string();
    let record = shared.filter.records(&url);
    let upgrade = is_websocket_upgrade(request.headers());
    let browser_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
    let (parts, incoming) = request.into_parts();
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers, upgrade);
    if upgrade {
        // Compressed frames could not be recorded as text; the browser copes without.
        headers.remove(header::SEC_WEBSOCKET_EXTENSIONS);
    }
    if let Some(authority) = upstream.authority() {
        if let Ok(host) = HeaderValue::from_str(authority.as_str()) {
            headers.insert(header::HOST, host);
        }
    }
    if let Some(rewrite) = rewrite {
        rewrite.request_headers(&mut headers);
    }
    let capture = Arc::new(std::sync::Mutex::new(RequestCapture::default()));
    let body = if record {
        RequestTee::new(incoming, capture.clone(), shared.max_body).boxed()
    } else {
        body::passthrough(incoming)
    };
    let recorded_request = record.then(|| RequestParts {
        url: url.clone(),
        head: request_head(&parts.method, &upstream, &headers),
        body: CapturedBody::default(),
    });
    let mut forward = Request::new(body);
    *forward.method_mut() = parts.method;
    *forward.uri_mut() = upstream;
    *forward.headers_mut() = headers;

    let mut response = match shared.client.request(forward).await {
        Ok(response) => response,
        Err(err) => {
            let reason = err.to_string();
            let page = bad_gateway_page(&url, &reason);
            if let Some(mut request) = recorded_request {
                let (body, done, request_error) = {
                    let mut capture = body::lock(&capture);
                    (
                        std::mem::take(&mut capture.body),
                        capture.done,
                        capture.error.take(),
                    )
                };
                request.body = body;
                let now = Instant::now();
                let mut page_body = CapturedBody::default();
                page_body.push(page.as_bytes(), shared.max_body);
                shared.sink.send(Exchange {
                    request,
                    response: Some(ResponseParts {
                        head: response_head(
                            StatusCode::BAD_GATEWAY,
                            Version::HTTP_11,
                            &text_headers(),
                        ),
                        body: page_body,
                    }),
                    timing: body::timing(started, start, done, now, now),
                    error: Some(request_error.unwrap_or_else(|| {
                        format!("chorus could not get a response from {url}: {reason}")
                    })),
                    websocket: None,
                });
            }
            let mut response = Response::new(body::full(page));
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            *response.headers_mut() = text_headers();
            return response;
        }
    };
    let head_at = Instant::now();

    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(browser_upgrade) = browser_upgrade {
            let app_upgrade = hyper::upgrade::on(&mut response);
            let (parts, _) = response.into_parts();
            let recorded = recorded_request.map(|request| {
                (
                    request,
                    ResponseParts {
                        head: response_head(parts.status, parts.version, &parts.headers),
                        body: CapturedBody::default(),
                    },
                )
            });
            let sink = shared.sink.clone();
            let limit = shared.max_body;
            tokio::spawn(async move {
                let (Ok(browser), Ok(app)) = (browser_upgrade.await, app_upgrade.await) else {
                    return;
                };
                let messages = websocket::Messages::default();
                let (browser_read, browser_write) = tokio::io::split(TokioIo::new(browser));
                let (app_read, app_write) = tokio::io::split(TokioIo::new(app));
                tokio::join!(
                    websocket::pump(
                        browser_read,
                        app_write,
                        FrameParser::new("send", limit),
                        messages.clone()
                    ),
                    websocket::pump(
                        app_read,
                        browser_write,
                        FrameParser::new("receive", limit),
                        messages.clone()
                    ),
                );
                if let Some((request, response)) = recorded {
                    let messages =
                        std::mem::take(&mut *messages.lock().unwrap_or_else(|e| e.into_inner()));
                    sink.send(Exchange {
                        request,
                        response: Some(response),
                        timing: body::timing(started, start, None, head_at, Instant::now()),
                        error: None,
                        websocket: Some(messages),
                    });
                }
            });
            let mut headers = parts.headers;
            strip_hop_by_hop(&mut headers, true);
            let mut to_browser = Response::new(body::empty());
            *to_browser.status_mut() = parts.status;
            *to_browser.headers_mut() = headers;
            return to_browser;
        }
    }

    let (parts, incoming) = response.into_parts();
    let mut headers = parts.headers;
    let body = match recorded_request {
        Some(request) => {
            let pending = Pending {
                sink: shared.sink.clone(),
                request,
                request_capture: capture,
                response: ResponseParts {
                    head: response_head(parts.status, parts.version, &headers),
                    body: CapturedBody::default(),
                },
                started,
                start,
                head_at,
            };
            ResponseTee::new(incoming, shared.max_body, pending).boxed()
        }
        None => body::passthrough(incoming),
    };
    strip_hop_by_hop(&mut headers, false);
    if let Some(rewrite) = rewrite {
        rewrite.response_headers(&mut headers);
    }
    let mut to_browser = Response::new(body);
    *to_browser.status_mut() = parts.status;
    *to_browser.headers_mut() = headers;
    to_browser
}

/// Bridge until the relay hands over the bytes it wrote: the request head as forwarded
/// (origin-form target, the forwarded headers).
fn request_head(method: &http::Method, upstream: &Uri, headers: &HeaderMap) -> bytes::Bytes {
    let target = upstream
        .path_and_query()
        .map_or("/", |target| target.as_str());
    let mut head = Vec::with_capacity(64 + target.len() + 48 * headers.len());
    head.extend_from_slice(method.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(target.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    header_lines(&mut head, headers);
    head.into()
}

/// Bridge until the relay hands over the bytes it read: the application's response head.
fn response_head(status: StatusCode, version: Version, headers: &HeaderMap) -> bytes::Bytes {
    let mut head = Vec::with_capacity(64 + 48 * headers.len());
    head.extend_from_slice(match version {
        Version::HTTP_10 => b"HTTP/1.0 ",
        _ => b"HTTP/1.1 ",
    });
    head.extend_from_slice(status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(status.canonical_reason().unwrap_or_default().as_bytes());
    head.extend_from_slice(b"\r\n");
    header_lines(&mut head, headers);
    head.into()
}

fn header_lines(head: &mut Vec<u8>, headers: &HeaderMap) {
    for (name, value) in headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
}

fn text_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers
}

/// The error and its causes on one line, e.g. `client error (Connect): tcp connect error:
/// Connection refused (os error 111)`.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page the browser gets when the application cannot be reached.
pub(crate) fn bad_gateway_page(url: &str, reason: &str) -> String {
    let target = url::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| url.to_owned());
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>502 chorus record: {target} unreachable</title></head>\n\
         <body><h1>502 Bad Gateway</h1>\n<p>chorus record could not reach <b>{target}</b> for <code>{url}</code>:</p>\n\
         <pre>{reason}</pre>\n<p>Is the application running? The exchange is recorded in the capture with this error.</p></body></html>\n",
        target = escape(&target),
        url = escape(url),
        reason = escape(reason),
    )
}

/// A plain answer from the proxy itself (bad requests, forward-mode misuse).
pub(crate) fn plain(status: StatusCode, text: &str) -> Response<ProxyBody> {
    let mut response = Response::new(body::full(format!("{text}\n")));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
