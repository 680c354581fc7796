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
/// How often a capacity search on a master looks whether its workers have begun the run.
const WORKERS_POLL: Duration = Duration::from_millis(50);

/// The live lines of a run on this machine: users, state and the table.
fn engine_live(control: &EngineControl) -> Option<String> {
    if control.state() == RunState::Stopped {
        return None;
    }
    let table = control.inspect(report::live_table);
    Some(format!(
        "{} users, {:?}\n{table}",
        control.users(),
        control.state()
    ))
}

/// The live lines of a cluster's run: users, each worker's state and users, the merged table.
fn master_live(control: &MasterControl) -> Option<String> {
    let status = control.status();
    status.state?;
    let workers: Vec<String> = status.workers.iter().map(worker_live).collect();
    let mut lines = format!("{} users on {}", status.users, workers.join(", "));
    if !status.table.is_empty() {
        lines.push('\n');
        lines.push_str(&status.table);
    }
    Some(lines)
}

/// One worker in the live lines: its state, users, and its own CPU and memory once it sent
/// them (`saturated` while its CPU stays above 90 % of its cores).
fn worker_live(worker: &crate::cluster::WorkerStatus) -> String {
    let crate::cluster::WorkerStatus {
        name, state, users, ..
    } = worker;
    match worker.load {
        Some(load) => format!(
            "{name} {state} ({users} users, CPU {:.0} %{}, {})",
            load.cpu_percent,
            if load.saturated { " saturated" } else { "" },
            crate::size::format(load.memory_bytes)
        ),
        None => format!("{name} {state} ({users} users)"),
    }
}

/// `--otlp`'s body from a run on this machine, as it goes.
fn live_numbers(control: &EngineControl) -> crate::otlp::Source {
    let control = control.clone();
    std::sync::Arc::new(move |start, now| {
        Some(control.with_exposition(|numbers| numbers.otlp_request(start, now)))
    })
}

/// `--otlp`'s body from a cluster's headless run: the master's merged numbers, as they go.
fn master_numbers(control: &MasterControl) -> crate::otlp::Source {
    let control = control.clone();
    std::sync::Arc::new(move |start, now| {
        // Before the workers begin there is nothing to push yet.
        control.status().state?;
        Some(control.with_exposition(|numbers| numbers.otlp_request(start, now)))
    })
}

