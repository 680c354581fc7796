//! The mutation test of issue 13 §5: proof that `chorus run --check` notices when a converted
//! scenario loses what makes it faithful. From a scenario and the capture it came from it
//! makes one mutant per `extract` (the extract removed, each read of its variable that it
//! served replaced by the value it gives on the recorded response) and one with the logout
//! (`on_stop`) moved to the end of the flow, runs `--check` on each against the running
//! application, and counts a mutant as caught when `--check` exits 1 with a DIFF or FAIL.
//!
//! Mutants are built on a YAML tree that keeps how each scalar was written
//! ([`yaml`]); templates and conditions are rewritten by [`template`]. The recorded values
//! come from chorus's own code: the scenario as `chorus::scenario` loads it, each extract
//! applied with `Extract::apply` to the capture's entry its request names (`recorded: N`),
//! after the redirects the recording followed.

pub mod template;
pub mod yaml;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chorus::har::{self, Entry};
use chorus::scenario::{self, LoadOptions, Request, ResponseView, Scenario, Step, StepKind, Vars};
use serde_json::Value;

use yaml::Node;

/// Users `--check` runs (src/cli/check.rs): each run gets this many rows of the users CSV.
const ROWS_PER_RUN: usize = 2;

/// One mutant, ready to run (or the reason it could not be made).
#[derive(Debug, Clone)]
pub struct Mutant {
    /// `without extract `csrf` of flows[0].steps[2] (GET /x/)`, `logout in the flow`.
    pub name: String,
    /// The reads of the variable replaced by its recorded value (`None` for the logout
    /// mutant and the scenario itself).
    pub replaced: Option<usize>,
    /// The scenario text; empty when `problem` says why there is none.
    pub text: String,
    /// Why the mutant could not be made (its extract finds nothing on the recorded response,
    /// its request names no recorded entry, chorus refuses the result).
    pub problem: Option<String>,
}

/// How one mutant fared under `--check`.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub name: String,
    pub caught: bool,
    /// Where it went wrong: `--check`'s `first to go wrong:` line (without the prefix), or,
    /// when the scenario itself already diverged there, the first divergence it did not have.
    pub first_wrong: Option<String>,
    /// `--check`'s count line (`22 request(s) sent: ...`), or why the mutant did not run.
    pub summary: String,
}

/// The outcome of a mutation test.
#[derive(Debug, Clone)]
pub struct Report {
    pub verdicts: Vec<Verdict>,
    /// The DIFF and FAIL lines of the unmutated scenario's check; a mutant is caught only by
    /// a divergence that is not among them. Empty when the scenario passes, as it must for
    /// [`Report::assert_all_caught`].
    pub baseline: Vec<String>,
}

impl Report {
    pub fn mutants(&self) -> usize {
        self.verdicts.len()
    }

    pub fn caught(&self) -> usize {
        self.verdicts.iter().filter(|v| v.caught).count()
    }

    pub fn survivors(&self) -> Vec<&Verdict> {
        self.verdicts.iter().filter(|v| !v.caught).collect()
    }

    /// `N mutants, M caught` and a line per survivor (and what the scenario itself did wrong).
    pub fn summary(&self) -> String {
        let mut text = format!("{} mutants, {} caught\n", self.mutants(), self.caught());
        for survivor in self.survivors() {
            text.push_str(&format!(
                "  survived: {}: {}\n",
                survivor.name, survivor.summary
            ));
        }
        if !self.baseline.is_empty() {
            text.push_str(&format!(
                "  (the scenario itself does not pass --check: {} divergence(s), the first: {})\n",
                self.baseline.len(),
                self.baseline[0]
            ));
        }
        text
    }

    /// Fails the test unless the scenario passes `--check` and `--check` caught every mutant.
    pub fn assert_all_caught(&self) {
        assert!(
            self.baseline.is_empty() && self.caught() == self.mutants(),
            "--check let mutants through:\n{}",
            self.summary()
        );
    }
}

