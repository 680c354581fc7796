//! Making a user's connections: the name resolved, TCP from the next source address
//! (`--source-addrs`), TLS with the ALPN offered, each phase timed, within the connect
//! timeout; and the sentences for a connection that could not be made.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rustls::pki_types::ServerName;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

use super::{Client, Endpoint, TransportError};
use crate::stats::{FailureKind, Setup};
use crate::tls::ClientStream;

impl Client {
    /// The source address of the next connection to `target`: the next of `--source-addrs`
    /// of the same family, if any.
    pub(super) fn source_for(&self, target: &SocketAddr) -> Option<IpAddr> {
        if self.sources.is_empty() {
            return None;
        }
        let start = self.next_source.fetch_add(1, Ordering::Relaxed);
        (0..self.sources.len())
            .map(|offset| self.sources[(start + offset) % self.sources.len()])
            .find(|ip| ip.is_ipv4() == target.is_ipv4())
    }

    /// Connects to `origin`'s addresses in turn, from the next source address.
    /// Also says when the name was resolved (the phases' split between DNS and TCP).
    pub(super) async fn tcp_connect(
        &self,
        origin: &Endpoint,
    ) -> Result<(TcpStream, Instant), ConnectError> {
        let mut last = None;
        let addrs = tokio::net::lookup_host((origin.host.as_str(), origin.port))
            .await
            .map_err(|err| ConnectError {
                err,
                source: None,
                binding: false,
            })?;
        let resolved = Instant::now();
        for addr in addrs {
            let source = self.source_for(&addr);
            match connect_from(source, addr).await {
                Ok(stream) => return Ok((stream, resolved)),
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or_else(|| ConnectError {
            err: io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} has no address", origin.host),
            ),
            source: None,
            binding: false,
        }))
    }

    /// The sentence for a connection that could not be made; running out of source ports is
    /// also said once on stderr, as one line for the whole run.
    pub(super) fn connect_failure(&self, target: &str, failed: &ConnectError) -> String {
        let from = failed
            .source
            .map_or_else(|| "this machine".to_owned(), |ip| ip.to_string());
        match (failed.err.kind(), failed.binding) {
            (io::ErrorKind::AddrNotAvailable, true) => format!(
                "could not connect to {target} from {from}: it is not an address of this machine (--source-addrs)"
            ),
            (io::ErrorKind::AddrNotAvailable, false) | (io::ErrorKind::AddrInUse, _) => {
                let message = format!(
                    "could not connect to {target}: no source port left on {from} (the kernel's ephemeral port range is used up); spread the connections over more local addresses with --source-addrs (for a loopback target, 127.0.0.1-127.0.0.8), or run fewer users"
                );
                if !self.ports_said.swap(true, Ordering::Relaxed) {
                    tracing::warn!("{message}");
                }
                message
            }
            _ => format!("could not connect to {target}: {}", failed.err),
        }
    }
}

impl Client {
    /// A connection to `origin` (TCP, and TLS for https), within the connect timeout; a
    /// failure's latency runs from `began`.
    pub(crate) async fn connect(
        &self,
        origin: &Endpoint,
        began: Instant,
    ) -> Result<ClientStream, TransportError> {
        self.connect_timed(origin, began, false)
            .await
            .map(|(stream, _)| stream)
    }

    /// [`Client::connect`], and how long its name, TCP and TLS took; `offer_http2`: HTTP/2
    /// is offered by ALPN beside HTTP/1.1.
    pub(super) async fn connect_timed(
        &self,
        origin: &Endpoint,
        began: Instant,
        offer_http2: bool,
    ) -> Result<(ClientStream, Setup), TransportError> {
        let mut setup = Setup::default();
        let connect_deadline = Instant::now() + self.connect_timeout;
        let fail = |kind, message| TransportError {
            kind,
            message,
            latency: began.elapsed(),
        };
        let target = origin.authority();
        let connecting = Instant::now();
        let stream = match tokio::time::timeout_at(connect_deadline, self.tcp_connect(origin)).await
        {
            Ok(Ok((stream, resolved))) => {
                setup.dns = resolved.saturating_duration_since(connecting);
                setup.connect = resolved.elapsed();
                stream
            }
            Ok(Err(failed)) => {
                let kind = match failed.err.kind() {
                    io::ErrorKind::ConnectionRefused => FailureKind::ConnectRefused,
                    io::ErrorKind::TimedOut => FailureKind::ConnectTimeout,
                    _ => FailureKind::Connect,
                };
                let message = match kind {
                    FailureKind::ConnectRefused => {
                        format!("{target} refused the connection (is the server running?)")
                    }
                    _ => self.connect_failure(&target, &failed),
                };
                return Err(fail(kind, message));
            }
            Err(_) => {
                return Err(fail(
                    FailureKind::ConnectTimeout,
                    format!(
                        "no connection to {target} within the connect timeout of {}",
                        humantime::format_duration(self.connect_timeout)
                    ),
                ));
            }
        };
        let _ = stream.set_nodelay(true);
        let stream = if origin.https {
            let handshake = Instant::now();
            let name = ServerName::try_from(origin.host.clone()).map_err(|err| {
                fail(
                    FailureKind::Tls,
                    format!("{:?} is not a valid TLS server name: {err}", origin.host),
                )
            })?;
            let tls = if offer_http2 {
                &self.tls_http2
            } else {
                &self.tls
            };
            match tokio::time::timeout_at(connect_deadline, tls.connect(name, stream)).await {
                Ok(Ok(tls)) => {
                    setup.tls = Some(handshake.elapsed());
                    ClientStream::Tls(Box::new(tls))
                }
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
                            humantime::format_duration(self.connect_timeout)
                        ),
                    ));
                }
            }
        } else {
            ClientStream::Plain(stream)
        };
        Ok((stream, setup))
    }
}

