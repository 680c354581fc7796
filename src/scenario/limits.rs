//! How deep and how big what a scenario file holds may be: limits checked when the file
//! loads, so no file can exhaust the stack or the memory of a run later (YAML alias bombs,
//! hundreds of nested `repeat`s); the text itself is checked for what YAML cannot hold (a
//! NUL byte); and what one template renders to is capped. The limits are far past anything a
//! person or `chorus convert` writes.

use std::fmt;

use super::template::TemplateError;
use super::yaml::{Mark, Node, Value};

/// The most one template renders to (text, or a value as JSON). An expression can double
/// what it reads (`{{ a ~ a }}`, `{{ [a, a] }}`) and `vars:` read one another, so forty lines
/// of `vars:` could ask for a terabyte; rendering stops here with an error instead.
pub(super) const MAX_RENDERED: usize = 64 << 20;

pub(super) fn too_large() -> TemplateError {
    TemplateError::new(format!(
        "renders to more than {} MiB (does it repeat a value that repeats another?)",
        MAX_RENDERED >> 20
    ))
}

/// A `String` that refuses to grow past [`MAX_RENDERED`].
pub(super) struct Capped(pub(super) String);

impl fmt::Write for Capped {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        if self.0.len() + text.len() > MAX_RENDERED {
            return Err(fmt::Error);
        }
        self.0.push_str(text);
        Ok(())
    }
}

/// Lists and maps inside each other in the YAML (a `repeat` is two levels, a JSON body as
/// deep as it is).
pub(super) const MAX_YAML_DEPTH: usize = 64;

/// Nodes that aliases (`*name`) may add to the file in all: a handful of anchors reused is
/// fine, "a billion laughs" (aliases of aliases, ten at each level) is not.
pub(super) const MAX_ALIAS_NODES: usize = 100_000;

/// How many nodes `node` holds, itself included (what an alias of it adds).
pub(super) fn size(node: &Node) -> usize {
    match &node.value {
        Value::Seq(items) => 1 + items.iter().map(size).sum::<usize>(),
        Value::Map(entries) => 1 + entries.iter().map(|(_, n)| size(n)).sum::<usize>(),
        _ => 1,
    }
}

/// Where a NUL byte is, and what to say about it: YAML text cannot hold one, and the parser
/// would stop reading there without a word.
pub(super) fn nul_byte(text: &str) -> Option<(Mark, String)> {
    let at = text.find('\0')?;
    let line = text[..at].matches('\n').count() + 1;
    let column = text[..at]
        .rsplit('\n')
        .next()
        .map_or(0, |l| l.chars().count())
        + 1;
    Some((
        Mark { line, column },
        "a NUL byte: a scenario is a YAML text file (was a binary file given, or one saved as UTF-16?)"
            .to_owned(),
    ))
}
