//! A Jupyter server (Notebook 7.5 on jupyter_server 2.21, the Python kernel ipykernel 7.1,
//! from PyPI: `tests/apps/jupyter/install.sh`), its UI as it ships, token login.
//!
//! The session, clicked in Chromium: open the notebook `trace.ipynb` (put in the server's root
//! folder beforehand) with the server's token, the UI starts a kernel for it (`POST
//! /api/sessions`) and connects to the kernel's channels (a WebSocket carrying Jupyter's JSON
//! messages: `header.msg_id`, `header.session`, `parent_header.msg_id`), run its one cell,
//! wait for its output, shut the kernel down (`DELETE /api/sessions/{id}`).
//!
//! The cell leaves a trace the test reads: a line in `cells.jsonl` (in a folder given to the
//! server's kernels in `CHORUS_TRACE_DIR`) with the kernel's id and the execute request's
//! header the kernel received (its `msg_id` and `session`, what the client sent).
//!
//! Converted with no options, checked (`--check`, and the mutation test on an instance of its
//! own), then replayed by 50 users one iteration each, and judged by the kernels' own trace
//! (one line per user, each from a kernel of its own, with the ids that user sent) and the
//! server's list of kernels (`GET /api/kernels`: none left running).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::apps;
use crate::util::browser::Browser;
use crate::util::mutation;
use crate::util::output_dir;
use crate::util::tools::Process;

const APP: &str = "jupyter";
/// The server's token, the one credential of a single-user Jupyter server.
const TOKEN: &str = "chorus-test-token-5f3a9c";

/// The notebook's one cell: it appends what the kernel received to the trace and prints it.
const CELL: &str = r#"import json, os
from ipykernel.kernelapp import IPKernelApp
header = get_ipython().kernel.get_parent()["header"]
kernel = os.path.basename(IPKernelApp.instance().connection_file)[len("kernel-"):-len(".json")]
line = {"kernel": kernel, "msg_id": header["msg_id"], "session": header["session"], "pid": os.getpid()}
with open(os.path.join(os.environ["CHORUS_TRACE_DIR"], "cells.jsonl"), "a") as trace:
    trace.write(json.dumps(line) + "\n")
print("traced", header["msg_id"])"#;

/// One Jupyter server over a root folder of its own, stopped (and its kernels with it) when
/// dropped.
struct Instance {
    base_url: String,
    dir: tempfile::TempDir,
    server: Option<Process>,
}

