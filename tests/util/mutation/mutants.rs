//! Making the mutants: the scenario file read as a [`Node`] tree, its steps in running order,
//! each extract removed with the reads it served replaced by its recorded value, and the
//! logout moved into the flow.

use std::path::Path;

use chorus::har;
use chorus::scenario::{self, LoadOptions};
use serde_json::Value;

use super::Mutant;
use super::recorded::recorded_values;
use super::template;
use super::yaml::{self, Node};

/// The scenario written back as the mutator writes (capture and data files made absolute),
/// and its mutants.
pub fn build(
    scenario: &Path,
    capture: &Path,
    users: &Path,
) -> Result<(String, Vec<Mutant>), String> {
    let text = std::fs::read_to_string(scenario).map_err(|err| err.to_string())?;
    let folder = scenario.parent().unwrap_or(Path::new("."));
    let mut document = yaml::parse(&text)?;
    anchor_files(&mut document, folder, capture);
    // Only to load: `-H` gives the host at run time.
    // A scenario with no login loads no users (a Jupyter server's token session).
    let loads_users = text.lines().any(|line| line.trim_end() == "data:");
    let options = LoadOptions {
        data_overrides: if loads_users {
            vec![("users".to_owned(), users.to_owned())]
        } else {
            Vec::new()
        },
        host_override: Some("http://127.0.0.1".to_owned()),
        ..LoadOptions::default()
    };
    let loaded = scenario::load(scenario, &options).map_err(|err| err.to_string())?;
    let (capture_har, _) = har::read::read_file(capture).map_err(|err| err.to_string())?;
    let values = recorded_values(&loaded, &capture_har.log.entries)?;
    let steps = steps_of(&document);
    let sites = extract_sites(&document, &steps);
    let mut mutants = Vec::new();
    for site in &sites {
        let step = &steps[site.step];
        let name = format!(
            "without extract `{}` of {} ({})",
            site.name, step.label, step.request
        );
        let value = values
            .get(&(step.label.clone(), site.name.clone()))
            .cloned()
            .unwrap_or_else(|| Err("chorus does not see this extract".to_owned()));
        let mutant = match value {
            Ok(value) => {
                let mut mutated = document.clone();
                let rules = at_mut(&mut mutated, &step.path).unwrap();
                let extract = rules.get_mut("extract").unwrap();
                extract.remove(&site.name);
                if matches!(extract, Node::Map(entries) if entries.is_empty()) {
                    rules.remove("extract");
                }
                let defined: Vec<(usize, bool)> = sites
                    .iter()
                    .filter(|other| other.name == site.name)
                    .map(|other| {
                        let at_step = &steps[other.step];
                        let conditional = at(&document, &at_step.path)
                            .is_some_and(|node| node.get("when").is_some());
                        (at_step.ordinal, conditional)
                    })
                    .collect();
                let served = |ordinal: usize| serving(&defined, ordinal).contains(&step.ordinal);
                // The same mutant sending another value of the same shape: when that one is
                // caught and this one is not, the replay's pages served the recorded value.
                let control = site.from_page.then(|| {
                    let mut control = mutated.clone();
                    replace_reads(
                        &mut control,
                        &steps,
                        &site.name,
                        &other_value(&value),
                        served,
                    );
                    yaml::emit(&control)
                });
                let replaced = replace_reads(&mut mutated, &steps, &site.name, &value, served);
                let mut mutant = checked(
                    name,
                    Some(replaced),
                    yaml::emit(&mutated),
                    scenario,
                    &options,
                );
                mutant.control = control;
                mutant
            }
            Err(problem) => Mutant {
                name,
                replaced: None,
                text: String::new(),
                problem: Some(problem),
                control: None,
            },
        };
        mutants.push(mutant);
    }
    if let Some(mutated) = logout_in_flow(&document) {
        mutants.push(checked(
            super::LOGOUT_MUTANT.to_owned(),
            None,
            yaml::emit(&mutated),
            scenario,
            &options,
        ));
    }
    Ok((yaml::emit(&document), mutants))
}

/// A mutant, with a problem if chorus does not load it (written beside the scenario for the
/// time of the load, so that it resolves files as the scenario does).
fn checked(
    name: String,
    replaced: Option<usize>,
    text: String,
    scenario: &Path,
    options: &LoadOptions,
) -> Mutant {
    let probe = scenario.with_extension(format!("mutant-{}.yaml", std::process::id()));
    std::fs::write(&probe, &text).unwrap();
    let problem = scenario::load(&probe, options)
        .err()
        .map(|err| format!("chorus refuses the mutant: {err}"));
    let _ = std::fs::remove_file(&probe);
    Mutant {
        name,
        replaced,
        text,
        problem,
        control: None,
    }
}

