//! The sampler: reads `/proc` for each monitor once a second and keeps the series, and
//! watches chorus's own CPU. File reads are the edge; the arithmetic is in plain functions.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::procfs;
use super::prometheus::{self, Reading};
use super::scrape::Scraper;
use super::spec::Spec;
use super::unit::Unit;

/// `/proc`'s clock ticks per second (Linux reports CPU times in `USER_HZ`).
fn clock_ticks() -> f64 {
    rustix::param::clock_ticks_per_second() as f64
}

/// One measured quantity over the run: `(second since the start, value)`; a second with no
/// value (a process gone, a read that failed) is missing, a gap in a chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// `process:postgres.cpu`, `host.memory`, `chorus.cpu`.
    pub name: String,
    pub unit: Unit,
    pub points: Vec<(u64, f64)>,
}

/// Something that happened to a monitor: a process that exited or restarted, a read that
/// failed, chorus itself short of CPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub second: u64,
    pub text: String,
}

/// Every series and notice of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Monitored {
    pub series: Vec<Series>,
    pub notices: Vec<Notice>,
    /// Seconds chorus's own CPU stayed above 90 % of what it can use (then latencies include
    /// its own queueing).
    #[serde(default)]
    pub generator_saturated_seconds: u64,
    /// A distributed run: seconds each worker's CPU stayed above 90 % of its cores, by the
    /// worker's name (its latencies then include its own queueing).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub workers_saturated_seconds: BTreeMap<String, u64>,
}

impl Monitored {
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
            && self.notices.is_empty()
            && self.workers_saturated_seconds.is_empty()
    }
}

/// The monitors at one look, for the page: each series' newest point (with the run second it
/// belongs to), whether chorus's own CPU has stayed above 90 % for a few seconds now, and
/// every notice so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Look {
    /// `(series, unit, second, value)`.
    pub points: Vec<(String, Unit, u64, f64)>,
    /// chorus's own CPU has stayed above 90 % for [`SATURATED_FOR`] seconds up to now.
    pub saturated: bool,
    /// Seconds so far with chorus's own CPU above 90 %.
    pub saturated_seconds: u64,
    pub notices: Vec<Notice>,
}

impl Look {
    /// Each series' newest value, without its second (the terminal, `/metrics`).
    pub fn values(self) -> Vec<(String, Unit, f64)> {
        (self.points.into_iter())
            .map(|(name, unit, _, value)| (name, unit, value))
            .collect()
    }
}

/// A process's counters at one sample.
#[derive(Debug, Clone, Copy)]
struct Counters {
    cpu_ticks: u64,
    read: u64,
    written: u64,
}

#[derive(Debug, Default)]
struct ProcessState {
    /// (pid, start) -> counters at the last sample.
    last: HashMap<(u32, u64), Counters>,
    /// Whether the process was there at the last sample (for "exited" said once).
    present: bool,
}

#[derive(Debug, Default)]
struct HostState {
    cpu: Option<(u64, u64)>,
    net: Option<(u64, u64)>,
    disk: Option<(u64, u64)>,
}

#[derive(Debug)]
enum State {
    Process {
        label: String,
        spec: Spec,
        state: ProcessState,
    },
    Host(HostState),
    Prometheus(Box<Endpoint>),
}

/// A Prometheus endpoint being watched.
#[derive(Debug)]
struct Endpoint {
    label: String,
    series: Vec<String>,
    scraper: Scraper,
    /// The last scrape read, and when it ended (rates are counted from it).
    last: Option<(Reading, Instant)>,
    /// Why the last scrape failed (said once until one succeeds again).
    failing: Option<String>,
    /// Said once: a selection wider than `prometheus::MAX_SERIES`, an endpoint without
    /// default series.
    said_shape: bool,
}

/// Seconds above this share of its CPU make chorus say its latencies include its queueing.
const SATURATED_PERCENT: f64 = 90.0;
/// How many seconds in a row before it says so.
pub const SATURATED_FOR: u64 = 3;

