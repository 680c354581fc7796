//! The scenario model: host, defaults, data sources, `on_start`, weighted `flows`, `on_stop`,
//! steps, templates, extraction rules and checks. Loading validates everything once, with
//! `file:line:column` errors, so nothing is parsed on the hot path.
//!
//! This module owns the model and its evaluation (plain functions over a user's variables);
//! it does no network IO. `docs/scenario.md` is the user's reference; `docs/internals.md`
//! the contract with the engine.

mod check;
mod check_load;
mod error;
mod extract;
mod functions;
mod limits;
mod load;
mod login;
mod messages;
mod precheck;
mod raw;
mod scripts;
mod socket;
mod socket_load;
mod steps;
mod template;
mod vars;
mod vars_load;
mod yaml;

use std::path::PathBuf;
use std::time::Duration;

pub use check::{Check, CheckKind, Expected, UrlPattern};
pub use error::{Problem, ScenarioError};
pub use extract::{Extract, ExtractError, ExtractKind, ResponseView};
pub use load::{load, load_str};
pub use socket::{
    JsonCondition, MessageCondition, Open, Receive, SEND_METHOD, Send, SocketKind, SocketStep,
    json_part, message_json,
};
pub use template::{Condition, Template, TemplateError};
pub use vars::Vars;

/// The hashes and encodings scripts get too (`chorus.hmac_sha256(key, text)`).
pub(crate) use functions::{base64, base64url, hmac_sha256, sha256};

use crate::data::DataSource;

/// Default time allowed to open a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time allowed for a whole request, from sending to the end of the response body.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default most of a response body kept for a step that reads it (16 MiB).
pub const DEFAULT_MAX_BODY: u64 = 16 << 20;

/// What the command line adds to or changes in a scenario file.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--data NAME=FILE`: read data source NAME from FILE instead of the file it names.
    pub data_overrides: Vec<(String, PathBuf)>,
    /// `-H/--host`: replaces the file's `host`.
    pub host_override: Option<String>,
    /// `--var NAME=VALUE`: sets (or adds) an entry of `vars:`.
    pub vars: Vec<(String, String)>,
    /// Environment variables read before the process's own (a cluster worker is given the
    /// values its master read): `env("NAME")` in a template.
    pub env: Vec<(String, String)>,
    /// Where a `multipart:` file part's `file:` (as written) is read from instead of the
    /// scenario's folder (a cluster worker is given the master's files).
    pub files: Vec<(String, PathBuf)>,
    /// `--script FILE`: JavaScript modules loaded beside the file's `scripts:`.
    pub scripts: Vec<PathBuf>,
    /// Where a script named (as written, in `scripts:` or by `--script`) is read from
    /// instead; those not named by `scripts:` load as `--script`s do (a cluster worker is
    /// given its master's scripts).
    pub script_files: Vec<(String, PathBuf)>,
}

/// A loaded, validated scenario: everything compiled, nothing left to parse.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The file it came from, for messages.
    pub source: PathBuf,
    /// Base URL; relative request URLs resolve against it.
    pub host: Option<url::Url>,
    /// `host[:port]` a run may send to: the host plus the host of every absolute URL.
    pub allowed_hosts: Vec<String>,
    pub defaults: Defaults,
    /// Loaded CSV tables.
    pub data: Vec<DataSource>,
    /// `vars:`: each user's initial variables, rendered once per user in this order.
    pub vars: Vec<(String, Template)>,
    pub on_start: Vec<Step>,
    pub flows: Vec<Flow>,
    pub on_stop: Vec<Step>,
    /// `thresholds:`, parsed (and so checked) at load.
    pub thresholds: Vec<crate::stats::Threshold>,
    /// `monitors:`: what to watch beside the load, as `--monitor` takes it (both are used).
    pub monitors: Vec<crate::monitor::Spec>,
    /// `otlp: URL` (or `--otlp`, which wins): where the run's numbers are pushed over OTLP.
    pub otlp: Option<url::Url>,
    /// `capture:`: the recording the scenario was converted from (relative paths resolved
    /// against the scenario's folder); `--check` compares the replay with it.
    pub capture: Option<PathBuf>,
    /// `auth:`: the credentials the engine answers HTTP authentication challenges with.
    pub auth: Option<Credentials>,
    /// `relogin:`: the responses in a flow that mean the user's session ended.
    pub relogin: Option<Relogin>,
    /// The environment variables templates read by name (`env("NAME")`), as loading read
    /// them: every user, and every worker of a cluster, sees these values.
    pub env: Vec<(String, String)>,
    /// `scripts:` (and `--script`): the JavaScript functions the scenario calls.
    pub scripts: Option<std::sync::Arc<crate::script::Scripts>>,
}

