//! PostGraphile 4 (npm) over Debian's PostgreSQL 15 (`tests/apps/graphql/install.sh`): a
//! GraphQL API generated from the forum schema `tests/apps/graphql/schema.sql` (people with
//! bcrypt-hashed accounts, posts, an `authenticate` mutation returning a JWT, row-level
//! security so a person changes only their own posts). Each instance is its own PostgreSQL
//! cluster, copied from the one prepared at install time, running as the `postgres` user on a
//! free port, with the schema, the accounts and a welcome post per account loaded; then
//! `tests/apps/graphql/server.js` serves PostGraphile at `/graphql` and the client page
//! `public/index.html` at `/`, on one origin.
//!
//! The session, clicked in Chromium: log in (the `authenticate` mutation with the e-mail and
//! password in its variables; the JWT comes back in the JSON), list the person's posts
//! (`currentPerson`, whose `id` the next mutation sends as `authorId`), create a post whose
//! headline names the user (`createPost`: the new id in the JSON), open it (`postById` with the
//! id in the variables), rename it "... (edited by userNN)" (`updatePostById`), delete it
//! (`deletePostById`), log out (the page forgets the token). Every request is
//! `POST /graphql`; what differs is in the body.
//!
//! Judged from the database: the audit table `forum_private.post_log` (every insert, update
//! and delete, by whom) and the posts left in `forum.post`.

use std::collections::BTreeSet;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::apps::{self, Account};
use crate::util::browser::Browser;
use crate::util::mutation;
use crate::util::output_dir;
use crate::util::tools::Process;

const APP: &str = "graphql";
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// One forum: its PostgreSQL cluster and PostGraphile, stopped when dropped (PostGraphile
/// first).
struct Instance {
    base_url: String,
    _graphql: Process,
    db: Postgres,
    /// PostGraphile's log and its `requests.jsonl`.
    dir: tempfile::TempDir,
}

/// A PostgreSQL cluster of its own in a temporary folder, running as `postgres`; stopped by
/// a fast shutdown (SIGINT) when dropped, so that no backend outlives the test.
struct Postgres {
    port: u16,
    process: Option<Process>,
    _dir: tempfile::TempDir,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let pid = process.child.id().to_string();
            let _ = Command::new("kill").args(["-INT", &pid]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = process.child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// The uid and gid of the `postgres` user, which the Debian package creates.
fn postgres_user() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let output = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .expect("id runs");
        assert!(
            output.status.success(),
            "no postgres user: bash tests/apps/graphql/install.sh installs PostgreSQL"
        );
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .unwrap()
    };
    (id("-u"), id("-g"))
}

fn run_ok(what: &str, command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("{what}: {err}"));
    apps::assert_success(what, &output);
}

