//! Forward mode's CONNECT: the relay ([`super::relay`]) forwards and records absolute-form
//! requests itself and hands a CONNECT here, which either tunnels bytes unrecorded (the host
//! is listed in the capture) or, with `--mitm`, terminates TLS with a certificate from the
//! local CA and relays the HTTPS exchanges inside, recording them: HTTP/2 when the browser
//! takes it by ALPN ([`super::relay_h2`]), else HTTP/1.1 ([`super::relay`]).

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::mitm::Ca;
use super::relay::{self, ProxyState, Route, wire};
use super::upstream::Origin;

/// Answers a CONNECT request (`head`) on `browser`: a tunnel, or with `ca` an intercepted one.
pub(crate) async fn connect<S>(
    shared: Arc<ProxyState>,
    ca: Option<Arc<Ca>>,
    mut browser: S,
    head: wire::Head,
    stop: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let authority = head.target();
    let origin = match Origin::new(true, authority) {
        Ok(origin) => origin,
        Err(err) => {
            let text = format!("CONNECT needs host:port, e.g. CONNECT example.org:443 ({err})");
            let _ = refuse(&mut browser, 400, "Bad Request", &text).await;
            return;
        }
    };
    let host_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.contains(']'))
    {
        authority.to_owned()
    } else {
        format!("{authority}:443")
    };
    match ca {
        Some(ca) => {
            let config = match ca.server_config(&origin.host) {
                Ok(config) => config,
                Err(err) => {
                    let text = format!("could not issue a certificate for {}: {err}", origin.host);
                    let _ = refuse(&mut browser, 502, "Bad Gateway", &text).await;
                    return;
                }
            };
            if established(&mut browser).await.is_err() {
                return;
            }
            let Ok(tls) = TlsAcceptor::from(config).accept(browser).await else {
                return;
            };
            // The browser chose by ALPN; WebSockets come on connections that offer only
            // HTTP/1.1 (extended CONNECT is not offered).
            if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                super::relay_h2::serve(shared, tls, origin, stop).await;
                return;
            }
            let route = Route::Intercepted { origin };
            relay::serve(shared, tls, &route, None, stop).await;
        }
        None => {
            let address = (origin.host.as_str(), origin.port);
            let mut upstream = match TcpStream::connect(address).await {
                Ok(stream) => stream,
                Err(err) => {
                    let text = format!("chorus record could not connect to {host_port}: {err}");
                    let _ = refuse(&mut browser, 502, "Bad Gateway", &text).await;
                    return;
                }
            };
            shared.sink.tunnel(host_port);
            if established(&mut browser).await.is_err() {
                return;
            }
            let _ = tokio::io::copy_bidirectional(&mut browser, &mut upstream).await;
        }
    }
}

async fn established<S: AsyncWrite + Unpin>(browser: &mut S) -> std::io::Result<()> {
    browser
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await?;
    browser.flush().await
}

async fn refuse<S: AsyncWrite + Unpin>(
    browser: &mut S,
    status: u16,
    reason: &str,
    text: &str,
) -> std::io::Result<()> {
    let answer = wire::answer(
        status,
        reason,
        "text/plain; charset=utf-8",
        format!("{text}\n").as_bytes(),
    );
    browser.write_all(&answer).await?;
    browser.flush().await
}
