//! Which recorded exchanges become steps: static assets, other hosts, CORS preflights and
//! exchanges that never got an answer are left out, and the scenario says so.

use std::collections::BTreeMap;

use super::model::Exchange;

const STATIC_EXTENSIONS: &[&str] = &[
    "css", "js", "mjs", "map", "png", "jpg", "jpeg", "gif", "svg", "ico", "webp", "avif", "bmp",
    "woff", "woff2", "ttf", "otf", "eot", "mp4", "webm", "mp3", "ogg", "wav", "wasm",
];

/// What the filter left out, for the comments at the top of the scenario.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Dropped {
    pub(crate) static_assets: usize,
    pub(crate) other_hosts: BTreeMap<String, usize>,
    pub(crate) preflights: usize,
    /// "entry N (METHOD URL)" of each exchange that got no response, for warnings.
    pub(crate) unanswered: Vec<String>,
    /// "entry N (METHOD URL): why" of each exchange whose status or method is not HTTP (a
    /// damaged or hand-edited capture: a scenario could not send or expect it), for warnings.
    pub(crate) not_http: Vec<String>,
}

impl Dropped {
    pub(crate) fn comments(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.static_assets > 0 {
            lines.push(format!(
                "left out {} static asset request(s) (images, scripts, styles, fonts; --keep-static keeps them)",
                self.static_assets
            ));
        }
        for (host, count) in &self.other_hosts {
            lines.push(format!(
                "left out {count} request(s) to {host} (another host; --host chooses)"
            ));
        }
        if self.preflights > 0 {
            lines.push(format!(
                "left out {} CORS preflight request(s) (browsers send them, not users)",
                self.preflights
            ));
        }
        if !self.unanswered.is_empty() {
            lines.push(format!(
                "left out {} request(s) that got no response in the capture",
                self.unanswered.len()
            ));
        }
        if !self.not_http.is_empty() {
            lines.push(format!(
                "left out {} request(s) whose method or status is not HTTP",
                self.not_http.len()
            ));
        }
        lines
    }
}

/// Why a recorded exchange is not one HTTP could carry, if it is not.
fn not_http(exchange: &Exchange) -> Option<String> {
    if http::Method::from_bytes(exchange.method.as_bytes()).is_err() {
        return Some(format!("{:?} is not an HTTP method", exchange.method));
    }
    let status = exchange.status;
    (!(100..=599).contains(&status))
        .then(|| format!("status {status} is not an HTTP status (100 to 599)"))
}

/// True for images, scripts, styles, fonts and media, by content type or by extension.
pub(crate) fn is_static(exchange: &Exchange) -> bool {
    let mime = exchange.response_mime.to_ascii_lowercase();
    let static_mime = mime.starts_with("image/")
        || mime.starts_with("font/")
        || mime.starts_with("video/")
        || mime.starts_with("audio/")
        || mime.starts_with("text/css")
        || mime.contains("javascript")
        || mime.starts_with("application/wasm")
        || mime.starts_with("application/font");
    let extension = exchange
        .url
        .path_segments()
        .and_then(|mut segments| segments.next_back())
        .and_then(|last| last.rsplit_once('.'))
        .map(|(_, ext)| ext.to_ascii_lowercase());
    let static_extension = extension.is_some_and(|ext| STATIC_EXTENSIONS.contains(&ext.as_str()));
    exchange.method == "GET" && (static_mime || static_extension)
}

fn is_preflight(exchange: &Exchange) -> bool {
    exchange.method == "OPTIONS"
        && exchange
            .request_header("access-control-request-method")
            .is_some()
}

/// The host most non-static requests went to.
pub(crate) fn main_host(exchanges: &[Exchange]) -> Option<String> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for exchange in exchanges
        .iter()
        .filter(|e| !is_static(e) && !is_preflight(e))
    {
        *counts.entry(exchange.host_key()).or_default() += 1;
    }
    // Ties go to the host seen first, so the choice does not depend on map order.
    let best = counts.values().copied().max()?;
    exchanges
        .iter()
        .map(Exchange::host_key)
        .find(|host| counts.get(host) == Some(&best))
}

