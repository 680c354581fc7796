//! The recording proxy: reverse mode (the 2013 style) and forward mode with CONNECT and
//! optional HTTPS interception. Everything is forwarded; what matches the filters is captured
//! into a HAR file.
//!
//! [`RecordConfig::new`] validates what the user typed (target URL, regular expressions,
//! output path); [`start`] binds the port and returns a [`Recorder`] with the bound address,
//! a live [`Summary`], a stream of [`Event`]s for the terminal, and [`Recorder::shutdown`].
//! The proxy never prints: the CLI decides what the terminal shows.
//!
//! Layout: `capture` builds entries (pure), `rewrite` adjusts reverse-mode headers (pure),
//! `websocket` parses frames and `events` reads event streams (pure); `relay` runs a browser connection's exchanges (its `wire`
//! part is the pure HTTP/1.1 framing), `relay_h2` a browser's HTTP/2 connection in an
//! intercepted tunnel,
//! `sink` writes the file on its own thread, `upstream` connects to the application,
//! `forward` answers CONNECT, `mitm` issues certificates.

pub mod access;
mod applications;
pub mod capture;
pub mod mitm;

mod events;
mod forward;
mod relay;
mod relay_h2;
mod rewrite;
mod sink;
mod upstream;
mod websocket;

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use regex::Regex;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::har;
use capture::Filter;
use mitm::{Ca, CaError};
use relay::{ProxyState, Route};

/// The default `--max-body`: 10 MiB.
pub const DEFAULT_MAX_BODY: u64 = 10 * 1024 * 1024;

/// What the user asked for, before validation (the CLI's and any other caller's input).
#[derive(Debug, Clone)]
pub struct RecordOptions {
    /// Reverse mode: the application's URL. `None` means forward mode.
    pub target: Option<String>,
    /// Forward mode: intercept HTTPS with a local CA.
    pub mitm: bool,
    pub listen: SocketAddr,
    /// A folder (a file named after the start time is created in it) or a `.har` file.
    pub output: PathBuf,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub max_body: u64,
    /// Accept any certificate from HTTPS applications.
    pub insecure: bool,
    /// Where the interception CA lives (default: `$HOME/.config/chorus/ca`).
    pub ca_dir: Option<PathBuf>,
    /// `--proxy-auth USER:PASS`: the credentials the recorder asks for (see [`access`]).
    pub proxy_auth: Option<String>,
    /// `--i-know-this-is-open`: listen beyond loopback without credentials.
    pub open: bool,
}

impl Default for RecordOptions {
    fn default() -> Self {
        Self {
            target: None,
            mitm: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            output: PathBuf::from("captures"),
            include: Vec::new(),
            exclude: Vec::new(),
            max_body: DEFAULT_MAX_BODY,
            insecure: false,
            ca_dir: None,
            proxy_auth: None,
            open: false,
        }
    }
}

/// Reverse or forward.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Every request goes to this application (scheme, host, port, and an optional path
    /// prefix without a trailing slash).
    Reverse { target: url::Url },
    /// An ordinary HTTP proxy; with `mitm`, HTTPS is intercepted and recorded.
    Forward { mitm: bool, ca_dir: PathBuf },
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct RecordConfig {
    pub mode: Mode,
    pub listen: SocketAddr,
    pub output: PathBuf,
    pub filter: Filter,
    pub max_body: usize,
    pub insecure: bool,
    /// Who may use the recorder; `None`: anyone who reaches it.
    pub auth: Option<access::ProxyAuth>,
}

/// Why the recorder could not start.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(
        "--target {value:?}: {reason}; write the application's address as http://HOST:PORT or https://HOST:PORT, e.g. http://127.0.0.1:8001"
    )]
    InvalidTarget { value: String, reason: String },
    #[error("--{flag} {value:?}: not a valid regular expression: {message}")]
    InvalidRegex {
        flag: &'static str,
        value: String,
        message: String,
    },
    #[error("--max-body {0}: too large for this machine")]
    MaxBody(u64),
    /// A non-loopback address without `--proxy-auth`, or bad credentials.
    #[error("{0}")]
    Access(String),
    #[error("could not listen on {addr}: {source}{}", if source.kind() == io::ErrorKind::AddrInUse { "; another program (or another chorus record) uses that port: pick another with --listen 127.0.0.1:PORT" } else { "" })]
    Listen {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("could not create the capture file {}: {source}; choose another place with -o", path.display())]
    Output {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// (Not a `#[source]`: the message holds the CA's own, which would be printed twice.)
    #[error("could not prepare the HTTPS interception CA: {0}")]
    Ca(CaError),
    #[error("could not start the capture writer: {0}")]
    Writer(io::Error),
}

impl From<CaError> for RecordError {
    fn from(error: CaError) -> Self {
        RecordError::Ca(error)
    }
}

