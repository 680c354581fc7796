//! Values the client made up (a timestamp, a random id, a device id): the generator that
//! makes one of the same shape per virtual user.

use crate::values::{Shape, shape};

/// What a made-up value looks like, to generate one of the same shape.
pub(crate) fn generator_for(value: &str, wall_ms: f64) -> Option<String> {
    if value.len() == 13 && value.chars().all(|c| c.is_ascii_digit()) {
        let number: f64 = value.parse().ok()?;
        if (number - wall_ms).abs() < 2.0 * 86_400_000.0 {
            return Some("{{ now_ms() }}".to_owned());
        }
    }
    if value.len() == 10 && value.chars().all(|c| c.is_ascii_digit()) {
        let number: f64 = value.parse().ok()?;
        if (number * 1000.0 - wall_ms).abs() < 2.0 * 86_400_000.0 {
            return Some("{{ now_s() }}".to_owned());
        }
    }
    None
}

pub(crate) fn random_looking(value: &str) -> Option<String> {
    let is_uuid = value.len() == 36
        && value.chars().enumerate().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    if is_uuid {
        return Some("{{ uuid() }}".to_owned());
    }
    // `dev-k2j3h4` keeps its readable prefix (lower-case letters: `OGYDVahhaAefYogT_XVqZQ`,
    // a browser's OAuth state, is random through and through) and gets a random tail of the
    // same length.
    let (prefix, tail) = match value.split_once(['-', '_']) {
        Some((prefix, tail))
            if !prefix.is_empty() && prefix.chars().all(|c| c.is_ascii_lowercase()) =>
        {
            (&value[..prefix.len() + 1], tail)
        }
        _ => ("", value),
    };
    let has_alpha = tail.chars().any(|c| c.is_ascii_alphabetic());
    let alnum = tail
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    // A token's shape is the one `values::shape` gives (8 characters with a digit, or 16 of
    // both cases without one); digits alone are a number the server may parse, kept.
    (alnum && has_alpha && shape(tail) == Shape::Token)
        .then(|| format!("{prefix}{{{{ random_string({}) }}}}", tail.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_made_values_are_told_by_their_shape() {
        let random = |value| random_looking(value);
        assert_eq!(
            random("dev-k2j3h4k2l3").as_deref(),
            Some("dev-{{ random_string(10) }}")
        );
        // A browser's OAuth state or PKCE verifier may have no digit, or an `_` after letters.
        assert_eq!(
            random("OGYDVahhaAefYogT_XVqZQ").as_deref(),
            Some("{{ random_string(22) }}")
        );
        assert_eq!(
            random("PcvoBbTgrSveOsRsMKfKa").as_deref(),
            Some("{{ random_string(21) }}")
        );
        assert!(random("c0ffee-8c2f1e3d").is_some());
        // Words, short values and numbers the server may parse are kept as recorded.
        for kept in [
            "notes-app",
            "dark_mode",
            "abc1",
            "17962857336629891",
            "en-US",
        ] {
            assert_eq!(random(kept), None, "{kept}");
        }
    }
}
