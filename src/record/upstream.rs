//! The proxy's side towards the application: pooled HTTP/1.1 connections over plain TCP or
//! rustls (verified against the system's roots, or not at all with `--insecure`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::body::ProxyBody;
use crate::tls::ClientStream;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections kept per application origin.
const MAX_IDLE: usize = 64;

/// Why a request could not be sent or answered.
#[derive(Debug)]
pub(crate) struct UpstreamError(String);

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UpstreamError {}

/// (HTTPS, `host:port`) of an application.
type Origin = (bool, String);

/// A pool of HTTP/1.1 connections per origin, built on hyper's connection API: a request
/// takes an idle connection that is ready (its previous response fully read) or opens one.
/// Nothing is spawned per request, which matters on a loaded machine.
pub(crate) struct UpstreamClient {
    tls: TlsConnector,
    idle: Mutex<HashMap<Origin, Vec<SendRequest<ProxyBody>>>>,
}

/// Builds the client; `insecure` accepts any certificate.
pub(crate) fn client(insecure: bool) -> UpstreamClient {
    UpstreamClient {
        tls: TlsConnector::from(Arc::new(tls_config(insecure))),
        idle: Mutex::new(HashMap::new()),
    }
}

impl UpstreamClient {
    /// Sends `request` (its URI absolute) and returns the response head; the body streams.
    pub(crate) async fn request(
        &self,
        mut request: Request<ProxyBody>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let uri = request.uri().clone();
        let https = uri.scheme_str() == Some("https");
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .ok_or_else(|| UpstreamError(format!("{uri} has no host")))?;
        let key = (https, authority);
        // HTTP/1.1 to an origin server takes the path, not the absolute URL.
        *request.uri_mut() = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .unwrap_or_else(|_| Uri::from_static("/"));
        let mut request = request;
        // A pooled connection may have been closed by the server in the meantime; hyper
        // hands the request back when it was not sent, and a fresh connection takes it.
        for attempt in 0..2 {
            let mut sender = match (attempt, self.checkout(&key)) {
                (0, Some(sender)) => sender,
                _ => self.connect(&uri, https).await?,
            };
            match sender.try_send_request(request).await {
                Ok(response) => {
                    self.checkin(key, sender);
                    return Ok(response);
                }
                Err(mut err) => match err.take_message() {
                    Some(unsent) if attempt == 0 => request = unsent,
                    _ => return Err(UpstreamError(chain(err.error()))),
                },
            }
        }
        Err(UpstreamError(
            "the application closed every connection".to_owned(),
        ))
    }

    fn checkout(&self, key: &Origin) -> Option<SendRequest<ProxyBody>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.get_mut(key)?;
        list.retain(|sender| !sender.is_closed());
        let ready = list.iter().position(SendRequest::is_ready)?;
        Some(list.swap_remove(ready))
    }

    fn checkin(&self, key: Origin, sender: SendRequest<ProxyBody>) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.entry(key).or_default();
        if list.len() < MAX_IDLE {
            list.push(sender);
        }
    }

    async fn connect(
        &self,
        uri: &Uri,
        https: bool,
    ) -> Result<SendRequest<ProxyBody>, UpstreamError> {
        let host = uri.host().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
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
        let stream = if https {
            let name = ServerName::try_from(host.to_owned())
                .map_err(|err| UpstreamError(format!("{host}: {err}")))?;
            let tls = self.tls.connect(name, tcp).await.map_err(|err| {
                UpstreamError(format!("TLS handshake failed with {host}:{port}: {err}"))
            })?;
            ClientStream::Tls(Box::new(tls))
        } else {
            ClientStream::Plain(tcp)
        };
        let (sender, connection) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|err| UpstreamError(chain(&err)))?;
        tokio::spawn(async move {
            let _ = connection.with_upgrades().await;
        });
        Ok(sender)
    }
}

fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    super::proxy::error_chain(err)
}

fn tls_config(insecure: bool) -> ClientConfig {
    crate::tls::client_config(insecure, system_roots)
        .expect("the ring provider supports the default protocol versions")
}

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