impl RecordConfig {
    /// Validates the options: the target must be an absolute http(s) URL, the filters valid
    /// regular expressions. The output path is resolved by [`start`].
    pub fn new(options: RecordOptions) -> Result<RecordConfig, RecordError> {
        let mode = match &options.target {
            Some(value) => Mode::Reverse {
                target: parse_target(value)?,
            },
            None => Mode::Forward {
                mitm: options.mitm,
                ca_dir: options.ca_dir.clone().unwrap_or_else(default_ca_dir),
            },
        };
        let compile = |flag: &'static str, values: &[String]| {
            values
                .iter()
                .map(|value| {
                    Regex::new(value).map_err(|err| RecordError::InvalidRegex {
                        flag,
                        value: value.clone(),
                        message: err.to_string(),
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let auth = options
            .proxy_auth
            .as_deref()
            .map(access::ProxyAuth::parse)
            .transpose()
            .map_err(RecordError::Access)?;
        access::check_listen(options.listen, auth.is_some(), options.open)
            .map_err(RecordError::Access)?;
        Ok(RecordConfig {
            mode,
            listen: options.listen,
            output: options.output,
            filter: Filter {
                include: compile("include", &options.include)?,
                exclude: compile("exclude", &options.exclude)?,
            },
            max_body: usize::try_from(options.max_body)
                .map_err(|_| RecordError::MaxBody(options.max_body))?,
            insecure: options.insecure,
            auth,
        })
    }
}

fn parse_target(value: &str) -> Result<url::Url, RecordError> {
    let invalid = |reason: String| RecordError::InvalidTarget {
        value: value.to_owned(),
        reason,
    };
    if !value.contains("://") {
        return Err(invalid(
            "it does not start with http:// or https://".to_owned(),
        ));
    }
    let url = url::Url::parse(value).map_err(|err| invalid(format!("not a URL ({err})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "the scheme is {:?}, expected http or https",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("it has no host".to_owned()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("it has a query or fragment".to_owned()));
    }
    Ok(url)
}

fn default_ca_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("chorus").join("ca")
}

/// What was recorded so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Entries written to the file.
    pub exchanges: u64,
    /// Requests forwarded, recorded or not.
    pub forwarded: u64,
    /// `host[:port]` of the recorded exchanges, in order of first appearance.
    pub hosts: Vec<String>,
    /// Request and response body bytes of the recorded exchanges, as transferred.
    pub bytes: u64,
    pub path: PathBuf,
    /// CONNECT tunnels that passed through unrecorded.
    pub tunnelled_hosts: Vec<String>,
    /// Set when writing failed and recording stopped (forwarding goes on).
    pub recording_error: Option<String>,
}

/// What the terminal may want to show while recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// One exchange: method, path, status, milliseconds, size.
    Exchange { line: String },
    /// Writing the capture failed; nothing more is recorded, forwarding goes on.
    RecordingStopped { reason: String },
}

/// A running recorder.
pub struct Recorder {
    addr: SocketAddr,
    path: PathBuf,
    summary: Arc<Mutex<Summary>>,
    shared: Arc<ProxyState>,
    events: broadcast::Sender<Event>,
    stop: CancellationToken,
    task: JoinHandle<()>,
    ca: Option<Arc<Ca>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("addr", &self.addr)
            .field("path", &self.path)
            .finish()
    }
}

impl Recorder {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The HAR file being written.
    pub fn capture_path(&self) -> &Path {
        &self.path
    }

    /// The interception CA, in forward mode with `--mitm`.
    pub fn ca(&self) -> Option<&Ca> {
        self.ca.as_deref()
    }

    /// Events from now on. A receiver that falls far behind skips events rather than
    /// slowing the proxy.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    pub fn summary(&self) -> Summary {
        let mut summary = self
            .summary
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        summary.forwarded = self.shared.forwarded.load(Ordering::Relaxed);
        summary
    }

    /// Stops accepting, lets exchanges in flight finish (up to 5 s), finishes the file and
    /// returns the final summary.
    pub async fn shutdown(self) -> Summary {
        self.stop.cancel();
        let _ = self.task.await;
        let mut summary = self.shared.sink.finish().await.unwrap_or_else(|| {
            self.summary
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        });
        summary.forwarded = self.shared.forwarded.load(Ordering::Relaxed);
        summary
    }
}

/// Resolves `-o`: a `.har` path is the file; anything else is a folder that gets a file
/// named after the start time.
fn capture_file(output: &Path) -> Result<PathBuf, RecordError> {
    let output_err = |path: &Path| {
        let path = path.to_owned();
        move |source| RecordError::Output { path, source }
    };
    let is_file = output
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("har"))
        || (output.exists() && !output.is_dir());
    if is_file {
        if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(output_err(parent))?;
        }
        return Ok(output.to_owned());
    }
    std::fs::create_dir_all(output).map_err(output_err(output))?;
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(':', "-");
    let mut path = output.join(format!("{stamp}.har"));
    let mut n = 2;
    while path.exists() {
        path = output.join(format!("{stamp}-{n}.har"));
        n += 1;
    }
    Ok(path)
}

