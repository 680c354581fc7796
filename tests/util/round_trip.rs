//! Convert's extracts, read back by the engine: each extract a converted scenario holds is
//! applied with the engine's own reader (`chorus::scenario::Extract`, the one the run uses) to
//! the recorded response its request replays (`recorded: N`), and must find a value that the
//! recording sent afterwards. Convert chose the rule by looking at that response, so a rule
//! the engine reads otherwise (an attribute unquoted, an entity, a JSONPath written wrong)
//! fails here at once, without a server.

use std::path::Path;

use chorus::har::Entry;
use chorus::scenario::{Extract, ExtractKind, ResponseView, Vars};

/// Applies every extract of `scenario` to the response of the `capture` entry its request
/// replays; panics naming the extract, the entry and what was found unless each finds a
/// value that a later entry of the capture sends. Returns how many extracts were checked.
pub fn assert_extracts_find_what_the_recording_sent(scenario: &Path, capture: &Path) -> usize {
    let (har, _) = chorus::har::read::read_file(capture)
        .unwrap_or_else(|err| panic!("{} does not read: {err}", capture.display()));
    let entries = &har.log.entries;
    let mut checked = 0;
    let mut problems = Vec::new();
    for request in super::apps::scenario_requests(scenario) {
        let Some(number) = request.recorded else {
            continue;
        };
        let index = number as usize - 1;
        let entry = entries
            .get(index)
            .unwrap_or_else(|| panic!("{}: no entry {number} in the capture", request.name));
        let response = RecordedResponse::of(entry);
        let view = response.view();
        for extract in &request.extract {
            // A link found by a text made from the user's row needs that row.
            if matches!(extract.kind, ExtractKind::Link { .. }) {
                continue;
            }
            checked += 1;
            match found(extract, &view) {
                Err(message) => {
                    problems.push(format!("{} (entry {number}): {message}", request.name))
                }
                Ok(None) => {}
                Ok(Some(value)) if !sent_later(entries, index, &value) => problems.push(format!(
                    "{} (entry {number}): extract {} found {value:?}, which no later entry sends",
                    request.name, extract.name
                )),
                Ok(Some(_)) => {}
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{}: the engine reads convert's extracts otherwise than convert meant:\n{}",
        scenario.display(),
        problems.join("\n")
    );
    checked
}

/// What `extract` finds as text; `None` when it fell back to its default or found a value
/// that is not a string or a number (nothing to look for in a request).
fn found(extract: &Extract, view: &ResponseView<'_>) -> Result<Option<String>, String> {
    let mut vars = Vars::new();
    extract
        .apply(view, &mut vars)
        .map_err(|err| err.to_string())?;
    let value = vars.get(&extract.name).unwrap_or_default();
    if extract.default.as_ref() == Some(&value) {
        return Ok(None);
    }
    match value {
        serde_json::Value::String(text) if text.is_empty() => {
            Err(format!("extract {} found an empty string", extract.name))
        }
        serde_json::Value::String(text) => Ok(Some(text)),
        serde_json::Value::Number(number) => Ok(Some(number.to_string())),
        _ => Ok(None),
    }
}

/// A recorded response as chorus's extracts read one.
pub struct RecordedResponse {
    status: u16,
    headers: http::HeaderMap,
    body: Vec<u8>,
    url: Option<url::Url>,
}

impl RecordedResponse {
    pub fn of(entry: &Entry) -> RecordedResponse {
        let mut headers = http::HeaderMap::new();
        for h in &entry.response.headers {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(h.name.as_bytes()),
                http::HeaderValue::from_str(&h.value),
            ) {
                headers.append(name, value);
            }
        }
        let body = entry.response.content.bytes().unwrap_or_default();
        RecordedResponse {
            status: entry.response.status,
            headers,
            body,
            url: url::Url::parse(&entry.request.url).ok(),
        }
    }

    pub fn view(&self) -> ResponseView<'_> {
        let view = ResponseView::new(self.status, &self.headers, &self.body);
        match &self.url {
            Some(url) => view.at(url),
            None => view,
        }
    }
}

/// Whether an entry after `index` sends `value`: in its URL, a header or its body, as is,
/// percent-encoded or escaped for JSON.
fn sent_later(entries: &[Entry], index: usize, value: &str) -> bool {
    let encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
    let json = serde_json::to_string(value).unwrap_or_default();
    let json = json.trim_matches('"').to_owned();
    let forms = [value.to_owned(), encoded, json];
    entries[index + 1..].iter().any(|entry| {
        let request = &entry.request;
        let body = request
            .post_data
            .as_ref()
            .and_then(|data| data.bytes())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default();
        forms.iter().any(|form| {
            request.url.contains(form.as_str())
                || body.contains(form.as_str())
                || request
                    .headers
                    .iter()
                    .any(|h| h.value.contains(form.as_str()))
        })
    })
}