fn start() -> Instance {
    let venv = apps::installed(APP).join("venv");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let trace = dir.path().join("trace");
    for sub in ["root", "trace", "config", "data", "runtime", "ipython"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    let notebook = json!({
        "cells": [{
            "cell_type": "code",
            "execution_count": null,
            "id": "trace-cell",
            "metadata": {},
            "outputs": [],
            "source": CELL,
        }],
        "metadata": {
            "kernelspec": { "display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3" },
            "language_info": { "name": "python" },
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    });
    std::fs::write(
        root.join("trace.ipynb"),
        serde_json::to_string_pretty(&notebook).unwrap(),
    )
    .unwrap();
    let port = apps::free_port();
    let log = dir.path().join("server.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut server = Process::spawn(
        "jupyter",
        Command::new(venv.join("bin/jupyter-notebook"))
            .args([
                "--no-browser",
                "--ip=127.0.0.1",
                &format!("--port={port}"),
                "--ServerApp.port_retries=0",
                &format!("--IdentityProvider.token={TOKEN}"),
                &format!("--ServerApp.root_dir={}", root.display()),
                "--ServerApp.terminals_enabled=False",
                // The kernel channel's JSON messages as text frames (Jupyter's legacy
                // protocol) rather than v1.kernel.websocket.jupyter.org's binary ones, which
                // chorus does not template (docs/convert.md says why).
                "--ZMQChannelsWebsocketConnection.kernel_ws_protocol=",
                "--expose-app-in-browser",
                "--allow-root",
            ])
            .env("CHORUS_TRACE_DIR", &trace)
            .env("JUPYTER_CONFIG_DIR", dir.path().join("config"))
            .env("JUPYTER_DATA_DIR", dir.path().join("data"))
            .env("JUPYTER_RUNTIME_DIR", dir.path().join("runtime"))
            .env("IPYTHONDIR", dir.path().join("ipython"))
            .env("JUPYTERLAB_WORKSPACES_DIR", dir.path().join("config"))
            .env("JUPYTER_PLATFORM_DIRS", "1")
            .current_dir(&root)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file),
    );
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    apps::wait_for_answer(&mut server, addr, "/api/status", 403, &log);
    Instance {
        base_url: format!("http://127.0.0.1:{port}"),
        dir,
        server: Some(server),
    }
}

impl Instance {
    /// The kernels' trace: one JSON object per executed cell.
    fn cells(&self) -> Vec<Value> {
        let path = self.dir.path().join("trace/cells.jsonl");
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// The server's own list of running kernels (`GET /api/kernels`).
    fn kernels(&self) -> Vec<Value> {
        let output = Command::new("curl")
            .args(["-sf", "-H", &format!("Authorization: token {TOKEN}")])
            .arg(format!("{}/api/kernels", self.base_url))
            .output()
            .unwrap();
        assert!(output.status.success(), "GET /api/kernels failed");
        serde_json::from_slice::<Value>(&output.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }
}

impl Drop for Instance {
    /// A SIGTERM: the server shuts its kernels down before it exits (a SIGKILL would leave
    /// them running).
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &server.child.id().to_string()])
                .status();
            let mut server = server;
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline && server.child.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// The session as a person clicks it: open the notebook, run its cell, wait for the output,
/// shut the kernel down.
async fn session(browser: &mut Browser, base_url: &str, capture: &Path) {
    let wait = Duration::from_secs(60);
    browser
        .goto(&format!("{base_url}/notebooks/trace.ipynb?token={TOKEN}"))
        .await;
    // The kernel is up and idle once the toolbar's indicator says so.
    let idle = "return (window.jupyterapp && window.jupyterapp.shell.currentWidget \
        && window.jupyterapp.shell.currentWidget.sessionContext \
        && window.jupyterapp.shell.currentWidget.sessionContext.session \
        && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel \
        && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status) || ''";
    browser.wait_script(idle, wait, |s| s == "idle").await;
    browser.screenshot("opened").await;
    browser
        .click(".jp-Notebook .jp-Cell .jp-InputArea-editor")
        .await;
    browser
        .script("window.jupyterapp.commands.execute('notebook:run-cell')")
        .await;
    browser
        .wait_text_content(".jp-OutputArea-output", wait, |s| s.contains("traced "))
        .await;
    browser.screenshot("ran").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    browser
        .script("window.jupyterapp.commands.execute('notebook:close-and-shutdown')")
        .await;
    browser.click(".jp-Dialog .jp-mod-accept").await;
    let deadline = Instant::now() + wait;
    while !std::fs::read_to_string(capture).is_ok_and(|har| har.contains("_webSocketMessages")) {
        assert!(
            Instant::now() < deadline,
            "the capture has no WebSocket entry 60 s after the kernel was shut down"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Records the session in a real headless Chromium through chorus's recorder in reverse mode
/// in front of the server, and returns the capture's path (`out/capture.har`).
async fn record_session(out: &Path, app: &Instance) -> PathBuf {
    let capture = out.join("capture.har");
    let recorder = chorus::record::start(
        chorus::record::RecordConfig::new(crate::util::record::reverse(&app.base_url, &capture))
            .unwrap(),
    )
    .await
    .unwrap();
    let front = format!("http://{}", recorder.local_addr());
    let mut browser = Browser::start(&[], out).await;
    session(&mut browser, &front, &capture).await;
    browser.close().await;
    recorder.shutdown().await.path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jupyter_session_is_recorded_in_chromium() {
    let app = start();
    let out = output_dir("apps_jupyter_recorded");
    let capture = record_session(&out, &app).await;
    let cells = app.cells();
    assert_eq!(1, cells.len(), "{cells:?}");
    assert!(app.kernels().is_empty(), "{:?}", app.kernels());
    let requests = apps::captured_requests(&capture);
    assert!(!requests.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jupyter_replay_with_50_users_is_faithful() {
    const USERS: u32 = 50;
    let app = start();
    let out = output_dir("apps_jupyter_replay");
    let capture = record_session(&out, &app).await;
    let scenario = apps::convert(&capture);
    crate::util::round_trip::assert_extracts_find_what_the_recording_sent(&scenario, &capture);
    // A token session has no account: the CSV is the mutation tool's, the scenario loads none.
    let users = out.join("users.csv");
    apps::users_csv(&apps::Account::numbered(4), &users);
    let checked = apps::check_passes(&scenario, &users, &app.base_url);
    // On an instance of their own: what a mutant leaves behind is not the load run's.
    let mutated_on = start();
    let application = mutation::Application::Running {
        base: &mutated_on.base_url,
        concurrency: 2,
    };
    let report = mutation::mutation_test(&scenario, &capture, &users, &application);
    // The mutation tool makes mutants of the extracts of HTTP responses only (the kernel id,
    // the session's id): a `receive:`'s extract has none. Every mutant it makes is caught.
    report.assert_made_ones_caught(2);
    drop(mutated_on);

    let before = app.cells().len();
    // Two users a second: each starts a kernel, a Python process (50 at once on two cores
    // would be too many).
    let (result, output) =
        apps::run_iterations_spawning(&scenario, &users, &app.base_url, USERS, 1, 2);
    apps::assert_success("chorus run", &output);
    let cells: Vec<Value> = app.cells().split_off(before);

    let _ = std::fs::copy(app.dir.path().join("server.log"), out.join("server.log"));

    let mut findings = apps::Findings::default();
    // jupyter_server 2.21's GET /api/kernels (the list of every kernel) fails with a 500 now
    // and then under this load: it reads the `last_activity` of another user's kernel that is
    // still starting, which has none yet (a TraitError; its traceback is in server.log, kept
    // beside the capture). Those are counted apart and printed; every other request must
    // succeed.
    let is_kernel_list = |e: &&Value| {
        e["method"] == "GET"
            && e["name"]
                .as_str()
                .is_some_and(|name| name.starts_with("/api/kernels?"))
    };
    let entries = result["entries"].as_array().unwrap();
    let failures: u64 = entries
        .iter()
        .filter(|e| !is_kernel_list(e))
        .map(|e| e["failures"].as_u64().unwrap())
        .sum();
    let list_failures: u64 = entries
        .iter()
        .filter(is_kernel_list)
        .map(|e| e["failures"].as_u64().unwrap())
        .sum();
    println!("GET /api/kernels answered 500 {list_failures} time(s)");
    findings.expect_eq("failures chorus counted", failures, 0);
    // One executed cell per user, each in a kernel of its own, each with ids of its own.
    findings.expect_eq("cells the kernels executed", cells.len(), USERS as usize);
    let distinct = |field: &str| -> usize {
        cells
            .iter()
            .map(|c| c[field].to_string())
            .collect::<BTreeSet<_>>()
            .len()
    };
    findings.expect_eq(
        "kernels that executed a cell",
        distinct("kernel"),
        USERS as usize,
    );
    findings.expect_eq("kernel processes", distinct("pid"), USERS as usize);
    let left = app.kernels();
    findings.expect(left.is_empty(), || {
        format!("kernels left running: {left:?}")
    });
    findings.assert_none(&format!(
        "check:\n{}\nrun:\n{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&output.stdout)
    ));
}
