//! Reading `data:` (each source on its own, then the files they name) and `vars:` (in an
//! order where each reads only those before it), and checking that every variable a
//! template reads is set somewhere: part of loading; problems go to the `Context`.

use std::path::Path;

use super::LoadOptions;
use super::load::{Context, is_identifier};
use super::raw::RawMode;
use super::template::Template;
use super::vars::BUILT_INS;
use super::yaml::{self, join};
use crate::data::{DataSource, Mode};

impl Context<'_> {
    /// Each data source read on its own, so a mistake in one does not hide the others.
    pub(super) fn data_sources(&mut self) -> Vec<(String, super::raw::RawData)> {
        let Some(node) = self.root.get("data") else {
            return Vec::new();
        };
        match &node.value {
            yaml::Value::Map(entries) => entries
                .iter()
                .filter_map(|(key, value)| {
                    let raw = self.read(value, &join("data", &key.text))?;
                    Some((key.text.clone(), raw))
                })
                .collect(),
            yaml::Value::Null => Vec::new(),
            _ => {
                let found = node.describe();
                self.problem(
                    "data",
                    false,
                    format!(
                        "expected a map of sources (`users: {{file: users.csv}}`), found {found}"
                    ),
                );
                Vec::new()
            }
        }
    }

    pub(super) fn data(
        &mut self,
        sources: Vec<(String, super::raw::RawData)>,
        options: &LoadOptions,
    ) {
        for (name, _) in &options.data_overrides {
            if !sources.iter().any(|(source, _)| source == name) {
                let known: Vec<&str> = sources.iter().map(|(name, _)| name.as_str()).collect();
                self.problem_without_place(format!(
                    "--data {name}=...: the scenario has no data source `{name}` (it has: {})",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ));
            }
        }
        let base = self.file.parent().map(Path::to_owned).unwrap_or_default();
        for (name, raw) in sources {
            let path = join("data", &name);
            let as_name = raw.as_name.clone().unwrap_or_else(|| name.clone());
            if !is_identifier(&as_name) {
                let at = if raw.as_name.is_some() {
                    join(&path, "as")
                } else {
                    path.clone()
                };
                self.problem(
                    &at,
                    raw.as_name.is_none(),
                    format!("`{as_name}` cannot be a variable name: use letters, digits and _ (set `as:`)"),
                );
                continue;
            }
            let mode = match raw.mode.unwrap_or(RawMode::Unique) {
                RawMode::Unique => Mode::Unique,
                RawMode::Cycle => Mode::Cycle,
                RawMode::Random => Mode::Random,
                RawMode::Shared => Mode::Shared,
            };
            let file = match options
                .data_overrides
                .iter()
                .rev()
                .find(|(n, _)| *n == name)
            {
                Some((_, file)) => file.clone(),
                None => base.join(&raw.file),
            };
            match DataSource::load(&name, &as_name, mode, &file) {
                Ok(source) => {
                    self.defined.insert(as_name);
                    self.data.push(source);
                }
                Err(err) => {
                    // Defined all the same, so its uses are not reported a second time.
                    self.defined.insert(as_name);
                    self.problem(&join(&path, "file"), false, err.message);
                }
            }
        }
    }

    /// `vars:` in file order, then `--var` (replacing or adding).
    pub(super) fn vars(&mut self, options: &LoadOptions) -> Vec<(String, Template)> {
        let mut vars: Vec<(String, Template)> = Vec::new();
        if let Some(node) = self.root.get("vars") {
            match &node.value {
                yaml::Value::Map(entries) => {
                    let names: Vec<&str> =
                        entries.iter().map(|(key, _)| key.text.as_str()).collect();
                    for (index, (key, value)) in entries.iter().enumerate() {
                        let path = join("vars", &key.text);
                        if !is_identifier(&key.text) {
                            self.problem(&path, true, "a variable name is letters, digits and _");
                            continue;
                        }
                        let template = match value.as_text() {
                            Some(text) if matches!(value.value, yaml::Value::Str(_)) => {
                                self.template(&path, text)
                            }
                            _ => self.json_template(value, &path),
                        };
                        // Defined before its template is checked, so later entries may use it.
                        self.defined.insert(key.text.clone());
                        if let Some(template) = template {
                            self.vars_in_order(&template, index, &names, &path);
                            vars.push((key.text.clone(), template));
                        }
                    }
                }
                yaml::Value::Null => {}
                _ => self.problem(
                    "vars",
                    false,
                    format!("expected a map of name: value, found {}", node.describe()),
                ),
            }
        }
        for (name, value) in &options.vars {
            if !is_identifier(name) {
                self.problem_without_place(format!(
                    "--var {name}=...: a variable name is letters, digits and _"
                ));
                continue;
            }
            self.defined.insert(name.clone());
            let template = var_value(value);
            match vars.iter_mut().find(|(n, _)| n == name) {
                Some(entry) => entry.1 = template,
                None => vars.push((name.clone(), template)),
            }
        }
        vars
    }

    /// `vars:` are set in file order, once per user: an entry can only use the ones above it
    /// (two that use each other can never both be set).
    fn vars_in_order(&mut self, template: &Template, index: usize, names: &[&str], path: &str) {
        for variable in template.variables() {
            let root = variable.split('.').next().unwrap_or_default();
            let shadowed =
                BUILT_INS.contains(&root) || self.data.iter().any(|source| source.as_name == root);
            match names.iter().position(|name| *name == root) {
                Some(later) if !shadowed && later == index => {
                    self.problem(path, false, format!("`{root}` cannot be set from itself"));
                }
                Some(later) if !shadowed && later > index => {
                    let line = self.root.locate(&join("vars", root), true).line;
                    self.problem(
                        path,
                        false,
                        format!(
                            "uses `{root}`, which is set later in `vars:` (line {line}); vars are set in file order: move `{root}` above"
                        ),
                    );
                }
                _ => {}
            }
        }
    }

    /// Every variable a template reads must be set somewhere; `user.x` must be a column.
    pub(super) fn check_variables(&mut self) {
        let uses = std::mem::take(&mut self.uses);
        for (path, variable) in uses {
            let mut segments = variable.split('.');
            let root = segments.next().unwrap_or_default();
            if let Some(source) = self.data.iter().find(|source| source.as_name == root) {
                if let Some(column) = segments.next() {
                    if let Err(err) = source.column(column) {
                        let message = format!("`{variable}`: {err}");
                        self.problem(&path, false, message);
                    }
                }
                continue;
            }
            if !self.defined.contains(root) && !super::template::FUNCTIONS.contains(&root) {
                self.problem(
                    &path,
                    false,
                    format!(
                        "unknown variable `{root}`: not a data source, a `vars:` entry, a --var, an extracted value, a `repeat`'s `as` or a built-in (vu, iteration, last_status)"
                    ),
                );
            }
        }
    }
}

/// A `--var` value: a number or `true`/`false` keeps its type (so `{{ classes * students }}`
/// works); anything else is text, taken as it is (even with `{{`).
fn var_value(text: &str) -> Template {
    let typed = match serde_json::from_str::<serde_json::Value>(text.trim()) {
        Ok(value @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => Some(value),
        _ => None,
    };
    typed
        .and_then(|value| Template::json(&value).ok())
        .unwrap_or_else(|| Template::literal(text))
}
