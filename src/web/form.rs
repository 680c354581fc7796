//! What the page and scripts send to start or change a run, validated once into plain values.
//! Numbers may arrive as JSON numbers or as the text a person typed; every refusal says which
//! field, what was expected and what came.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::engine::{Load, Plan, Stage};
use crate::stats::Threshold;
use crate::units;

/// A validated start request: the load as a plan, and another host if one was given.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StartRequest {
    pub(crate) plan: Plan,
    pub(crate) host: Option<String>,
    /// A capacity search instead of a run at one rate (`find_capacity`).
    pub(crate) capacity: Option<CapacityAsk>,
}

/// A capacity search asked from the page: its conditions and each step's measured time; the
/// plan's arrival rate is the first step's, its max users every step's.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CapacityAsk {
    pub(crate) conditions: Vec<Threshold>,
    pub(crate) step_time: Duration,
}

/// Each step's measured time when the page gives none (as `--step-time`'s default).
pub(crate) const DEFAULT_STEP_TIME: Duration = Duration::from_secs(10);

/// A validated change of the user count.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UsersChange {
    pub(crate) users: u64,
    pub(crate) spawn_rate: Option<f64>,
}

fn field<'a>(body: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    body.get(name).filter(|value| {
        !value.is_null() && value.as_str().is_none_or(|text| !text.trim().is_empty())
    })
}

fn shown(value: &Value) -> String {
    match value {
        Value::String(text) => format!("{text:?}"),
        other => other.to_string(),
    }
}

fn whole_number(body: &Map<String, Value>, name: &str, what: &str) -> Result<u64, String> {
    let Some(value) = field(body, name) else {
        return Err(format!(
            "{name}: enter the {what} (a whole number of at least 1)"
        ));
    };
    let number = match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse::<f64>().ok(),
        _ => None,
    };
    match number {
        None => Err(format!(
            "{name} must be a whole number, got {}",
            shown(value)
        )),
        Some(n) if n.fract() != 0.0 => Err(format!(
            "{name} must be a whole number, got {}",
            shown(value)
        )),
        Some(n) if n < 1.0 => Err(format!("{name} must be at least 1, got {}", shown(value))),
        Some(n) if n > 10_000_000.0 => Err(format!(
            "{name} must be at most 10000000, got {}",
            shown(value)
        )),
        Some(n) => Ok(n as u64),
    }
}

/// A rate in events per second, as a JSON number or as typed (`5`, `0.5`, `30/m`), within
/// the bounds of `crate::units`.
fn rate(
    body: &Map<String, Value>,
    name: &str,
    rule: units::RateRule,
) -> Result<Option<f64>, String> {
    let Some(value) = field(body, name) else {
        return Ok(None);
    };
    let checked = match value {
        Value::Number(number) => number
            .as_f64()
            .map(|n| units::rate_per_second(n, rule))
            .unwrap_or_else(|| units::rate_per_second(f64::NAN, rule)),
        Value::String(text) => units::parse_rate(text, rule),
        other => {
            return Err(format!(
                "{name} must be a number such as 5 or a rate such as 30/m, got {}",
                shown(other)
            ));
        }
    };
    checked.map(Some).map_err(|err| err.named(name))
}

fn object(body: &Value) -> Result<&Map<String, Value>, String> {
    body.as_object().ok_or_else(|| {
        "expected a JSON object such as {\"users\": 10, \"spawn_rate\": 2}".to_owned()
    })
}

pub(crate) fn start_request(body: &Value) -> Result<StartRequest, String> {
    let body = object(body)?;
    let load = if field(body, "arrival_rate").is_some() {
        let per_second = rate(body, "arrival_rate", units::ARRIVAL_RATE)?.ok_or_else(|| {
            "arrival_rate: enter how many iterations to start per second".to_owned()
        })?;
        let max_users = whole_number(body, "max_users", "most users that may be busy at once")?;
        Load::Arrivals {
            per_second,
            max_users,
        }
    } else {
        let users = whole_number(body, "users", "number of users")?;
        let spawn_rate = rate(body, "spawn_rate", units::SPAWN_RATE)?.ok_or_else(|| {
            "spawn_rate: enter how many users to start per second (more than 0)".to_owned()
        })?;
        Load::Users { users, spawn_rate }
    };
    let host = match field(body, "host") {
        None => None,
        Some(Value::String(text)) => {
            let text = text.trim();
            let parsed = url::Url::parse(text).map_err(|_| {
                format!("host must be a URL such as http://127.0.0.1:8001, got {text:?}")
            })?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err(format!(
                    "host must be an http:// or https:// URL, got {text:?}"
                ));
            }
            Some(text.trim_end_matches('/').to_owned())
        }
        Some(other) => {
            return Err(format!(
                "host must be a URL such as http://127.0.0.1:8001, got {}",
                shown(other)
            ));
        }
    };
    let run_time = match field(body, "run_time") {
        None => None,
        Some(Value::Number(n)) => Some(
            units::from_seconds(n.as_f64().unwrap_or(f64::NAN), units::RUN_TIME)
                .map_err(|err| err.named("run_time"))?,
        ),
        Some(Value::String(text)) => Some(
            units::parse_duration(text, units::RUN_TIME).map_err(|err| err.named("run_time"))?,
        ),
        Some(other) => {
            return Err(format!(
                "run_time must be a duration such as 90s, 10m or 1h30m, got {}",
                shown(other)
            ));
        }
    };
    let plan = Plan::new(vec![Stage {
        load,
        duration: run_time,
    }])
    .map_err(|err| err.to_string())?;
    let capacity = capacity_ask(body, &load)?;
    Ok(StartRequest {
        plan,
        host,
        capacity,
    })
}