pub struct Sampler {
    states: Vec<State>,
    /// chorus itself.
    own: ProcessState,
    /// How many cores chorus's engine may use (100 % each).
    own_cores: f64,
    saturated_run: u64,
    series: BTreeMap<String, Series>,
    notices: Vec<Notice>,
    disks: Vec<String>,
    last_at: Option<Instant>,
    last_second: Option<u64>,
    saturated_seconds: u64,
}

/// The PIDs whose command name is `name`.
fn pids_named(name: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim_end_matches('\n') == name)
        })
        .collect()
}

/// One process's counters now, with its start time (None: it is gone).
fn read_process(pid: u32) -> Option<(u64, Counters, u64, u64, u64)> {
    let stat = procfs::process_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = procfs::kib_field(&status, "VmRSS").unwrap_or(0);
    // Another user's process hides its io and fds: counted as 0, not as a failure.
    let (read, written) = std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|io| procfs::process_io(&io))
        .unwrap_or((0, 0));
    let open_files = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count() as u64)
        .unwrap_or(0);
    Some((
        stat.start_ticks,
        Counters {
            cpu_ticks: stat.cpu_ticks,
            read,
            written,
        },
        rss,
        stat.threads,
        open_files,
    ))
}

/// A process group's values this second, and their rates against the last sample.
#[derive(Debug, Default, PartialEq)]
struct ProcessSample {
    found: usize,
    cpu_percent: Option<f64>,
    memory: u64,
    threads: u64,
    open_files: u64,
    read_rate: Option<f64>,
    write_rate: Option<f64>,
    restarted: bool,
}

fn sample_processes(
    pids: &[u32],
    state: &mut ProcessState,
    elapsed: Option<f64>,
    ticks_per_second: f64,
) -> ProcessSample {
    let mut now: HashMap<(u32, u64), Counters> = HashMap::new();
    let mut sample = ProcessSample::default();
    for &pid in pids {
        if let Some((start, counters, rss, threads, files)) = read_process(pid) {
            now.insert((pid, start), counters);
            sample.memory += rss;
            sample.threads += threads;
            sample.open_files += files;
        }
    }
    sample.found = now.len();
    sample.restarted = pids.len() == 1
        && !now.is_empty()
        && !state.last.is_empty()
        && state.last.keys().all(|key| !now.contains_key(key));
    if let Some(elapsed) = elapsed.filter(|e| *e > 0.0) {
        // Only processes seen both times count: a new one's whole past is not this second's.
        let (mut ticks, mut read, mut written, mut common) = (0u64, 0u64, 0u64, false);
        for (key, counters) in &now {
            if let Some(before) = state.last.get(key) {
                common = true;
                ticks += counters.cpu_ticks.saturating_sub(before.cpu_ticks);
                read += counters.read.saturating_sub(before.read);
                written += counters.written.saturating_sub(before.written);
            }
        }
        if common {
            sample.cpu_percent = Some(100.0 * ticks as f64 / ticks_per_second / elapsed);
            sample.read_rate = Some(read as f64 / elapsed);
            sample.write_rate = Some(written as f64 / elapsed);
        }
    }
    state.last = now;
    sample
}

fn rate(now: u64, before: u64, elapsed: f64) -> f64 {
    now.saturating_sub(before) as f64 / elapsed
}

