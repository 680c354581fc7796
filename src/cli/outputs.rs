//! The files a command will write, checked before it does any work (no traffic, no account
//! created): each can be created, and none is one of the command's inputs. Every problem is
//! named in one message, so one fix-and-retry is enough.

use std::path::{Path, PathBuf};

use anyhow::bail;

use super::args::OutputArgs;
use crate::files;
use crate::scenario::Scenario;

/// A file a command reads: what it is, for the message, and where.
pub(super) struct Input<'a> {
    pub(super) what: &'static str,
    pub(super) path: &'a Path,
}

/// A file a command will write: the flag that named it, and the file.
pub(super) struct Output {
    pub(super) flag: String,
    pub(super) path: PathBuf,
}

impl Output {
    pub(super) fn new(flag: &str, path: &Path) -> Output {
        Output {
            flag: format!("{flag} {}", path.display()),
            path: path.to_owned(),
        }
    }
}

/// The files the report flags will write: the four `--csv` files, `--json`, `--html`,
/// `--markdown`, `--junit`.
pub(super) fn reports(output: &OutputArgs) -> Vec<Output> {
    let mut outputs = Vec::new();
    if let Some(prefix) = &output.csv {
        let base = prefix.as_os_str().to_string_lossy();
        for suffix in [
            "_stats.csv",
            "_stats_history.csv",
            "_failures.csv",
            "_exceptions.csv",
        ] {
            outputs.push(Output {
                flag: format!("--csv {}", prefix.display()),
                path: PathBuf::from(format!("{base}{suffix}")),
            });
        }
    }
    if let Some(path) = &output.json {
        outputs.push(Output::new("--json", path));
    }
    if let Some(path) = &output.html {
        outputs.push(Output::new("--html", path));
    }
    if let Some(path) = &output.markdown {
        outputs.push(Output::new("--markdown", path));
    }
    if let Some(path) = &output.junit {
        outputs.push(Output::new("--junit", path));
    }
    outputs
}

/// The files a run reads: the scenario, its data files, the capture it is compared with.
pub(super) fn run_inputs<'a>(
    scenario_file: Option<&'a Path>,
    scenario: &'a Scenario,
    capture: Option<&'a Path>,
) -> Vec<Input<'a>> {
    let mut inputs = Vec::new();
    if let Some(path) = scenario_file {
        inputs.push(Input {
            what: "the scenario",
            path,
        });
    }
    for source in &scenario.data {
        inputs.push(Input {
            what: "a data file of the scenario",
            path: &source.file,
        });
    }
    for path in capture.into_iter().chain(scenario.capture.as_deref()) {
        inputs.push(Input {
            what: "the capture",
            path,
        });
    }
    inputs
}

/// Refuses, in one message, every output that is one of the inputs or cannot be written.
pub(super) fn check(outputs: &[Output], inputs: &[Input<'_>]) -> anyhow::Result<()> {
    let mut problems: Vec<String> = Vec::new();
    for output in outputs {
        let said = |problems: &[String]| problems.iter().any(|p| p.starts_with(&output.flag));
        if said(&problems) {
            continue;
        }
        if let Some(input) = inputs
            .iter()
            .find(|input| files::same_file(input.path, &output.path))
        {
            problems.push(format!(
                "{}: that is {}, which writing there would replace; give another name",
                output.flag, input.what
            ));
            continue;
        }
        if let Err(err) = files::check_writable(&output.path) {
            let shown = if output.flag.ends_with(&output.path.display().to_string()) {
                String::new()
            } else {
                format!(" ({})", output.path.display())
            };
            problems.push(format!("{}{shown}: {err}", output.flag));
        }
    }
    match problems.len() {
        0 => Ok(()),
        1 => bail!("cannot write {}", problems[0]),
        _ => bail!(
            "cannot write {} outputs: {}",
            problems.len(),
            problems.join("; ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_in_one_message() {
        let dir = tempfile::tempdir().unwrap();
        let scenario = dir.path().join("s.yaml");
        std::fs::write(&scenario, "host: x").unwrap();
        let outputs = [
            Output::new("--json", &dir.path().join("./s.yaml")),
            Output::new("--html", dir.path()),
            Output::new("--json", &dir.path().join("fine.json")),
        ];
        let inputs = [Input {
            what: "the scenario",
            path: &scenario,
        }];
        let err = check(&outputs, &inputs).unwrap_err().to_string();
        let folder = dir.path().display();
        assert_eq!(
            err,
            format!(
                "cannot write 2 outputs: --json {folder}/./s.yaml: that is the scenario, which writing there would replace; give another name; --html {folder}: it is a folder; give a file name (e.g. out/run.json)"
            )
        );
        assert!(check(&outputs[2..], &inputs).is_ok());
    }
}
