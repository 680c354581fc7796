//! `chorus run`'s arguments settled once, before anything listens or runs (ripgrep's
//! `HiArgs`): the scenario loaded, the load made into a `Plan`, the thresholds parsed, the
//! engine's options, the outputs checked, the page's address and password, and a master's
//! configuration. The code that runs sees only [`RunSettings`], never the raw arguments.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::args::{OutputArgs, RunArgs, WebArgs};
use super::parse::Processes;
use crate::capacity::SearchSettings;
use crate::cluster::MasterConfig;
use crate::cluster::bundle::{self, Bundle};
use crate::engine::{EngineOptions, Load, Plan, Stage, limits, sources};
use crate::otlp::OtlpConfig;
use crate::scenario::{self, LoadOptions, Scenario};
use crate::stats::{self, Threshold};
use crate::web::{self, WebConfig};

/// `--arrival-rate` without `--max-users` or `-u`.
const DEFAULT_MAX_USERS: u64 = 1000;
/// `--find-capacity` without `--arrival-rate`: the first step's rate.
const DEFAULT_START_RATE: &str = "10/s";
/// `--find-capacity` without `--step-time`.
const DEFAULT_STEP_TIME: Duration = Duration::from_secs(10);

/// Everything a `chorus run` needs, checked.
pub(super) struct RunSettings {
    pub(super) scenario: Arc<Scenario>,
    /// The load of `-u/-r/-t`, `--stages` or `--arrival-rate` (one user until Ctrl-C when
    /// none is given).
    pub(super) plan: Plan,
    /// Whether the command line gave the load (what the page's `--autostart` starts).
    pub(super) load_given: bool,
    /// Workers, stop timeout, body limit, TLS and the thresholds (`--threshold` and the
    /// scenario's), parsed once.
    pub(super) engine: EngineOptions,
    pub(super) way: Way,
    /// `--master`: where workers join and what they are sent (with `--processes`, the
    /// worker processes this one starts).
    pub(super) master: Option<MasterConfig>,
    /// `--processes N` (or `auto`) with more than one: the worker processes to start.
    pub(super) processes: Option<super::processes::LocalWorkers>,
    pub(super) output: OutputArgs,
    pub(super) quiet: bool,
    /// `--baseline`: the results the run is compared with at its end, read before it.
    pub(super) baseline: Option<crate::compare::Pooled>,
    /// `--find-capacity`: the search's schedule and conditions (the run's thresholds are
    /// then the search's conditions, judged on each step rather than on the whole run).
    pub(super) capacity: Option<SearchSettings>,
    /// `--otlp` (or the scenario's `otlp:`): where and how often the numbers are pushed.
    pub(super) otlp: Option<OtlpConfig>,
}

/// How the run is driven.
pub(super) enum Way {
    /// `--check`: two users replay the scenario against its capture.
    Check { capture: Option<PathBuf> },
    /// `--headless`: start at once, print a live table, stop at the plan's end or a signal.
    Headless,
    /// The page.
    Page(PageSettings),
}

/// The page's address and password, and what `--autostart`/`--autoquit` ask.
pub(super) struct PageSettings {
    pub(super) web: WebConfig,
    pub(super) autostart: bool,
    pub(super) autoquit: Option<Duration>,
}

