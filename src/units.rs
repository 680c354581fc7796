//! Durations and rates as people write them — `500ms`, `10s`, `1m30s`, `1.5h`, a bare number
//! of seconds, `10/s`, `600/m` — one grammar for the command line, scenario files and the
//! page, and the bounds each place allows. Values are checked here, once, so nothing past
//! the edge meets a duration it cannot add to an `Instant` or a rate it cannot divide by.
//!
//! A duration is one or more `NUMBER UNIT` terms (`1h 30m`, `1m30s`), or one bare number of
//! seconds. Numbers may have a fraction and an exponent (`1.5s`, `2e3ms`). The units are
//! humantime's: `ns`, `us`/`µs`, `ms`, `s`/`sec`/`secs`/`second(s)`, `m`/`min`/`mins`/
//! `minute(s)`, `h`/`hr`/`hrs`/`hour(s)`, `d`/`day(s)`, `w`/`wk`/`wks`/`week(s)`, `M`/
//! `month(s)` (30.44 days), `y`/`yr`/`yrs`/`year(s)` (365.25 days).

use std::fmt;
use std::time::Duration;

const NANOS_PER_SECOND: u128 = 1_000_000_000;
const DAY: u64 = 86_400;
/// humantime's year: 365.25 days.
const YEAR: u64 = 31_557_600;

/// The longest run: a year.
pub const MAX_RUN_TIME: Duration = Duration::from_secs(YEAR);
/// The longest pause a step may take: a day.
pub const MAX_THINK: Duration = Duration::from_secs(DAY);
/// The longest a connection, a request or the end of a run may be waited for: a day.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(DAY);
/// The slowest rate: once a day.
pub const MIN_RATE_PER_SECOND: f64 = 1.0 / DAY as f64;
/// The fastest rate: ten million a second.
pub const MAX_RATE_PER_SECOND: f64 = 1e7;

/// What a duration is used for, and so how long it may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationRule {
    /// For messages: `a run time`, `a think time`.
    pub what: &'static str,
    /// Whether 0 is allowed (a think of 0: no pause; a stop timeout of 0: stop at once).
    pub zero: bool,
    pub max: Duration,
}

/// `-t`, `--stages`, the page's run time: more than 0, at most a year.
pub const RUN_TIME: DurationRule = DurationRule {
    what: "a run time",
    zero: false,
    max: MAX_RUN_TIME,
};
/// `think:`, `--think`: 0 to a day.
pub const THINK: DurationRule = DurationRule {
    what: "a think time",
    zero: true,
    max: MAX_THINK,
};
/// `timeouts.connect`, `timeouts.request`: more than 0, at most a day.
pub const TIMEOUT: DurationRule = DurationRule {
    what: "a timeout",
    zero: false,
    max: MAX_TIMEOUT,
};
/// `--stop-timeout`: 0 (stop at once) to a day.
pub const STOP_TIMEOUT: DurationRule = DurationRule {
    what: "a stop timeout",
    zero: true,
    max: MAX_TIMEOUT,
};

/// What a rate is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateRule {
    /// For messages: `an arrival rate`, `a spawn rate`.
    pub what: &'static str,
}

/// `--arrival-rate`, the page's arrival rate.
pub const ARRIVAL_RATE: RateRule = RateRule {
    what: "an arrival rate",
};
/// `-r`, the page's spawn rate.
pub const SPAWN_RATE: RateRule = RateRule {
    what: "a spawn rate",
};

/// Why a duration or rate was refused; the text says what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.named(self.what.unwrap_or_default()))]
pub struct UnitError {
    /// For a value out of range: what it is (`a run time`), so a caller can name its field
    /// instead; `None` for a syntax error.
    what: Option<&'static str>,
    /// `must be ..., found ...` or `expected ..., found ...`.
    rest: String,
}

impl UnitError {
    fn syntax(rest: String) -> UnitError {
        UnitError { what: None, rest }
    }

    /// A syntax mistake (as opposed to a value out of range).
    pub fn is_syntax(&self) -> bool {
        self.what.is_none()
    }

