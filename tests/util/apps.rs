//! The real third-party applications of the faithfulness tests (issue 13, tests/apps/): where
//! they are installed (`tests/apps/<app>/install.sh` puts each under `target/apps/<app>`, and
//! `.ci/run` runs every install script), and the steps every application's test shares:
//! record a session in a real Chromium through chorus's recorder, convert it with no options,
//! check it, run it, read the run's JSON result.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt as _;
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
            // Nor ask a time server (clients2.google.com) from the recorded session.
            "--disable-features=NetworkTimeServiceQuerying".to_owned(),
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

/// `chorus run SCENARIO --check --data users=CSV -H BASE` (without `--data` when the scenario
/// has no data source: a session with no login, as a Jupyter server's token one); the output,
/// whatever it says.
pub fn check(scenario: &Path, users: &Path, base: &str) -> Output {
    let mut args = vec!["run", scenario.to_str().unwrap(), "--check", "-H", base];
    let users_arg = format!("users={}", users.display());
    if loads_data(scenario) {
        args.extend(["--data", &users_arg]);
    }
    super::chorus(&args, scenario.parent().unwrap())
}

/// [`check`], which must pass (every request as recorded); its output, to print beside a
/// later failure.
pub fn check_passes(scenario: &Path, users: &Path, base: &str) -> Output {
    let output = check(scenario, users, base);
    assert_success("chorus run --check", &output);
    output
}

/// Whether the scenario (as convert writes it) has a `data:` section: then its users come
/// from a CSV.
fn loads_data(scenario: &Path) -> bool {
    std::fs::read_to_string(scenario)
        .unwrap_or_default()
        .lines()
        .any(|line| line.trim_end() == "data:")
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
    run_until(
        scenario,
        users_file,
        base,
        users,
        (users / 2).max(1),
        &["-t", &format!("{seconds}s")],
    )
}

/// A headless load run in which each of `users` users runs `iterations` iterations and ends
/// (`--iterations`), however slow the machine: a test about what the second iteration does
/// needs a second iteration.
pub fn run_iterations(
    scenario: &Path,
    users_file: &Path,
    base: &str,
    users: u32,
    iterations: u32,
) -> (serde_json::Value, Output) {
    run_iterations_spawning(
        scenario,
        users_file,
        base,
        users,
        iterations,
        (users / 2).max(1),
    )
}

/// [`run_iterations`] with the users spawned `spawn_rate` a second (an application whose
/// users each start a process cannot take them all at once).
pub fn run_iterations_spawning(
    scenario: &Path,
    users_file: &Path,
    base: &str,
    users: u32,
    iterations: u32,
    spawn_rate: u32,
) -> (serde_json::Value, Output) {
    let bound = ["--iterations", &iterations.to_string(), "-t", "10m"];
    run_until(scenario, users_file, base, users, spawn_rate, &bound)
}

