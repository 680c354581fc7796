//! Value parsers for the command line, each with an error that teaches the syntax.

use std::path::PathBuf;
use std::time::Duration;

use crate::demo::Seed;

/// `30s`, `10m`, `1h30m`, `250ms`; a bare number means seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        if seconds.is_finite() && seconds >= 0.0 {
            return Ok(Duration::from_secs_f64(seconds));
        }
    }
    humantime::parse_duration(text).map_err(|err| {
        format!("expected a duration such as 30s, 10m or 1h30m, found {text:?} ({err})")
    })
}

/// `16MiB`, `512KiB`, `2GB`, `1000` (bytes).
pub(super) fn parse_size(text: &str) -> Result<u64, String> {
    crate::size::parse(text)
}

/// A number of users: a whole number from 0 to [`MAX_USERS`](crate::engine::plan::MAX_USERS).
pub(super) fn parse_users(text: &str) -> Result<u64, String> {
    let max = crate::engine::plan::MAX_USERS;
    match text.trim().parse::<u64>() {
        Ok(users) if users <= max => Ok(users),
        Ok(_) => Err(format!(
            "{text} users is more than chorus runs from one command ({max}); run fewer, or spread them over machines with --master and chorus worker"
        )),
        Err(_) if text.trim().parse::<f64>().is_ok_and(|n| n > max as f64) => Err(format!(
            "{text} users is more than chorus runs from one command ({max}); run fewer, or spread them over machines with --master and chorus worker"
        )),
        Err(_) => Err(format!(
            "expected a whole number of users such as 50, found {text:?}"
        )),
    }
}

/// `users=users.csv`.
pub fn parse_data_source(text: &str) -> Result<(String, PathBuf), String> {
    match text.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((name.to_owned(), PathBuf::from(path)))
        }
        _ => Err(format!(
            "expected NAME=FILE such as users=users.csv, found {text:?}"
        )),
    }
}

/// `--var NAME=VALUE`: the name (trimmed) up to the first `=`, the value as it is.
pub(super) fn parse_var(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!(
            "expected NAME=VALUE such as classes=200, found {text:?}"
        )),
    }
}

/// `200x30`: 200 classes of 30 students.
pub fn parse_seed(text: &str) -> Result<Seed, String> {
    let teach = || format!("expected CLASSESxSTUDENTS such as 200x30, found {text:?}");
    let (classes, students) = text.split_once(['x', 'X']).ok_or_else(teach)?;
    let classes = classes.trim().parse().map_err(|_| teach())?;
    let students = students.trim().parse().map_err(|_| teach())?;
    Ok(Seed { classes, students })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        let err = parse_duration("soon").unwrap_err();
        assert!(
            err.starts_with("expected a duration such as 30s, 10m or 1h30m, found \"soon\""),
            "{err}"
        );
    }

    #[test]
    fn data_sources() {
        assert_eq!(
            parse_data_source("users=a.csv"),
            Ok(("users".to_owned(), PathBuf::from("a.csv")))
        );
        assert_eq!(
            parse_data_source("users"),
            Err("expected NAME=FILE such as users=users.csv, found \"users\"".to_owned())
        );
    }

    #[test]
    fn seeds() {
        assert_eq!(
            parse_seed("200x30"),
            Ok(Seed {
                classes: 200,
                students: 30
            })
        );
        assert_eq!(
            parse_seed("3x"),
            Err("expected CLASSESxSTUDENTS such as 200x30, found \"3x\"".to_owned())
        );
    }
}
