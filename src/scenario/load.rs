//! Loading: YAML text -> tree with places -> raw model (serde, unknown fields refused) ->
//! validated, compiled `Scenario`. Every problem found is collected with its
//! `file:line:column` and field path; a file with any problem yields no scenario.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::error::{Problem, ScenarioError};
use super::messages::{rewrite, unknown_field};
use super::raw::RawScenario;
use super::template::{Condition, Template};
use super::vars::BUILT_INS;
use super::yaml::{self, Node, join};
use super::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, Flow, HttpVersion, LoadOptions, Scenario};
use crate::data::DataSource;
use crate::units;

/// Reads, validates and compiles a scenario file.
pub fn load(path: &Path, options: &LoadOptions) -> Result<Scenario, ScenarioError> {
    let problem = |line, column, message: String| ScenarioError {
        problems: vec![Problem {
            file: path.to_owned(),
            line,
            column,
            path: String::new(),
            message,
        }],
    };
    let bytes = crate::files::read_limited(path, MAX_SCENARIO_BYTES, "scenario file")
        .map_err(|err| problem(0, 0, format!("cannot read the scenario file: {err}")))?;
    let text = String::from_utf8(bytes).map_err(|err| {
        let bytes = err.as_bytes();
        let at = err.utf8_error().valid_up_to();
        let before = &bytes[..at];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&before[line_start..])
            .chars()
            .count()
            + 1;
        problem(
            line,
            column,
            format!(
                "not UTF-8 text (byte 0x{:02x}); save the scenario as UTF-8",
                bytes[at]
            ),
        )
    })?;
    load_str(&text, path, options)
}

/// Far past any scenario written by hand or by `chorus convert` from a long capture.
const MAX_SCENARIO_BYTES: u64 = 256 << 20;

/// Validates and compiles scenario text; `path` names it in messages and anchors relative
/// paths (data files, `multipart` files, `capture`). Nothing is read from `path` itself.
pub fn load_str(text: &str, path: &Path, options: &LoadOptions) -> Result<Scenario, ScenarioError> {
    let (root, yaml_problems) = match yaml::parse(text) {
        Ok(parsed) => parsed,
        Err(problem) => {
            return Err(ScenarioError {
                problems: vec![
                    Problem {
                        file: path.to_owned(),
                        line: problem.mark.line,
                        column: problem.mark.column,
                        path: problem.path,
                        message: problem.message,
                    }
                    .within(text),
                ],
            });
        }
    };
    let mut cx = Context::new(path, &root);
    for problem in yaml_problems {
        cx.problems.push(Problem {
            file: path.to_owned(),
            line: problem.mark.line,
            column: problem.mark.column,
            path: problem.path,
            message: problem.message,
        });
    }
    let scenario = cx.scenario(options);
    if cx.problems.is_empty() {
        Ok(scenario)
    } else {
        let mut problems: Vec<Problem> = (cx.problems.into_iter())
            .map(|problem| problem.within(text))
            .collect();
        problems.sort_by_key(|problem| (problem.line, problem.column));
        problems.dedup();
        Err(ScenarioError { problems })
    }
}

/// What loading knows so far, and every problem found.
pub(super) struct Context<'a> {
    pub(super) file: PathBuf,
    pub(super) root: &'a Node,
    pub(super) problems: Vec<Problem>,
    pub(super) host: Option<url::Url>,
    /// The top level could not be read: do not report a missing host.
    pub(super) host_unknown: bool,
    pub(super) allowed_hosts: BTreeSet<String>,
    pub(super) data: Vec<DataSource>,
    /// Names set by `vars:`, `--var` and every `extract` in the file.
    pub(super) defined: HashSet<String>,
    /// (path, variable) for every variable a template reads.
    pub(super) uses: Vec<(String, String)>,
    /// (path, name) for every environment variable a template reads (`env("NAME")`).
    pub(super) env_uses: Vec<(String, String)>,
    /// `LoadOptions::files`: where `multipart` files are read from instead.
    pub(super) files: Vec<(String, PathBuf)>,
    /// `scripts:`, while loading (`js:` steps are checked against them).
    pub(super) scripts: Option<crate::script::Loading>,
}

