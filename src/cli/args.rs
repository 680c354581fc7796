//! Argument groups: one struct per subcommand, and the groups several subcommands share.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::parse::{
    Processes, RunTime, iterations, parse_data_source, parse_seed, parse_size, parse_users,
    parse_var, processes, run_time, spawn_rate, step_time, stop_timeout, think, think_scale,
    threads,
};
use crate::demo::Seed;

/// How much load: users, spawn rate, run time and host (the flags Locust users know).
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Number of virtual users to run at once (1 to 10000000)
    #[arg(short = 'u', long, value_parser = parse_users)]
    pub users: Option<u64>,
    /// Users started per second while ramping up (or stopped while ramping down), e.g. 10
    /// or 30/m
    #[arg(short = 'r', long = "spawn-rate", value_parser = spawn_rate)]
    pub spawn_rate: Option<f64>,
    /// Stop after this long, e.g. 30s, 10m, 1h30m (default: until Ctrl-C)
    #[arg(short = 't', long = "run-time", value_parser = run_time)]
    pub run_time: Option<RunTime>,
    /// Base URL of the system under test, overriding the scenario's host
    #[arg(short = 'H', long)]
    pub host: Option<String>,
}

impl LoadArgs {
    /// `-t` as a duration.
    pub fn run_time(&self) -> Option<Duration> {
        self.run_time.as_ref().map(|given| given.duration)
    }
}

