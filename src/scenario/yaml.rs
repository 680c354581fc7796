//! YAML text -> a tree that keeps every node's line and column, and a serde `Deserializer`
//! over that tree, so the scenario model is read with serde while every error, from serde or
//! from validation, can be placed at `line:column`.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::limits::{MAX_ALIAS_NODES, MAX_YAML_DEPTH, nul_byte, size};

mod deserializer;

pub(super) use deserializer::fields_of;

/// A place in the file, both 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(super) struct Mark {
    pub(super) line: usize,
    pub(super) column: usize,
}

impl From<Marker> for Mark {
    fn from(marker: Marker) -> Self {
        Mark {
            line: marker.line(),
            column: marker.col() + 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Any scalar that is not null, a boolean or a number (and every quoted scalar).
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Key {
    pub(super) text: String,
    pub(super) mark: Mark,
}

/// A YAML node and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Node {
    pub(super) mark: Mark,
    pub(super) value: Value,
    /// The scalar as written, for numbers and booleans read as text.
    raw: Option<String>,
}

/// Problems found while parsing, besides a syntax error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct YamlProblem {
    pub(super) mark: Mark,
    pub(super) path: String,
    pub(super) message: String,
}

impl Node {
    /// The value under `key` of a mapping.
    pub(super) fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.text == key)
                .map(|(_, node)| node),
            _ => None,
        }
    }

    /// The keys of a mapping that are not in `known`, and the mapping without them.
    pub(super) fn split_unknown(&self, known: &[&str]) -> (Vec<&Key>, Node) {
        let Value::Map(entries) = &self.value else {
            return (Vec::new(), self.clone());
        };
        let unknown = entries
            .iter()
            .filter(|(key, _)| !known.contains(&key.text.as_str()))
            .map(|(key, _)| key)
            .collect();
        let kept = entries
            .iter()
            .filter(|(key, _)| known.contains(&key.text.as_str()))
            .cloned()
            .collect();
        let node = Node {
            mark: self.mark,
            value: Value::Map(kept),
            raw: None,
        };
        (unknown, node)
    }

    /// The node at `path` (`flows[0].steps[2].url`, relative to this node), or the deepest
    /// node on the way there; with `key` true, the place of the last key rather than its
    /// value.
    pub(super) fn locate(&self, path: &str, key: bool) -> Mark {
        let mut node = self;
        let mut mark = self.mark;
        for segment in segments(path) {
            match segment {
                Segment::Key(name) => match &node.value {
                    Value::Map(entries) => match entries.iter().find(|(k, _)| k.text == name) {
                        Some((k, child)) => {
                            mark = if key { k.mark } else { child.mark };
                            node = child;
                        }
                        None => return mark,
                    },
                    _ => return mark,
                },
                Segment::Index(index) => match &node.value {
                    Value::Seq(items) if index < items.len() => {
                        node = &items[index];
                        mark = node.mark;
                    }
                    _ => return mark,
                },
            }
        }
        mark
    }

    /// The node as JSON (mapping keys in file order where the JSON map keeps order).
    pub(super) fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::Seq(items) => items.iter().map(Node::to_json).collect(),
            Value::Map(entries) => serde_json::Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.text.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// A short description for messages: `"high"`, `12`, `a list`, `a map`, `nothing`.
    pub(super) fn describe(&self) -> String {
        match &self.value {
            Value::Null => "nothing".to_owned(),
            Value::Bool(_) | Value::Int(_) | Value::Float(_) => {
                self.raw.clone().unwrap_or_default()
            }
            Value::Str(s) => format!("{s:?}"),
            Value::Seq(_) => "a list".to_owned(),
            Value::Map(_) => "a map".to_owned(),
        }
    }

    /// A scalar as text (numbers and booleans as written); `None` for null, lists and maps.
    pub(super) fn as_text(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            Value::Bool(_) | Value::Int(_) | Value::Float(_) => self.raw.as_deref(),
            _ => None,
        }
    }
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|part| !part.is_empty()) {
        let (name, mut rest) = match part.find('[') {
            Some(at) => (&part[..at], &part[at..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            out.push(Segment::Key(name));
        }
        while let Some(inner) = rest.strip_prefix('[') {
            let Some(end) = inner.find(']') else { break };
            if let Ok(index) = inner[..end].parse() {
                out.push(Segment::Index(index));
            }
            rest = &inner[end + 1..];
        }
    }
    out
}

/// Joins a path and a child key or index the way serde_path_to_error prints paths.
pub(super) fn join(path: &str, child: &str) -> String {
    if path.is_empty() || path == "." {
        child.to_owned()
    } else if child.is_empty() || child == "." {
        path.to_owned()
    } else if child.starts_with('[') {
        format!("{path}{child}")
    } else {
        format!("{path}.{child}")
    }
}

/// Parses YAML text into a tree. `Err` is a syntax error (one problem); `Ok` carries
/// problems that did not stop parsing (duplicate keys, keys that are not text).
pub(super) fn parse(text: &str) -> Result<(Node, Vec<YamlProblem>), YamlProblem> {
    // A byte order mark is how some editors start a UTF-8 file; it is not part of the text.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if let Some((mark, message)) = nul_byte(text) {
        return Err(YamlProblem {
            mark,
            path: String::new(),
            message,
        });
    }
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, true).map_err(|err| YamlProblem {
        mark: Mark::from(*err.marker()),
        path: String::new(),
        message: match err.info() {
            "recursion limit exceeded" => format!(
                "too deeply nested: more than {MAX_YAML_DEPTH} lists and maps inside each other"
            ),
            info => format!("YAML syntax: {info}"),
        },
    })?;
    if let Some(problem) = builder.halted {
        return Err(problem);
    }
    let root = builder.root.unwrap_or(Node {
        mark: Mark { line: 1, column: 1 },
        value: Value::Null,
        raw: None,
    });
    let mut root = root;
    let mut problems = builder.problems;
    check_keys(&mut root, "", &mut problems);
    Ok((root, problems))
}

