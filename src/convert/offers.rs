//! What a response offers for correlation: every JSON leaf, header, `Location` part and HTML
//! form field with the rule that extracts it, and values found in raw text by their context.

use regex::Regex;
use serde_json::Value;

use super::model::{Exchange, ExtractSource};

/// Response headers that never carry a value worth correlating.
const PLAIN_RESPONSE_HEADERS: &[&str] = &[
    "date",
    "content-length",
    "content-type",
    "server",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "vary",
    "set-cookie",
    "cache-control",
    "expires",
    "last-modified",
    "etag",
    "age",
    "content-encoding",
    "accept-ranges",
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-allow-headers",
    "access-control-allow-methods",
    "access-control-expose-headers",
    "x-powered-by",
    "strict-transport-security",
    "x-content-type-options",
    "x-frame-options",
    "x-xss-protection",
    "referrer-policy",
    "content-security-policy",
];

/// A value a response offers, and how to extract it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Offer {
    pub(crate) value: String,
    pub(crate) source: ExtractSource,
    pub(crate) key: Option<String>,
}

/// Every value `exchange`'s response offers: JSON leaves, headers, HTML form fields.
pub(crate) fn offers(exchange: &Exchange) -> Vec<Offer> {
    let mut out = Vec::new();
    for (name, value) in &exchange.response_headers {
        let lower = name.to_ascii_lowercase();
        if PLAIN_RESPONSE_HEADERS.contains(&lower.as_str()) || value.is_empty() {
            continue;
        }
        if lower == "location" {
            location_offers(value, &mut out);
        } else {
            out.push(Offer {
                value: value.clone(),
                source: ExtractSource::Header(name.clone()),
                key: Some(name.clone()),
            });
        }
    }
    let Some(body) = &exchange.response_body else {
        return out;
    };
    let mime = exchange.response_mime.to_ascii_lowercase();
    if mime.contains("json") || body.trim_start().starts_with(['{', '[']) {
        if let Ok(value) = serde_json::from_str::<Value>(body) {
            json_offers(&value, "$".to_owned(), None, &mut out);
            return out;
        }
    }
    if mime.contains("html") {
        html_offers(body, &mut out);
    }
    out
}

fn json_offers(value: &Value, path: String, key: Option<&str>, out: &mut Vec<Offer>) {
    match value {
        Value::Object(map) => {
            for (name, child) in map {
                json_offers(child, json_child_path(&path, name), Some(name), out);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                json_offers(child, format!("{path}[{index}]"), key, out);
            }
        }
        Value::String(text) => out.push(Offer {
            value: text.clone(),
            source: ExtractSource::JsonPath(path),
            key: key.map(str::to_owned),
        }),
        Value::Number(number) => out.push(Offer {
            value: number.to_string(),
            source: ExtractSource::JsonPath(path),
            key: key.map(str::to_owned),
        }),
        Value::Bool(_) | Value::Null => {}
    }
}

fn json_child_path(parent: &str, name: &str) -> String {
    let plain = !name.is_empty()
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        format!("{parent}.{name}")
    } else {
        format!(
            "{parent}['{}']",
            name.replace('\\', "\\\\").replace('\'', "\\'")
        )
    }
}

/// `Location: /items/42?tab=x`: each path segment and query value, by a regular expression.
fn location_offers(location: &str, out: &mut Vec<Offer>) {
    let (path, query) = location.split_once('?').unwrap_or((location, ""));
    let segments: Vec<&str> = path.split('/').collect();
    for (index, segment) in segments.iter().enumerate() {
        // Skip the empty root and a scheme such as `https:`.
        if segment.is_empty() || (index == 0 && segment.ends_with(':')) {
            continue;
        }
        let before = segments[..index].join("/");
        out.push(Offer {
            value: (*segment).to_owned(),
            source: ExtractSource::HeaderRegex {
                header: "Location".to_owned(),
                pattern: format!("{}/([^/?#]+)", regex::escape(&before)),
            },
            key: index.checked_sub(1).map(|prev| segments[prev].to_owned()),
        });
    }
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        out.push(Offer {
            value: value.into_owned(),
            source: ExtractSource::HeaderRegex {
                header: "Location".to_owned(),
                pattern: format!("[?&]{}=([^&#]+)", regex::escape(&name)),
            },
            key: Some(name.into_owned()),
        });
    }
}

fn html_offers(body: &str, out: &mut Vec<Offer>) {
    static INPUT: std::sync::OnceLock<(Regex, Regex)> = std::sync::OnceLock::new();
    let (input, attribute) = INPUT.get_or_init(|| {
        (
            Regex::new(r"(?is)<input\b[^>]*>").expect("valid regex"),
            Regex::new(r#"(?is)\b(name|value)\s*=\s*(?:"([^"]*)"|'([^']*)')"#)
                .expect("valid regex"),
        )
    });
    for tag in input.find_iter(body) {
        let mut name = None;
        let mut value = None;
        for captures in attribute.captures_iter(tag.as_str()) {
            let text = captures
                .get(2)
                .or_else(|| captures.get(3))
                .map_or("", |m| m.as_str());
            match captures[1].to_ascii_lowercase().as_str() {
                "name" => name = Some(text.to_owned()),
                _ => value = Some(decode_entities(text)),
            }
        }
        if let (Some(name), Some(value)) = (name, value) {
            if !value.is_empty() {
                out.push(Offer {
                    value,
                    source: ExtractSource::FormField(name.clone()),
                    key: Some(name),
                });
            }
        }
    }
}

/// A value found in the raw text of a response (an HTML link, a script, plain text): a regex
/// with the ten characters before it as the left boundary and the character after it (or the
/// end) as the right one.
pub(crate) fn raw_offer(exchange: &Exchange, value: &str) -> Option<Offer> {
    let body = exchange.response_body.as_deref()?;
    let at = body.find(value)?;
    let mut left_start = at.saturating_sub(10);
    while !body.is_char_boundary(left_start) {
        left_start += 1;
    }
    let left = &body[left_start..at];
    if left.is_empty() {
        return None;
    }
    let right = body[at + value.len()..].chars().next();
    let capture = match right {
        Some(stop) => format!(
            "([^{}]+)",
            regex::escape(&stop.to_string()).replace(']', "\\]")
        ),
        None => "(.+)$".to_owned(),
    };
    Some(Offer {
        value: value.to_owned(),
        source: ExtractSource::Regex(format!("{}{capture}", regex::escape(left))),
        key: None,
    })
}

fn decode_entities(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::testing::exchange;

    #[test]
    fn html_hidden_inputs_are_offered() {
        let mut page = exchange("GET", "http://app/form", 200, "", "");
        page.response_mime = "text/html".to_owned();
        page.response_body =
            Some(r#"<form><input type="hidden" name="csrf" value="t0k3nXYZ99"></form>"#.to_owned());
        let offered = offers(&page);
        assert_eq!(
            offered,
            vec![Offer {
                value: "t0k3nXYZ99".to_owned(),
                source: ExtractSource::FormField("csrf".to_owned()),
                key: Some("csrf".to_owned())
            }]
        );
    }
}
