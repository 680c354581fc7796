//! How one user stops. A graceful stop (the run time is over, the page's Stop, the first
//! Ctrl-C, a ramp-down) lets the user finish what it is doing — `on_start` or its current
//! iteration — within the stop timeout, and then run `on_stop` (the logout, the cleanup), which
//! gets as long again. What is still going at those deadlines is cut: the request in flight is
//! counted as cut at the stop and the sequence ends. A stop at once (the second Ctrl-C) cuts
//! everything now and skips `on_stop`. Nothing here does IO; the user's steps race their
//! awaits against [`StopSignal::cut`].

use std::cell::Cell;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// A user's stop: cheap to test between steps, awaitable during requests and thinks.
#[derive(Debug, Default)]
pub(super) struct StopSignal {
    /// Asked to stop: no new iteration starts.
    stopping: Cell<bool>,
    /// When `on_start` or the iteration under way is cut.
    finish_by: Cell<Option<Instant>>,
    /// When `on_stop` is cut.
    clean_up_by: Cell<Option<Instant>>,
    /// Stop at once: everything is cut now and `on_stop` does not run.
    now: Cell<bool>,
    notify: Notify,
}

/// What a user is doing, for its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// `on_start` or an iteration: cut at the stop timeout.
    Work,
    /// `on_stop`: cut at twice the stop timeout.
    CleanUp,
}

impl StopSignal {
    /// Graceful stop: what is under way may take `timeout` more, `on_stop` after it as long
    /// again. A second call never moves a deadline later.
    pub(super) fn stop(&self, timeout: Duration) {
        let now = Instant::now();
        let earliest = |cell: &Cell<Option<Instant>>, at: Instant| {
            cell.set(Some(cell.get().map_or(at, |known| known.min(at))));
        };
        earliest(&self.finish_by, now + timeout);
        earliest(&self.clean_up_by, now + timeout.saturating_mul(2));
        self.stopping.set(true);
        self.notify.notify_waiters();
    }

    /// Stop at once: cut everything, skip `on_stop`.
    pub(super) fn stop_now(&self) {
        self.stopping.set(true);
        self.now.set(true);
        self.notify.notify_waiters();
    }

    /// Asked to stop (gracefully or at once).
    pub(super) fn is_stopping(&self) -> bool {
        self.stopping.get()
    }

    /// Asked to stop at once.
    pub(super) fn is_now(&self) -> bool {
        self.now.get()
    }

    /// Whether what the user does in `phase` is to be cut by now.
    pub(super) fn is_cut(&self, phase: Phase) -> bool {
        if self.now.get() {
            return true;
        }
        self.stopping.get() && self.deadline(phase).is_some_and(|at| Instant::now() >= at)
    }

    fn deadline(&self, phase: Phase) -> Option<Instant> {
        match phase {
            Phase::Work => self.finish_by.get(),
            Phase::CleanUp => self.clean_up_by.get(),
        }
    }

    /// Resolves once a stop was asked for (at once if it was already).
    pub(super) async fn stopping(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_stopping() {
                return;
            }
            notified.await;
        }
    }

    /// Resolves when what the user does in `phase` is cut: at its deadline once a stop was
    /// asked for, or at once on a stop at once.
    pub(super) async fn cut(&self, phase: Phase) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.now.get() {
                return;
            }
            match self.deadline(phase) {
                Some(at) => tokio::select! {
                    _ = tokio::time::sleep_until(at) => return,
                    _ = notified => {}
                },
                None => notified.await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real time, lower bounds only: a busy machine can make a wait longer, never shorter.
    const STOP_TIMEOUT: Duration = Duration::from_millis(200);

    #[tokio::test]
    async fn work_is_cut_at_the_stop_timeout_and_clean_up_at_twice_it() {
        let signal = StopSignal::default();
        assert!(!signal.is_stopping() && !signal.is_cut(Phase::Work));
        let started = Instant::now();
        let cut = async {
            signal.cut(Phase::Work).await;
            Instant::now() - started
        };
        let stop = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            signal.stop(STOP_TIMEOUT);
        };
        let (waited, ()) = tokio::join!(cut, stop);
        assert!(
            waited >= STOP_TIMEOUT + Duration::from_millis(20),
            "{waited:?}"
        );
        assert!(signal.is_cut(Phase::Work) && !signal.is_cut(Phase::CleanUp));
        signal.cut(Phase::CleanUp).await;
        assert!(Instant::now() - started >= 2 * STOP_TIMEOUT);
        // A later, longer stop does not move the deadlines.
        signal.stop(Duration::from_secs(60));
        assert!(signal.is_cut(Phase::CleanUp) && !signal.is_now());
    }

    #[tokio::test]
    async fn a_stop_at_once_cuts_everything_now() {
        let signal = StopSignal::default();
        signal.stop(Duration::from_secs(30));
        let cut = async {
            signal.cut(Phase::CleanUp).await;
            true
        };
        let now = async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            signal.stop_now();
        };
        let (cut, ()) =
            tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(cut, now) })
                .await
                .expect("a stop at once cuts the clean-up long before its deadline");
        assert!(cut && signal.is_now() && signal.is_cut(Phase::Work));
    }
}
