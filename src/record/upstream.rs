//! The proxy's side towards the application: pooled connections over plain TCP or rustls
//! (verified against the system's roots, or not at all with `--insecure`), on which the relay
//! speaks HTTP/1.1.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::tls::ClientStream;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections kept per application origin.
const MAX_IDLE: usize = 64;

/// Why a request could not be sent or answered.
#[derive(Debug)]
pub(crate) struct UpstreamError(pub(crate) String);

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UpstreamError {}

/// The system's trusted CAs, from `SSL_CERT_FILE` or the usual bundle locations.
fn system_roots() -> rustls::RootCertStore {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    let candidates = std::env::var("SSL_CERT_FILE").into_iter().chain(
        [
            "/etc/ssl/certs/ca-certificates.crt",
            "/etc/pki/tls/certs/ca-bundle.crt",
            "/etc/ssl/cert.pem",
        ]
        .map(str::to_owned),
    );
    for path in candidates {
        if let Ok(certs) = CertificateDer::pem_file_iter(&path) {
            for cert in certs.flatten() {
                let _ = roots.add(cert);
            }
            if !roots.is_empty() {
                break;
            }
        }
    }
    roots
}

/// Where the relay's connections go: scheme, host and port, and the `Host` header that
/// names them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Origin {
    pub(crate) https: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// `http://authority` or `https://authority`, where the authority is `host` or
    /// `host:port` as in the URL.
    url_prefix: String,
}

impl Origin {
    /// From a URL's scheme and authority (`host`, `host:port`, `[::1]:8001`).
    pub(crate) fn new(https: bool, authority: &str) -> Result<Origin, String> {
        let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
        let uri: http::uri::Authority = authority
            .parse()
            .map_err(|err| format!("{authority:?} is not a host[:port] ({err})"))?;
        let host = uri.host().trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("{authority:?} has no host"));
        }
        let default_port = if https { 443 } else { 80 };
        let port = uri.port_u16().unwrap_or(default_port);
        Ok(Origin {
            https,
            host: host.to_owned(),
            port,
            // The default port stays implicit, as browsers write URLs.
            url_prefix: format!(
                "{}://{}",
                if https { "https" } else { "http" },
                if port == default_port {
                    uri.host()
                } else {
                    uri.as_str()
                }
            ),
        })
    }

    /// `http://authority` or `https://authority`.
    pub(crate) fn url_prefix(&self) -> &str {
        &self.url_prefix
    }

    /// `host` or `host:port`, as in the URL (and the `Host` header).
    pub(crate) fn authority(&self) -> &str {
        let scheme = if self.https { "https://" } else { "http://" };
        &self.url_prefix[scheme.len()..]
    }
}

/// One connection to an application and what has been read from it but not yet used.
pub(crate) struct Upstream {
    pub(crate) stream: ClientStream,
    pub(crate) buffer: bytes::BytesMut,
}

impl Upstream {
    /// Whether the application closed this idle connection (or sent something unasked).
    fn is_stale(&mut self) -> bool {
        use tokio::io::AsyncRead as _;
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        let mut byte = [0u8; 1];
        let mut probe = tokio::io::ReadBuf::new(&mut byte);
        !self.buffer.is_empty()
            || !matches!(
                std::pin::Pin::new(&mut self.stream).poll_read(&mut context, &mut probe),
                std::task::Poll::Pending
            )
    }
}

/// Idle connections per origin, shared by every browser connection; a request takes one or
/// opens one, and gives it back once its response has been read to the end.
pub(crate) struct Pool {
    tls: TlsConnector,
    idle: Mutex<HashMap<Origin, Vec<Upstream>>>,
}

impl Pool {
    /// `insecure` accepts any certificate.
    pub(crate) fn new(insecure: bool) -> Pool {
        Pool {
            tls: tls_connector(insecure, crate::tls::ALPN_HTTP1),
            idle: Mutex::new(HashMap::new()),
        }
    }

    /// An idle connection that is still open, if there is one.
    pub(crate) fn checkout(&self, origin: &Origin) -> Option<Upstream> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.get_mut(origin)?;
        while let Some(mut upstream) = list.pop() {
            if !upstream.is_stale() {
                return Some(upstream);
            }
        }
        None
    }

    pub(crate) fn checkin(&self, origin: &Origin, upstream: Upstream) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        match idle.get_mut(origin) {
            Some(list) if list.len() < MAX_IDLE => list.push(upstream),
            Some(_) => {}
            None => {
                idle.insert(origin.clone(), vec![upstream]);
            }
        }
    }

    pub(crate) async fn connect(&self, origin: &Origin) -> Result<Upstream, UpstreamError> {
        let stream = open(origin, &self.tls).await?;
        Ok(Upstream {
            stream,
            buffer: bytes::BytesMut::with_capacity(8 * 1024),
        })
    }
}

/// A connection to `origin`: TCP (within [`CONNECT_TIMEOUT`]), and TLS with `tls` for https.
pub(crate) async fn open(
    origin: &Origin,
    tls: &TlsConnector,
) -> Result<ClientStream, UpstreamError> {
    let (host, port) = (origin.host.as_str(), origin.port);
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host, port)))
        .await
        .map_err(|_| {
            UpstreamError(format!(
                "could not connect to {host}:{port} within {} s",
                CONNECT_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|err| UpstreamError(format!("could not connect to {host}:{port}: {err}")))?;
    let _ = tcp.set_nodelay(true);
    if !origin.https {
        return Ok(ClientStream::Plain(tcp));
    }
    let name = ServerName::try_from(host.to_owned())
        .map_err(|err| UpstreamError(format!("{host}: {err}")))?;
    let tls = tls
        .connect(name, tcp)
        .await
        .map_err(|err| UpstreamError(format!("TLS handshake failed with {host}:{port}: {err}")))?;
    Ok(ClientStream::Tls(Box::new(tls)))
}

/// The TLS client configuration with `alpn` offered.
pub(crate) fn tls_connector(insecure: bool, alpn: &[&[u8]]) -> TlsConnector {
    TlsConnector::from(Arc::new(
        crate::tls::client_config(insecure, system_roots, alpn)
            .expect("the ring provider supports the default protocol versions"),
    ))
}
