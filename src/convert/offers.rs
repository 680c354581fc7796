//! What a response offers for correlation: every JSON leaf, header, `Location` part, HTML form
//! field and `<meta>` (read by `crate::html`, the engine's own reader) with the rule that
//! extracts it and what kind of place it is; links found by their text; and values found in
//! raw text by their context.

use regex::Regex;
use serde_json::Value;

use super::model::{Exchange, ExtractSource};
use crate::html::FieldKind;

/// Response headers that never carry a value worth correlating.
pub(crate) const PLAIN_RESPONSE_HEADERS: &[&str] = &[
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
    "www-authenticate",
    "location",
];

/// What kind of place offers a value: it decides which ties are certain and which rule reads
/// best.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Place {
    /// A JSON leaf; `in_array` when it sits in a list (a position that may hold another
    /// element next time).
    Json { in_array: bool },
    /// A path segment of a `Location`, after this path (`/issues`): handed over.
    Location { before: String },
    /// A query value of a `Location`.
    LocationQuery,
    /// Another response header.
    Header,
    /// An HTML form field (`hidden`: not one a person types into).
    FormField { hidden: bool },
    /// A `<meta name=... content=...>`.
    Meta,
    /// A link, found by its text.
    Link,
    /// Raw text, by the characters around it.
    Raw,
}

/// A value a response offers, and how to extract it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Offer {
    pub(crate) value: String,
    pub(crate) source: ExtractSource,
    pub(crate) key: Option<String>,
    pub(crate) place: Place,
}

/// Every value `exchange`'s response offers: JSON leaves, headers, `Location` parts, HTML form
/// fields and metas.
#[cfg(test)]
pub(crate) fn offers(exchange: &Exchange) -> Vec<Offer> {
    offers_where(exchange, &mut |_| true)
        .into_iter()
        .map(|(_, offer)| offer)
        .collect()
}

/// The offers of [`offers`] whose value `keep` accepts, each with its position in the whole
/// list; the others are never made (a JSON answer's every leaf would have its path written
/// out, for the few values a request sends).
pub(crate) fn offers_where(
    exchange: &Exchange,
    keep: &mut dyn FnMut(&str) -> bool,
) -> Vec<(usize, Offer)> {
    let mut out = Vec::new();
    for (name, value) in &exchange.response_headers {
        let lower = name.to_ascii_lowercase();
        if lower == "location" {
            location_offers(&exchange.url, value, &mut out);
        } else if !PLAIN_RESPONSE_HEADERS.contains(&lower.as_str()) && !value.is_empty() {
            out.push(Offer {
                value: value.clone(),
                source: ExtractSource::Header(name.clone()),
                key: Some(name.clone()),
                place: Place::Header,
            });
        }
    }
    let mut next = out.len();
    let mut kept: Vec<(usize, Offer)> = out
        .into_iter()
        .enumerate()
        .filter(|(_, offer)| keep(&offer.value))
        .collect();
    let Some(body) = &exchange.response_body else {
        return kept;
    };
    let mime = exchange.response_mime.to_ascii_lowercase();
    if mime.contains("json") || body.trim_start().starts_with(['{', '[']) {
        if let Ok(value) = serde_json::from_str::<Value>(body) {
            let mut leaves = Leaves {
                keep,
                next: &mut next,
                path: Vec::new(),
                out: &mut kept,
            };
            leaves.walk(&value, None);
            return kept;
        }
    }
    if let Some(page) = exchange.page() {
        for field in &page.fields {
            let Some(value) = field.value.as_ref().filter(|v| !v.is_empty()) else {
                continue;
            };
            // The first field of that name is the one `form_field` reads.
            if page.field(&field.name).map(|f| f as *const _) != Some(field as *const _) {
                continue;
            }
            if keep(value) {
                kept.push((
                    next,
                    Offer {
                        value: value.clone(),
                        source: ExtractSource::FormField(field.name.clone()),
                        key: Some(field.name.clone()),
                        place: Place::FormField {
                            hidden: field.kind == FieldKind::Hidden,
                        },
                    },
                ));
            }
            next += 1;
        }
        for (name, content) in &page.metas {
            if content.is_empty() || page.meta(name) != Some(content.as_str()) {
                continue;
            }
            if keep(content) {
                kept.push((
                    next,
                    Offer {
                        value: content.clone(),
                        source: ExtractSource::Meta(name.clone()),
                        key: Some(name.clone()),
                        place: Place::Meta,
                    },
                ));
            }
            next += 1;
        }
    }
    kept
}

/// One step of a JSONPath.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// The string and number leaves of a JSON answer as offers, in document order; a leaf's
/// path is written only when its value is kept.
struct Leaves<'k, 'o, 'v> {
    keep: &'k mut dyn FnMut(&str) -> bool,
    /// The position of the next leaf among all the offers.
    next: &'o mut usize,
    path: Vec<Step<'v>>,
    out: &'o mut Vec<(usize, Offer)>,
}