impl Postgres {
    /// Copies the prepared cluster and starts it on a free port, waiting until it accepts
    /// queries (`pg_isready`).
    fn start(template: &Path) -> Postgres {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("pgdata");
        run_ok(
            "copy the prepared cluster",
            Command::new("cp").arg("-a").arg(template).arg(&data),
        );
        let (uid, gid) = postgres_user();
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        let port = crate::util::free_port();
        let log = std::fs::File::create(dir.path().join("postgres.log")).unwrap();
        let mut command = Command::new(Path::new(PG_BIN).join("postgres"));
        command
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "unix_socket_directories="])
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off", "-c", "max_connections=60"])
            .uid(uid)
            .gid(gid)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let mut process = Process::spawn("postgres", &mut command);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = Command::new(Path::new(PG_BIN).join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
                .status()
                .unwrap();
            if ready.success() {
                break;
            }
            process.assert_running();
            assert!(
                Instant::now() < deadline,
                "postgres did not accept connections within 30 s: {}",
                std::fs::read_to_string(dir.path().join("postgres.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(30));
        }
        Postgres {
            port,
            process: Some(process),
            _dir: dir,
        }
    }

    /// `psql` as the superuser on `database`, stopping at the first error; its output.
    fn psql(&self, database: &str, args: &[&str]) -> String {
        let output = Command::new(Path::new(PG_BIN).join("psql"))
            .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", database])
            .args(args)
            .output()
            .unwrap();
        apps::assert_success("psql", &output);
        String::from_utf8(output.stdout).unwrap()
    }

    /// The rows of a query as JSON values (one JSON document per row).
    fn json_rows(&self, sql: &str) -> Vec<Value> {
        self.psql("forum", &["-c", sql])
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

fn script_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps/graphql")
}

fn email(account: &Account) -> String {
    format!("{}@example.test", account.username)
}

/// The sha256 of `bytes` in hex, as `sha256sum` prints it.
fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// SQL text literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Starts a forum over fresh data with these accounts (person ids 1, 2, ... in this order,
/// each with a welcome post whose id is the person's).
fn start(accounts: &[Account]) -> Instance {
    let started = std::time::Instant::now();
    let installed = apps::installed(APP);
    let schema = std::fs::read(script_dir().join("schema.sql")).unwrap();
    let prepared = std::fs::read_to_string(installed.join("schema.sha256")).unwrap_or_default();
    assert_eq!(
        prepared.trim(),
        sha256_hex(&schema),
        "target/apps/graphql holds the forum of another schema.sql: bash tests/apps/graphql/install.sh"
    );
    let db = Postgres::start(&installed.join("pgdata"));
    let mut seed = String::new();
    for account in accounts {
        let user = literal(&account.username);
        seed.push_str(&format!(
            "with p as (insert into forum.person (username, first_name) values ({user}, {user}) \
             returning id), a as (insert into forum_private.person_account \
             select id, {}, crypt({}, gen_salt('bf', 4)) from p) \
             insert into forum.post (author_id, headline, body) \
             select id, 'Welcome, ' || {user}, 'Your first post.' from p;\n",
            literal(&email(account)),
            literal(&account.password)
        ));
    }
    seed.push_str("truncate forum_private.post_log;\n");
    db.psql("forum", &["-c", &seed]);

    let dir = tempfile::tempdir().unwrap();
    let database_url = format!(
        "postgres://forum_postgraphile:forum@127.0.0.1:{}/forum",
        db.port
    );
    let (graphql, base_url) = apps::spawn_announcing(
        "postgraphile",
        Command::new("node")
            .arg(script_dir().join("server.js"))
            .arg(installed.join("node_modules"))
            .arg(&database_url)
            .arg("chorus-graphql-test-jwt-secret")
            .arg(dir.path()),
        &dir.path().join("postgraphile.log"),
    );
    eprintln!("{APP} started in {:?}", started.elapsed());
    Instance {
        base_url,
        _graphql: graphql,
        db,
        dir,
    }
}

/// One row of the audit table: an insert, update or delete of a post.
#[derive(Debug, Clone)]
struct Change {
    seq: u64,
    op: String,
    post_id: u64,
    author: String,
    /// Who was logged in (the JWT's person), if anyone.
    acted_by: Option<String>,
    headline: String,
}

/// One `POST /graphql` the server answered (server.js's `requests.jsonl`).
#[derive(Debug, Clone)]
struct Request {
    operation: String,
    status: u64,
    /// The answer carried GraphQL `errors` (with status 200 as often as not).
    errors: bool,
}

impl Instance {
    /// Every `POST /graphql` answered so far, in order.
    fn requests(&self) -> Vec<Request> {
        std::fs::read_to_string(self.dir.path().join("requests.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|line| {
                let v: Value = serde_json::from_str(line).unwrap();
                Request {
                    operation: v["operation"].as_str().unwrap_or("?").to_owned(),
                    status: v["status"].as_u64().unwrap(),
                    errors: v["errors"].as_bool().unwrap(),
                }
            })
            .collect()
    }

    /// Every change to a post so far, in order, with usernames for the people.
    fn changes(&self) -> Vec<Change> {
        self.db
            .json_rows(
                "select json_build_object('seq', l.seq, 'op', l.op, 'post_id', l.post_id, \
                 'author', a.username, 'acted_by', b.username, 'headline', l.headline) \
                 from forum_private.post_log l join forum.person a on a.id = l.author_id \
                 left join forum.person b on b.id = l.acted_by order by l.seq",
            )
            .into_iter()
            .map(|v| Change {
                seq: v["seq"].as_u64().unwrap(),
                op: v["op"].as_str().unwrap().to_owned(),
                post_id: v["post_id"].as_u64().unwrap(),
                author: v["author"].as_str().unwrap().to_owned(),
                acted_by: v["acted_by"].as_str().map(str::to_owned),
                headline: v["headline"].as_str().unwrap_or_default().to_owned(),
            })
            .collect()
    }

    /// (id, author, headline) of every post stored now.
    fn posts(&self) -> Vec<(u64, String, String)> {
        self.db
            .json_rows(
                "select json_build_array(p.id, a.username, p.headline) from forum.post p \
                 join forum.person a on a.id = p.author_id order by p.id",
            )
            .into_iter()
            .map(|v| {
                (
                    v[0].as_u64().unwrap(),
                    v[1].as_str().unwrap().to_owned(),
                    v[2].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

/// The session as a person clicks it: log in, post a headline naming the user, open it,
/// rename it, delete it, log out.
async fn session(browser: &mut Browser, base_url: &str, account: &Account) {
    let user = &account.username;
    let wait = Duration::from_secs(15);
    browser.goto(&format!("{base_url}/")).await;
    browser.fill("#email", &email(account)).await;
    browser.fill("#password", &account.password).await;
    browser.screenshot("login").await;
    browser.click("#login").await;
    let signed_in = format!("signed in as {user}: 1 post(s)");
    browser.wait_text("#status", wait, |s| s == signed_in).await;

    let headline = format!("Winter meetup, hosted by {user}");
    browser.fill("#new-headline", &headline).await;
    browser
        .fill("#new-body", "Who is coming on Saturday?")
        .await;
    browser.click("#create").await;
    let listed = format!("signed in as {user}: 2 post(s)");
    browser.wait_text("#status", wait, |s| s == listed).await;
    browser.screenshot("posted").await;

    browser
        .click(&format!("#posts a.open[data-headline='{headline}']"))
        .await;
    browser
        .wait_text("#status", wait, |s| {
            s.starts_with("post ") && s.ends_with(" open")
        })
        .await;
    browser
        .fill(
            "#edit-headline",
            &format!("Winter meetup moved to Sunday (edited by {user})"),
        )
        .await;
    browser.click("#save").await;
    browser
        .wait_text("#status", wait, |s| s.starts_with("saved post "))
        .await;
    browser.screenshot("edited").await;
    browser.click("#delete").await;
    browser.wait_text("#status", wait, |s| s == signed_in).await;
    browser.click("#logout").await;
    browser
        .wait_text("#status", wait, |s| s == "signed out")
        .await;
}

/// The GraphQL operation names of the capture's `POST /graphql` requests, in order.
fn captured_operations(capture: &Path) -> Vec<String> {
    let har: Value = serde_json::from_str(&std::fs::read_to_string(capture).unwrap()).unwrap();
    har["log"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["request"]["method"] == "POST"
                && e["request"]["url"]
                    .as_str()
                    .is_some_and(|u| u.ends_with("/graphql"))
        })
        .filter_map(|e| {
            let body: Value =
                serde_json::from_str(e["request"]["postData"]["text"].as_str()?).ok()?;
            let query = body["query"].as_str()?;
            let name = query.split_whitespace().nth(1)?;
            Some(name.split('(').next().unwrap().to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_session_is_recorded_in_chromium() {
    let accounts = Account::numbered(21);
    let app = start(&accounts);
    let out = output_dir("apps_graphql_recorded");
    let capture = apps::record_in_chromium(&out, async |browser| {
        session(browser, &app.base_url, &accounts[0]).await
    })
    .await;

    let changes: Vec<(String, String, Option<String>, String)> = app
        .changes()
        .into_iter()
        .map(|c| (c.op, c.author, c.acted_by, c.headline))
        .collect();
    let user01 = || Some("user01".to_owned());
    crate::eqnice!(
        vec![
            (
                "INSERT".to_owned(),
                "user01".to_owned(),
                user01(),
                "Winter meetup, hosted by user01".to_owned()
            ),
            (
                "UPDATE".to_owned(),
                "user01".to_owned(),
                user01(),
                "Winter meetup moved to Sunday (edited by user01)".to_owned()
            ),
            (
                "DELETE".to_owned(),
                "user01".to_owned(),
                user01(),
                "Winter meetup moved to Sunday (edited by user01)".to_owned()
            ),
        ],
        changes
    );
    assert_eq!(app.posts().len(), 21, "only the welcome posts are left");
    crate::eqnice!(
        vec![
            "Authenticate",
            "Home",
            "CreatePost",
            "Home",
            "Post",
            "UpdatePost",
            "Post",
            "DeletePost",
            "Home"
        ],
        captured_operations(&capture)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_replay_is_faithful() {
    let accounts = Account::numbered(21);
    let app = start(&accounts);
    let out = output_dir("apps_graphql_replay");
    let capture = apps::record_in_chromium(&out, async |browser| {
        session(browser, &app.base_url, &accounts[0]).await
    })
    .await;
    let scenario = apps::convert(&capture);
    let users = out.join("users.csv");
    apps::users_csv_with(&accounts[1..], &users, &[("email", email)]);
    crate::util::round_trip::assert_extracts_find_what_the_recording_sent(&scenario, &capture);
    let checked = apps::check_passes(&scenario, &users, &app.base_url);
    // On an instance of their own: what a mutant leaves behind is not the load run's.
    let mutated_on = start(&accounts);
    let application = mutation::Application::Running {
        base: &mutated_on.base_url,
        concurrency: 3,
    };
    mutation::mutation_test(&scenario, &capture, &users, &application).assert_all_caught();
    drop(mutated_on);

    let before = app.changes().last().map_or(0, |c| c.seq);
    let requests_before = app.requests().len();
    let (result, output) = apps::run(&scenario, &users, &app.base_url, 20, 60);
    apps::assert_success("chorus run", &output);
    let changes: Vec<Change> = app
        .changes()
        .into_iter()
        .filter(|c| c.seq > before)
        .collect();
    let requests: Vec<Request> = app.requests().split_off(requests_before);
    let answered = |operation: Option<&str>| {
        requests
            .iter()
            .filter(|r| r.status == 200 && !r.errors)
            .filter(|r| operation.is_none_or(|op| r.operation == op))
            .count() as u64
    };
    let stored = |op: &str| changes.iter().filter(|c| c.op == op).count() as u64;
    let mut findings = apps::Findings::default();
    // Every request is POST /graphql, and a mutation that failed is answered 200 with
    // `errors`: the run's successes must be the answers without errors.
    findings.expect_eq(
        "POST /graphql answered without errors",
        apps::reported_successes(&result, "POST", |n| n.contains("graphql")),
        answered(None),
    );
    for (operation, op) in [
        ("CreatePost", "INSERT"),
        ("UpdatePost", "UPDATE"),
        ("DeletePost", "DELETE"),
    ] {
        findings.expect_eq(
            &format!("{operation} mutations answered without errors vs rows ({op})"),
            answered(Some(operation)),
            stored(op),
        );
        // Should convert name the steps by operation, their counts must match too.
        let named = |n: &str| n.contains(operation);
        if result["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| named(e["name"].as_str().unwrap_or_default()))
        {
            findings.expect_eq(
                &format!("{operation} reported as successful"),
                apps::reported_successes(&result, "POST", named),
                stored(op),
            );
        }
    }
    let failed: Vec<&Request> = requests.iter().filter(|r| r.errors).collect();
    findings.expect(failed.is_empty(), || {
        format!(
            "{} GraphQL answers carried errors, e.g. {:?}",
            failed.len(),
            failed[0]
        )
    });
    let wrong: Vec<&Change> = changes
        .iter()
        .filter(|c| {
            c.acted_by.as_deref() != Some(c.author.as_str())
                || !c.headline.contains(c.author.as_str())
        })
        .collect();
    findings.expect(wrong.is_empty(), || {
        format!(
            "{} of {} changes are not by the author they name, e.g. post {}: {:?}",
            wrong.len(),
            changes.len(),
            wrong[0].post_id,
            wrong[0]
        )
    });
    let workers: BTreeSet<String> = changes
        .iter()
        .filter(|c| c.op == "INSERT")
        .map(|c| c.author.clone())
        .collect();
    let expected: BTreeSet<String> = accounts[1..].iter().map(|a| a.username.clone()).collect();
    findings.expect(workers == expected, || {
        format!("the accounts that created posts: {workers:?}, not user02 to user21")
    });
    let left: Vec<(u64, String, String)> = app.posts().into_iter().filter(|p| p.0 > 21).collect();
    findings.expect(left.is_empty(), || format!("posts left behind: {left:?}"));
    findings.assert_none(&format!(
        "check:\n{}\nrun:\n{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&output.stdout)
    ));
}
