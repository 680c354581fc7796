//! node-oidc-provider 8 (npm, `tests/apps/oidc/install.sh`): an OpenID Connect provider,
//! started by `tests/apps/oidc/server.mjs` with one public client (`notes-app`, PKCE required,
//! its redirect_uri on the same origin), the accounts from a JSON file, a login and consent
//! interaction of its own, an in-memory adapter, and in the same process a notes API
//! authorised by the provider's access tokens and the client page `public/` that runs the
//! authorization-code flow with PKCE in the browser.
//!
//! The session, clicked in Chromium: open the notes page, "Sign in" (the page makes the PKCE
//! verifier, its S256 challenge, state and nonce, and goes to `/auth`), log in on the
//! provider's form (`POST /interaction/UID/login`, the UID handed over in a redirect), allow
//! the consent (`POST /interaction/UID2/confirm`), come back to `callback.html?code=...`, which
//! posts the code and verifier to `/token`; then `/me` and the notes API with the bearer access
//! token: add a note naming the user (its id in the JSON answer and `Location`), open it, delete
//! it; "Sign out" goes to `/session/end` with the id_token_hint, whose page posts an `xsrf`
//! token to `/session/end/confirm` (RP-initiated logout: the session ends, the grant is revoked).
//!
//! Judged from the process's own state (`GET /__state` with the admin secret): notes and note
//! writes per account, and the sessions and grants open per account at the end.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::apps::{self, Account};
use crate::util::browser::Browser;
use crate::util::mutation;
use crate::util::output_dir;
use crate::util::tools::Process;

const APP: &str = "oidc";

/// One provider with its notes API over fresh in-memory state, stopped when dropped.
struct Instance {
    base_url: String,
    admin_secret: String,
    _dir: tempfile::TempDir,
    _server: Process,
}

/// Starts an instance that knows these accounts.
fn start(accounts: &[Account]) -> Instance {
    let started = std::time::Instant::now();
    let modules = apps::installed(APP).join("node_modules");
    let dir = tempfile::tempdir().unwrap();
    let seed: Vec<Value> = accounts
        .iter()
        .map(|a| {
            json!({
                "username": a.username,
                "password": a.password,
                "name": format!("{} Tester", a.username),
            })
        })
        .collect();
    std::fs::write(
        dir.path().join("accounts.json"),
        serde_json::to_string(&seed).unwrap(),
    )
    .unwrap();
    let admin_secret = dir
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let (server, base_url) = apps::spawn_announcing(
        "oidc-provider",
        Command::new("node")
            .arg(script_dir().join("server.mjs"))
            .arg(&modules)
            .arg(dir.path())
            .env("OIDC_ADMIN_SECRET", &admin_secret),
        &dir.path().join("server.log"),
    );
    eprintln!("{APP} started in {:?}", started.elapsed());
    Instance {
        base_url,
        admin_secret,
        _dir: dir,
        _server: server,
    }
}

fn script_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps/oidc")
}