impl<'v> Leaves<'_, '_, 'v> {
    fn walk(&mut self, value: &'v Value, key: Option<&'v str>) {
        let number;
        let text = match value {
            Value::Object(map) => {
                for (name, child) in map {
                    self.path.push(Step::Key(name));
                    self.walk(child, Some(name));
                    self.path.pop();
                }
                return;
            }
            Value::Array(items) => {
                for (index, child) in items.iter().enumerate() {
                    self.path.push(Step::Index(index));
                    self.walk(child, key);
                    self.path.pop();
                }
                return;
            }
            Value::String(text) => text.as_str(),
            Value::Number(n) => {
                number = n.to_string();
                number.as_str()
            }
            Value::Bool(_) | Value::Null => return,
        };
        let index = *self.next;
        *self.next += 1;
        if !(self.keep)(text) {
            return;
        }
        let mut path = "$".to_owned();
        for step in &self.path {
            path = match step {
                Step::Key(name) => json_child_path(&path, name),
                Step::Index(index) => format!("{path}[{index}]"),
            };
        }
        self.out.push((
            index,
            Offer {
                place: Place::Json {
                    in_array: path.contains('['),
                },
                value: text.to_owned(),
                source: ExtractSource::JsonPath(path),
                key: key.map(str::to_owned),
            },
        ));
    }
}

pub(crate) fn json_child_path(parent: &str, name: &str) -> String {
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

/// The regex that finds the path segment after `before` in a `Location`, relative or
/// absolute: the scheme, host and port are not part of it, so it works against any `-H`.
pub(crate) fn location_pattern(before: &str) -> String {
    format!(
        "^(?:[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*)?{}/([^/?#]+)",
        regex::escape(before)
    )
}

/// `Location: /items/42?tab=x`: each path segment (by what comes before it) and query value.
fn location_offers(base: &url::Url, location: &str, out: &mut Vec<Offer>) {
    let Ok(target) = base.join(location) else {
        return;
    };
    let Some(segments) = target.path_segments() else {
        return;
    };
    let segments: Vec<&str> = segments.collect();
    for (index, segment) in segments.iter().enumerate() {
        if segment.is_empty() {
            continue;
        }
        let before = if index == 0 {
            String::new()
        } else {
            format!("/{}", segments[..index].join("/"))
        };
        out.push(Offer {
            value: super::slots::percent_decode(segment).into_owned(),
            source: ExtractSource::HeaderRegex {
                header: "Location".to_owned(),
                pattern: location_pattern(&before),
            },
            key: index.checked_sub(1).map(|prev| segments[prev].to_owned()),
            place: Place::Location { before },
        });
    }
    for (name, value) in target.query_pairs() {
        out.push(Offer {
            value: value.into_owned(),
            source: ExtractSource::HeaderRegex {
                header: "Location".to_owned(),
                pattern: format!("[?&]{}=([^&#]+)", regex::escape(&name)),
            },
            key: Some(name.into_owned()),
            place: Place::LocationQuery,
        });
    }
}

/// A value found in the raw text of a response (an HTML link, a script, plain text): a regex
/// with the ten characters before it as the left boundary and the character after it (or the
/// end) as the right one. The regex finds the first match, so the caller proves it.
/// `finder` looks for `value` (made once for the many bodies searched).
pub(crate) fn raw_offer(
    exchange: &Exchange,
    finder: &memchr::memmem::Finder<'_>,
    value: &str,
) -> Option<Offer> {
    let body = exchange.response_body.as_deref()?;
    // The first match, as `str::find` finds it (`value` is UTF-8 too: a match starts at a
    // character boundary).
    let at = finder.find(body.as_bytes())?;
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
    let pattern = format!("{}{capture}", regex::escape(left));
    Regex::new(&pattern).ok()?;
    Some(Offer {
        value: value.to_owned(),
        source: ExtractSource::Regex(pattern),
        key: None,
        place: Place::Raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::testing::exchange;

    #[test]
    fn html_fields_and_metas_are_offered() {
        let mut page = exchange("GET", "http://app/form", 200, "", "");
        page.response_mime = "text/html".to_owned();
        page.response_body = Some(
            r#"<meta name="csrf-token" content="m3ta"><form><input type="hidden" name="csrf" value="t0k3nXYZ99">
               <input name=title value='x'></form>"#
                .to_owned(),
        );
        let offered = offers(&page);
        assert_eq!(
            offered,
            vec![
                Offer {
                    value: "t0k3nXYZ99".to_owned(),
                    source: ExtractSource::FormField("csrf".to_owned()),
                    key: Some("csrf".to_owned()),
                    place: Place::FormField { hidden: true },
                },
                Offer {
                    value: "x".to_owned(),
                    source: ExtractSource::FormField("title".to_owned()),
                    key: Some("title".to_owned()),
                    place: Place::FormField { hidden: false },
                },
                Offer {
                    value: "m3ta".to_owned(),
                    source: ExtractSource::Meta("csrf-token".to_owned()),
                    key: Some("csrf-token".to_owned()),
                    place: Place::Meta,
                },
            ]
        );
    }

    #[test]
    fn location_parts_are_found_without_the_recorded_host() {
        let mut created = exchange(
            "POST",
            "http://127.0.0.1:9/projects/team/issues",
            302,
            "",
            "",
        );
        created.response_headers.push((
            "Location".to_owned(),
            "http://127.0.0.1:9/issues/7?tab=1".to_owned(),
        ));
        let offered = offers(&created);
        let id = offered.iter().find(|o| o.value == "7").unwrap();
        assert_eq!(
            id.place,
            Place::Location {
                before: "/issues".to_owned()
            }
        );
        let ExtractSource::HeaderRegex { pattern, .. } = &id.source else {
            panic!("{id:?}")
        };
        let regex = Regex::new(pattern).unwrap();
        for location in [
            "/issues/7",
            "http://other:8080/issues/7#x",
            "https://h/issues/7?tab=1",
        ] {
            assert_eq!(&regex.captures(location).unwrap()[1], "7", "{location}");
        }
        assert!(regex.captures("/projects/issues/7").is_none());
        assert!(
            offered
                .iter()
                .any(|o| o.value == "1" && o.place == Place::LocationQuery)
        );
    }
}