/// A headless load run of `users` users spawned `spawn_rate` a second that ends at `bound`;
/// the JSON result and the output.
fn run_until(
    scenario: &Path,
    users_file: &Path,
    base: &str,
    users: u32,
    spawn_rate: u32,
    bound: &[&str],
) -> (serde_json::Value, Output) {
    let dir = scenario.parent().unwrap();
    let json = dir.join("run.json");
    let users_arg = format!("users={}", users_file.display());
    let count = users.to_string();
    let rate = spawn_rate.to_string();
    let mut args = vec!["run", scenario.to_str().unwrap(), "--headless"];
    if loads_data(scenario) {
        args.extend(["--data", &users_arg]);
    }
    args.extend([
        "-H",
        base,
        "-u",
        &count,
        "-r",
        &rate,
        // Each user finishes its iteration and logs out however busy the machine is:
        // what the run leaves behind is judged.
        "--stop-timeout",
        "60s",
        "--json",
        json.to_str().unwrap(),
    ]);
    args.extend_from_slice(bound);
    let output = super::chorus(&args, dir);
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

/// The status of `GET path` on `addr` (HTTP/1.0, no keep-alive), or `None` when nothing
/// answered within 5 s.
pub fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let timeout = Duration::from_secs(5);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// Waits until the application answers `GET path` on `addr` with `want` (its own readiness:
/// the socket accepts and the application is loaded), for at most 60 s; fails with the
/// server's log `log` if the process exits or the time runs out.
pub fn wait_for_answer(process: &mut Process, addr: SocketAddr, path: &str, want: u16, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = http_status(addr, path);
        if status == Some(want) {
            return;
        }
        if let Some(exit) = process.child.try_wait().expect("try_wait") {
            panic!(
                "{} exited ({exit}) before answering; its log:\n{}",
                process.name,
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{} did not answer GET {path} with {want} on {addr} within 60 s (last: {status:?}); \
             its log:\n{}",
            process.name,
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the file `log` (a server's output) has a line containing `needle` and returns
/// that line; fails with the file if the process exits first or after 60 s.
pub fn wait_for_line(process: &mut Process, log: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(line) = text.lines().find(|line| line.contains(needle)) {
            return line.to_owned();
        }
        if let Some(exit) = process.child.try_wait().expect("try_wait") {
            panic!(
                "{} exited ({exit}) before printing {needle:?}:\n{text}",
                process.name
            );
        }
        assert!(
            Instant::now() < deadline,
            "{} did not print {needle:?} within 60 s:\n{text}",
            process.name
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The JSON an application's state script printed (`python script` with these variables),
/// or a panic with what it said.
pub fn python_json(python: &Path, script: &Path, env: &[(&str, &Path)]) -> serde_json::Value {
    let mut command = std::process::Command::new(python);
    command.arg(script);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("the application's python runs");
    assert_success(&format!("{}", script.display()), &output);
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "{} printed no JSON ({err}):\n{}",
            script.display(),
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// The successful requests (requests less failures) a run's JSON result counts for the
/// entries of `method` whose name satisfies `name`.
pub fn successes(result: &serde_json::Value, method: &str, name: impl Fn(&str) -> bool) -> u64 {
    result["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry["method"] == method && name(entry["name"].as_str().unwrap_or("")))
        .map(|entry| {
            entry["requests"].as_u64().unwrap_or(0) - entry["failures"].as_u64().unwrap_or(0)
        })
        .sum()
}

/// The requests of a HAR capture as `(method, path with query, status, request body)`.
pub fn capture_requests(capture: &Path) -> Vec<(String, String, u16, String)> {
    let har: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(capture).unwrap()).unwrap();
    har["log"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|entry| {
            let url = url::Url::parse(entry["request"]["url"].as_str().unwrap()).unwrap();
            // The application's exchanges: not the browser's own background requests (Chromium
            // 156 asks update.googleapis.com for component updates through the proxy even with
            // --disable-component-update).
            if url.host_str() != Some("127.0.0.1") {
                return None;
            }
            let path = match url.query() {
                Some(query) => format!("{}?{query}", url.path()),
                None => url.path().to_owned(),
            };
            Some((
                entry["request"]["method"].as_str().unwrap().to_owned(),
                path,
                entry["response"]["status"].as_u64().unwrap() as u16,
                entry["request"]["postData"]["text"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            ))
        })
        .collect()
}

/// An application server started in a process group of its own, so that the workers it forks
/// (PHP's built-in server with `PHP_CLI_SERVER_WORKERS`) stop with it: the whole group is
/// killed, by its id, when this is dropped.
pub struct ServerProcess {
    pub process: Process,
}

impl ServerProcess {
    pub fn spawn(name: &str, command: &mut Command) -> ServerProcess {
        command.process_group(0);
        ServerProcess {
            process: Process::spawn(name, command),
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let group = format!("-{}", self.process.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Waits until `http://127.0.0.1:port{path}` answers with a status below 400 (the
/// application's own readiness, not only its socket), for at most `timeout`; fails with the
/// last answer and the server's state otherwise.
pub fn wait_for_http(server: &mut Process, port: u16, path: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        server.assert_running();
        let last = match status_at_port(port, path) {
            Ok(status) if (200..400).contains(&status) => return,
            Ok(status) => format!("status {status}"),
            Err(err) => err.to_string(),
        };
        assert!(
            Instant::now() < deadline,
            "{} did not answer GET {path} on port {port} within {timeout:?} (last: {last})",
            server.name
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The status of one `GET path` (HTTP/1.0, so the server closes after it).
fn status_at_port(port: u16, path: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    )?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not HTTP: {head:?}")))
}

/// Every request of a scenario as chorus loads it (`on_start`, each flow, `on_stop`, and
/// inside `repeat`s), in file order: what a test needs to find the steps of the recording's
/// writes and the name the run's result counts each under.
pub fn scenario_requests(scenario: &Path) -> Vec<chorus::scenario::Request> {
    use chorus::scenario::{Step, StepKind};
    fn walk(steps: &[Step], out: &mut Vec<chorus::scenario::Request>) {
        for step in steps {
            match &step.kind {
                StepKind::Request(request) => out.push((**request).clone()),
                StepKind::Repeat(repeat) => walk(&repeat.steps, out),
                _ => {}
            }
        }
    }
    let loaded = chorus::scenario::load(scenario, &Default::default())
        .unwrap_or_else(|err| panic!("{} does not load: {err}", scenario.display()));
    let mut requests = Vec::new();
    walk(&loaded.on_start, &mut requests);
    for flow in &loaded.flows {
        walk(&flow.steps, &mut requests);
    }
    walk(&loaded.on_stop, &mut requests);
    requests
}

/// The value of field `name` in a request's body as the scenario writes it: a form's pair,
/// or a part of a `multipart/form-data` body (`name="..."`) or a pair of an URL-encoded one
/// written as raw text.
pub fn body_field(request: &chorus::scenario::Request, name: &str) -> Option<String> {
    match &request.body {
        Some(chorus::scenario::Body::Form(pairs)) => pairs
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.source().to_owned()),
        Some(chorus::scenario::Body::Multipart(parts)) => parts
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, part)| match part {
                chorus::scenario::Part::Text(value) => value.source().to_owned(),
                chorus::scenario::Part::File(_) => String::new(),
            }),
        Some(chorus::scenario::Body::Raw(raw)) => {
            let text = raw.source();
            let part = format!("name=\"{name}\"");
            if let Some(at) = text.find(&part) {
                let rest = &text[at + part.len()..];
                let value = rest.split_once("\r\n\r\n").map_or("", |(_, v)| v);
                return Some(value.split("\r\n--").next().unwrap_or_default().to_owned());
            }
            url::form_urlencoded::parse(text.as_bytes())
                .find(|(field, _)| field == name)
                .map(|(_, value)| value.into_owned())
        }
        _ => None,
    }
}

/// Whether a request's body has field `name` (see [`body_field`]).
pub fn body_has_field(request: &chorus::scenario::Request, name: &str) -> bool {
    body_field(request, name).is_some()
}

/// What a run's JSON result counts for the requests `requests` (each method and name once):
/// (requests sent, failures).
pub fn reported(result: &serde_json::Value, requests: &[&chorus::scenario::Request]) -> (u64, u64) {
    let mut keys: Vec<(String, String)> = requests
        .iter()
        .map(|r| (r.method.to_string(), r.name.clone()))
        .collect();
    keys.sort();
    keys.dedup();
    let mut sent = 0;
    let mut failed = 0;
    for entry in result["entries"].as_array().into_iter().flatten() {
        let key = (
            entry["method"].as_str().unwrap_or_default().to_owned(),
            entry["name"].as_str().unwrap_or_default().to_owned(),
        );
        if keys.contains(&key) {
            sent += entry["requests"].as_u64().unwrap_or(0);
            failed += entry["failures"].as_u64().unwrap_or(0);
        }
    }
    (sent, failed)
}

/// The run's result, one line per entry (method, name, requests, failures), for messages.
pub fn result_table(result: &serde_json::Value) -> String {
    let mut text = String::new();
    for entry in result["entries"].as_array().into_iter().flatten() {
        text.push_str(&format!(
            "{:6} {:70} {:>6} {:>6}\n",
            entry["method"].as_str().unwrap_or_default(),
            entry["name"].as_str().unwrap_or_default(),
            entry["requests"],
            entry["failures"]
        ));
    }
    text
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

/// A free port on 127.0.0.1 for a server that cannot be told to pick its own (`php -S`,
/// `rails server`): bound, read, released (the one helper, `util::free_port`).
pub use super::free_port;