impl Instance {
    /// The provider's and the notes API's state: `notes`, `noteWrites` (method, id, account,
    /// status, text), and the live `sessions`, `grants` and `accessTokens` (each with its
    /// `account`).
    async fn state(&self) -> Value {
        reqwest::Client::new()
            .get(format!("{}/__state", self.base_url))
            .header("x-admin-secret", &self.admin_secret)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// The accounts named in `state[key]` (sessions, grants, notes...), one per element.
fn accounts_in(state: &Value, key: &str) -> Vec<String> {
    state[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["account"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The session as a person clicks it: sign in through the provider, add a note, open it,
/// delete it, sign out.
async fn session(browser: &mut Browser, base_url: &str, account: &Account) {
    let user = &account.username;
    let wait = Duration::from_secs(15);
    browser.goto(&format!("{base_url}/app/")).await;
    browser
        .wait_text("#status", wait, |s| s == "signed out")
        .await;
    browser.click("#sign-in").await;
    browser.wait_text("h1", wait, |s| s == "Sign in").await;
    browser.fill("#login", user).await;
    browser.fill("#password", &account.password).await;
    browser.screenshot("login").await;
    browser.click("#submit-login").await;
    browser.wait_text("h1", wait, |s| s == "Authorize").await;
    browser.screenshot("consent").await;
    browser.click("#allow").await;
    let signed_in = format!("signed in as {user}: 0 note(s)");
    browser.wait_text("#status", wait, |s| s == signed_in).await;

    browser
        .fill("#note-text", &format!("Call the plumber ({user})"))
        .await;
    browser.click("#add").await;
    browser
        .wait_text("#status", wait, |s| {
            s.starts_with("note ") && s.ends_with(" open")
        })
        .await;
    browser.screenshot("note").await;
    browser.click("#delete").await;
    browser.wait_text("#status", wait, |s| s == signed_in).await;

    browser.click("#sign-out").await;
    browser
        .wait_text("h1", wait, |s| s.starts_with("Do you want to sign-out"))
        .await;
    browser.screenshot("logout").await;
    browser.click("button[name=logout][value=yes]").await;
    browser
        .wait_text("#status", wait, |s| s == "signed out")
        .await;
    browser.screenshot("signed-out").await;
}

/// Whether a captured request's path and query is the one looked for.
type Wanted<'a> = &'a dyn Fn(&str) -> bool;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_session_is_recorded_in_chromium() {
    let accounts = Account::numbered(21);
    let app = start(&accounts);
    let out = output_dir("apps_oidc_recorded");
    let capture = apps::record_in_chromium(&out, async |browser| {
        session(browser, &app.base_url, &accounts[0]).await
    })
    .await;

    let state = app.state().await;
    let writes: Vec<(String, String, u64, String)> = state["noteWrites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["method"].as_str().unwrap().to_owned(),
                w["account"].as_str().unwrap().to_owned(),
                w["status"].as_u64().unwrap(),
                w["text"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    crate::eqnice!(
        vec![
            (
                "POST".to_owned(),
                "user01".to_owned(),
                201,
                "Call the plumber (user01)".to_owned()
            ),
            ("DELETE".to_owned(), "user01".to_owned(), 204, String::new()),
        ],
        writes
    );
    assert_eq!(state["notes"], json!([]), "the session deleted its note");
    assert_eq!(state["sessions"], json!([]), "the logout ended the session");
    assert_eq!(state["grants"], json!([]), "the logout revoked the grant");

    let requests = apps::captured_requests(&capture);
    let has = |method: &str, wanted: &dyn Fn(&str) -> bool| {
        requests.iter().any(|(m, p)| m == method && wanted(p))
    };
    let interaction = |p: &str, action: &str| {
        p.strip_prefix("/interaction/")
            .is_some_and(|rest| rest.ends_with(action) && rest.len() > action.len())
    };
    let expected: [(&str, Wanted<'_>, &str); 12] = [
        (
            "GET",
            &|p| p.starts_with("/auth?") && p.contains("code_challenge="),
            "/auth?...",
        ),
        (
            "POST",
            &|p| interaction(p, "/login"),
            "/interaction/UID/login",
        ),
        ("GET", &|p| p.starts_with("/auth/"), "/auth/UID"),
        (
            "POST",
            &|p| interaction(p, "/confirm"),
            "/interaction/UID/confirm",
        ),
        (
            "GET",
            &|p| p.starts_with("/app/callback.html?code="),
            "/app/callback.html?code=...",
        ),
        ("POST", &|p| p == "/token", "/token"),
        ("GET", &|p| p == "/me", "/me"),
        ("POST", &|p| p == "/api/notes", "/api/notes"),
        ("GET", &|p| p.starts_with("/api/notes/"), "/api/notes/ID"),
        ("DELETE", &|p| p.starts_with("/api/notes/"), "/api/notes/ID"),
        (
            "GET",
            &|p| p.starts_with("/session/end?id_token_hint="),
            "/session/end?...",
        ),
        (
            "POST",
            &|p| p == "/session/end/confirm",
            "/session/end/confirm",
        ),
    ];
    for (method, wanted, shown) in expected {
        assert!(has(method, wanted), "no {method} {shown} in {requests:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_replay_is_faithful() {
    let accounts = Account::numbered(21);
    let app = start(&accounts);
    let out = output_dir("apps_oidc_replay");
    let capture = apps::record_in_chromium(&out, async |browser| {
        session(browser, &app.base_url, &accounts[0]).await
    })
    .await;
    let scenario = apps::convert(&capture);
    let users = out.join("users.csv");
    // The provider's login form names its identity field `login`.
    apps::users_csv_with(&accounts[1..], &users, &[("login", |a| a.username.clone())]);
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

    let before = app.state().await["noteWrites"].as_array().unwrap().len();
    let (result, output) = apps::run(&scenario, &users, &app.base_url, 20, 60);
    apps::assert_success("chorus run", &output);
    let state = app.state().await;
    let writes: Vec<Value> = state["noteWrites"].as_array().unwrap()[before..].to_vec();
    let done = |method: &str, status: u64| -> Vec<&Value> {
        writes
            .iter()
            .filter(|w| w["method"] == method && w["status"] == status)
            .collect()
    };
    let created = done("POST", 201);
    let deleted = done("DELETE", 204);
    let mut findings = apps::Findings::default();
    findings.expect_eq(
        "notes created",
        apps::reported_successes(&result, "POST", |name| name.ends_with("/api/notes")),
        created.len() as u64,
    );
    findings.expect_eq(
        "notes deleted",
        apps::reported_successes(&result, "DELETE", |name| name.contains("/api/notes/")),
        deleted.len() as u64,
    );
    let foreign: Vec<&&Value> = created
        .iter()
        .filter(|w| {
            let account = w["account"].as_str().unwrap_or_default();
            !w["text"].as_str().unwrap_or_default().contains(account)
        })
        .collect();
    findings.expect(foreign.is_empty(), || {
        format!(
            "{} of {} notes do not name the account they were created as, e.g. {}",
            foreign.len(),
            created.len(),
            foreign[0]
        )
    });
    let workers: BTreeSet<String> = created
        .iter()
        .map(|w| w["account"].as_str().unwrap_or_default().to_owned())
        .collect();
    let expected: BTreeSet<String> = accounts[1..].iter().map(|a| a.username.clone()).collect();
    findings.expect(workers == expected, || {
        format!("the accounts that created notes: {workers:?}, not user02 to user21")
    });
    findings.expect(state["notes"] == json!([]), || {
        format!("notes left behind: {}", state["notes"])
    });
    for (key, what) in [("sessions", "sessions"), ("grants", "grants")] {
        let open = accounts_in(&state, key);
        findings.expect(open.is_empty(), || {
            format!("{} {what} still open at the end, of {open:?}", open.len())
        });
    }
    findings.assert_none(&format!(
        "check:\n{}\nrun:\n{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&output.stdout)
    ));
}
