//! The mutation test of issue 13 §5: proof that `chorus run --check` notices when a converted
//! scenario loses what makes it faithful. From a scenario and the capture it came from it
//! makes one mutant per `extract` (the extract removed, each read of its variable that it
//! served replaced by the value it gives on the recorded response) and one with the logout
//! (`on_stop`) moved to the end of the flow, runs `--check` on each against the running
//! application, and counts a mutant as caught when `--check` exits 1 with a DIFF or FAIL.
//! The unmutated scenario is checked beside them: a DIFF or FAIL it has too (the same exchange
//! going wrong, or going wrong the same way elsewhere) catches nothing, and a test that wants
//! every mutant caught wants it to pass (`Report::assert_all_caught`).
//! A mutant can be equivalent: an empty page's checksum is the same in every iteration, so
//! the recorded value is what the replay's page serves too. A surviving mutant of a page's
//! field is run once more with another value of the same shape (its control); when that one
//! is caught, the mutant is reported as equivalent, not as a survivor.
//!
//! Mutants are built on a YAML tree that keeps how each scalar was written
//! ([`yaml`]); templates and conditions are rewritten by [`template`]. The recorded values
//! come from chorus's own code: the scenario as `chorus::scenario` loads it, each extract
//! applied with `Extract::apply` to the capture's entry its request names (`recorded: N`),
//! after the redirects the recording followed.

mod mutants;
mod recorded;
pub mod template;
pub mod yaml;

pub use mutants::build;
pub use recorded::with_recorded;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Users `--check` runs (src/cli/check.rs): each run gets this many rows of the users CSV.
const ROWS_PER_RUN: usize = 2;

/// The name of the mutant whose logout runs at the end of each iteration.
pub const LOGOUT_MUTANT: &str = "logout in the flow";

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
    /// For an extract from a page's form field or meta: the same mutant sending another value
    /// of the recorded one's shape. A mutant that survives while its control is caught is
    /// equivalent: the replay's own pages served the recorded value again (an empty page's
    /// checksum), which `--check` verified by comparing what was sent with what was served.
    pub control: Option<String>,
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
    /// How long its check took (with the instance's start, for a fresh one each), seconds.
    pub seconds: f64,
    /// Set for a survivor whose control was caught (see [`Mutant::control`]): where the
    /// control went wrong.
    pub equivalent: Option<String>,
}

/// The outcome of a mutation test.
#[derive(Debug, Clone)]
pub struct Report {
    pub verdicts: Vec<Verdict>,
    /// The DIFF and FAIL lines of the unmutated scenario's check, each with what differed; a
    /// mutant is caught only by a divergence that is not among them. Empty when the scenario
    /// passes, as it must for [`Report::assert_all_caught`].
    pub baseline: Vec<String>,
    /// Set when the scenario has no `on_stop` (a logout only the client does), so there is no
    /// logout mutant.
    pub no_logout: bool,
}

impl Report {
    pub fn mutants(&self) -> usize {
        self.verdicts.len()
    }

    pub fn caught(&self) -> usize {
        self.verdicts.iter().filter(|v| v.caught).count()
    }

    /// Survivors whose control was caught: the recorded value was the right one to send.
    pub fn equivalent(&self) -> Vec<&Verdict> {
        self.verdicts
            .iter()
            .filter(|v| !v.caught && v.equivalent.is_some())
            .collect()
    }

    pub fn survivors(&self) -> Vec<&Verdict> {
        self.verdicts
            .iter()
            .filter(|v| !v.caught && v.equivalent.is_none())
            .collect()
    }

    /// `N mutants, M caught` and a line per survivor (and what the scenario itself did wrong).
    pub fn summary(&self) -> String {
        let equivalent = self.equivalent();
        let mut text = format!("{} mutants, {} caught", self.mutants(), self.caught());
        if !equivalent.is_empty() {
            text.push_str(&format!(", {} equivalent", equivalent.len()));
        }
        text.push('\n');
        for verdict in equivalent {
            text.push_str(&format!(
                "  equivalent: {}: the replay's pages served the recorded value again; sending another is caught: {}\n",
                verdict.name,
                verdict.equivalent.as_deref().unwrap_or_default()
            ));
        }
        for survivor in self.survivors() {
            text.push_str(&format!(
                "  survived: {}: {}\n",
                survivor.name, survivor.summary
            ));
        }
        if self.no_logout {
            text.push_str("  (no on_stop, so no logout mutant)\n");
        }
        if !self.baseline.is_empty() {
            text.push_str(&format!(
                "  (the scenario itself does not pass --check: {} divergence(s):\n{}\n  )\n",
                self.baseline.len(),
                self.baseline.join("\n")
            ));
        }
        text
    }

    /// Fails the test unless the scenario passes `--check` and `--check` caught every mutant
    /// that is not equivalent.
    pub fn assert_all_caught(&self) {
        assert!(
            self.baseline.is_empty() && self.survivors().is_empty(),
            "--check let mutants through:\n{}",
            self.summary()
        );
    }

