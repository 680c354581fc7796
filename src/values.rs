//! What a value looks like: a token a server made (a session id, a CSRF token, a long
//! number), a short number (an id, a count), a word, or text a person wrote. Convert decides
//! by it how much evidence a tie needs; `--check` sets the made-up ones aside when it compares
//! a replay with its recording. One rule for both.

/// The kind of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Long and unlikely to match by chance: tokens, session ids, long numbers.
    Token,
    /// A short run of digits: an id, a count, a page number.
    Number,
    /// A short word or name without spaces.
    Word,
    /// Text with spaces: what a person wrote.
    Text,
}

/// The shape of `value`: 8 characters or more with a digit, or 16 or more with both cases,
/// is a token; digits alone, shorter, a number; a URL or a path is a word (an address the
/// client knew).
pub(crate) fn shape(value: &str) -> Shape {
    if value.chars().any(char::is_whitespace) {
        return Shape::Text;
    }
    if value.contains("://") || is_path(value) {
        return Shape::Word;
    }
    let digits = value.chars().filter(char::is_ascii_digit).count();
    let length = value.chars().count();
    if digits == length && length < 8 {
        return Shape::Number;
    }
    let upper = value.chars().any(|c| c.is_ascii_uppercase());
    let lower = value.chars().any(|c| c.is_ascii_lowercase());
    if length >= 8 && (digits > 0 || (length >= 16 && upper && lower)) {
        Shape::Token
    } else {
        Shape::Word
    }
}

/// A path the client knew (`/admin/`), not base64 that happens to start with `/` (a Rails
/// token): no `+`, no `=` padding, no long segment of mixed case and digits.
fn is_path(value: &str) -> bool {
    let random_segment = |segment: &str| {
        segment.len() >= 24
            && segment.chars().any(|c| c.is_ascii_uppercase())
            && segment.chars().any(|c| c.is_ascii_lowercase())
            && segment.chars().any(|c| c.is_ascii_digit())
    };
    value.starts_with('/')
        && !value.contains('+')
        && !value.ends_with('=')
        && !value.split('/').any(random_segment)
}

/// Whether a value looks made for one session (a token, an id).
pub(crate) fn looks_generated(value: &str) -> bool {
    matches!(shape(value), Shape::Token | Shape::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(shape("1"), Shape::Number);
        assert_eq!(shape("1796285733662989"), Shape::Token);
        assert_eq!(shape("Xy12ab34Cd"), Shape::Token);
        assert_eq!(shape("PcvoBbTgrSveOsRsMKfKa"), Shape::Token);
        assert_eq!(shape("notes-app"), Shape::Word);
        assert_eq!(shape("/admin/"), Shape::Word);
        assert_eq!(shape("/projects/team/issues/new"), Shape::Word);
        // Base64 (a Rails authenticity token) may start with a slash.
        assert_eq!(
            shape(
                "/EKagSHd2BWvYQJ7bOj901vP7NFO58pkWmmNXP634DrbqJYFwVkFRvnEEONbDj/17Dk5MP7ODNg+zfKXMxbNvQ=="
            ),
            Shape::Token
        );
        assert_eq!(shape("/EKagSHd2BWvYQJ7bOj901vP7NFO58pkWmm"), Shape::Token);
        assert_eq!(shape("http://h/a1b2c3d4"), Shape::Word);
        assert_eq!(shape("About us"), Shape::Text);
        assert!(looks_generated("22") && !looks_generated("login"));
    }
}
