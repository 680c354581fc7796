//! Who may use the page, decided on a request's method, path and headers before any handler
//! runs: the `Host` names the page answers to (so a DNS-rebinding site cannot read or drive
//! it), no cross-site state changes (`Origin`, `Sec-Fetch-Site`), a body only as JSON, the
//! page's token for Locust's form endpoints, and never inside another site's frame. Plain
//! functions over request parts, tested without sockets; `api` puts them in front of the
//! routes. What this defends against is written down in docs/security.md.

use std::net::{IpAddr, SocketAddr};

use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, ORIGIN, TRANSFER_ENCODING};
use axum::http::{HeaderMap, Method, Uri};

/// The header a script (or the page) sends the page's token in.
pub(crate) const TOKEN_HEADER: &str = "x-chorus-token";

/// The `token` field of a form or query string.
pub(crate) const TOKEN_FIELD: &str = "token";

/// A refusal before any handler ran: the status and a sentence saying what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refused {
    pub(crate) status: u16,
    pub(crate) message: String,
}

fn refused(status: u16, message: impl Into<String>) -> Refused {
    Refused {
        status,
        message: message.into(),
    }
}

/// The `Host` names (without port) the page answers to.
#[derive(Debug, Clone)]
pub(crate) struct AllowedHosts {
    /// The address the page is bound to.
    bound: IpAddr,
    /// Lowercase names: `localhost`, the `--web-host` name if it was one, `--web-allowed-host`.
    names: Vec<String>,
}

impl AllowedHosts {
    /// The page bound to `bound`, answering also to `names` (`--web-allowed-host`, and the
    /// name given to `--web-host` if it was a name).
    pub(crate) fn new(bound: SocketAddr, names: &[String]) -> AllowedHosts {
        let mut all = vec!["localhost".to_owned()];
        for name in names {
            let name = normalise_name(name);
            if !name.is_empty() && !all.contains(&name) {
                all.push(name);
            }
        }
        AllowedHosts {
            bound: bound.ip(),
            names: all,
        }
    }

    /// Whether a request whose `Host` is `host` (with or without a port) is for this page.
    /// Loopback addresses, the bound address and the listed names are; on a page bound to
    /// every interface, so is any address written as digits (a DNS-rebinding site always
    /// comes with a name of its own, never an IP address).
    pub(crate) fn allows(&self, host: &str) -> bool {
        let name = host_without_port(host);
        match name.parse::<IpAddr>() {
            Ok(ip) => ip.is_loopback() || ip == self.bound || self.bound.is_unspecified(),
            Err(_) => self.names.contains(&normalise_name(name)),
        }
    }

    fn shown(&self) -> String {
        let mut shown: Vec<String> = self.names.clone();
        if !self.bound.is_loopback() && !self.bound.is_unspecified() {
            shown.push(self.bound.to_string());
        }
        shown.push("127.0.0.1".to_owned());
        shown.join(", ")
    }
}

