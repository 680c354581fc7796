//! json-server 0.17 with json-server-auth 2 (npm, `tests/apps/json_server_auth/install.sh`):
//! a JSON REST API with a JWT login. `tests/apps/json_server_auth/server.js` serves it over a
//! fresh `db.json` per instance (the accounts pre-hashed, a welcome post each, posts guarded
//! per owner: rule 640) with the client page `public/index.html` as its front end, and keeps an
//! audit log of every write it answered (`writes.jsonl`: method, path, status, the token's
//! subject, the body).
//!
//! The session, clicked in Chromium: log in with the e-mail and password (`POST /login`, a JWT
//! in the JSON answer), list the user's posts (`GET /posts?userId=ID`, the id from the login
//! answer), create a post whose title names the user (`POST /posts`, the new id in the JSON
//! answer and in `Location`), open it (`GET /posts/ID`), rename it "... (edited by userNN)"
//! (`PATCH`), delete it, log out (the page forgets the token; nothing goes to the server).
//!
//! Judged from the server's own files: the audit log (creations, edits, deletions and the user
//! each was authorised as) and `db.json` re-read from disk (posts left behind).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::apps::{self, Account};
use crate::util::browser::Browser;
use crate::util::mutation;
use crate::util::output_dir;
use crate::util::tools::Process;

const APP: &str = "json_server_auth";

/// One json-server-auth over its own `db.json`, stopped when dropped.
struct Instance {
    base_url: String,
    dir: tempfile::TempDir,
    _server: Process,
}

/// The e-mail an account logs in with: json-server-auth requires one.
fn email(account: &Account) -> String {
    format!("{}@example.test", account.username)
}

/// Starts an instance over fresh data with these accounts (ids 1, 2, ... in this order).
fn start(accounts: &[Account]) -> Instance {
    let started = std::time::Instant::now();
    let modules = apps::installed(APP).join("node_modules");
    let dir = tempfile::tempdir().unwrap();
    let seed: Vec<Value> = accounts
        .iter()
        .map(|a| json!({ "username": a.username, "email": email(a), "password": a.password }))
        .collect();
    std::fs::write(
        dir.path().join("accounts.json"),
        serde_json::to_string(&seed).unwrap(),
    )
    .unwrap();
    let (server, base_url) = apps::spawn_announcing(
        "json-server-auth",
        Command::new("node")
            .arg(script_dir().join("server.js"))
            .arg(dir.path())
            .env("NODE_PATH", modules),
        &dir.path().join("server.log"),
    );
    eprintln!("{APP} started in {:?}", started.elapsed());
    Instance {
        base_url,
        dir,
        _server: server,
    }
}

fn script_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps/json_server_auth")
}

/// One write the server answered, from its audit log.
#[derive(Debug, Clone)]
struct Write {
    method: String,
    path: String,
    status: u64,
    /// The user id the bearer token was issued to, if any.
    sub: Option<u64>,
    body: Value,
}

/// A post as stored in `db.json`.
#[derive(Clone)]
struct Post {
    id: u64,
    user_id: u64,
    title: String,
}

impl Instance {
    /// Every write the server answered so far, in order.
    fn writes(&self) -> Vec<Write> {
        let text = std::fs::read_to_string(self.dir.path().join("writes.jsonl")).unwrap();
        text.lines()
            .map(|line| {
                let v: Value = serde_json::from_str(line).unwrap();
                Write {
                    method: v["method"].as_str().unwrap().to_owned(),
                    path: v["path"].as_str().unwrap().to_owned(),
                    status: v["status"].as_u64().unwrap(),
                    sub: v["sub"].as_str().map(|s| s.parse().unwrap()),
                    body: v["body"].clone(),
                }
            })
            .collect()
    }

