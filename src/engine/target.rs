//! Where a request goes: a URL resolved against the scenario's host and checked against
//! the hosts the scenario names, before anything is sent. No IO.

use std::rc::Rc;

use super::http::Endpoint;
use super::user::User;
use crate::scenario::Request;

/// Where a request goes, resolved and checked against the scenario's hosts.
pub(super) struct Target {
    pub(super) url: url::Url,
    pub(super) origin: Endpoint,
    /// Origin form: path and query.
    pub(super) uri: http::Uri,
}

impl Target {
    pub(super) fn new(user: &User, url: url::Url) -> Result<Target, String> {
        let origin = match Endpoint::of(&url) {
            Some(origin) if host_allowed(user, &origin) => origin,
            _ => {
                return Err(format!(
                    "refusing to send to {url}: the scenario does not name this host (allowed: {})",
                    allowed_list(user)
                ));
            }
        };
        let path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let uri = http::Uri::try_from(path.as_str())
            .map_err(|err| format!("{url} has no valid request path: {err}"))?;
        Ok(Target { url, origin, uri })
    }
}

/// The request's target: resolved once per worker when its URL has no template.
pub(super) fn target(user: &User, request: &Request) -> Result<Rc<Target>, String> {
    let key = request as *const Request as usize;
    if let Some(target) = user.worker.targets.borrow().get(&key) {
        return Ok(target.clone());
    }
    let text = request.url.render(&user.vars).map_err(|e| e.to_string())?;
    let url = resolve(user.worker.scenario.host.as_ref(), &text)?;
    let target = Rc::new(Target::new(user, url)?);
    if request.url.is_static() {
        user.worker.targets.borrow_mut().insert(key, target.clone());
    }
    Ok(target)
}

/// An absolute URL as it is, a relative one against the scenario's host.
pub(super) fn resolve(host: Option<&url::Url>, text: &str) -> Result<url::Url, String> {
    match url::Url::parse(text) {
        Ok(url) => Ok(url),
        Err(url::ParseError::RelativeUrlWithoutBase) => match host {
            Some(host) => host
                .join(text)
                .map_err(|err| format!("{text:?} does not resolve against {host}: {err}")),
            None => Err(format!(
                "{text:?} is relative and the scenario has no host; set `host:` or pass -H"
            )),
        },
        Err(err) => Err(format!("{text:?} is not a valid URL: {err}")),
    }
}

/// A host the scenario names: an entry `host` allows every port, `host:port` only that one.
pub(super) fn host_allowed(user: &User, origin: &Endpoint) -> bool {
    let scenario = &user.worker.scenario;
    if scenario.allowed_hosts.is_empty() {
        return scenario
            .host
            .as_ref()
            .and_then(Endpoint::of)
            .is_some_and(|host| host.host == origin.host && host.port == origin.port);
    }
    scenario
        .allowed_hosts
        .iter()
        .any(|entry| entry_matches(entry, origin))
}

fn entry_matches(entry: &str, origin: &Endpoint) -> bool {
    let entry = entry.trim();
    let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
        match rest.split_once(']') {
            Some((host, tail)) => (host, tail.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => (rest, None),
        }
    } else {
        match entry.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => match port.parse::<u16>() {
                Ok(port) => (host, Some(port)),
                Err(_) => (entry, None),
            },
            _ => (entry, None),
        }
    };
    host.eq_ignore_ascii_case(&origin.host) && port.is_none_or(|port| port == origin.port)
}

pub(super) fn allowed_list(user: &User) -> String {
    let scenario = &user.worker.scenario;
    if scenario.allowed_hosts.is_empty() {
        scenario
            .host
            .as_ref()
            .and_then(Endpoint::of)
            .map(|origin| origin.authority())
            .unwrap_or_else(|| "none".to_owned())
    } else {
        scenario.allowed_hosts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(host: &str, port: u16) -> Endpoint {
        Endpoint {
            https: false,
            host: host.to_owned(),
            port,
        }
    }

    #[test]
    fn allowed_host_entries() {
        assert!(entry_matches("127.0.0.1:8001", &origin("127.0.0.1", 8001)));
        assert!(!entry_matches("127.0.0.1:8001", &origin("127.0.0.1", 8002)));
        assert!(entry_matches("Example.org", &origin("example.org", 443)));
        assert!(!entry_matches("example.org", &origin("evil.example", 443)));
        assert!(entry_matches("[::1]:80", &origin("::1", 80)));
    }

    #[test]
    fn relative_urls_resolve_against_the_host() {
        let host = url::Url::parse("http://127.0.0.1:8001/").unwrap();
        assert_eq!(
            resolve(Some(&host), "/api/course?x=1").unwrap().as_str(),
            "http://127.0.0.1:8001/api/course?x=1"
        );
        assert_eq!(
            resolve(None, "/api").unwrap_err(),
            "\"/api\" is relative and the scenario has no host; set `host:` or pass -H"
        );
    }
}
