//! Extraction rules: JSONPath, regex, header, cookie and HTML form field, from a response
//! into a user's variables; and the view of a response they (and checks) read. Plain
//! functions over bytes: no IO.

use regex::Regex;
use serde_json_path::JsonPath;
use std::cell::OnceCell;

use super::template::Template;
use super::vars::Vars;
use crate::html::Page;

/// A response as extraction and checks see it. The body is parsed as JSON, and read as an
/// HTML page, at most once each.
#[derive(Debug)]
pub struct ResponseView<'a> {
    pub status: u16,
    pub headers: &'a http::HeaderMap,
    pub body: &'a [u8],
    /// The URL that was requested (after any redirects the engine followed), when known.
    pub url: Option<&'a url::Url>,
    json: OnceCell<Option<serde_json::Value>>,
    page: OnceCell<Page>,
}

impl<'a> ResponseView<'a> {
    pub fn new(status: u16, headers: &'a http::HeaderMap, body: &'a [u8]) -> Self {
        Self {
            status,
            headers,
            body,
            url: None,
            json: OnceCell::new(),
            page: OnceCell::new(),
        }
    }

    /// The same view, knowing the URL it answered.
    pub fn at(mut self, url: &'a url::Url) -> Self {
        self.url = Some(url);
        self
    }

    /// The body read as an HTML page (an empty page when it is not HTML).
    pub fn page(&self) -> &Page {
        self.page.get_or_init(|| Page::parse(&self.text()))
    }

    /// The body as JSON, or `None` when it is not JSON.
    pub fn json(&self) -> Option<&serde_json::Value> {
        self.json
            .get_or_init(|| serde_json::from_slice(self.body).ok())
            .as_ref()
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.body)
    }

    /// "a 43-byte JSON body" / "a 120-byte body that is not JSON (starts `<html>`)".
    pub(crate) fn describe_body(&self) -> String {
        if self.body.is_empty() {
            return "an empty body".to_owned();
        }
        let size = self.body.len();
        if self.json().is_some() {
            format!("a {size}-byte JSON body")
        } else {
            format!(
                "a {size}-byte body that is not JSON (starts `{}`)",
                snippet(&self.text(), 40)
            )
        }
    }
}