    fn db(&self) -> Value {
        let text = std::fs::read_to_string(self.dir.path().join("db.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// The posts stored now (`db.json` re-read from disk).
    fn posts(&self) -> Vec<Post> {
        self.db()["posts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| Post {
                id: p["id"].as_u64().unwrap(),
                user_id: p["userId"].as_u64().unwrap(),
                title: p["title"].as_str().unwrap_or_default().to_owned(),
            })
            .collect()
    }

    /// User id -> username, from `db.json`.
    fn usernames(&self) -> BTreeMap<u64, String> {
        self.db()["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                (
                    u["id"].as_u64().unwrap(),
                    u["username"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

/// The session as a person clicks it on the client page: log in, create a post naming the
/// user, open it, rename it, delete it, log out.
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

    browser.click("#new").await;
    browser
        .fill("#new-title", &format!("Reading list of {user}"))
        .await;
    browser
        .fill("#new-body", "Books to read this winter.")
        .await;
    browser.screenshot("new-post").await;
    browser.click("#create").await;
    let listed = format!("signed in as {user}: 2 post(s)");
    browser.wait_text("#status", wait, |s| s == listed).await;

    browser
        .click(&format!(
            "#posts a.open[data-title='Reading list of {user}']"
        ))
        .await;
    browser
        .wait_text("#status", wait, |s| {
            s.starts_with("post ") && s.ends_with(" open")
        })
        .await;
    browser
        .fill("#edit-title", &format!("Reading list (edited by {user})"))
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
    browser.screenshot("signed-out").await;
}

/// The ids of the posts every instance starts with, one per account (server.js).
fn welcome_posts(accounts: &[Account]) -> Vec<u64> {
    (1..=accounts.len() as u64).collect()
}

fn is_post_item(path: &str) -> bool {
    path.strip_prefix("/posts/")
        .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_server_auth_session_is_recorded_in_chromium() {
    let accounts = Account::numbered(21);
    let app = start(&accounts);
    let out = output_dir("apps_json_server_auth_recorded");
    let capture = apps::record_in_chromium(&out, async |browser| {
        session(browser, &app.base_url, &accounts[0]).await
    })
    .await;

    let writes: Vec<Write> = app
        .writes()
        .into_iter()
        .filter(|w| w.path.starts_with("/posts"))
        .collect();
    let summary: Vec<(String, u64, Option<u64>)> = writes
        .iter()
        .map(|w| (w.method.clone(), w.status, w.sub))
        .collect();
    crate::eqnice!(
        vec![
            ("POST".to_owned(), 201, Some(1)),
            ("PATCH".to_owned(), 200, Some(1)),
            ("DELETE".to_owned(), 200, Some(1)),
        ],
        summary
    );
    assert_eq!(writes[0].body["title"], "Reading list of user01");
    assert_eq!(writes[1].body["title"], "Reading list (edited by user01)");
    let left: Vec<u64> = app.posts().iter().map(|p| p.id).collect();
    assert_eq!(
        welcome_posts(&accounts),
        left,
        "the session deleted its post"
    );

    let requests = apps::captured_requests(&capture);
    let has = |method: &str, wanted: &dyn Fn(&str) -> bool| {
        requests.iter().any(|(m, p)| m == method && wanted(p))
    };
    assert!(has("POST", &|p| p == "/login"), "{requests:?}");
    assert!(has("GET", &|p| p == "/posts?userId=1"), "{requests:?}");
    assert!(has("POST", &|p| p == "/posts"), "{requests:?}");
    for method in ["GET", "PATCH", "DELETE"] {
        assert!(
            has(method, &is_post_item),
            "no {method} /posts/ID: {requests:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_server_auth_replay_is_faithful() {
    let accounts = Account::numbered(21);
    let app = start(&accounts);
    let out = output_dir("apps_json_server_auth_replay");
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

    let before = app.writes().len();
    let (result, output) = apps::run(&scenario, &users, &app.base_url, 20, 60);
    apps::assert_success("chorus run", &output);
    let writes: Vec<Write> = app.writes().split_off(before);
    let names = app.usernames();
    let done = |method: &str, status: u64, item: bool| -> Vec<&Write> {
        writes
            .iter()
            .filter(|w| {
                let path = w.path.split('?').next().unwrap();
                w.method == method
                    && w.status == status
                    && if item {
                        is_post_item(path)
                    } else {
                        path == "/posts"
                    }
            })
            .collect()
    };
    let created = done("POST", 201, false);
    let edited = done("PATCH", 200, true);
    let deleted = done("DELETE", 200, true);
    let collection = |name: &str| name.trim_end_matches('/').ends_with("/posts");
    let item = |name: &str| name.contains("/posts/");
    let mut findings = apps::Findings::default();
    findings.expect_eq(
        "posts created",
        apps::reported_successes(&result, "POST", collection),
        created.len() as u64,
    );
    findings.expect_eq(
        "posts edited",
        apps::reported_successes(&result, "PATCH", item),
        edited.len() as u64,
    );
    findings.expect_eq(
        "posts deleted",
        apps::reported_successes(&result, "DELETE", item),
        deleted.len() as u64,
    );
    let mut wrong_titles = 0;
    let mut sample = String::new();
    for write in created.iter().chain(&edited) {
        let user = write.sub.and_then(|sub| names.get(&sub));
        let title = write.body["title"].as_str().unwrap_or_default();
        let owner_ok = write.method != "POST" || write.body["userId"] == json!(write.sub);
        if !user.is_some_and(|user| title.contains(user.as_str())) || !owner_ok {
            wrong_titles += 1;
            sample = format!(
                "{} {} as user {:?} ({user:?}) sent {}",
                write.method, write.path, write.sub, write.body
            );
        }
    }
    findings.expect(wrong_titles == 0, || {
        format!(
            "{wrong_titles} of {} creations and edits do not name the user they were made as, \
             e.g. {sample}",
            created.len() + edited.len()
        )
    });
    let workers: BTreeSet<u64> = created.iter().filter_map(|w| w.sub).collect();
    let expected: BTreeSet<u64> = (2..=21).collect();
    findings.expect(workers == expected, || {
        format!("the users who created posts: {workers:?}, not user ids 2 to 21")
    });
    let welcome = welcome_posts(&accounts);
    let left: Vec<String> = app
        .posts()
        .iter()
        .filter(|p| !welcome.contains(&p.id))
        .map(|p| format!("post {} of user {}: {:?}", p.id, p.user_id, p.title))
        .collect();
    findings.expect(left.is_empty(), || format!("posts left behind: {left:?}"));
    findings.assert_none(&format!(
        "check:\n{}\nrun:\n{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&output.stdout)
    ));
}
