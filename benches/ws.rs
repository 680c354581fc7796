//! Memory per WebSocket user: 10,000 users each open a WebSocket to an echo server (in this
//! process, so its sockets are not counted), then send a message a second and wait for its
//! echo; once they are all running, prints chorus's resident memory per user from /proc,
//! absolute and marginal (against a run of 100 users). Target: <= 30 KiB per user.
//!
//! `cargo bench --bench ws` (CHORUS_BENCH_USERS=10000 by default).

#[path = "util/resident.rs"]
#[allow(dead_code)]
mod resident;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::routing::get;

/// An echo server on a free loopback port, on a runtime of its own thread.
fn echo_server() -> SocketAddr {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let router = Router::new().route(
                "/echo",
                get(|ws: WebSocketUpgrade| async { ws.on_upgrade(echo) }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("a port");
            sender.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, router)
                .await
                .expect("the echo server runs");
        });
    });
    receiver.recv().expect("the echo server starts")
}

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        if let Message::Text(_) = message {
            if socket.send(message).await.is_err() {
                return;
            }
        }
    }
}

/// Resident memory (KiB) of a `chorus run` of `users` users after they all started, and the
/// requests and failures the run reported.
fn resident_kib(scenario: &std::path::Path, users: u64, dir: &std::path::Path) -> (u64, u64, u64) {
    let json = dir.join(format!("ws-{users}.json"));
    let run = resident::measure(&[scenario.display().to_string()], users, &json);
    (run.kib, run.requests, run.failures)
}

fn main() {
    let users: u64 = std::env::var("CHORUS_BENCH_USERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    // The echo server holds a socket per user too.
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let raised = rustix::process::Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    let _ = rustix::process::setrlimit(rustix::process::Resource::Nofile, raised);
    let address = echo_server();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let scenario = dir.path().join("ws.yaml");
    std::fs::write(
        &scenario,
        format!(
            "host: http://{address}\non_start:\n  - ws: /echo\nflows:\n  - steps:\n      - send: \"hello {{{{ vu }}}}\"\n      - receive: any\n        timeout: 10s\n      - think: 1s\n"
        ),
    )
    .expect("write the scenario");
    let (small, _, _) = resident_kib(&scenario, 100, dir.path());
    let (large, requests, failures) = resident_kib(&scenario, users, dir.path());
    println!(
        "{users} WebSocket users, each one message a second and its echo ({requests} requests, {failures} failures)"
    );
    println!("resident memory      {large:>8} KiB");
    println!(
        "per user (absolute)  {:>8.1} KiB",
        large as f64 / users as f64
    );
    println!(
        "per user (marginal)  {:>8.1} KiB (against 100 users: {small} KiB; target <= 30 KiB)",
        (large.saturating_sub(small)) as f64 / (users - 100) as f64
    );
}
