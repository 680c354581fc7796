//! How deep and how big what a scenario file holds may be: limits checked when the file
//! loads, so no file can exhaust the stack or the memory of a run later (YAML alias bombs,
//! hundreds of nested `repeat`s, `not not not …`, a JSONPath of nested parentheses). The
//! limits are far past anything a person or `chorus convert` writes.

/// Lists and maps inside each other in the YAML (a `repeat` is two levels, a JSON body as
/// deep as it is).
pub(super) const MAX_YAML_DEPTH: usize = 64;

/// Nodes that aliases (`*name`) may add to the file in all: a handful of anchors reused is
/// fine, "a billion laughs" (aliases of aliases, ten at each level) is not.
pub(super) const MAX_ALIAS_NODES: usize = 100_000;

/// Brackets inside each other, or prefix operators (`not`, `-`, `!`) one after the other,
/// in a template expression, a `when:` condition or a JSONPath.
pub(super) const MAX_EXPRESSION_NESTING: usize = 32;

/// Why an expression is refused, when it nests too deeply.
pub(super) fn expression_too_deep(source: &str) -> Option<String> {
    let nesting = nesting(source);
    (nesting > MAX_EXPRESSION_NESTING).then(|| {
        format!(
            "too deeply nested: {nesting} brackets or `not`/`-`/`!` inside each other, at most {MAX_EXPRESSION_NESTING}"
        )
    })
}

/// The deepest bracket nesting of `source`, or the most prefix operators in it, whichever is
/// larger; text inside quotes does not count.
fn nesting(source: &str) -> usize {
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut operators = 0usize;
    let mut quote: Option<char> = None;
    let mut chars = source.chars().peekable();
    let mut word = String::new();
    while let Some(c) = chars.next() {
        if let Some(open) = quote {
            if c == '\\' {
                chars.next();
            } else if c == open {
                quote = None;
            }
            continue;
        }
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if word == "not" {
            operators += 1;
        }
        word.clear();
        match c {
            '\'' | '"' => quote = Some(c),
            '(' | '[' | '{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            '-' | '!' => operators += 1,
            _ => {}
        }
    }
    if word == "not" {
        operators += 1;
    }
    deepest.max(operators)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_expressions_pass() {
        for source in [
            "level != 1 and not done",
            "$.items[?(@.price < 10 && !(@.sold))].id",
            "user.name ~ '-' ~ random_int(1, 9)",
            "'((((((((((((((((((((((((((((((((((((((((((' ~ x",
            "$['a']['b'][0]",
        ] {
            assert_eq!(expression_too_deep(source), None, "{source}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_with_the_count() {
        let nots = "not ".repeat(100_000) + "true";
        assert_eq!(
            expression_too_deep(&nots).unwrap(),
            "too deeply nested: 100000 brackets or `not`/`-`/`!` inside each other, at most 32"
        );
        let parens = format!("$[?({}@.a{})]", "(".repeat(50_000), ")".repeat(50_000));
        assert!(expression_too_deep(&parens).is_some());
        assert!(expression_too_deep(&"-".repeat(40)).is_some());
    }
}
