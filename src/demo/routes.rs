//! The demo application's HTTP edge: the axum router, body parsing, JSON errors, the request
//! counters behind `/__demo/stats`. Every decision about accounts and games is in `state`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{MatchedPath, Path, Request, State as Shared};
use axum::http::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::pages;
use super::state::{Refusal, Registration, Role, SessionStart, State};

/// The session cookie the app sets at login.
pub const SESSION_COOKIE: &str = "sid";
/// `/__demo/delay/{ms}` waits at most this long.
const MAX_DELAY_MS: u64 = 60_000;

pub(super) struct AppShared {
    pub(super) state: Mutex<State>,
    counters: Mutex<Counters>,
    /// `GET /api/v2/capacity`'s limit: at most this many served at once, each for this long.
    capacity: Mutex<Option<(Arc<tokio::sync::Semaphore>, Duration)>>,
}

#[derive(Default)]
struct Counters {
    requests_total: u64,
    by_endpoint: HashMap<(Method, Arc<str>), HashMap<u16, u64>>,
}

impl AppShared {
    pub(super) fn new(state: State) -> Self {
        Self {
            state: Mutex::new(state),
            counters: Mutex::new(Counters::default()),
            capacity: Mutex::new(None),
        }
    }

    /// From now on `GET /api/v2/capacity` serves at most `concurrent` requests at once, each
    /// for `service`; the others wait their turn (so it serves `concurrent / service` a second
    /// at most).
    pub(super) fn limit_capacity(&self, concurrent: usize, service: Duration) {
        let limit = (
            Arc::new(tokio::sync::Semaphore::new(concurrent.max(1))),
            service,
        );
        *self
            .capacity
            .lock()
            .unwrap_or_else(|poison| poison.into_inner()) = Some(limit);
    }

    /// A panic elsewhere must not take the app down with a poisoned lock.
    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn counters(&self) -> MutexGuard<'_, Counters> {
        self.counters
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

type App = Arc<AppShared>;

pub(super) fn router(shared: App) -> Router {
    Router::new()
        .route("/", get(|| async { Html(pages::LOGIN) }))
        .route("/teacher", get(|| async { Html(pages::TEACHER) }))
        .route("/student", get(|| async { Html(pages::STUDENT) }))
        .route("/api/user/login", post(teacher_login))
        .route("/api/user/logout", post(logout))
        .route("/api/v2/auth/login/glasslab", post(student_login))
        .route("/api/course/create", post(create_course))
        .route("/api/course", get(list_courses))
        .route("/api/code/valid", post(validate_code))
        .route("/api/user/register", post(register))
        .route("/api/v2/lms/courses", get(student_courses))
        .route("/api/v2/data/config/{game_id}", get(game_config))
        .route("/api/v2/data/game/{game_id}/playInfo", get(play_info))
        .route("/api/v2/data/session/start", post(start_session))
        .route("/api/v2/data/events", post(post_events))
        .route("/api/v2/data/session/end", post(end_session))
        .route("/api/v2/data/game/{game_id}", post(save_game))
        .route(
            "/api/v2/data/game/{game_id}/totalTimePlayed",
            post(total_time_played),
        )
        .route("/api/v2/capacity", get(capacity))
        .route("/__demo/stats", get(demo_stats))
        .route("/__demo/delay/{ms}", get(delay))
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            count_request,
        ))
        .with_state(shared)
}

/// Counts every request outside `/__demo/` by route and status, after it was answered.
async fn count_request(Shared(app): Shared<App>, request: Request, next: Next) -> Response {
    let internal = request.uri().path().starts_with("/__demo/");
    let method = request.method().clone();
    let route: Arc<str> = match request.extensions().get::<MatchedPath>() {
        Some(path) => Arc::from(path.as_str()),
        None => Arc::from("(unknown route)"),
    };
    let response = next.run(request).await;
    if !internal {
        let status = response.status().as_u16();
        let mut counters = app.counters();
        counters.requests_total += 1;
        *counters
            .by_endpoint
            .entry((method, route))
            .or_default()
            .entry(status)
            .or_default() += 1;
    }
    response
}

fn error(status: u16, message: impl Into<String>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error(self.status, self.message)
    }
}

type Answer = Result<Response, Refusal>;

fn ok(body: Value) -> Answer {
    Ok(axum::Json(body).into_response())
}

/// Parses a JSON body, naming the field that is missing or of the wrong type.
fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Refusal> {
    if body.is_empty() {
        return Err(Refusal {
            status: 400,
            message: "the request has no body; expected JSON".to_owned(),
        });
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let message = if inner.is_syntax() || inner.is_eof() {
            format!("malformed JSON: {inner}")
        } else if path == "." {
            format!("unexpected JSON: {inner}")
        } else {
            format!("field `{path}`: {inner}")
        };
        Refusal {
            status: 400,
            message,
        }
    })
}

fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == SESSION_COOKIE).then_some(value)
        })
}

#[derive(Debug, Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

async fn teacher_login(Shared(app): Shared<App>, body: Bytes) -> Answer {
    login(&app, &body, Role::Teacher)
}