/// Where the results go.
#[derive(Debug, Clone, Default, Args)]
pub struct OutputArgs {
    /// Write Locust-compatible PREFIX_stats.csv, PREFIX_stats_history.csv, PREFIX_failures.csv
    /// and PREFIX_exceptions.csv
    #[arg(long, value_name = "PREFIX")]
    pub csv: Option<PathBuf>,
    /// Write the complete result (with serialized HDR histograms) as JSON
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write one self-contained HTML report with charts
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write a compact Markdown table (for CI comments and job summaries)
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Write JUnit XML: a test case per threshold and per request with failures
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

/// Where the web page listens.
#[derive(Debug, Clone, Args)]
pub struct WebArgs {
    /// Address the web page binds
    #[arg(long = "web-host", default_value = "127.0.0.1")]
    pub web_host: String,
    /// Port of the web page
    #[arg(long = "web-port", default_value_t = 8089)]
    pub web_port: u16,
    /// Require HTTP basic authentication on the page, as USER:PASS (needed to bind anything but
    /// loopback)
    #[arg(long = "web-auth", value_name = "USER:PASS")]
    pub web_auth: Option<String>,
    /// Another host name the page may be reached under (a DNS name of this machine, or of a
    /// proxy in front of it); loopback and the bound address are always accepted
    #[arg(long = "web-allowed-host", value_name = "NAME")]
    pub web_allowed_host: Vec<String>,
    /// Serve the page on a non-loopback address without --web-auth: anyone who reaches it can
    /// send load from this machine
    #[arg(long = "i-know-this-is-open")]
    pub i_know_this_is_open: bool,
}

#[derive(Debug, Clone, Args)]
pub struct RecordArgs {
    /// Reverse mode: the application to record, e.g. http://127.0.0.1:8001
    #[arg(long, conflicts_with = "forward", required_unless_present = "forward")]
    pub target: Option<String>,
    /// Forward mode: an ordinary HTTP proxy (absolute-form requests and CONNECT)
    #[arg(long)]
    pub forward: bool,
    /// In forward mode, intercept HTTPS with a locally generated CA
    #[arg(long, requires = "forward")]
    pub mitm: bool,
    /// Address the proxy listens on
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub listen: SocketAddr,
    /// Folder (or .har file) the capture is written to
    #[arg(short = 'o', long = "output", default_value = "captures")]
    pub output: PathBuf,
    /// Replace the -o file if it exists (without it, an existing capture is never truncated)
    #[arg(long)]
    pub force: bool,
    /// Record only URLs matching this regular expression (everything is still forwarded)
    #[arg(long)]
    pub include: Vec<String>,
    /// Do not record URLs matching this regular expression (everything is still forwarded)
    #[arg(long)]
    pub exclude: Vec<String>,
    /// Bodies above this size are forwarded whole but recorded truncated
    #[arg(long = "max-body", default_value_t = 10 * 1024 * 1024)]
    pub max_body: u64,
    /// Accept an invalid or self-signed certificate from an HTTPS target
    #[arg(long)]
    pub insecure: bool,
    /// With --mitm: the folder holding the interception CA, created on first use
    /// (default: ~/.config/chorus/ca)
    #[arg(long = "ca-dir", value_name = "DIR", requires = "mitm")]
    pub ca_dir: Option<PathBuf>,
    /// Ask for this user and password (needed to listen on anything but loopback): checked as
    /// Proxy-Authorization in forward mode, as HTTP basic Authorization in reverse mode
    #[arg(long = "proxy-auth", value_name = "USER:PASS")]
    pub proxy_auth: Option<String>,
    /// Listen on a non-loopback address without --proxy-auth: anyone who reaches the recorder
    /// can use it
    #[arg(long = "i-know-this-is-open")]
    pub i_know_this_is_open: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ConvertArgs {
    /// The HAR capture to convert
    pub capture: PathBuf,
    /// Where the scenario is written (default: standard output)
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// Keep requests for static assets (images, scripts, styles, fonts)
    #[arg(long = "keep-static")]
    pub keep_static: bool,
    /// The host to keep (default: the host most requests went to)
    #[arg(long)]
    pub host: Option<String>,
    /// The URL of the login request, when it is not detected
    #[arg(long)]
    pub login: Option<String>,
    /// Multiply recorded think times by this factor
    #[arg(long = "think-scale", default_value = "1", value_parser = think_scale)]
    pub think_scale: f64,
    /// Leave out think times
    #[arg(long = "no-think")]
    pub no_think: bool,
    /// Start a new flow at each request whose URL matches this regular expression
    #[arg(long = "split-on", value_name = "URL-REGEX")]
    pub split_on: Option<String>,
    /// Replace passwords, tokens and cookies in everything written
    #[arg(long)]
    pub redact: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ProvisionArgs {
    /// The provisioning scenario
    pub file: PathBuf,
    /// Base URL of the application
    #[arg(short = 'H', long)]
    pub host: Option<String>,
    /// The CSV file the accounts are written to
    #[arg(short = 'o', long = "output", default_value = "users.csv")]
    pub output: PathBuf,
    /// Requests in flight at once: the file's `parallel: "{{ concurrency }}"` repeats
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Set a variable of the provisioning file, e.g. --var classes=200
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Accept invalid or self-signed TLS certificates
    #[arg(long)]
    pub insecure: bool,
}

#[derive(Debug, Clone, Args)]
#[command(group = clap::ArgGroup::new("open_model").multiple(true))]
pub struct RunArgs {
    /// The scenario file (YAML)
    #[arg(required_unless_present = "url")]
    pub scenario: Option<PathBuf>,
    /// Run without a file: each iteration GETs these URLs in turn
    #[arg(long, conflicts_with = "scenario")]
    pub url: Vec<String>,
    /// With --url: pause between iterations
    #[arg(long, value_parser = think, requires = "url")]
    pub think: Option<Duration>,
    #[command(flatten)]
    pub load: LoadArgs,
    /// Run without the web page and start at once
    #[arg(long)]
    pub headless: bool,
    /// Bind a CSV data source of the scenario to a file: --data users=users.csv
    #[arg(long = "data", value_name = "NAME=FILE", value_parser = parse_data_source)]
    pub data: Vec<(String, PathBuf)>,
    /// Set a variable of the scenario (an entry of its `vars:`, or a new one): --var tenant=acme
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// Load a JavaScript module whose exported functions the scenario calls (beside its
    /// `scripts:`)
    #[arg(long = "script", value_name = "FILE", requires = "scenario")]
    pub scripts: Vec<PathBuf>,
    /// Print only the final summary
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Ramp stages as DURATION:USERS, e.g. 30s:100,2m:100,30s:0
    #[arg(long, conflicts_with = "arrival_rate")]
    pub stages: Option<String>,
    /// Each user runs this many iterations of the flows (picked by weight), then on_stop, and
    /// ends; the run ends when every user has, or at -t (k6's per-VU iterations)
    #[arg(
        long,
        value_name = "N",
        value_parser = iterations,
        conflicts_with_all = ["open_model", "check"]
    )]
    pub iterations: Option<u64>,
    /// Open model: start iterations at this rate whatever the server does, e.g. 200/s
    #[arg(long = "arrival-rate", group = "open_model")]
    pub arrival_rate: Option<String>,
    /// Open model: the most users that may be busy at once
    #[arg(long = "max-users", requires = "open_model", value_parser = parse_users)]
    pub max_users: Option<u64>,
    /// Fail the run (exit status 1) when a threshold is crossed, e.g. 'p95<300ms', 'failures<1%'
    #[arg(long = "threshold")]
    pub thresholds: Vec<String>,
    /// Search the highest arrival rate at which this condition (and every --threshold) holds,
    /// e.g. 'p95<300ms': steps from --arrival-rate (default 10/s) up, see docs/capacity.md
    #[arg(
        long = "find-capacity",
        value_name = "CONDITION",
        group = "open_model",
        conflicts_with_all = ["stages", "check", "master"]
    )]
    pub find_capacity: Vec<String>,
    /// With --find-capacity: how long each step's rate is measured (after a settling second)
    #[arg(
        long = "step-time",
        value_name = "DURATION",
        value_parser = step_time,
        requires = "find_capacity"
    )]
    pub step_time: Option<Duration>,
    /// When the run stops, how long each user may take to finish its iteration (then it runs
    /// on_stop, which gets as long again); what is still going then is cut and counted
    #[arg(
        long = "stop-timeout",
        visible_alias = "graceful-stop",
        value_parser = stop_timeout,
        default_value = "10s"
    )]
    pub stop_timeout: Duration,
    /// The most of a response body kept when a step reads it (extract, check), e.g. 16MiB;
    /// past it the request fails as "body too large". Bodies nothing reads are never kept
    /// [default: the scenario's max_body, else 16MiB]
    #[arg(long = "max-body", value_name = "SIZE", value_parser = parse_size)]
    pub max_body: Option<u64>,
    /// Accept an invalid or self-signed certificate from an HTTPS system under test
    #[arg(long)]
    pub insecure: bool,
    /// Send a W3C `traceparent` (a trace per iteration, a span per request) and a `baggage`
    /// naming the virtual user, its flow and its account with every request; failures name
    /// their trace [also: `trace_headers: true` in the scenario]
    #[arg(long = "trace-headers")]
    pub trace_headers: bool,
    /// Speak HTTP/2 to every request the scenario does not pin with its own `http:`: by ALPN
    /// on https (HTTP/1.1 where the server does not take it), with prior knowledge (h2c) on
    /// http [also: `http: 2` in the scenario]
    #[arg(long)]
    pub http2: bool,
    /// Watch a process, this machine or a Prometheus endpoint beside the load, once a
    /// second: process:PID, process:NAME (every process of that command name, summed), host,
    /// or prometheus:URL[#metric,metric*] (node_exporter, an application's /metrics).
    /// Repeatable; the series go to the JSON result and the summary
    #[arg(
        long = "monitor",
        value_name = "SPEC",
        value_parser = crate::monitor::Spec::parse
    )]
    pub monitors: Vec<crate::monitor::Spec>,
    /// Push the numbers of the page's /metrics (requests, failures, latency, users,
    /// monitors) to an OpenTelemetry collector over OTLP/HTTP (JSON) every 5 s
    /// (OTEL_METRIC_EXPORT_INTERVAL, in ms) and at the end, e.g. http://127.0.0.1:4318
    /// [also: `otlp: URL` in the scenario]
    #[arg(long, value_name = "URL", value_parser = crate::otlp::parse_endpoint)]
    pub otlp: Option<url::Url>,
    /// Worker threads running the users (default: one per core)
    #[arg(long, value_parser = threads)]
    pub workers: Option<usize>,
    /// Run the users in N worker processes of this machine under this one (one page, one
    /// report), for more users than one process may hold sockets for; `auto`: as many as the
    /// open-files limit needs for the users asked (1, this process, when they fit)
    #[arg(
        long,
        value_name = "N|auto",
        value_parser = processes,
        conflicts_with_all = ["master", "check"]
    )]
    pub processes: Option<Processes>,
    /// Local addresses the connections leave from, in turn: a list or ranges, e.g.
    /// 127.0.0.1-127.0.0.8 or 10.0.0.5,10.0.0.6 (one address holds about 28,000 connections
    /// to one server address); for a loopback target chorus spreads over 127.0.0.x by itself
    /// when the users need it
    #[arg(
        long = "source-addrs",
        value_name = "LIST",
        value_parser = crate::engine::sources::parse_flag,
        conflicts_with_all = ["master", "check"]
    )]
    pub source_addrs: Option<crate::engine::sources::SourceAddrs>,
    /// Replay with two users, each flow twice, no pauses, and compare every request with the
    /// capture it was converted from: PASS, DIFF or FAIL per request
    #[arg(long)]
    pub check: bool,
    /// With --check: the capture to compare with (default: the scenario's `capture:`)
    #[arg(long, value_name = "HAR", requires = "check")]
    pub capture: Option<std::path::PathBuf>,
    /// With the web page: start at once with -u/-r/-t and keep the page up
    #[arg(long)]
    pub autostart: bool,
    /// With the web page: exit this many seconds after the run ends
    #[arg(long, value_name = "SECONDS")]
    pub autoquit: Option<u64>,
    #[command(flatten)]
    pub output: Box<OutputArgs>,
    /// Compare the run with this result (`--json`; repeat to pool runs) and print the
    /// verdicts under the summary
    #[arg(long, value_name = "BASE.json")]
    pub baseline: Vec<PathBuf>,
    #[command(flatten)]
    pub web: WebArgs,
    #[command(flatten)]
    pub cluster: Box<MasterArgs>,
}

