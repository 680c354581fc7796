//! The worker: connects to the master (retrying until it answers), proves the token, loads
//! the scenario it is sent, runs its share of the users on an ordinary `Engine` and sends
//! what they measured every second as an HDR delta. When the master goes silent it stops its
//! users and waits to join again; when the master says quit, it exits.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::auth;
use super::bundle;
use super::protocol::{
    Hello, MAX_HANDSHAKE_FRAME, PROTOCOL, ProcessLoad, ScenarioPin, SecondStats, ToMaster,
    ToWorker, read_frame, read_frame_within, write_frame,
};
use super::{ClusterError, HEARTBEAT_EVERY, MISSING_AFTER, Notify};
use crate::engine::{Engine, EngineControl, EngineOptions, Load, Plan, Stage};
use crate::scenario::Scenario;
use crate::stats::capacity::show_rate;
use crate::stats::{RunResult, SecondsTap, report};

/// How long to wait between attempts to reach the master.
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// A `--stay` worker refused by whoever answers waits this long at most before trying again
/// (doubling from [`RETRY_EVERY`]).
const REFUSED_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long one attempt to connect may take (a cut link drops the attempt silently).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the master may take to answer a hello (the scenario comes with the answer).
const WELCOME_TIMEOUT: Duration = Duration::from_secs(60);

/// Everything a worker needs.
#[derive(Clone)]
pub struct WorkerConfig {
    /// `HOST:PORT` of the master.
    pub master: String,
    pub token: Option<String>,
    /// How the master shows this worker.
    pub name: String,
    /// Engine threads (0: one per core).
    pub threads: usize,
    /// `--scenario FILE`: refuse any other scenario.
    pub pin: Option<ScenarioPin>,
    /// `--json FILE`: this worker's own result after each run (its raw histograms).
    pub json: Option<PathBuf>,
    /// `--stay`: after a run, wait for the next master instead of exiting.
    pub stay: bool,
    /// `--source-addrs`: the local addresses the users' connections leave from.
    pub source_addrs: Vec<std::net::IpAddr>,
    pub notify: Notify,
}

/// How a connection to the master ended.
enum End {
    /// The master said the run is over.
    Quit(String),
    /// Lost (closed, silent, unreadable): join again.
    Lost(String),
    /// The users cannot run here (told to the master): exit with an error.
    Failed(String),
}

/// Checks `--master HOST:PORT` before any attempt: a name or address, and a port from 1 to
/// 65535. Whether the name resolves is not checked (a master's name may appear later, as a
/// Kubernetes service does).
pub fn check_master_address(text: &str) -> Result<String, String> {
    let text = text.trim();
    let advice = "give the master's address as HOST:PORT, e.g. chorus-master:5557 or 10.0.0.5:5557";
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!("{text:?} has no port; {advice}"));
    };
    let bracketed = host.starts_with('[') && host.ends_with(']');
    if host.is_empty() || (host.contains(':') && !bracketed) || host.contains(char::is_whitespace) {
        return Err(format!("{text:?} is not HOST:PORT; {advice}"));
    }
    match port.parse::<u16>() {
        Ok(port) if port > 0 => Ok(text.to_owned()),
        _ => Err(format!(
            "{text:?}: the port {port:?} is not a number from 1 to 65535; {advice}"
        )),
    }
}

