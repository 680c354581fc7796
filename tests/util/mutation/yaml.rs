//! A scenario file as a YAML tree that keeps how each scalar was written (plain or quoted),
//! so that a mutant written back means what the original meant: a plain `302` stays a number,
//! a quoted `"1"` stays text, and only the nodes a mutation touches change. Comments are not
//! kept.

use yaml_rust2::parser::{Event, EventReceiver, Parser};
use yaml_rust2::scanner::TScalarStyle;

/// One YAML node.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// `text` as the parser read it; `quoted` when it was written in quotes or as a block
    /// (`|`, `>`), which makes it text whatever it looks like.
    Scalar {
        text: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    /// Entries in file order; keys are text.
    Map(Vec<(String, Node)>),
}

impl Node {
    /// Text that reads as text: written quoted.
    pub fn text(text: impl Into<String>) -> Node {
        Node::Scalar {
            text: text.into(),
            quoted: true,
        }
    }

    /// A plain scalar (a number, `true`, `null`) as written.
    pub fn plain(text: impl Into<String>) -> Node {
        Node::Scalar {
            text: text.into(),
            quoted: false,
        }
    }

    /// The node that reads back as `value`, with its JSON type.
    pub fn of_json(value: &serde_json::Value) -> Node {
        use serde_json::Value;
        match value {
            Value::Null => Node::plain("null"),
            Value::Bool(flag) => Node::plain(flag.to_string()),
            Value::Number(number) => Node::plain(number.to_string()),
            Value::String(text) => Node::text(text.clone()),
            Value::Array(items) => Node::Seq(items.iter().map(Node::of_json).collect()),
            Value::Object(fields) => Node::Map(
                fields
                    .iter()
                    .map(|(key, item)| (key.clone(), Node::of_json(item)))
                    .collect(),
            ),
        }
    }

    /// The value under `key` of a map.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        match self {
            Node::Map(entries) => entries.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Removes `key` from a map; the value it had.
    pub fn remove(&mut self, key: &str) -> Option<Node> {
        match self {
            Node::Map(entries) => {
                let at = entries.iter().position(|(k, _)| k == key)?;
                Some(entries.remove(at).1)
            }
            _ => None,
        }
    }

    /// The items of a sequence (none for anything else).
    pub fn items(&self) -> &[Node] {
        match self {
            Node::Seq(items) => items,
            _ => &[],
        }
    }

    pub fn scalar(&self) -> Option<&str> {
        match self {
            Node::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }
}

/// Reads a one-document YAML text. Anchors and aliases are refused: a mutation of a node
/// shared by reference would change every place that refers to it.
pub fn parse(text: &str) -> Result<Node, String> {
    let mut builder = Builder::default();
    Parser::new_from_str(text)
        .load(&mut builder, false)
        .map_err(|err| err.to_string())?;
    if let Some(problem) = builder.problem {
        return Err(problem);
    }
    builder
        .document
        .ok_or_else(|| "the file holds no YAML document".to_owned())
}

#[derive(Default)]
struct Builder {
    /// Open collections, innermost last; a map's pending key beside it.
    open: Vec<(Node, Option<String>)>,
    document: Option<Node>,
    problem: Option<String>,
}

impl Builder {
    fn add(&mut self, node: Node) {
        let Some((parent, pending_key)) = self.open.last_mut() else {
            self.document = Some(node);
            return;
        };
        match parent {
            Node::Seq(items) => items.push(node),
            Node::Map(entries) => match pending_key.take() {
                Some(key) => entries.push((key, node)),
                None => match node {
                    Node::Scalar { text, .. } => *pending_key = Some(text),
                    _ => self.problem = Some("a map key that is not text".to_owned()),
                },
            },
            Node::Scalar { .. } => unreachable!("scalars are never open"),
        }
    }
}

impl EventReceiver for Builder {
    fn on_event(&mut self, event: Event) {
        match event {
            Event::Scalar(text, style, anchor, _tag) => {
                if anchor != 0 {
                    self.problem = Some(format!("anchors are not supported (at {text:?})"));
                }
                let quoted = style != TScalarStyle::Plain;
                self.add(Node::Scalar { text, quoted });
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) if anchor != 0 => {
                self.problem = Some("anchors are not supported".to_owned());
                let open = if matches!(event, Event::SequenceStart(..)) {
                    Node::Seq(Vec::new())
                } else {
                    Node::Map(Vec::new())
                };
                self.open.push((open, None));
            }
            Event::SequenceStart(..) => self.open.push((Node::Seq(Vec::new()), None)),
            Event::MappingStart(..) => self.open.push((Node::Map(Vec::new()), None)),
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((node, _)) = self.open.pop() {
                    self.add(node);
                }
            }
            Event::Alias(_) => self.problem = Some("aliases (*name) are not supported".to_owned()),
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

/// Writes `node` as block YAML: quoted scalars as JSON strings (valid YAML double-quoted
/// scalars), plain ones as they were written (an empty one, a null, as nothing).
pub fn emit(node: &Node) -> String {
    let mut out = String::new();
    match node {
        Node::Map(entries) if !entries.is_empty() => emit_map(entries, 0, false, &mut out),
        Node::Seq(items) if !items.is_empty() => emit_seq(items, 0, &mut out),
        other => {
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
    out
}

/// A scalar, or an empty collection, on one line.
fn inline(node: &Node) -> String {
    match node {
        Node::Scalar { text, quoted } => {
            if *quoted || text.contains('\n') {
                serde_json::to_string(text).expect("a string serializes")
            } else {
                text.clone()
            }
        }
        Node::Seq(_) => "[]".to_owned(),
        Node::Map(_) => "{}".to_owned(),
    }
}

fn is_inline(node: &Node) -> bool {
    match node {
        Node::Scalar { .. } => true,
        Node::Seq(items) => items.is_empty(),
        Node::Map(entries) => entries.is_empty(),
    }
}

fn key(text: &str) -> String {
    let simple = text
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if simple
        && !matches!(
            text,
            "true" | "false" | "null" | "yes" | "no" | "on" | "off"
        )
    {
        text.to_owned()
    } else {
        serde_json::to_string(text).expect("a string serializes")
    }
}

/// Map entries at `indent`; with `after_dash`, the first goes on the line the caller began
/// with `- `.
fn emit_map(entries: &[(String, Node)], indent: usize, after_dash: bool, out: &mut String) {
    for (index, (name, value)) in entries.iter().enumerate() {
        if index > 0 || !after_dash {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str(&key(name));
        out.push(':');
        if is_inline(value) {
            let text = inline(value);
            if !text.is_empty() {
                out.push(' ');
                out.push_str(&text);
            }
            out.push('\n');
        } else {
            out.push('\n');
            match value {
                Node::Map(children) => emit_map(children, indent + 2, false, out),
                Node::Seq(items) => emit_seq(items, indent + 2, out),
                Node::Scalar { .. } => unreachable!("scalars are inline"),
            }
        }
    }
}

fn emit_seq(items: &[Node], indent: usize, out: &mut String) {
    for item in items {
        out.push_str(&" ".repeat(indent));
        out.push_str("- ");
        match item {
            Node::Map(entries) if !entries.is_empty() => emit_map(entries, indent + 2, true, out),
            Node::Seq(inner) if !inner.is_empty() => {
                out.push('\n');
                emit_seq(inner, indent + 2, out);
            }
            other => {
                out.push_str(&inline(other));
                out.push('\n');
            }
        }
    }
}