/// `find_capacity` (conditions as a list, or one text separated by commas) with an arrival
/// rate to start from, and an optional `step_time`.
fn capacity_ask(body: &Map<String, Value>, load: &Load) -> Result<Option<CapacityAsk>, String> {
    let Some(conditions) = field(body, "find_capacity") else {
        return Ok(None);
    };
    let texts: Vec<String> = match conditions {
        Value::String(text) => text.split(',').map(|c| c.trim().to_owned()).collect(),
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().map(|c| c.trim().to_owned()))
            .collect::<Option<_>>()
            .ok_or_else(|| "find_capacity must be conditions such as \"p95<300ms\"".to_owned())?,
        other => {
            return Err(format!(
                "find_capacity must be conditions such as \"p95<300ms, failures<1%\", got {}",
                shown(other)
            ));
        }
    };
    let texts: Vec<String> = texts.into_iter().filter(|c| !c.is_empty()).collect();
    if texts.is_empty() {
        return Err("find_capacity: enter a condition such as p95<300ms".to_owned());
    }
    let conditions = crate::stats::thresholds::parse_all(&texts)
        .map_err(|err| format!("find_capacity: {err}"))?;
    if !matches!(load, Load::Arrivals { .. }) {
        return Err(
            "find_capacity needs an arrival rate to start from (arrival_rate and max_users)"
                .to_owned(),
        );
    }
    let step_time = match field(body, "step_time") {
        None => DEFAULT_STEP_TIME,
        Some(Value::Number(n)) => {
            units::from_seconds(n.as_f64().unwrap_or(f64::NAN), units::RUN_TIME)
                .map_err(|err| err.named("step_time"))?
        }
        Some(Value::String(text)) => {
            units::parse_duration(text, units::RUN_TIME).map_err(|err| err.named("step_time"))?
        }
        Some(other) => {
            return Err(format!(
                "step_time must be a duration such as 10s, got {}",
                shown(other)
            ));
        }
    };
    Ok(Some(CapacityAsk {
        conditions,
        step_time,
    }))
}

pub(crate) fn users_change(body: &Value) -> Result<UsersChange, String> {
    let body = object(body)?;
    Ok(UsersChange {
        users: whole_number(body, "users", "number of users")?,
        spawn_rate: rate(body, "spawn_rate", units::SPAWN_RATE)?,
    })
}

