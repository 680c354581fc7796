//! A served axum router: bound, serving on the current runtime, stopped on request. The demo
//! app and the web page are both served this way.

use std::io;
use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running server; dropping it does not stop it, `shutdown` does.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<io::Result<()>>,
}

impl Server {
    /// Serves `router` on `listener` until `stop` is cancelled (by `shutdown` or by whoever
    /// else holds the token, such as streams that must end for a graceful shutdown).
    pub(crate) fn spawn(
        listener: TcpListener,
        router: axum::Router,
        stop: CancellationToken,
    ) -> io::Result<Server> {
        let addr = listener.local_addr()?;
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { stopped.cancelled().await })
                .await
        });
        Ok(Server { addr, stop, task })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets requests in flight finish, and waits for the server to end.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}