/// Serves masters until one says quit (`Ok`; never with `stay`) or refuses this worker
/// (`Err`: retrying with the same settings would be refused again). A `--stay` worker is not
/// sent away for good by a refusal: anyone who can answer on the master's address could send
/// one, so it tries again, less and less often.
pub async fn run_worker(config: WorkerConfig) -> Result<(), ClusterError> {
    let mut waiting_said = false;
    let mut backoff = RETRY_EVERY;
    loop {
        let connect = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&config.master));
        let stream = match connect.await {
            Ok(Ok(stream)) => stream,
            failed => {
                if !waiting_said {
                    let why = match failed {
                        Ok(Err(err)) => err.to_string(),
                        _ => format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
                    };
                    (config.notify)(&format!(
                        "waiting for the master at {} ({why}); retrying every second",
                        config.master
                    ));
                    waiting_said = true;
                }
                tokio::time::sleep(RETRY_EVERY).await;
                continue;
            }
        };
        waiting_said = false;
        let end = match session(&config, stream).await {
            Ok(end) => end,
            Err(ClusterError::Refused(message)) if config.stay => {
                (config.notify)(&format!(
                    "{message}; trying again in {} s (--stay)",
                    backoff.as_secs()
                ));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(REFUSED_BACKOFF_MAX);
                continue;
            }
            Err(err) => return Err(err),
        };
        backoff = RETRY_EVERY;
        match end {
            End::Quit(message) if config.stay => {
                (config.notify)(&format!(
                    "the master ended the run ({message}); waiting for the next one"
                ));
                tokio::time::sleep(RETRY_EVERY).await;
            }
            End::Quit(message) => {
                (config.notify)(&format!("the master ended the run ({message}); exiting"));
                return Ok(());
            }
            End::Failed(message) => return Err(ClusterError::Refused(message)),
            End::Lost(why) => {
                (config.notify)(&format!(
                    "lost the master at {}: {why}; stopped the users, waiting to join again",
                    config.master
                ));
                tokio::time::sleep(RETRY_EVERY).await;
            }
        }
    }
}

/// The users this worker runs now.
struct Running {
    control: EngineControl,
    /// The engine's measurements by second, taken as its seconds close.
    tap: Arc<Mutex<SecondsTap>>,
    result: tokio::task::JoinHandle<RunResult>,
    /// Second 0 of the run on this worker's clock (the master's, see `started_ago_ms`).
    epoch: Instant,
    /// The cores its engine runs on.
    cores: u32,
}

impl Running {
    /// This process's own CPU and memory as its engine sampled them last (chorus's own
    /// monitor), for the master.
    fn load(&self) -> Option<ProcessLoad> {
        let mut cpu = None;
        let mut memory = None;
        for (name, _, value) in self.control.monitors() {
            match name.as_str() {
                "chorus.cpu" => cpu = Some(value),
                "chorus.memory" => memory = Some(value),
                _ => {}
            }
        }
        Some(ProcessLoad {
            second: self.epoch.elapsed().as_secs(),
            cpu_percent: cpu?,
            memory_bytes: memory? as u64,
            cores: self.cores,
        })
    }

    /// The seconds closed since the last frame, with this process's load.
    fn stats(&self) -> ToMaster {
        ToMaster::Stats {
            users: self.control.users(),
            seconds: SecondStats::list(lock(&self.tap).take_closed()),
            process: self.load(),
        }
    }
}

