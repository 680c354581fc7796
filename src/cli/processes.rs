//! `chorus run --processes N`: the users run in N `chorus worker` processes of this machine,
//! started from this executable and pointed at a master this process binds on 127.0.0.1
//! (a free port, a fresh token); one page, one report, the merged statistics of the cluster.
//!
//! The children are started in a process group of their own, so a Ctrl-C at the terminal
//! reaches only this process, which stops them gracefully through the master (their last
//! measurements still count). Each watches this process and exits when it is gone (even
//! after a `kill -9`); whatever is still running when the run ends is killed and reaped.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cluster::{MasterConfig, MasterControl, auth};
use crate::engine::sources;

/// How long the workers may take to exit by themselves once the master told them to quit.
const EXIT_GRACE: Duration = Duration::from_secs(5);

/// How often a worker process looks whether the process that started it is still there.
pub(super) const PARENT_CHECK_EVERY: Duration = Duration::from_millis(500);

/// The worker processes a run asks for, not started yet.
pub(super) struct LocalWorkers {
    count: u64,
    threads: usize,
    token: String,
    /// `--source-addrs` (or the loopback spread), shared out over the processes.
    sources: Vec<IpAddr>,
}

impl LocalWorkers {
    /// `count` processes; `threads`: each one's engine threads (`--workers`; by default the
    /// machine's cores shared out, at least one each).
    pub(super) fn new(count: u64, threads: Option<usize>, sources: &[IpAddr]) -> LocalWorkers {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        LocalWorkers {
            count,
            threads: threads.unwrap_or_else(|| threads_each(cores, count)),
            token: auth::nonce(),
            sources: sources.to_vec(),
        }
    }

    /// Makes `config` a master for these processes only: loopback, a free port, their token.
    pub(super) fn configure(&self, config: &mut MasterConfig) {
        config.bind = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        config.token = Some(self.token.clone());
        config.expect_workers = usize::try_from(self.count).unwrap_or(usize::MAX);
        config.notify = Arc::new(|line: &str| eprintln!("chorus: {line}"));
    }

    /// Starts the processes, each told to join the master on `master`.
    pub(super) fn start(&self, master: SocketAddr) -> anyhow::Result<Started> {
        let exe = std::env::current_exe()
            .context("--processes: cannot find this program's own executable to start")?;
        let kill = CancellationToken::new();
        let (exited, exits) = mpsc::unbounded_channel();
        let mut children = Vec::new();
        for number in 1..=self.count {
            let mut command = tokio::process::Command::new(&exe);
            command
                .arg("worker")
                .arg("--master")
                .arg(master.to_string())
                .arg("--name")
                .arg(format!("process-{number}"))
                .arg("--threads")
                .arg(self.threads.to_string())
                .arg("--quiet")
                .arg("--parent-pid")
                .arg(std::process::id().to_string())
                // Not on the command line: `ps` shows that to every user of the machine.
                .env("CHORUS_CLUSTER_TOKEN", &self.token)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .kill_on_drop(true);
            let index = usize::try_from(number - 1).unwrap_or(0);
            let count = usize::try_from(self.count).unwrap_or(usize::MAX);
            let mine = sources::share(&self.sources, index, count);
            if !mine.is_empty() {
                let list: Vec<String> = mine.iter().map(IpAddr::to_string).collect();
                command.arg("--source-addrs").arg(list.join(","));
            }
            #[cfg(unix)]
            command.process_group(0);
            let child = command
                .spawn()
                .with_context(|| format!("--processes: could not start {}", exe.display()))?;
            let pid = child.id().unwrap_or(0);
            children.push(watch_child(number, child, kill.clone(), exited.clone()));
            tracing::debug!("worker process {number} is pid {pid}");
        }
        Ok(Started {
            children,
            kill,
            exits: Some(exits),
        })
    }
}

/// Each process's engine threads when `count` share `cores`: at least one.
fn threads_each(cores: usize, count: u64) -> usize {
    let count = usize::try_from(count).unwrap_or(usize::MAX).max(1);
    cores.div_ceil(count).max(1)
}

/// Waits for one child; kills it when `kill` is cancelled. Says how it ended on `exited`.
fn watch_child(
    number: u64,
    mut child: tokio::process::Child,
    kill: CancellationToken,
    exited: mpsc::UnboundedSender<(u64, ExitStatus)>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let status = tokio::select! {
            status = child.wait() => status,
            () = kill.cancelled() => {
                let _ = child.start_kill();
                child.wait().await
            }
        };
        if let Ok(status) = status {
            let _ = exited.send((number, status));
        }
    })
}

/// The running worker processes.
pub(super) struct Started {
    children: Vec<JoinHandle<()>>,
    kill: CancellationToken,
    exits: Option<mpsc::UnboundedReceiver<(u64, ExitStatus)>>,
}

impl Started {
    /// Stops the master when a worker process fails before the run began (it could not
    /// start, or the master refused it): the run would wait for it for ever. The task ends
    /// with the failure's sentence, if there was one.
    pub(super) fn watch_start(&mut self, control: MasterControl) -> JoinHandle<Option<String>> {
        let exits = self.exits.take();
        tokio::spawn(async move {
            let mut exits = exits?;
            while let Some((number, status)) = exits.recv().await {
                if !status.success() && control.status().state.is_none() {
                    control.stop_now();
                    return Some(format!(
                        "worker process {number} of --processes ended ({status}) before the run began"
                    ));
                }
            }
            None
        })
    }

    /// Lets the processes exit by themselves (the master told them to quit) for a few
    /// seconds, then kills what is left; returns once every one is reaped.
    pub(super) async fn finish(self) {
        let Started {
            children,
            kill,
            exits: _,
        } = self;
        let mut children = children;
        let all = futures_util::future::join_all(children.iter_mut());
        if tokio::time::timeout(EXIT_GRACE, all).await.is_err() {
            kill.cancel();
            futures_util::future::join_all(children).await;
        }
    }
}

/// Resolves when the process `parent` is no longer this process's parent (it exited; the
/// child was handed to another). Never, off Unix.
pub(super) async fn parent_gone(parent: u32) {
    #[cfg(unix)]
    loop {
        let now = rustix::process::getppid().map(|pid| pid.as_raw_pid());
        if now != i32::try_from(parent).ok() {
            return;
        }
        tokio::time::sleep(PARENT_CHECK_EVERY).await;
    }
    #[cfg(not(unix))]
    {
        let _ = parent;
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cores_are_shared_out() {
        assert_eq!(threads_each(2, 6), 1);
        assert_eq!(threads_each(8, 3), 3);
        assert_eq!(threads_each(8, 1), 8);
        assert_eq!(threads_each(1, 0), 1);
    }
}
