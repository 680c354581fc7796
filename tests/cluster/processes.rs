//! `chorus run --processes N`: one command runs the users in N worker processes of its own;
//! the demo app counts what they sent, and the processes are gone when the command is.

use std::path::Path;
use std::time::Duration;

use super::{demo_cluster, read_result};
use crate::util::output_dir;
use crate::util::process::{Chorus, until};

/// The worker processes a `chorus run` with this pid started (their command line names it as
/// `--parent-pid`).
pub(super) fn children_of(pid: u32) -> Vec<u32> {
    let wanted = format!("\0--parent-pid\0{pid}\0");
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&wanted) {
            children.push(child);
        }
    }
    children
}

/// Whether a process with this pid still exists (a zombie counts: nobody reaped it).
fn exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether a process with this pid runs (a zombie has ended, whether reaped or not: after a
/// `kill -9` of its parent, reaping is the business of whoever adopted it).
fn running(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // "PID (NAME) STATE ...": the state follows the last ')'.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|state| state != "Z" && state != "X")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_run_the_users_and_are_gone_with_the_command() {
    let dir = output_dir("cluster_processes");
    let (server, _app, scenario, users, host) = demo_cluster(&dir, 20).await;
    let run = Chorus::start(
        &[
            "run",
            &scenario,
            "--data",
            &users,
            "-H",
            &host,
            "--headless",
            "-u",
            "30",
            "-r",
            "30",
            "-t",
            "6s",
            "--processes",
            "3",
            "--json",
            "run.json",
            "-q",
        ],
        &dir,
        None,
    );
    let pid = run.pid();
    let mut seen = Vec::new();
    until("three worker processes", Duration::from_secs(30), || {
        seen = children_of(pid);
        seen.len() == 3
    })
    .await;
    let ended = run.finish(Duration::from_secs(90), 4 << 20).await;
    assert_eq!(ended.code, Some(0), "{}", ended.stderr);
    for child in &seen {
        assert!(!exists(*child), "worker process {child} outlived the run");
    }
    // Each process joined and ran its share.
    for number in 1..=3 {
        assert!(
            ended
                .stderr
                .contains(&format!("\"process-{number}\" joined")),
            "{}",
            ended.stderr
        );
    }

    let result = read_result(&dir.join("run.json"));
    assert_eq!(result.total.failures, 0, "{}", ended.stderr);
    assert!(result.total.requests >= 120, "{}", result.total.requests);
    let stats = crate::util::demo_stats(&host).await;
    assert_eq!(stats["requests_total"], result.total.requests);
    // 30 accounts logged in and none was logged out by a second login: no account was used
    // by two processes.
    assert_eq!(stats["live_sessions"], 30, "{}", stats["live_sessions"]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_and_kill_of_the_command_end_its_worker_processes() {
    let dir = output_dir("cluster_processes_signals");
    let (server, _app, scenario, users, host) = demo_cluster(&dir, 4).await;
    let args = [
        "run",
        &scenario,
        "--data",
        &users,
        "-H",
        &host,
        "--headless",
        "-u",
        "4",
        "-r",
        "4",
        "-t",
        "5m",
        "--processes",
        "2",
        "--stop-timeout",
        "1s",
        "--json",
        "run.json",
        "-q",
    ];

    // SIGTERM: a graceful stop through the master; the report is written, the children exit.
    let run = Chorus::start(&args, &dir, None);
    let pid = run.pid();
    until("the run to be going", Duration::from_secs(60), || {
        run.stderr_so_far().matches("joined").count() == 2
    })
    .await;
    let children = children_of(pid);
    assert_eq!(children.len(), 2, "{}", run.stderr_so_far());
    run.signal("TERM").await;
    let ended = run.finish(Duration::from_secs(60), 4 << 20).await;
    assert_eq!(ended.code, Some(0), "{}", ended.stderr);
    assert!(dir.join("run.json").is_file(), "{}", ended.stderr);
    for child in &children {
        assert!(!exists(*child), "worker process {child} outlived SIGTERM");
    }

    // kill -9: nothing in the command runs any more; the children see their parent gone.
    let run = Chorus::start(&args, &dir, None);
    let pid = run.pid();
    until("the run to be going", Duration::from_secs(60), || {
        run.stderr_so_far().matches("joined").count() == 2
    })
    .await;
    let children = children_of(pid);
    assert_eq!(children.len(), 2, "{}", run.stderr_so_far());
    run.signal("KILL").await;
    let _ = run.finish(Duration::from_secs(10), 4 << 20).await;
    until(
        "the worker processes to exit after their parent was killed",
        Duration::from_secs(10),
        || !children.iter().any(|child| running(*child)),
    )
    .await;
    server.shutdown().await;
}