impl Sampler {
    /// Checks each spec against this machine now: a PID that does not exist is refused
    /// before the run (a name may match later: it is not).
    pub fn new(specs: &[Spec], own_cores: usize) -> Result<Sampler, String> {
        let mut states = Vec::new();
        for spec in specs {
            match spec {
                Spec::Pid(pid) => {
                    if !Path::new(&format!("/proc/{pid}")).exists() {
                        return Err(format!(
                            "--monitor {spec}: no process has PID {pid} on this machine (`ps -p {pid}`); give the PID of a running process or its name (process:NAME)"
                        ));
                    }
                }
                Spec::Name(_) => {}
                Spec::Host => {
                    states.push(State::Host(HostState::default()));
                    continue;
                }
                Spec::Prometheus { url, series } => {
                    states.push(State::Prometheus(Box::new(Endpoint {
                        label: spec.label(),
                        series: series.clone(),
                        scraper: Scraper::new(url.clone()),
                        last: None,
                        failing: None,
                        said_shape: false,
                    })));
                    continue;
                }
            }
            states.push(State::Process {
                label: spec.label(),
                spec: spec.clone(),
                state: ProcessState::default(),
            });
        }
        let disks = std::fs::read_dir("/sys/block")
            .map(|dir| {
                dir.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|name| procfs::is_counted_disk(name))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Sampler {
            states,
            own: ProcessState::default(),
            own_cores: own_cores.max(1) as f64,
            saturated_run: 0,
            series: BTreeMap::new(),
            notices: Vec::new(),
            disks,
            last_at: None,
            last_second: None,
            saturated_seconds: 0,
        })
    }

    fn point(&mut self, name: String, unit: Unit, second: u64, value: f64) {
        if value.is_finite() {
            self.series
                .entry(name.clone())
                .or_insert_with(|| Series {
                    name,
                    unit,
                    points: Vec::new(),
                })
                .points
                .push((second, value));
        }
    }

    fn notice(&mut self, second: u64, text: String) {
        self.notices.push(Notice { second, text });
    }

    /// Takes this second's sample of every monitor and of chorus itself (a second already
    /// sampled is not sampled again).
    pub fn sample(&mut self, second: u64) {
        if self.last_second.is_some_and(|last| second <= last) {
            return;
        }
        self.last_second = Some(second);
        let now = Instant::now();
        let elapsed = self.last_at.map(|at| (now - at).as_secs_f64());
        self.last_at = Some(now);
        let ticks = clock_ticks();
        let mut states = std::mem::take(&mut self.states);
        for state in &mut states {
            match state {
                State::Process { label, spec, state } => {
                    let pids = match spec {
                        Spec::Pid(pid) => vec![*pid],
                        Spec::Name(name) => pids_named(name),
                        Spec::Host | Spec::Prometheus { .. } => {
                            unreachable!("not a process")
                        }
                    };
                    let was_present = state.present;
                    let sample = sample_processes(&pids, state, elapsed, ticks);
                    state.present = sample.found > 0;
                    if was_present && !state.present {
                        self.notice(second, format!("{label}: the process exited"));
                    } else if !was_present && state.present && second > 0 {
                        self.notice(second, format!("{label}: the process is running again"));
                    } else if sample.restarted {
                        self.notice(
                            second,
                            format!("{label}: another process has this PID now (restarted?)"),
                        );
                    }
                    if !state.present {
                        continue;
                    }
                    let label = label.clone();
                    if let Some(cpu) = sample.cpu_percent {
                        self.point(format!("{label}.cpu"), Unit::Percent, second, cpu);
                    }
                    self.point(
                        format!("{label}.memory"),
                        Unit::Bytes,
                        second,
                        sample.memory as f64,
                    );
                    self.point(
                        format!("{label}.threads"),
                        Unit::Count,
                        second,
                        sample.threads as f64,
                    );
                    self.point(
                        format!("{label}.open_files"),
                        Unit::Count,
                        second,
                        sample.open_files as f64,
                    );
                    if let (Some(read), Some(write)) = (sample.read_rate, sample.write_rate) {
                        self.point(format!("{label}.read"), Unit::BytesPerSecond, second, read);
                        self.point(
                            format!("{label}.write"),
                            Unit::BytesPerSecond,
                            second,
                            write,
                        );
                    }
                }
                State::Host(host) => self.sample_host(host, second, elapsed),
                State::Prometheus(endpoint) => self.sample_endpoint(endpoint, second),
            }
        }
        self.states = states;
        self.sample_self(second, elapsed, ticks);
    }

