//! The real third-party applications of the faithfulness tests (issue 13, tests/apps/): where
//! they are installed (`tests/apps/<app>/install.sh` puts each under `target/apps/<app>`, and
//! `.ci/run` runs every install script), and the steps every application's test shares:
//! record a session in a real Chromium through chorus's recorder, convert it with no options,
//! check it, run it, read the run's JSON result.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use chorus::record::{self, RecordConfig, RecordOptions};

use super::browser::Browser;
use super::tools::Process;

/// One account of an application under test.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub username: String,
    pub password: String,
}

impl Account {
    /// `user01`, `user02`, ... with a password of its own.
    pub fn numbered(count: usize) -> Vec<Account> {
        (1..=count)
            .map(|n| Account {
                username: format!("user{n:02}"),
                password: format!("pw-{n:02}-Secret!"),
            })
            .collect()
    }
}

/// Where the install scripts put the applications: `target/apps`.
pub fn apps_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("CHORUS_TEST_APPS") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is inside the target folder")
        .join("apps")
}

/// The install folder of one application; fails the test with the command that installs it
/// when the install script has not run.
pub fn installed(app: &str) -> PathBuf {
    let dir = apps_dir().join(app);
    assert!(
        dir.join(".installed").is_file(),
        "this test needs {app}, which is not installed: bash tests/apps/{app}/install.sh \
         (bash .ci/run installs every application)"
    );
    dir
}

/// Records what `session` does in a real headless Chromium that uses chorus's recorder as its
/// forward proxy (loopback included), and returns the capture's path (`out/capture.har`).
/// Screenshots go to `out` too.
pub async fn record_in_chromium(out: &Path, session: impl AsyncFnOnce(&mut Browser)) -> PathBuf {
    let recorder = record::start(
        RecordConfig::new(RecordOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            output: out.join("capture.har"),
            ..RecordOptions::default()
        })
        .unwrap(),
    )
    .await
    .unwrap();
    let proxy: SocketAddr = recorder.local_addr();
    let mut browser = Browser::start(
        &[
            format!("--proxy-server=http://{proxy}"),
            // Chromium sends loopback addresses past any proxy unless told not to.
            "--proxy-bypass-list=<-loopback>".to_owned(),
        ],
        out,
    )
    .await;
    session(&mut browser).await;
    browser.close().await;
    recorder.shutdown().await.path
}

/// Writes a users CSV (`username,password`) for these accounts.
pub fn users_csv(accounts: &[Account], path: &Path) {
    let mut text = String::from("username,password\n");
    for account in accounts {
        text.push_str(&format!("{},{}\n", account.username, account.password));
    }
    std::fs::write(path, text).unwrap();
}

/// `chorus convert CAPTURE -o scenario.yaml` with no options, in the capture's folder;
/// panics with what chorus said unless it succeeded.
pub fn convert(capture: &Path) -> PathBuf {
    let dir = capture.parent().unwrap();
    let scenario = dir.join("scenario.yaml");
    let output = super::chorus(
        &[
            "convert",
            capture.to_str().unwrap(),
            "-o",
            scenario.to_str().unwrap(),
        ],
        dir,
    );
    assert_success("chorus convert", &output);
    scenario
}

/// `chorus run SCENARIO --check --data users=CSV -H BASE`; the output, whatever it says.
pub fn check(scenario: &Path, users: &Path, base: &str) -> Output {
    super::chorus(
        &[
            "run",
            scenario.to_str().unwrap(),
            "--check",
            "--data",
            &format!("users={}", users.display()),
            "-H",
            base,
        ],
        scenario.parent().unwrap(),
    )
}