/// `chorus run --master`: run the scenario on workers (`chorus worker`) instead of here.
#[derive(Debug, Clone, Args)]
pub struct MasterArgs {
    /// Be the master of a distributed run: workers run the users, this process merges their
    /// statistics and writes the reports
    #[arg(long, conflicts_with = "check")]
    pub master: bool,
    /// With --master: start when this many workers have joined
    #[arg(
        long = "expect-workers",
        value_name = "N",
        default_value_t = 1,
        requires = "master"
    )]
    pub expect_workers: usize,
    /// With --master: the address workers connect to (anything but loopback needs a token)
    #[arg(
        long = "master-bind",
        value_name = "ADDR",
        default_value = "127.0.0.1:5557"
    )]
    pub master_bind: SocketAddr,
    /// The shared secret of the master and its workers (better: the environment variable)
    #[arg(
        long = "cluster-token",
        env = "CHORUS_CLUSTER_TOKEN",
        hide_env_values = true
    )]
    pub cluster_token: Option<String>,
}

/// `chorus worker`: run users for a master.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// The master's worker address, HOST:PORT (e.g. chorus-master:5557)
    #[arg(long, value_name = "HOST:PORT", value_parser = crate::cluster::worker::check_master_address)]
    pub master: String,
    /// The shared secret of the master and its workers (better: the environment variable)
    #[arg(
        long = "cluster-token",
        env = "CHORUS_CLUSTER_TOKEN",
        hide_env_values = true
    )]
    pub cluster_token: Option<String>,
    /// How the master names this worker (default: host name and process id)
    #[arg(long)]
    pub name: Option<String>,
    /// Threads running the users (default: one per core)
    #[arg(long, value_parser = threads)]
    pub threads: Option<usize>,
    /// Join only a master running this scenario file (compared by SHA-256)
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Write this worker's own result (with its HDR histograms) as JSON after each run
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// After a run, wait for the next master instead of exiting (a standing pool)
    #[arg(long)]
    pub stay: bool,
    /// Print only problems
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Local addresses this worker's connections leave from, in turn (as `run --source-addrs`)
    #[arg(
        long = "source-addrs",
        value_name = "LIST",
        value_parser = crate::engine::sources::parse_flag
    )]
    pub source_addrs: Option<crate::engine::sources::SourceAddrs>,
    /// Exit when the process with this id is no longer this one's parent (`run --processes`
    /// starts its workers with it)
    #[arg(long = "parent-pid", value_name = "PID", hide = true)]
    pub parent_pid: Option<u32>,
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Only serve the demo application
    #[arg(long = "serve-only")]
    pub serve_only: bool,
    /// Address the demo application listens on (default: 127.0.0.1:8001 with --serve-only, a
    /// free port otherwise)
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Folder the demo writes its users, scenario and captures to
    #[arg(long, default_value = "chorus-demo")]
    pub dir: PathBuf,
    /// Student accounts, CLASSESxSTUDENTS, e.g. 200x30: created by demo/provision.yaml
    /// (default 10x10), or with --serve-only made at start without HTTP (default none)
    #[arg(long, value_parser = parse_seed, value_name = "CLASSESxSTUDENTS")]
    pub seed: Option<Seed>,
    /// The CSV the students' credentials go to (username,password,class); default
    /// chorus-demo/users.csv, and with --serve-only it needs --seed
    #[arg(long = "users-csv", value_name = "FILE")]
    pub users_csv: Option<PathBuf>,
    /// The eventsPeriodSecs the app tells game clients
    #[arg(long = "events-period-secs", default_value_t = 2)]
    pub events_period_secs: u32,
    /// Run without the web page
    #[arg(long)]
    pub headless: bool,
    /// Start the app and the recorder, to record your own session
    #[arg(long, conflicts_with_all = ["serve_only", "headless"])]
    pub record: bool,
    /// With --record: where the recorder listens (port 0: a free one, printed)
    #[arg(
        long = "record-listen",
        value_name = "ADDR",
        default_value = "127.0.0.1:9090"
    )]
    pub record_listen: SocketAddr,
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub web: WebArgs,
}
