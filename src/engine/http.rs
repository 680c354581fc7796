//! The client edge: the HTTP/1.1 session of one virtual user (one keep-alive connection per
//! origin, plain TCP or rustls), connect and whole-request timeouts, and the classification of
//! transport problems into a small closed set of kinds. It knows nothing of scenarios, cookies
//! or statistics; the latency it reports runs from just before the request is written to the
//! end of the response body.

use std::cell::Cell;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::stats::FailureKind;

/// Where a connection goes: scheme, host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    pub(crate) https: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl Origin {
    pub(crate) fn of(url: &url::Url) -> Option<Origin> {
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            _ => return None,
        };
        let host = match url.host()? {
            url::Host::Ipv6(ip) => ip.to_string(),
            other => other.to_string(),
        };
        Some(Origin {
            https,
            host,
            port: url.port_or_known_default()?,
        })
    }

    /// `host` or `host:port`, as a `Host` header says it.
    pub(crate) fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.https { 443 } else { 80 };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

#[derive(Debug)]
pub(crate) struct TransportError {
    /// One of the transport kinds (connect, TLS, timeout, closed, invalid response).
    pub(crate) kind: FailureKind,
    pub(crate) message: String,
    /// Time spent before the failure was known.
    pub(crate) latency: Duration,
}

/// A complete response.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    /// The body as it came on the wire (still compressed, if it was).
    pub(crate) body: Bytes,
    pub(crate) latency: Duration,
}

/// What every session of one run shares: timeouts and the TLS configuration.
pub(crate) struct Client {
    connect_timeout: Duration,
    timeout: Duration,
    tls: tokio_rustls::TlsConnector,
    builder: http1::Builder,
}

impl Client {
    pub(crate) fn new(
        connect_timeout: Duration,
        timeout: Duration,
        accept_invalid_certs: bool,
    ) -> Result<Client, rustls::Error> {
        let mut builder = http1::Builder::new();
        // The default read buffer grows to 400 KiB; a user mostly idles between requests, and a
        // small buffer keeps thousands of them within the memory target.
        builder.max_buf_size(64 * 1024);
        Ok(Client {
            connect_timeout,
            timeout,
            tls: tokio_rustls::TlsConnector::from(tls_config(accept_invalid_certs)?),
            builder,
        })
    }
}

/// One user's connections: at most one keep-alive connection per origin.
pub(crate) struct Session {
    client: Arc<Client>,
    connections: Vec<(Origin, SendRequest<Full<Bytes>>)>,
}

impl Session {
    pub(crate) fn new(client: Arc<Client>) -> Session {
        Session {
            client,
            connections: Vec::new(),
        }
    }

    /// Sends one request (its URI in origin form: path and query) and reads the whole
    /// response, all within the client's timeout.
    pub(crate) async fn send(
        &mut self,
        origin: &Origin,
        mut request: Request<Full<Bytes>>,
    ) -> Result<Reply, TransportError> {
        if !request.headers().contains_key(http::header::HOST) {
            if let Ok(host) = HeaderValue::from_str(&origin.authority()) {
                request.headers_mut().insert(http::header::HOST, host);
            }
        }
        let began = Instant::now();
        // Just before the request is written; until then, when connecting began.
        let written = Cell::new(began);
        let timeout = self.client.timeout;
        let exchange = self.exchange(origin, request, began, &written);
        match tokio::time::timeout_at(began + timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(TransportError {
                kind: FailureKind::Timeout,
                message: format!(
                    "no complete response within the timeout of {}",
                    humantime::format_duration(timeout)
                ),
                latency: written.get().elapsed(),
            }),
        }
    }