async fn session(config: &WorkerConfig, stream: TcpStream) -> Result<End, ClusterError> {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let master = &config.master;
    let opening = read_frame_within(&mut reader, MAX_HANDSHAKE_FRAME);
    let challenge = match tokio::time::timeout(WELCOME_TIMEOUT, opening).await {
        Ok(Ok(ToWorker::Challenge {
            protocol,
            version,
            nonce,
        })) => {
            if protocol != PROTOCOL || version != auth::VERSION {
                (config.notify)(&format!(
                    "the master at {master} runs chorus {version} (cluster protocol {protocol}); \
                     this worker runs chorus {} (protocol {PROTOCOL}): it will refuse this worker",
                    auth::VERSION
                ));
            }
            nonce
        }
        Ok(Ok(other)) => return Ok(End::Lost(format!("it opened with {other:?}"))),
        Ok(Err(err)) => return Ok(End::Lost(err.to_string())),
        Err(_) => return Ok(End::Lost("no challenge from it".to_owned())),
    };
    let nonce = auth::nonce();
    let hello = ToMaster::Hello(Hello {
        protocol: PROTOCOL,
        version: auth::VERSION.to_owned(),
        name: config.name.clone(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        proof: config
            .token
            .as_deref()
            .map(|token| auth::proof(token, "worker", &challenge)),
        nonce: nonce.clone(),
        scenario: config.pin.clone(),
    });
    if let Err(err) = write_frame(&mut writer, &hello).await {
        return Ok(End::Lost(err.to_string()));
    }
    let (id, bundle) = match tokio::time::timeout(WELCOME_TIMEOUT, read_frame(&mut reader)).await {
        Ok(Ok(ToWorker::Welcome { id, proof, bundle })) => {
            if let Some(token) = &config.token {
                let proven = proof
                    .as_deref()
                    .is_some_and(|proof| auth::verify(token, "master", &nonce, proof));
                if !proven {
                    return Err(ClusterError::Refused(format!(
                        "the master at {master} did not prove it knows the cluster token; \
                         not running its scenario (check --cluster-token / {} on both sides)",
                        auth::TOKEN_ENV
                    )));
                }
            }
            (id, bundle)
        }
        Ok(Ok(ToWorker::Refused { message })) => {
            return Err(ClusterError::Refused(format!(
                "the master at {master} refused this worker: {message}"
            )));
        }
        Ok(Ok(other)) => return Ok(End::Lost(format!("unexpected {other:?}"))),
        Ok(Err(err)) => return Ok(End::Lost(err.to_string())),
        Err(_) => return Ok(End::Lost("no answer to hello".to_owned())),
    };
    let scenario = match bundle.load() {
        Ok(scenario) => scenario,
        Err(message) => {
            let _ = write_frame(
                &mut writer,
                &ToMaster::Failed {
                    message: message.clone(),
                },
            )
            .await;
            return Err(ClusterError::Refused(format!(
                "the scenario {} from the master cannot run here: {message}",
                bundle.name
            )));
        }
    };
    (config.notify)(&format!(
        "joined the master at {master} as worker {id} ({:?}): scenario {}",
        config.name, bundle.name
    ));
    let (outgoing, mut to_send) = mpsc::unbounded_channel::<ToMaster>();
    let write = tokio::spawn(async move {
        while let Some(message) = to_send.recv().await {
            if write_frame(&mut writer, &message).await.is_err() {
                break;
            }
        }
    });
    let (incoming_sender, mut incoming) = mpsc::unbounded_channel();
    let read = tokio::spawn(async move {
        loop {
            let frame = read_frame::<_, ToWorker>(&mut reader).await;
            let end = frame.is_err();
            if incoming_sender.send(frame).is_err() || end {
                break;
            }
        }
    });
    let _ = outgoing.send(ToMaster::Ready);
    let end = serve(config, &scenario, &outgoing, &mut incoming).await;
    read.abort();
    // Let the last frames (statistics) go out before the connection closes.
    drop(outgoing);
    let _ = tokio::time::timeout(Duration::from_secs(2), write).await;
    Ok(end)
}

async fn serve(
    config: &WorkerConfig,
    scenario: &Scenario,
    outgoing: &mpsc::UnboundedSender<ToMaster>,
    incoming: &mut mpsc::UnboundedReceiver<Result<ToWorker, super::protocol::FrameError>>,
) -> End {
    let mut running: Option<Running> = None;
    let mut updates: Option<tokio::sync::broadcast::Receiver<Arc<crate::engine::LiveUpdate>>> =
        None;
    let mut last_heard = Instant::now();
    let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            frame = incoming.recv() => {
                let message = match frame {
                    Some(Ok(message)) => message,
                    Some(Err(err)) => return lose(running, err.to_string()).await,
                    None => return lose(running, "the connection closed".to_owned()).await,
                };
                last_heard = Instant::now();
                match message {
                    ToWorker::Start { users, spawn_rate, rows, stop_timeout_ms, max_body, accept_invalid_certs, started_ago_ms, arrival_rate, iterations } => {
                        if running.is_some() {
                            continue;
                        }
                        let mine = if bundle::unique_rows(scenario).is_some() {
                            bundle::with_rows(scenario, &rows)
                        } else {
                            scenario.clone()
                        };
                        let options = EngineOptions {
                            workers: config.threads,
                            stop_timeout: Duration::from_millis(stop_timeout_ms),
                            max_body,
                            accept_invalid_certs,
                            started_ago: Duration::from_millis(started_ago_ms),
                            source_addrs: config.source_addrs.clone(),
                            iterations,
                            ..EngineOptions::default()
                        };
                        // A rate of 0: the master's arrivals are paused (a capacity search
                        // draining); the run starts paused.
                        let paused = arrival_rate.is_some_and(|rate| rate <= 0.0);
                        let load = match arrival_rate {
                            Some(per_second) => Load::Arrivals { per_second: if paused { 1.0 } else { per_second }, max_users: users },
                            None => Load::Users { users, spawn_rate },
                        };
                        match start(mine, load, options) {
                            Ok(started) => {
                                if paused {
                                    let _ = started.control.set_arrival_rate(None, users);
                                }
                                (config.notify)(&match arrival_rate {
                                    Some(rate) => format!("starting {} iterations per second (at most {users} user(s))", show_rate(rate)),
                                    None => format!("running {users} user(s)"),
                                });
                                updates = Some(started.control.subscribe());
                                running = Some(started);
                            }
                            Err(message) => {
                                let _ = outgoing.send(ToMaster::Failed { message: message.clone() });
                                return End::Failed(format!("cannot start the users: {message}"));
                            }
                        }
                    }
                    ToWorker::SetUsers { users, spawn_rate } => {
                        if let Some(run) = &running {
                            match run.control.set_users(users, spawn_rate) {
                                Ok(()) => (config.notify)(&format!("moving to {users} user(s)")),
                                Err(err) => (config.notify)(&format!("cannot run {users} user(s): {err}")),
                            }
                        }
                    }
                    ToWorker::SetArrivals { per_second, max_users } => {
                        if let Some(run) = &running {
                            let rate = (per_second > 0.0).then_some(per_second);
                            match run.control.set_arrival_rate(rate, max_users) {
                                Ok(()) if rate.is_none() => (config.notify)("no new iterations until the master sets a rate"),
                                Ok(()) => (config.notify)(&format!("moving to {} iterations per second (at most {max_users} user(s))", show_rate(per_second))),
                                Err(err) => (config.notify)(&format!("cannot start {per_second} iterations per second: {err}")),
                            }
                        }
                    }
                    ToWorker::Stop { now } => {
                        if let Some(run) = &running {
                            if now { run.control.stop_now() } else { run.control.stop() }
                        }
                    }
                    ToWorker::Reset => {
                        if let Some(run) = &running {
                            run.control.reset_stats();
                            lock(&run.tap).clear();
                        }
                    }
                    ToWorker::Quit { message } => {
                        if let Some(run) = running.take() {
                            run.control.stop_now();
                            finish(config, outgoing, run).await;
                        }
                        return End::Quit(message);
                    }
                    ToWorker::Heartbeat
                    | ToWorker::Challenge { .. }
                    | ToWorker::Refused { .. }
                    | ToWorker::Welcome { .. } => {}
                }
            }
            result = async { (&mut running.as_mut()?.result).await.ok() }, if running.is_some() => {
                updates = None;
                if let Some(run) = running.take() {
                    let seconds = SecondStats::list(lock(&run.tap).take_all());
                    let _ = outgoing.send(ToMaster::Finished { seconds });
                    if let Some(result) = result {
                        write_json(config, &result);
                    }
                    (config.notify)("users stopped; waiting for the master");
                }
            }
            // A second closed on this worker: its measurements go to the master at once.
            update = async {
                match updates.as_mut()?.recv().await {
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Some(()),
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
                }
            }, if updates.is_some() => {
                match (&running, update) {
                    (Some(run), Some(_)) => {
                        let stats = run.stats();
                        if matches!(&stats, ToMaster::Stats { seconds, .. } if !seconds.is_empty()) {
                            let _ = outgoing.send(stats);
                        }
                    }
                    // The run's updates ended: the heartbeat carries on.
                    _ => updates = None,
                }
            }
            _ = tick.tick() => {
                if last_heard.elapsed() >= MISSING_AFTER {
                    let why = format!("no word from it for {:.1} s", MISSING_AFTER.as_secs_f64());
                    return lose(running, why).await;
                }
                let message = match &running {
                    Some(run) => run.stats(),
                    None => ToMaster::Heartbeat,
                };
                let _ = outgoing.send(message);
            }
        }
    }
}

