//! The proof of an extract: applied with the engine's own extraction code to the recorded
//! response it reads, it must give the recorded value.

use std::collections::HashMap;

use super::model::{Exchange, ExtractSource};
use crate::scenario::{Extract, ExtractKind, ResponseView, Template, Vars};

/// The engine's rule for an extract source.
pub(crate) fn extract_kind(source: &ExtractSource) -> Option<ExtractKind> {
    Some(match source {
        ExtractSource::JsonPath(path) => ExtractKind::JsonPath {
            path: serde_json_path::JsonPath::parse(path).ok()?,
            source: path.clone(),
        },
        ExtractSource::Header(name) => {
            ExtractKind::Header(http::HeaderName::from_bytes(name.as_bytes()).ok()?)
        }
        ExtractSource::Regex(pattern) => ExtractKind::Regex(regex::Regex::new(pattern).ok()?),
        ExtractSource::HeaderRegex { header, pattern } => ExtractKind::HeaderRegex {
            header: http::HeaderName::from_bytes(header.as_bytes()).ok()?,
            regex: regex::Regex::new(pattern).ok()?,
        },
        ExtractSource::FormField(name) => ExtractKind::FormField(name.clone()),
        ExtractSource::Meta(name) => ExtractKind::Meta(name.clone()),
        ExtractSource::Link { text, pattern } => ExtractKind::Link {
            text: Template::parse(text).ok()?,
            regex: Some(regex::Regex::new(pattern).ok()?),
        },
    })
}

/// The engine's rules for the extract sources tried so far, each compiled once (a regex, a
/// JSONPath). Cleared when it holds many: the same few sources are tried again and again.
#[derive(Default)]
pub(crate) struct Rules(HashMap<ExtractSource, Option<Extract>>);

impl Rules {
    const MOST: usize = 4096;

    fn get(&mut self, source: &ExtractSource) -> Option<&Extract> {
        if !self.0.contains_key(source) {
            if self.0.len() >= Self::MOST {
                self.0.clear();
            }
            let rule = extract_kind(source).map(|kind| Extract {
                name: "proof".to_owned(),
                kind,
                default: None,
            });
            self.0.insert(source.clone(), rule);
        }
        self.0.get(source)?.as_ref()
    }
}

/// What the extract gives on the recorded response: the proof that it reads the value it was
/// made for (a regex finds the first match, which may be another element's).
pub(crate) fn extracted(
    source: &ExtractSource,
    exchange: &Exchange,
    vars: &Vars,
    rules: &mut Rules,
) -> Option<String> {
    let rule = rules.get(source)?;
    let mut headers = http::HeaderMap::new();
    for (name, value) in &exchange.response_headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    let body = exchange.response_body.as_deref().unwrap_or_default();
    let view = ResponseView::new(exchange.status, &headers, body.as_bytes()).at(&exchange.url);
    let mut scratch = vars.clone();
    rule.apply(&view, &mut scratch).ok()?;
    match scratch.get("proof")? {
        serde_json::Value::String(text) => Some(text),
        other => Some(other.to_string()),
    }
}
