//! The lenient readers of HAR values: `null` as the default, numbers written as strings and
//! strings as numbers, a missing number as -1 (the specification's "unknown").

use serde::{Deserialize, Deserializer};

pub(super) fn minus_one() -> i64 {
    -1
}

pub(super) fn minus_one_f() -> f64 {
    -1.0
}

/// `null` reads as the default, anything else as `T`.
pub(super) fn or_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A loosely typed scalar, as some tools write numbers as strings and strings as numbers.
/// Read as `#[serde(untagged)]` read it (a boolean, else an `i64`, else an `f64`, else a
/// string), but straight from the value: the untagged enum copied every string (every body)
/// into a buffer and tried each variant in turn, each failure formatting an error that
/// quoted the whole string.
enum Loose {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

/// What [`LooseVisitor`] read: a scalar, or a list or an object no variant takes.
enum Read {
    Scalar(Loose),
    NoVariant,
}

struct LooseVisitor;

impl<'de> serde::de::Visitor<'de> for LooseVisitor {
    type Value = Read;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string, a number or a boolean")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Read, E> {
        Ok(Read::Scalar(Loose::Bool(value)))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Read, E> {
        Ok(Read::Scalar(Loose::Int(value)))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Read, E> {
        Ok(Read::Scalar(
            i64::try_from(value).map_or(Loose::Float(value as f64), Loose::Int),
        ))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Read, E> {
        Ok(Read::Scalar(Loose::Float(value)))
    }

    fn visit_str<E>(self, value: &str) -> Result<Read, E> {
        Ok(Read::Scalar(Loose::Text(value.to_owned())))
    }

    fn visit_string<E>(self, value: String) -> Result<Read, E> {
        Ok(Read::Scalar(Loose::Text(value)))
    }

    fn visit_unit<E>(self) -> Result<Read, E> {
        Ok(Read::NoVariant)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Read, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Read::NoVariant)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Read, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(Read::NoVariant)
    }
}

impl<'de> Deserialize<'de> for Loose {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        // A list or an object is read to its end before it is refused, as the untagged enum
        // did, so that the error names the same place.
        match deserializer.deserialize_any(LooseVisitor)? {
            Read::Scalar(loose) => Ok(loose),
            Read::NoVariant => Err(D::Error::custom(
                "data did not match any variant of untagged enum Loose",
            )),
        }
    }
}

fn loose<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Loose>, D::Error> {
    Option::<Loose>::deserialize(deserializer)
}

pub(super) fn string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(opt_string(deserializer)?.unwrap_or_default())
}

pub(super) fn opt_string<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    Ok(match loose(deserializer)? {
        None => None,
        Some(Loose::Text(text)) => Some(text),
        Some(Loose::Int(n)) => Some(n.to_string()),
        Some(Loose::Float(n)) => Some(n.to_string()),
        Some(Loose::Bool(b)) => Some(b.to_string()),
    })
}

pub(super) fn opt_bool<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<bool>, D::Error> {
    use serde::de::Error as _;
    Ok(match loose(deserializer)? {
        None => None,
        Some(Loose::Bool(b)) => Some(b),
        Some(Loose::Int(n)) => Some(n != 0),
        Some(Loose::Float(n)) => Some(n != 0.0),
        Some(Loose::Text(text)) => match text.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" | "" => Some(false),
            _ => {
                return Err(D::Error::custom(format!(
                    "expected true or false, found {text:?}"
                )));
            }
        },
    })
}

pub(super) fn opt_number<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<f64>, D::Error> {
    use serde::de::Error as _;
    Ok(match loose(deserializer)? {
        None => None,
        Some(Loose::Int(n)) => Some(n as f64),
        Some(Loose::Float(n)) => Some(n),
        Some(Loose::Bool(b)) => Some(f64::from(u8::from(b))),
        Some(Loose::Text(text)) if text.trim().is_empty() => None,
        Some(Loose::Text(text)) => Some(
            text.trim()
                .parse()
                .map_err(|_| D::Error::custom(format!("expected a number, found {text:?}")))?,
        ),
    })
}

pub(super) fn number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(opt_number(deserializer)?.unwrap_or(-1.0))
}

pub(super) fn opt_number_i64<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    Ok(opt_number(deserializer)?.map(|n| n.round() as i64))
}

pub(super) fn number_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    Ok(opt_number_i64(deserializer)?.unwrap_or(-1))
}

pub(super) fn number_u16<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u16, D::Error> {
    use serde::de::Error as _;
    let n = opt_number(deserializer)?.unwrap_or(0.0);
    if (0.0..=f64::from(u16::MAX)).contains(&n) {
        Ok(n as u16)
    } else {
        Err(D::Error::custom(format!(
            "expected a number from 0 to 65535, found {n}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `Loose` was before it read values itself: the derived untagged enum (of the same
    /// name: its errors name it).
    mod derived {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        #[serde(untagged)]
        pub(super) enum Loose {
            Bool(bool),
            Int(i64),
            Float(f64),
            Text(String),
        }
    }
    use derived::Loose as Untagged;

    fn described(loose: Loose) -> Untagged {
        match loose {
            Loose::Bool(b) => Untagged::Bool(b),
            Loose::Int(n) => Untagged::Int(n),
            Loose::Float(n) => Untagged::Float(n),
            Loose::Text(text) => Untagged::Text(text),
        }
    }

    #[test]
    fn loose_values_read_as_the_untagged_enum_read_them_with_the_same_errors() {
        #[derive(Deserialize)]
        struct Now {
            #[serde(deserialize_with = "loose")]
            v: Option<Loose>,
        }
        #[derive(Deserialize)]
        struct Before {
            v: Option<Untagged>,
        }
        for value in [
            "true",
            "0",
            "-7",
            "42",
            "9223372036854775807",
            "9223372036854775808",
            "18446744073709551615",
            "1.5",
            "-0.0",
            "1e300",
            r#""text""#,
            r#""""#,
            r#""a \"quoted\" \u00e9 line\n""#,
            "null",
            "[]",
            "[1, [2, {}]]",
            "{}",
            r#"{"a": [1, 2], "b": {"c": null}}"#,
        ] {
            let text = format!("{{\n  \"v\": {value} , \"w\": 1}}");
            let now = serde_json::from_str::<Now>(&text).map(|n| n.v.map(described));
            let before = serde_json::from_str::<Before>(&text).map(|b| b.v);
            match (now, before) {
                (Ok(now), Ok(before)) => assert_eq!(now, before, "{value}"),
                (Err(now), Err(before)) => assert_eq!(now.to_string(), before.to_string()),
                (now, before) => panic!("{value}: {now:?} vs {before:?}"),
            }
        }
    }
}