    /// [`Report::assert_all_caught`] for a scenario with socket steps: the mutants of the
    /// extracts chorus does not see (a `receive:`'s) are not made, every other one is caught,
    /// and at least `at_least` were.
    pub fn assert_made_ones_caught(&self, at_least: usize) {
        let survivors: Vec<&Verdict> = self
            .survivors()
            .into_iter()
            .filter(|verdict| !verdict.summary.starts_with("not made: chorus does not see"))
            .collect();
        assert!(
            self.baseline.is_empty() && survivors.is_empty() && self.caught() >= at_least,
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
/// it back, is checked too, so that a divergence it has anyway catches no mutant. Checks that
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
        control: None,
    }];
    runs.extend(mutants);
    let mut files: Vec<PathBuf> = runs
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
    // The scenario itself first and alone: what it does wrong must be its own, not what a
    // mutant checked beside it left on the server (another user's ticket in a list).
    let mut outputs = checks.run(application, 0..1);
    let mutants_checked = checks.run(application, 1..runs.len());
    for (output, mutant) in outputs.iter_mut().zip(mutants_checked).skip(1) {
        *output = mutant;
    }
    let (baseline_code, baseline_text, _) = outputs[0].clone().expect("the scenario itself runs");
    let baseline = divergences(&baseline_text);
    assert!(
        baseline_code == Some(0) || !baseline.is_empty(),
        "--check of the scenario itself ({}) ended {baseline_code:?} without a DIFF or FAIL:\n{baseline_text}",
        files[0].display()
    );
    let mut verdicts: Vec<Verdict> = runs
        .iter()
        .zip(outputs)
        .skip(1)
        .map(|(run, output)| judge(run, output, &baseline))
        .collect();
    // The controls of the survivors that have one, as runs of their own after the rest.
    let controlled: Vec<usize> = (0..verdicts.len())
        .filter(|&v| !verdicts[v].caught && runs[v + 1].control.is_some())
        .collect();
    let first_control = runs.len();
    for &v in &controlled {
        let run = &runs[v + 1];
        runs.push(Mutant {
            name: format!("control of: {}", run.name),
            replaced: run.replaced,
            text: run.control.clone().unwrap_or_default(),
            problem: None,
            control: None,
        });
        let file = dir.join(format!("{:02}.yaml", runs.len() - 1));
        std::fs::write(
            &file,
            format!(
                "# {}\n{}",
                runs.last().unwrap().name,
                runs.last().unwrap().text
            ),
        )
        .unwrap();
        files.push(file);
    }
    if !controlled.is_empty() {
        let outputs = Checks {
            files: &files,
            runs: &runs,
            pairs: &user_pairs(users),
            dir: &dir,
        }
        .run(application, first_control..runs.len());
        let controls = outputs.into_iter().enumerate().skip(first_control);
        for (&v, (index, output)) in controlled.iter().zip(controls) {
            let control = judge(&runs[index], output, &baseline);
            if control.caught {
                verdicts[v].equivalent = Some(control.first_wrong.unwrap_or(control.summary));
            }
        }
    }
    let report = Report {
        verdicts,
        baseline: baseline
            .into_iter()
            .map(|d| {
                if d.detail.is_empty() {
                    d.line
                } else {
                    format!("{}\n      {}", d.line, d.detail.replace('\n', "\n      "))
                }
            })
            .collect(),
        no_logout: !runs.iter().any(|run| run.name == LOGOUT_MUTANT),
    };
    let text = report.summary();
    print!("mutation test of {}: {text}", scenario.display());
    let mut all = text;
    for verdict in &report.verdicts {
        all.push_str(&format!(
            "{} ({:.1} s) {}: {}\n",
            match (verdict.caught, &verdict.equivalent) {
                (true, _) => "caught",
                (false, Some(_)) => "equivalent",
                (false, None) => "survived",
            },
            verdict.seconds,
            verdict.name,
            verdict.first_wrong.as_deref().unwrap_or(&verdict.summary)
        ));
    }
    std::fs::write(dir.join("report.txt"), all).unwrap();
    report
}

/// What `--check` said of a run: (exit code, stdout and stderr, seconds it took); `None` for
/// a mutant that could not be made.
type CheckOutput = Option<(Option<i32>, String, f64)>;

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
    let Some((code, text, seconds)) = output else {
        return Verdict {
            equivalent: None,
            name: run.name.clone(),
            caught: false,
            first_wrong: None,
            summary: format!("not made: {}", run.problem.as_deref().unwrap_or("?")),
            seconds: 0.0,
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
        equivalent: None,
        name: run.name.clone(),
        caught: code == Some(1) && !new.is_empty(),
        first_wrong,
        summary: match run.replaced {
            Some(replaced) => format!("{replaced} read(s) replaced; {summary}"),
            None => summary,
        },
        seconds,
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
    /// of users (and, for [`Application::FreshEach`], its own instance each time); writes
    /// each output beside the mutants (`NN.out`). Outputs are indexed as the files.
    fn run(
        &self,
        application: &Application<'_>,
        range: std::ops::Range<usize>,
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
                    let own: Vec<&String> =
                        self.pairs.iter().skip(worker).step_by(workers).collect();
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
                        let began = std::time::Instant::now();
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
                        let seconds = began.elapsed().as_secs_f64();
                        results.lock().unwrap()[index] =
                            Some((output.status.code(), text, seconds));
                    }
                });
            }
        });
        results.into_inner().unwrap()
    }
}
