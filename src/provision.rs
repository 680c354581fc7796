//! `chorus provision`: run a setup scenario once with the same engine and write the rows it
//! emits (the accounts it created or found) to CSV.
//!
//! The run itself is the engine's (one user, `on_start` only, `SetupMode`: transport errors
//! retried, a failure ends the step list it is in). What lives here is plain: tallying the
//! rows by their `outcome:`, and writing them as one CSV whose columns are those of the rows,
//! in the order first seen.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::engine::{EmitRow, Engine, EngineControl, EngineError, EngineOptions, Plan, SetupMode};
use crate::scenario::{Count, Scenario, Step, StepKind, Vars};
use crate::stats::RunResult;

/// Transport errors are retried this many times (after 0.2, 0.4, 0.8, 1.6, 3.2 s).
const TRANSPORT_RETRIES: u32 = 5;
/// How often the progress callback runs.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// The conventional outcome of a row the run created.
pub const CREATED: &str = "created";
/// The conventional outcome of a row that was there before the run.
pub const ALREADY_THERE: &str = "already there";

/// Rows counted by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub rows: u64,
    /// By outcome (rows without `outcome:` are only in `rows`).
    pub outcomes: BTreeMap<String, u64>,
}

impl Tally {
    pub fn add(&mut self, row: &EmitRow) {
        self.rows += 1;
        if let Some(outcome) = &row.outcome {
            *self.outcomes.entry(outcome.clone()).or_default() += 1;
        }
    }

    pub fn count(&self, outcome: &str) -> u64 {
        self.outcomes.get(outcome).copied().unwrap_or(0)
    }

    /// `120 rows: 100 created, 20 already there, 0 failed` (created and already there are
    /// always named; other outcomes after them).
    pub fn summary(&self, failed: u64) -> String {
        let mut parts = vec![
            format!("{} {CREATED}", self.count(CREATED)),
            format!("{} {ALREADY_THERE}", self.count(ALREADY_THERE)),
        ];
        for (outcome, count) in &self.outcomes {
            if outcome != CREATED && outcome != ALREADY_THERE {
                parts.push(format!("{count} {outcome}"));
            }
        }
        parts.push(format!("{failed} failed"));
        format!("{} row(s): {}", self.rows, parts.join(", "))
    }
}

/// What a provisioning run produced.
#[derive(Debug)]
pub struct Provisioned {
    /// In the order they were emitted.
    pub rows: Vec<EmitRow>,
    pub tally: Tally,
    pub result: RunResult,
}

impl Provisioned {
    /// Failed requests and errors outside requests (a template that did not render).
    pub fn failed(&self) -> u64 {
        self.result.failures_and_errors()
    }
}

/// A provisioning run under way.
pub struct Provisioning {
    handle: crate::engine::EngineHandle,
    rows: mpsc::UnboundedReceiver<EmitRow>,
}

impl Provisioning {
    /// Starts the setup run: one user runs `on_start` once (its `parallel:` repeats make the
    /// concurrency), transport errors are retried, a failed request ends its step list.
    /// Call inside a tokio runtime.
    pub fn start(scenario: Arc<Scenario>, accept_invalid_certs: bool) -> Result<Self, EngineError> {
        let (sender, rows) = mpsc::unbounded_channel();
        let options = EngineOptions {
            workers: 1,
            accept_invalid_certs,
            setup: SetupMode {
                emit: Some(sender),
                transport_retries: TRANSPORT_RETRIES,
                failure_ends_sequence: true,
                stop_between_steps: true,
                ..SetupMode::default()
            },
            ..EngineOptions::default()
        };
        let plan = Plan::users(1, None, None)?;
        let handle = Engine::start(scenario, plan, options)?;
        Ok(Provisioning { handle, rows })
    }

    /// To stop it (Ctrl-C).
    pub fn control(&self) -> EngineControl {
        self.handle.control()
    }

    /// Collects the rows until the run ends, calling `progress` with the rows so far and the
    /// requests so far (total, failed) every 200 ms.
    pub async fn finish(mut self, mut progress: impl FnMut(&Tally, u64, u64)) -> Provisioned {
        let control = self.handle.control();
        let mut wait = std::pin::pin!(self.handle.wait());
        let mut rows = Vec::new();
        let mut tally = Tally::default();
        let mut ticks = tokio::time::interval(PROGRESS_EVERY);
        let result = loop {
            tokio::select! {
                result = &mut wait => break result,
                Some(row) = self.rows.recv() => {
                    tally.add(&row);
                    rows.push(row);
                }
                _ = ticks.tick() => {
                    let live = control.latest();
                    progress(&tally, live.total.requests, live.total.failures);
                }
            }
        };
        // Rows sent just before the end are still in the channel.
        while let Ok(row) = self.rows.try_recv() {
            tally.add(&row);
            rows.push(row);
        }
        progress(&tally, result.total.requests, result.total.failures);
        Provisioned {
            rows,
            tally,
            result,
        }
    }
}

/// How many rows the file will emit, when that follows from its `repeat` counts and the
/// variables it starts with (`{{ classes }}` x `{{ students }}`); `None` when a count depends
/// on a response or on chance. An `emit` under a `when` is counted as if it ran.
pub fn expected_rows(scenario: &Scenario) -> Option<u64> {
    fn rows(steps: &[Step], vars: &Vars) -> Option<u64> {
        let mut total = 0u64;
        for step in steps {
            total = total.checked_add(match &step.kind {
                StepKind::Emit(_) => 1,
                StepKind::Repeat(repeat) => {
                    let count = match &repeat.count {
                        Count::Fixed(count) => *count,
                        Count::Range(low, high) if low == high => *low,
                        Count::Range(..) => return None,
                        Count::Template(template) => {
                            template.render(vars).ok()?.trim().parse().ok()?
                        }
                    };
                    count.checked_mul(rows(&repeat.steps, vars)?)?
                }
                _ => 0,
            })?;
        }
        Some(total)
    }
    let vars = Vars::for_user(scenario, 0).ok()?;
    let total = rows(&scenario.on_start, &vars)?.checked_add(rows(&scenario.on_stop, &vars)?)?;
    (total > 0).then_some(total)
}

