//! `relogin:` against a server whose sessions end after a few requests: the user logs in
//! again and sends the refused request once more, so every write lands, as its user; judged
//! by the server's own rows and login count.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chorus::stats::FailureKind;

use super::{failures_of, load_yaml, requests_by_name, run_rounds};
use crate::util::output_dir;

/// How a server says a session is over.
#[derive(Clone, Copy)]
enum Ended {
    Status401,
    RedirectToLogin,
}

struct App {
    /// Requests a session serves before it ends, by user.
    serves: HashMap<&'static str, u32>,
    ended: Ended,
    seen: Mutex<Seen>,
}

#[derive(Default, Debug)]
struct Seen {
    /// sid -> (user, requests served).
    sessions: HashMap<String, (String, u32)>,
    logins: BTreeMap<String, u32>,
    /// (owner, title) of every item created.
    items: Vec<(String, String)>,
    /// Answers that said the session was over.
    ended: u32,
    logouts: u32,
    requests: u32,
}

#[derive(serde::Deserialize)]
struct Login {
    username: String,
    password: String,
}

#[derive(serde::Deserialize)]
struct Item {
    title: String,
}

impl App {
    /// The user of a live session that may serve one more request.
    fn user(&self, headers: &HeaderMap, seen: &mut Seen) -> Option<String> {
        let sid = headers
            .get(header::COOKIE)?
            .to_str()
            .ok()?
            .split("; ")
            .find_map(|cookie| cookie.strip_prefix("sid="))?
            .to_owned();
        let (user, served) = seen.sessions.get_mut(&sid)?;
        if *served >= self.serves[user.as_str()] {
            seen.sessions.remove(&sid);
            return None;
        }
        *served += 1;
        Some(user.clone())
    }

    fn over(&self, seen: &mut Seen, uri: &Uri) -> Response {
        seen.ended += 1;
        match self.ended {
            Ended::Status401 => (StatusCode::UNAUTHORIZED, "log in again").into_response(),
            Ended::RedirectToLogin => (
                StatusCode::FOUND,
                [(header::LOCATION, format!("/login?next={}", uri.path()))],
            )
                .into_response(),
        }
    }
}

async fn login(State(app): State<Arc<App>>, Form(form): Form<Login>) -> Response {
    let mut seen = app.seen.lock().unwrap();
    seen.requests += 1;
    if form.password != format!("pw-{}", form.username) {
        return (StatusCode::UNAUTHORIZED, "wrong password").into_response();
    }
    *seen.logins.entry(form.username.clone()).or_default() += 1;
    let sid = format!("s{}", rand::random::<u64>());
    seen.sessions.insert(sid.clone(), (form.username, 0));
    (
        [(header::SET_COOKIE, format!("sid={sid}; Path=/"))],
        "welcome",
    )
        .into_response()
}

/// Ends the session and sends the browser to the login page (as most applications do).
async fn logout(State(app): State<Arc<App>>) -> Response {
    let mut seen = app.seen.lock().unwrap();
    seen.requests += 1;
    seen.logouts += 1;
    (StatusCode::FOUND, [(header::LOCATION, "/login")]).into_response()
}

async fn login_page(State(app): State<Arc<App>>) -> &'static str {
    app.seen.lock().unwrap().requests += 1;
    "<form>log in</form>"
}

async fn list(State(app): State<Arc<App>>, uri: Uri, headers: HeaderMap) -> Response {
    let mut seen = app.seen.lock().unwrap();
    seen.requests += 1;
    match app.user(&headers, &mut seen) {
        Some(user) => format!("items of {user}").into_response(),
        None => app.over(&mut seen, &uri),
    }
}

async fn create(
    State(app): State<Arc<App>>,
    uri: Uri,
    headers: HeaderMap,
    Form(item): Form<Item>,
) -> Response {
    let mut seen = app.seen.lock().unwrap();
    seen.requests += 1;
    match app.user(&headers, &mut seen) {
        Some(user) => {
            seen.items.push((user, item.title));
            StatusCode::CREATED.into_response()
        }
        None => app.over(&mut seen, &uri),
    }
}

