//! The variables of one virtual user, as templates see them: its data rows, `vars:`,
//! values extracted so far and built-ins (`vu`, `iteration`, `last_status`, `origin`).
//!
//! Values are kept as minijinja values behind one `Arc`, so a template reads them in place:
//! rendering clones the `Arc`, never the map, and setting a variable copies the map only
//! while a render still holds it (never, between requests).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use minijinja::Value;
use minijinja::value::{Enumerator, Object, ObjectRepr};

use super::Scenario;
use super::template::TemplateError;

/// Variables every user has without the file setting them.
pub(crate) const BUILT_INS: &[&str] = &["vu", "iteration", "last_status", "origin"];

#[derive(Debug, Clone, Default)]
struct Map {
    values: HashMap<Arc<str>, Value>,
}

impl Object for Map {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.values.get(key.as_str()?).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let mut keys: Vec<Value> = self.values.keys().map(|key| Value::from(&**key)).collect();
        keys.sort();
        Enumerator::Values(keys)
    }
}

/// One user's variables. Cheap to read from templates; set by extraction.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    map: Arc<Map>,
}

impl Vars {
    /// Empty variables (tests, and scenarios without data).
    pub fn new() -> Vars {
        Vars::default()
    }

    /// The variables user number `vu` starts with: a row of each data source under its
    /// `as` name, `vu`, `iteration` 0, `origin` (the scheme, host and port of the run's
    /// `host`, `-H` included), the environment values `env()` reads, and the scenario's
    /// `vars:` rendered in order.
    pub fn for_user(scenario: &Scenario, vu: u64) -> Result<Vars, TemplateError> {
        let mut vars = Vars::new();
        vars.set_value("vu", Value::from(vu));
        vars.set_value("iteration", Value::from(0));
        if let Some(host) = &scenario.host {
            vars.set_value("origin", Value::from(host.origin().ascii_serialization()));
        }
        for source in &scenario.data {
            let Some(row) = source.row_for_user(vu) else {
                return Err(TemplateError::new(format!(
                    "data source `{}` ({}) has no row for user {vu}",
                    source.name,
                    source.file.display()
                )));
            };
            let pairs = source
                .columns
                .iter()
                .zip(row.iter())
                .map(|(column, value)| (column.clone(), Value::from(value.as_str())));
            vars.set_value(&source.as_name, Value::from(BTreeMap::from_iter(pairs)));
        }
        if !scenario.env.is_empty() {
            let values = scenario
                .env
                .iter()
                .map(|(name, value)| (name.clone(), Value::from(value.as_str())));
            let values = Value::from(BTreeMap::from_iter(values));
            vars.set_value(super::functions::ENV_VARIABLE, values);
        }
        if let Some(scripts) = &scenario.scripts {
            vars.set_value(
                crate::script::JS_VARIABLE,
                crate::script::template_object(scripts),
            );
        }
        for (name, template) in &scenario.vars {
            let value = template
                .render_value(&vars)
                .map_err(|err| TemplateError::new(format!("vars.{name}: {err}")))?;
            vars.set(name, value);
        }
        Ok(vars)
    }

    pub fn set(&mut self, name: &str, value: serde_json::Value) {
        self.set_value(name, from_json(&value));
    }

    pub fn get(&self, name: &str) -> Option<serde_json::Value> {
        self.map.values.get(name).map(to_json)
    }

    /// Sets the built-in `iteration` (the engine counts a user's flow runs from 0).
    pub fn set_iteration(&mut self, iteration: u64) {
        self.set_value("iteration", Value::from(iteration));
    }

    /// Sets the built-in `last_status`: the status of the user's latest response.
    pub fn set_last_status(&mut self, status: u16) {
        self.set_value("last_status", Value::from(status));
    }

    pub(crate) fn set_value(&mut self, name: &str, value: Value) {
        let values = &mut Arc::make_mut(&mut self.map).values;
        // Replacing in place keeps the key: no allocation for a variable set again.
        match values.get_mut(name) {
            Some(slot) => *slot = value,
            None => {
                values.insert(Arc::from(name), value);
            }
        }
    }

