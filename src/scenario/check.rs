//! Checks on a response: status, a JSONPath value, body content. A failed check makes the
//! request a failure; its message says what was expected and what came.

use serde_json_path::JsonPath;

use super::extract::{ResponseView, snippet};

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
}

/// One check; a failed check makes the request a failure.
#[derive(Debug, Clone)]
pub struct Check {
    pub kind: CheckKind,
}

impl Check {
    /// `Err` says what was expected and what came.
    pub fn evaluate(&self, response: &ResponseView<'_>) -> Result<(), String> {
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
                .evaluate(&response)
                .is_ok()
        );
        assert_eq!(
            check(CheckKind::Status(vec![200, 201])).evaluate(&response),
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
                .evaluate(&response)
                .is_ok()
        );
        assert!(
            jsonpath("$.n", Some(json!(2.0)))
                .evaluate(&response)
                .is_ok()
        );
        assert!(jsonpath("$.n", None).evaluate(&response).is_ok());
        assert_eq!(
            jsonpath("$.status", Some(json!("done"))).evaluate(&response),
            Err(r#"check $.status: expected "done", got "ok""#.to_owned())
        );
        assert_eq!(
            jsonpath("$.missing", None).evaluate(&response),
            Err(
                "check $.missing: expected a value, found nothing in a 21-byte JSON body"
                    .to_owned()
            )
        );
    }

    #[test]
    fn body_checks() {
        let headers = http::HeaderMap::new();
        let response = ResponseView::new(200, &headers, b"Welcome, ada");
        assert!(
            check(CheckKind::BodyContains("ada".to_owned()))
                .evaluate(&response)
                .is_ok()
        );
        assert!(
            check(CheckKind::BodyNotContains("error".to_owned()))
                .evaluate(&response)
                .is_ok()
        );
        assert_eq!(
            check(CheckKind::BodyContains("bob".to_owned())).evaluate(&response),
            Err("expected the body to contain \"bob\", got a 12-byte body that is not JSON (starts `Welcome, ada`)".to_owned())
        );
    }
}