/// Reports duplicate keys in one mapping and keeps only the first, so nothing later
/// reports the same mistake again.
fn check_keys(node: &mut Node, path: &str, problems: &mut Vec<YamlProblem>) {
    match &mut node.value {
        Value::Map(entries) => {
            let mut kept: Vec<(Key, Node)> = Vec::with_capacity(entries.len());
            for (key, mut child) in std::mem::take(entries) {
                let child_path = join(path, &key.text);
                if let Some((first, _)) = kept.iter().find(|(k, _)| k.text == key.text) {
                    problems.push(YamlProblem {
                        mark: key.mark,
                        path: child_path,
                        message: format!(
                            "duplicate key `{}` (first at line {}); keep one",
                            key.text, first.mark.line
                        ),
                    });
                    continue;
                }
                check_keys(&mut child, &child_path, problems);
                kept.push((key, child));
            }
            *entries = kept;
        }
        Value::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                check_keys(item, &format!("{path}[{i}]"), problems);
            }
        }
        _ => {}
    }
}

enum Open {
    Seq(Mark, usize, Vec<Node>),
    /// Entries so far, and a key waiting for its value.
    Map(Mark, usize, Vec<(Key, Node)>, Option<Key>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    root: Option<Node>,
    /// Each anchored node and how many nodes it holds.
    anchors: HashMap<usize, (Node, usize)>,
    /// Nodes added by expanding aliases so far.
    expanded: usize,
    problems: Vec<YamlProblem>,
    documents: usize,
    /// A limit was passed: the rest of the events are ignored and parsing fails with this.
    halted: Option<YamlProblem>,
}

impl Builder {
    fn halt(&mut self, mark: Mark, message: String) {
        if self.halted.is_none() {
            self.halted = Some(YamlProblem {
                mark,
                path: String::new(),
                message,
            });
        }
        self.stack.clear();
        self.anchors.clear();
    }

