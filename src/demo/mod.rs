//! The built-in demo application, a classroom game platform modelled on the 2013 target, and
//! `chorus demo`, which runs the whole workflow against it.
//!
//! The app behaves like a real one: a second login revokes the first session, game events must
//! name a live game session of the caller, every error is a 4xx JSON answer. So a replay that
//! gets identity or correlation wrong fails against it, visibly.

mod pages;
mod routes;
mod state;

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use crate::server::Server;
pub use routes::SESSION_COOKIE;
pub use state::{GAME_ID, TEACHER_PASSWORD, TEACHER_USERNAME};

/// `--seed CLASSESxSTUDENTS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seed {
    pub classes: u32,
    pub students: u32,
}

#[derive(Debug, Clone)]
pub struct AppOptions {
    /// The `eventsPeriodSecs` the app tells game clients.
    pub events_period_secs: u32,
    /// Classes and students created at start.
    pub seed: Option<Seed>,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            events_period_secs: 2,
            seed: None,
        }
    }
}

/// The demo application, ready to serve.
pub struct App {
    shared: Arc<routes::AppShared>,
    seeded: Vec<(String, String, String)>,
}

impl App {
    pub fn new(options: AppOptions) -> Self {
        let mut state = state::State::new(options.events_period_secs);
        let seeded = match options.seed {
            Some(seed) => state.seed(seed.classes, seed.students),
            None => Vec::new(),
        };
        Self {
            shared: Arc::new(routes::AppShared::new(state)),
            seeded,
        }
    }

    /// The seeded students as `(username, password, class)`.
    pub fn seeded_users(&self) -> &[(String, String, String)] {
        &self.seeded
    }

    /// Writes the seeded students as CSV with the header `username,password,class`.
    pub fn write_users_csv(&self, path: &Path) -> io::Result<()> {
        let mut writer = csv::Writer::from_path(path)?;
        writer.write_record(["username", "password", "class"])?;
        for row in &self.seeded {
            writer.write_record([&row.0, &row.1, &row.2])?;
        }
        writer.flush()
    }

    /// Gives `GET /api/v2/capacity` a known capacity: at most `concurrent` requests served
    /// at once, each for `service`, the others waiting their turn; theory says it serves
    /// `concurrent / service` requests a second at most. Without it the route answers at once.
    pub fn limit_capacity(&self, concurrent: usize, service: std::time::Duration) {
        self.shared.limit_capacity(concurrent, service);
    }

    /// The axum router, for serving it in another server or calling it without a socket.
    pub fn router(&self) -> axum::Router {
        routes::router(self.shared.clone())
    }
}

/// Binds `addr` (port 0 picks a free port) and serves the app on the current runtime.
pub async fn serve(app: &App, addr: SocketAddr) -> io::Result<Server> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|err| io::Error::new(err.kind(), format!("could not listen on {addr}: {err}")))?;
    Server::spawn(listener, app.router(), CancellationToken::new())
}
