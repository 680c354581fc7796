//! Trac 1.6, the issue tracker (from PyPI, installed by `tests/apps/trac/install.sh` with a
//! template environment over SQLite), served by its own `tracd` with HTTP Basic
//! authentication: /login is the only protected path; it answers 401, then, with the
//! browser's credentials, sets the `trac_auth` cookie the other pages go by. Each instance
//! copies the template into a temp dir, writes its accounts to an htpasswd file and serves
//! on a port the system picks.
//!
//! The session, clicked in Chromium: open the start page, log in (the /login URL opened with
//! the account's credentials, as a person answering the browser's dialog), New Ticket (a form
//! with `__FORM_TOKEN`), create it (303 to `/ticket/N`: the id is handed over in `Location`),
//! add a comment naming the account (the form carries the ticket's `view_time` and
//! `start_time`), View Tickets, Active Tickets, open the ticket from the list, resolve it as
//! fixed (another POST whose `view_time` is the one after the comment), log out (a POST).
//!
//! Judged from the database (`tests/apps/trac/state.py`): tickets (reporter, status), the
//! changes of each ticket (author, comment, fields), the login cookies still stored.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use fantoccini::Locator;
use serde_json::{Value, json};

use crate::eqnice;
use crate::util::apps::{self, Account};
use crate::util::browser::Browser;
use crate::util::mutation;
use crate::util::output_dir;
use crate::util::tools::Process;

/// One tracd over its own copy of the template environment; stopped when dropped.
pub(super) struct Trac {
    pub(super) base: String,
    install: PathBuf,
    dir: tempfile::TempDir,
    _server: Process,
}

impl Trac {
    /// Starts an instance whose accounts are `accounts`, and waits until its start page
    /// answers.
    pub(super) fn start(accounts: &[Account]) -> Trac {
        let install = apps::installed("trac");
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join("env");
        copy_dir(&install.join("template"), &env);
        let listed: Vec<Value> = accounts
            .iter()
            .map(|a| json!({"username": a.username, "password": a.password}))
            .collect();
        let accounts_file = dir.path().join("accounts.json");
        std::fs::write(&accounts_file, Value::Array(listed).to_string()).unwrap();
        let log = dir.path().join("server.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let mut server = Process::spawn(
            "tracd",
            Command::new(install.join("venv/bin/python"))
                .arg(source_dir().join("serve.py"))
                .arg(&env)
                .arg(&accounts_file)
                .env("PYTHONUNBUFFERED", "1")
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().unwrap())
                .stderr(log_file),
        );
        let line = apps::wait_for_line(&mut server, &log, "listening on http://");
        let base = line.rsplit(' ').next().unwrap().to_owned();
        let addr = base.trim_start_matches("http://").parse().unwrap();
        apps::wait_for_answer(&mut server, addr, "/", 200, &log);
        Trac {
            base,
            install,
            dir,
            _server: server,
        }
    }

    /// What the database holds now.
    pub(super) fn state(&self) -> State {
        let python = self.install.join("venv/bin/python");
        let output = Command::new(python)
            .arg(source_dir().join("state.py"))
            .arg(self.dir.path().join("env"))
            .output()
            .unwrap();
        apps::assert_success("tests/apps/trac/state.py", &output);
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// The start page's URL with the account's credentials in it (what a person types in
    /// the browser's Basic authentication dialog).
    fn with_credentials(&self, account: &Account, path: &str) -> String {
        let mut url = url::Url::parse(&format!("{}{path}", self.base)).unwrap();
        url.set_username(&account.username).unwrap();
        url.set_password(Some(&account.password)).unwrap();
        url.to_string()
    }
}

fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps/trac")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct State {
    tickets: Vec<Ticket>,
    /// Every change of a ticket after its creation, oldest first per ticket.
    changes: Vec<Change>,
    /// The user of each login cookie still stored.
    logins: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
struct Ticket {
    id: u64,
    reporter: String,
    status: String,
    resolution: Option<String>,
    summary: String,
    description: String,
}

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
struct Change {
    ticket: u64,
    author: String,
    comment: Option<String>,
    /// The other fields this change set: `{"status": "closed", ...}`.
    fields: std::collections::BTreeMap<String, Option<String>>,
}

impl State {
    fn tickets_of(&self, user: &str) -> Vec<&Ticket> {
        self.tickets.iter().filter(|t| t.reporter == user).collect()
    }

