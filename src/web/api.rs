//! The HTTP API of the page (documented in docs/web-api.md): control endpoints, the stats and
//! state reads, report downloads, the server-sent event stream, Locust's form endpoints, and
//! optional basic authentication, all behind the [`guard`](super::guard) (Host names,
//! cross-site refusals, the page's token) and sent with headers that keep the page out of
//! other sites' frames. Refusals become `{"error": ...}` with a 4xx status here.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_SECURITY_POLICY, CONTENT_TYPE,
    WWW_AUTHENTICATE, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
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
use super::guard::{self, AllowedHosts, TOKEN_FIELD, TOKEN_HEADER};
use super::runs::{Refusal, Runs};
use crate::stats::report;

/// What every handler sees: the runs, and the server's stop signal (which ends event streams,
/// or a graceful shutdown would wait for them forever).
#[derive(Clone)]
pub(super) struct AppState {
    runs: Arc<Runs>,
    stop: CancellationToken,
    /// The page's token: Locust's form endpoints need it (docs/web-api.md).
    token: Arc<str>,
    /// The page with its token in it.
    index: Arc<str>,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        (status, axum::Json(json!({ "error": self.message }))).into_response()
    }
}

/// Who may use the page: the basic-auth credentials, if any, and the `Host` names it answers.
pub(super) struct Access {
    pub(super) auth: Option<(String, String)>,
    pub(super) hosts: AllowedHosts,
}

