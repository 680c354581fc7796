//! Value parsers for the command line, each with an error that teaches the syntax.

use std::path::PathBuf;
use std::time::Duration;

use crate::demo::Seed;
use crate::engine::plan::MAX_USERS;
use crate::units;

/// `-t` as given: the duration, and the text the user wrote (what the demo echoes back).
#[derive(Debug, Clone, PartialEq)]
pub struct RunTime {
    pub duration: Duration,
    pub written: String,
}

/// `-t`/`--run-time`: more than 0, at most a year (see `crate::units` for the grammar).
pub(super) fn run_time(text: &str) -> Result<RunTime, String> {
    let duration = units::parse_duration(text, units::RUN_TIME).map_err(|err| err.to_string())?;
    Ok(RunTime {
        duration,
        written: text.trim().to_owned(),
    })
}

/// `16MiB`, `512KiB`, `2GB`, `1000` (bytes).
pub(super) fn parse_size(text: &str) -> Result<u64, String> {
    crate::size::parse(text)
}

/// `--step-time` (with `--find-capacity`): more than 0, at most a year.
pub(super) fn step_time(text: &str) -> Result<Duration, String> {
    units::parse_duration(text, units::RUN_TIME).map_err(|err| err.to_string())
}

/// `--think` (with `--url`): 0 to a day.
pub(super) fn think(text: &str) -> Result<Duration, String> {
    units::parse_duration(text, units::THINK).map_err(|err| err.to_string())
}

/// `--stop-timeout`: 0 to a day.
pub(super) fn stop_timeout(text: &str) -> Result<Duration, String> {
    units::parse_duration(text, units::STOP_TIMEOUT).map_err(|err| err.to_string())
}

/// `-r`/`--spawn-rate`: users per second (`5`, `0.5`, or a rate such as `30/m`).
pub(super) fn spawn_rate(text: &str) -> Result<f64, String> {
    units::parse_rate(text, units::SPAWN_RATE).map_err(|err| err.to_string())
}

/// `-u`, `--max-users`: a whole number from 1 to [`MAX_USERS`] (`--stages` is the way to ramp
/// to or from 0).
/// The most `--iterations` a user may be given (a bound, like every count chorus takes).
pub(super) const MAX_ITERATIONS: u64 = 1_000_000_000;

/// `--iterations N`: a whole number from 1 to [`MAX_ITERATIONS`].
pub(super) fn iterations(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(count) if (1..=MAX_ITERATIONS).contains(&count) => Ok(count),
        _ => Err(format!(
            "expected a whole number of iterations per user from 1 to {MAX_ITERATIONS}, found {:?}",
            text.trim()
        )),
    }
}

pub(super) fn parse_users(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let too_many = || {
        format!(
            "{trimmed} users is more than chorus runs from one command ({MAX_USERS}); run fewer, or spread them over machines with --master and chorus worker"
        )
    };
    match trimmed.parse::<u64>() {
        Ok(0) => Err("the number of users must be at least 1, found 0".to_owned()),
        Ok(users) if users <= MAX_USERS => Ok(users),
        Ok(_) => Err(too_many()),
        Err(_) if trimmed.parse::<f64>().is_ok_and(|n| n > MAX_USERS as f64) => Err(too_many()),
        Err(_) => Err(format!(
            "expected a whole number of users from 1 to {MAX_USERS}, found {trimmed:?}"
        )),
    }
}

/// `--workers`, `chorus worker --threads`: from 1 to [`MAX_THREADS`] (left out: one per core).
pub(super) fn threads(text: &str) -> Result<usize, String> {
    let trimmed = text.trim();
    match trimmed.parse::<usize>() {
        Ok(threads) if (1..=MAX_THREADS).contains(&threads) => Ok(threads),
        _ => Err(format!(
            "expected from 1 to {MAX_THREADS} threads (leave it out for one per core), found {trimmed:?}"
        )),
    }
}

/// The most worker processes `--processes` starts.
pub(super) const MAX_PROCESSES: u64 = 256;

/// `--processes`: how many worker processes of this machine run the users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processes {
    Count(u64),
    /// As many as the open-files limit needs for the users asked (1 when they fit here).
    Auto,
}

/// `--processes N` (1 to [`MAX_PROCESSES`]) or `--processes auto`.
pub(super) fn processes(text: &str) -> Result<Processes, String> {
    let trimmed = text.trim();
    if trimmed.eq_ignore_ascii_case("auto") {
        return Ok(Processes::Auto);
    }
    match trimmed.parse::<u64>() {
        Ok(count) if (1..=MAX_PROCESSES).contains(&count) => Ok(Processes::Count(count)),
        _ => Err(format!(
            "expected a number of processes from 1 to {MAX_PROCESSES}, or auto (as many as the open-files limit needs), found {trimmed:?}"
        )),
    }
}

