//! Replacing a variable by a constant in chorus's templates (`/x/{{ id }}/`, `{{ n + 1 }}`)
//! and conditions (`when: "level != 1"`), keeping what the template renders to: a template
//! that is exactly `{{ name }}` becomes the value itself (so a JSON number stays a number, as
//! chorus renders it), a `{{ name }}` inside text becomes the value's text, and a name inside
//! a larger expression becomes a literal of the value (`"abc"`, `7`, `none`).

use serde_json::Value;

/// What a template becomes once the variable is replaced.
#[derive(Debug, Clone, PartialEq)]
pub enum Rewritten {
    /// The template was exactly `{{ name }}`: it renders to the value, with its type.
    Whole(Value),
    /// A template (or plain text) to write instead.
    Text(String),
}

/// `text` (a template) with every use of `name` replaced by `value`; `None` when it does not
/// read `name`.
pub fn substitute(text: &str, name: &str, value: &Value) -> Option<Rewritten> {
    let spans = spans(text);
    if let [(0, end)] = spans.as_slice() {
        if *end == text.len() && inner(text, (0, *end)).trim() == name {
            return Some(Rewritten::Whole(value.clone()));
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut last = 0;
    for span in spans {
        out.push_str(&text[last..span.0]);
        last = span.1;
        let expression = inner(text, span);
        if expression.trim() == name {
            changed = true;
            out.push_str(&inline_text(value));
        } else if let Some(rewritten) = substitute_expression(expression, name, value) {
            changed = true;
            out.push_str("{{");
            out.push_str(&rewritten);
            out.push_str("}}");
        } else {
            out.push_str(&text[span.0..span.1]);
        }
    }
    out.push_str(&text[last..]);
    changed.then_some(Rewritten::Text(out))
}

/// How many times `text` (a template) reads `name`.
pub fn uses_in_template(text: &str, name: &str) -> usize {
    spans(text)
        .into_iter()
        .map(|span| identifiers(inner(text, span), name).len())
        .sum()
}

/// How many times an expression without braces (a `when:` condition) reads `name`.
pub fn uses_in_expression(expression: &str, name: &str) -> usize {
    identifiers(expression, name).len()
}

/// The `{{ ... }}` spans of a template, as (start, end) byte offsets including the braces.
fn spans(text: &str) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(open) = text[from..].find("{{").map(|at| at + from) {
        let Some(close) = text[open + 2..].find("}}").map(|at| at + open + 2) else {
            break;
        };
        found.push((open, close + 2));
        from = close + 2;
    }
    found
}

fn inner(text: &str, (start, end): (usize, usize)) -> &str {
    &text[start + 2..end - 2]
}

/// The value as a template shows it inside text: text as it is, numbers as written, `true`,
/// `null`; anything that would not read back the same as text is kept as an expression.
fn inline_text(value: &Value) -> String {
    match value {
        Value::String(text) if !text.contains("{{") && !text.contains("}}") => text.clone(),
        Value::Number(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        Value::Null => "null".to_owned(),
        other => format!("{{{{ {} }}}}", literal(other)),
    }
}

/// A MiniJinja literal of a JSON value.
pub fn literal(value: &Value) -> String {
    match value {
        Value::Null => "none".to_owned(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number.to_string(),
        Value::String(text) => serde_json::to_string(text).expect("a string serializes"),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(literal).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .map(|(key, item)| {
                    format!("{}: {}", literal(&Value::from(key.as_str())), literal(item))
                })
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
    }
}

/// An expression (no braces) with each read of `name` replaced by a literal of `value`.
pub fn substitute_expression(expression: &str, name: &str, value: &Value) -> Option<String> {
    let found = identifiers(expression, name);
    if found.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(expression.len());
    let mut last = 0;
    for (start, end) in found {
        out.push_str(&expression[last..start]);
        out.push_str(&literal(value));
        last = end;
    }
    out.push_str(&expression[last..]);
    Some(out)
}

/// Where an expression reads variable `name`: identifiers equal to it outside string
/// literals, not an attribute (`.name`), a filter (`| name`), a test (`is name`), a function
/// (`name(`) or a keyword argument (`name=`).
fn identifiers(expression: &str, name: &str) -> Vec<(usize, usize)> {
    #[derive(PartialEq)]
    enum Before {
        Start,
        Dot,
        Pipe,
        Is,
        Other,
    }
    let bytes = expression.as_bytes();
    let mut found = Vec::new();
    let mut before = Before::Start;
    let mut at = 0;
    while at < bytes.len() {
        let c = bytes[at];
        if c == b'"' || c == b'\'' {
            at += 1;
            while at < bytes.len() && bytes[at] != c {
                at += if bytes[at] == b'\\' { 2 } else { 1 };
            }
            at += 1;
            before = Before::Other;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = at;
            while at < bytes.len() && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'_') {
                at += 1;
            }
            let word = &expression[start..at];
            let next = expression[at..].trim_start();
            let call_or_keyword =
                next.starts_with('(') || (next.starts_with('=') && !next.starts_with("=="));
            if word == name
                && !matches!(before, Before::Dot | Before::Pipe | Before::Is)
                && !call_or_keyword
            {
                found.push((start, at));
            }
            before = match word {
                "is" => Before::Is,
                "not" if before == Before::Is => Before::Is,
                _ => Before::Other,
            };
        } else if c.is_ascii_digit() {
            while at < bytes.len() && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'_') {
                at += 1;
            }
            before = Before::Other;
        } else {
            if !c.is_ascii_whitespace() {
                before = match c {
                    b'.' => Before::Dot,
                    b'|' => Before::Pipe,
                    _ => Before::Other,
                };
            }
            at += 1;
        }
    }
    found
}