/// Binds the port, creates the capture file and starts proxying on the current runtime.
pub async fn start(config: RecordConfig) -> Result<Recorder, RecordError> {
    let listener =
        TcpListener::bind(config.listen)
            .await
            .map_err(|source| RecordError::Listen {
                addr: config.listen,
                source,
            })?;
    let addr = listener
        .local_addr()
        .map_err(|source| RecordError::Listen {
            addr: config.listen,
            source,
        })?;
    let ca = match &config.mode {
        Mode::Forward { mitm: true, ca_dir } => Some(Arc::new(Ca::load_or_create(ca_dir)?)),
        _ => None,
    };
    let path = capture_file(&config.output)?;
    // Opening is checked here so that a wrong path is refused at once; a file that opens
    // but cannot be written (a full disk) only stops the recording.
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(|source| RecordError::Output {
            path: path.clone(),
            source,
        })?;
    let creator = har::Creator {
        name: "chorus".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        comment: None,
    };
    let comment = match &config.mode {
        Mode::Reverse { target } => format!("chorus record --target {target}"),
        Mode::Forward { mitm: true, .. } => "chorus record --forward --mitm".to_owned(),
        Mode::Forward { .. } => "chorus record --forward".to_owned(),
    };
    let writer = har::write::Writer::create(&path, &creator, Some(&comment))
        .map_err(|err| format!("could not write to {}: {err}", path.display()));
    let summary = Arc::new(Mutex::new(Summary {
        path: path.clone(),
        ..Summary::default()
    }));
    // Room for what the terminal shows a few times a second, at the fastest the proxy goes.
    let (events, _) = broadcast::channel(1 << 15);
    let sink = sink::spawn(
        writer,
        path.clone(),
        config.max_body,
        events.clone(),
        summary.clone(),
    )
    .map_err(RecordError::Writer)?;
    let shared = Arc::new(ProxyState {
        pool: upstream::Pool::new(config.insecure),
        applications: applications::Applications::new(config.insecure),
        sink,
        filter: config.filter.clone(),
        max_body: config.max_body,
        forwarded: AtomicU64::new(0),
        auth: config.auth.clone(),
    });
    let stop = CancellationToken::new();
    let task = tokio::spawn(accept_loop(
        listener,
        config.mode.clone(),
        shared.clone(),
        ca.clone(),
        stop.clone(),
    ));
    Ok(Recorder {
        addr,
        path,
        summary,
        shared,
        events,
        stop,
        task,
        ca,
    })
}

async fn accept_loop(
    listener: TcpListener,
    mode: Mode,
    shared: Arc<ProxyState>,
    ca: Option<Arc<Ca>>,
    stop: CancellationToken,
) {
    let tracker = TaskTracker::new();
    let route = Arc::new(match &mode {
        Mode::Reverse { target } => Route::reverse(target),
        Mode::Forward { .. } => Route::Forward,
    });
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors and the like: wait a little rather than spin.
                Err(_) => { tokio::time::sleep(Duration::from_millis(50)).await; continue; }
            },
            () = stop.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let route = route.clone();
        let ca = ca.clone();
        let stop = stop.clone();
        let local = stream.local_addr().ok();
        tracker.spawn(async move {
            let ended = relay::serve(shared.clone(), stream, &route, local, stop.clone()).await;
            if let relay::Ended::Connect { browser, head } = ended {
                forward::connect(shared, ca, browser, head, stop).await;
            }
        });
    }
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(target: &str) -> RecordOptions {
        RecordOptions {
            target: Some(target.to_owned()),
            ..RecordOptions::default()
        }
    }

    #[test]
    fn a_bad_target_is_refused_with_advice() {
        for (target, reason) in [
            (
                "127.0.0.1:8001",
                "it does not start with http:// or https://",
            ),
            ("localhost", "it does not start with http:// or https://"),
            ("ftp://host/", "the scheme is \"ftp\""),
            ("http://", "not a URL (empty host)"),
        ] {
            let err = RecordConfig::new(options(target)).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("--target {target:?}: {reason}")),
                "{err}"
            );
            assert!(err.ends_with("e.g. http://127.0.0.1:8001"), "{err}");
        }
        assert!(RecordConfig::new(options("https://app.example.org/base")).is_ok());
    }

    #[test]
    fn a_bad_filter_is_refused() {
        let err = RecordConfig::new(RecordOptions {
            include: vec!["(".to_owned()],
            ..options("http://a")
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("--include \"(\": not a valid regular expression"),
            "{err}"
        );
    }
}