    fn changes_of(&self, ticket: u64) -> Vec<&Change> {
        self.changes.iter().filter(|c| c.ticket == ticket).collect()
    }
}

fn summary(username: &str) -> String {
    format!("Printer on floor 2 jams (reported by {username})")
}

fn comment(username: &str) -> String {
    format!("Still jamming after a restart, says {username}.")
}

fn closing_comment(username: &str) -> String {
    format!("Fixed: new rollers fitted ({username}).")
}

/// The session a tracker user clicks through, as described at the top. `login_url` is the
/// /login URL with the account's credentials in it.
async fn session(browser: &mut Browser, base: &str, login_url: &str, account: &Account) {
    let user = &account.username;
    browser.goto(&format!("{base}/")).await;
    wait_for(browser, "#metanav a[href='/login']").await;
    browser.goto(login_url).await;
    browser
        .wait_text("#metanav .first", Duration::from_secs(30), |text| {
            text.contains(user)
        })
        .await;
    browser.screenshot("logged-in").await;

    browser.click("#mainnav a[href='/newticket']").await;
    wait_for(browser, "#field-summary").await;
    browser.fill("#field-summary", &summary(user)).await;
    browser
        .fill(
            "#field-description",
            &format!("The printer jams on every second page. Reported by {user}."),
        )
        .await;
    browser.screenshot("new-ticket").await;
    browser.click("#propertyform input[name=submit]").await;
    wait_for(browser, "#comment").await;
    let ticket = ticket_id(browser).await;

    browser.fill("#comment", &comment(user)).await;
    browser.click("#propertyform input[name=submit]").await;
    wait_for(browser, "#changelog .change").await;

    browser.click("#mainnav a[href='/report']").await;
    wait_for(browser, "a[href='/report/1']").await;
    browser.click("a[href='/report/1']").await;
    wait_for(browser, "table.listing.tickets").await;
    browser.screenshot("active-tickets").await;
    browser
        .client
        .find(Locator::LinkText(&format!("#{ticket}")))
        .await
        .unwrap_or_else(|err| panic!("no link to #{ticket} in the list: {err}"))
        .click()
        .await
        .unwrap();
    wait_for(browser, "#comment").await;
    browser.fill("#comment", &closing_comment(user)).await;
    // "Modify Ticket" is folded on the ticket's page: unfold it to reach the actions.
    browser.click("#propertyform h3.foldable a").await;
    browser.click("#action_resolve").await;
    browser.screenshot("resolve").await;
    browser.click("#propertyform input[name=submit]").await;
    browser
        .wait_text(".trac-status", Duration::from_secs(30), |text| {
            text.contains("closed")
        })
        .await;

    browser.click("#logout button").await;
    wait_for(browser, "#metanav a[href='/login']").await;
    browser.screenshot("logged-out").await;
}

/// The id of the ticket the browser shows, from its URL (`/ticket/N`).
async fn ticket_id(browser: &Browser) -> u64 {
    let url = browser.client.current_url().await.unwrap();
    url.path()
        .strip_prefix("/ticket/")
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("not a ticket's page: {url}"))
}

/// Waits (the page's own state is the signal) until `css` is on the page, up to 30 s.
async fn wait_for(browser: &mut Browser, css: &str) {
    let found = browser
        .client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(css))
        .await;
    if let Err(err) = found {
        let shot = browser.screenshot("missing").await;
        let url = browser.client.current_url().await.map(|u| u.to_string());
        panic!(
            "{css} never appeared ({err}); at {url:?}, see {}",
            shot.display()
        );
    }
}

async fn record_session(out: &Path, trac: &Trac, account: &Account) -> PathBuf {
    let base = trac.base.clone();
    let login_url = trac.with_credentials(account, "/login");
    apps::record_in_chromium(out, async |browser: &mut Browser| {
        session(browser, &base, &login_url, account).await;
    })
    .await
}

