//! `chorus run --headless`, on this machine or as a cluster's master: one loop for both. It
//! prints a live table every few seconds unless `--quiet`; the first Ctrl-C (or SIGTERM,
//! SIGHUP) stops gracefully, the second at once; the caller writes the reports either way.

use std::time::Duration;

use anyhow::Context as _;

use super::settings::RunSettings;
use super::signals::{GRACEFUL, Interrupts};
use crate::cluster::{Master, MasterControl};
use crate::engine::{Engine, EngineControl, RunState};
use crate::stats::{RunResult, report};

/// How often the live table is printed.
const LIVE_EVERY: Duration = Duration::from_secs(5);

/// What the loop asks of a run, wherever its users are.
trait Steer: Clone + Send + Sync + 'static {
    fn stop(&self);
    fn stop_now(&self);
    /// The lines to print now, if there is anything to show.
    fn live(&self) -> Option<String>;
}

impl Steer for EngineControl {
    fn stop(&self) {
        EngineControl::stop(self);
    }

    fn stop_now(&self) {
        EngineControl::stop_now(self);
    }

    fn live(&self) -> Option<String> {
        if self.state() == RunState::Stopped {
            return None;
        }
        let table = self.inspect(report::live_table);
        Some(format!(
            "{} users, {:?}\n{table}",
            self.users(),
            self.state()
        ))
    }
}

impl Steer for MasterControl {
    fn stop(&self) {
        MasterControl::stop(self);
    }

    fn stop_now(&self) {
        MasterControl::stop_now(self);
    }

    fn live(&self) -> Option<String> {
        let status = self.status();
        status.state?;
        let workers: Vec<String> = status
            .workers
            .iter()
            .map(|w| format!("{} {} ({} users)", w.name, w.state, w.users))
            .collect();
        let mut lines = format!("{} users on {}", status.users, workers.join(", "));
        if !status.table.is_empty() {
            lines.push('\n');
            lines.push_str(&status.table);
        }
        Some(lines)
    }
}

/// A run on this machine's engine. Its flows' iteration counts follow the summary when it
/// has more than one.
pub(super) async fn local(settings: &RunSettings) -> anyhow::Result<(RunResult, String)> {
    // Listening before the run starts: a SIGTERM that comes early still gets the reports.
    let listening = Interrupts::listen().context("could not listen for Ctrl-C and SIGTERM")?;
    let handle = Engine::start(
        settings.scenario.clone(),
        settings.plan.clone(),
        settings.engine.clone(),
    )?;
    let control = handle.control();
    let result = drive(settings, listening, control.clone(), handle.wait()).await;
    let mut after = String::new();
    let flows = control.latest().flows.clone();
    if flows.len() > 1 {
        for flow in &flows {
            after.push_str(&format!(
                "flow {:?} (weight {}): {} iterations\n",
                flow.name, flow.weight, flow.iterations
            ));
        }
    }
    Ok((result, after))
}

/// A run on a cluster's workers, this process their master.
pub(super) async fn master(
    settings: &RunSettings,
    master: Master,
) -> anyhow::Result<(RunResult, String)> {
    let listening = Interrupts::listen().context("could not listen for Ctrl-C and SIGTERM")?;
    let result = drive(settings, listening, master.control(), master.run()).await;
    Ok((result, String::new()))
}

async fn drive(
    settings: &RunSettings,
    listening: Interrupts,
    control: impl Steer,
    run: impl Future<Output = RunResult>,
) -> RunResult {
    let (interrupts, _) = listening.on_stop(
        GRACEFUL,
        {
            let control = control.clone();
            move || control.stop()
        },
        {
            let control = control.clone();
            move || control.stop_now()
        },
    );
    let live = (!settings.quiet).then(|| {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(LIVE_EVERY);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                if let Some(lines) = control.live() {
                    println!("{lines}");
                }
            }
        })
    });
    let result = run.await;
    interrupts.abort();
    if let Some(live) = live {
        live.abort();
    }
    result
}
