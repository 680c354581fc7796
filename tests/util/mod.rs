//! Shared helpers for the integration tests: servers on 127.0.0.1:0, the chorus binary, a
//! headless Chromium, temporary folders.

#![allow(dead_code, unreachable_pub)]

pub mod apps;
pub mod browser;
pub mod firefox;
pub mod hostile;
pub mod json_schema;
pub mod mutation;
pub mod nginx;
pub mod page_driver;
/// A port nothing listens on right now (kept in `nginx.rs`, which the record bench includes).
pub use nginx::free_port;
pub mod process;
pub mod record;
pub mod round_trip;
pub mod tools;
pub mod upload;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chorus::demo::{App, AppOptions, Server};

/// The tests that measure time or load the machine hard take turns, so that one's load does
/// not show up in another's timings (the rest of the suite still runs alongside).
pub static TIMING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Starts the demo app on a free loopback port in the current runtime.
pub async fn demo_app(options: AppOptions) -> (Server, App) {
    let app = App::new(options);
    let server = chorus::demo::serve(&app, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("demo app starts");
    (server, app)
}

/// The demo app's own count of what it saw (`GET /__demo/stats`).
pub async fn demo_stats(base: &str) -> serde_json::Value {
    reqwest::get(format!("{base}/__demo/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Runs the built `chorus` binary with these arguments and waits for it.
pub fn chorus(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("the chorus binary runs")
}

/// [`chorus`] from async code: the binary runs on a blocking thread, so that a server the
/// test serves on its own runtime keeps answering it.
pub async fn chorus_blocking(args: Vec<String>, dir: PathBuf) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        chorus(&args, &dir)
    })
    .await
    .unwrap()
}

/// A folder for one test's files, kept under `target/test-output/NAME` so screenshots and
/// reports can be looked at after a run.
pub fn output_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("test-output")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Prints expected and got in full when they differ.
#[macro_export]
macro_rules! eqnice {
    ($expected:expr, $got:expr) => {{
        let expected = &$expected;
        let got = &$got;
        if expected != got {
            panic!("\n\nexpected:\n{expected:#?}\n\ngot:\n{got:#?}\n");
        }
    }};
}