/// The first `max` characters of `text` on one line.
pub(crate) fn snippet(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

/// Where an extracted value comes from.
#[derive(Debug, Clone)]
pub enum ExtractKind {
    /// The first value a JSONPath selects from a JSON body, with its JSON type.
    JsonPath { path: JsonPath, source: String },
    /// The first capture group of the first match in the body (the whole match if the
    /// pattern has no group), as a string.
    Regex(Regex),
    /// A response header's value.
    Header(http::HeaderName),
    /// The first capture group of a regex over a response header's value.
    HeaderRegex {
        header: http::HeaderName,
        regex: Regex,
    },
    /// The value of a cookie this response sets (`Set-Cookie`).
    Cookie(String),
    /// The value a browser would submit for the form field with this name (an `<input>`,
    /// the selected `<option>` of a `<select>`, a `<textarea>`), read by [`crate::html`].
    FormField(String),
    /// The `content` of `<meta name=X>` (Rails' `csrf-token`).
    Meta(String),
    /// The `href` of the first link whose text contains `text` (rendered for the user), or
    /// the first capture group of `regex` over that `href`.
    Link {
        text: Template,
        regex: Option<Regex>,
    },
}

/// A value taken from a response into a variable.
#[derive(Debug, Clone)]
pub struct Extract {
    /// The variable it sets.
    pub name: String,
    pub kind: ExtractKind,
    /// Set instead when nothing is found; without one, finding nothing is a failure.
    pub default: Option<serde_json::Value>,
}

/// An extraction that found nothing; the engine counts it as a failure of the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("extract {name}: {message}")]
pub struct ExtractError {
    pub name: String,
    pub message: String,
}

impl Extract {
    /// Finds the value in `response` and sets it in `vars`.
    pub fn apply(&self, response: &ResponseView<'_>, vars: &mut Vars) -> Result<(), ExtractError> {
        match self.find(response, vars) {
            Ok(value) => {
                vars.set(&self.name, value);
                Ok(())
            }
            Err(message) => match &self.default {
                Some(value) => {
                    vars.set(&self.name, value.clone());
                    Ok(())
                }
                None => Err(ExtractError {
                    name: self.name.clone(),
                    message,
                }),
            },
        }
    }

    fn find(&self, response: &ResponseView<'_>, vars: &Vars) -> Result<serde_json::Value, String> {
        match &self.kind {
            ExtractKind::JsonPath { path, source } => {
                let Some(json) = response.json() else {
                    return Err(format!(
                        "{source} needs a JSON body, got {}",
                        response.describe_body()
                    ));
                };
                path.query(json).first().cloned().ok_or_else(|| {
                    format!("{source} found nothing in {}", response.describe_body())
                })
            }
            ExtractKind::Regex(regex) => {
                let text = response.text();
                let captures = regex.captures(&text).ok_or_else(|| {
                    format!(
                        "regex `{}` matched nothing in {}",
                        regex.as_str(),
                        response.describe_body()
                    )
                })?;
                let found = captures.get(1).or_else(|| captures.get(0));
                Ok(serde_json::Value::String(
                    found.map_or("", |m| m.as_str()).to_owned(),
                ))
            }
            ExtractKind::Header(name) => {
                let value = response
                    .headers
                    .get(name)
                    .ok_or_else(|| format!("the response has no `{name}` header"))?;
                Ok(serde_json::Value::String(
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                ))
            }
            ExtractKind::HeaderRegex { header, regex } => {
                let value = response
                    .headers
                    .get(header)
                    .ok_or_else(|| format!("the response has no `{header}` header"))?;
                let text = String::from_utf8_lossy(value.as_bytes());
                let captures = regex.captures(&text).ok_or_else(|| {
                    format!(
                        "regex `{}` matched nothing in the `{header}` header ({})",
                        regex.as_str(),
                        snippet(&text, 60)
                    )
                })?;
                let found = captures.get(1).or_else(|| captures.get(0));
                Ok(serde_json::Value::String(
                    found.map_or("", |m| m.as_str()).to_owned(),
                ))
            }
            ExtractKind::Cookie(name) => cookie(response.headers, name)
                .map(serde_json::Value::String)
                .ok_or_else(|| format!("the response sets no `{name}` cookie")),
            ExtractKind::FormField(name) => response
                .page()
                .field(name)
                .and_then(|field| field.value.clone())
                .map(serde_json::Value::String)
                .ok_or_else(|| {
                    format!(
                        "no form field `{name}` with a value in {}",
                        response.describe_body()
                    )
                }),
            ExtractKind::Meta(name) => response
                .page()
                .meta(name)
                .map(|content| serde_json::Value::String(content.to_owned()))
                .ok_or_else(|| {
                    format!("no <meta name=\"{name}\"> in {}", response.describe_body())
                }),
            ExtractKind::Link { text, regex } => {
                let wanted = text.render(vars).map_err(|err| err.to_string())?;
                let link = response
                    .page()
                    .links
                    .iter()
                    .find(|link| link.text.contains(&wanted))
                    .ok_or_else(|| {
                        format!(
                            "no link with the text {wanted:?} in {}",
                            response.describe_body()
                        )
                    })?;
                let Some(regex) = regex else {
                    return Ok(serde_json::Value::String(link.href.clone()));
                };
                let captures = regex.captures(&link.href).ok_or_else(|| {
                    format!(
                        "the link {wanted:?} goes to {}, which regex `{}` does not match",
                        link.href,
                        regex.as_str()
                    )
                })?;
                let found = captures.get(1).or_else(|| captures.get(0));
                Ok(serde_json::Value::String(
                    found.map_or("", |m| m.as_str()).to_owned(),
                ))
            }
        }
    }
}

/// The value of cookie `name` in the response's `Set-Cookie` headers.
fn cookie(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| {
            let pair = value.split(';').next()?;
            let (key, value) = pair.split_once('=')?;
            (key.trim() == name).then(|| value.trim().trim_matches('"').to_owned())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn extract(name: &str, kind: ExtractKind) -> Extract {
        Extract {
            name: name.to_owned(),
            kind,
            default: None,
        }
    }

    fn jsonpath(source: &str) -> ExtractKind {
        ExtractKind::JsonPath {
            path: JsonPath::parse(source).unwrap(),
            source: source.to_owned(),
        }
    }

    #[test]
    fn jsonpath_keeps_the_type() {
        let headers = http::HeaderMap::new();
        let body = br#"[{"id": 7, "title": "A"}]"#;
        let response = ResponseView::new(200, &headers, body);
        let mut vars = Vars::new();
        extract("courseId", jsonpath("$[0].id"))
            .apply(&response, &mut vars)
            .unwrap();
        assert_eq!(vars.get("courseId"), Some(json!(7)));
    }

    #[test]
    fn jsonpath_failures_say_what_came() {
        let headers = http::HeaderMap::new();
        let body = br#"{"status":"ok","eventsPeriodSecs":30000}"#;
        let response = ResponseView::new(200, &headers, body);
        let err = extract("gameSessionId", jsonpath("$.gameSessionId"))
            .apply(&response, &mut Vars::new())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "extract gameSessionId: $.gameSessionId found nothing in a 40-byte JSON body"
        );
        let html = ResponseView::new(502, &headers, b"<html>Bad gateway</html>");
        let err = extract("x", jsonpath("$.x"))
            .apply(&html, &mut Vars::new())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "extract x: $.x needs a JSON body, got a 24-byte body that is not JSON (starts `<html>Bad gateway</html>`)"
        );
    }

    #[test]
    fn defaults_stand_in_for_nothing_found() {
        let headers = http::HeaderMap::new();
        let response = ResponseView::new(200, &headers, b"{}");
        let mut vars = Vars::new();
        let mut rule = extract("level", jsonpath("$.level"));
        rule.default = Some(json!(1));
        rule.apply(&response, &mut vars).unwrap();
        assert_eq!(vars.get("level"), Some(json!(1)));
    }

    #[test]
    fn regex_takes_the_first_group() {
        let headers = http::HeaderMap::new();
        let response = ResponseView::new(200, &headers, b"token=abc123; next");
        let mut vars = Vars::new();
        extract("t", ExtractKind::Regex(Regex::new(r"token=(\w+)").unwrap()))
            .apply(&response, &mut vars)
            .unwrap();
        assert_eq!(vars.get("t"), Some(json!("abc123")));
        extract("w", ExtractKind::Regex(Regex::new(r"n\w+").unwrap()))
            .apply(&response, &mut vars)
            .unwrap();
        assert_eq!(vars.get("w"), Some(json!("next")));
    }

    #[test]
    fn headers_and_cookies() {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-token", "T1".parse().unwrap());
        headers.append(
            http::header::SET_COOKIE,
            "theme=dark; Path=/".parse().unwrap(),
        );
        headers.append(
            http::header::SET_COOKIE,
            "sid=s-42; Path=/; HttpOnly".parse().unwrap(),
        );
        let response = ResponseView::new(200, &headers, b"");
        let mut vars = Vars::new();
        extract("t", ExtractKind::Header("x-token".parse().unwrap()))
            .apply(&response, &mut vars)
            .unwrap();
        extract("sid", ExtractKind::Cookie("sid".to_owned()))
            .apply(&response, &mut vars)
            .unwrap();
        assert_eq!(vars.get("t"), Some(json!("T1")));
        assert_eq!(vars.get("sid"), Some(json!("s-42")));
        headers_regex(&response, &mut vars);
        let err = extract("c", ExtractKind::Cookie("csrf".to_owned()))
            .apply(&response, &mut vars)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "extract c: the response sets no `csrf` cookie"
        );
    }

    fn headers_regex(response: &ResponseView<'_>, vars: &mut Vars) {
        let rule = extract(
            "n",
            ExtractKind::HeaderRegex {
                header: http::header::SET_COOKIE,
                regex: Regex::new(r"theme=(\w+)").unwrap(),
            },
        );
        rule.apply(response, vars).unwrap();
        assert_eq!(vars.get("n"), Some(json!("dark")));
    }

    #[test]
    fn metas_and_links() {
        let headers = http::HeaderMap::new();
        let html = br#"<meta name="csrf-token" content="T0k"><table>
            <a href="/admin/p/3/change/">/about/</a>
            <a href="/admin/p/4/change/">/notes-user01/</a></table>"#;
        let response = ResponseView::new(200, &headers, html);
        let mut vars = Vars::new();
        vars.set("name", json!("user01"));
        extract("t", ExtractKind::Meta("csrf-token".to_owned()))
            .apply(&response, &mut vars)
            .unwrap();
        assert_eq!(vars.get("t"), Some(json!("T0k")));
        let link = |text: &str| ExtractKind::Link {
            text: Template::literal(text),
            regex: Some(Regex::new("/p/([^/]+)/").unwrap()),
        };
        extract("id", link("/notes-user01/"))
            .apply(&response, &mut vars)
            .unwrap();
        assert_eq!(vars.get("id"), Some(json!("4")));
        let err = extract("id", link("/notes-user02/"))
            .apply(&response, &mut vars)
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("extract id: no link with the text \"/notes-user02/\"")
        );
    }

    #[test]
    fn form_fields() {
        let headers = http::HeaderMap::new();
        let html = br#"<form><input type="hidden" name="csrf" value="a&amp;b">
            <select name="site"><option value="1">a</option><option value="2" selected>b</option></select>
            <input name="empty"></form>"#;
        let response = ResponseView::new(200, &headers, html);
        let mut vars = Vars::new();
        for (name, expected) in [("csrf", "a&b"), ("site", "2"), ("empty", "")] {
            extract(name, ExtractKind::FormField(name.to_owned()))
                .apply(&response, &mut vars)
                .unwrap();
            assert_eq!(vars.get(name), Some(json!(expected)));
        }
        let err = extract("x", ExtractKind::FormField("none".to_owned()))
            .apply(&response, &mut vars)
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("extract x: no form field `none` with a value in a ")
        );
    }
}
