//! Redmine (Debian bookworm's `redmine` 5.0.4 with `redmine-sqlite`, installed by
//! `tests/apps/redmine/install.sh`), the Rails application with authenticity tokens: every
//! form carries its own `authenticity_token` (the login, the new issue, the issue's edit form
//! with `_method=patch` and `lock_version`), and the links that delete or sign out are turned
//! into POSTs by rails-ujs with the page's `csrf-token`. Each instance is Rails' own server
//! (`bin/rails server`, puma, production) over a copy of the template database the install
//! prepared (migrated, default data, project `team` with the issue tracker, role `Member`),
//! with the accounts and their memberships added, as a Debian "instance" of its own
//! (`REDMINE_INSTANCE`: config, log, tmp under a temporary folder, linked from the install's
//! copy of `/usr/share/redmine`). Debian's bootsnap, loaded through `RUBYOPT` with a cache the
//! install warmed, takes about 40 % off the CPU time of each boot.
//!
//! The session: open the start page, sign in, open the project, create an issue ("... reported
//! by user01"; the server hands its id over in `Location: /issues/N`), edit it (a note naming
//! the user), open the issues list, open the issue again and delete it, sign out.
//!
//! Judged from the SQLite database: SQLite triggers added to each instance's copy log every
//! issue created and deleted and every note added (`chorus_audit`: ids, user, text), since
//! deleting an issue deletes its journals; the tables `issues` (what is left) and `tokens`
//! (Redmine keeps one `session` token per signed-in session and deletes it on sign-out).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use chorus::har::{self, Har};
use serde_json::Value;

use crate::util;
use crate::util::apps::{self, Account, ServerProcess};
use crate::util::browser::Browser;
use crate::util::mutation;

/// The project the template database holds, and the role the accounts get in it.
const PROJECT: &str = "team";
const ROLE: &str = "Member";

/// Rails boots for seconds; on a busy machine for more.
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);

/// A running Redmine over a fresh database; stopped, and its folder removed, when dropped.
struct Redmine {
    base: String,
    server: Option<ServerProcess>,
    /// `target/apps/redmine/root/instances/<instance>`, a link to `dir`.
    link: PathBuf,
    dir: tempfile::TempDir,
}

impl Drop for Redmine {
    fn drop(&mut self) {
        self.server.take();
        let _ = std::fs::remove_file(&self.link);
        // A failed test says why Redmine answered as it did (an HTTP 500's exception is in
        // Rails' log, which goes with the folder).
        if std::thread::panicking() {
            for log in ["log/production.log", "server.log"] {
                let text = std::fs::read_to_string(self.dir.path().join(log)).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(80)..].join("\n");
                eprintln!("--- the last lines of {} ({log}):\n{tail}", self.base);
            }
        }
    }
}

/// Starts Redmine on a free port over a copy of the template database in which `accounts`
/// are members of the project with the role `Member` (add, edit, delete issues, add notes).
fn start(accounts: &[Account]) -> Redmine {
    let install = apps::installed("redmine");
    let began = std::time::Instant::now();
    let root = install.join("root");
    let dir = tempfile::Builder::new()
        .prefix("chorus-redmine-")
        .tempdir()
        .unwrap();
    let home = dir.path();
    for sub in ["config", "log", "tmp", "files"] {
        std::fs::create_dir_all(home.join(sub)).unwrap();
    }
    let database = home.join("redmine.sqlite3");
    std::fs::copy(install.join("template.sqlite3"), &database).unwrap();
    sqlite_script(&database, &accounts_sql(accounts));
    std::fs::write(
        home.join("config/database.yml"),
        format!(
            "production:\n  adapter: sqlite3\n  database: {}\n  timeout: 60000\n",
            database.display()
        ),
    )
    .unwrap();
    let secret: [u8; 32] = rand::random();
    std::fs::write(home.join("config/secret_key.txt"), hex(&secret)).unwrap();

    // Debian's Redmine finds an instance's config, log and tmp under instances/<name>.
    let name = home
        .file_name()
        .unwrap()
        .to_string_lossy()
        .replace(|c: char| !c.is_ascii_alphanumeric(), "-");
    let link = root.join("instances").join(&name);
    std::os::unix::fs::symlink(home, &link).unwrap();

    let port = apps::free_port();
    let log = std::fs::File::create(home.join("server.log")).unwrap();
    let server = ServerProcess::spawn(
        "redmine (rails server)",
        Command::new("ruby")
            .args(["bin/rails", "server", "-e", "production", "-b", "127.0.0.1"])
            .arg("-p")
            .arg(port.to_string())
            .arg("-P")
            .arg(home.join("server.pid"))
            .env("REDMINE_INSTANCE", &name)
            .env("RAILS_ENV", "production")
            .env("BUNDLE_SILENCE_ROOT_WARNING", "1")
            // Debian's bootsnap, its cache warmed by install.sh: less CPU to boot.
            .env("RUBYOPT", "-rmsgpack -rbootsnap/setup")
            .env("BOOTSNAP_CACHE_DIR", install.join("bootsnap"))
            .current_dir(&root)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log),
    );
    let mut redmine = Redmine {
        base: format!("http://127.0.0.1:{port}"),
        server: Some(server),
        link,
        dir,
    };
    let server = redmine.server.as_mut().unwrap();
    apps::wait_for_http(&mut server.process, port, "/login", BOOT_TIMEOUT);
    eprintln!(
        "redmine answers on {} after {:?}",
        redmine.base,
        began.elapsed()
    );
    redmine
}

