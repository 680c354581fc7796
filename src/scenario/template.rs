//! Templates (`{{ expression }}` inserts in text) and conditions, compiled once at load and
//! rendered per request over one user's variables.
//!
//! Expressions are minijinja expressions compiled against one immutable environment that
//! holds the built-in functions. A template is cut into literal text and expressions at
//! load, so rendering is a loop of pushes and evaluations; a template without `{{` is a
//! static string and costs nothing. There are no `{% %}` blocks: `when:` and `repeat:` steps
//! do that job and keep scenarios readable.

use std::fmt::{self, Write as _};
use std::sync::{Arc, LazyLock};
use std::time::{SystemTime, UNIX_EPOCH};

use minijinja::{Environment, Expression, UndefinedBehavior, Value};

use super::limits::{Capped, MAX_RENDERED, too_large};
use super::precheck;
use super::vars::{Vars, to_json_within};

pub(crate) use super::functions::FUNCTIONS;

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    super::functions::register(&mut env);
    env
});

pub(super) fn unix_time() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
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

/// One compiled `{{ expression }}`.
#[derive(Clone)]
struct Expr {
    source: Arc<str>,
    compiled: Arc<Expression<'static, 'static>>,
    /// For a plain variable (`gameId`, `user.username`), its segments: read without the VM.
    path: Option<Arc<[Arc<str>]>>,
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{{ {} }}}}", self.source)
    }
}

