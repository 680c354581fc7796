//! An axum server on 127.0.0.1:0 that keeps every request it got: method, path and query,
//! headers, and a `multipart/form-data` body as axum's `Multipart` (the multer parser) read
//! it, part by part. Answers `200 ok`, or `400` with the parser's complaint.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{FromRequest as _, Multipart, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// One part as the server parsed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// One request as the server got it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub target: String,
    pub headers: HeaderMap,
    /// `None` when the body was not `multipart/form-data`.
    pub parts: Option<Vec<Part>>,
}

pub type Log = Arc<Mutex<Vec<Received>>>;

pub async fn start() -> (SocketAddr, Log) {
    let log: Log = Arc::default();
    let kept = log.clone();
    let app = axum::Router::new().fallback(move |request: Request| {
        let kept = kept.clone();
        async move { keep(request, &kept).await }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, log)
}

async fn keep(request: Request, log: &Log) -> Response {
    let method = request.method().to_string();
    let target = request
        .uri()
        .path_and_query()
        .map_or("/".to_owned(), |p| p.as_str().to_owned());
    let headers = request.headers().clone();
    let multipart = headers
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("multipart/form-data"));
    let parts = if multipart {
        match read_parts(request).await {
            Ok(parts) => Some(parts),
            Err(err) => return (StatusCode::BAD_REQUEST, err).into_response(),
        }
    } else {
        None
    };
    log.lock().unwrap().push(Received {
        method,
        target,
        headers,
        parts,
    });
    "ok".into_response()
}

async fn read_parts(request: Request) -> Result<Vec<Part>, String> {
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|err| err.body_text())?;
    let mut parts = Vec::new();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|err| err.body_text())?
    {
        let name = field.name().unwrap_or_default().to_owned();
        let file_name = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(str::to_owned);
        let bytes = field.bytes().await.map_err(|err| err.body_text())?.to_vec();
        parts.push(Part {
            name,
            file_name,
            content_type,
            bytes,
        });
    }
    Ok(parts)
}