/// Where the checks run.
pub enum Application<'a> {
    /// One running instance at this base URL; up to `concurrency` checks at once.
    Running { base: &'a str, concurrency: usize },
    /// A fresh instance for each check, for an application whose pages show what earlier
    /// checks wrote in a way `--check` compares (a title the flow edits): `start` starts one
    /// and returns its base URL and what stops it when dropped.
    FreshEach {
        start: &'a (dyn Fn() -> Instance + Sync),
        concurrency: usize,
    },
}

/// A started application: its base URL, and whatever stops it when dropped.
pub struct Instance {
    pub base: String,
    pub guard: Box<dyn Send>,
}

/// Makes the mutants of `scenario` (converted from `capture`; `users` is a users CSV it
/// loads with), runs `--check` on each against `application` and returns how each fared;
/// prints `N mutants, M caught` and the survivors. The scenario itself, as the mutator writes
/// it back, is checked first, so that a divergence it has anyway catches no mutant. Checks that
/// run at once each have two rows of `users` that no other has (rows are reused only when
/// there are fewer pairs than runs). Mutants, each check's output and the report are written
/// to `mutants/` beside the scenario.
pub fn mutation_test(
    scenario: &Path,
    capture: &Path,
    users: &Path,
    application: &Application<'_>,
) -> Report {
    let dir = scenario.parent().unwrap().join("mutants");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (original, mutants) = build(scenario, capture, users)
        .unwrap_or_else(|err| panic!("no mutants of {}: {err}", scenario.display()));
    let mut runs = vec![Mutant {
        name: "the scenario itself".to_owned(),
        replaced: None,
        text: original,
        problem: None,
    }];
    runs.extend(mutants);
    let files: Vec<PathBuf> = runs
        .iter()
        .enumerate()
        .map(|(index, run)| {
            let file = dir.join(format!("{index:02}.yaml"));
            std::fs::write(&file, format!("# {}\n{}", run.name, run.text)).unwrap();
            file
        })
        .collect();
    let checks = Checks {
        files: &files,
        runs: &runs,
        pairs: &user_pairs(users),
        dir: &dir,
    };
    let mut outputs = checks.run(application, 0..1, 0);
    let (baseline_code, baseline_text) = outputs[0].clone().expect("the scenario itself runs");
    let baseline = divergences(&baseline_text);
    assert!(
        baseline_code == Some(0) || !baseline.is_empty(),
        "--check of the scenario itself ({}) ended {baseline_code:?} without a DIFF or FAIL:\n{baseline_text}",
        files[0].display()
    );
    // The mutants begin with the rows after the scenario's own.
    let mutant_outputs = checks.run(application, 1..runs.len(), 1);
    outputs.splice(1.., mutant_outputs.into_iter().skip(1));
    let verdicts: Vec<Verdict> = runs
        .iter()
        .zip(outputs)
        .skip(1)
        .map(|(run, output)| judge(run, output, &baseline))
        .collect();
    let report = Report {
        verdicts,
        baseline: baseline.into_iter().map(|d| d.line).collect(),
    };
    let text = report.summary();
    print!("mutation test of {}: {text}", scenario.display());
    let mut all = text;
    for verdict in &report.verdicts {
        all.push_str(&format!(
            "{} {}: {}\n",
            if verdict.caught { "caught" } else { "survived" },
            verdict.name,
            verdict.first_wrong.as_deref().unwrap_or(&verdict.summary)
        ));
    }
    std::fs::write(dir.join("report.txt"), all).unwrap();
    report
}

/// What `--check` said of a run: (exit code, stdout and stderr); `None` for a mutant that
/// could not be made.
type CheckOutput = Option<(Option<i32>, String)>;

/// One DIFF or FAIL of a check's output.
#[derive(Debug, Clone, PartialEq)]
struct Divergence {
    /// The exchange's line.
    line: String,
    /// `user 0 iteration 2 (entry 33)`: which exchange of which user, when.
    place: String,
    /// `user 0 (entry 33)`: the same without when.
    exchange: String,
    /// What differed (the lines under a DIFF) or the failure (after a FAIL's exchange).
    detail: String,
}

