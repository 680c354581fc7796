//! The HTTP API of the page (documented in docs/web-api.md): control endpoints, the stats and
//! state reads, report downloads, the server-sent event stream, Locust's form endpoints, and
//! optional basic authentication. Refusals become `{"error": ...}` with a 4xx status here.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, WWW_AUTHENTICATE,
};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use futures_util::Stream;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::assets;
use super::form;
use super::runs::{Refusal, Runs};
use crate::stats::report;

/// What every handler sees: the runs, and the server's stop signal (which ends event streams,
/// or a graceful shutdown would wait for them forever).
#[derive(Clone)]
pub(super) struct AppState {
    runs: Arc<Runs>,
    stop: CancellationToken,
}

type Shared = AppState;

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        (status, axum::Json(json!({ "error": self.message }))).into_response()
    }
}

pub(super) fn router(
    runs: Arc<Runs>,
    auth: Option<(String, String)>,
    stop: CancellationToken,
) -> Router {
    let router = Router::new()
        .route(
            "/",
            get(|| async { page(assets::INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/app.js",
            get(|| async { page(assets::APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/style.css",
            get(|| async { page(assets::STYLE_CSS, "text/css; charset=utf-8") }),
        )
        .route("/api/state", get(state))
        .route("/api/stats", get(stats))
        .route("/api/start", post(start))
        .route("/api/users", post(users))
        .route("/api/stop", post(stop_run))
        .route("/api/reset", post(reset))
        .route("/api/stream", get(stream))
        .route("/api/report/{file}", get(report_file))
        // Locust's endpoints, for scripts written against it.
        .route("/swarm", post(swarm))
        .route("/stop", get(stop_run))
        .route("/stats/reset", get(reset))
        .fallback(|| async {
            Refusal {
                status: 404,
                message: "no such page or API route".to_owned(),
            }
        })
        .with_state(AppState { runs, stop });
    match auth {
        Some(credentials) => {
            let expected = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", credentials.0, credentials.1))
            );
            router.layer(middleware::from_fn(move |request: Request, next: Next| {
                let expected = expected.clone();
                async move { basic_auth(&expected, request, next).await }
            }))
        }
        None => router,
    }
}

async fn basic_auth(expected: &str, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if given == Some(expected) {
        return next.run(request).await;
    }
    let mut response = Refusal {
        status: 401,
        message: "this page needs the --web-auth user and password".to_owned(),
    }
    .into_response();
    response.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"chorus\""),
    );
    response
}

fn page(body: &'static str, content_type: &'static str) -> Response {
    (
        [(CONTENT_TYPE, content_type), (CACHE_CONTROL, "no-cache")],
        body,
    )
        .into_response()
}

/// The JSON body, or a refusal saying it is not JSON.
fn json_body(body: &Bytes) -> Result<Value, Refusal> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body)
        .map_err(|err| Refusal::bad_request(format!("the request body is not JSON: {err}")))
}

async fn state(State(AppState { runs, .. }): State<Shared>) -> Response {
    axum::Json(runs.state_json()).into_response()
}

async fn stats(State(AppState { runs, .. }): State<Shared>) -> Response {
    axum::Json(runs.full_json()).into_response()
}

async fn start(
    State(AppState { runs, .. }): State<Shared>,
    body: Bytes,
) -> Result<Response, Refusal> {
    let request = form::start_request(&json_body(&body)?).map_err(Refusal::bad_request)?;
    Ok(axum::Json(runs.start(request)?).into_response())
}

async fn swarm(
    State(AppState { runs, .. }): State<Shared>,
    body: Bytes,
) -> Result<Response, Refusal> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let request =
        form::start_request(&form::from_locust_form(&pairs)).map_err(Refusal::bad_request)?;
    runs.start(request)?;
    Ok(axum::Json(json!({ "success": true, "message": "Swarming started" })).into_response())
}

async fn users(
    State(AppState { runs, .. }): State<Shared>,
    body: Bytes,
) -> Result<Response, Refusal> {
    let change = form::users_change(&json_body(&body)?).map_err(Refusal::bad_request)?;
    Ok(axum::Json(runs.set_users(&change)?).into_response())
}

async fn stop_run(State(AppState { runs, .. }): State<Shared>) -> Result<Response, Refusal> {
    Ok(axum::Json(runs.stop()?).into_response())
}

async fn reset(State(AppState { runs, .. }): State<Shared>) -> Response {
    axum::Json(runs.reset()).into_response()
}

async fn report_file(
    State(AppState { runs, .. }): State<Shared>,
    axum::extract::Path(file): axum::extract::Path<String>,
) -> Result<Response, Refusal> {
    let result = runs.result_so_far();
    let (body, content_type) = match file.as_str() {
        "stats.csv" => (report::csv::stats_csv(&result), "text/csv; charset=utf-8"),
        "stats_history.csv" => (
            report::csv::stats_history_csv(&result),
            "text/csv; charset=utf-8",
        ),
        "failures.csv" => (
            report::csv::failures_csv(&result),
            "text/csv; charset=utf-8",
        ),
        "exceptions.csv" => (
            report::csv::exceptions_csv(&result),
            "text/csv; charset=utf-8",
        ),
        "result.json" => (report::json::to_string(&result), "application/json"),
        "report.html" => (report::html::render(&result), "text/html; charset=utf-8"),
        _ => {
            return Err(Refusal {
                status: 404,
                message: format!(
                    "no report {file:?}: stats.csv, stats_history.csv, failures.csv, exceptions.csv, result.json or report.html"
                ),
            });
        }
    };
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"chorus_{file}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    Ok((
        [
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

/// Server-sent events: a `full` event first (the whole state, so a reload shows the run in
/// progress), then an `update` each second; a page that falls behind gets a new `full`.
async fn stream(
    State(AppState { runs, stop }): State<Shared>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = runs.subscribe();
    let first = Event::default()
        .event("full")
        .data(runs.full_json().to_string());
    let start = (Some(first), receiver, runs, stop);
    let events =
        futures_util::stream::unfold(start, |(first, mut receiver, runs, stop)| async move {
            if let Some(first) = first {
                return Some((Ok(first), (None, receiver, runs, stop)));
            }
            let received = tokio::select! {
                received = receiver.recv() => received,
                () = stop.cancelled() => return None,
            };
            let event = match received {
                Ok(event) => Event::default().event(event.name).data(event.data.as_str()),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Event::default()
                    .event("full")
                    .data(runs.full_json().to_string()),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            };
            Some((Ok(event), (None, receiver, runs, stop)))
        });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