/// A value of the same shape as `value` that is not it: each digit and letter moved on by
/// one (`a9f` → `b0g`), a number plus one.
fn other_value(value: &Value) -> Value {
    match value {
        Value::String(text) => Value::String(
            text.chars()
                .map(|c| match c {
                    '9' => '0',
                    'z' => 'a',
                    'Z' => 'A',
                    c if c.is_ascii_alphanumeric() => (c as u8 + 1) as char,
                    c => c,
                })
                .collect(),
        ),
        Value::Number(number) => number
            .as_i64()
            .map(|n| Value::from(n.wrapping_add(1)))
            .unwrap_or_else(|| value.clone()),
        other => other.clone(),
    }
}

/// `capture:` set to the capture's absolute path, and each data source's `file` made absolute,
/// so that the mutants can be written anywhere.
fn anchor_files(document: &mut Node, folder: &Path, capture: &Path) {
    let absolute = |path: &Path| {
        let path = if path.is_relative() {
            folder.join(path)
        } else {
            path.to_owned()
        };
        std::path::absolute(&path)
            .unwrap_or(path)
            .display()
            .to_string()
    };
    if let Node::Map(entries) = document {
        let capture = Node::text(absolute(capture));
        match entries.iter_mut().find(|(key, _)| key == "capture") {
            Some((_, value)) => *value = capture,
            None => entries.insert(0, ("capture".to_owned(), capture)),
        }
    }
    if let Some(Node::Map(sources)) = document.get_mut("data") {
        for (_, source) in sources {
            if let Some(file) = source.get_mut("file") {
                if let Some(path) = file.scalar() {
                    *file = Node::text(absolute(Path::new(path)));
                }
            }
        }
    }
}

/// One step of the scenario file, in the order a user runs them (`on_start`, each flow,
/// `on_stop`; a repeat before the steps inside it).
#[derive(Debug, Clone)]
pub struct StepAt {
    /// Keys and indices from the document's root.
    pub path: Vec<Seg>,
    /// `on_start[0]`, `flows[0].steps[2]`, `flows[0].steps[1].steps[0]`.
    pub label: String,
    /// From 1, in running order; 0 is what comes before any step (`headers`, `vars`).
    pub ordinal: usize,
    /// `GET /x/` for a request step, else empty.
    pub request: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

pub fn steps_of(document: &Node) -> Vec<StepAt> {
    let mut out = Vec::new();
    let key = |k: &str| Seg::Key(k.to_owned());
    walk_steps(document, vec![key("on_start")], "on_start", &mut out);
    for (index, _) in document
        .get("flows")
        .map(Node::items)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let path = vec![key("flows"), Seg::Index(index), key("steps")];
        walk_steps(document, path, &format!("flows[{index}].steps"), &mut out);
    }
    walk_steps(document, vec![key("on_stop")], "on_stop", &mut out);
    out
}

fn walk_steps(document: &Node, path: Vec<Seg>, label: &str, out: &mut Vec<StepAt>) {
    let Some(list) = at(document, &path) else {
        return;
    };
    for (index, step) in list.items().iter().enumerate() {
        let mut here = path.clone();
        here.push(Seg::Index(index));
        let label = format!("{label}[{index}]");
        let request = request_line(step);
        out.push(StepAt {
            path: here.clone(),
            label: label.clone(),
            ordinal: out.len() + 1,
            request,
        });
        if step.get("steps").is_some() {
            here.push(Seg::Key("steps".to_owned()));
            walk_steps(document, here, &format!("{label}.steps"), out);
        }
    }
}

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete", "head", "options"];

fn request_line(step: &Node) -> String {
    for method in METHODS {
        if let Some(url) = step.get(method).and_then(Node::scalar) {
            return format!("{} {url}", method.to_uppercase());
        }
    }
    match step.get("request") {
        Some(line) => format!(
            "{} {}",
            line.get("method").and_then(Node::scalar).unwrap_or("?"),
            line.get("url").and_then(Node::scalar).unwrap_or("?")
        ),
        None => String::new(),
    }
}

pub fn at<'a>(node: &'a Node, path: &[Seg]) -> Option<&'a Node> {
    path.iter().try_fold(node, |node, seg| match seg {
        Seg::Key(key) => node.get(key),
        Seg::Index(index) => node.items().get(*index),
    })
}

pub fn at_mut<'a>(node: &'a mut Node, path: &[Seg]) -> Option<&'a mut Node> {
    path.iter().try_fold(node, |node, seg| match seg {
        Seg::Key(key) => node.get_mut(key),
        Seg::Index(index) => match node {
            Node::Seq(items) => items.get_mut(*index),
            _ => None,
        },
    })
}

/// A variable an extract sets: the step (an index into the steps) and its name.
#[derive(Debug, Clone)]
struct Site {
    step: usize,
    name: String,
    /// Taken from a page's form field or `<meta>`: a value `--check` compares with what the
    /// replay's own page served.
    from_page: bool,
}