/// How the loop steers a run, wherever its users are: stop gracefully, stop now, and the
/// lines to print now (if any).
struct Steer<C> {
    control: C,
    stop: fn(&C),
    stop_now: fn(&C),
    live: fn(&C) -> Option<String>,
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
    let pushes = super::push::start(settings, live_numbers(&control));
    let steer = Steer {
        control: control.clone(),
        stop: EngineControl::stop,
        stop_now: EngineControl::stop_now,
        live: engine_live,
    };
    let result = drive(settings, listening, steer, handle.wait()).await;
    super::push::finish(pushes, Some(&result)).await;
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

/// A capacity search on this machine's engine (`--find-capacity`): each step's line as it is
/// judged, the curve in the summary.
pub(super) async fn capacity(
    settings: &RunSettings,
    search: crate::capacity::SearchSettings,
) -> anyhow::Result<(RunResult, String)> {
    let listening = Interrupts::listen().context("could not listen for Ctrl-C and SIGTERM")?;
    // Second 0 of the run: the engine's seconds count from about now (within its start).
    let epoch = tokio::time::Instant::now();
    let handle = Engine::start(
        settings.scenario.clone(),
        settings.plan.clone(),
        settings.engine.clone(),
    )?;
    let pushes = super::push::start(settings, live_numbers(&handle.control()));
    let steer = Steer {
        control: handle.control(),
        stop: EngineControl::stop,
        stop_now: EngineControl::stop_now,
        live: engine_live,
    };
    let say = |line: &str| eprintln!("chorus: {line}");
    let result = drive(
        settings,
        listening,
        steer,
        crate::capacity::run(handle.control(), handle.wait(), epoch, search, say),
    )
    .await;
    super::push::finish(pushes, Some(&result)).await;
    Ok((result, String::new()))
}

/// A capacity search on a cluster's workers (`--find-capacity` with `--master` or
/// `--processes`): the master's run starts once its workers are ready, and the search sets
/// each step's rate on the master, which splits it over them.
pub(super) async fn master_capacity(
    settings: &RunSettings,
    master: Master,
    search: crate::capacity::SearchSettings,
) -> anyhow::Result<(RunResult, String)> {
    let listening = Interrupts::listen().context("could not listen for Ctrl-C and SIGTERM")?;
    let control = master.control();
    let pushes = super::push::start(settings, master_numbers(&control));
    let steer = Steer {
        control: control.clone(),
        stop: MasterControl::stop,
        stop_now: MasterControl::stop_now,
        live: master_live,
    };
    let say = |line: &str| eprintln!("chorus: {line}");
    let searching = async move {
        let mut finished = tokio::spawn(master.run());
        // Second 0 is when the workers were told to start (the master waits for them).
        let epoch = loop {
            if let Some(started) = control.status().started {
                break started;
            }
            tokio::select! {
                result = &mut finished => return result.unwrap_or_else(|_| unfinished(settings)),
                _ = tokio::time::sleep(WORKERS_POLL) => {}
            }
        };
        let finished = async move { finished.await.unwrap_or_else(|_| unfinished(settings)) };
        crate::capacity::run(control, finished, epoch, search, say).await
    };
    let result = drive(settings, listening, steer, searching).await;
    super::push::finish(pushes, Some(&result)).await;
    Ok((result, String::new()))
}

/// The result of a master whose task ended without one (it panicked): empty, so the reports
/// are still written.
fn unfinished(settings: &RunSettings) -> RunResult {
    RunResult::empty(crate::engine::run_meta(
        &settings.scenario,
        Some(&settings.plan),
        settings.engine.thresholds.clone(),
        0,
    ))
}

/// A run on a cluster's workers, this process their master.
pub(super) async fn master(
    settings: &RunSettings,
    master: Master,
) -> anyhow::Result<(RunResult, String)> {
    let listening = Interrupts::listen().context("could not listen for Ctrl-C and SIGTERM")?;
    let steer = Steer {
        control: master.control(),
        stop: MasterControl::stop,
        stop_now: MasterControl::stop_now,
        live: master_live,
    };
    let pushes = super::push::start(settings, master_numbers(&master.control()));
    let result = drive(settings, listening, steer, master.run()).await;
    super::push::finish(pushes, Some(&result)).await;
    Ok((result, String::new()))
}

async fn drive<C: Clone + Send + Sync + 'static>(
    settings: &RunSettings,
    listening: Interrupts,
    steer: Steer<C>,
    run: impl Future<Output = RunResult>,
) -> RunResult {
    let Steer {
        control,
        stop,
        stop_now,
        live,
    } = steer;
    let (interrupts, _) = listening.on_stop(
        GRACEFUL,
        {
            let control = control.clone();
            move || stop(&control)
        },
        {
            let control = control.clone();
            move || stop_now(&control)
        },
    );
    let printer = (!settings.quiet).then(|| {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(LIVE_EVERY);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                if let Some(lines) = live(&control) {
                    println!("{lines}");
                }
            }
        })
    });
    let result = run.await;
    interrupts.abort();
    if let Some(printer) = printer {
        printer.abort();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{WorkerLoad, WorkerState, WorkerStatus};

    #[test]
    fn a_workers_live_line_shows_its_own_cpu_and_memory_once_it_sent_them() {
        let mut worker = WorkerStatus {
            id: 1,
            name: "process-1".to_owned(),
            peer: "127.0.0.1:1".parse().unwrap(),
            state: WorkerState::Running,
            users: 50,
            requests: 10,
            load: None,
        };
        assert_eq!(worker_live(&worker), "process-1 running (50 users)");
        worker.load = Some(WorkerLoad {
            cpu_percent: 97.4,
            memory_bytes: 31 << 20,
            cores: 1,
            saturated: true,
        });
        assert_eq!(
            worker_live(&worker),
            format!(
                "process-1 running (50 users, CPU 97 % saturated, {})",
                crate::size::format(31 << 20)
            )
        );
    }
}