    async fn exchange(
        &mut self,
        origin: &Origin,
        mut request: Request<Full<Bytes>>,
        began: Instant,
        written: &Cell<Instant>,
    ) -> Result<Reply, TransportError> {
        for attempt in 0..2 {
            // Connecting (with a TLS handshake inline) is large and rare: boxed, so the future
            // every request moves around stays small.
            let (mut sender, reused) = match self.take(origin) {
                Some(mut sender) => match sender.ready().await {
                    Ok(()) => (sender, true),
                    Err(_) => (Box::pin(self.connect(origin, began)).await?, false),
                },
                None => (Box::pin(self.connect(origin, began)).await?, false),
            };
            let start = Instant::now();
            written.set(start);
            let response = match sender.try_send_request(request).await {
                Ok(response) => response,
                Err(mut err) => match err.take_message() {
                    // Never written (the server closed the idle connection first): the server
                    // saw nothing, so one retry on a fresh connection is honest.
                    Some(unsent) if reused && attempt == 0 => {
                        request = unsent;
                        continue;
                    }
                    _ => return Err(classify(err.error(), origin, start.elapsed())),
                },
            };
            let (parts, incoming) = response.into_parts();
            let body = match incoming.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(err) => return Err(classify(&err, origin, start.elapsed())),
            };
            let latency = start.elapsed();
            if !sender.is_closed() {
                self.connections.push((origin.clone(), sender));
            }
            return Ok(Reply {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
                latency,
            });
        }
        Err(TransportError {
            kind: FailureKind::ConnectionClosed,
            message: format!(
                "{} closed the connection twice before the request was written",
                origin.authority()
            ),
            latency: began.elapsed(),
        })
    }

    fn take(&mut self, origin: &Origin) -> Option<SendRequest<Full<Bytes>>> {
        let index = self.connections.iter().position(|(o, _)| o == origin)?;
        let (_, sender) = self.connections.swap_remove(index);
        (!sender.is_closed()).then_some(sender)
    }

    async fn connect(
        &self,
        origin: &Origin,
        began: Instant,
    ) -> Result<SendRequest<Full<Bytes>>, TransportError> {
        let connect_deadline = Instant::now() + self.client.connect_timeout;
        let fail = |kind, message| TransportError {
            kind,
            message,
            latency: began.elapsed(),
        };
        let target = origin.authority();
        let stream = match tokio::time::timeout_at(connect_deadline, tcp_connect(origin)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(err)) => {
                let kind = match err.kind() {
                    io::ErrorKind::ConnectionRefused => FailureKind::ConnectRefused,
                    io::ErrorKind::TimedOut => FailureKind::ConnectTimeout,
                    _ => FailureKind::Connect,
                };
                let message = match kind {
                    FailureKind::ConnectRefused => {
                        format!("{target} refused the connection (is the server running?)")
                    }
                    _ => format!("could not connect to {target}: {err}"),
                };
                return Err(fail(kind, message));
            }
            Err(_) => {
                return Err(fail(
                    FailureKind::ConnectTimeout,
                    format!(
                        "no connection to {target} within the connect timeout of {}",
                        humantime::format_duration(self.client.connect_timeout)
                    ),
                ));
            }
        };
        let _ = stream.set_nodelay(true);
        let handshake_failed = |err: hyper::Error| {
            fail(
                FailureKind::Connect,
                format!("HTTP/1.1 handshake with {target} failed: {err}"),
            )
        };
        if origin.https {
            let name = ServerName::try_from(origin.host.clone()).map_err(|err| {
                fail(
                    FailureKind::Tls,
                    format!("{:?} is not a valid TLS server name: {err}", origin.host),
                )
            })?;
            let tls = match tokio::time::timeout_at(
                connect_deadline,
                self.client.tls.connect(name, stream),
            )
            .await
            {
                Ok(Ok(tls)) => tls,
                Ok(Err(err)) => {
                    return Err(fail(
                        FailureKind::Tls,
                        format!("TLS handshake with {target} failed: {err}"),
                    ));
                }
                Err(_) => {
                    return Err(fail(
                        FailureKind::ConnectTimeout,
                        format!(
                            "TLS handshake with {target} did not finish within the connect timeout of {}",
                            humantime::format_duration(self.client.connect_timeout)
                        ),
                    ));
                }
            };
            let (sender, connection) = self
                .client
                .builder
                .handshake(TokioIo::new(tls))
                .await
                .map_err(handshake_failed)?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            Ok(sender)
        } else {
            let (sender, connection) = self
                .client
                .builder
                .handshake(TokioIo::new(stream))
                .await
                .map_err(handshake_failed)?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            Ok(sender)
        }
    }
}