impl Expr {
    fn compile(source: &str) -> Result<Expr, TemplateError> {
        let source = source.trim();
        if source.is_empty() {
            return Err(TemplateError::new(
                "empty `{{ }}`: put a variable or expression inside",
            ));
        }
        // minijinja's parser recurses on `not` and `-` without a limit.
        if let Some(why) = precheck::too_deep(source) {
            return Err(TemplateError::new(why));
        }
        let compiled = ENV
            .compile_expression_owned(source.to_owned())
            .map_err(|err| TemplateError::new(describe(&err)))?;
        // minijinja looks filters and tests up when it runs; look them up now.
        if let Some(unknown) = precheck::unknown_filter_or_test(source, &ENV) {
            return Err(TemplateError::new(unknown));
        }
        // An expression of constants (`1 / 0`, `random_string(-1)`) fails the same way for
        // every user: evaluate it once here so that it fails at load. Not `env(..)`: its
        // values may come with the scenario (a cluster worker's), and loading checks them.
        let reads_nothing = compiled
            .undeclared_variables(false)
            .iter()
            .all(|name| FUNCTIONS.contains(&name.as_str()) && name != "env");
        if reads_nothing {
            if let Err(err) = compiled.eval(Vars::new().context()) {
                return Err(TemplateError::new(describe(&err)));
            }
        }
        let plain = source.split('.').all(|segment| {
            let mut chars = segment.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        let keywords = ["true", "false", "none", "True", "False", "None", "loop"];
        let path = (plain && !keywords.contains(&source))
            .then(|| source.split('.').map(Arc::from).collect());
        Ok(Expr {
            source: Arc::from(source),
            compiled: Arc::new(compiled),
            path,
        })
    }

    fn eval(&self, vars: &Vars) -> Result<Value, TemplateError> {
        if let Some(path) = &self.path {
            if let Some(value) = lookup(vars, path) {
                return Ok(value);
            }
        }
        let value = self.compiled.eval(vars.context()).map_err(|err| {
            TemplateError::new(format!("{{{{ {} }}}}: {}", self.source, describe(&err)))
        })?;
        if value.is_undefined() {
            return Err(TemplateError::new(format!(
                "{{{{ {} }}}}: undefined (no variable of that name has been set)",
                self.source
            )));
        }
        Ok(value)
    }

    /// Variables the expression reads, dotted (`user.username`), minus built-in functions.
    /// An expression that allows for a missing variable (`| default(..)`, `is defined`)
    /// reports none, so loading does not call its optional variables unknown.
    fn variables(&self) -> Vec<String> {
        let optional = [
            "default(",
            "| d(",
            "is defined",
            "is undefined",
            "is not defined",
        ];
        if optional.iter().any(|marker| self.source.contains(marker)) {
            return Vec::new();
        }
        let mut names: Vec<String> = self
            .compiled
            .undeclared_variables(true)
            .into_iter()
            .filter(|name| !FUNCTIONS.contains(&name.as_str()))
            .collect();
        names.sort();
        names
    }
}

/// A plain variable read directly; `None` sends the expression to the VM (which also
/// produces the error message when something is missing).
fn lookup(vars: &Vars, path: &[Arc<str>]) -> Option<Value> {
    let (first, rest) = path.split_first()?;
    let mut value = vars.lookup(first)?.clone();
    for segment in rest {
        value = value.get_attr(segment).ok()?;
        if value.is_undefined() {
            return None;
        }
    }
    Some(value)
}

/// A minijinja error in one line, without its debug dump.
fn describe(err: &minijinja::Error) -> String {
    let mut text = match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Expr(Expr),
}

/// A JSON value whose strings are templates.
#[derive(Debug, Clone)]
enum JsonNode {
    /// A subtree without templates.
    Static(serde_json::Value),
    Template(Template),
    Array(Vec<JsonNode>),
    Object(Vec<(String, JsonNode)>),
}

impl JsonNode {
    fn build(value: &serde_json::Value) -> Result<JsonNode, TemplateError> {
        Ok(match value {
            serde_json::Value::String(text) => {
                let template = Template::parse(text)?;
                if template.is_static() {
                    JsonNode::Static(value.clone())
                } else {
                    JsonNode::Template(template)
                }
            }
            serde_json::Value::Array(items) => {
                let items = items
                    .iter()
                    .map(JsonNode::build)
                    .collect::<Result<Vec<_>, _>>()?;
                if items.iter().all(|item| matches!(item, JsonNode::Static(_))) {
                    JsonNode::Static(value.clone())
                } else {
                    JsonNode::Array(items)
                }
            }
            serde_json::Value::Object(map) => {
                let mut fields = Vec::with_capacity(map.len());
                for (key, item) in map {
                    fields.push((key.clone(), JsonNode::build(item)?));
                }
                if fields
                    .iter()
                    .all(|(_, item)| matches!(item, JsonNode::Static(_)))
                {
                    JsonNode::Static(value.clone())
                } else {
                    JsonNode::Object(fields)
                }
            }
            other => JsonNode::Static(other.clone()),
        })
    }

    fn render(&self, vars: &Vars) -> Result<serde_json::Value, TemplateError> {
        Ok(match self {
            JsonNode::Static(value) => value.clone(),
            JsonNode::Template(template) => template.render_value(vars)?,
            JsonNode::Array(items) => serde_json::Value::Array(
                items
                    .iter()
                    .map(|item| item.render(vars))
                    .collect::<Result<_, _>>()?,
            ),
            JsonNode::Object(fields) => {
                let mut map = serde_json::Map::with_capacity(fields.len());
                for (key, item) in fields {
                    map.insert(key.clone(), item.render(vars)?);
                }
                serde_json::Value::Object(map)
            }
        })
    }

    fn each_expr(&self, visit: &mut dyn FnMut(&Expr)) {
        match self {
            JsonNode::Static(_) => {}
            JsonNode::Template(template) => template.each_expr(visit),
            JsonNode::Array(items) => items.iter().for_each(|item| item.each_expr(visit)),
            JsonNode::Object(fields) => fields.iter().for_each(|(_, item)| item.each_expr(visit)),
        }
    }

    fn collect_variables(&self, names: &mut Vec<String>) {
        match self {
            JsonNode::Static(_) => {}
            JsonNode::Template(template) => names.extend(template.variables()),
            JsonNode::Array(items) => items.iter().for_each(|item| item.collect_variables(names)),
            JsonNode::Object(fields) => fields
                .iter()
                .for_each(|(_, item)| item.collect_variables(names)),
        }
    }
}

#[derive(Debug, Clone)]
enum Kind {
    Static,
    /// A JSON value without templates; `source` is its JSON text.
    StaticJson(Arc<serde_json::Value>),
    /// Exactly one `{{ expression }}` and nothing else: keeps the value's type.
    Single(Expr),
    Parts(Arc<[Part]>),
    Json(Arc<JsonNode>),
}

/// A compiled template. One without `{{` is a static string and renders without work.
#[derive(Debug, Clone)]
pub struct Template {
    /// The source text; for a static template, also what it renders to.
    source: String,
    kind: Kind,
}

impl Template {
    /// Compiles `source`: literal text with `{{ expression }}` inserts.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let parts = split(source)?;
        let kind = match parts.as_slice() {
            [] | [Part::Text(_)] => Kind::Static,
            [Part::Expr(expr)] => Kind::Single(expr.clone()),
            _ => Kind::Parts(parts.into()),
        };
        Ok(Template {
            source: source.to_owned(),
            kind,
        })
    }

    /// A template that renders `text` as it is, even if it contains `{{`.
    pub fn literal(text: &str) -> Template {
        Template {
            source: text.to_owned(),
            kind: Kind::Static,
        }
    }

    /// A JSON body: a JSON value whose strings are templates. Renders to JSON text; a string
    /// that is exactly one `{{ expression }}` becomes the expression's value (a number stays
    /// a number).
    pub fn json(value: &serde_json::Value) -> Result<Template, TemplateError> {
        let node = JsonNode::build(value)?;
        let source = value.to_string();
        Ok(match node {
            JsonNode::Static(value) => Template {
                source,
                kind: Kind::StaticJson(Arc::new(value)),
            },
            node => Template {
                source,
                kind: Kind::Json(Arc::new(node)),
            },
        })
    }

    /// The text it was compiled from (for a JSON template, the JSON text with the
    /// templates in its strings).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when rendering needs no variables.
    pub fn is_static(&self) -> bool {
        matches!(self.kind, Kind::Static | Kind::StaticJson(_))
    }

    /// Renders to text.
    pub fn render(&self, vars: &Vars) -> Result<String, TemplateError> {
        match &self.kind {
            Kind::Static | Kind::StaticJson(_) => Ok(self.source.clone()),
            Kind::Single(expr) => {
                let value = expr.eval(vars)?;
                match value.as_str() {
                    Some(text) if text.len() > MAX_RENDERED => Err(too_large()),
                    Some(text) => Ok(text.to_owned()),
                    None => {
                        let mut out = Capped(String::new());
                        push_value(&mut out, &value).map_err(|_| too_large())?;
                        Ok(out.0)
                    }
                }
            }
            Kind::Parts(parts) => {
                let mut out = Capped(String::with_capacity(self.source.len() + 16));
                for part in parts.iter() {
                    let written = match part {
                        Part::Text(text) => out.write_str(text),
                        Part::Expr(expr) => push_value(&mut out, &expr.eval(vars)?),
                    };
                    written.map_err(|_| too_large())?;
                }
                Ok(out.0)
            }
            Kind::Json(node) => Ok(node.render(vars)?.to_string()),
        }
    }

    /// Renders to a JSON value: a template that is exactly one `{{ expression }}` keeps the
    /// expression's type; a JSON template gives its value; any other renders to a string.
    pub fn render_value(&self, vars: &Vars) -> Result<serde_json::Value, TemplateError> {
        match &self.kind {
            Kind::Static => Ok(serde_json::Value::String(self.source.clone())),
            Kind::StaticJson(value) => Ok((**value).clone()),
            Kind::Single(expr) => {
                let mut budget = MAX_RENDERED;
                to_json_within(&expr.eval(vars)?, &mut budget).ok_or_else(too_large)
            }
            Kind::Parts(_) => self.render(vars).map(serde_json::Value::String),
            Kind::Json(node) => node.render(vars),
        }
    }

    /// Variables the template reads, dotted (`user.username`), sorted, without duplicates.
    pub fn variables(&self) -> Vec<String> {
        let mut names = Vec::new();
        match &self.kind {
            Kind::Static | Kind::StaticJson(_) => {}
            Kind::Single(expr) => names.extend(expr.variables()),
            Kind::Parts(parts) => {
                for part in parts.iter() {
                    if let Part::Expr(expr) = part {
                        names.extend(expr.variables());
                    }
                }
            }
            Kind::Json(node) => node.collect_variables(&mut names),
        }
        names.sort();
        names.dedup();
        names
    }

    /// Environment variables the template reads by name (`env("API_KEY")`), so that loading
    /// can refuse a scenario whose variables are not set.
    pub(crate) fn env_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        self.each_expr(&mut |expr| names.extend(super::functions::env_names(&expr.source)));
        names
    }

