//! `--redact`: passwords, tokens and cookies out of everything written. Two passes: by name on
//! the draft (headers, query parameters, body fields and cookies named like a secret), then by
//! value on the text: every secret value the capture held — found by name in requests and
//! responses, in cookies and in `Authorization` headers — is replaced wherever it is left,
//! comments included.

use serde_json::Value;

use super::model::{Draft, DraftBody, DraftStep, Exchange};
use super::slots::cookie_pairs;

pub(crate) const REDACTED: &str = "REDACTED";

/// Names that say a value is a secret.
pub(crate) fn secret_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    // `X-Custom-Auth`, `accessKey`, `private_key`: the words, however they are joined.
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let spaced = split_camel(key);
    [
        "password",
        "passwd",
        "pwd",
        "token",
        "secret",
        "authorization",
        "cookie",
        "api_key",
        "apikey",
        "api-key",
        "access_key",
        "accesskey",
        "access-key",
        "private_key",
        "privatekey",
        "private-key",
        "signature",
        "csrf",
        "xsrf",
        "credential",
        "jwt",
    ]
    .iter()
    .any(|word| lower.contains(word))
        || [
            "session",
            "sessionid",
            "session_id",
            "sessionkey",
            "session_key",
        ]
        .iter()
        .any(|end| lower.ends_with(end))
        || matches!(
            lower.as_str(),
            "sid" | "auth" | "pass" | "key" | "otp" | "pin" | "totp" | "mfa" | "sig"
        )
        || words
            .iter()
            .copied()
            .chain(spaced.iter().map(String::as_str))
            .any(|w| matches!(w, "auth" | "otp" | "pin" | "sig" | "key"))
}

/// `accessKey` as `["access", "key"]`.
fn split_camel(key: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut word = String::new();
    for c in key.chars() {
        if c.is_ascii_uppercase() && !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        if c.is_ascii_alphanumeric() {
            word.push(c.to_ascii_lowercase());
        } else if !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

fn scrub(value: &mut String) {
    if !value.contains("{{") {
        *value = REDACTED.to_owned();
    }
}

fn scrub_json(value: &mut Value, secret: bool) {
    match value {
        Value::Object(map) => map
            .iter_mut()
            .for_each(|(key, child)| scrub_json(child, secret || secret_key(key))),
        Value::Array(items) => items.iter_mut().for_each(|child| scrub_json(child, secret)),
        Value::String(text) if secret && !text.contains("{{") => *text = REDACTED.to_owned(),
        Value::Number(_) if secret => *value = Value::String(REDACTED.to_owned()),
        _ => {}
    }
}

/// Every cookie value that is not a template becomes `REDACTED`.
fn scrub_cookies(header: &mut String) {
    let pairs: Vec<String> = cookie_pairs(header)
        .map(|(name, value)| {
            if value.contains("{{") {
                format!("{name}={value}")
            } else {
                format!("{name}={REDACTED}")
            }
        })
        .collect();
    *header = pairs.join("; ");
}

/// The by-name pass over the draft.
pub(crate) fn redact(draft: &mut Draft) {
    fn visit(steps: &mut [DraftStep]) {
        for step in steps {
            match step {
                DraftStep::Request(request) => {
                    for (name, value) in &mut request.headers {
                        if name.eq_ignore_ascii_case("cookie") {
                            scrub_cookies(value);
                        } else if secret_key(name) {
                            scrub(value);
                        }
                    }
                    for (name, value) in &mut request.query {
                        if secret_key(name) {
                            scrub(value);
                        }
                    }
                    match &mut request.body {
                        DraftBody::Json(value) => scrub_json(value, false),
                        DraftBody::Form(pairs) => pairs
                            .iter_mut()
                            .filter(|(k, _)| secret_key(k))
                            .for_each(|(_, v)| scrub(v)),
                        DraftBody::Multipart(parts) => parts
                            .iter_mut()
                            .filter(|part| secret_key(&part.name))
                            .for_each(|part| scrub(&mut part.value)),
                        DraftBody::Raw { .. } | DraftBody::None => {}
                    }
                }
                DraftStep::Repeat { steps, .. } => visit(steps),
                DraftStep::Think(_) => {}
            }
        }
    }
    visit(&mut draft.on_start);
    for flow in &mut draft.flows {
        visit(&mut flow.steps);
    }
    visit(&mut draft.on_stop);
    for (_, _, why) in &mut draft.vars {
        if let Some(start) = why.find("(recorded ") {
            if let Some(end) = why[start..].find(')') {
                why.replace_range(start..start + end + 1, "(recorded value redacted)");
            }
        }
    }
}

/// Long and odd enough that replacing it everywhere cannot hit an ordinary word of the
/// scenario (a path segment such as `student`, a field name).
fn worth_replacing(value: &str) -> bool {
    let length = value.chars().count();
    let plain_word = value.chars().all(|c| c.is_ascii_alphabetic());
    length >= 6 && !(plain_word && length < 10) && value != REDACTED
}

fn json_secrets(value: &Value, secret: bool, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => map
            .iter()
            .for_each(|(key, child)| json_secrets(child, secret || secret_key(key), out)),
        Value::Array(items) => items
            .iter()
            .for_each(|child| json_secrets(child, secret, out)),
        Value::String(text) if secret => out.push(text.clone()),
        Value::Number(number) if secret => out.push(number.to_string()),
        _ => {}
    }
}

fn body_secrets(mime: &str, text: &str, out: &mut Vec<String>) {
    let trimmed = text.trim_start();
    if mime.contains("json") || trimmed.starts_with(['{', '[']) {
        if let Ok(value) = serde_json::from_str::<Value>(text) {
            json_secrets(&value, false, out);
            return;
        }
    }
    if mime.contains("x-www-form-urlencoded") {
        for (name, value) in url::form_urlencoded::parse(text.as_bytes()) {
            if secret_key(&name) {
                out.push(value.into_owned());
            }
        }
        return;
    }
    // Any other text: `token=...` or `token: ...` where a secret's name stands.
    static PAIR: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#"([A-Za-z][A-Za-z0-9_.-]*)\s*[=:]\s*"?([^\s"&;,<>]+)"#)
            .expect("a valid pattern")
    });
    for captures in PAIR.captures_iter(text) {
        if secret_key(&captures[1]) {
            out.push(captures[2].to_owned());
        }
    }
}