    fn sample_host(&mut self, host: &mut HostState, second: u64, elapsed: Option<f64>) {
        let read = |path: &str| std::fs::read_to_string(path).ok();
        if let Some(stat) = read("/proc/stat") {
            let now = procfs::host_cpu(&stat);
            if let (Some((busy, total)), Some((busy0, total0))) = (now, host.cpu) {
                if total > total0 {
                    let percent =
                        100.0 * busy.saturating_sub(busy0) as f64 / (total - total0) as f64;
                    self.point("host.cpu".to_owned(), Unit::Percent, second, percent);
                }
            }
            host.cpu = now;
        }
        if let Some(used) = read("/proc/meminfo").and_then(|m| procfs::memory_used_percent(&m)) {
            self.point("host.memory".to_owned(), Unit::Percent, second, used);
        }
        if let Some(load) = read("/proc/loadavg").and_then(|l| procfs::load1(&l)) {
            self.point("host.load1".to_owned(), Unit::Number, second, load);
        }
        let net = read("/proc/net/dev").and_then(|n| procfs::network_bytes(&n));
        let disk = read("/proc/diskstats").and_then(|d| procfs::disk_bytes(&d, &self.disks));
        if let Some(elapsed) = elapsed.filter(|e| *e > 0.0) {
            // Each pair of byte counters (in, out) as two rates.
            let counters = [
                (["host.net_received", "host.net_sent"], net, host.net),
                (["host.disk_read", "host.disk_write"], disk, host.disk),
            ];
            for (names, now, before) in counters {
                let (Some((a, b)), Some((a0, b0))) = (now, before) else {
                    continue;
                };
                for (name, now, before) in [(names[0], a, a0), (names[1], b, b0)] {
                    let value = rate(now, before, elapsed);
                    self.point(name.to_owned(), Unit::BytesPerSecond, second, value);
                }
            }
        }
        host.net = net.or(host.net);
        host.disk = disk.or(host.disk);
    }

    /// Reads the answer of the scrape started at the last look (recorded under the second
    /// it was started for, like the `/proc` reads of that look), and starts the next one.
    fn sample_endpoint(&mut self, endpoint: &mut Endpoint, second: u64) {
        if let Some((at_second, at, answer)) = endpoint.scraper.take() {
            let read = answer.and_then(|text| {
                let samples = prometheus::parse(&text)?;
                Ok(if endpoint.series.is_empty() {
                    match prometheus::read_defaults(&samples) {
                        Some(reading) => (reading, None),
                        None => {
                            let names = ["*".to_owned()];
                            let (reading, _) = prometheus::read_selected(&samples, &names);
                            let shape = format!(
                                "neither node_exporter's nor process_* metrics: showing the first {} series; choose them with #name,name* after the URL",
                                reading.len()
                            );
                            (reading, Some(shape))
                        }
                    }
                } else {
                    let (reading, dropped) =
                        prometheus::read_selected(&samples, &endpoint.series);
                    let shape = (dropped > 0).then(|| {
                        format!(
                            "the selection matches {dropped} more series than the {} kept; choose fewer",
                            prometheus::MAX_SERIES
                        )
                    });
                    (reading, shape)
                })
            });
            let label = endpoint.label.clone();
            match read {
                Ok((reading, shape)) => {
                    if let Some(shape) = shape.filter(|_| !endpoint.said_shape) {
                        endpoint.said_shape = true;
                        self.notice(at_second, format!("{label}: {shape}"));
                    }
                    if endpoint.failing.take().is_some() {
                        self.notice(at_second, format!("{label}: scraped again"));
                    }
                    let before = endpoint
                        .last
                        .as_ref()
                        .map(|(r, then)| (r, (at - *then).as_secs_f64()));
                    for (name, unit, value) in prometheus::values(&reading, before) {
                        self.point(format!("{label}.{name}"), unit, at_second, value);
                    }
                    endpoint.last = Some((reading, at));
                }
                Err(why) => {
                    if endpoint.failing.as_deref() != Some(why.as_str()) {
                        self.notice(
                            at_second,
                            format!(
                                "{label}: scrape of {} failed: {why} (a gap in its series; the run goes on)",
                                endpoint.scraper.url
                            ),
                        );
                    }
                    endpoint.failing = Some(why);
                    // A rate across the gap would hide it: count again from the next one.
                    endpoint.last = None;
                }
            }
        }
        endpoint.scraper.start(second);
    }