    fn each_expr(&self, visit: &mut dyn FnMut(&Expr)) {
        match &self.kind {
            Kind::Static | Kind::StaticJson(_) => {}
            Kind::Single(expr) => visit(expr),
            Kind::Parts(parts) => {
                for part in parts.iter() {
                    if let Part::Expr(expr) = part {
                        visit(expr);
                    }
                }
            }
            Kind::Json(node) => node.each_expr(visit),
        }
    }

    /// For a default request name: the text with each `{{ expression }}` shown as
    /// `[name]` (the first variable the expression reads, e.g. `[gameId]`).
    pub(crate) fn display_with_placeholders(&self) -> String {
        let placeholder = |expr: &Expr| {
            let name = expr
                .variables()
                .into_iter()
                .next()
                .unwrap_or_else(|| "value".to_owned());
            format!("[{name}]")
        };
        match &self.kind {
            Kind::Static | Kind::StaticJson(_) | Kind::Json(_) => self.source.clone(),
            Kind::Single(expr) => placeholder(expr),
            Kind::Parts(parts) => parts
                .iter()
                .map(|part| match part {
                    Part::Text(text) => text.clone(),
                    Part::Expr(expr) => placeholder(expr),
                })
                .collect(),
        }
    }

    /// The literal text before the first `{{` (all of it for a static template).
    pub(crate) fn static_prefix(&self) -> &str {
        match self.source.find("{{") {
            Some(at) if !self.is_static() => &self.source[..at],
            _ => &self.source,
        }
    }
}