    /// A variable as templates see it.
    pub(crate) fn lookup(&self, name: &str) -> Option<&Value> {
        self.map.values.get(name)
    }

    /// Every variable, sorted by name (the order templates enumerate them in), read in place.
    pub(crate) fn sorted(&self) -> Vec<(&str, &Value)> {
        let mut entries: Vec<(&str, &Value)> = (self.map.values.iter())
            .map(|(name, value)| (&**name, value))
            .collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        entries
    }

    /// The root value templates are evaluated against.
    pub(crate) fn context(&self) -> Value {
        Value::from_dyn_object(self.map.clone())
    }
}

/// A JSON value as minijinja sees it.
pub(crate) fn from_json(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::from(()),
        serde_json::Value::Bool(b) => Value::from(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(items) => items.iter().map(from_json).collect(),
        serde_json::Value::Object(map) => Value::from(
            map.iter()
                .map(|(key, item)| (key.clone(), from_json(item)))
                .collect::<BTreeMap<String, Value>>(),
        ),
    }
}

/// A minijinja value as JSON; values JSON cannot hold (functions, undefined) become null.
pub(crate) fn to_json(value: &Value) -> serde_json::Value {
    let mut unbounded = usize::MAX;
    to_json_within(value, &mut unbounded).unwrap_or_default()
}

/// [`to_json`] of a value that takes at most `budget` bytes as JSON (strings by their length,
/// every other value as 8); `None` past it. A value can hold itself many times over without
/// the memory (`[a, a]` shares `a`): its JSON cannot.
pub(crate) fn to_json_within(value: &Value, budget: &mut usize) -> Option<serde_json::Value> {
    use minijinja::value::ValueKind;
    let cost = match value.kind() {
        ValueKind::String => value.as_str().map_or(0, str::len),
        ValueKind::Bytes => value.as_bytes().map_or(0, <[u8]>::len),
        _ => 8,
    };
    *budget = budget.checked_sub(cost)?;
    Some(match value.kind() {
        ValueKind::Undefined | ValueKind::None => serde_json::Value::Null,
        ValueKind::Bool => serde_json::Value::Bool(value.is_true()),
        ValueKind::Number => {
            if let Some(i) = value.as_i64() {
                serde_json::Value::from(i)
            } else if let Ok(u) = u64::try_from(value.clone()) {
                serde_json::Value::from(u)
            } else {
                f64::try_from(value.clone())
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(serde_json::Value::Null, serde_json::Value::Number)
            }
        }
        ValueKind::String => {
            serde_json::Value::String(value.as_str().unwrap_or_default().to_owned())
        }
        ValueKind::Bytes => serde_json::Value::String(
            String::from_utf8_lossy(value.as_bytes().unwrap_or_default()).into_owned(),
        ),
        ValueKind::Seq | ValueKind::Iterable => match value.try_iter() {
            Ok(items) => serde_json::Value::Array(
                items
                    .map(|item| to_json_within(&item, budget))
                    .collect::<Option<_>>()?,
            ),
            Err(_) => serde_json::Value::Null,
        },
        ValueKind::Map => {
            let mut map = serde_json::Map::new();
            if let Ok(keys) = value.try_iter() {
                for key in keys {
                    let item = value.get_item(&key).unwrap_or_default();
                    let key = key.as_str().map_or_else(|| key.to_string(), str::to_owned);
                    *budget = budget.checked_sub(key.len())?;
                    map.insert(key, to_json_within(&item, budget)?);
                }
            }
            serde_json::Value::Object(map)
        }
        _ => serde_json::Value::String(value.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trips() {
        let value =
            json!({"a": [1, -2, 2.5, "x", null, true], "b": {"c": 18446744073709551615u64}});
        assert_eq!(to_json(&from_json(&value)), value);
    }

    #[test]
    fn set_and_get() {
        let mut vars = Vars::new();
        vars.set("gameSessionId", json!("g-1"));
        let snapshot = vars.clone();
        vars.set("gameSessionId", json!("g-2"));
        assert_eq!(vars.get("gameSessionId"), Some(json!("g-2")));
        assert_eq!(snapshot.get("gameSessionId"), Some(json!("g-1")));
        assert_eq!(vars.get("missing"), None);
    }
}