    fn sample_self(&mut self, second: u64, elapsed: Option<f64>, ticks: f64) {
        let pid = std::process::id();
        let mut own = std::mem::take(&mut self.own);
        let sample = sample_processes(&[pid], &mut own, elapsed, ticks);
        self.own = own;
        self.point(
            "chorus.memory".to_owned(),
            Unit::Bytes,
            second,
            sample.memory as f64,
        );
        let Some(cpu) = sample.cpu_percent else {
            return;
        };
        self.own_cpu(second, cpu);
    }

    /// chorus's own CPU in one second (percent of one core): counted as saturated when it is
    /// [`SATURATED_PERCENT`] of the cores it may use, and said once it has stayed so for
    /// [`SATURATED_FOR`] seconds in a row.
    fn own_cpu(&mut self, second: u64, cpu: f64) {
        self.point("chorus.cpu".to_owned(), Unit::Percent, second, cpu);
        if cpu / self.own_cores >= SATURATED_PERCENT {
            self.saturated_run += 1;
            self.saturated_seconds += 1;
            if self.saturated_run == SATURATED_FOR {
                let cores = self.own_cores;
                self.notice(
                    second,
                    format!(
                        "chorus used {cpu:.0} % CPU ({cores} core(s) available to it) for {SATURATED_FOR} s: latencies from here include chorus's own queueing; use fewer users per process or more workers"
                    ),
                );
            }
        } else {
            self.saturated_run = 0;
        }
    }

    /// The newest points, the saturation and the notices (the page's System tab).
    pub fn look(&self) -> Look {
        Look {
            points: self
                .series
                .values()
                .filter_map(|s| {
                    s.points
                        .last()
                        .map(|(second, v)| (s.name.clone(), s.unit, *second, *v))
                })
                .collect(),
            saturated: self.saturated_run >= SATURATED_FOR,
            saturated_seconds: self.saturated_seconds,
            notices: self.notices.clone(),
        }
    }

    /// Notices since the `seen`th (to print them as they come).
    pub fn notices_from(&self, seen: usize) -> &[Notice] {
        self.notices.get(seen..).unwrap_or_default()
    }

    /// Everything sampled so far; the sampler starts over.
    pub fn finish(&mut self) -> Monitored {
        Monitored {
            series: std::mem::take(&mut self.series).into_values().collect(),
            notices: std::mem::take(&mut self.notices),
            generator_saturated_seconds: std::mem::take(&mut self.saturated_seconds),
            workers_saturated_seconds: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};
    use std::time::Duration;

    use super::*;

    fn spawn(script: &str) -> std::process::Child {
        Command::new("sh")
            .args(["-c", script])
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    }

    fn last(monitored: &Monitored, name: &str) -> Option<f64> {
        monitored
            .series
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.points.last().map(|(_, v)| *v))
    }