pub(super) fn router(runs: Arc<Runs>, access: Access, stop: CancellationToken) -> Router {
    let token: Arc<str> = guard::new_token().into();
    let index: Arc<str> = assets::INDEX_HTML
        .replace("{{chorus_token}}", &token)
        .into();
    let app = AppState {
        runs,
        stop,
        token: token.clone(),
        index,
    };
    let router = Router::new()
        .route(
            "/",
            get(
                |State(AppState { index, .. }): State<AppState>| async move {
                    (
                        [
                            (CONTENT_TYPE, "text/html; charset=utf-8"),
                            (CACHE_CONTROL, "no-store"),
                        ],
                        index.to_string(),
                    )
                        .into_response()
                },
            ),
        )
        .route(
            "/app.js",
            get(|| async { page(assets::APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/system.js",
            get(|| async { page(assets::SYSTEM_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/style.css",
            get(|| async { page(assets::STYLE_CSS, "text/css; charset=utf-8") }),
        )
        .route("/api/state", get(state))
        .route("/api/token", get(token_json))
        .route("/api/stats", get(stats))
        .route("/api/stats/phases", get(phases))
        .route("/api/start", post(start))
        .route("/api/users", post(users))
        .route("/api/stop", post(stop_run))
        .route("/api/reset", post(reset))
        .route("/api/stream", get(stream))
        .route("/api/report/{file}", get(report_file))
        .route("/metrics", get(metrics))
        // Locust's endpoints, for scripts written against it.
        .route("/swarm", post(swarm))
        .route("/stop", get(locust_stop))
        .route("/stats/reset", get(locust_reset))
        .fallback(|| async {
            Refusal {
                status: 404,
                message: "no such page or API route".to_owned(),
            }
        })
        .with_state(app);
    let router = match access.auth {
        Some(credentials) => {
            let expected = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", credentials.0, credentials.1));
            router.layer(middleware::from_fn(move |request: Request, next: Next| {
                let expected = expected.clone();
                async move { basic_auth(&expected, request, next).await }
            }))
        }
        None => router,
    };
    let hosts = Arc::new(access.hosts);
    router
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            let hosts = hosts.clone();
            let token = token.clone();
            async move {
                match guard::check(
                    &hosts,
                    &token,
                    request.method(),
                    request.uri(),
                    request.headers(),
                ) {
                    Ok(()) => next.run(request).await,
                    Err(refused) => Refusal {
                        status: refused.status,
                        message: refused.message,
                    }
                    .into_response(),
                }
            }
        }))
        .layer(middleware::map_response(not_in_frames))
}

/// Every answer: never shown inside another site's frame (clickjacking), never read by
/// another site's page, types not guessed.
async fn not_in_frames(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    );
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// Locust's form endpoints change a run from a form or a plain GET, which any web site can
/// send: they need the page's token, in the form, the query string or the header.
fn token_given(
    headers: &HeaderMap,
    pairs: &[(String, String)],
    token: &str,
) -> Result<(), Refusal> {
    let given = headers
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            pairs
                .iter()
                .find(|(name, _)| name == TOKEN_FIELD)
                .map(|(_, value)| value.as_str())
        });
    match given {
        Some(given) if guard::same_secret(given, token) => Ok(()),
        Some(_) => Err(Refusal {
            status: 403,
            message: "the token is not this page's: reload the page (chorus was restarted), or \
                      read the token from GET /api/token"
                .to_owned(),
        }),
        None => Err(Refusal {
            status: 403,
            message: format!(
                "Locust's form endpoints need the page's token (so that no other web site can \
                 use them): read it from GET /api/token and send it as the {TOKEN_FIELD} field \
                 or the {TOKEN_HEADER} header, or use the JSON API (docs/web-api.md)"
            ),
        }),
    }
}

async fn token_json(State(AppState { token, .. }): State<AppState>) -> Response {
    (
        [(CACHE_CONTROL, "no-store")],
        axum::Json(json!({ "token": &*token })),
    )
        .into_response()
}

/// Whether an `Authorization` value carries the Basic credentials `expected` (base64). The
/// scheme's name is case-insensitive (RFC 9110 §11.1): `basic` and `BASIC` are Basic too.
fn basic_credentials_match(given: &str, expected: &str) -> bool {
    let given = given.trim();
    match given.split_once(' ') {
        Some((scheme, token)) => {
            scheme.eq_ignore_ascii_case("Basic") && token.trim_start() == expected
        }
        None => false,
    }
}

/// `expected` is the base64 of `USER:PASS`.
async fn basic_auth(expected: &str, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if given.is_some_and(|given| basic_credentials_match(given, expected)) {
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

/// chorus's own numbers for a Prometheus server to scrape (docs/web-api.md).
async fn metrics(State(AppState { runs, .. }): State<AppState>) -> Response {
    (
        [
            (CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8"),
            (CACHE_CONTROL, "no-store"),
        ],
        runs.metrics_text(),
    )
        .into_response()
}

async fn state(State(AppState { runs, .. }): State<AppState>) -> Response {
    axum::Json(runs.state_json()).into_response()
}

async fn stats(State(AppState { runs, .. }): State<AppState>) -> Response {
    axum::Json(runs.full_json()).into_response()
}

/// `GET /api/stats/phases?method=GET&name=/a`.
async fn phases(
    State(AppState { runs, .. }): State<AppState>,
    uri: axum::http::Uri,
) -> Result<Response, Refusal> {
    let pairs = query_pairs(&uri);
    let get = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let (Some(method), Some(name)) = (get("method"), get("name")) else {
        return Err(Refusal::bad_request(
            "give the row's method and name: /api/stats/phases?method=GET&name=/a",
        ));
    };
    Ok(axum::Json(runs.phases_json(method, name)?).into_response())
}

async fn start(
    State(AppState { runs, .. }): State<AppState>,
    body: Bytes,
) -> Result<Response, Refusal> {
    let request = form::start_request(&json_body(&body)?).map_err(Refusal::bad_request)?;
    Ok(axum::Json(runs.start(request)?).into_response())
}

async fn swarm(
    State(AppState { runs, token, .. }): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    token_given(&headers, &pairs, &token)?;
    let request =
        form::start_request(&form::from_locust_form(&pairs)).map_err(Refusal::bad_request)?;
    runs.start(request)?;
    Ok(axum::Json(json!({ "success": true, "message": "Swarming started" })).into_response())
}

async fn users(
    State(AppState { runs, .. }): State<AppState>,
    body: Bytes,
) -> Result<Response, Refusal> {
    let change = form::users_change(&json_body(&body)?).map_err(Refusal::bad_request)?;
    Ok(axum::Json(runs.set_users(&change)?).into_response())
}

async fn stop_run(State(AppState { runs, .. }): State<AppState>) -> Result<Response, Refusal> {
    Ok(axum::Json(runs.stop()?).into_response())
}

async fn reset(State(AppState { runs, .. }): State<AppState>) -> Response {
    axum::Json(runs.reset()).into_response()
}

/// The query string's pairs (for the token of Locust's `GET /stop` and `GET /stats/reset`).
fn query_pairs(uri: &axum::http::Uri) -> Vec<(String, String)> {
    url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

async fn locust_stop(
    State(AppState { runs, token, .. }): State<AppState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    token_given(&headers, &query_pairs(&uri), &token)?;
    Ok(axum::Json(runs.stop()?).into_response())
}

async fn locust_reset(
    State(AppState { runs, token, .. }): State<AppState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    token_given(&headers, &query_pairs(&uri), &token)?;
    Ok(axum::Json(runs.reset()).into_response())
}

async fn report_file(
    State(AppState { runs, .. }): State<AppState>,
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
    State(AppState { runs, stop, .. }): State<AppState>,
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

#[cfg(test)]
mod tests {
    use super::basic_credentials_match;

    #[test]
    fn the_basic_scheme_is_matched_in_any_case_and_the_credentials_exactly() {
        for given in ["Basic YTpi", "basic YTpi", "BASIC  YTpi", " Basic YTpi "] {
            assert!(basic_credentials_match(given, "YTpi"), "{given:?}");
        }
        for given in [
            "Basic YTpj",
            "Bearer YTpi",
            "YTpi",
            "Basic",
            "BasicYTpi",
            "Basic ytpi",
        ] {
            assert!(!basic_credentials_match(given, "YTpi"), "{given:?}");
        }
    }
}