/// The secret values the capture holds, longest first.
pub(crate) fn secret_values(exchanges: &[Exchange]) -> Vec<String> {
    let mut out = Vec::new();
    for exchange in exchanges {
        for (name, value) in &exchange.request_headers {
            let lower = name.to_ascii_lowercase();
            if lower == "cookie" {
                out.extend(cookie_pairs(value).map(|(_, v)| v.to_owned()));
            } else if secret_key(&lower) {
                out.push(value.clone());
                // `Bearer abc`, `Basic dXNlcjpwYXNz`: the credential alone too.
                if let Some((_, credential)) = value.split_once(' ') {
                    out.push(credential.trim().to_owned());
                }
            }
        }
        for (name, value) in &exchange.response_headers {
            if name.eq_ignore_ascii_case("set-cookie") {
                let first = value.split(';').next().unwrap_or("");
                if let Some((_, cookie)) = first.split_once('=') {
                    out.push(cookie.trim().to_owned());
                }
            } else if secret_key(name) {
                out.push(value.clone());
            }
        }
        for (name, value) in exchange.url.query_pairs() {
            if secret_key(&name) {
                out.push(value.into_owned());
            }
        }
        if let Some(body) = &exchange.request_body {
            body_secrets(&body.mime, &body.text, &mut out);
        }
        if let Some(body) = &exchange.response_body {
            body_secrets(&exchange.response_mime, body, &mut out);
        }
    }
    out.retain(|value| worth_replacing(value));
    out.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    out.dedup();
    out
}