/// HTTP authentication credentials (Basic, Digest), rendered per user.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub username: Template,
    pub password: Template,
}

/// When a request in a flow gets one of these answers (and the step does not expect it),
/// the user runs `on_start` again and sends the request once more.
#[derive(Debug, Clone)]
pub struct Relogin {
    /// Final statuses (`401`).
    pub statuses: Vec<u16>,
    /// A redirect (3xx) whose target matches (a login page).
    pub redirect: Option<UrlPattern>,
}

impl Relogin {
    /// Whether a redirect (3xx) goes where `redirect:` says (the login page). `location`:
    /// where it points, resolved.
    pub fn redirects_to_login(&self, status: u16, location: Option<&url::Url>) -> bool {
        matches!(status, 301 | 302 | 303 | 307 | 308)
            && self
                .redirect
                .as_ref()
                .zip(location)
                .is_some_and(|(pattern, location)| pattern.matches(location))
    }
}

/// Settings that apply to every request.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub headers: Vec<(http::HeaderName, Template)>,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// `max_body:`: the most of a response body kept for a step that reads it.
    pub max_body: u64,
    /// `trace_headers: true` (or `--trace-headers`): every request carries a W3C
    /// `traceparent` and a `baggage` naming the virtual user, its flow and its account.
    pub trace_headers: bool,
    /// `http:` (or `--http2`): the protocol of every request that does not say its own.
    pub http: HttpVersion,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            headers: Vec::new(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            max_body: DEFAULT_MAX_BODY,
            trace_headers: false,
            http: HttpVersion::Auto,
        }
    }
}

/// A sequence of steps picked at random, in proportion to its weight.
#[derive(Debug, Clone)]
pub struct Flow {
    pub name: String,
    /// At least 1.
    pub weight: u32,
    pub steps: Vec<Step>,
}

/// One step, run only when its condition (if any) holds.
#[derive(Debug, Clone)]
pub struct Step {
    pub when: Option<Condition>,
    pub kind: StepKind,
}

#[derive(Debug, Clone)]
pub enum StepKind {
    Request(Box<Request>),
    Think(Think),
    Repeat(Repeat),
    /// Provisioning: append a row to the output CSV.
    Emit(Emit),
    /// `js:` a JavaScript expression whose object result sets variables.
    Script(crate::script::Call),
    /// `ws:`, `sse:`, `send:`, `receive:`, `every:`, `close`: the user's sockets.
    Socket(Box<SocketStep>),
}

/// A row for `chorus provision`'s CSV.
#[derive(Debug, Clone)]
pub struct Emit {
    /// (column, value), in the order written.
    pub columns: Vec<(String, Template)>,
    /// What the row counts as in the summary (`created`, `already there`, ...).
    pub outcome: Option<Template>,
}

/// A pause.
#[derive(Debug, Clone)]
pub enum Think {
    Fixed(Duration),
    /// Uniformly random between the two, inclusive.
    Range(Duration, Duration),
    /// Renders to a number of seconds (fractions allowed).
    Template(Template),
}

/// Steps run a number of times.
#[derive(Debug, Clone)]
pub struct Repeat {
    pub count: Count,
    pub steps: Vec<Step>,
    /// `as:` the variable holding the iteration number, from 0.
    pub index_as: Option<String>,
    /// `parallel:` iterations that may run at once, each on a copy of the user's variables
    /// and cookies (what one extracts stays in it). Absent: one after the other.
    pub parallel: Option<Count>,
}

/// How many times a `repeat` runs.
#[derive(Debug, Clone)]
pub enum Count {
    Fixed(u64),
    /// Uniformly random between the two, inclusive.
    Range(u64, u64),
    /// Renders to a whole number.
    Template(Template),
}

/// One HTTP request, its extraction rules and checks.
#[derive(Debug, Clone)]
pub struct Request {
    /// What stats count it under (default: the URL path with `[var]` for templated parts).
    pub name: String,
    pub method: http::Method,
    pub url: Template,
    pub headers: Vec<(http::HeaderName, Template)>,
    pub body: Option<Body>,
    /// Into the user's variables, in order.
    pub extract: Vec<Extract>,
    pub check: Vec<Check>,
    /// Statuses that are not failures (default: any status below 400).
    pub expect_status: Option<Vec<u16>>,
    /// `recorded:`: the capture's entry (from 1) this request replays.
    pub recorded: Option<u32>,
    /// `http:`: the protocol for this request; else the scenario's.
    pub http: Option<HttpVersion>,
}