/// Why a file cannot be used for provisioning. Nothing was sent.
pub fn check_setup_file(scenario: &Scenario) -> Result<(), String> {
    let file = scenario.source.display();
    if !scenario.flows.is_empty() {
        return Err(format!(
            "{file}: a provisioning file runs once, but it has `flows:`, which repeat until the run ends; put its steps under `on_start:`"
        ));
    }
    fn emits(steps: &[crate::scenario::Step]) -> bool {
        steps.iter().any(|step| match &step.kind {
            StepKind::Emit(_) => true,
            StepKind::Repeat(repeat) => emits(&repeat.steps),
            _ => false,
        })
    }
    if !emits(&scenario.on_start) && !emits(&scenario.on_stop) {
        return Err(format!(
            "{file}: nothing in it has an `emit:` step, so the CSV would be empty; add `- emit: {{username: ..., password: ...}}` after the request that creates an account"
        ));
    }
    Ok(())
}

/// The CSV text of the rows: a header of every column in the order first seen, then a line
/// per row (a column a row lacks is empty).
pub fn csv_text(rows: &[EmitRow]) -> Result<Vec<u8>, csv::Error> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut columns: Vec<&str> = Vec::new();
    for row in rows {
        for (column, _) in &row.columns {
            if !columns.contains(&column.as_str()) {
                columns.push(column);
            }
        }
    }
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(&columns)?;
    for row in rows {
        let values = columns.iter().map(|column| {
            row.columns
                .iter()
                .find(|(name, _)| name == column)
                .map_or("", |(_, value)| value.as_str())
        });
        writer.write_record(values)?;
    }
    writer
        .into_inner()
        .map_err(|err| csv::Error::from(err.into_error()))
}

/// Writes `bytes` to `path` through a temporary file beside it, so the old file stays whole
/// until the new one is.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut temporary = PathBuf::from(path);
    let name = path
        .file_name()
        .map(|name| format!(".{}.partial", name.to_string_lossy()))
        .unwrap_or_else(|| ".chorus-provision.partial".to_owned());
    temporary.set_file_name(name);
    let mut file = fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(columns: &[(&str, &str)], outcome: Option<&str>) -> EmitRow {
        EmitRow {
            columns: columns
                .iter()
                .map(|(c, v)| ((*c).to_owned(), (*v).to_owned()))
                .collect(),
            outcome: outcome.map(str::to_owned),
        }
    }

    fn load(text: &str, vars: &[(&str, &str)]) -> Scenario {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("setup.yaml");
        fs::write(&path, text).unwrap();
        let options = crate::scenario::LoadOptions {
            vars: vars
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            ..Default::default()
        };
        crate::scenario::load(&path, &options).unwrap()
    }

    #[test]
    fn expected_rows_follow_the_repeat_counts() {
        let nested = "host: http://127.0.0.1:1\nvars: {classes: 3, students: 4}\non_start:\n  - repeat: \"{{ classes }}\"\n    steps:\n      - repeat: \"{{ students }}\"\n        parallel: 2\n        steps:\n          - emit: {a: b}\n  - emit: {a: c}\n";
        assert_eq!(expected_rows(&load(nested, &[])), Some(13));
        assert_eq!(expected_rows(&load(nested, &[("classes", "10")])), Some(41));
        let random =
            "host: http://127.0.0.1:1\non_start:\n  - repeat: 2..5\n    steps: [{emit: {a: b}}]\n";
        assert_eq!(expected_rows(&load(random, &[])), None);
        let from_a_response = "host: http://127.0.0.1:1\non_start:\n  - get: /n\n    extract: {n: $.n}\n  - repeat: \"{{ n }}\"\n    steps: [{emit: {a: b}}]\n";
        assert_eq!(expected_rows(&load(from_a_response, &[])), None);
    }

    #[test]
    fn rows_are_tallied_by_outcome() {
        let mut tally = Tally::default();
        tally.add(&row(&[("u", "a")], Some(CREATED)));
        tally.add(&row(&[("u", "b")], Some(CREATED)));
        tally.add(&row(&[("u", "c")], Some(ALREADY_THERE)));
        tally.add(&row(&[("u", "d")], Some("renamed")));
        tally.add(&row(&[("u", "e")], None));
        assert_eq!(
            tally.summary(3),
            "5 row(s): 2 created, 1 already there, 1 renamed, 3 failed"
        );
    }

    #[test]
    fn the_csv_has_every_column_in_the_order_first_seen() {
        let rows = [
            row(&[("username", "a"), ("password", "p,1")], None),
            row(&[("username", "b"), ("class", "c1")], None),
        ];
        let text = String::from_utf8(csv_text(&rows).unwrap()).unwrap();
        assert_eq!(text, "username,password,class\na,\"p,1\",\nb,,c1\n");
    }

    #[test]
    fn no_rows_give_an_empty_file() {
        assert!(csv_text(&[]).unwrap().is_empty());
    }

    #[test]
    fn writing_replaces_the_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.csv");
        fs::write(&path, "old").unwrap();
        write_atomically(&path, b"new\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new\n");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