    fn finish(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            let size = size(&node);
            self.anchors.insert(anchor, (node.clone(), size));
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Open::Seq(_, _, items)) => items.push(node),
            Some(Open::Map(_, _, entries, pending)) => match pending.take() {
                Some(key) => entries.push((key, node)),
                None => {
                    let text = match (&node.value, node.raw.as_ref()) {
                        (Value::Str(s), _) => Some(s.clone()),
                        (_, Some(raw)) => Some(raw.clone()),
                        (Value::Null, None) => Some(String::new()),
                        _ => None,
                    };
                    match text {
                        Some(text) => {
                            *pending = Some(Key {
                                text,
                                mark: node.mark,
                            });
                        }
                        None => {
                            self.problems.push(YamlProblem {
                                mark: node.mark,
                                path: String::new(),
                                message: "a mapping key must be text, not a list or a map"
                                    .to_owned(),
                            });
                            *pending = Some(Key {
                                text: "?".to_owned(),
                                mark: node.mark,
                            });
                        }
                    }
                }
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, marker: Marker) {
        if self.halted.is_some() {
            return;
        }
        let mark = Mark::from(marker);
        if matches!(event, Event::SequenceStart(..) | Event::MappingStart(..))
            && self.stack.len() >= MAX_YAML_DEPTH
        {
            self.halt(
                mark,
                format!(
                    "too deeply nested: more than {MAX_YAML_DEPTH} lists and maps inside each other"
                ),
            );
            return;
        }
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let node = scalar(text, style, tag.as_ref(), mark);
                self.finish(node, anchor);
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Open::Seq(mark, anchor, Vec::new())),
            Event::MappingStart(anchor, _) => {
                self.stack.push(Open::Map(mark, anchor, Vec::new(), None));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Open::Seq(mark, anchor, items)) => (
                        Node {
                            mark,
                            value: Value::Seq(items),
                            raw: None,
                        },
                        anchor,
                    ),
                    Some(Open::Map(mark, anchor, entries, _)) => (
                        Node {
                            // A block mapping's start event comes after its first key.
                            mark: entries.first().map_or(mark, |(key, _)| key.mark.min(mark)),
                            value: Value::Map(entries),
                            raw: None,
                        },
                        anchor,
                    ),
                    None => return,
                };
                self.finish(node, anchor);
            }
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents == 2 {
                    self.problems.push(YamlProblem {
                        mark,
                        path: String::new(),
                        message: "a second YAML document (`---`): a scenario file holds one"
                            .to_owned(),
                    });
                }
            }
            Event::Alias(anchor) => {
                let size = self.anchors.get(&anchor).map_or(1, |(_, size)| *size);
                self.expanded = self.expanded.saturating_add(size);
                if self.expanded > MAX_ALIAS_NODES {
                    self.halt(
                        mark,
                        format!(
                            "aliases (`*name`) expand to more than {MAX_ALIAS_NODES} values in all \
                             (aliases of aliases multiply); write the values out, or reuse less"
                        ),
                    );
                    return;
                }
                let node = match self.anchors.get(&anchor) {
                    Some((node, _)) => Node {
                        mark,
                        ..node.clone()
                    },
                    None => Node {
                        mark,
                        value: Value::Null,
                        raw: None,
                    },
                };
                self.finish(node, 0);
            }
            _ => {}
        }
    }
}

/// Resolves a scalar like YAML 1.2's core schema; quoted scalars are always text.
fn scalar(text: String, style: TScalarStyle, tag: Option<&Tag>, mark: Mark) -> Node {
    let plain = style == TScalarStyle::Plain && tag.is_none_or(|tag| tag.suffix != "str");
    let value = if !plain {
        Value::Str(text.clone())
    } else {
        match text.as_str() {
            "" | "~" | "null" | "Null" | "NULL" => Value::Null,
            "true" | "True" | "TRUE" => Value::Bool(true),
            "false" | "False" | "FALSE" => Value::Bool(false),
            _ => {
                if let Some(i) = parse_int(&text) {
                    Value::Int(i)
                } else if let Some(f) = parse_float(&text) {
                    Value::Float(f)
                } else {
                    Value::Str(text.clone())
                }
            }
        }
    };
    Node {
        mark,
        value,
        raw: Some(text),
    }
}