/// The DIFFs and FAILs of a check's output. An exchange that replays no entry (a redirect
/// followed) is named by its method and name.
fn divergences(text: &str) -> Vec<Divergence> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let Some(rest) = line
            .strip_prefix("DIFF  ")
            .or_else(|| line.strip_prefix("FAIL  "))
        else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let user = words.nth(1).unwrap_or_default();
        let when = match words.next().unwrap_or_default() {
            "iteration" => format!("iteration {}", words.next().unwrap_or_default()),
            other => other.to_owned(),
        };
        let (which, after) = match rest.find(" (entry ") {
            Some(at) => {
                let close = rest[at..].find(')').map_or(rest.len(), |end| at + end + 1);
                (rest[at + 1..close].to_owned(), &rest[close..])
            }
            None => {
                let named: Vec<&str> = words.take(2).collect();
                let which = named.join(" ").trim_end_matches(':').to_owned();
                let after = rest.find(&which).map_or("", |at| &rest[at + which.len()..]);
                (which, after)
            }
        };
        let mut detail = after.trim_start_matches(':').trim().to_owned();
        for more in &lines[index + 1..] {
            let Some(more) = more.strip_prefix("      ") else {
                break;
            };
            detail.push('\n');
            detail.push_str(more.trim());
        }
        found.push(Divergence {
            line: (*line).to_owned(),
            place: format!("user {user} {when} {which}"),
            exchange: format!("user {user} {which}"),
            detail,
        });
    }
    found
}

fn judge(run: &Mutant, output: CheckOutput, baseline: &[Divergence]) -> Verdict {
    let Some((code, text)) = output else {
        return Verdict {
            name: run.name.clone(),
            caught: false,
            first_wrong: None,
            summary: format!("not made: {}", run.problem.as_deref().unwrap_or("?")),
        };
    };
    // What the scenario itself does wrong catches nothing: the same exchange going wrong,
    // or the same exchange going wrong the same way at another time (a moved step).
    let known = |d: &Divergence| {
        baseline
            .iter()
            .any(|b| b.place == d.place || (b.exchange == d.exchange && b.detail == d.detail))
    };
    let new: Vec<Divergence> = divergences(&text)
        .into_iter()
        .filter(|d| !known(d))
        .collect();
    let first_wrong = if baseline.is_empty() {
        text.lines()
            .find_map(|line| line.strip_prefix("first to go wrong: "))
            .map(str::to_owned)
    } else {
        new.first().map(|d| d.line.clone())
    };
    let summary = text
        .lines()
        .find(|line| line.contains(" request(s) sent: "))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            format!(
                "chorus exited {code:?} without a count: {}",
                text.lines().take(5).collect::<Vec<_>>().join(" / ")
            )
        });
    Verdict {
        name: run.name.clone(),
        caught: code == Some(1) && !new.is_empty(),
        first_wrong,
        summary: match run.replaced {
            Some(replaced) => format!("{replaced} read(s) replaced; {summary}"),
            None => summary,
        },
    }
}

/// The users CSV cut into files of [`ROWS_PER_RUN`] rows (with the header).
fn user_pairs(users: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(users).unwrap();
    let mut lines = text.lines().filter(|line| !line.trim().is_empty());
    let header = lines.next().expect("the users CSV has a header").to_owned();
    let rows: Vec<&str> = lines.collect();
    let pairs: Vec<String> = rows
        .chunks_exact(ROWS_PER_RUN)
        .map(|chunk| format!("{header}\n{}\n", chunk.join("\n")))
        .collect();
    assert!(
        !pairs.is_empty(),
        "{} needs at least {ROWS_PER_RUN} rows for --check",
        users.display()
    );
    pairs
}

/// The checks of one mutation test.
struct Checks<'a> {
    files: &'a [PathBuf],
    runs: &'a [Mutant],
    pairs: &'a [String],
    dir: &'a Path,
}

