//! Forward mode: an ordinary HTTP proxy. Absolute-form requests are forwarded and recorded;
//! CONNECT either tunnels bytes unrecorded (the host is listed in the capture) or, with
//! `--mitm`, terminates TLS with a certificate from the local CA and records the HTTPS
//! exchanges inside.

use std::sync::Arc;

use http::{Method, Request, Response, StatusCode, Uri};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use super::body::{self, ProxyBody};
use super::mitm::Ca;
use super::proxy::{self, Shared};

pub(crate) async fn handle(
    shared: Arc<Shared>,
    ca: Option<Arc<Ca>>,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    if request.method() == Method::CONNECT {
        return connect(shared, ca, request).await;
    }
    if request.uri().scheme().is_none() || request.uri().authority().is_none() {
        return proxy::plain(
            StatusCode::BAD_REQUEST,
            "this is chorus record --forward, an HTTP proxy: set it as the browser's HTTP and HTTPS proxy \
             instead of opening it as a page (or record with --target URL for reverse mode)",
        );
    }
    let upstream = request.uri().clone();
    proxy::exchange(shared, request, upstream, None).await
}

async fn connect(
    shared: Arc<Shared>,
    ca: Option<Arc<Ca>>,
    mut request: Request<Incoming>,
) -> Response<ProxyBody> {
    let Some(authority) = request.uri().authority().cloned() else {
        return proxy::plain(
            StatusCode::BAD_REQUEST,
            "CONNECT needs host:port, e.g. CONNECT example.org:443",
        );
    };
    let host_port = if authority.port().is_some() {
        authority.to_string()
    } else {
        format!("{authority}:443")
    };
    let upgrade = hyper::upgrade::on(&mut request);
    match ca {
        Some(ca) => {
            let config = match ca.server_config(authority.host()) {
                Ok(config) => config,
                Err(err) => {
                    return proxy::plain(
                        StatusCode::BAD_GATEWAY,
                        &format!(
                            "could not issue a certificate for {}: {err}",
                            authority.host()
                        ),
                    );
                }
            };
            tokio::spawn(async move {
                let Ok(upgraded) = upgrade.await else { return };
                let Ok(tls) = TlsAcceptor::from(config)
                    .accept(TokioIo::new(upgraded))
                    .await
                else {
                    return;
                };
                let service = service_fn(move |request: Request<Incoming>| {
                    let shared = shared.clone();
                    let host_port = host_port.clone();
                    async move {
                        let path = request
                            .uri()
                            .path_and_query()
                            .map_or("/", |p| p.as_str())
                            .to_owned();
                        // The default port stays implicit, as browsers write the URL.
                        let origin = match host_port.strip_suffix(":443") {
                            Some(host) => format!("https://{host}"),
                            None => format!("https://{host_port}"),
                        };
                        let response = match format!("{origin}{path}").parse::<Uri>() {
                            Ok(upstream) => proxy::exchange(shared, request, upstream, None).await,
                            Err(err) => proxy::plain(StatusCode::BAD_REQUEST, &err.to_string()),
                        };
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
                let _ = http1::Builder::new()
                    .preserve_header_case(true)
                    .serve_connection(TokioIo::new(tls), service)
                    .with_upgrades()
                    .await;
            });
            Response::new(body::empty())
        }
        None => {
            let upstream = match TcpStream::connect(&host_port).await {
                Ok(stream) => stream,
                Err(err) => {
                    return proxy::plain(
                        StatusCode::BAD_GATEWAY,
                        &format!("chorus record could not connect to {host_port}: {err}"),
                    );
                }
            };
            shared.sink.tunnel(host_port);
            tokio::spawn(async move {
                let Ok(upgraded) = upgrade.await else { return };
                let mut browser = TokioIo::new(upgraded);
                let mut upstream = upstream;
                let _ = tokio::io::copy_bidirectional(&mut browser, &mut upstream).await;
            });
            Response::new(body::empty())
        }
    }
}