impl<'a> Context<'a> {
    fn new(file: &Path, root: &'a Node) -> Self {
        Self {
            file: file.to_owned(),
            root,
            problems: Vec::new(),
            host: None,
            host_unknown: false,
            allowed_hosts: BTreeSet::new(),
            data: Vec::new(),
            defined: BUILT_INS.iter().map(|name| (*name).to_owned()).collect(),
            uses: Vec::new(),
            env_uses: Vec::new(),
            files: Vec::new(),
            scripts: None,
        }
    }

    /// Records a problem at `path` (the key's place when `at_key`, else the value's).
    pub(super) fn problem(&mut self, path: &str, at_key: bool, message: impl Into<String>) {
        let mark = self.root.locate(path, at_key);
        self.problems.push(Problem {
            file: self.file.clone(),
            line: mark.line,
            column: mark.column,
            path: path.to_owned(),
            message: message.into(),
        });
    }

    /// A problem that has no place in the file (from the command line).
    pub(super) fn problem_without_place(&mut self, message: impl Into<String>) {
        self.problems.push(Problem {
            file: self.file.clone(),
            line: 0,
            column: 0,
            path: String::new(),
            message: message.into(),
        });
    }

    /// Reads `node` (at `path`) as `T`, recording every unknown key of a struct and then
    /// the first other problem serde finds.
    pub(super) fn read<T: DeserializeOwned>(&mut self, node: &Node, path: &str) -> Option<T> {
        let fields = yaml::fields_of::<T>();
        let (unknown, known) = node.split_unknown(fields);
        if !fields.is_empty() && !unknown.is_empty() {
            for key in unknown {
                let message = unknown_field(&key.text, fields);
                self.problem(&join(path, &key.text), true, message);
            }
            // Go on with the known keys, for their own problems; the file already failed.
            return self.read::<T>(&known, path);
        }
        match serde_path_to_error::deserialize::<_, T>(node) {
            Ok(value) => Some(value),
            Err(err) => {
                let inner = join(path, &err.path().to_string());
                let message = &err.inner().0;
                // An unknown field is placed at its key, anything else at its value.
                let at_key = message.starts_with("unknown field");
                self.problem(&inner, at_key, rewrite(message));
                None
            }
        }
    }

    /// Compiles a template, recording a syntax problem and the variables it reads.
    pub(super) fn template(&mut self, path: &str, source: &str) -> Option<Template> {
        match Template::parse(source) {
            Ok(template) => {
                self.note_uses(path, template.variables());
                self.note_env(path, template.env_names());
                Some(template)
            }
            Err(err) => {
                self.problem(
                    path,
                    false,
                    format!("bad template {}: {err}", clipped(source)),
                );
                None
            }
        }
    }

    /// A JSON value written as YAML whose strings are templates: each string is checked
    /// at its own place, then the whole compiles into one template.
    pub(super) fn json_template(&mut self, node: &Node, path: &str) -> Option<Template> {
        let before = self.problems.len();
        self.check_json_strings(node, path);
        if self.problems.len() > before {
            return None;
        }
        match Template::json(&node.to_json()) {
            Ok(template) => Some(template),
            Err(err) => {
                self.problem(path, false, format!("bad template: {err}"));
                None
            }
        }
    }