impl Checks<'_> {
    /// Runs `--check` on the files of `range`, some at once, each worker with its own pairs
    /// of users, from pair `first_pair` on (and, for [`Application::FreshEach`], its own
    /// instance each time); writes each output beside the mutants (`NN.out`). Outputs are
    /// indexed as the files.
    fn run(
        &self,
        application: &Application<'_>,
        range: std::ops::Range<usize>,
        first_pair: usize,
    ) -> Vec<CheckOutput> {
        let concurrency = match application {
            Application::Running { concurrency, .. }
            | Application::FreshEach { concurrency, .. } => *concurrency,
        };
        let workers = concurrency
            .clamp(1, self.pairs.len())
            .min(range.len().max(1));
        let queue: Mutex<VecDeque<usize>> = Mutex::new(range.collect());
        let results: Mutex<Vec<CheckOutput>> = Mutex::new(vec![None; self.files.len()]);
        std::thread::scope(|scope| {
            for worker in 0..workers {
                let (queue, results) = (&queue, &results);
                scope.spawn(move || {
                    let own: Vec<&String> = self
                        .pairs
                        .iter()
                        .cycle()
                        .skip(first_pair % self.pairs.len() + worker)
                        .take(self.pairs.len())
                        .step_by(workers)
                        .collect();
                    let mut turn = 0;
                    loop {
                        let Some(index) = queue.lock().unwrap().pop_front() else {
                            return;
                        };
                        if self.runs[index].problem.is_some() {
                            continue;
                        }
                        let csv = self.dir.join(format!("{index:02}.users.csv"));
                        std::fs::write(&csv, own[turn % own.len()]).unwrap();
                        turn += 1;
                        let output = match application {
                            Application::Running { base, .. } => {
                                super::apps::check(&self.files[index], &csv, base)
                            }
                            Application::FreshEach { start, .. } => {
                                let instance = start();
                                super::apps::check(&self.files[index], &csv, &instance.base)
                            }
                        };
                        let text = format!(
                            "{}{}",
                            String::from_utf8_lossy(&output.stdout),
                            String::from_utf8_lossy(&output.stderr)
                        );
                        std::fs::write(self.dir.join(format!("{index:02}.out")), &text).unwrap();
                        results.lock().unwrap()[index] = Some((output.status.code(), text));
                    }
                });
            }
        });
        results.into_inner().unwrap()
    }
}

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
    let options = LoadOptions {
        data_overrides: vec![("users".to_owned(), users.to_owned())],
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
                let defined: Vec<usize> = sites
                    .iter()
                    .filter(|other| other.name == site.name)
                    .map(|other| steps[other.step].ordinal)
                    .collect();
                let served = |ordinal: usize| serving(&defined, ordinal) == Some(step.ordinal);
                let replaced = replace_reads(&mut mutated, &steps, &site.name, &value, served);
                checked(
                    name,
                    Some(replaced),
                    yaml::emit(&mutated),
                    scenario,
                    &options,
                )
            }
            Err(problem) => Mutant {
                name,
                replaced: None,
                text: String::new(),
                problem: Some(problem),
            },
        };
        mutants.push(mutant);
    }
    if let Some(mutated) = logout_in_flow(&document) {
        mutants.push(checked(
            "logout in the flow".to_owned(),
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
}

fn extract_sites(document: &Node, steps: &[StepAt]) -> Vec<Site> {
    let mut sites = Vec::new();
    for (index, step) in steps.iter().enumerate() {
        if let Some(Node::Map(rules)) = at(document, &step.path).and_then(|s| s.get("extract")) {
            for (name, _) in rules {
                sites.push(Site {
                    step: index,
                    name: name.clone(),
                });
            }
        }
    }
    sites
}

/// The extract (by the ordinal of its step, among `defined`) whose value a read at `ordinal`
/// sees: the nearest one before it, or for a read before every one of them (a header for
/// every request, a flow's first step reading what its last set) the last one.
pub fn serving(defined: &[usize], ordinal: usize) -> Option<usize> {
    defined
        .iter()
        .copied()
        .filter(|&d| d < ordinal)
        .max()
        .or_else(|| defined.iter().copied().max())
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

/// What each extract gives on the recorded responses, by (step label, variable): the
/// scenario run through once on the capture, as the recorded user (the account's values read
/// from the capture where the scenario sends them), each extract applied to the response its
/// request's `recorded:` entry got after the redirects the engine would follow.
fn recorded_values(
    scenario: &Scenario,
    entries: &[Entry],
) -> Result<HashMap<(String, String), Result<Value, String>>, String> {
    let mut vars = Vars::for_user(scenario, 0).map_err(|err| err.to_string())?;
    for (variable, recorded) in chorus::fidelity::recorded_account(scenario, entries) {
        let Some((source, column)) = variable.split_once('.') else {
            continue;
        };
        if let Some(Value::Object(mut row)) = vars.get(source) {
            row.insert(column.to_owned(), Value::from(recorded));
            vars.set(source, Value::Object(row));
        }
    }
    let mut requests = Vec::new();
    collect_requests(&scenario.on_start, "on_start", &mut requests);
    for (index, flow) in scenario.flows.iter().enumerate() {
        collect_requests(&flow.steps, &format!("flows[{index}].steps"), &mut requests);
    }
    collect_requests(&scenario.on_stop, "on_stop", &mut requests);
    let mut values = HashMap::new();
    for (label, request) in requests {
        let entry = request
            .recorded
            .ok_or_else(|| "the request names no `recorded:` entry".to_owned())
            .and_then(|number| {
                let index = (number as usize)
                    .checked_sub(1)
                    .filter(|&i| i < entries.len());
                index.ok_or_else(|| {
                    format!(
                        "`recorded: {number}`: the capture has {} entries",
                        entries.len()
                    )
                })
            })
            .map(|index| final_entry(entries, index, request.expect_status.as_deref()));
        for extract in &request.extract {
            let value = match &entry {
                Err(problem) => Err(problem.clone()),
                Ok(index) => {
                    let response = Response::of(&entries[*index]);
                    let view = response.view();
                    extract
                        .apply(&view, &mut vars)
                        .map(|()| vars.get(&extract.name).unwrap_or(Value::Null))
                        .map_err(|err| format!("on the recorded entry {}: {err}", index + 1))
                }
            };
            values.insert((label.clone(), extract.name.clone()), value);
        }
    }
    Ok(values)
}

fn collect_requests<'a>(steps: &'a [Step], label: &str, out: &mut Vec<(String, &'a Request)>) {
    for (index, step) in steps.iter().enumerate() {
        let here = format!("{label}[{index}]");
        match &step.kind {
            StepKind::Request(request) => out.push((here, request)),
            StepKind::Repeat(repeat) => {
                collect_requests(&repeat.steps, &format!("{here}.steps"), out)
            }
            StepKind::Think(_) | StepKind::Emit(_) => {}
        }
    }
}

/// The entry whose response the engine's extracts see: `index`'s, or, when that is a redirect
/// the engine follows (not one `expect_status` accepts), the entry the recording went to next.
fn final_entry(entries: &[Entry], index: usize, expected: Option<&[u16]>) -> usize {
    let mut at = index;
    for _ in 0..10 {
        let entry = &entries[at];
        let status = entry.response.status;
        let followed = matches!(status, 301 | 302 | 303 | 307 | 308)
            && !expected.is_some_and(|statuses| statuses.contains(&status));
        let location = header(entry, "location");
        let (true, Some(location)) = (followed, location) else {
            return at;
        };
        let Some(next) = url::Url::parse(&entry.request.url)
            .ok()
            .and_then(|url| url.join(location).ok())
        else {
            return at;
        };
        let method =
            if status == 303 || (matches!(status, 301 | 302) && entry.request.method == "POST") {
                "GET"
            } else {
                entry.request.method.as_str()
            };
        let wanted = chorus::fidelity::path_and_query(next.as_str());
        let Some(found) = entries[at + 1..].iter().position(|later| {
            later.request.method == method
                && chorus::fidelity::path_and_query(&later.request.url) == wanted
        }) else {
            return at;
        };
        at += 1 + found;
    }
    at
}

fn header<'a>(entry: &'a Entry, name: &str) -> Option<&'a str> {
    entry
        .response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// A recorded response as chorus's extracts read one.
struct Response {
    status: u16,
    headers: http::HeaderMap,
    body: Vec<u8>,
    url: Option<url::Url>,
}

impl Response {
    fn of(entry: &Entry) -> Response {
        use base64::Engine as _;
        let mut headers = http::HeaderMap::new();
        for h in &entry.response.headers {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(h.name.as_bytes()),
                http::HeaderValue::from_str(&h.value),
            ) {
                headers.append(name, value);
            }
        }
        let content = &entry.response.content;
        let body = match (&content.text, content.encoding.as_deref()) {
            (Some(text), Some("base64")) => base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .unwrap_or_default(),
            (Some(text), _) => text.clone().into_bytes(),
            (None, _) => Vec::new(),
        };
        Response {
            status: entry.response.status,
            headers,
            body,
            url: url::Url::parse(&entry.request.url).ok(),
        }
    }

    fn view(&self) -> ResponseView<'_> {
        let view = ResponseView::new(self.status, &self.headers, &self.body);
        match &self.url {
            Some(url) => view.at(url),
            None => view,
        }
    }
}