/// A connection that could not be made: the error, the source address it was to leave
/// from, and whether binding to that address failed (rather than connecting).
pub(super) struct ConnectError {
    err: io::Error,
    source: Option<IpAddr>,
    binding: bool,
}

/// Connects to `addr`, from `source` when given (the socket bound to it, port 0, first).
pub(super) async fn connect_from(
    source: Option<IpAddr>,
    addr: SocketAddr,
) -> Result<TcpStream, ConnectError> {
    let failed = |binding| {
        move |err| ConnectError {
            err,
            source,
            binding,
        }
    };
    let Some(ip) = source else {
        return TcpStream::connect(addr).await.map_err(failed(false));
    };
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(failed(false))?;
    leave_the_port_to_connect(&socket);
    socket.bind(SocketAddr::new(ip, 0)).map_err(failed(true))?;
    socket.connect(addr).await.map_err(failed(false))
}

/// Asks the kernel to pick the source port at `connect`, not at `bind` (Linux's
/// `IP_BIND_ADDRESS_NO_PORT`). A port picked at `bind` must be free for every destination,
/// and the kernel's search for one slows to a crawl as the range fills (at 70,000 users over
/// three loopback addresses, about 2 ms of CPU per request); picked at `connect`, a port
/// need only make the four-tuple unique. Best effort: without it the bind still works.
fn leave_the_port_to_connect(socket: &TcpSocket) {
    #[cfg(target_os = "linux")]
    {
        use nix::sys::socket::{setsockopt, sockopt::IpBindAddressNoPort};
        if let Err(err) = setsockopt(socket, IpBindAddressNoPort, &true) {
            tracing::debug!("IP_BIND_ADDRESS_NO_PORT: {err}");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = socket;
}

pub(super) fn tls_config(
    accept_invalid_certs: bool,
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let roots = || rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    crate::tls::client_config(accept_invalid_certs, roots, alpn).map(Arc::new)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn source_addresses_go_in_turn_and_their_failures_say_what_to_do() {
        let sources = vec![
            "127.0.0.2".parse().unwrap(),
            "::1".parse().unwrap(),
            "127.0.0.3".parse().unwrap(),
        ];
        let client = Client::new(
            Duration::from_secs(1),
            Duration::from_secs(1),
            1024,
            false,
            sources,
        )
        .unwrap();
        let v4: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let v6: SocketAddr = "[::1]:80".parse().unwrap();
        let picked: Vec<String> = (0..4)
            .map(|_| client.source_for(&v4).unwrap().to_string())
            .collect();
        // The IPv6 one is skipped for an IPv4 target.
        assert_eq!(picked, ["127.0.0.2", "127.0.0.3", "127.0.0.3", "127.0.0.2"]);
        assert_eq!(client.source_for(&v6).unwrap().to_string(), "::1");

        let failed = |kind, binding| ConnectError {
            err: io::Error::from(kind),
            source: Some("127.0.0.2".parse().unwrap()),
            binding,
        };
        assert_eq!(
            client.connect_failure(
                "127.0.0.1:80",
                &failed(io::ErrorKind::AddrNotAvailable, true)
            ),
            "could not connect to 127.0.0.1:80 from 127.0.0.2: it is not an address of this machine (--source-addrs)"
        );
        assert!(!client.ports_said.load(Ordering::Relaxed));
        for (kind, binding) in [
            (io::ErrorKind::AddrNotAvailable, false),
            (io::ErrorKind::AddrInUse, true),
        ] {
            assert!(
                client
                    .connect_failure("127.0.0.1:80", &failed(kind, binding))
                    .starts_with(
                        "could not connect to 127.0.0.1:80: no source port left on 127.0.0.2"
                    )
            );
        }
        assert!(client.ports_said.load(Ordering::Relaxed));
    }
}