    fn check_json_strings(&mut self, node: &Node, path: &str) {
        match &node.value {
            yaml::Value::Str(text) if text.contains("{{") => {
                self.template(path, text);
            }
            yaml::Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.check_json_strings(item, &format!("{path}[{i}]"));
                }
            }
            yaml::Value::Map(entries) => {
                for (key, item) in entries {
                    self.check_json_strings(item, &join(path, &key.text));
                }
            }
            _ => {}
        }
    }

    pub(super) fn condition(&mut self, path: &str, source: &str) -> Option<Condition> {
        match Condition::parse(source) {
            Ok(condition) => {
                self.note_uses(path, condition.variables());
                self.note_env(path, condition.env_names());
                Some(condition)
            }
            Err(err) => {
                self.problem(
                    path,
                    false,
                    format!("bad condition {}: {err}", clipped(source)),
                );
                None
            }
        }
    }

    fn note_env(&mut self, path: &str, names: Vec<String>) {
        self.env_uses
            .extend(names.into_iter().map(|name| (path.to_owned(), name)));
    }

    pub(super) fn note_uses(&mut self, path: &str, variables: Vec<String>) {
        self.uses
            .extend(variables.into_iter().map(|name| (path.to_owned(), name)));
    }

    fn scenario(&mut self, options: &LoadOptions) -> Scenario {
        let root = self.root;
        let mut scenario = Scenario::empty(self.file.clone());
        if !matches!(root.value, yaml::Value::Map(_)) {
            self.problem(
                "",
                false,
                format!(
                    "a scenario is a map with `host`, `data`, `on_start`, `flows` ...; found {}",
                    root.describe()
                ),
            );
            return scenario;
        }
        let Some(raw) = self.read::<RawScenario>(root, "") else {
            // Still look at the steps: their problems are independent of the top level. The
            // host is unknown, so relative URLs are not held against it.
            self.host_unknown = true;
            self.collect_extract_names(root);
            self.sections(root, &mut scenario, options);
            return scenario;
        };
        self.host(raw.host.as_deref(), options.host_override.as_deref());
        scenario.capture = raw.capture.map(|capture| {
            let capture = PathBuf::from(capture);
            match self.file.parent() {
                Some(folder) if capture.is_relative() => folder.join(capture),
                _ => capture,
            }
        });
        if let Some(headers) = raw.headers {
            scenario.defaults.headers = self.headers(headers.0, "headers");
        }
        if let Some(timeouts) = raw.timeouts {
            scenario.defaults.connect_timeout = self
                .duration(timeouts.connect.as_deref(), "timeouts.connect")
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
            scenario.defaults.timeout = self
                .duration(timeouts.request.as_deref(), "timeouts.request")
                .unwrap_or(DEFAULT_TIMEOUT);
        }
        if let Some(text) = raw.max_body {
            match crate::size::parse(&text) {
                Ok(bytes) => scenario.defaults.max_body = bytes,
                Err(err) => self.problem("max_body", false, err),
            }
        }
        scenario.defaults.trace_headers = raw.trace_headers.unwrap_or(false);
        scenario.defaults.http = raw.http.map_or(HttpVersion::Auto, |http| http.0);
        let sources = self.data_sources();
        self.data(sources, options);
        scenario.vars = self.vars(options);
        self.scripts(options);
        if let Some(auth) = raw.auth {
            scenario.auth = self.credentials(auth);
        }
        self.collect_extract_names(root);
        self.sections(root, &mut scenario, options);
        if let Some(relogin) = raw.relogin {
            scenario.relogin = self.relogin(relogin, &scenario);
        }
        scenario.env = self.environment(options);
        for (i, expression) in raw.thresholds.unwrap_or_default().iter().enumerate() {
            match crate::stats::thresholds::Threshold::parse(expression) {
                Ok(threshold) => scenario.thresholds.push(threshold),
                Err(err) => self.problem(&format!("thresholds[{i}]"), false, err.to_string()),
            }
        }
        for (i, text) in raw.monitors.unwrap_or_default().iter().enumerate() {
            match crate::monitor::Spec::parse(text) {
                Ok(spec) => scenario.monitors.push(spec),
                Err(err) => self.problem(&format!("monitors[{i}]"), false, err),
            }
        }
        if let Some(text) = raw.otlp {
            match crate::otlp::parse_endpoint(&text) {
                Ok(url) => scenario.otlp = Some(url),
                Err(err) => self.problem("otlp", false, err),
            }
        }
        self.check_script_uses();
        self.check_variables();
        scenario.scripts = self.scripts.take().map(crate::script::Loading::finish);
        scenario.host = self.host.clone();
        scenario.allowed_hosts = self.allowed_hosts.iter().cloned().collect();
        scenario.data = std::mem::take(&mut self.data);
        let written = ["on_start", "flows", "on_stop"]
            .iter()
            .any(|key| !is_empty_list(root.get(key)));
        // Sections written with mistakes compile to no steps; that is already said.
        let compiled = !scenario.on_start.is_empty()
            || !scenario.on_stop.is_empty()
            || scenario.flows.iter().any(|flow| !flow.steps.is_empty());
        if !written || (!compiled && self.problems.is_empty()) {
            self.problem(
                "",
                false,
                "the scenario has no steps: add `flows:` (or `on_start:`) with at least one step",
            );
        }
        scenario
    }

    fn sections(&mut self, root: &Node, scenario: &mut Scenario, options: &LoadOptions) {
        self.files = options.files.clone();
        scenario.on_start = self.steps(root.get("on_start"), "on_start");
        scenario.flows = self.flows(root.get("flows"));
        scenario.on_stop = self.steps(root.get("on_stop"), "on_stop");
    }

    fn host(&mut self, host: Option<&str>, host_override: Option<&str>) {
        let (text, from_flag) = match (host_override, host) {
            (Some(text), _) => (text, true),
            (None, Some(text)) => (text, false),
            (None, None) => return,
        };
        let parsed = url::Url::parse(text)
            .map_err(|err| err.to_string())
            .and_then(|url| match url.scheme() {
                "http" | "https" if url.host_str().is_some() => Ok(url),
                _ => Err("expected an http:// or https:// URL with a host".to_owned()),
            });
        match parsed {
            Ok(url) => {
                if let Some(authority) = authority(&url) {
                    self.allowed_hosts.insert(authority);
                }
                self.host = Some(url);
            }
            Err(err) if from_flag => {
                self.problem_without_place(format!(
                    "-H/--host {text:?}: {err}, e.g. http://127.0.0.1:8001"
                ));
                // Said once: relative URLs are not also reported as lacking a host.
                self.host_unknown = true;
            }
            Err(err) => self.problem(
                "host",
                false,
                format!(
                    "{text:?} is not a usable base URL ({err}); write e.g. http://127.0.0.1:8001"
                ),
            ),
        }
    }

    pub(super) fn headers(
        &mut self,
        headers: Vec<(String, String)>,
        path: &str,
    ) -> Vec<(http::HeaderName, Template)> {
        let mut out = Vec::new();
        for (name, value) in headers {
            let here = join(path, &name);
            let Ok(header) = http::HeaderName::from_bytes(name.as_bytes()) else {
                self.problem(&here, true, format!("`{name}` is not a valid header name"));
                continue;
            };
            if let Some(template) = self.template(&here, &value) {
                if template.is_static() && http::HeaderValue::from_str(&value).is_err() {
                    self.problem(
                        &here,
                        false,
                        "not a valid header value (control characters?)",
                    );
                    continue;
                }
                out.push((header, template));
            }
        }
        out
    }

    pub(super) fn duration(&mut self, text: Option<&str>, path: &str) -> Option<Duration> {
        let text = text?;
        match units::parse_duration(text, units::TIMEOUT) {
            Ok(duration) => Some(duration),
            Err(err) => {
                self.problem(path, false, err.to_string());
                None
            }
        }
    }

    fn flows(&mut self, node: Option<&Node>) -> Vec<Flow> {
        let Some(node) = node else { return Vec::new() };
        let items = match &node.value {
            yaml::Value::Seq(items) => items,
            yaml::Value::Null => return Vec::new(),
            _ => {
                self.problem(
                    "flows",
                    false,
                    format!(
                        "expected a list of flows (`- name: ...`), found {}",
                        node.describe()
                    ),
                );
                return Vec::new();
            }
        };
        let mut flows = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let path = format!("flows[{i}]");
            let raw = self.read::<super::raw::RawFlow>(item, &path);
            let steps = self.steps(item.get("steps"), &join(&path, "steps"));
            let Some(raw) = raw else { continue };
            if raw.steps.is_none() {
                self.problem(&path, false, "a flow needs `steps:`");
            } else if is_empty_list(item.get("steps")) {
                self.problem(
                    &join(&path, "steps"),
                    false,
                    "a flow needs at least one step (`- get: /path` ...); add steps or remove the flow",
                );
            } else if !steps.is_empty() && !sends_or_pauses(&steps) {
                self.problem(
                    &join(&path, "steps"),
                    false,
                    "this flow sends no request and never pauses, so each user would repeat it at full speed; add a request or a `think` (`emit` writes rows only in chorus provision)",
                );
            }
            flows.push(Flow {
                name: raw.name.unwrap_or_else(|| format!("flow {}", i + 1)),
                weight: raw.weight.map_or(1, |w| w.0),
                steps,
            });
        }
        flows
    }

    /// Every name an `extract` sets, anywhere in the file: a flow may read what `on_start`
    /// or an earlier step extracted.
    fn collect_extract_names(&mut self, node: &Node) {
        match &node.value {
            yaml::Value::Map(entries) => {
                for (key, value) in entries {
                    if key.text == "extract" {
                        if let yaml::Value::Map(names) = &value.value {
                            self.defined
                                .extend(names.iter().map(|(name, _)| name.text.clone()));
                        }
                    } else if key.text == "as" {
                        // A `repeat`'s iteration number (a data source's `as` is defined
                        // with the source).
                        if let Some(name) = value.as_text() {
                            self.defined.insert(name.to_owned());
                        }
                    } else {
                        self.collect_extract_names(value);
                    }
                }
            }
            yaml::Value::Seq(items) => items
                .iter()
                .for_each(|item| self.collect_extract_names(item)),
            _ => {}
        }
    }
}

