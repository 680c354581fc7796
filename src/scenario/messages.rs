//! serde's error messages in the words of a scenario file: `expected X, found Y`, and a
//! "did you mean" for a misspelt field.

/// serde's messages in the words of this file: `expected X, found Y`.
pub(super) fn rewrite(message: &str) -> String {
    let found_expected = ["invalid type: ", "invalid value: "]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split_once(", expected "));
    if let Some((found, expected)) = found_expected {
        return format!(
            "expected {}, found {}",
            expected_words(expected),
            found_words(found)
        );
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((field, expected)) = rest.split_once("`, expected ") {
            // serde lists two fields as "`a` or `b`", more as "one of `a`, `b`, `c`".
            let options: Vec<&str> = expected
                .trim_start_matches("one of ")
                .split(", ")
                .flat_map(|option| option.split(" or "))
                .map(|option| option.trim_matches('`'))
                .collect();
            return unknown_field(field, &options);
        }
        if let Some(field) = rest.strip_suffix("`, there are no fields") {
            return format!("unknown field `{field}`; this map takes no fields");
        }
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        if let Some((variant, expected)) = rest.split_once("`, expected ") {
            return format!("unknown value `{variant}`; expected {expected}");
        }
    }
    message.to_owned()
}

/// `unknown field `x`; did you mean `y`?` or `...; expected one of `a`, `b``.
pub(super) fn unknown_field(field: &str, options: &[&str]) -> String {
    if let Some(close) = options.iter().find(|option| similar(field, option)) {
        return format!("unknown field `{field}`; did you mean `{close}`?");
    }
    let listed: Vec<String> = options.iter().map(|option| format!("`{option}`")).collect();
    format!(
        "unknown field `{field}`; expected one of {}",
        listed.join(", ")
    )
}

fn expected_words(expected: &str) -> String {
    match expected {
        "a sequence" => "a list".to_owned(),
        "a string" => "text".to_owned(),
        "u16" | "u32" | "u64" | "i64" => "a whole number".to_owned(),
        "f64" => "a number".to_owned(),
        other if other.starts_with("struct ") => "a map".to_owned(),
        other => other.to_owned(),
    }
}

fn found_words(found: &str) -> String {
    if let Some(text) = found.strip_prefix("string ") {
        return text.to_owned();
    }
    for prefix in ["integer ", "floating point ", "boolean "] {
        if let Some(value) = found.strip_prefix(prefix) {
            return value.trim_matches('`').to_owned();
        }
    }
    match found {
        "unit value" => "nothing".to_owned(),
        "sequence" => "a list".to_owned(),
        "map" => "a map".to_owned(),
        other => other.to_owned(),
    }
}

/// A likely typo: edit distance at most 2 (and less than half the word).
fn similar(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            current.push(
                (previous[j] + cost)
                    .min(previous[j + 1] + 1)
                    .min(current[j] + 1),
            );
        }
        previous = current;
    }
    let distance = previous[b.len()];
    distance <= 2 && distance * 2 < b.len().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_are_rewritten() {
        assert_eq!(
            rewrite("invalid type: string \"high\", expected a positive integer"),
            "expected a positive integer, found \"high\""
        );
        assert_eq!(
            rewrite("invalid value: integer `0`, expected a positive integer"),
            "expected a positive integer, found 0"
        );
        assert_eq!(
            rewrite("unknown field `wieght`, expected one of `name`, `weight`, `steps`"),
            "unknown field `wieght`; did you mean `weight`?"
        );
        assert_eq!(
            rewrite("unknown field `colour`, expected one of `name`, `weight`, `steps`"),
            "unknown field `colour`; expected one of `name`, `weight`, `steps`"
        );
        assert_eq!(
            rewrite("unknown field `pasword`, expected `username` or `password`"),
            "unknown field `pasword`; did you mean `password`?"
        );
        assert_eq!(
            rewrite("invalid type: map, expected a string"),
            "expected text, found a map"
        );
    }
}
