//! Loading the parts of a scenario that call JavaScript (`scripts:`, `script_time_limit:`,
//! `js:` steps and checks, `js.name(..)` in templates): problems at their `file:line:column`,
//! in the scenario or in the script, before any traffic. The scripts themselves are
//! `crate::script`'s.

use std::path::PathBuf;
use std::sync::Arc;

use super::load::Context;
use super::{LoadOptions, yaml};
use crate::script::{self, Call, Loading};

impl Context<'_> {
    /// Reads and checks the scripts the file (`scripts:`) and `--script` name.
    pub(super) fn scripts(&mut self, options: &LoadOptions) {
        let mut files: Vec<(String, PathBuf)> = Vec::new();
        if let Some(node) = self.root.get("scripts") {
            match &node.value {
                yaml::Value::Seq(items) => {
                    for (i, item) in items.iter().enumerate() {
                        match &item.value {
                            yaml::Value::Str(name) if !name.trim().is_empty() => {
                                let given = options.script_files.iter().find(|(n, _)| n == name);
                                let written = PathBuf::from(name);
                                let path = match (given, self.file.parent()) {
                                    (Some((_, path)), _) => path.clone(),
                                    (None, Some(folder)) if written.is_relative() => {
                                        folder.join(&written)
                                    }
                                    (None, _) => written,
                                };
                                files.push((name.clone(), path));
                            }
                            _ => self.problem(
                                &format!("scripts[{i}]"),
                                false,
                                "expected the path of a JavaScript file",
                            ),
                        }
                    }
                }
                _ => self.problem(
                    "scripts",
                    false,
                    "expected a list of JavaScript files: scripts: [helpers.js]",
                ),
            }
        }
        for path in &options.scripts {
            files.push((path.display().to_string(), path.clone()));
        }
        for (name, path) in &options.script_files {
            if !files.iter().any(|(known, _)| known == name) {
                files.push((name.clone(), path.clone()));
            }
        }
        if files.is_empty() {
            return;
        }
        let time_limit = match self.root.get("script_time_limit") {
            Some(node) => match node
                .as_text()
                .map(|text| crate::units::parse_duration(text, crate::units::TIMEOUT))
            {
                Some(Ok(limit)) => limit,
                Some(Err(err)) => {
                    self.problem("script_time_limit", false, err.named("a script time limit"));
                    return;
                }
                None => {
                    self.problem(
                        "script_time_limit",
                        false,
                        "expected a duration such as 100ms",
                    );
                    return;
                }
            },
            None => script::DEFAULT_TIME_LIMIT,
        };
        let mut data_files: Vec<(String, Arc<str>)> = Vec::new();
        for source in &self.data {
            let Ok(bytes) = crate::files::read_limited(&source.file, 1 << 30, "data file") else {
                continue;
            };
            let text: Arc<str> = String::from_utf8_lossy(&bytes).into();
            data_files.push((source.name.clone(), text.clone()));
            if let Some(name) = source.file.file_name() {
                data_files.push((name.to_string_lossy().into_owned(), text));
            }
        }
        // Said once: with scripts that failed to load, `js` is not also an unknown variable.
        self.defined.insert(script::JS_VARIABLE.to_owned());
        match Loading::start(files, data_files, time_limit) {
            Ok(loading) => self.scripts = Some(loading),
            Err(problem) => match problem.file {
                Some(file) => self.problems.push(super::Problem {
                    file,
                    line: problem.line,
                    column: problem.column,
                    path: String::new(),
                    message: problem.message,
                }),
                None => self.problem("scripts", false, problem.message),
            },
        }
    }

    /// A `js:` step or check: the expression compiles and calls what the scripts export.
    pub(super) fn script_call(&mut self, path: &str, source: &str, step: bool) -> Option<Call> {
        let Some(loading) = &mut self.scripts else {
            if self.defined.contains(script::JS_VARIABLE) {
                return None; // The scripts did not load: that is said.
            }
            let message = "`js` calls a function of the scenario's scripts, and it loads none: add `scripts: [helpers.js]` (or --script FILE)";
            self.problem(path, false, message);
            return None;
        };
        match loading.check_call(source, step) {
            Ok(call) => Some(call),
            Err(message) => {
                self.problem(path, false, message);
                None
            }
        }
    }

    /// Each `js.name` a template reads is a function the scripts export; such uses are not
    /// variables. Nor is a variable a script may set (`js:` steps and `after_response` return
    /// them): one whose name the scripts mention.
    pub(super) fn check_script_uses(&mut self) {
        let uses = std::mem::take(&mut self.uses);
        let mut kept = Vec::with_capacity(uses.len());
        for (path, variable) in uses {
            let Some(loading) = &self.scripts else {
                kept.push((path, variable));
                continue;
            };
            let Some(member) = variable.strip_prefix("js.") else {
                let root = variable.split('.').next().unwrap_or_default();
                if !loading.mentions(root) {
                    kept.push((path, variable));
                }
                continue;
            };
            let name = member.split('.').next().unwrap_or_default();
            if !loading.exports_fn(name) {
                let message = script::unknown_function(name, loading.exports());
                self.problem(&path, false, format!("js.{name}: {message}"));
            }
        }
        self.uses = kept;
    }
}
