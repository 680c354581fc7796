//! A `chorus` process a test watches while it runs: its output goes to files, signals are
//! sent with `kill`, and its memory is read from `/proc/PID/status` until it exits (and it is
//! killed if it passes a bound, so a test of bounded memory cannot take the machine down).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::time::Instant;

/// A running `chorus`.
pub struct Chorus {
    child: Child,
    pid: u32,
    stdout: PathBuf,
    stderr: PathBuf,
}

/// How it ended.
#[derive(Debug)]
pub struct Ended {
    /// `None` when a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// The most memory it held (VmHWM), in KiB, as last read before it exited.
    pub peak_rss_kib: u64,
}

impl Chorus {
    /// Starts `chorus ARGS` in `dir`; with `shell`, through `sh -c "SHELL; exec chorus ARGS"`
    /// (e.g. `ulimit -n 300`).
    pub fn start(args: &[&str], dir: &Path, shell: Option<&str>) -> Chorus {
        static STARTED: AtomicU64 = AtomicU64::new(0);
        let name = format!("chorus-{}", STARTED.fetch_add(1, Ordering::Relaxed));
        let stdout = dir.join(format!("{name}.stdout"));
        let stderr = dir.join(format!("{name}.stderr"));
        let binary = env!("CARGO_BIN_EXE_chorus");
        let mut command = match shell {
            Some(prefix) => {
                let mut command = Command::new("sh");
                command
                    .arg("-c")
                    .arg(format!("{prefix}; exec \"$0\" \"$@\""))
                    .arg(binary);
                command
            }
            None => Command::new(binary),
        };
        let child = command
            .args(args)
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .kill_on_drop(true)
            .spawn()
            .expect("chorus starts");
        let pid = child.id().expect("a pid");
        Chorus {
            child,
            pid,
            stdout,
            stderr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends `signal` (`TERM`, `HUP`, `INT`) with `kill`.
    pub async fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid.to_string())
            .status()
            .await
            .unwrap();
        assert!(status.success(), "kill -{signal} {}", self.pid);
    }

    /// What it printed on stderr so far.
    pub fn stderr_so_far(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// A line of `/proc/PID/status` in KiB (`VmHWM`, `VmRSS`), while it runs.
    pub fn status_kib(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let line = status.lines().find(|line| line.starts_with(field))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Waits for it to exit, at most `patience` (then it is killed and the test fails); kills
    /// it at once if its memory passes `max_rss_kib`.
    pub async fn finish(mut self, patience: Duration, max_rss_kib: u64) -> Ended {
        let deadline = Instant::now() + patience;
        let mut peak = 0;
        let code = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status.code();
            }
            peak = peak.max(self.status_kib("VmHWM:").unwrap_or(0));
            let rss = self.status_kib("VmRSS:").unwrap_or(0);
            if rss > max_rss_kib {
                let _ = self.child.kill().await;
                panic!(
                    "chorus held {rss} KiB, more than the bound of {max_rss_kib} KiB; stderr:\n{}",
                    self.stderr_so_far()
                );
            }
            if Instant::now() > deadline {
                let _ = self.child.kill().await;
                panic!(
                    "chorus did not exit within {patience:?}; stderr:\n{}",
                    self.stderr_so_far()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Ended {
            code,
            stdout: std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            stderr: std::fs::read_to_string(&self.stderr).unwrap_or_default(),
            peak_rss_kib: peak,
        }
    }
}

/// Polls `condition` every 50 ms until it holds; panics with `what` after `patience`.
pub async fn until(what: &str, patience: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + patience;
    while !condition() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
