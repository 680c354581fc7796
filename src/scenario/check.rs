//! Checks on a response: status, a JSONPath value, body content, a header, where a redirect
//! points, the URL that answered, an HTML page's title, a JSON object's keys. A failed check
//! makes the request a failure; its message says what was expected and what came.

use regex::Regex;
use serde_json_path::JsonPath;

use super::extract::{ResponseView, snippet};
use super::template::Template;
use super::vars::Vars;

/// What a text must be: equal to a template's rendering, or matched by a regex.
#[derive(Debug, Clone)]
pub enum Expected {
    Equals(Template),
    Matches(Regex),
}

/// A URL path pattern (`/ticket/*`), or a regex over the path and query.
#[derive(Debug, Clone)]
pub struct UrlPattern {
    /// As written, for messages.
    pub source: String,
    regex: Regex,
    /// Whether the query takes part (a glob with `?`, or any regex).
    with_query: bool,
}

impl UrlPattern {
    /// A glob over the path: `*` is any run of characters within one path segment, `**` any
    /// run at all; with a `?` the query takes part, else it is ignored.
    pub fn glob(source: &str) -> UrlPattern {
        let mut pattern = String::from("^");
        let mut rest = source;
        while let Some(at) = rest.find('*') {
            pattern.push_str(&regex::escape(&rest[..at]));
            if rest[at..].starts_with("**") {
                pattern.push_str(".*");
                rest = &rest[at + 2..];
            } else {
                pattern.push_str("[^/?#]*");
                rest = &rest[at + 1..];
            }
        }
        pattern.push_str(&regex::escape(rest));
        pattern.push('$');
        UrlPattern {
            source: source.to_owned(),
            regex: Regex::new(&pattern).expect("an escaped glob is a valid regex"),
            with_query: source.contains('?'),
        }
    }

    /// A regex over the path and query (`/x?y=1`).
    pub fn regex(regex: Regex) -> UrlPattern {
        UrlPattern {
            source: regex.as_str().to_owned(),
            regex,
            with_query: true,
        }
    }

    /// Whether `url` (its path, and query when the pattern has one) matches.
    pub fn matches(&self, url: &url::Url) -> bool {
        self.regex.is_match(&shown(url, self.with_query))
    }
}

/// A URL as the pattern sees it: the path, and the query when asked for.
fn shown(url: &url::Url, with_query: bool) -> String {
    match url.query() {
        Some(query) if with_query => format!("{}?{query}", url.path()),
        _ => url.path().to_owned(),
    }
}

/// What a check looks at.
#[derive(Debug, Clone)]
pub enum CheckKind {
    /// The status is one of these.
    Status(Vec<u16>),
    /// The JSONPath selects something; with `equals`, its first value equals that.
    JsonPath {
        path: JsonPath,
        source: String,
        equals: Option<serde_json::Value>,
    },
    /// The body contains this text.
    BodyContains(String),
    /// The body does not contain this text.
    BodyNotContains(String),
    /// The header is present and, when given, its value is as expected.
    Header {
        name: http::HeaderName,
        expected: Option<Expected>,
    },
    /// The response is a redirect (3xx) whose `Location`, resolved against the request's
    /// URL, matches: it did not send the user somewhere else (a login page).
    Redirect(UrlPattern),
    /// The URL that answered (after the redirects the engine followed) matches.
    Url(UrlPattern),
    /// The HTML page's `<title>`, whitespace collapsed.
    Title(Expected),
    /// The body is a JSON object with at least these top-level keys.
    JsonKeys(Vec<String>),
    /// `js:` a JavaScript expression over the response: truthy passes; a string is the
    /// failure's message.
    Script(crate::script::Call),
}

/// One check; a failed check makes the request a failure.
#[derive(Debug, Clone)]
pub struct Check {
    pub kind: CheckKind,
}