/// `host:port` (port always written) of an http(s) URL.
pub(super) fn authority(url: &url::Url) -> Option<String> {
    Some(format!(
        "{}:{}",
        url.host_str()?,
        url.port_or_known_default()?
    ))
}

/// `source` quoted for a message, its middle left out when it is long.
pub(super) fn clipped(source: &str) -> String {
    const KEEP: usize = 40;
    let chars: Vec<char> = source.chars().collect();
    if chars.len() <= 2 * KEEP + 20 {
        return format!("{source:?}");
    }
    let head: String = chars[..KEEP].iter().collect();
    let tail: String = chars[chars.len() - KEEP..].iter().collect();
    format!(
        "{head:?} … ({} characters) … {tail:?}",
        chars.len() - 2 * KEEP
    )
}

/// Whether running `steps` sends a request or waits (a flow that does neither spins).
fn sends_or_pauses(steps: &[super::Step]) -> bool {
    steps.iter().any(|step| match &step.kind {
        super::StepKind::Request(_) | super::StepKind::Think(_) | super::StepKind::Socket(_) => {
            true
        }
        super::StepKind::Repeat(repeat) => sends_or_pauses(&repeat.steps),
        super::StepKind::Emit(_) | super::StepKind::Script(_) => false,
    })
}

/// `[]` or nothing at all.
pub(super) fn is_empty_list(node: Option<&Node>) -> bool {
    node.is_none_or(|node| match &node.value {
        yaml::Value::Seq(items) => items.is_empty(),
        yaml::Value::Null => true,
        _ => false,
    })
}

pub(super) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_crosses_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Scenario>();
        send_sync::<super::super::Vars>();
    }
}