/// `http: 1.1 | 2 | auto`: which HTTP a request speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpVersion {
    /// HTTP/1.1 only (on https, only `http/1.1` is offered by ALPN).
    Http1,
    /// HTTP/2: by ALPN on https (HTTP/1.1 if the server does not take it), with prior
    /// knowledge (h2c) on http.
    Http2,
    /// HTTP/2 where the server takes it by ALPN on https; HTTP/1.1 on http.
    #[default]
    Auto,
}

impl HttpVersion {
    /// Reads `1.1`, `2` or `auto` (also `1`, `2.0`, `h2`); `None` for anything else.
    pub fn parse(text: &str) -> Option<HttpVersion> {
        match text.trim().to_ascii_lowercase().as_str() {
            "1" | "1.1" | "http/1.1" => Some(HttpVersion::Http1),
            "2" | "2.0" | "h2" | "http/2" => Some(HttpVersion::Http2),
            "auto" => Some(HttpVersion::Auto),
            _ => None,
        }
    }
}

/// A request body. The engine sets `Content-Type` when the request's headers do not.
#[derive(Debug, Clone)]
pub enum Body {
    /// Renders to JSON text (`application/json`).
    Json(Template),
    /// `application/x-www-form-urlencoded`; the engine encodes the pairs.
    Form(Vec<(String, Template)>),
    /// Sent as rendered.
    Raw(Template),
    /// `multipart/form-data` (RFC 7578), parts in order; the engine writes a fresh boundary
    /// per request.
    Multipart(Vec<(String, Part)>),
}

/// One part of a `multipart:` body.
#[derive(Debug, Clone)]
pub enum Part {
    /// A text field.
    Text(Template),
    /// A file.
    File(FilePart),
}

#[derive(Debug, Clone)]
pub struct FilePart {
    /// The `filename` the part says (empty: a file input with no file chosen).
    pub filename: Template,
    /// Default `application/octet-stream`.
    pub content_type: String,
    pub content: FileContent,
}

#[derive(Debug, Clone)]
pub enum FileContent {
    /// `content:`, rendered per request.
    Template(Template),
    /// `file:`, read when the scenario loaded.
    File {
        /// The path as written in the scenario.
        written: String,
        /// Where it was read from.
        path: PathBuf,
        bytes: bytes::Bytes,
    },
}

impl Scenario {
    /// A scenario of one flow that GETs each URL in turn and then pauses `think`
    /// (`chorus run --url --think`: a pause between iterations). The first URL's origin is
    /// the scenario's host; each request is counted under its path (and query).
    pub fn from_urls(urls: &[url::Url], think: Option<Duration>) -> Scenario {
        let host = urls.first().map(|url| {
            let mut base = url.clone();
            base.set_path("/");
            base.set_query(None);
            base.set_fragment(None);
            base
        });
        let mut allowed_hosts: Vec<String> = urls.iter().filter_map(load::authority).collect();
        allowed_hosts.sort();
        allowed_hosts.dedup();
        let mut steps = Vec::new();
        for url in urls {
            let same_origin = host
                .as_ref()
                .is_some_and(|host| host.origin() == url.origin());
            let name = if same_origin {
                match url.query() {
                    Some(query) => format!("{}?{query}", url.path()),
                    None => url.path().to_owned(),
                }
            } else {
                url.as_str().to_owned()
            };
            steps.push(Step {
                when: None,
                kind: StepKind::Request(Box::new(Request {
                    name,
                    method: http::Method::GET,
                    url: Template::literal(url.as_str()),
                    headers: Vec::new(),
                    body: None,
                    extract: Vec::new(),
                    check: Vec::new(),
                    expect_status: None,
                    recorded: None,
                    http: None,
                })),
            });
        }
        if let Some(pause) = think {
            steps.push(Step {
                when: None,
                kind: StepKind::Think(Think::Fixed(pause)),
            });
        }
        Scenario {
            host,
            allowed_hosts,
            flows: vec![Flow {
                name: "urls".to_owned(),
                weight: 1,
                steps,
            }],
            ..Scenario::empty("(--url)")
        }
    }

    /// A scenario of nothing from `source`: no host, no steps, no settings; what loading
    /// fills in (and what a tool that builds a scenario starts from).
    pub fn empty(source: impl Into<PathBuf>) -> Scenario {
        Scenario {
            source: source.into(),
            host: None,
            allowed_hosts: Vec::new(),
            defaults: Defaults::default(),
            data: Vec::new(),
            vars: Vec::new(),
            on_start: Vec::new(),
            flows: Vec::new(),
            on_stop: Vec::new(),
            thresholds: Vec::new(),
            monitors: Vec::new(),
            otlp: None,
            capture: None,
            auth: None,
            relogin: None,
            env: Vec::new(),
            scripts: None,
        }
    }