async fn student_login(Shared(app): Shared<App>, body: Bytes) -> Answer {
    login(&app, &body, Role::Student)
}

fn login(app: &AppShared, body: &[u8], role: Role) -> Answer {
    let credentials: Credentials = parse_json(body)?;
    let login = app
        .state()
        .login(&credentials.username, &credentials.password, role)?;
    let mut response = axum::Json(login.body).into_response();
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax",
        login.session_id
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    Ok(response)
}

async fn logout(Shared(app): Shared<App>, headers: HeaderMap) -> Answer {
    if let Some(sid) = session_id(&headers) {
        app.state().logout(sid);
    }
    let mut response = axum::Json(json!({ "status": "ok" })).into_response();
    let expired = format!("{SESSION_COOKIE}=; Path=/; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&expired) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    Ok(response)
}

#[derive(Deserialize)]
struct NewCourse {
    title: String,
    #[serde(default)]
    grade: Value,
}

async fn create_course(Shared(app): Shared<App>, headers: HeaderMap, body: Bytes) -> Answer {
    let course: NewCourse = parse_json(&body)?;
    let grade = match course.grade {
        Value::String(text) => text,
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let created = app
        .state()
        .create_course(session_id(&headers), &course.title, &grade)?;
    ok(
        json!({ "id": created.id, "code": created.code, "title": created.title, "grade": created.grade }),
    )
}

async fn list_courses(Shared(app): Shared<App>, headers: HeaderMap) -> Answer {
    let courses = app.state().courses_of_teacher(session_id(&headers))?;
    ok(serde_json::to_value(courses).unwrap_or_default())
}

#[derive(Deserialize)]
struct Code {
    code: String,
}

async fn validate_code(Shared(app): Shared<App>, body: Bytes) -> Answer {
    let code: Code = parse_json(&body)?;
    let id = app.state().validate_code(&code.code)?;
    ok(json!({ "valid": true, "associatedData": { "id": id } }))
}

async fn register(Shared(app): Shared<App>, body: Bytes) -> Answer {
    let form: Registration = parse_json(&body)?;
    ok(app.state().register(&form)?)
}

async fn student_courses(Shared(app): Shared<App>, headers: HeaderMap) -> Answer {
    ok(app.state().student_courses(session_id(&headers))?)
}

async fn game_config(
    Shared(app): Shared<App>,
    headers: HeaderMap,
    Path(game_id): Path<String>,
) -> Answer {
    ok(app.state().game_config(session_id(&headers), &game_id)?)
}

async fn play_info(
    Shared(app): Shared<App>,
    headers: HeaderMap,
    Path(game_id): Path<String>,
) -> Answer {
    ok(app.state().play_info(session_id(&headers), &game_id)?)
}

async fn start_session(Shared(app): Shared<App>, headers: HeaderMap, body: Bytes) -> Answer {
    let start: SessionStart = parse_json(&body)?;
    ok(app
        .state()
        .start_game_session(session_id(&headers), &start)?)
}

async fn post_events(Shared(app): Shared<App>, headers: HeaderMap, body: Bytes) -> Answer {
    let form = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    let ids = if form {
        event_ids_from_form(&body)?
    } else {
        event_ids_from_json(&body)?
    };
    ok(app.state().post_events(session_id(&headers), &ids)?)
}

/// `gameSessionId=…&events=[…]`: each event in the JSON array `events` belongs to the form's
/// `gameSessionId` unless it names its own.
fn event_ids_from_form(body: &[u8]) -> Result<Vec<String>, Refusal> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    let default = field("gameSessionId");
    let Some(events) = field("events") else {
        return match default {
            Some(id) => Ok(vec![id]),
            None => Err(Refusal {
                status: 400,
                message: "form field `gameSessionId` is missing".to_owned(),
            }),
        };
    };
    let events: Value = serde_json::from_str(&events).map_err(|err| Refusal {
        status: 400,
        message: format!("form field `events`: malformed JSON: {err}"),
    })?;
    ids_of_events(&events, default.as_deref())
}

/// A JSON array of events, or `{"gameSessionId": …, "events": […]}`.
fn event_ids_from_json(body: &[u8]) -> Result<Vec<String>, Refusal> {
    let value: Value = parse_json(body)?;
    match &value {
        Value::Object(object) => {
            let default = object.get("gameSessionId").and_then(Value::as_str);
            match object.get("events") {
                Some(events) => ids_of_events(events, default),
                None => ids_of_events(&Value::Array(vec![value.clone()]), None),
            }
        }
        _ => ids_of_events(&value, None),
    }
}

fn ids_of_events(events: &Value, default: Option<&str>) -> Result<Vec<String>, Refusal> {
    let Value::Array(events) = events else {
        return Err(Refusal {
            status: 400,
            message: "expected a JSON array of events".to_owned(),
        });
    };
    events
        .iter()
        .enumerate()
        .map(|(index, event)| {
            match event
                .get("gameSessionId")
                .map(|id| id.as_str())
                .unwrap_or(default)
            {
                Some(id) => Ok(id.to_owned()),
                None => Err(Refusal {
                    status: 400,
                    message: format!(
                        "event {index}: field `gameSessionId` is missing or not a string"
                    ),
                }),
            }
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionEnd {
    game_session_id: String,
}

async fn end_session(Shared(app): Shared<App>, headers: HeaderMap, body: Bytes) -> Answer {
    let end: SessionEnd = parse_json(&body)?;
    ok(app
        .state()
        .end_game_session(session_id(&headers), &end.game_session_id)?)
}

async fn save_game(
    Shared(app): Shared<App>,
    headers: HeaderMap,
    Path(game_id): Path<String>,
    body: Bytes,
) -> Answer {
    // The save itself is opaque to the platform, but it must be JSON.
    let _: Value = parse_json(&body)?;
    ok(app.state().save_game(session_id(&headers), &game_id)?)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TimePlayed {
    set_time: u64,
}

async fn total_time_played(
    Shared(app): Shared<App>,
    headers: HeaderMap,
    Path(game_id): Path<String>,
    body: Bytes,
) -> Answer {
    let time: TimePlayed = parse_json(&body)?;
    ok(app
        .state()
        .add_time_played(session_id(&headers), &game_id, time.set_time)?)
}

async fn demo_stats(Shared(app): Shared<App>) -> Response {
    let (requests_total, endpoints) = {
        let counters = app.counters();
        let endpoints: serde_json::Map<String, Value> = counters
            .by_endpoint
            .iter()
            .map(|((method, route), statuses)| {
                let statuses: serde_json::Map<String, Value> = statuses
                    .iter()
                    .map(|(status, n)| (status.to_string(), json!(n)))
                    .collect();
                (format!("{method} {route}"), Value::Object(statuses))
            })
            .collect();
        (counters.requests_total, endpoints)
    };
    let (live_sessions, game_sessions) = {
        let state = app.state();
        (state.live_sessions(), state.game_sessions())
    };
    axum::Json(json!({
        "requests_total": requests_total,
        "endpoints": endpoints,
        "live_sessions": live_sessions,
        "game_sessions": game_sessions,
    }))
    .into_response()
}

/// A server with a known capacity (see [`AppShared::limit_capacity`]); without a limit it
/// answers at once.
async fn capacity(Shared(app): Shared<App>) -> Response {
    let limit = app
        .capacity
        .lock()
        .unwrap_or_else(|poison| poison.into_inner())
        .clone();
    if let Some((permits, service)) = limit {
        // The semaphore is never closed.
        let Ok(_permit) = permits.acquire().await else {
            return error(503, "the capacity limit is closed");
        };
        tokio::time::sleep(service).await;
    }
    axum::Json(json!({ "served": true })).into_response()
}

async fn delay(Path(ms): Path<String>) -> Response {
    match ms.parse::<u64>() {
        Ok(ms) if ms <= MAX_DELAY_MS => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            axum::Json(json!({ "delayed_ms": ms })).into_response()
        }
        _ => error(
            400,
            format!("expected milliseconds from 0 to {MAX_DELAY_MS}, found {ms:?}"),
        ),
    }
}

async fn unknown_route(method: Method, uri: axum::http::Uri) -> Response {
    error(404, format!("no route for {method} {}", uri.path()))
}

async fn wrong_method(method: Method, uri: axum::http::Uri) -> Response {
    error(405, format!("{method} is not allowed on {}", uri.path()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_name_the_field() {
        let err = parse_json::<Credentials>(br#"{"username": "a"}"#).unwrap_err();
        assert_eq!(
            err.message,
            "unexpected JSON: missing field `password` at line 1 column 17"
        );
        let err = parse_json::<Credentials>(br#"{"username": 5, "password": "x"}"#).unwrap_err();
        assert_eq!(
            err.message,
            "field `username`: invalid type: integer `5`, expected a string at line 1 column 14"
        );
        let err = parse_json::<Credentials>(b"{nope").unwrap_err();
        assert!(
            err.message
                .starts_with("malformed JSON: key must be a string"),
            "{}",
            err.message
        );
    }

    #[test]
    fn events_from_form_and_json() {
        assert_eq!(
            event_ids_from_form(
                b"gameSessionId=g1&events=%5B%7B%7D%2C%7B%22gameSessionId%22%3A%22g2%22%7D%5D"
            )
            .unwrap(),
            vec!["g1", "g2"]
        );
        assert_eq!(
            event_ids_from_json(br#"[{"gameSessionId":"a"},{"gameSessionId":"b"}]"#).unwrap(),
            vec!["a", "b"]
        );
        assert_eq!(
            event_ids_from_json(br#"{"gameSessionId":"a","events":[{},{}]}"#).unwrap(),
            vec!["a", "a"]
        );
        let err = event_ids_from_json(br#"[{"name":"x"}]"#).unwrap_err();
        assert_eq!(
            err.message,
            "event 0: field `gameSessionId` is missing or not a string"
        );
    }

    #[test]
    fn session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_static("a=1; sid=abc; b=2"));
        assert_eq!(session_id(&headers), Some("abc"));
    }
}