fn parse_int(text: &str) -> Option<i64> {
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    };
    let value = if let Some(hex) = digits.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(oct) = digits.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()?
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()?
    } else {
        return None;
    };
    Some(sign * value)
}

fn parse_float(text: &str) -> Option<f64> {
    match text {
        ".inf" | ".Inf" | ".INF" | "+.inf" => return Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        _ => {}
    }
    let body = text.trim_start_matches(['-', '+']);
    let numeric = body.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
    if numeric { text.parse().ok() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_one_based() {
        let (root, problems) = parse("host: x\nflows:\n  - name: a\n    weight: high\n").unwrap();
        assert!(problems.is_empty());
        assert_eq!(
            root.locate("flows[0].weight", false),
            Mark {
                line: 4,
                column: 13
            }
        );
        assert_eq!(
            root.locate("flows[0].weight", true),
            Mark { line: 4, column: 5 }
        );
        assert_eq!(
            root.locate("flows[0].nope", true),
            Mark { line: 3, column: 5 }
        );
    }

    #[test]
    fn scalars_resolve_like_yaml_1_2() {
        let (root, _) = parse("a: 12\nb: '12'\nc: 1.5\nd: yes\ne: ~\nf: true\ng: 10s\n").unwrap();
        let json = root.to_json();
        assert_eq!(
            json,
            serde_json::json!({"a": 12, "b": "12", "c": 1.5, "d": "yes", "e": null, "f": true, "g": "10s"})
        );
        assert_eq!(root.get("a").unwrap().as_text(), Some("12"));
    }

    #[test]
    fn duplicate_keys_and_syntax_errors() {
        let (_, problems) = parse("a: 1\nb:\n  c: 1\n  c: 2\n").unwrap();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path, "b.c");
        assert_eq!(problems[0].mark, Mark { line: 4, column: 3 });
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.message.starts_with("YAML syntax: "), "{err:?}");
    }

    #[test]
    fn struct_fields_are_known_before_reading() {
        #[derive(serde::Deserialize)]
        #[expect(dead_code, reason = "only its field names matter")]
        struct Flow {
            name: String,
            #[serde(rename = "as")]
            as_name: u32,
        }
        assert_eq!(fields_of::<Flow>(), ["name", "as"]);
        assert!(fields_of::<String>().is_empty());
    }

    #[test]
    fn one_document_per_file() {
        let (root, problems) = parse("a: 1\n---\nb: 2\n").unwrap();
        assert_eq!(root.to_json(), serde_json::json!({"a": 1}));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].mark.line, 2);
        let (_, problems) = parse("---\na: 1\n").unwrap();
        assert!(problems.is_empty());
    }

    #[test]
    fn anchors_and_aliases() {
        let (root, _) = parse("x: &h {a: 1}\ny: *h\n").unwrap();
        assert_eq!(
            root.get("y").unwrap().to_json(),
            serde_json::json!({"a": 1})
        );
    }

    #[test]
    fn serde_reads_the_tree() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        #[serde(deny_unknown_fields)]
        struct Flow {
            name: String,
            weight: u32,
            tags: Option<Vec<String>>,
        }
        let (root, _) = parse("name: 2013\nweight: 5\ntags: [a, 1]\n").unwrap();
        let flow: Flow = serde::Deserialize::deserialize(&root).unwrap();
        assert_eq!(
            flow,
            Flow {
                name: "2013".to_owned(),
                weight: 5,
                tags: Some(vec!["a".to_owned(), "1".to_owned()])
            }
        );
        let (root, _) = parse("name: a\nweight: high\n").unwrap();
        let err = serde_path_to_error::deserialize::<_, Flow>(&root).unwrap_err();
        assert_eq!(err.path().to_string(), "weight");
        let (root, _) = parse("name: a\nwieght: 1\n").unwrap();
        let err = serde_path_to_error::deserialize::<_, Flow>(&root).unwrap_err();
        assert_eq!(err.path().to_string(), "wieght");
        assert!(
            err.inner().0.starts_with("unknown field `wieght`"),
            "{}",
            err.inner()
        );
    }
}
