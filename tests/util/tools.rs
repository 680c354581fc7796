//! Third-party tools the convert tests drive — mitmproxy's `mitmdump`, Node with
//! `playwright-core` and `json-server` — found where `.ci/run` installs them
//! (`target/tools/`, or `CHORUS_TEST_TOOLS`), and child processes stopped when dropped.
//! A missing tool fails the test with the command that installs it; nothing is skipped.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Where `.ci/run` installs the tools: `target/tools`.
pub fn tools_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("CHORUS_TEST_TOOLS") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is inside the target folder")
        .join("tools")
}

fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// mitmproxy's `mitmdump`: the copy `.ci/run` installs, else one on the PATH.
pub fn mitmdump() -> PathBuf {
    let installed = tools_dir().join("mitmproxy/bin/mitmdump");
    if installed.is_file() {
        return installed;
    }
    on_path("mitmdump").unwrap_or_else(|| {
        panic!(
            "this test needs mitmproxy's mitmdump, which is not installed: \
             python3 -m venv {0} && {0}/bin/pip install mitmproxy   (bash .ci/run does it)",
            tools_dir().join("mitmproxy").display()
        )
    })
}

/// The folder whose `node_modules` hold `playwright-core` and `json-server`.
pub fn node_tools() -> PathBuf {
    let dir = tools_dir().join("node");
    let node = on_path("node");
    let missing: Vec<&str> = ["playwright-core", "json-server"]
        .into_iter()
        .filter(|package| !dir.join("node_modules").join(package).is_dir())
        .collect();
    assert!(
        node.is_some() && missing.is_empty(),
        "this test needs Node.js and the npm packages playwright-core and json-server, which \
         are not installed{}: apt-get install nodejs npm && npm install --prefix {} \
         playwright-core@1.65.1 json-server@0.17.4   (bash .ci/run does it)",
        if node.is_none() {
            " (no `node` on the PATH)".to_owned()
        } else {
            format!(" (missing: {})", missing.join(", "))
        },
        dir.display()
    );
    dir
}

/// A child process that is stopped (by its own id) when dropped.
pub struct Process {
    pub child: Child,
    pub name: String,
}

impl Process {
    pub fn spawn(name: &str, command: &mut Command) -> Process {
        let child = command
            .spawn()
            .unwrap_or_else(|err| panic!("could not start {name}: {err}"));
        Process {
            child,
            name: name.to_owned(),
        }
    }

    /// Sends SIGINT (a tool's Ctrl-C: mitmdump writes its HAR then) and waits up to 20 s.
    pub fn interrupt_and_wait(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not stop within 20 s of SIGINT",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Fails with what the process said if it has already exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            panic!("{} exited early: {status}", self.name);
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `addr` accepts connections (the server's own readiness), for at most 30 s.
pub fn wait_for_listener(process: &mut Process, addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        process.assert_running();
        assert!(
            Instant::now() < deadline,
            "{} did not listen on {addr} within 30 s",
            process.name
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