impl Check {
    /// `Err` says what was expected and what came. `vars` renders templated expectations.
    pub fn evaluate(&self, response: &ResponseView<'_>, vars: &Vars) -> Result<(), String> {
        self.judge(response, vars).map_err(|(_, message)| message)
    }

    /// [`Check::evaluate`] with the kind of failure: a `js:` check that ran past its time
    /// limit is `ScriptTimeout`, any other failed check `CheckFailed`.
    pub fn judge(
        &self,
        response: &ResponseView<'_>,
        vars: &Vars,
    ) -> Result<(), (crate::stats::FailureKind, String)> {
        if let CheckKind::Script(call) = &self.kind {
            return call.check(response, vars).map_err(|failure| {
                let kind = match failure.timed_out {
                    true => crate::stats::FailureKind::ScriptTimeout,
                    false => crate::stats::FailureKind::CheckFailed,
                };
                (kind, failure.message)
            });
        }
        self.evaluate_plain(response, vars)
            .map_err(|message| (crate::stats::FailureKind::CheckFailed, message))
    }

    fn evaluate_plain(&self, response: &ResponseView<'_>, vars: &Vars) -> Result<(), String> {
        match &self.kind {
            CheckKind::Status(statuses) => {
                if statuses.contains(&response.status) {
                    Ok(())
                } else {
                    let expected: Vec<String> = statuses.iter().map(u16::to_string).collect();
                    Err(format!(
                        "expected status {}, got {}",
                        expected.join(" or "),
                        response.status
                    ))
                }
            }
            CheckKind::JsonPath {
                path,
                source,
                equals,
            } => {
                let Some(json) = response.json() else {
                    return Err(format!(
                        "check {source}: expected a JSON body, got {}",
                        response.describe_body()
                    ));
                };
                let nodes = path.query(json);
                let Some(found) = nodes.first() else {
                    return Err(format!(
                        "check {source}: expected a value, found nothing in {}",
                        response.describe_body()
                    ));
                };
                match equals {
                    Some(expected) if !same(expected, found) => Err(format!(
                        "check {source}: expected {expected}, got {}",
                        snippet(&found.to_string(), 80)
                    )),
                    _ => Ok(()),
                }
            }
            CheckKind::BodyContains(text) => {
                if contains(response.body, text.as_bytes()) {
                    Ok(())
                } else {
                    Err(format!(
                        "expected the body to contain {text:?}, got {}",
                        response.describe_body()
                    ))
                }
            }
            CheckKind::BodyNotContains(text) => {
                if contains(response.body, text.as_bytes()) {
                    Err(format!(
                        "expected the body not to contain {text:?}, but it does"
                    ))
                } else {
                    Ok(())
                }
            }
            CheckKind::Header { name, expected } => {
                let Some(value) = response.headers.get(name) else {
                    return Err(format!("expected a `{name}` header, the response has none"));
                };
                let value = String::from_utf8_lossy(value.as_bytes());
                match expected {
                    Some(expected) => expected.judge(&value, vars).map_err(|wanted| {
                        format!(
                            "header `{name}`: expected {wanted}, got {:?}",
                            snippet(&value, 80)
                        )
                    }),
                    None => Ok(()),
                }
            }
            CheckKind::Redirect(pattern) => {
                let location = response
                    .headers
                    .get(http::header::LOCATION)
                    .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
                let Some(location) = location.filter(|_| (300..400).contains(&response.status))
                else {
                    return Err(format!(
                        "expected a redirect to {}, got status {} without one",
                        pattern.source, response.status
                    ));
                };
                let target = match response.url {
                    Some(base) => base.join(&location).ok(),
                    None => url::Url::parse("http://unknown.invalid/")
                        .ok()
                        .and_then(|base| base.join(&location).ok()),
                };
                match target {
                    Some(target) if pattern.matches(&target) => Ok(()),
                    _ => Err(format!(
                        "redirected to {}, expected {}",
                        snippet(&location, 120),
                        pattern.source
                    )),
                }
            }
            CheckKind::Url(pattern) => match response.url {
                Some(url) if pattern.matches(url) => Ok(()),
                Some(url) => Err(format!(
                    "answered from {}, expected {}",
                    snippet(&shown(url, true), 120),
                    pattern.source
                )),
                None => Err(format!(
                    "expected the URL {}, the URL is not known",
                    pattern.source
                )),
            },
            CheckKind::Title(expected) => {
                let Some(title) = response.page().title.as_deref() else {
                    return Err(format!(
                        "expected an HTML page with a title, got {}",
                        response.describe_body()
                    ));
                };
                expected
                    .judge(title, vars)
                    .map_err(|wanted| format!("title: expected {wanted}, got {title:?}"))
            }
            CheckKind::JsonKeys(keys) => {
                let Some(serde_json::Value::Object(object)) = response.json() else {
                    return Err(format!(
                        "expected a JSON object with the keys {}, got {}",
                        keys.join(", "),
                        response.describe_body()
                    ));
                };
                let missing: Vec<&str> = keys
                    .iter()
                    .filter(|key| !object.contains_key(key.as_str()))
                    .map(String::as_str)
                    .collect();
                if missing.is_empty() {
                    Ok(())
                } else {
                    let mut present: Vec<&str> = object.keys().map(String::as_str).collect();
                    present.truncate(12);
                    Err(format!(
                        "expected the JSON keys {}, missing {} (it has {})",
                        keys.join(", "),
                        missing.join(", "),
                        present.join(", ")
                    ))
                }
            }
            CheckKind::Script(call) => call.check(response, vars).map_err(|f| f.message),
        }
    }
}