    /// The message with `name` as its subject: `run_time must be more than 0s ...`,
    /// `run_time: expected a duration ...`; with an empty name, the message alone.
    pub fn named(&self, name: &str) -> String {
        match (self.what, name.is_empty()) {
            (_, true) => self.rest.clone(),
            (Some(_), false) => format!("{name} {}", self.rest),
            (None, false) => format!("{name}: {}", self.rest),
        }
    }
}

/// A duration written for `rule`: syntax and bounds.
pub fn parse_duration(text: &str, rule: DurationRule) -> Result<Duration, UnitError> {
    let trimmed = text.trim();
    let nanos = duration_nanos(trimmed).ok_or_else(|| {
        UnitError::syntax(format!(
            "expected a duration such as 500ms, 10s, 1m30s or 1h (a bare number is seconds), found {trimmed:?}"
        ))
    })?;
    within(nanos, rule, &format!("{trimmed:?}"))
}

/// A number of seconds (a JSON number, a think template's value) for `rule`.
pub fn from_seconds(seconds: f64, rule: DurationRule) -> Result<Duration, UnitError> {
    let shown = number(seconds);
    if seconds.is_nan() {
        return Err(UnitError::syntax(format!(
            "expected a number of seconds, found {shown}"
        )));
    }
    if seconds < 0.0 {
        return Err(out_of_range(rule, &shown));
    }
    // Past the maximum in f64 already: refuse before converting (1e300 does not fit).
    if seconds > rule.max.as_secs_f64() {
        return Err(out_of_range(rule, &shown));
    }
    let nanos = (seconds * 1e9).round() as u128;
    within(Some(nanos), rule, &shown)
}

/// A number as a person wrote it: `0`, `5`, `0.5`, `1e300` (not `0.0`, nor 300 digits).
fn number(value: f64) -> String {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e16 {
        format!("{value:.0}")
    } else {
        format!("{value:?}")
    }
}