/// Replaces every secret value left in `text`, also in its JSON-escaped and percent-encoded
/// spellings, and says how many were found.
pub(crate) fn scrub_text(text: &str, secrets: &[String]) -> (String, usize) {
    let mut out = text.to_owned();
    let mut found = 0;
    for secret in secrets {
        let escaped = Value::String(secret.clone()).to_string();
        let escaped = escaped[1..escaped.len() - 1].to_owned();
        let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        for spelling in [secret.as_str(), escaped.as_str(), encoded.as_str()] {
            if out.contains(spelling) {
                found += 1;
                out = out.replace(spelling, REDACTED);
            }
        }
    }
    (out, found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::model::{DraftFlow, DraftRequest};
    use crate::convert::request::draft_request;
    use crate::convert::testing::exchange;
    use serde_json::json;

    #[test]
    fn secrets_are_found_by_name_in_requests_responses_and_cookies() {
        let mut login = exchange(
            "POST",
            "http://app/login?api_key=k3y-0000-1111",
            200,
            r#"{"username":"ann","password":"hunter2!"}"#,
            r#"{"sessionId":"s-9f8e7d6c5b","name":"Ann"}"#,
        );
        login
            .request_headers
            .push(("Authorization".to_owned(), "Bearer abc.def.ghi".to_owned()));
        login.request_headers.push((
            "Cookie".to_owned(),
            "theme=dark; csrf=Zx81Kq2Pw9".to_owned(),
        ));
        login.response_headers.push((
            "Set-Cookie".to_owned(),
            "sid=c00k1e-value; Path=/; HttpOnly".to_owned(),
        ));
        let secrets = secret_values(&[login]);
        for wanted in [
            "k3y-0000-1111",
            "hunter2!",
            "s-9f8e7d6c5b",
            "abc.def.ghi",
            "Bearer abc.def.ghi",
            "Zx81Kq2Pw9",
            "c00k1e-value",
        ] {
            assert!(
                secrets.contains(&wanted.to_owned()),
                "{wanted}: {secrets:?}"
            );
        }
        // Short plain words are not replaced everywhere ("dark", "Ann").
        assert!(!secrets.contains(&"dark".to_owned()), "{secrets:?}");
    }

    #[test]
    fn secret_names_however_they_are_written() {
        for name in [
            "access_key",
            "accessKey",
            "X-Access-Key",
            "signature",
            "X-Signature",
            "otp",
            "X-Auth",
            "X-Custom-Auth",
            "jwt",
            "pin",
            "private_key",
            "privateKey",
            "token",
        ] {
            assert!(secret_key(name), "{name}");
        }
        for name in [
            "username", "title", "pinned", "keyboard", "author", "spinner",
        ] {
            assert!(!secret_key(name), "{name}");
        }
        let mut found = Vec::new();
        body_secrets(
            "text/plain",
            "user=ada\ntoken=Zq81xx7\nnote: hello",
            &mut found,
        );
        assert_eq!(found, ["Zq81xx7"]);
    }

    #[test]
    fn text_is_scrubbed_in_every_spelling() {
        let secrets = vec!["a b&c\"d1".to_owned()];
        let (text, found) = scrub_text("x: \"a b&c\\\"d1\"\n# recorded a+b%26c%22d1\n", &secrets);
        assert_eq!(text, "x: \"REDACTED\"\n# recorded REDACTED\n");
        assert_eq!(found, 2);
    }

    #[test]
    fn the_draft_loses_secret_fields_and_cookie_values_but_keeps_templates() {
        let ex = exchange(
            "POST",
            "http://app/profile?token=t0k3n123",
            200,
            r#"{"name":"x","newPassword":"pa55word","nested":{"secret":42}}"#,
            "{}",
        );
        let mut request: DraftRequest = draft_request(&ex);
        request
            .headers
            .push(("Cookie".to_owned(), "a=1; b={{ session }}".to_owned()));
        let mut draft = Draft {
            flows: vec![DraftFlow {
                name: "f".to_owned(),
                weight: 1,
                comment: None,
                steps: vec![DraftStep::Request(Box::new(request))],
            }],
            ..Draft::default()
        };
        redact(&mut draft);
        let DraftStep::Request(request) = &draft.flows[0].steps[0] else {
            panic!()
        };
        assert_eq!(request.query[0].1, REDACTED);
        assert_eq!(request.headers[0].1, "a=REDACTED; b={{ session }}");
        assert_eq!(
            request.body,
            DraftBody::Json(
                json!({"name": "x", "newPassword": REDACTED, "nested": {"secret": REDACTED}})
            )
        );
    }
}