/// The SQL that adds the accounts (Redmine's password hash: SHA-1 of the salt and the
/// SHA-1 of the password), their e-mail addresses and memberships, and the audit triggers.
fn accounts_sql(accounts: &[Account]) -> String {
    let mut sql = String::from("BEGIN;\n");
    for account in accounts {
        let salt = hex(&rand::random::<[u8; 16]>());
        let hashed = sha1_hex(&format!("{salt}{}", sha1_hex(&account.password)));
        let login = &account.username;
        let number = login.trim_start_matches(|c: char| !c.is_ascii_digit());
        let user = format!("(SELECT id FROM users WHERE login = '{login}')");
        sql.push_str(&format!(
            "INSERT INTO users (login, hashed_password, firstname, lastname, admin, status, \
             language, created_on, updated_on, type, mail_notification, salt, \
             must_change_passwd, passwd_changed_on) VALUES ('{login}', '{hashed}', 'User', \
             '{number}', 0, 1, 'en', datetime('now'), datetime('now'), 'User', \
             'only_my_events', '{salt}', 0, datetime('now'));\n\
             INSERT INTO email_addresses (user_id, address, is_default, notify, created_on, \
             updated_on) VALUES ({user}, '{login}@example.org', 1, 1, datetime('now'), \
             datetime('now'));\n\
             INSERT INTO members (user_id, project_id, created_on, mail_notification) VALUES \
             ({user}, (SELECT id FROM projects WHERE identifier = '{PROJECT}'), \
             datetime('now'), 0);\n\
             INSERT INTO member_roles (member_id, role_id) VALUES ((SELECT id FROM members \
             WHERE user_id = {user}), (SELECT id FROM roles WHERE name = '{ROLE}'));\n"
        ));
    }
    sql.push_str(AUDIT_SQL);
    sql.push_str("COMMIT;\n");
    sql
}

/// What the judge reads: Redmine deletes an issue's journals with it, so triggers keep a
/// line for every issue created or deleted and every note added, in the order they happened.
const AUDIT_SQL: &str = "
CREATE TABLE chorus_audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, event TEXT NOT NULL,
  issue_id INTEGER NOT NULL, user_id INTEGER NOT NULL, text TEXT);
CREATE TRIGGER chorus_issue_created AFTER INSERT ON issues BEGIN
  INSERT INTO chorus_audit (event, issue_id, user_id, text)
  VALUES ('created', NEW.id, NEW.author_id, NEW.subject);
END;
CREATE TRIGGER chorus_issue_deleted AFTER DELETE ON issues BEGIN
  INSERT INTO chorus_audit (event, issue_id, user_id, text)
  VALUES ('deleted', OLD.id, OLD.author_id, OLD.subject);
END;
CREATE TRIGGER chorus_note_added AFTER INSERT ON journals
  WHEN NEW.journalized_type = 'Issue' AND COALESCE(NEW.notes, '') <> '' BEGIN
  INSERT INTO chorus_audit (event, issue_id, user_id, text)
  VALUES ('noted', NEW.journalized_id, NEW.user_id, NEW.notes);