impl RunSettings {
    /// Reads and checks everything `args` name. Nothing listens and nothing is sent yet.
    pub(super) async fn settle(args: RunArgs) -> anyhow::Result<RunSettings> {
        let mut scenario = load_scenario(&args)?;
        scenario.defaults.trace_headers |= args.trace_headers;
        if args.http2 {
            scenario.defaults.http = crate::scenario::HttpVersion::Http2;
        }
        let scenario = Arc::new(scenario);
        let plan = plan(&args)?;
        // Before any traffic: a report that cannot be written would lose the whole run.
        super::outputs::check(
            &super::outputs::reports(&args.output),
            &super::outputs::run_inputs(
                args.scenario.as_deref(),
                &scenario,
                args.capture.as_deref(),
            ),
        )?;
        // The page's settings are checked before anything listens or runs.
        let way = if args.check {
            Way::Check {
                capture: args.capture.clone(),
            }
        } else if args.headless {
            Way::Headless
        } else {
            Way::Page(PageSettings {
                web: web_config(&args.web).await?,
                autostart: args.autostart,
                autoquit: args.autoquit.map(Duration::from_secs),
            })
        };
        let load_given =
            args.load.users.is_some() || args.stages.is_some() || args.arrival_rate.is_some();
        let sources = source_addrs(&args, &scenario, &plan)?;
        let processes = processes(&args, &scenario, &plan, &sources)?;
        let mut master = match (args.cluster.master, &processes) {
            (true, _) => {
                scenario.check_capacity(plan.peak_users())?;
                Some(master_config(&args, &scenario, &plan)?)
            }
            (false, Some(local)) => {
                scenario.check_capacity(plan.peak_users())?;
                let mut config = master_config(&args, &scenario, &plan)?;
                local.configure(&mut config);
                Some(config)
            }
            (false, None) => None,
        };
        let baseline = super::compare::baseline(&args.baseline)?;
        let mut thresholds = thresholds(&args, &scenario)?;
        let capacity = capacity(&args, &plan, &mut thresholds)?;
        if let Some(master) = &mut master {
            master.meta.thresholds = thresholds.clone();
        }
        let otlp = match args.otlp.clone().or_else(|| scenario.otlp.clone()) {
            Some(url) => Some(OtlpConfig {
                url,
                interval: crate::otlp::interval(
                    std::env::var("OTEL_METRIC_EXPORT_INTERVAL").ok().as_deref(),
                )
                .map_err(anyhow::Error::msg)?,
            }),
            None => None,
        };
        if let (Some(master), true) = (&mut master, args.iterations.is_some()) {
            if args.find_capacity.is_empty() {
                master.iterations = args.iterations;
            } else {
                bail!("--iterations and --find-capacity: a capacity search sets its own rates");
            }
        }
        let engine = EngineOptions {
            workers: args.workers.unwrap_or(0),
            stop_timeout: args.stop_timeout,
            max_body: args.max_body,
            accept_invalid_certs: args.insecure,
            iterations: args.iterations,
            thresholds,
            setup: Default::default(),
            started_ago: Duration::ZERO,
            // `--monitor` first, then the scenario's `monitors:` not already given.
            monitors: args
                .monitors
                .iter()
                .chain(
                    scenario
                        .monitors
                        .iter()
                        .filter(|m| !args.monitors.contains(m)),
                )
                .cloned()
                .collect(),
            source_addrs: sources,
        };
        if let Some(master) = &mut master {
            // Sampled by the master, on its machine; a PID that does not exist is refused now.
            crate::monitor::Sampler::new(&engine.monitors, 1).map_err(anyhow::Error::msg)?;
            master.monitors = engine.monitors.clone();
        }
        Ok(RunSettings {
            scenario,
            plan,
            load_given,
            engine,
            way,
            master,
            processes,
            output: *args.output,
            quiet: args.quiet,
            baseline,
            capacity,
            otlp,
        })
    }
}

/// The `--threshold`s, parsed, then the scenario's own (parsed when it loaded).
fn thresholds(args: &RunArgs, scenario: &Scenario) -> anyhow::Result<Vec<Threshold>> {
    let mut thresholds =
        stats::thresholds::parse_all(&args.thresholds).map_err(anyhow::Error::msg)?;
    thresholds.extend(scenario.thresholds.iter().cloned());
    Ok(thresholds)
}

/// `--find-capacity`'s search: from the plan's first rate, judged on its conditions and on
/// `thresholds`, which it takes (they judge the steps, not the whole run).
fn capacity(
    args: &RunArgs,
    plan: &Plan,
    thresholds: &mut Vec<Threshold>,
) -> anyhow::Result<Option<SearchSettings>> {
    if args.find_capacity.is_empty() {
        return Ok(None);
    }
    if !args.headless {
        bail!("--find-capacity runs without the page: add --headless");
    }
    let mut conditions =
        stats::thresholds::parse_all(&args.find_capacity).map_err(anyhow::Error::msg)?;
    conditions.append(thresholds);
    let Some(Stage {
        load: Load::Arrivals {
            per_second,
            max_users,
        },
        ..
    }) = plan.stages().first().copied()
    else {
        bail!("--find-capacity needs an open-model plan");
    };
    Ok(Some(SearchSettings {
        start: per_second,
        max_users,
        step_time: args.step_time.unwrap_or(DEFAULT_STEP_TIME),
        settle: Duration::from_secs(1),
        run_time: args.load.run_time(),
        conditions,
    }))
}

