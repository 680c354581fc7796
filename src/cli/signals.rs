//! The signals that stop chorus, all meaning what Ctrl-C means: SIGINT (Ctrl-C), SIGTERM (what
//! `timeout`, CI cancellation, `docker stop` and Kubernetes send) and SIGHUP (the terminal went
//! away). The first one stops gracefully and the reports are written; a second one stops at
//! once (the reports are still written). A SIGHUP the process was started to ignore
//! (`nohup chorus run ...`) stays ignored.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Listening for the stop signals, from the moment it is made (so one that comes right after
/// a run starts is not lost to the default action, which would end the process).
pub(super) struct Interrupts {
    #[cfg(unix)]
    streams: [Option<tokio::signal::unix::Signal>; 3],
}

/// The signals, in the order of `Interrupts::streams`, as the messages name them.
#[cfg(unix)]
const NAMES: [&str; 3] = ["Ctrl-C", "SIGTERM", "SIGHUP"];

/// Whether this process was started with SIGHUP ignored (`nohup`): `SigIgn` in
/// `/proc/self/status` is a hex mask whose bit 0 is signal 1, SIGHUP.
#[cfg(unix)]
fn hangup_ignored() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("SigIgn:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & 1 == 1)
}

/// The next signal of `stream`, or never when it is not listened to.
#[cfg(unix)]
async fn next_of(stream: &mut Option<tokio::signal::unix::Signal>) {
    match stream {
        Some(stream) => {
            stream.recv().await;
        }
        None => std::future::pending().await,
    }
}

impl Interrupts {
    /// Starts listening. Call inside the tokio runtime.
    pub(super) fn listen() -> io::Result<Interrupts> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let hangup = if hangup_ignored() {
                None
            } else {
                Some(signal(SignalKind::hangup())?)
            };
            Ok(Interrupts {
                streams: [
                    Some(signal(SignalKind::interrupt())?),
                    Some(signal(SignalKind::terminate())?),
                    hangup,
                ],
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Interrupts {})
        }
    }

    /// The next stop signal, by name ("Ctrl-C", "SIGTERM", "SIGHUP").
    pub(super) async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            let [interrupt, terminate, hangup] = &mut self.streams;
            tokio::select! {
                () = next_of(interrupt) => NAMES[0],
                () = next_of(terminate) => NAMES[1],
                () = next_of(hangup) => NAMES[2],
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

/// Whether a stop signal came, for the outcome's message (and, for `provision`, its status).
#[derive(Debug, Clone, Default)]
pub(super) struct Interrupted(Arc<AtomicBool>);

impl Interrupted {
    pub(super) fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// What a graceful stop of a run means, for the message.
pub(super) const GRACEFUL: &str =
    "each user finishes its iteration within the stop timeout, then runs on_stop";

impl Interrupts {
    /// The first stop signal calls `stop` (gracefully: `what` says what that means), the
    /// second `stop_now`. Abort the task once the run is over.
    pub(super) fn on_stop(
        self,
        what: &'static str,
        stop: impl FnOnce() + Send + 'static,
        stop_now: impl FnOnce() + Send + 'static,
    ) -> (tokio::task::JoinHandle<()>, Interrupted) {
        stop_on(self, what, stop, stop_now)
    }
}

fn stop_on(
    mut interrupts: Interrupts,
    what: &'static str,
    stop: impl FnOnce() + Send + 'static,
    stop_now: impl FnOnce() + Send + 'static,
) -> (tokio::task::JoinHandle<()>, Interrupted) {
    let interrupted = Interrupted::default();
    let flag = interrupted.0.clone();
    let task = tokio::spawn(async move {
        let name = interrupts.next().await;
        flag.store(true, Ordering::Relaxed);
        eprintln!("stopping ({name}): {what} (Ctrl-C again to stop at once)");
        stop();
        let name = interrupts.next().await;
        eprintln!("stopping now ({name})");
        stop_now();
    });
    (task, interrupted)
}