    #[test]
    fn a_busy_process_uses_cpu_an_idle_one_does_not_and_an_exit_is_said() {
        let mut busy = spawn("while :; do :; done");
        let mut idle = spawn("exec sleep 60");
        let specs = [Spec::Pid(busy.id()), Spec::Pid(idle.id()), Spec::Host];
        let mut sampler = Sampler::new(&specs, 1).unwrap();
        for second in 0..3 {
            sampler.sample(second);
            // The sampling period (not a wait for something to happen).
            std::thread::sleep(Duration::from_millis(400));
        }
        sampler.sample(3);
        busy.kill().unwrap();
        busy.wait().unwrap();
        sampler.sample(4);
        idle.kill().unwrap();
        idle.wait().unwrap();
        let monitored = sampler.finish();
        let busy_cpu = last(&monitored, &format!("process:{}.cpu", busy.id())).unwrap();
        let idle_cpu = last(&monitored, &format!("process:{}.cpu", idle.id())).unwrap();
        assert!(
            busy_cpu > 5.0 && busy_cpu > idle_cpu,
            "{busy_cpu} vs {idle_cpu}"
        );
        assert!(idle_cpu < 5.0, "{idle_cpu}");
        assert!(last(&monitored, &format!("process:{}.memory", idle.id())).unwrap() > 0.0);
        assert_eq!(
            last(&monitored, &format!("process:{}.threads", idle.id())),
            Some(1.0)
        );
        assert!(last(&monitored, "host.cpu").is_some_and(|cpu| (0.0..=100.0).contains(&cpu)));
        assert!(last(&monitored, "host.memory").is_some_and(|m| m > 0.0 && m < 100.0));
        assert!(last(&monitored, "chorus.memory").is_some_and(|m| m > 0.0));
        // (This test process's own CPU may also be said: other tests run beside it.)
        let about_processes: Vec<&Notice> = monitored
            .notices
            .iter()
            .filter(|n| n.text.starts_with("process:"))
            .collect();
        assert_eq!(
            about_processes,
            [&Notice {
                second: 4,
                text: format!("process:{}: the process exited", busy.id())
            }]
        );
    }

    #[test]
    fn chorus_short_of_cpu_for_three_seconds_in_a_row_is_said_once_and_every_such_second_counted() {
        let mut sampler = Sampler::new(&[], 2).unwrap();
        // Percent of one core, on two cores: 180 is 90 % of what chorus may use.
        for (second, cpu) in [(0, 190.0), (1, 185.0), (2, 120.0), (3, 180.0), (4, 199.0)] {
            sampler.own_cpu(second, cpu);
        }
        assert!(!sampler.look().saturated, "2 seconds in a row are not 3");
        sampler.own_cpu(5, 200.0);
        assert!(sampler.look().saturated);
        sampler.own_cpu(6, 195.0);
        sampler.own_cpu(7, 20.0);
        assert!(!sampler.look().saturated);
        let monitored = sampler.finish();
        assert_eq!(monitored.generator_saturated_seconds, 6);
        let said: Vec<u64> = monitored.notices.iter().map(|n| n.second).collect();
        assert_eq!(said, [5], "{:?}", monitored.notices);
        assert!(
            monitored.notices[0]
                .text
                .contains("latencies from here include chorus's own queueing")
        );
        assert_eq!(monitored.series[0].points.len(), 8);
    }

    #[test]
    fn a_pid_that_does_not_exist_is_refused_before_the_run() {
        let err = Sampler::new(&[Spec::Pid(u32::MAX - 1)], 1).err().unwrap();
        assert!(
            err.starts_with("--monitor process:4294967294: no process has PID"),
            "{err}"
        );
    }

    #[test]
    fn a_name_sums_its_processes() {
        // Started as `sleep` itself: through `sh -c 'exec sleep'` the name is `sh` until the
        // exec, which may come after the sample.
        let mut children: Vec<_> = (0..3)
            .map(|_| Command::new("sleep").arg("60").spawn().unwrap())
            .collect();
        let mut sampler = Sampler::new(&[Spec::Name("sleep".to_owned())], 1).unwrap();
        sampler.sample(0);
        let threads = sampler
            .look()
            .values()
            .into_iter()
            .find(|(name, _, _)| name == "process:sleep.threads")
            .map(|(_, _, v)| v);
        for child in &mut children {
            child.kill().unwrap();
            child.wait().unwrap();
        }
        // Other tests may run sleeps too: at least these three.
        assert!(threads.is_some_and(|t| t >= 3.0), "{threads:?}");
    }
}