/// A headless load run of `users` users for `seconds` seconds (all spawned in the first
/// two); returns the JSON result (`run.json` beside the scenario) and the output.
pub fn run(
    scenario: &Path,
    users_file: &Path,
    base: &str,
    users: u32,
    seconds: u32,
) -> (serde_json::Value, Output) {
    let dir = scenario.parent().unwrap();
    let json = dir.join("run.json");
    let output = super::chorus(
        &[
            "run",
            scenario.to_str().unwrap(),
            "--headless",
            "--data",
            &format!("users={}", users_file.display()),
            "-H",
            base,
            "-u",
            &users.to_string(),
            "-r",
            &(users / 2).max(1).to_string(),
            "-t",
            &format!("{seconds}s"),
            "--json",
            json.to_str().unwrap(),
        ],
        dir,
    );
    let text = std::fs::read_to_string(&json).unwrap_or_else(|err| {
        panic!(
            "the run wrote no {}: {err}\nstdout:\n{}\nstderr:\n{}",
            json.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (serde_json::from_str(&text).unwrap(), output)
}

/// Panics with the command's output unless it exited 0.
pub fn assert_success(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Starts a server whose output goes to `log` and that prints `listening on URL` once it
/// accepts connections (the Node scripts under tests/apps/ do); waits for that line (30 s at
/// most, failing with the log if the process exits first) and returns the process and URL.
pub fn spawn_announcing(name: &str, command: &mut Command, log: &Path) -> (Process, String) {
    let file = std::fs::File::create(log).unwrap();
    command
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file);
    let mut process = Process::spawn(name, command);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(url) = text
            .lines()
            .find_map(|line| line.strip_prefix("listening on "))
        {
            return (process, url.trim().to_owned());
        }
        if let Some(status) = process.child.try_wait().unwrap() {
            panic!("{name} exited ({status}) before listening:\n{text}");
        }
        assert!(
            Instant::now() < deadline,
            "{name} did not say `listening on` within 30 s:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a replay test found wrong in the application's state, collected so that one run
/// reports every mismatch at once rather than the first; [`Findings::assert_none`] fails
/// the test with all of them.
#[derive(Debug, Default)]
pub struct Findings(Vec<String>);

impl Findings {
    /// Notes `problem` unless `ok`.
    pub fn expect(&mut self, ok: bool, problem: impl FnOnce() -> String) {
        if !ok {
            self.0.push(problem());
        }
    }

    /// Notes a mismatch between what the run reported and what the application stored.
    pub fn expect_eq<T: PartialEq + std::fmt::Debug>(
        &mut self,
        what: &str,
        reported: T,
        stored: T,
    ) {
        self.expect(reported == stored, || {
            format!("{what}: the run reported {reported:?}, the application stored {stored:?}")
        });
    }

    /// Fails with every finding, one per line, after `context` (what the run did).
    pub fn assert_none(self, context: &str) {
        assert!(
            self.0.is_empty(),
            "the replay diverged from the recording:\n- {}\n\n{context}",
            self.0.join("\n- ")
        );
    }
}

/// (method, path and query) of every request in a capture, in order.
pub fn captured_requests(capture: &Path) -> Vec<(String, String)> {
    let har: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(capture).unwrap()).unwrap();
    har["log"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let url = entry["request"]["url"].as_str().unwrap();
            let path = url.splitn(4, '/').nth(3).unwrap_or_default();
            (
                entry["request"]["method"].as_str().unwrap().to_owned(),
                format!("/{path}"),
            )
        })
        .collect()
}

/// The requests a run's JSON result counts as successful (requests less failures) for this
/// method, over the entries whose name `wanted` accepts.
pub fn reported_successes(
    result: &serde_json::Value,
    method: &str,
    wanted: impl Fn(&str) -> bool,
) -> u64 {
    result["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["method"] == method && wanted(e["name"].as_str().unwrap_or_default()))
        .map(|e| e["requests"].as_u64().unwrap() - e["failures"].as_u64().unwrap())
        .sum()
}

/// A column of a users CSV: its name and how an account's value is made.
pub type Column = (&'static str, fn(&Account) -> String);

/// Writes a users CSV with more columns than [`users_csv`]: `username`, each of `extra`
/// (a column name and how an account's value is made), `password` — for an application whose
/// login form names its identity field otherwise (`email`, `login`), as its operator would
/// write the file after convert says which columns the scenario needs.
pub fn users_csv_with(accounts: &[Account], path: &Path, extra: &[Column]) {
    let mut text = String::from("username");
    for (column, _) in extra {
        text.push_str(&format!(",{column}"));
    }
    text.push_str(",password\n");
    for account in accounts {
        text.push_str(&account.username);
        for (_, value) in extra {
            text.push_str(&format!(",{}", value(account)));
        }
        text.push_str(&format!(",{}\n", account.password));
    }
    std::fs::write(path, text).unwrap();
}
