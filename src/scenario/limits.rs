//! How deep and how big what a scenario file holds may be: limits checked when the file
//! loads, so no file can exhaust the stack or the memory of a run later (YAML alias bombs,
//! hundreds of nested `repeat`s); the text itself is checked for what YAML cannot hold (a
//! NUL byte). The limits are far past anything a person or `chorus convert` writes.

use super::yaml::{Mark, Node, Value};

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