/// `convert --think-scale`: from 0 to [`MAX_THINK_SCALE`].
pub(super) fn think_scale(text: &str) -> Result<f64, String> {
    let trimmed = text.trim();
    match trimmed.parse::<f64>() {
        Ok(scale) if (0.0..=MAX_THINK_SCALE).contains(&scale) => Ok(scale),
        _ => Err(format!(
            "expected a factor from 0 to {MAX_THINK_SCALE} (1 keeps the recorded pauses, 0.5 halves them), found {trimmed:?}"
        )),
    }
}

/// Past a hundred times the recorded pauses a scenario no longer resembles the session.
pub(super) const MAX_THINK_SCALE: f64 = 100.0;

/// The most worker threads one process runs: each is a thread with its own event loop, and
/// past a few per core they only compete.
pub(super) const MAX_THREADS: usize = 1024;

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

/// The most demo accounts `--seed` makes: each is held in memory by the demo app.
const MAX_SEED_ACCOUNTS: u64 = 1_000_000;

/// `200x30`: 200 classes of 30 students.
pub fn parse_seed(text: &str) -> Result<Seed, String> {
    let teach = || format!("expected CLASSESxSTUDENTS such as 200x30, found {text:?}");
    let (classes, students) = text.split_once(['x', 'X']).ok_or_else(teach)?;
    let classes: u32 = classes.trim().parse().map_err(|_| teach())?;
    let students: u32 = students.trim().parse().map_err(|_| teach())?;
    let accounts = u64::from(classes) * u64::from(students);
    if accounts > MAX_SEED_ACCOUNTS {
        return Err(format!(
            "{classes}x{students} is {accounts} accounts; the demo makes at most {MAX_SEED_ACCOUNTS}"
        ));
    }
    Ok(Seed { classes, students })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_are_a_count_or_auto() {
        assert_eq!(processes("4"), Ok(Processes::Count(4)));
        assert_eq!(processes(" AUTO "), Ok(Processes::Auto));
        assert_eq!(
            processes("0"),
            Err("expected a number of processes from 1 to 256, or auto (as many as the open-files limit needs), found \"0\"".to_owned())
        );
        assert!(processes("257").is_err());
        assert!(processes("many").is_err());
    }

    #[test]
    fn durations_and_rates_use_the_one_grammar_with_each_flags_bounds() {
        let seconds = |text: &str| run_time(text).map(|given| given.duration);
        assert_eq!(seconds("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(seconds("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(run_time(" 60s").unwrap().written, "60s");
        assert_eq!(
            run_time("0").unwrap_err(),
            "a run time must be more than 0s and at most 1y, found \"0\""
        );
        assert_eq!(stop_timeout("0"), Ok(Duration::ZERO));
        assert_eq!(think("0"), Ok(Duration::ZERO));
        assert_eq!(spawn_rate("0.5"), Ok(0.5));
        assert_eq!(spawn_rate("30/m"), Ok(0.5));
        assert!(spawn_rate("1e-300").is_err());
    }

    #[test]
    fn users_and_threads() {
        assert_eq!(parse_users("5"), Ok(5));
        assert_eq!(
            parse_users("0").unwrap_err(),
            "the number of users must be at least 1, found 0"
        );
        assert_eq!(
            parse_users("18446744073709551615").unwrap_err(),
            "18446744073709551615 users is more than chorus runs from one command (10000000); run fewer, or spread them over machines with --master and chorus worker"
        );
        assert_eq!(threads("4"), Ok(4));
        assert_eq!(
            threads("0").unwrap_err(),
            "expected from 1 to 1024 threads (leave it out for one per core), found \"0\""
        );
        assert!(threads("100000").is_err());
        assert_eq!(think_scale("0.5"), Ok(0.5));
        for bad in ["1e300", "NaN", "inf", "-1"] {
            assert_eq!(
                think_scale(bad).unwrap_err(),
                format!(
                    "expected a factor from 0 to 100 (1 keeps the recorded pauses, 0.5 halves them), found {bad:?}"
                )
            );
        }
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
            parse_seed("100000000x100000"),
            Err(
                "100000000x100000 is 10000000000000 accounts; the demo makes at most 1000000"
                    .to_owned()
            )
        );
        assert_eq!(
            parse_seed("3x"),
            Err("expected CLASSESxSTUDENTS such as 200x30, found \"3x\"".to_owned())
        );
    }
}
