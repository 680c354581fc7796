//! The web page on 127.0.0.1:8089: the control API (`api`), the live stream of updates
//! (server-sent events) and the page itself, embedded in the binary (`assets`). The runs it
//! starts are the engine's, through `Runs`; nothing here measures anything.

mod api;
mod assets;
mod form;
mod guard;
mod live;
mod runs;
mod system;
mod views;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use runs::Runs;

/// Where the page listens and who may use it.
#[derive(Debug, Clone)]
pub struct WebConfig {
    pub addr: SocketAddr,
    /// `--web-auth USER:PASS`: HTTP basic authentication on every route.
    pub auth: Option<(String, String)>,
    /// Host names the page answers to besides loopback and the address it is bound to
    /// (`--web-allowed-host`, and the name given to `--web-host`). A request naming any other
    /// host is refused, so a site that rebinds its own name to this address cannot use it.
    pub allowed_hosts: Vec<String>,
}

impl WebConfig {
    /// The page on `addr`, without a password, answering to loopback names and `addr`.
    pub fn new(addr: SocketAddr) -> WebConfig {
        WebConfig {
            addr,
            auth: None,
            allowed_hosts: Vec::new(),
        }
    }
}

/// A serving page; `shutdown` stops it.
pub use crate::server::Server as WebServer;

/// Binds `config.addr` and serves the page for `runs` on the current runtime.
pub async fn serve(config: WebConfig, runs: Arc<Runs>) -> io::Result<WebServer> {
    let listener = TcpListener::bind(config.addr).await.map_err(|err| {
        let hint = if err.kind() == io::ErrorKind::AddrInUse {
            " (another program uses that port: choose another with --web-port)"
        } else {
            ""
        };
        io::Error::new(
            err.kind(),
            format!(
                "could not serve the web page on {}: {err}{hint}",
                config.addr
            ),
        )
    })?;
    let stop = CancellationToken::new();
    let bound = listener.local_addr()?;
    let access = api::Access {
        auth: config.auth,
        hosts: guard::AllowedHosts::new(bound, &config.allowed_hosts),
    };
    let router = api::router(runs, access, stop.clone());
    WebServer::spawn(listener, router, stop)
}

/// The `full` event a page receives on connecting while a run has measured `aggregate`
/// (the body of `GET /api/stats` less the run's `info`). The page benchmark
/// (`benches/page.rs`) feeds it a four-hour history this way instead of waiting four hours;
/// the server itself goes through `Runs`.
#[doc(hidden)]
pub fn page_payload(aggregate: &crate::stats::Aggregate) -> String {
    views::live_json(aggregate).to_string()
}

/// True when `addr` is reachable only from this machine.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}