async fn start(ended: Ended, serves: &[(&'static str, u32)]) -> (SocketAddr, Arc<App>) {
    let app = Arc::new(App {
        serves: serves.iter().copied().collect(),
        ended,
        seen: Mutex::default(),
    });
    let router = axum::Router::new()
        .route("/login", post(login).get(login_page))
        .route("/items", get(list).post(create))
        .route("/logout", post(logout))
        .with_state(app.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (addr, app)
}

fn scenario_text(addr: SocketAddr, relogin: &str) -> String {
    format!(
        r#"host: http://{addr}
data:
  users: {{ file: users.csv, as: user }}
relogin:
{relogin}
on_start:
  - post: /login
    form: {{ username: "{{{{ user.username }}}}", password: "{{{{ user.password }}}}" }}
flows:
  - name: work
    steps:
      - get: /items
      - post: /items
        form: {{ title: "{{{{ user.username }}}} {{{{ iteration }}}}" }}
on_stop:
  - post: /logout
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_sessions_log_in_again_and_every_write_lands_as_its_user() {
    for (ended, relogin) in [
        (Ended::Status401, "  status: [401]"),
        (Ended::RedirectToLogin, "  redirect: /login"),
    ] {
        let dir = output_dir("relogin_expiring_sessions");
        std::fs::write(
            dir.join("users.csv"),
            "username,password\nalice,pw-alice\nbob,pw-bob\n",
        )
        .unwrap();
        let (addr, app) = start(ended, &[("alice", 3), ("bob", 3)]).await;
        let scenario = load_yaml(&dir, &scenario_text(addr, relogin));
        let result = run_rounds(scenario, 2, 5).await;
        let seen = app.seen.lock().unwrap();
        for user in ["alice", "bob"] {
            let mut titles: Vec<&str> = seen
                .items
                .iter()
                .filter(|(owner, _)| owner == user)
                .map(|(_, title)| title.as_str())
                .collect();
            titles.sort();
            let expected: Vec<String> = (0..5).map(|i| format!("{user} {i}")).collect();
            assert_eq!(titles, expected, "{relogin}: {seen:#?}");
            // 10 requests, 3 per session: the sessions end 3 times.
            assert_eq!(seen.logins[user], 4, "{relogin}: {seen:#?}");
        }
        assert_eq!(seen.items.len(), 10, "{relogin}");
        assert_eq!(seen.ended, 6, "{relogin}");
        assert_eq!(
            seen.logouts, 2,
            "{relogin}: on_stop's redirect to the login page is no session's end"
        );
        assert_eq!(result.total.failures, 0, "{relogin}: {:#?}", result.entries);
        assert_eq!(
            requests_by_name(&result)["/login"],
            8,
            "{relogin}: the logins again are counted"
        );
        assert_eq!(result.total.requests, u64::from(seen.requests), "{relogin}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_ends_again_at_once_is_a_failure_not_a_loop() {
    let dir = output_dir("relogin_ends_again");
    std::fs::write(dir.join("users.csv"), "username,password\ncarol,pw-carol\n").unwrap();
    let (addr, app) = start(Ended::Status401, &[("carol", 0)]).await;
    let scenario = load_yaml(&dir, &scenario_text(addr, "  status: 401"));
    let result = run_rounds(scenario, 1, 1).await;
    let seen = app.seen.lock().unwrap();
    assert_eq!(
        seen.logins["carol"], 3,
        "on_start, then once per refused request"
    );
    assert!(seen.items.is_empty());
    assert_eq!(result.total.failures, 2);
    let failures = failures_of(&result, "/items");
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert_eq!(failures[0].0, FailureKind::Status(401));
    assert!(
        failures[0].1.contains("the session ended again"),
        "{failures:?}"
    );
}
