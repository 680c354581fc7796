//! `chorus worker`: maps its arguments onto `cluster::run_worker` and the outcome onto an
//! exit status (0 when the master ended the run, 2 when it refused this worker). Ctrl-C stops
//! the users and exits.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;

use super::args::WorkerArgs;
use super::{EXIT_ERROR, EXIT_OK};
use crate::cluster::auth;
use crate::cluster::protocol::ScenarioPin;
use crate::cluster::{WorkerConfig, run_worker};

pub(super) async fn worker(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    if let Some(json) = &args.json {
        let inputs: Vec<super::outputs::Input<'_>> = args
            .scenario
            .iter()
            .map(|path| super::outputs::Input {
                what: "the scenario this worker is pinned to",
                path,
            })
            .collect();
        super::outputs::check(&[super::outputs::Output::new("--json", json)], &inputs)?;
    }
    let pin = match &args.scenario {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--scenario {}: cannot read it", path.display()))?;
            Some(ScenarioPin {
                sha256: auth::scenario_digest(&text),
                name: path.file_name().map_or_else(
                    || path.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                ),
            })
        }
        None => None,
    };
    let name = args.name.clone().unwrap_or_else(default_name);
    let quiet = args.quiet;
    let parent = args.parent_pid;
    let config = WorkerConfig {
        master: args.master.clone(),
        token: args.cluster_token.clone().filter(|t| !t.is_empty()),
        name,
        threads: args.threads.unwrap_or(0),
        pin,
        json: args.json.clone(),
        stay: args.stay,
        source_addrs: args
            .source_addrs
            .clone()
            .map(|list| list.0)
            .unwrap_or_default(),
        notify: Arc::new(move |line: &str| {
            if !quiet {
                eprintln!("chorus worker: {line}");
            }
        }),
    };
    tokio::select! {
        outcome = run_worker(config) => match outcome {
            Ok(()) => Ok(EXIT_OK.into()),
            Err(err) => {
                eprintln!("error: {err}");
                Ok(EXIT_ERROR.into())
            }
        },
        _ = tokio::signal::ctrl_c() => {
            eprintln!("chorus worker: interrupted; stopping the users");
            Ok(EXIT_OK.into())
        }
        () = async {
            match parent {
                Some(pid) => super::processes::parent_gone(pid).await,
                None => std::future::pending().await,
            }
        } => {
            eprintln!("chorus worker: the chorus run that started this worker is gone; exiting");
            Ok(EXIT_ERROR.into())
        }
    }
}

/// The host name and the process id, e.g. `chorus-worker-7d9f-4121`.
fn default_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned());
    format!("{host}-{}", std::process::id())
}