/// Starts this worker's share: until the master says stop, so one open-ended stage.
fn start(scenario: Scenario, load: Load, options: EngineOptions) -> Result<Running, String> {
    let plan = Plan::new(vec![Stage {
        load,
        duration: None,
    }])
    .map_err(|e| e.to_string())?;
    let cores = match options.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        threads => threads,
    };
    let epoch = Instant::now()
        .checked_sub(options.started_ago)
        .unwrap_or_else(Instant::now);
    let handle = Engine::start(Arc::new(scenario), plan, options).map_err(|e| e.to_string())?;
    let tap = Arc::new(Mutex::new(SecondsTap::default()));
    handle.tap(tap.clone());
    let control = handle.control();
    let result = tokio::spawn(handle.wait());
    Ok(Running {
        control,
        tap,
        result,
        epoch,
        cores: u32::try_from(cores).unwrap_or(u32::MAX),
    })
}

/// Stops the users at once after the master was lost (their statistics have nowhere to go).
async fn lose(running: Option<Running>, why: String) -> End {
    if let Some(run) = running {
        run.control.stop_now();
        let _ = tokio::time::timeout(Duration::from_secs(5), run.result).await;
    }
    End::Lost(why)
}

/// Waits for the users to stop and sends the rest of the statistics.
async fn finish(config: &WorkerConfig, outgoing: &mpsc::UnboundedSender<ToMaster>, run: Running) {
    let result = tokio::time::timeout(Duration::from_secs(5), run.result).await;
    let _ = outgoing.send(ToMaster::Finished {
        seconds: SecondStats::list(lock(&run.tap).take_all()),
    });
    if let Ok(Ok(result)) = result {
        write_json(config, &result);
    }
}