/// How a bound reads in a message: `365.25d` is `1y`.
pub fn show(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if duration.subsec_nanos() != 0 || seconds == 0 {
        return format!("{}ms", duration.as_millis());
    }
    for (unit, size) in [("y", YEAR), ("d", DAY), ("h", 3600), ("m", 60)] {
        if seconds.is_multiple_of(size) {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}

fn range(rule: DurationRule) -> String {
    if rule.zero {
        format!("from 0s to {}", show(rule.max))
    } else {
        format!("more than 0s and at most {}", show(rule.max))
    }
}

fn out_of_range(rule: DurationRule, shown: &str) -> UnitError {
    UnitError {
        what: Some(rule.what),
        rest: format!("must be {}, found {shown}", range(rule)),
    }
}

fn within(nanos: Option<u128>, rule: DurationRule, shown: &str) -> Result<Duration, UnitError> {
    match nanos {
        Some(0) if !rule.zero => Err(out_of_range(rule, shown)),
        Some(nanos) if nanos <= rule.max.as_nanos() => Ok(Duration::new(
            (nanos / NANOS_PER_SECOND) as u64,
            (nanos % NANOS_PER_SECOND) as u32,
        )),
        // `None` here: a number too large to hold, so past any maximum.
        _ => Err(out_of_range(rule, shown)),
    }
}

/// The nanoseconds `text` stands for. `None`: not a duration; `Some(None)`: a duration too
/// large to hold, which the bounds refuse (so the message is about the range, not syntax).
fn duration_nanos(text: &str) -> Option<Option<u128>> {
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    // A bare number: seconds.
    if let Some((number, after)) = Number::read(rest) {
        if after.trim().is_empty() {
            return Some(number.times(NANOS_PER_SECOND));
        }
    }
    let mut total: Option<u128> = Some(0);
    while !rest.is_empty() {
        let (number, after) = Number::read(rest)?;
        let after = after.trim_start();
        let unit_end = after
            .find(|c: char| !(c.is_ascii_alphabetic() || c == 'µ'))
            .unwrap_or(after.len());
        let unit = unit_nanos(&after[..unit_end])?;
        let term = number.times(unit);
        total = match (total, term) {
            (Some(total), Some(term)) => total.checked_add(term),
            _ => None,
        };
        rest = after[unit_end..].trim_start();
    }
    Some(total)
}

fn unit_nanos(unit: &str) -> Option<u128> {
    let seconds: u128 = match unit {
        "nanos" | "nsec" | "ns" => return Some(1),
        "usec" | "us" | "µs" => return Some(1_000),
        "millis" | "msec" | "ms" => return Some(1_000_000),
        "seconds" | "second" | "secs" | "sec" | "s" => 1,
        "minutes" | "minute" | "min" | "mins" | "m" => 60,
        "hours" | "hour" | "hr" | "hrs" | "h" => 3600,
        "days" | "day" | "d" => DAY as u128,
        "weeks" | "week" | "wk" | "wks" | "w" => 7 * DAY as u128,
        "months" | "month" | "M" => 2_630_016,
        "years" | "year" | "yr" | "yrs" | "y" => YEAR as u128,
        _ => return None,
    };
    Some(seconds * NANOS_PER_SECOND)
}

/// A decimal number as written: `digits × 10^exponent`, exactly.
#[derive(Debug, Clone, Copy)]
struct Number {
    /// `None`: more digits than fit, so far past any bound.
    digits: Option<u128>,
    exponent: i64,
}

/// Fraction digits past this many are below any precision that matters here.
const MAX_FRACTION_DIGITS: i64 = 18;

impl Number {
    /// Reads `12`, `1.5`, `.5`, `2e3`, `1E-3` at the start of `text`; the rest follows.
    fn read(text: &str) -> Option<(Number, &str)> {
        let bytes = text.as_bytes();
        let mut at = 0;
        let mut digits: Option<u128> = Some(0);
        let mut exponent: i64 = 0;
        let mut seen = false;
        let push = |digits: Option<u128>, byte: u8| {
            digits
                .and_then(|d| d.checked_mul(10))
                .and_then(|d| d.checked_add(u128::from(byte - b'0')))
        };
        while at < bytes.len() && bytes[at].is_ascii_digit() {
            digits = push(digits, bytes[at]);
            seen = true;
            at += 1;
        }
        if at < bytes.len() && bytes[at] == b'.' {
            at += 1;
            let mut fraction = false;
            while at < bytes.len() && bytes[at].is_ascii_digit() {
                if -exponent < MAX_FRACTION_DIGITS {
                    digits = push(digits, bytes[at]);
                    exponent -= 1;
                }
                fraction = true;
                at += 1;
            }
            if !fraction && !seen {
                return None;
            }
            seen = true;
        }
        if !seen {
            return None;
        }
        // An exponent only when digits follow it: `1e3`, not the `e` of a unit.
        if at < bytes.len() && matches!(bytes[at], b'e' | b'E') {
            let mut end = at + 1;
            if end < bytes.len() && matches!(bytes[end], b'+' | b'-') {
                end += 1;
            }
            let start = end;
            while end < bytes.len() && bytes[end].is_ascii_digit() {
                end += 1;
            }
            if end > start {
                let written: i64 = text[at + 1..end]
                    .parse()
                    .unwrap_or(if bytes[at + 1] == b'-' {
                        i64::MIN / 2
                    } else {
                        i64::MAX / 2
                    });
                exponent = exponent.saturating_add(written);
                at = end;
            }
        }
        Some((Number { digits, exponent }, &text[at..]))
    }

    /// `self × scale`, rounded to a whole number; `None` when it does not fit in a `u128`.
    fn times(self, scale: u128) -> Option<u128> {
        let digits = self.digits?;
        if digits == 0 {
            return Some(0);
        }
        let product = digits.checked_mul(scale)?;
        if self.exponent >= 0 {
            let power = 10u128.checked_pow(u32::try_from(self.exponent).ok()?)?;
            product.checked_mul(power)
        } else {
            match u32::try_from(-self.exponent)
                .ok()
                .and_then(|e| 10u128.checked_pow(e))
            {
                Some(power) => Some((product + power / 2) / power),
                // Smaller than anything a u128 can divide out: rounds to 0.
                None => Some(0),
            }
        }
    }
}

/// A rate written for `rule`: `10/s`, `600/m`, `36000/h`, `2/d`, or a bare number per
/// second; between once a day and ten million a second. Returns events per second.
pub fn parse_rate(text: &str, rule: RateRule) -> Result<f64, UnitError> {
    let trimmed = text.trim();
    let syntax = || {
        UnitError::syntax(format!(
            "expected a rate such as 10/s, 600/m or 36000/h (a bare number is per second), found {trimmed:?}"
        ))
    };
    let (count, unit) = trimmed.split_once('/').unwrap_or((trimmed, "s"));
    let count = count.trim();
    let (number, after) = Number::read(count).ok_or_else(syntax)?;
    if !after.is_empty() {
        return Err(syntax());
    }
    let per: f64 = match unit.trim() {
        "s" | "sec" | "second" => 1.0,
        "m" | "min" | "minute" => 60.0,
        "h" | "hr" | "hour" => 3600.0,
        "d" | "day" => DAY as f64,
        _ => return Err(syntax()),
    };
    let count = number.as_f64();
    check_rate(count / per, rule, &format!("{trimmed:?}"))
}

/// A rate given as a number per second (a JSON number, `-r 0.5`).
pub fn rate_per_second(per_second: f64, rule: RateRule) -> Result<f64, UnitError> {
    check_rate(per_second, rule, &number(per_second))
}

fn check_rate(per_second: f64, rule: RateRule, shown: &str) -> Result<f64, UnitError> {
    if per_second.is_finite() && (MIN_RATE_PER_SECOND..=MAX_RATE_PER_SECOND).contains(&per_second) {
        return Ok(per_second);
    }
    Err(UnitError {
        what: Some(rule.what),
        rest: format!(
            "must be from 1/d to {}/s, found {shown}",
            MAX_RATE_PER_SECOND as u64
        ),
    })
}

impl Number {
    fn as_f64(self) -> f64 {
        match self.digits {
            None => f64::INFINITY,
            Some(digits) => {
                let exponent = self.exponent.clamp(-400, 400) as i32;
                digits as f64 * 10f64.powi(exponent)
            }
        }
    }
}

impl fmt::Display for DurationRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.what, range(*self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Duration {
        parse_duration(text, RUN_TIME).unwrap_or_else(|err| panic!("{text}: {err}"))
    }

    fn err(text: &str, rule: DurationRule) -> String {
        parse_duration(text, rule).unwrap_err().to_string()
    }

    #[test]
    fn every_form_each_parser_took_before() {
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("10s"), Duration::from_secs(10));
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok("1h 30m"), Duration::from_secs(5400));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok("1hour"), Duration::from_secs(3600));
        assert_eq!(ok("2 mins"), Duration::from_secs(120));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("2.5"), Duration::from_millis(2500));
        assert_eq!(ok(".5"), Duration::from_millis(500));
        assert_eq!(ok("30"), Duration::from_secs(30));
        assert_eq!(ok("1e3"), Duration::from_secs(1000));
        assert_eq!(ok("2e3ms"), Duration::from_secs(2));
        assert_eq!(ok("250us"), Duration::from_micros(250));
        assert_eq!(ok("1d"), Duration::from_secs(DAY));
        assert_eq!(ok("1y"), MAX_RUN_TIME);
        assert_eq!(ok(" 10s "), Duration::from_secs(10));
        assert_eq!(ok("0.001"), Duration::from_millis(1));
        assert_eq!(ok("1."), Duration::from_secs(1));
        assert_eq!(ok("1.333333333333333333333333333s").as_millis(), 1333);
    }

    #[test]
    fn syntax_errors_teach_the_grammar() {
        for text in [
            "soon", "", "10x", "-5s", "s", "1e", "nan", "inf", "10s!", "1//s",
        ] {
            assert_eq!(
                err(text, RUN_TIME),
                format!(
                    "expected a duration such as 500ms, 10s, 1m30s or 1h (a bare number is seconds), found {:?}",
                    text.trim()
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn bounds_name_the_place_and_the_range() {
        let too_long = "a run time must be more than 0s and at most 1y, found";
        for text in [
            "1e300",
            "18446744073709551615",
            "1e19",
            "9223372036854775807",
            "500000000000y",
            "99999999999999999999999999999999999999999999999999s",
            "2y",
        ] {
            assert_eq!(err(text, RUN_TIME), format!("{too_long} {text:?}"));
        }
        assert_eq!(err("0", RUN_TIME), format!("{too_long} \"0\""));
        assert_eq!(err("0s", RUN_TIME), format!("{too_long} \"0s\""));
        assert_eq!(
            err("1e300", THINK),
            "a think time must be from 0s to 1d, found \"1e300\""
        );
        assert_eq!(parse_duration("0", THINK), Ok(Duration::ZERO));
        assert_eq!(
            err("99999999999999999999999s", TIMEOUT),
            "a timeout must be more than 0s and at most 1d, found \"99999999999999999999999s\""
        );
        assert_eq!(
            err("1e300", STOP_TIMEOUT),
            "a stop timeout must be from 0s to 1d, found \"1e300\""
        );
        // Tiny values round to nothing, which a run time may not be.
        assert!(parse_duration("1e-300", RUN_TIME).is_err());
    }

    #[test]
    fn seconds_as_numbers() {
        assert_eq!(from_seconds(1.5, THINK), Ok(Duration::from_millis(1500)));
        assert_eq!(from_seconds(0.0, THINK), Ok(Duration::ZERO));
        assert_eq!(
            from_seconds(1e300, RUN_TIME).unwrap_err().to_string(),
            "a run time must be more than 0s and at most 1y, found 1e300"
        );
        assert!(from_seconds(-1.0, THINK).is_err());
        assert!(from_seconds(f64::NAN, THINK).is_err());
        assert!(from_seconds(f64::INFINITY, THINK).is_err());
        assert!(from_seconds(0.0, RUN_TIME).is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("200/s", ARRIVAL_RATE), Ok(200.0));
        assert_eq!(parse_rate("600/m", ARRIVAL_RATE), Ok(10.0));
        assert_eq!(parse_rate("36000/h", ARRIVAL_RATE), Ok(10.0));
        assert_eq!(parse_rate("5", ARRIVAL_RATE), Ok(5.0));
        assert_eq!(parse_rate("0.5", SPAWN_RATE), Ok(0.5));
        assert_eq!(parse_rate("1/d", ARRIVAL_RATE), Ok(MIN_RATE_PER_SECOND));
        assert_eq!(parse_rate("1e7/s", ARRIVAL_RATE), Ok(1e7));
        let range = "an arrival rate must be from 1/d to 10000000/s, found";
        for text in ["1e300/s", "1e-300/s", "0/s", "1e8", "0.5/d"] {
            assert_eq!(
                parse_rate(text, ARRIVAL_RATE).unwrap_err().to_string(),
                format!("{range} {text:?}")
            );
        }
        let syntax =
            "expected a rate such as 10/s, 600/m or 36000/h (a bare number is per second), found";
        for text in ["fast", "10/fortnight", "-1/s", "nan", "inf/s", "/s"] {
            assert_eq!(
                parse_rate(text, ARRIVAL_RATE).unwrap_err().to_string(),
                format!("{syntax} {text:?}")
            );
        }
        assert_eq!(
            rate_per_second(1e-300, SPAWN_RATE).unwrap_err().to_string(),
            "a spawn rate must be from 1/d to 10000000/s, found 1e-300"
        );
        assert!(rate_per_second(f64::NAN, SPAWN_RATE).is_err());
        assert!(rate_per_second(0.0, SPAWN_RATE).is_err());
    }

    #[test]
    fn a_caller_can_name_its_field() {
        let range = parse_duration("1e300", RUN_TIME).unwrap_err();
        assert!(!range.is_syntax());
        assert_eq!(
            range.named("run_time"),
            "run_time must be more than 0s and at most 1y, found \"1e300\""
        );
        let syntax = parse_rate("fast", SPAWN_RATE).unwrap_err();
        assert!(syntax.is_syntax());
        assert_eq!(
            syntax.named("spawn_rate"),
            "spawn_rate: expected a rate such as 10/s, 600/m or 36000/h (a bare number is per second), found \"fast\""
        );
    }

    #[test]
    fn bounds_read_as_written() {
        assert_eq!(show(MAX_RUN_TIME), "1y");
        assert_eq!(show(MAX_THINK), "1d");
        assert_eq!(show(Duration::from_secs(90)), "90s");
        assert_eq!(show(Duration::from_secs(7200)), "2h");
        assert_eq!(show(Duration::from_millis(1500)), "1500ms");
    }
}
