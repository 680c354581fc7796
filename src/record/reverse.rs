//! Reverse mode: the browser talks to the proxy as if it were the application; every request
//! goes to the one target, with `Host`, `Origin` and `Referer` rewritten on the way in and
//! `Location` and cookie domains on the way out.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response, StatusCode, Uri, header};
use hyper::body::Incoming;

use super::body::ProxyBody;
use super::proxy::{self, Shared};
use super::rewrite::ReverseRewrite;

/// The target URL for a request path: the target's origin, its path prefix, then the path.
pub(crate) fn upstream_uri(target: &url::Url, path_and_query: &str) -> Result<Uri, String> {
    let origin = target.origin().ascii_serialization();
    let prefix = target.path().trim_end_matches('/');
    format!("{origin}{prefix}{path_and_query}")
        .parse()
        .map_err(|err| format!("cannot forward {path_and_query:?}: {err}"))
}

pub(crate) async fn handle(
    shared: Arc<Shared>,
    target: &url::Url,
    local: Option<SocketAddr>,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let upstream = match upstream_uri(target, &path) {
        Ok(uri) => uri,
        Err(message) => return proxy::plain(StatusCode::BAD_REQUEST, &message),
    };
    let browser_host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| local.map(|a| a.to_string()))
        .unwrap_or_default();
    let rewrite = ReverseRewrite {
        target_origin: target.origin().ascii_serialization(),
        target_host: target.host_str().unwrap_or_default().to_owned(),
        browser_origin: format!("http://{browser_host}"),
        strip_secure: target.scheme() == "https",
    };
    proxy::exchange(shared, request, upstream, Some(&rewrite)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_the_target_prefix() {
        let target = url::Url::parse("http://127.0.0.1:8001/app/").unwrap();
        assert_eq!(
            upstream_uri(&target, "/api/x?y=1").unwrap().to_string(),
            "http://127.0.0.1:8001/app/api/x?y=1"
        );
        let target = url::Url::parse("https://example.org").unwrap();
        assert_eq!(
            upstream_uri(&target, "/").unwrap().to_string(),
            "https://example.org/"
        );
    }
}