fn lock(tap: &Mutex<SecondsTap>) -> std::sync::MutexGuard<'_, SecondsTap> {
    tap.lock().unwrap_or_else(|e| e.into_inner())
}

fn write_json(config: &WorkerConfig, result: &RunResult) {
    if let Some(path) = &config.json {
        if let Err(err) = report::json::write(result, path) {
            (config.notify)(&format!("could not write {}: {err}", path.display()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_master_address_is_host_and_port() {
        for good in [
            "chorus-master:5557",
            "10.0.0.5:5557",
            "[::1]:5557",
            "127.0.0.1:1",
        ] {
            assert_eq!(check_master_address(good).as_deref(), Ok(good));
        }
        for (bad, why) in [
            ("nonsense", "\"nonsense\" has no port"),
            (
                "host:99999",
                "\"host:99999\": the port \"99999\" is not a number from 1 to 65535",
            ),
            ("host:0", "\"host:0\": the port \"0\""),
            (":5557", "\":5557\" is not HOST:PORT"),
            ("::1:5557", "\"::1:5557\" is not HOST:PORT"),
            ("host:", "\"host:\": the port \"\""),
        ] {
            let err = check_master_address(bad).unwrap_err();
            assert!(err.starts_with(why), "{bad}: {err}");
            assert!(
                err.ends_with("e.g. chorus-master:5557 or 10.0.0.5:5557"),
                "{err}"
            );
        }
    }
}
