//! chorus's own small HTTP/1.1 exchanges beside the load (a monitor's scrape of a Prometheus
//! endpoint, an OTLP push): one connection per exchange to a URL the user gave, through
//! hyper, never through the engine's client (whose statistics are the load's).

use bytes::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use url::Url;

/// Sends one `method` request with `headers` (beside `Host`) and `body` to `url` on a
/// connection of its own; the response, its body still to read. Errors are sentences.
pub(crate) async fn exchange<B>(
    url: &Url,
    method: http::Method,
    headers: &[(http::header::HeaderName, &str)],
    body: B,
) -> Result<hyper::Response<hyper::body::Incoming>, String>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (mut sender, Request { target, authority }) = connect(url).await?;
    let mut request = http::Request::builder()
        .method(method)
        .uri(target)
        .header(http::header::HOST, authority);
    for (name, value) in headers {
        request = request.header(name.clone(), *value);
    }
    let request = request.body(body).map_err(|err| err.to_string())?;
    sender
        .send_request(request)
        .await
        .map_err(|err| err.to_string())
}

/// A connection to `url`'s host and port, ready for one request: its sender, the request
/// target (path and query) and the `Host` header's value.
async fn connect<B>(url: &Url) -> Result<(SendRequest<B>, Request), String>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let host = url.host_str().ok_or("the URL names no host")?;
    let port = url.port_or_known_default().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|err| format!("cannot connect: {err}"))?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|err| err.to_string())?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let target = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    Ok((sender, Request { target, authority }))
}

/// Where a request on a [`connect`]ed sender goes.
struct Request {
    /// The path and query.
    target: String,
    /// The `Host` header.
    authority: String,
}