/// What `chorus run`'s flags add to or change in the scenario file.
fn load_options(args: &RunArgs) -> LoadOptions {
    LoadOptions {
        data_overrides: args.data.clone(),
        host_override: args.load.host.clone(),
        vars: args.vars.clone(),
        scripts: args.scripts.clone(),
        ..LoadOptions::default()
    }
}

fn load_scenario(args: &RunArgs) -> anyhow::Result<Scenario> {
    if let Some(path) = &args.scenario {
        return Ok(scenario::load(path, &load_options(args))?);
    }
    if let Some((name, _)) = args.vars.first() {
        bail!("--var {name}=...: a --url run has no variables to set; write a scenario file");
    }
    let mut urls = Vec::with_capacity(args.url.len());
    for text in &args.url {
        let url = url::Url::parse(text).with_context(|| {
            format!("--url {text:?}: expected an absolute URL such as http://127.0.0.1:8080/")
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            bail!("--url {text:?}: only http:// and https:// URLs can be run");
        }
        urls.push(url);
    }
    Ok(Scenario::from_urls(&urls, args.think))
}

fn plan(args: &RunArgs) -> anyhow::Result<Plan> {
    let load = &args.load;
    let plan = if !args.find_capacity.is_empty() {
        // The search sets every rate itself and ends the run.
        let rate = args.arrival_rate.as_deref().unwrap_or(DEFAULT_START_RATE);
        let max_users = args.max_users.or(load.users).unwrap_or(DEFAULT_MAX_USERS);
        Plan::arrivals(rate, max_users, None)?
    } else if let Some(stages) = &args.stages {
        Plan::parse_stages(stages)?
    } else if let Some(rate) = &args.arrival_rate {
        let max_users = args.max_users.or(load.users).unwrap_or(DEFAULT_MAX_USERS);
        Plan::arrivals(rate, max_users, load.run_time())?
    } else {
        Plan::users(load.users.unwrap_or(1), load.spawn_rate, load.run_time())?
    };
    Ok(plan)
}

/// How many processes run the users (`--processes`; `auto` from the open-files limit), and
/// the refusal, before any traffic, of a run whose users this machine cannot hold sockets
/// for. `None`: this process runs them (or, with `--master`, other machines do).
fn processes(
    args: &RunArgs,
    scenario: &Scenario,
    plan: &Plan,
    sources: &[IpAddr],
) -> anyhow::Result<Option<super::processes::LocalWorkers>> {
    if args.cluster.master || args.check {
        return Ok(None);
    }
    let users = plan.peak_users();
    let per_user = limits::connections_per_user(scenario);
    let (soft, hard) = limits::open_files_limits();
    let count = match args.processes {
        None => 1,
        Some(Processes::Count(count)) => count,
        Some(Processes::Auto) => {
            limits::processes_needed(users, per_user, soft).min(super::parse::MAX_PROCESSES)
        }
    };
    limits::fits(users, per_user, count, soft, hard)?;
    Ok((count > 1).then(|| super::processes::LocalWorkers::new(count, args.workers, sources)))
}

/// The local addresses the connections leave from: `--source-addrs` (each checked to be
/// this machine's), or for a loopback target 127.0.0.1, .2, ... as many as the users need;
/// and the refusal, before any traffic, of a run whose connections to one server address
/// the source addresses' ports cannot hold.
fn source_addrs(args: &RunArgs, scenario: &Scenario, plan: &Plan) -> anyhow::Result<Vec<IpAddr>> {
    if args.cluster.master || args.check {
        return Ok(Vec::new());
    }
    let connections = plan
        .peak_users()
        .saturating_mul(limits::connections_per_origin(scenario));
    let loopback = !scenario.allowed_hosts.is_empty()
        && scenario.allowed_hosts.iter().all(|entry| {
            url::Url::parse(&format!("http://{entry}/"))
                .ok()
                .and_then(|url| url.host_str().map(sources::is_loopback_host))
                .unwrap_or(false)
        });
    let ports = sources::machine_ephemeral_ports();
    let list = match &args.source_addrs {
        Some(sources::SourceAddrs(list)) => {
            for ip in list {
                if let Err(err) = std::net::TcpListener::bind((*ip, 0)) {
                    bail!(
                        "--source-addrs: connections cannot leave from {ip}: {}; give addresses of this machine (`ip -brief address` lists them)",
                        crate::files::os_error(&err)
                    );
                }
            }
            list.clone()
        }
        None if loopback => {
            let spread = sources::loopback_spread(connections, ports);
            if let (Some(first), Some(last)) = (spread.first(), spread.last()) {
                eprintln!(
                    "chorus: about {connections} connections to a loopback target leave from {first}-{last} (about {} per address: half its port range, where connecting stays cheap)",
                    connections.div_ceil(spread.len() as u64)
                );
            }
            spread
        }
        None => Vec::new(),
    };
    if let Some(why) = sources::shortage(connections, &list, ports, loopback) {
        bail!(why);
    }
    Ok(list)
}

/// What a master needs: where workers join, the token, and the bundle they are sent (the
/// scenario's text and every file it reads).
fn master_config(args: &RunArgs, scenario: &Scenario, plan: &Plan) -> anyhow::Result<MasterConfig> {
    let cluster = &args.cluster;
    let mut bundle = match &args.scenario {
        Some(path) => {
            Bundle::from_file(path, scenario, &load_options(args)).map_err(anyhow::Error::msg)?
        }
        None => Bundle::from_urls(&args.url, args.think),
    };
    bundle.trace_headers = scenario.defaults.trace_headers;
    bundle.http2 = args.http2;
    Ok(MasterConfig {
        bind: cluster.master_bind,
        token: cluster.cluster_token.clone().filter(|t| !t.is_empty()),
        expect_workers: cluster.expect_workers.max(1),
        bundle,
        unique_rows: bundle::unique_rows(scenario),
        stop_timeout: args.stop_timeout,
        max_body: args.max_body,
        accept_invalid_certs: args.insecure,
        // The thresholds are set once they are parsed.
        meta: crate::engine::run_meta(scenario, Some(plan), Vec::new(), 0),
        plan: plan.clone(),
        // Set once the engine's options are settled.
        iterations: None,
        monitors: Vec::new(),
        notify: Arc::new(|line: &str| eprintln!("chorus master: {line}")),
    })
}

/// Where the page listens, its password and the host names it answers to, from `--web-host`,
/// `--web-port`, `--web-auth` and `--web-allowed-host`. A page other machines can reach needs
/// `--web-auth` (or `--i-know-this-is-open`): anyone who reaches it can send load from here.
pub(super) async fn web_config(flags: &WebArgs) -> anyhow::Result<WebConfig> {
    let text = flags.web_host.trim();
    let mut allowed_hosts = flags.web_allowed_host.clone();
    let ip: IpAddr = match text {
        "localhost" => IpAddr::from([127, 0, 0, 1]),
        text => match text.trim_start_matches('[').trim_end_matches(']').parse() {
            Ok(ip) => ip,
            Err(_) => {
                let found = tokio::net::lookup_host((text, flags.web_port))
                    .await
                    .ok()
                    .and_then(|mut addrs| addrs.next());
                let Some(addr) = found else {
                    bail!(
                        "--web-host {text:?}: not an IP address, and no address was found for \
                         that name; give an address such as 127.0.0.1 or 0.0.0.0"
                    );
                };
                allowed_hosts.push(text.to_owned());
                addr.ip()
            }
        },
    };
    let addr = SocketAddr::new(ip, flags.web_port);
    let auth = match &flags.web_auth {
        Some(text) => match text.split_once(':') {
            Some((user, pass)) if !user.is_empty() && !pass.is_empty() => {
                Some((user.to_owned(), pass.to_owned()))
            }
            _ => bail!("--web-auth expects USER:PASS with neither empty, got {text:?}"),
        },
        None => None,
    };
    if !web::is_loopback(&addr) && auth.is_none() && !flags.i_know_this_is_open {
        bail!(
            "--web-host {text}: the page would be reachable from other machines without a \
             password, and anyone who reaches it can send load from this machine to any host; \
             add --web-auth USER:PASS, or bind to 127.0.0.1 and reach it through an SSH tunnel \
             (ssh -L 8089:127.0.0.1:8089 ...); --i-know-this-is-open serves it open anyway"
        );
    }
    if !web::is_loopback(&addr) && auth.is_none() {
        eprintln!(
            "warning: the page on {addr} can be reached from other machines and has no password \
             (--i-know-this-is-open)"
        );
    }
    Ok(WebConfig {
        addr,
        auth,
        allowed_hosts,
    })
}