/// Checks that the recorded session's writes happened, as `username`: one ticket reported,
/// commented and closed by that user, no login left.
fn assert_one_session_stored(state: &State, username: &str) -> u64 {
    let tickets = state.tickets_of(username);
    assert_eq!(tickets.len(), 1, "{state:#?}");
    let ticket = tickets[0];
    assert_eq!(ticket.summary, summary(username), "{state:#?}");
    assert_eq!(
        (ticket.status.as_str(), ticket.resolution.as_deref()),
        ("closed", Some("fixed")),
        "{state:#?}"
    );
    let changes: Vec<(&str, Option<&str>)> = state
        .changes_of(ticket.id)
        .iter()
        .map(|c| (c.author.as_str(), c.comment.as_deref()))
        .collect();
    let (first, second) = (comment(username), closing_comment(username));
    eqnice!(
        vec![
            (username, Some(first.as_str())),
            (username, Some(second.as_str())),
        ],
        changes
    );
    assert!(state.logins.is_empty(), "logins left: {:?}", state.logins);
    ticket.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trac_session_is_recorded_in_chromium() {
    let out = output_dir("apps_trac_recorded");
    let accounts = Account::numbered(21);
    let trac = Trac::start(&accounts);
    let capture = record_session(&out, &trac, &accounts[0]).await;

    let ticket = assert_one_session_stored(&trac.state(), "user01");

    let requests = apps::capture_requests(&capture);
    let posts: Vec<(&str, u16)> = requests
        .iter()
        .filter(|(method, ..)| method == "POST")
        .map(|(_, path, status, _)| (path.as_str(), *status))
        .collect();
    let ticket_path = format!("/ticket/{ticket}");
    eqnice!(
        vec![
            ("/newticket", 303),
            (ticket_path.as_str(), 303),
            (ticket_path.as_str(), 303),
            ("/logout", 303),
        ],
        posts
    );
    assert!(
        requests
            .iter()
            .filter(|(method, ..)| method == "POST")
            .all(|(.., body)| body.contains("__FORM_TOKEN=")),
        "every POST sends the form token"
    );
    assert!(
        requests
            .iter()
            .filter(|(method, path, ..)| method == "POST" && *path == ticket_path)
            .all(|(.., body)| body.contains("view_time=") && body.contains("start_time=")),
        "the ticket's forms send their view_time and start_time"
    );
    let logins: Vec<u16> = requests
        .iter()
        .filter(|(method, path, ..)| method == "GET" && path == "/login")
        .map(|(_, _, status, _)| *status)
        .collect();
    assert!(
        logins
            .last()
            .is_some_and(|status| (300..400).contains(status)),
        "the login ends in a redirect: {logins:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trac_replay_is_faithful() {
    let out = output_dir("apps_trac_replay");
    let accounts = Account::numbered(21);
    let recorded_on = Trac::start(&accounts);
    let capture = record_session(&out, &recorded_on, &accounts[0]).await;
    assert_one_session_stored(&recorded_on.state(), "user01");
    let scenario = apps::convert(&capture);
    let users = out.join("users.csv");
    apps::users_csv(&accounts[1..], &users);

    crate::util::round_trip::assert_extracts_find_what_the_recording_sent(&scenario, &capture);

    let checked = apps::check_passes(&scenario, &users, &recorded_on.base);
    // Shown if the judge fails below.
    println!(
        "chorus run --check:\n{}",
        String::from_utf8_lossy(&checked.stdout)
    );
    let application = mutation::Application::Running {
        base: &recorded_on.base,
        concurrency: 2,
    };
    mutation::mutation_test(&scenario, &capture, &users, &application).assert_all_caught();
    drop(recorded_on);
    assert_faithful_run(&scenario, &users, &accounts);
}

/// The judge itself, and the reference for convert: the session written by hand as a faithful
/// replay would do it (`tests/apps/trac/faithful.yaml`), run and judged the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the hand-written reference the converted scenario is measured against; CI runs the converted one (the claim), run this by hand with --ignored"]
async fn trac_hand_written_replay_is_judged_faithful() {
    let out = output_dir("apps_trac_hand_written");
    let accounts = Account::numbered(21);
    let scenario = out.join("scenario.yaml");
    std::fs::copy(source_dir().join("faithful.yaml"), &scenario).unwrap();
    let users = out.join("users.csv");
    users_csv_with_basic(&accounts[1..], &users);
    let checked_on = Trac::start(&accounts);
    apps::check_passes(&scenario, &users, &checked_on.base);
    drop(checked_on);
    assert_faithful_run(&scenario, &users, &accounts);
}

/// Runs `scenario` with 20 users (the accounts after the first, in `users`) for 60 s on a
/// fresh instance, and fails with every difference between what the run reports and what the
/// database stored.
fn assert_faithful_run(scenario: &Path, users: &Path, accounts: &[Account]) {
    let trac = Trac::start(accounts);
    let (result, output) = apps::run(scenario, users, &trac.base, 20, 60);
    let state = trac.state();
    let problems = replay_problems(&result, &state, &accounts[1..]);
    assert!(
        problems.is_empty(),
        "the replay did not do what the run reports:\n- {}\n\nstate: {state:#?}\n\nrun output:\n{}",
        problems.join("\n- "),
        String::from_utf8_lossy(&output.stdout)
    );
}

/// What differs between the writes a run reports as successful and what the database stored,
/// and what the run left behind; empty when the replay was faithful.
fn replay_problems(result: &Value, state: &State, accounts: &[Account]) -> Vec<String> {
    let users: Vec<&str> = accounts.iter().map(|a| a.username.as_str()).collect();
    let mut problems = Vec::new();
    let created = apps::successes(result, "POST", |name| name.starts_with("/newticket"));
    if created != state.tickets.len() as u64 {
        problems.push(format!(
            "the run reports {created} successful POST /newticket but the database has {} tickets",
            state.tickets.len()
        ));
    }
    let changed = apps::successes(result, "POST", |name| name.starts_with("/ticket/"));
    if changed != state.changes.len() as u64 {
        problems.push(format!(
            "the run reports {changed} successful POST /ticket/N but the database has {} \
             ticket changes",
            state.changes.len()
        ));
    }
    for ticket in &state.tickets {
        if !users.contains(&ticket.reporter.as_str()) || ticket.summary != summary(&ticket.reporter)
        {
            problems.push(format!(
                "ticket #{} reported by {:?} as {:?}",
                ticket.id, ticket.reporter, ticket.summary
            ));
        }
        if ticket.status != "closed" {
            problems.push(format!(
                "ticket #{} of {} left {}",
                ticket.id, ticket.reporter, ticket.status
            ));
        }
        for change in state.changes_of(ticket.id) {
            let names_author = change
                .comment
                .as_deref()
                .is_some_and(|text| text.contains(&change.author));
            if change.author != ticket.reporter || !names_author {
                problems.push(format!(
                    "ticket #{} of {}: {change:?}",
                    ticket.id, ticket.reporter
                ));
            }
        }
    }
    let idle: Vec<&str> = users
        .iter()
        .copied()
        .filter(|user| state.tickets_of(user).is_empty())
        .collect();
    if !idle.is_empty() {
        problems.push(format!("accounts that reported nothing: {idle:?}"));
    }
    if !state.logins.is_empty() {
        problems.push(format!("logins still open: {:?}", state.logins));
    }
    problems
}

/// A users CSV with, besides `username,password`, a `basic` column: the base64 of
/// `username:password` that HTTP Basic authentication sends (for the hand-written scenario,
/// until templates can encode it themselves).
fn users_csv_with_basic(accounts: &[Account], path: &Path) {
    use base64::Engine;
    let mut text = String::from("username,password,basic\n");
    for account in accounts {
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", account.username, account.password));
        text.push_str(&format!(
            "{},{},{basic}\n",
            account.username, account.password
        ));
    }
    std::fs::write(path, text).unwrap();
}

/// The mutation test on the hand-written reference (`faithful.yaml`, with the entries of a
/// fresh recording): every mutant of a faithful scenario must be caught by `--check`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the hand-written reference the converted scenario is measured against; CI runs the converted one (the claim), run this by hand with --ignored"]
async fn trac_hand_written_mutants_are_caught() {
    let out = output_dir("apps_trac_hand_written_mutants");
    let accounts = Account::numbered(21);
    let trac = Trac::start(&accounts);
    let capture = record_session(&out, &trac, &accounts[0]).await;
    let written = std::fs::read_to_string(source_dir().join("faithful.yaml")).unwrap();
    let scenario = out.join("scenario.yaml");
    std::fs::write(
        &scenario,
        mutation::with_recorded(&written, &capture).unwrap(),
    )
    .unwrap();
    let users = out.join("users.csv");
    users_csv_with_basic(&accounts[1..], &users);
    let application = mutation::Application::Running {
        base: &trac.base,
        concurrency: 2,
    };
    mutation::mutation_test(&scenario, &capture, &users, &application).assert_all_caught();
}