/// A hand-written scenario (`text`) with `recorded: N` added to each request that has none:
/// the next entry of the capture, after the one the previous request took, with the same
/// method and a path and query that the URL matches (each `{{ ... }}` standing for one
/// segment or value). A 401 answered by the same request again (an authentication challenge)
/// is passed over. Requests found nowhere are left without.
pub fn with_recorded(text: &str, capture: &Path) -> Result<String, String> {
    let mut document = yaml::parse(text)?;
    let (har, _) = har::read::read_file(capture).map_err(|err| err.to_string())?;
    let entries = &har.log.entries;
    let mut next = 0;
    for step in steps_of(&document) {
        let node = at_mut(&mut document, &step.path).unwrap();
        let Some((method, url)) = step.request.split_once(' ') else {
            continue;
        };
        if node.get("recorded").is_some() {
            continue;
        }
        let pattern = url_pattern(url);
        let found = (next..entries.len()).find(|&index| {
            let entry = &entries[index];
            let challenged = entry.response.status == 401
                && entries.get(index + 1).is_some_and(|again| {
                    again.request.method == entry.request.method
                        && again.request.url == entry.request.url
                });
            entry.request.method.eq_ignore_ascii_case(method)
                && !challenged
                && pattern.is_match(&chorus::fidelity::path_and_query(&entry.request.url))
        });
        if let (Some(index), Node::Map(entries)) = (found, node) {
            entries.push(("recorded".to_owned(), Node::plain((index + 1).to_string())));
            next = index + 1;
        }
    }
    Ok(yaml::emit(&document))
}

/// A regex for the path and query a URL template may send.
fn url_pattern(url: &str) -> regex::Regex {
    let path = match url.find("://") {
        Some(scheme) => url[scheme + 3..]
            .find('/')
            .map_or("/", |at| &url[scheme + 3 + at..]),
        None => url,
    };
    let mut pattern = String::from("^");
    let mut rest = path;
    while let Some(open) = rest.find("{{") {
        let close = rest[open..]
            .find("}}")
            .map_or(rest.len(), |at| open + at + 2);
        pattern.push_str(&regex::escape(&rest[..open]));
        pattern.push_str("[^/?&]+");
        rest = &rest[close..];
    }
    pattern.push_str(&regex::escape(rest));
    pattern.push('$');
    regex::Regex::new(&pattern).expect("an escaped pattern compiles")
}