/// Locust's form-encoded `/swarm` fields as the JSON `start_request` takes.
pub(crate) fn from_locust_form(pairs: &[(String, String)]) -> Value {
    let mut body = Map::new();
    for (name, value) in pairs {
        let key = match name.as_str() {
            "user_count" => "users",
            "spawn_rate" => "spawn_rate",
            "host" => "host",
            "run_time" => "run_time",
            _ => continue,
        };
        body.insert(key.to_owned(), Value::String(value.clone()));
    }
    Value::Object(body)
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_as_typed_or_as_json() {
        let request = start_request(&json!({"users": "50", "spawn_rate": 5, "run_time": "2m", "host": "http://127.0.0.1:9/"})).unwrap();
        assert_eq!(
            request,
            StartRequest {
                plan: Plan::users(50, Some(5.0), Some(std::time::Duration::from_secs(120)))
                    .unwrap(),
                host: Some("http://127.0.0.1:9".to_owned()),
                capacity: None,
            }
        );
        let open = start_request(&json!({"arrival_rate": 20, "max_users": "100"})).unwrap();
        assert_eq!(open.plan, Plan::arrivals("20", 100, None).unwrap());
    }

    #[test]
    fn refusals_name_the_field_and_what_came() {
        let cases = [
            (
                json!({"users": 0, "spawn_rate": 1}),
                "users must be at least 1, got 0",
            ),
            (
                json!({"users": "-3", "spawn_rate": 1}),
                "users must be at least 1, got \"-3\"",
            ),
            (
                json!({"users": "ten", "spawn_rate": 1}),
                "users must be a whole number, got \"ten\"",
            ),
            (
                json!({"users": 2.5, "spawn_rate": 1}),
                "users must be a whole number, got 2.5",
            ),
            (
                json!({"spawn_rate": 1}),
                "users: enter the number of users (a whole number of at least 1)",
            ),
            (
                json!({"users": 5, "spawn_rate": 0}),
                "spawn_rate must be from 1/d to 10000000/s, found 0",
            ),
            (
                json!({"users": 5, "spawn_rate": "fast"}),
                "spawn_rate: expected a rate such as 10/s, 600/m or 36000/h (a bare number is per second), found \"fast\"",
            ),
            (
                json!({"users": 5, "spawn_rate": 1e-300}),
                "spawn_rate must be from 1/d to 10000000/s, found 1e-300",
            ),
            (
                json!({"users": 5, "spawn_rate": 1, "run_time": "soon"}),
                "run_time: expected a duration such as 500ms, 10s, 1m30s or 1h (a bare number is seconds), found \"soon\"",
            ),
            (
                json!({"users": 5, "spawn_rate": 1, "run_time": 1e300}),
                "run_time must be more than 0s and at most 1y, found 1e300",
            ),
            (
                json!({"users": 5, "spawn_rate": 1, "run_time": "500000000000y"}),
                "run_time must be more than 0s and at most 1y, found \"500000000000y\"",
            ),
            (
                json!({"users": 5, "spawn_rate": 1, "run_time": 0}),
                "run_time must be more than 0s and at most 1y, found 0",
            ),
            (
                json!({"arrival_rate": "1e300/s", "max_users": 2}),
                "arrival_rate must be from 1/d to 10000000/s, found \"1e300/s\"",
            ),
            (
                json!({"users": 5, "spawn_rate": 1, "host": "localhost"}),
                "host must be a URL such as http://127.0.0.1:8001, got \"localhost\"",
            ),
            (
                json!([1]),
                "expected a JSON object such as {\"users\": 10, \"spawn_rate\": 2}",
            ),
        ];
        for (body, message) in cases {
            assert_eq!(start_request(&body).unwrap_err(), message, "{body}");
        }
    }

    #[test]
    fn locust_swarm_form() {
        let pairs = vec![
            ("user_count".to_owned(), "7".to_owned()),
            ("spawn_rate".to_owned(), "2".to_owned()),
        ];
        let request = start_request(&from_locust_form(&pairs)).unwrap();
        assert_eq!(request.plan, Plan::users(7, Some(2.0), None).unwrap());
        // Locust's form takes the same bounds as the JSON API.
        let huge = vec![
            ("user_count".to_owned(), "1".to_owned()),
            ("spawn_rate".to_owned(), "1e-300".to_owned()),
            ("run_time".to_owned(), "1e300".to_owned()),
        ];
        assert_eq!(
            start_request(&from_locust_form(&huge)).unwrap_err(),
            "spawn_rate must be from 1/d to 10000000/s, found \"1e-300\""
        );
        let long = vec![
            ("user_count".to_owned(), "1".to_owned()),
            ("spawn_rate".to_owned(), "1".to_owned()),
            ("run_time".to_owned(), "500000000000y".to_owned()),
        ];
        assert_eq!(
            start_request(&from_locust_form(&long)).unwrap_err(),
            "run_time must be more than 0s and at most 1y, found \"500000000000y\""
        );
    }

    #[test]
    fn a_capacity_search_takes_its_conditions_and_step_time_and_an_arrival_rate() {
        let request = start_request(&json!({
            "arrival_rate": "50", "max_users": 500,
            "find_capacity": "p95<300ms, failures<1%", "step_time": "5s"
        }))
        .unwrap();
        let ask = request.capacity.unwrap();
        let written: Vec<&str> = ask.conditions.iter().map(Threshold::expression).collect();
        assert_eq!(written, ["p95<300ms", "failures<1%"]);
        assert_eq!(ask.step_time, Duration::from_secs(5));
        assert_eq!(request.plan, Plan::arrivals("50", 500, None).unwrap());
        let listed = start_request(&json!({
            "arrival_rate": 5, "max_users": 5, "find_capacity": ["p99<1s"]
        }))
        .unwrap();
        assert_eq!(listed.capacity.unwrap().step_time, DEFAULT_STEP_TIME);
        for (body, message) in [
            (
                json!({"users": 5, "spawn_rate": 1, "find_capacity": "p95<1s"}),
                "find_capacity needs an arrival rate to start from (arrival_rate and max_users)",
            ),
            (
                json!({"arrival_rate": 5, "max_users": 5, "find_capacity": " , "}),
                "find_capacity: enter a condition such as p95<300ms",
            ),
            (
                json!({"arrival_rate": 5, "max_users": 5, "find_capacity": 3}),
                "find_capacity must be conditions such as \"p95<300ms, failures<1%\", got 3",
            ),
        ] {
            assert_eq!(start_request(&body).unwrap_err(), message, "{body}");
        }
        let bad = start_request(&json!({
            "arrival_rate": 5, "max_users": 5, "find_capacity": "p95<fast"
        }))
        .unwrap_err();
        assert!(bad.starts_with("find_capacity: "), "{bad}");
        let bad_step = start_request(&json!({
            "arrival_rate": 5, "max_users": 5, "find_capacity": "p95<1s", "step_time": "0s"
        }))
        .unwrap_err();
        assert!(bad_step.starts_with("step_time"), "{bad_step}");
    }
}