END;
";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha1_hex(text: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, text.as_bytes()).as_ref())
}

/// Runs SQL on a database with the `sqlite3` command; panics with what it said on failure.
fn sqlite_script(database: &Path, sql: &str) {
    let mut child = Command::new("sqlite3")
        .arg(database)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sqlite3 runs (apt-get install sqlite3)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(sql.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "sqlite3 {}: {}",
        database.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The rows of a query, as JSON objects (`sqlite3 -json`).
fn sqlite_rows(database: &Path, query: &str) -> Vec<Value> {
    let output = Command::new("sqlite3")
        .arg("-json")
        .arg("-cmd")
        .arg(".timeout 60000")
        .arg(database)
        .arg(query)
        .output()
        .expect("sqlite3 runs");
    assert!(
        output.status.success(),
        "sqlite3 {query}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    if text.trim().is_empty() {
        return Vec::new();
    }
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("sqlite3 -json said {text}: {err}"))
}

/// One line of the audit: an issue created or deleted, or a note added, by a user.
#[derive(Debug, Clone, PartialEq)]
struct Event {
    /// `created`, `noted` or `deleted`.
    event: String,
    issue: u64,
    /// The author of the issue (created, deleted) or of the note.
    user: String,
    /// The subject or the note.
    text: String,
}

impl Redmine {
    fn database(&self) -> PathBuf {
        self.dir.path().join("redmine.sqlite3")
    }

    /// Every issue created or deleted and every note added, in order.
    fn events(&self) -> Vec<Event> {
        sqlite_rows(
            &self.database(),
            "SELECT a.event, a.issue_id, u.login, a.text FROM chorus_audit a \
             LEFT JOIN users u ON u.id = a.user_id ORDER BY a.seq",
        )
        .into_iter()
        .map(|row| Event {
            event: row["event"].as_str().unwrap_or_default().to_owned(),
            issue: row["issue_id"].as_u64().unwrap_or(0),
            user: row["login"].as_str().unwrap_or_default().to_owned(),
            text: row["text"].as_str().unwrap_or_default().to_owned(),
        })
        .collect()
    }

    /// The issues that exist now: (id, author, subject).
    fn issues(&self) -> Vec<(u64, String, String)> {
        sqlite_rows(
            &self.database(),
            "SELECT i.id, u.login, i.subject FROM issues i JOIN users u ON u.id = i.author_id \
             ORDER BY i.id",
        )
        .into_iter()
        .map(|row| {
            (
                row["id"].as_u64().unwrap_or(0),
                row["login"].as_str().unwrap_or_default().to_owned(),
                row["subject"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
    }

    /// For each user, the sessions still signed in (Redmine's `session` tokens).
    fn open_sessions(&self) -> BTreeMap<String, u64> {
        sqlite_rows(
            &self.database(),
            "SELECT u.login, count(*) AS sessions FROM tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.action = 'session' GROUP BY u.login",
        )
        .into_iter()
        .map(|row| {
            (
                row["login"].as_str().unwrap_or_default().to_owned(),
                row["sessions"].as_u64().unwrap_or(0),
            )
        })
        .collect()
    }

    /// Waits until Rails has finished every request it started (its log holds as many
    /// `Completed` lines as `Started` ones): requests a run cut at its stop may still be
    /// running, writing, and holding SQLite's lock. Gives up after `limit`, saying so.
    fn wait_for_requests_to_finish(&self, limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let text = std::fs::read_to_string(self.dir.path().join("log/production.log"))
                .unwrap_or_default();
            let started = text.matches("] Started ").count();
            let completed = text.matches("] Completed ").count();
            if completed >= started {
                return;
            }
            if std::time::Instant::now() > deadline {
                eprintln!(
                    "Redmine still runs {} request(s) after {limit:?}; judged as it is",
                    started - completed
                );
                return;
            }
            // The log's own pace; there is no event to wait on.
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The end of Redmine's log, for failure messages.
    fn log_tail(&self) -> String {
        let text =
            std::fs::read_to_string(self.dir.path().join("log/production.log")).unwrap_or_default();
        let mut start = text.len().saturating_sub(4000);
        while !text.is_char_boundary(start) {
            start += 1;
        }
        text[start..].to_owned()
    }
}

/// The new issue's subject; it names the user.
fn subject(account: &Account) -> String {
    format!(
        "Printer on the second floor jams (reported by {})",
        account.username
    )
}

/// The note the edit adds; it names the user.
fn note(account: &Account) -> String {
    format!(
        "Replaced the paper tray, works again (checked by {}).",
        account.username
    )
}

/// The session a person clicks through in the browser: the start page, sign in, the
/// project, a new issue, a note on it, the issues list, the issue deleted, sign out.
/// Panics, with the page's text, when a step does not arrive.
async fn session(browser: &mut Browser, base: &str, account: &Account) {
    let wait = Duration::from_secs(60);
    browser.goto(&format!("{base}/")).await;
    browser.click("#account a.login").await;
    arrive(browser, "#login-form").await;
    browser.fill("#username", &account.username).await;
    browser.fill("#password", &account.password).await;
    browser.screenshot("login").await;
    browser.click("#login-submit").await;
    browser
        .wait_text("#loggedas", wait, |t| t.contains(&account.username))
        .await;

    // The project, and a new issue in it.
    browser.click("#top-menu a.projects").await;
    arrive(browser, "#projects-index").await;
    browser
        .click(&format!("#projects-index a[href=\"/projects/{PROJECT}\"]"))
        .await;
    arrive(browser, "#main-menu a.new-object").await;
    browser.click("#main-menu a.new-object").await;
    browser.click("#main-menu a.new-issue-sub").await;
    arrive(browser, "#issue_subject").await;
    browser.fill("#issue_subject", &subject(account)).await;
    browser
        .fill(
            "#issue_description",
            "The printer stops after two pages and shows error E-42.",
        )
        .await;
    browser.click("#issue-form input[name=commit]").await;
    browser
        .wait_text("#flash_notice", wait, |t| t.contains("created"))
        .await;
    arrive(browser, "#issue-form").await;
    let issue_path = browser
        .client
        .current_url()
        .await
        .unwrap()
        .path()
        .to_owned();
    browser.screenshot("created").await;

    // Edit it (the link shows the form the page holds): a note naming the user.
    browser.click("#content > .contextual a.icon-edit").await;
    browser.fill("#issue_notes", &note(account)).await;
    browser.click("#issue-form input[name=commit]").await;
    browser
        .wait_text("#flash_notice", wait, |t| t.contains("Successful update"))
        .await;
    arrive(browser, "#main-menu a.issues").await;

    // The issues list, the issue again, deleted.
    browser.click("#main-menu a.issues").await;
    let listed = format!("table.issues a[href=\"{issue_path}\"]");
    arrive(browser, &listed).await;
    browser.click(&listed).await;
    arrive(browser, "#content > .contextual .drdn .drdn-trigger").await;
    // The confirmation dialog says yes.
    browser.script("window.confirm = () => true;").await;
    browser
        .click("#content > .contextual .drdn .drdn-trigger")
        .await;
    browser
        .click("#content > .contextual .drdn-items a.icon-del")
        .await;
    browser
        .wait_text("#flash_notice", wait, |t| t.contains("deletion"))
        .await;
    arrive(browser, "#account a.logout").await;
    browser.screenshot("deleted").await;

    browser.click("#account a.logout").await;
    browser
        .wait_text("#account", wait, |t| t.contains("Sign in"))
        .await;
}

/// Waits until the page shows `css` and has run its scripts (`document.readyState`).
async fn arrive(browser: &Browser, css: &str) {
    browser
        .wait_text(css, Duration::from_secs(60), |_| true)
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while browser.script("return document.readyState").await != "complete" {
        assert!(
            std::time::Instant::now() < deadline,
            "the page with {css} did not finish loading"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Records the session of `account` on `redmine` in Chromium; the capture's path.
async fn record(redmine: &Redmine, account: &Account, out: &Path) -> PathBuf {
    let base = redmine.base.clone();
    let account = account.clone();
    apps::record_in_chromium(out, async move |browser| {
        session(browser, &base, &account).await;
    })
    .await
}

/// A capture's exchange with the application: method, path and query, the request body as
/// text, the response's status and `Location`.
#[derive(Debug)]
struct Exchange {
    method: String,
    target: String,
    body: String,
    status: u16,
    location: String,
}

/// A capture's exchanges with the application.
fn exchanges(har: &Har) -> Vec<Exchange> {
    har.log
        .entries
        .iter()
        .filter(|entry| entry.request.url.starts_with("http://127.0.0.1"))
        .map(|entry| {
            let url = url::Url::parse(&entry.request.url).unwrap();
            let target = match url.query() {
                Some(query) => format!("{}?{query}", url.path()),
                None => url.path().to_owned(),
            };
            let body = entry
                .request
                .post_data
                .as_ref()
                .map(|post| post.text.clone())
                .unwrap_or_default();
            let location = entry
                .response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("location"))
                .map(|h| h.value.clone())
                .unwrap_or_default();
            Exchange {
                method: entry.request.method.clone(),
                target,
                body,
                status: entry.response.status,
                location,
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redmine_session_is_recorded_in_chromium() {
    let accounts = Account::numbered(21);
    let redmine = start(&accounts);
    let out = util::output_dir("apps_redmine_recorded");
    let user = &accounts[0];
    let capture = record(&redmine, user, &out).await;

    // What Redmine stored: the issue created by user01, its note by user01, the issue
    // deleted, the session closed.
    let events = redmine.events();
    let shape: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.event.as_str(), e.user.as_str()))
        .collect();
    crate::eqnice!(
        vec![
            ("created", "user01"),
            ("noted", "user01"),
            ("deleted", "user01")
        ],
        shape
    );
    assert_eq!(events[0].text, subject(user), "{}", redmine.log_tail());
    assert_eq!(events[1].text, note(user));
    assert!(events.iter().all(|e| e.issue == events[0].issue));
    assert_eq!(redmine.issues(), vec![]);
    assert_eq!(redmine.open_sessions(), BTreeMap::new(), "signed out");

    // What the capture holds: each POST with the authenticity token of its page, the id
    // handed over in Location and used by the next requests.
    let (har, _) = har::read::read_file(&capture).unwrap();
    let exchanges = exchanges(&har);
    let posts: Vec<&Exchange> = exchanges.iter().filter(|e| e.method == "POST").collect();
    let paths: Vec<&str> = posts.iter().map(|e| e.target.as_str()).collect();
    let issue = events[0].issue;
    crate::eqnice!(
        vec![
            "/login".to_owned(),
            format!("/projects/{PROJECT}/issues"),
            format!("/issues/{issue}"),
            format!("/issues/{issue}"),
            "/logout".to_owned(),
        ],
        paths
    );
    for post in &posts {
        assert!(
            post.body.contains("authenticity_token"),
            "no authenticity_token in POST {}: {}",
            post.target,
            post.body
        );
        assert_eq!(post.status, 302, "POST {}", post.target);
    }
    assert!(
        posts[1].location.ends_with(&format!("/issues/{issue}")),
        "the creation hands the id over in Location: {:?}",
        posts[1]
    );
    assert!(posts[1].body.contains(&subject(user)));
    assert!(posts[2].body.contains("patch") && posts[2].body.contains("lock_version"));
    assert!(posts[2].body.contains(&note(user)));
    assert!(posts[3].body.contains("_method=delete"), "{:?}", posts[3]);
    let ids_used = exchanges
        .iter()
        .filter(|e| e.method == "GET" && e.target == format!("/issues/{issue}"))
        .count();
    assert!(
        ids_used >= 2,
        "the issue is opened after creation and from the list"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redmine_replay_is_faithful() {
    let accounts = Account::numbered(21);
    let out = util::output_dir("apps_redmine_replay");
    let redmine = start(&accounts);
    let capture = record(&redmine, &accounts[0], &out).await;
    let scenario = apps::convert(&capture);
    let users = out.join("users.csv");
    apps::users_csv(&accounts[1..], &users);
    crate::util::round_trip::assert_extracts_find_what_the_recording_sent(&scenario, &capture);
    apps::check_passes(&scenario, &users, &redmine.base);
    // On an instance of their own: what a mutant leaves behind is not the load run's.
    let mutated_on = start(&accounts);
    let application = mutation::Application::Running {
        base: &mutated_on.base,
        concurrency: 2,
    };
    mutation::mutation_test(&scenario, &capture, &users, &application).assert_all_caught();
    drop(mutated_on);
    // The run is judged on what happens after the recording and the check.
    let before = redmine.events().len();

    let (result, output) = apps::run(&scenario, &users, &redmine.base, 20, 60);
    redmine.wait_for_requests_to_finish(Duration::from_secs(120));
    let context = format!(
        "run result:\n{}\nchorus said:\n{}",
        apps::result_table(&result),
        String::from_utf8_lossy(&output.stdout)
    );
    let events: Vec<Event> = redmine.events().split_off(before);
    let of = |kind: &str| -> Vec<&Event> { events.iter().filter(|e| e.event == kind).collect() };

    // Every write the run counts as a success happened, as the user that signed in.
    let requests = apps::scenario_requests(&scenario);
    let posts_with = |field: &str, method: Option<&str>| -> Vec<&chorus::scenario::Request> {
        requests
            .iter()
            .filter(|r| r.method == http::Method::POST && apps::body_has_field(r, field))
            // A creation has no `_method`: an update's form sends the subject too.
            .filter(|r| apps::body_field(r, "_method").as_deref() == method)
            .collect()
    };
    let creations = posts_with("issue[subject]", None);
    let notes = posts_with("issue[notes]", Some("patch"));
    let deletions = posts_with("_method", Some("delete"));
    for (what, steps) in [
        ("issue creations", &creations),
        ("notes", &notes),
        ("deletions", &deletions),
    ] {
        assert!(!steps.is_empty(), "the scenario has no step for the {what}");
    }
    // A note and a deletion are both `POST /issues/[issue_id]` (Rails' `_method`), one line
    // of the report: their successes are compared with the notes and deletions together.
    // Every success happened; a failure may have happened too (a request cut at the stop
    // or answered late), and nothing happened that was not sent.
    let (sent, failed) = apps::reported(&result, &creations);
    let stored = of("created").len() as u64;
    assert!(
        sent - failed <= stored && stored <= sent,
        "the run reports {} successful issue creations ({sent} sent, {failed} failed); Redmine \
         stored {stored}\n{context}",
        sent - failed,
    );
    let updates: Vec<_> = notes.iter().chain(&deletions).copied().collect();
    let (sent, failed) = apps::reported(&result, &updates);
    let stored = (of("noted").len() + of("deleted").len()) as u64;
    assert!(
        sent - failed <= stored && stored <= sent,
        "the run reports {} successful notes and deletions ({sent} sent, {failed} failed); \
         Redmine stored {stored}\n{context}",
        sent - failed,
    );
    // In the order Redmine stored them: SQLite gives a deleted issue's id to the next one.
    let mut authors: BTreeMap<u64, &str> = BTreeMap::new();
    for event in &events {
        if event.event == "created" {
            authors.insert(event.issue, event.user.as_str());
        }
        assert!(
            event.text.contains(&format!("by {})", event.user)) || event.event == "deleted",
            "{event:?} does not name the user that wrote it\n{context}"
        );
        assert_eq!(
            authors.get(&event.issue).copied(),
            Some(event.user.as_str()),
            "{event:?} is not on an issue its user created in the run\n{context}"
        );
    }

    // The work was done by the run's own accounts, several of them, never the recorded one.
    // (Not all 20: on a busy machine Redmine's single process may serve some users only
    // their login within the minute.)
    let workers: BTreeSet<&str> = of("created").iter().map(|e| e.user.as_str()).collect();
    let expected: BTreeSet<&str> = accounts[1..].iter().map(|a| a.username.as_str()).collect();
    assert!(
        workers.len() >= 2 && workers.is_subset(&expected),
        "issues were created by {workers:?}, not by several of {expected:?}\n{context}"
    );

    // Nothing left behind (every issue deleted, every session signed out) but by an
    // iteration the run reports as failed: a request that timed out on a starved server ends
    // its iteration before the deletion, and the report says so.
    let failures: u64 = result["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["failures"].as_u64().unwrap_or(0))
        .sum();
    let left = redmine.issues();
    let sessions: u64 = redmine.open_sessions().values().sum();
    assert!(
        left.len() as u64 + sessions <= failures,
        "left behind: issues {left:?} and {sessions} session(s), with {failures} failure(s) \
         reported\n{context}"
    );
}