async fn tcp_connect(origin: &Origin) -> io::Result<TcpStream> {
    let mut last = None;
    for addr in tokio::net::lookup_host((origin.host.as_str(), origin.port)).await? {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(err) => last = Some(err),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} has no address", origin.host),
        )
    }))
}

/// Maps a hyper error onto a kind and a sentence a person can act on.
fn classify(err: &hyper::Error, origin: &Origin, latency: Duration) -> TransportError {
    let target = origin.authority();
    let io_kind = source_io_kind(err);
    let (kind, message) = if err.is_parse() || err.is_parse_status() || err.is_parse_too_large() {
        (
            FailureKind::InvalidResponse,
            format!("{target} answered something that is not an HTTP/1.1 response: {err}"),
        )
    } else if err.is_timeout() {
        (
            FailureKind::Timeout,
            format!("{target} did not answer in time: {err}"),
        )
    } else if io_kind == Some(io::ErrorKind::ConnectionReset) {
        (
            FailureKind::ConnectionClosed,
            format!("{target} reset the connection before the response was complete"),
        )
    } else if err.is_incomplete_message() || err.is_canceled() || err.is_closed() {
        (
            FailureKind::ConnectionClosed,
            format!("{target} closed the connection before the response was complete"),
        )
    } else {
        (
            FailureKind::ConnectionClosed,
            format!("the exchange with {target} failed: {}", error_chain(err)),
        )
    };
    TransportError {
        kind,
        message,
        latency,
    }
}

fn source_io_kind(err: &(dyn std::error::Error + 'static)) -> Option<io::ErrorKind> {
    let mut source = err.source();
    while let Some(inner) = source {
        if let Some(io) = inner.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        source = inner.source();
    }
    None
}

fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// The body as the application meant it: gzip, deflate and brotli bodies decoded.
pub(crate) fn decoded_body(headers: &HeaderMap, body: &Bytes) -> Result<Bytes, String> {
    use std::io::Read as _;
    let Some(encoding) = headers
        .get(http::header::CONTENT_ENCODING)
        .and_then(|value| value.to_str().ok())
    else {
        return Ok(body.clone());
    };
    let mut out = Vec::new();
    let result = match encoding.trim().to_ascii_lowercase().as_str() {
        "gzip" | "x-gzip" => flate2::read::MultiGzDecoder::new(&body[..]).read_to_end(&mut out),
        "deflate" => flate2::read::ZlibDecoder::new(&body[..]).read_to_end(&mut out),
        "br" => brotli::Decompressor::new(&body[..], 4096).read_to_end(&mut out),
        _ => return Ok(body.clone()),
    };
    result
        .map(|_| Bytes::from(out))
        .map_err(|err| format!("the {encoding} body does not decode: {err}"))
}

fn tls_config(accept_invalid_certs: bool) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let roots = || rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    crate::tls::client_config(accept_invalid_certs, roots).map(Arc::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_and_authorities() {
        let url = url::Url::parse("http://127.0.0.1:8001/a?b=1").unwrap();
        let origin = Origin::of(&url).unwrap();
        assert_eq!(origin.authority(), "127.0.0.1:8001");
        let url = url::Url::parse("https://example.org/").unwrap();
        let origin = Origin::of(&url).unwrap();
        assert_eq!(
            (origin.port, origin.authority().as_str()),
            (443, "example.org")
        );
        assert!(Origin::of(&url::Url::parse("ftp://example.org/").unwrap()).is_none());
    }

    #[test]
    fn gzip_bodies_are_decoded() {
        use std::io::Write as _;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(b"{\"a\":1}").unwrap();
        let body = Bytes::from(encoder.finish().unwrap());
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_ENCODING,
            HeaderValue::from_static("gzip"),
        );
        assert_eq!(decoded_body(&headers, &body).unwrap(), &b"{\"a\":1}"[..]);
        assert!(decoded_body(&headers, &Bytes::from_static(b"plain")).is_err());
    }
}