fn normalise_name(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// `example.org:8089` -> `example.org`, `[::1]:8089` -> `::1`, `[::1]` -> `::1`.
fn host_without_port(host: &str) -> &str {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Whether the request changes something: anything but a read, and Locust's `GET /stop` and
/// `GET /stats/reset` (which an `<img>` tag on any site could send).
pub(crate) fn changes_state(method: &Method, path: &str) -> bool {
    let read = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    !read || is_locust_form_route(path)
}

/// Locust's endpoints that take a form or nothing, so they need the page's token.
pub(crate) fn is_locust_form_route(path: &str) -> bool {
    matches!(path, "/swarm" | "/stop" | "/stats/reset")
}

/// What the guard decides for one request (the body is not looked at: the handlers of
/// Locust's form endpoints check the token a form carries).
pub(crate) fn check(
    allowed: &AllowedHosts,
    token: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(), Refused> {
    let host = headers
        .get(HOST)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri.authority().map(|a| a.as_str().to_owned()));
    let Some(host) = host else {
        return Err(refused(
            400,
            "the request has no Host header: send HTTP/1.1 with Host set to the page's address",
        ));
    };
    if !allowed.allows(&host) {
        return Err(refused(
            403,
            format!(
                "this page answers only to {} (and the address it listens on), not to Host {host:?}; \
                 to reach it under that name, start chorus with --web-allowed-host {}",
                allowed.shown(),
                host_without_port(&host)
            ),
        ));
    }
    let site = headers
        .get("sec-fetch-site")
        .and_then(|value| value.to_str().ok());
    let mode = headers
        .get("sec-fetch-mode")
        .and_then(|value| value.to_str().ok());
    let cross_site = matches!(site, Some("cross-site" | "same-site"));
    if !changes_state(method, uri.path()) {
        // Reads: another site may link to the page (a navigation), but not load its data.
        if cross_site && mode != Some("navigate") {
            return Err(refused(
                403,
                "another web site may not read this page's data: open the page itself",
            ));
        }
        return Ok(());
    }
    if cross_site || matches!(site, Some(other) if other != "same-origin" && other != "none") {
        return Err(refused(
            403,
            format!(
                "refused a request from another web site (Sec-Fetch-Site: {}): only the page \
                 itself, or a script that is not a browser, may change a run",
                site.unwrap_or_default()
            ),
        ));
    }
    if let Some(origin) = headers.get(ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        if !same_origin(origin, &host) {
            return Err(refused(
                403,
                format!(
                    "refused a request from the web site {origin:?}: only the page itself, or a \
                     script that is not a browser, may change a run"
                ),
            ));
        }
    }
    let given = headers
        .get(TOKEN_HEADER)
        .map(|v| v.to_str().unwrap_or_default());
    if given.is_some_and(|given| !same_secret(given, token)) {
        return Err(refused(
            403,
            format!(
                "the {TOKEN_HEADER} header is not this page's token: reload the page (chorus was \
                 restarted), or read the token from GET /api/token"
            ),
        ));
    }
    if is_locust_form_route(uri.path()) {
        // The token is checked by the handler, which may find it in the form.
        return Ok(());
    }
    if has_body(headers) && !is_json(headers) && given.is_none() {
        return Err(refused(
            415,
            "send the body as JSON with Content-Type: application/json",
        ));
    }
    Ok(())
}

/// Whether the `Origin` of a request is the page's own (`http://HOST[:PORT]` as in `Host`).
fn same_origin(origin: &str, host: &str) -> bool {
    let Ok(url) = url::Url::parse(origin) else {
        return false;
    };
    let Some(origin_host) = url.host_str() else {
        return false;
    };
    let origin_authority = match url.port() {
        Some(port) => format!("{origin_host}:{port}"),
        None => origin_host.to_owned(),
    };
    let host = host.trim();
    // `Host` may omit the default port that `Origin` omits too.
    let host = match url.port_or_known_default() {
        Some(port) if url.port().is_none() => host
            .strip_suffix(&format!(":{port}"))
            .unwrap_or(host)
            .to_owned(),
        _ => host.to_owned(),
    };
    origin_authority.eq_ignore_ascii_case(&host)
}

fn has_body(headers: &HeaderMap) -> bool {
    let length = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    length.is_some_and(|n| n > 0) || headers.contains_key(TRANSFER_ENCODING)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| {
            let media = media.trim().to_ascii_lowercase();
            media == "application/json"
                || (media.starts_with("application/") && media.ends_with("+json"))
        })
}

/// Compares two secrets in time that does not depend on where they differ.
pub(crate) fn same_secret(given: &str, expected: &str) -> bool {
    let (given, expected) = (given.as_bytes(), expected.as_bytes());
    if given.len() != expected.len() {
        return false;
    }
    given
        .iter()
        .zip(expected)
        .fold(0u8, |diff, (a, b)| diff | (a ^ b))
        == 0
}

/// A fresh token for one serving page (128 random bits, hex).
pub(crate) fn new_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn local() -> AllowedHosts {
        AllowedHosts::new("127.0.0.1:8089".parse().unwrap(), &[])
    }

    fn verdict(method: Method, path: &str, pairs: &[(&'static str, &str)]) -> Result<(), u16> {
        let uri: Uri = path.parse().unwrap();
        check(&local(), "t0k3n", &method, &uri, &headers(pairs)).map_err(|r| r.status)
    }

    #[test]
    fn host_names_the_page_was_bound_for() {
        let local = local();
        for host in [
            "127.0.0.1:8089",
            "localhost:8089",
            "LOCALHOST",
            "[::1]:8089",
            "127.0.0.2",
        ] {
            assert!(local.allows(host), "{host}");
        }
        for host in [
            "attacker.example:8089",
            "10.0.0.5:8089",
            "localhost.evil",
            "",
        ] {
            assert!(!local.allows(host), "{host}");
        }
        let named = AllowedHosts::new(
            "10.1.2.3:8089".parse().unwrap(),
            &["Load.Internal.".to_owned()],
        );
        assert!(named.allows("10.1.2.3:8089"));
        assert!(named.allows("load.internal:8089"));
        assert!(!named.allows("10.1.2.4:8089"));
        let open = AllowedHosts::new("0.0.0.0:8089".parse().unwrap(), &[]);
        assert!(open.allows("192.168.1.20:8089"));
        assert!(!open.allows("rebind.example:8089"));
    }

    #[test]
    fn a_forged_host_is_refused_with_what_to_do() {
        let uri: Uri = "/api/state".parse().unwrap();
        let refusal = check(
            &local(),
            "t0k3n",
            &Method::GET,
            &uri,
            &headers(&[("host", "attacker.example:8089")]),
        )
        .unwrap_err();
        assert_eq!(refusal.status, 403);
        assert!(
            refusal
                .message
                .ends_with("start chorus with --web-allowed-host attacker.example"),
            "{}",
            refusal.message
        );
    }

    #[test]
    fn cross_site_changes_are_refused_and_the_page_itself_is_not() {
        let host = ("host", "127.0.0.1:8089");
        // What the page's own script sends.
        assert_eq!(
            verdict(
                Method::POST,
                "/api/start",
                &[
                    host,
                    ("origin", "http://127.0.0.1:8089"),
                    ("sec-fetch-site", "same-origin"),
                    ("content-type", "application/json"),
                    ("content-length", "30"),
                ]
            ),
            Ok(())
        );
        // curl and other scripts: no Origin, no Sec-Fetch-Site.
        assert_eq!(verdict(Method::POST, "/api/stop", &[host]), Ok(()));
        // A form on another site.
        assert_eq!(
            verdict(
                Method::POST,
                "/swarm",
                &[
                    host,
                    ("origin", "http://evil.example"),
                    ("sec-fetch-site", "cross-site")
                ]
            ),
            Err(403)
        );
        // Another port on the same machine is another origin (same site).
        assert_eq!(
            verdict(
                Method::POST,
                "/api/stop",
                &[
                    host,
                    ("origin", "http://127.0.0.1:9999"),
                    ("sec-fetch-site", "same-site")
                ]
            ),
            Err(403)
        );
        // An older browser without Sec-Fetch-*: the Origin alone.
        assert_eq!(
            verdict(
                Method::POST,
                "/api/reset",
                &[host, ("origin", "http://evil.example")]
            ),
            Err(403)
        );
        assert_eq!(
            verdict(Method::POST, "/api/reset", &[host, ("origin", "null")]),
            Err(403)
        );
        // An <img> on another site.
        assert_eq!(
            verdict(
                Method::GET,
                "/stop",
                &[
                    host,
                    ("sec-fetch-site", "cross-site"),
                    ("sec-fetch-mode", "no-cors")
                ]
            ),
            Err(403)
        );
        // The page's token (the page sends it), and a stale one.
        assert_eq!(
            verdict(
                Method::POST,
                "/api/stop",
                &[host, ("x-chorus-token", "t0k3n")]
            ),
            Ok(())
        );
        assert_eq!(
            verdict(
                Method::POST,
                "/api/stop",
                &[host, ("x-chorus-token", "old")]
            ),
            Err(403)
        );
        // text/plain bodies are what a cross-site fetch may send without asking.
        assert_eq!(
            verdict(
                Method::POST,
                "/api/start",
                &[
                    host,
                    ("content-type", "text/plain"),
                    ("content-length", "28")
                ]
            ),
            Err(415)
        );
    }

    #[test]
    fn reads_may_be_linked_to_but_not_loaded_by_another_site() {
        let host = ("host", "127.0.0.1:8089");
        assert_eq!(verdict(Method::GET, "/api/state", &[host]), Ok(()));
        assert_eq!(
            verdict(
                Method::GET,
                "/",
                &[
                    host,
                    ("sec-fetch-site", "cross-site"),
                    ("sec-fetch-mode", "navigate")
                ]
            ),
            Ok(())
        );
        assert_eq!(
            verdict(
                Method::GET,
                "/api/report/result.json",
                &[
                    host,
                    ("sec-fetch-site", "cross-site"),
                    ("sec-fetch-mode", "no-cors")
                ]
            ),
            Err(403)
        );
    }

    #[test]
    fn origins_compare_with_the_host_the_request_names() {
        assert!(same_origin("http://127.0.0.1:8089", "127.0.0.1:8089"));
        assert!(same_origin("http://LOCALHOST:8089", "localhost:8089"));
        assert!(same_origin("http://load.internal", "load.internal:80"));
        assert!(!same_origin("http://127.0.0.1:8090", "127.0.0.1:8089"));
        assert!(!same_origin("null", "127.0.0.1:8089"));
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abd", "abc"));
        assert!(!same_secret("ab", "abc"));
    }
}
