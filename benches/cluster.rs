//! The master's cost: its CPU time while 20 worker processes (on this machine) run users and
//! report every second, as a share of one core, in total and per worker. Target: the master
//! stays under 5 % of a core with 20 workers.
//!
//! Each worker runs 2 users (1 thread) against the demo app in this process, through a
//! scenario of 10 request names, so each per-second report carries 10 HDR histograms — what
//! a real scenario's workers send. The master's CPU is read from /proc over a window of
//! `CHORUS_BENCH_SECS` seconds (default 10) once every worker runs its users.
//!
//! Run with `cargo bench --bench cluster` (release profile). Everything is bounded: the run
//! has a fixed length and every process is killed at the end.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chorus::demo::{App, AppOptions};

const WORKERS: usize = 20;
const NAMES: usize = 10;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32, ticks_per_second: f64) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc is readable");
    // The command name is in parentheses and may hold spaces: count fields after it.
    let after = &stat[stat.rfind(')').expect("a stat line") + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    let utime: f64 = fields[11].parse().unwrap();
    let stime: f64 = fields[12].parse().unwrap();
    (utime + stime) / ticks_per_second
}

fn ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn main() {
    let window = Duration::from_secs(
        std::env::var("CHORUS_BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let app = App::new(AppOptions::default());
    let server = runtime
        .block_on(chorus::demo::serve(&app, "127.0.0.1:0".parse().unwrap()))
        .unwrap();
    let dir = std::env::temp_dir().join(format!("chorus-bench-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut scenario = format!("host: {}\nflows:\n  - name: a\n    steps:\n", server.url());
    for n in 0..NAMES {
        scenario.push_str(&format!(
            "      - get: /__demo/delay/1\n        name: step {n}\n"
        ));
    }
    scenario.push_str("      - think: 1s\n");
    std::fs::write(dir.join("s.yaml"), scenario).unwrap();

    let run_time = window + Duration::from_secs(20);
    let users = (WORKERS * 2).to_string();
    let run_time_arg = format!("{}s", run_time.as_secs());
    let workers_arg = WORKERS.to_string();
    let mut master = Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args([
            "run",
            "s.yaml",
            "--headless",
            "-q",
            "-u",
            &users,
            "-r",
            "100",
            "-t",
            &run_time_arg,
            "--master",
            "--master-bind",
            "127.0.0.1:0",
            "--expect-workers",
            &workers_arg,
        ])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the chorus binary starts");
    let master_pid = master.id();
    let stderr = master.stderr.take().unwrap();
    let master = Killed(master);
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |what: &str| -> String {
        loop {
            match received.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if line.contains(what) => return line,
                Ok(_) => {}
                Err(_) => panic!("the master never printed {what:?}"),
            }
        }
    };
    let line = wait_for("workers join with: chorus worker --master ");
    let address = line.rsplit(' ').next().unwrap().to_owned();
    let _workers: Vec<Killed> = (0..WORKERS)
        .map(|i| {
            Killed(
                Command::new(env!("CARGO_BIN_EXE_chorus"))
                    .args(["worker", "--master", &address, "--threads", "1", "-q"])
                    .args(["--name", &format!("w{i}")])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("a worker starts"),
            )
        })
        .collect();
    wait_for(&format!("starting with {WORKERS} worker(s)"));
    // Let the users start (100 per second) and the first reports arrive.
    std::thread::sleep(Duration::from_secs(3));
    let ticks = ticks_per_second();
    let before = cpu_seconds(master_pid, ticks);
    let started = Instant::now();
    std::thread::sleep(window);
    let used = cpu_seconds(master_pid, ticks) - before;
    let elapsed = started.elapsed().as_secs_f64();
    let share = used / elapsed * 100.0;
    println!(
        "cluster master: {share:.2} % of a core with {WORKERS} workers reporting every second \
         ({:.3} % per worker; {NAMES} request names each); target: under 5 % in total",
        share / WORKERS as f64
    );
    drop(master);
    let _ = std::fs::remove_dir_all(&dir);
}