fn extract_sites(document: &Node, steps: &[StepAt]) -> Vec<Site> {
    let mut sites = Vec::new();
    for (index, step) in steps.iter().enumerate() {
        if let Some(Node::Map(rules)) = at(document, &step.path).and_then(|s| s.get("extract")) {
            for (name, rule) in rules {
                let from_page = rule.get("form_field").is_some() || rule.get("meta").is_some();
                sites.push(Site {
                    step: index,
                    name: name.clone(),
                    from_page,
                });
            }
        }
    }
    sites
}

/// The extracts (by the ordinals of their steps, among `defined`: ordinal and whether the
/// step has a `when:`) whose value a read at `ordinal` may see: the nearest one before it, or
/// for a read before every one of them (a header for every request, a flow's first step
/// reading what its last set) the last one; and, while that one runs only under a condition,
/// the one before it too.
pub fn serving(defined: &[(usize, bool)], ordinal: usize) -> Vec<usize> {
    let mut sorted = defined.to_vec();
    sorted.sort_unstable();
    let before = sorted.iter().filter(|(d, _)| *d < ordinal).count();
    // Nearest first: those before the read, then (wrapping round) the rest from the last.
    let order = sorted[..before]
        .iter()
        .rev()
        .chain(sorted[before..].iter().rev());
    let mut out = Vec::new();
    for &(at, conditional) in order {
        out.push(at);
        if !conditional {
            break;
        }
    }
    out
}

/// Replaces the reads of `name` by `value` wherever `served(ordinal)` says the removed
/// extract served them: in what precedes the steps (ordinal 0) and in each step (its own
/// keys, not the steps of a repeat, which are steps of their own). Returns the reads replaced.
fn replace_reads(
    document: &mut Node,
    steps: &[StepAt],
    name: &str,
    value: &Value,
    served: impl Fn(usize) -> bool,
) -> usize {
    let mut replaced = 0;
    if served(0) {
        if let Node::Map(entries) = document {
            for (key, node) in entries {
                if !matches!(key.as_str(), "on_start" | "flows" | "on_stop" | "capture") {
                    replaced += replace_in(node, name, value, false);
                }
            }
        }
    }
    for step in steps {
        if !served(step.ordinal) {
            continue;
        }
        let Some(Node::Map(entries)) = at_mut(document, &step.path) else {
            continue;
        };
        for (key, node) in entries {
            replaced += match key.as_str() {
                "steps" => 0,
                "json" => replace_in(node, name, value, true),
                "when" => replace_in_condition(node, name, value),
                _ => replace_in(node, name, value, false),
            };
        }
    }
    replaced
}

/// Rewrites every template under `node` (map values, not keys). In a JSON body a template
/// that is exactly `{{ name }}` becomes the value with its JSON type; elsewhere its text
/// (a number or `true` written plain, so that `think:` and `repeat:` still read a number).
fn replace_in(node: &mut Node, name: &str, value: &Value, json: bool) -> usize {
    match node {
        Node::Scalar { text, .. } => {
            let reads = template::uses_in_template(text, name);
            match template::substitute(text, name, value) {
                Some(template::Rewritten::Whole(value)) if json => *node = Node::of_json(&value),
                Some(template::Rewritten::Whole(value)) => {
                    *node = match &value {
                        Value::String(text) => Node::text(text.clone()),
                        Value::Number(_) | Value::Bool(_) => Node::plain(value.to_string()),
                        other => Node::text(format!("{{{{ {} }}}}", template::literal(other))),
                    }
                }
                Some(template::Rewritten::Text(text)) => *node = Node::text(text),
                None => {}
            }
            reads
        }
        Node::Seq(items) => items
            .iter_mut()
            .map(|item| replace_in(item, name, value, json))
            .sum(),
        Node::Map(entries) => entries
            .iter_mut()
            .map(|(_, item)| replace_in(item, name, value, json))
            .sum(),
    }
}

fn replace_in_condition(node: &mut Node, name: &str, value: &Value) -> usize {
    let Some(condition) = node.scalar() else {
        return 0;
    };
    let reads = template::uses_in_expression(condition, name);
    if let Some(rewritten) = template::substitute_expression(condition, name, value) {
        *node = Node::text(rewritten);
    }
    reads
}

/// The scenario with the steps of `on_stop` moved to the end of the first flow; `None` when
/// there is no `on_stop` or no flow.
pub fn logout_in_flow(document: &Node) -> Option<Node> {
    let mut mutated = document.clone();
    let stop = mutated.remove("on_stop")?;
    if stop.items().is_empty() {
        return None;
    }
    let flow = mutated.get_mut("flows")?;
    let Node::Seq(flows) = flow else {
        return None;
    };
    let Some(Node::Seq(steps)) = flows.first_mut()?.get_mut("steps") else {
        return None;
    };
    steps.extend(stop.items().iter().cloned());
    Some(mutated)
}
