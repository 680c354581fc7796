//! Checks on an expression's text around minijinja's compiler (templates, `when:`) and the
//! JSONPath parser: nesting those parsers would follow into a stack overflow is refused
//! before they run, and filters and tests minijinja only looks up when it runs are looked up
//! at load.

use std::iter::Peekable;
use std::str::Chars;

use minijinja::Environment;

/// Brackets inside each other, or prefix operators (`not`, `-`, `!`) one after the other,
/// in a template expression, a `when:` condition or a JSONPath.
pub(super) const MAX_EXPRESSION_NESTING: usize = 32;

/// Whether `c` is text inside quotes (`quote` holds the open one, if any): an escaped
/// character after a backslash is taken from `chars` with it, and the closing quote ends
/// the quotes.
fn inside_quotes(c: char, quote: &mut Option<char>, chars: &mut Peekable<Chars<'_>>) -> bool {
    let Some(open) = *quote else {
        return false;
    };
    if c == '\\' {
        chars.next();
    } else if c == open {
        *quote = None;
    }
    true
}

/// Why an expression is refused, when it nests too deeply.
pub(super) fn too_deep(source: &str) -> Option<String> {
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
        if inside_quotes(c, &mut quote, &mut chars) {
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

/// `unknown filter `nosuch``, for the first `| name` or `is name` (outside quotes) that the
/// environment does not have.
pub(super) fn unknown_filter_or_test(source: &str, env: &Environment<'_>) -> Option<String> {
    let mut words: Vec<(char, String)> = Vec::new();
    let mut chars = source.chars().peekable();
    let mut quote = None;
    let mut after = ' ';
    while let Some(c) = chars.next() {
        if inside_quotes(c, &mut quote, &mut chars) {
            continue;
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '|' if chars.peek() == Some(&'|') => {
                chars.next();
            }
            '|' => after = '|',
            c if c.is_alphabetic() || c == '_' => {
                let mut word = String::from(c);
                while let Some(&next) = chars.peek() {
                    if !(next.is_alphanumeric() || next == '_') {
                        break;
                    }
                    word.push(next);
                    chars.next();
                }
                match (after, word.as_str()) {
                    // `is not name`: the test is the word after `not`.
                    ('i', "not") => {}
                    ('|' | 'i', _) => {
                        words.push((after, word));
                        after = ' ';
                    }
                    (_, "is") => after = 'i',
                    _ => after = ' ',
                }
            }
            c if c.is_whitespace() => {}
            _ => after = ' ',
        }
    }
    words.into_iter().find_map(|(kind, name)| {
        let (probe, expected) = if kind == '|' {
            (
                format!("none | {name}"),
                minijinja::ErrorKind::UnknownFilter,
            )
        } else {
            (format!("none is {name}"), minijinja::ErrorKind::UnknownTest)
        };
        let what = if kind == '|' { "filter" } else { "test" };
        let compiled = env.compile_expression(&probe).ok()?;
        match compiled.eval(()) {
            Err(err) if err.kind() == expected => Some(format!("unknown {what} `{name}`")),
            _ => None,
        }
    })
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
            assert_eq!(too_deep(source), None, "{source}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_with_the_count() {
        let nots = "not ".repeat(100_000) + "true";
        assert_eq!(
            too_deep(&nots).unwrap(),
            "too deeply nested: 100000 brackets or `not`/`-`/`!` inside each other, at most 32"
        );
        let parens = format!("$[?({}@.a{})]", "(".repeat(50_000), ")".repeat(50_000));
        assert!(too_deep(&parens).is_some());
        assert!(too_deep(&"-".repeat(40)).is_some());
    }

    #[test]
    fn filters_and_tests_are_looked_up() {
        let env = Environment::new();
        assert_eq!(
            unknown_filter_or_test("vu | nosuch", &env).as_deref(),
            Some("unknown filter `nosuch`")
        );
        assert_eq!(
            unknown_filter_or_test("vu is not nosuch", &env).as_deref(),
            Some("unknown test `nosuch`")
        );
        for known in [
            "vu | default(1) | string",
            "'a|b' ~ vu",
            "vu is defined or vu is not number",
            "a or b",
        ] {
            assert_eq!(unknown_filter_or_test(known, &env), None, "{known}");
        }
    }
}