impl Expected {
    /// `Err` says what was expected.
    fn judge(&self, text: &str, vars: &Vars) -> Result<(), String> {
        match self {
            Expected::Equals(template) => {
                let wanted = template.render(vars).map_err(|err| err.to_string())?;
                if wanted == text {
                    Ok(())
                } else {
                    Err(format!("{wanted:?}"))
                }
            }
            Expected::Matches(regex) => {
                if regex.is_match(text) {
                    Ok(())
                } else {
                    Err(format!("a match of /{}/", regex.as_str()))
                }
            }
        }
    }
}

/// JSON equality where numbers compare by value (`1` equals `1.0`).
fn same(expected: &serde_json::Value, found: &serde_json::Value) -> bool {
    match (expected, found) {
        (serde_json::Value::Number(a), serde_json::Value::Number(b)) => {
            a == b || a.as_f64().is_some_and(|a| Some(a) == b.as_f64())
        }
        _ => expected == found,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(kind: CheckKind) -> Check {
        Check { kind }
    }

    #[test]
    fn status_checks() {
        let headers = http::HeaderMap::new();
        let response = ResponseView::new(404, &headers, b"");
        assert!(
            check(CheckKind::Status(vec![404]))
                .evaluate(&response, &Vars::new())
                .is_ok()
        );
        assert_eq!(
            check(CheckKind::Status(vec![200, 201])).evaluate(&response, &Vars::new()),
            Err("expected status 200 or 201, got 404".to_owned())
        );
    }

    #[test]
    fn jsonpath_checks() {
        let headers = http::HeaderMap::new();
        let response = ResponseView::new(200, &headers, br#"{"status":"ok","n":2}"#);
        let jsonpath = |source: &str, equals| {
            check(CheckKind::JsonPath {
                path: JsonPath::parse(source).unwrap(),
                source: source.to_owned(),
                equals,
            })
        };
        assert!(
            jsonpath("$.status", Some(json!("ok")))
                .evaluate(&response, &Vars::new())
                .is_ok()
        );
        assert!(
            jsonpath("$.n", Some(json!(2.0)))
                .evaluate(&response, &Vars::new())
                .is_ok()
        );
        assert!(
            jsonpath("$.n", None)
                .evaluate(&response, &Vars::new())
                .is_ok()
        );
        assert_eq!(
            jsonpath("$.status", Some(json!("done"))).evaluate(&response, &Vars::new()),
            Err(r#"check $.status: expected "done", got "ok""#.to_owned())
        );
        assert_eq!(
            jsonpath("$.missing", None).evaluate(&response, &Vars::new()),
            Err(
                "check $.missing: expected a value, found nothing in a 21-byte JSON body"
                    .to_owned()
            )
        );
    }

    #[test]
    fn redirect_url_title_header_and_key_checks() {
        let mut headers = http::HeaderMap::new();
        headers.insert("location", "/admin/login/?next=/admin/x/".parse().unwrap());
        headers.insert("content-type", "text/html; charset=utf-8".parse().unwrap());
        let base = url::Url::parse("http://h:8/admin/x/7/change/").unwrap();
        let body = b"<title>Log in | Django site admin</title>";
        let response = ResponseView::new(302, &headers, body).at(&base);
        let vars = Vars::new();
        let redirect = |glob: &str| check(CheckKind::Redirect(UrlPattern::glob(glob)));
        assert!(redirect("/admin/login/").evaluate(&response, &vars).is_ok());
        assert!(redirect("/admin/*/").evaluate(&response, &vars).is_ok());
        assert!(
            redirect("/admin/login/?next=**")
                .evaluate(&response, &vars)
                .is_ok()
        );
        assert_eq!(
            redirect("/admin/x/").evaluate(&response, &vars),
            Err("redirected to /admin/login/?next=/admin/x/, expected /admin/x/".to_owned())
        );
        let url = |glob: &str| check(CheckKind::Url(UrlPattern::glob(glob)));
        assert!(url("/admin/x/*/change/").evaluate(&response, &vars).is_ok());
        assert_eq!(
            url("/admin/x/").evaluate(&response, &vars),
            Err("answered from /admin/x/7/change/, expected /admin/x/".to_owned())
        );
        let title = |text: &str| check(CheckKind::Title(Expected::Equals(Template::literal(text))));
        assert!(
            title("Log in | Django site admin")
                .evaluate(&response, &vars)
                .is_ok()
        );
        assert_eq!(
            title("Site administration").evaluate(&response, &vars),
            Err(
                "title: expected \"Site administration\", got \"Log in | Django site admin\""
                    .to_owned()
            )
        );
        let header = check(CheckKind::Header {
            name: http::header::CONTENT_TYPE,
            expected: Some(Expected::Matches(Regex::new("^text/html").unwrap())),
        });
        assert!(header.evaluate(&response, &vars).is_ok());
        let ok = ResponseView::new(200, &headers, b"{}");
        assert_eq!(
            redirect("/x").evaluate(&ok, &vars),
            Err("expected a redirect to /x, got status 200 without one".to_owned())
        );
        let json = ResponseView::new(200, &headers, br#"{"id":1,"title":"t"}"#);
        let keys = |keys: &[&str]| {
            check(CheckKind::JsonKeys(
                keys.iter().map(|k| (*k).to_owned()).collect(),
            ))
        };
        assert!(keys(&["id", "title"]).evaluate(&json, &vars).is_ok());
        assert_eq!(
            keys(&["id", "userId"]).evaluate(&json, &vars),
            Err("expected the JSON keys id, userId, missing userId (it has id, title)".to_owned())
        );
    }

    #[test]
    fn body_checks() {
        let headers = http::HeaderMap::new();
        let response = ResponseView::new(200, &headers, b"Welcome, ada");
        assert!(
            check(CheckKind::BodyContains("ada".to_owned()))
                .evaluate(&response, &Vars::new())
                .is_ok()
        );
        assert!(
            check(CheckKind::BodyNotContains("error".to_owned()))
                .evaluate(&response, &Vars::new())
                .is_ok()
        );
        assert_eq!(
            check(CheckKind::BodyContains("bob".to_owned())).evaluate(&response, &Vars::new()),
            Err("expected the body to contain \"bob\", got a 12-byte body that is not JSON (starts `Welcome, ada`)".to_owned())
        );
    }
}