    /// The files `multipart` parts send (`file:`): each path as written, once, with its bytes.
    pub fn attached_files(&self) -> Vec<(String, bytes::Bytes)> {
        fn visit(steps: &[Step], out: &mut Vec<(String, bytes::Bytes)>) {
            for step in steps {
                match &step.kind {
                    StepKind::Request(request) => {
                        if let Some(Body::Multipart(parts)) = &request.body {
                            for (_, part) in parts {
                                if let Part::File(FilePart {
                                    content: FileContent::File { written, bytes, .. },
                                    ..
                                }) = part
                                {
                                    if !out.iter().any(|(known, _)| known == written) {
                                        out.push((written.clone(), bytes.clone()));
                                    }
                                }
                            }
                        }
                    }
                    StepKind::Repeat(repeat) => visit(&repeat.steps, out),
                    StepKind::Think(_)
                    | StepKind::Emit(_)
                    | StepKind::Script(_)
                    | StepKind::Socket(_) => {}
                }
            }
        }
        let mut out = Vec::new();
        visit(&self.on_start, &mut out);
        for flow in &self.flows {
            visit(&flow.steps, &mut out);
        }
        visit(&self.on_stop, &mut out);
        out
    }

    /// The scenario with another base URL (the page's host field): requests to the old host
    /// go to the new one, and the old host is no longer allowed. Hosts are keyed as loading
    /// keys them (`host:port`, the port always written).
    pub fn with_host(&self, host: &str) -> Result<Scenario, String> {
        let url: url::Url = host
            .parse()
            .ok()
            .filter(|url: &url::Url| matches!(url.scheme(), "http" | "https"))
            .ok_or_else(|| {
                format!("host must be a URL such as http://127.0.0.1:8001, got {host:?}")
            })?;
        let new_key = load::authority(&url).ok_or_else(|| {
            format!("host must name a host, such as http://127.0.0.1:8001, got {host:?}")
        })?;
        let mut changed = self.clone();
        if let Some(old_key) = self.host.as_ref().and_then(load::authority) {
            changed.allowed_hosts.retain(|h| *h != old_key);
        }
        changed.allowed_hosts.push(new_key);
        changed.allowed_hosts.sort();
        changed.allowed_hosts.dedup();
        changed.host = Some(url);
        Ok(changed)
    }

    /// Refuses a run of `users` virtual users when a `unique` data source has fewer rows.
    pub fn check_capacity(&self, users: u64) -> Result<(), crate::data::DataError> {
        self.data
            .iter()
            .try_for_each(|source| source.check_capacity(users))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_versions_are_read_at_the_top_and_per_request() {
        let text = "host: https://app.test\nhttp: 1.1\nflows:\n  - steps:\n      - get: /a\n        http: 2\n      - get: /b\n        http: auto\n      - get: /c\n";
        let options = LoadOptions::default();
        let scenario = load_str(text, std::path::Path::new("s.yaml"), &options).unwrap();
        assert_eq!(scenario.defaults.http, HttpVersion::Http1);
        let versions: Vec<_> = scenario.flows[0]
            .steps
            .iter()
            .map(|step| match &step.kind {
                StepKind::Request(request) => request.http,
                _ => panic!("a request"),
            })
            .collect();
        assert_eq!(
            versions,
            [Some(HttpVersion::Http2), Some(HttpVersion::Auto), None]
        );
        let wrong = text.replace("http: 1.1", "http: 3");
        let err = load_str(&wrong, std::path::Path::new("s.yaml"), &options).unwrap_err();
        assert!(err.to_string().contains("1.1, 2 or auto"), "{err}");
    }

    #[test]
    fn another_host_replaces_the_old_one_in_the_allow_list() {
        let urls = ["http://app.test/a", "http://api.test:8080/b"].map(|u| u.parse().unwrap());
        let scenario = Scenario::from_urls(&urls, None);
        assert_eq!(scenario.allowed_hosts, ["api.test:8080", "app.test:80"]);
        // A default port on both sides: the old host's key is the one loading wrote.
        let moved = scenario.with_host("https://staging.test/").unwrap();
        assert_eq!(moved.allowed_hosts, ["api.test:8080", "staging.test:443"]);
        assert_eq!(moved.host.unwrap().as_str(), "https://staging.test/");
        assert_eq!(
            scenario.with_host("staging.test").unwrap_err(),
            "host must be a URL such as http://127.0.0.1:8001, got \"staging.test\""
        );
    }
}