/// Keeps the exchanges a scenario should replay.
pub(crate) fn filter(
    exchanges: Vec<Exchange>,
    host: &str,
    keep_static: bool,
) -> (Vec<Exchange>, Dropped) {
    let mut dropped = Dropped::default();
    let mut exchanges = exchanges;
    // In place: a large capture's list is not held twice.
    exchanges.retain(|exchange| {
        if exchange.host_key() != host {
            *dropped.other_hosts.entry(exchange.host_key()).or_default() += 1;
        } else if exchange.status == 0 {
            dropped.unanswered.push(format!(
                "entry {} ({} {})",
                exchange.entry + 1,
                exchange.method,
                exchange.url
            ));
        } else if let Some(why) = not_http(exchange) {
            dropped.not_http.push(format!(
                "entry {} ({} {}): {why}",
                exchange.entry + 1,
                exchange.method,
                exchange.url,
            ));
        } else if is_preflight(exchange) {
            dropped.preflights += 1;
        } else if !keep_static && is_static(exchange) {
            dropped.static_assets += 1;
        } else {
            return true;
        }
        false
    });
    // The room of the entries left out goes back (a third of a large capture's list).
    exchanges.shrink_to_fit();
    (exchanges, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::testing::exchange;

    #[test]
    fn static_assets_by_type_and_extension() {
        let mut css = exchange("GET", "http://app/site.css", 200, "", "");
        css.response_mime = "text/css".to_owned();
        assert!(is_static(&css));
        let logo = exchange("GET", "http://app/img/logo.PNG", 200, "", "");
        assert!(is_static(&logo));
        let api = exchange("GET", "http://app/api/v2/lms/courses", 200, "", "[]");
        assert!(!is_static(&api));
    }

    #[test]
    fn other_hosts_and_assets_are_counted() {
        let list = vec![
            exchange("GET", "http://app:8001/api/a", 200, "", "{}"),
            exchange("GET", "http://app:8001/api/b", 200, "", "{}"),
            exchange("GET", "http://cdn.example/lib.js", 200, "", ""),
            exchange("GET", "http://app:8001/x.js", 200, "", ""),
        ];
        let host = main_host(&list).unwrap();
        assert_eq!(host, "app:8001");
        let (kept, dropped) = filter(list, &host, false);
        assert_eq!(kept.len(), 2);
        assert_eq!(dropped.static_assets, 1);
        assert_eq!(dropped.other_hosts.get("cdn.example"), Some(&1));
        assert_eq!(
            dropped.comments()[1],
            "left out 1 request(s) to cdn.example (another host; --host chooses)"
        );
    }

    #[test]
    fn a_status_or_method_that_is_not_http_is_left_out_with_a_word() {
        // Regression (found by tests/fuzz/convert.rs): a recorded status 600 became
        // `expect_status: 600`, which the scenario it was written in refuses to load; a
        // method `G ET` likewise.
        let list = vec![
            exchange("GET", "http://app/a", 600, "", ""),
            exchange("GET", "http://app/b", 99, "", ""),
            exchange("G ET", "http://app/c", 200, "", ""),
            exchange("GET", "http://app/d", 599, "", ""),
        ];
        let (kept, dropped) = filter(list, "app", false);
        assert_eq!(kept.len(), 1);
        assert_eq!(
            dropped.not_http,
            [
                "entry 1 (GET http://app/a): status 600 is not an HTTP status (100 to 599)",
                "entry 1 (GET http://app/b): status 99 is not an HTTP status (100 to 599)",
                "entry 1 (G ET http://app/c): \"G ET\" is not an HTTP method",
            ]
        );
        assert_eq!(
            dropped.comments(),
            ["left out 3 request(s) whose method or status is not HTTP"]
        );
    }
}