/// A value as text: strings as they are, booleans and none as JSON writes them (`true`,
/// `null`, not Python's `True`, `None`), anything else as minijinja shows it.
fn push_value(out: &mut Capped, value: &Value) -> fmt::Result {
    use minijinja::value::ValueKind;
    match value.kind() {
        ValueKind::String => out.write_str(value.as_str().unwrap_or_default()),
        ValueKind::Bool => out.write_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::None => out.write_str("null"),
        _ => write!(out, "{value}"),
    }
}

/// Cuts `source` into literal text and `{{ expression }}` parts.
fn split(source: &str) -> Result<Vec<Part>, TemplateError> {
    // `{% ... %}` is a Jinja block, which chorus does not run: say so rather than send it.
    if let Some(at) = source.find("{%") {
        if source[at + 2..].starts_with([' ', '-']) && source[at..].contains("%}") {
            return Err(TemplateError::new(
                "`{%` blocks are not supported: templates only insert `{{ expression }}`; \
                 use `when:` and `repeat:` steps for conditions and loops",
            ));
        }
    }
    let mut parts = Vec::new();
    let mut rest = source;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            parts.push(Part::Text(rest[..start].to_owned()));
        }
        let inner = &rest[start + 2..];
        let end = closing_braces(inner).ok_or_else(|| {
            TemplateError::new(format!(
                "`{{{{` at character {} has no matching `}}}}`",
                source.len() - rest.len() + start + 1
            ))
        })?;
        parts.push(Part::Expr(Expr::compile(&inner[..end])?));
        rest = &inner[end + 2..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest.to_owned()));
    }
    Ok(parts)
}

/// The byte offset of the `}}` that closes an expression, skipping quoted strings.
fn closing_braces(inner: &str) -> Option<usize> {
    let bytes = inner.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        match quote {
            Some(_) if byte == b'\\' => i += 1,
            Some(q) if byte == q => quote = None,
            Some(_) => {}
            None if byte == b'"' || byte == b'\'' => quote = Some(byte),
            None if byte == b'}' && bytes.get(i + 1) == Some(&b'}') => return Some(i),
            None => {}
        }
        i += 1;
    }
    None
}

/// A `when:` condition: an expression such as `eventsDetailLevel != 1`.
#[derive(Debug, Clone)]
pub struct Condition {
    expr: Expr,
}

impl Condition {
    /// Compiles an expression; surrounding `{{ }}` are allowed and ignored.
    pub fn parse(source: &str) -> Result<Condition, TemplateError> {
        let trimmed = source.trim();
        let inner = trimmed
            .strip_prefix("{{")
            .and_then(|rest| rest.strip_suffix("}}"))
            .unwrap_or(trimmed);
        Ok(Condition {
            expr: Expr::compile(inner)?,
        })
    }

    /// The expression it was compiled from.
    pub fn source(&self) -> &str {
        &self.expr.source
    }

    /// True when the expression is truthy for these variables.
    pub fn evaluate(&self, vars: &Vars) -> Result<bool, TemplateError> {
        Ok(self.expr.eval(vars)?.is_true())
    }

    /// Variables the condition reads.
    pub fn variables(&self) -> Vec<String> {
        self.expr.variables()
    }

    /// Environment variables the condition reads by name.
    pub(crate) fn env_names(&self) -> Vec<String> {
        super::functions::env_names(&self.expr.source)
    }
}

#[cfg(test)]
mod tests;
