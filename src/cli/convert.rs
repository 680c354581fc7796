//! `chorus convert`: reads a capture, converts it, writes the scenario and says what the user
//! needs next (the users CSV columns, the command to check it).

use std::process::ExitCode;

use anyhow::Context as _;

use super::args::ConvertArgs;
use crate::convert::{self, Options};

pub(super) async fn convert(args: ConvertArgs) -> anyhow::Result<ExitCode> {
    let split_on = args
        .split_on
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .context("--split-on is not a valid regular expression")?;
    if let Some(output) = &args.output {
        super::outputs::check(
            &[super::outputs::Output::new("-o", output)],
            &[super::outputs::Input {
                what: "the capture being converted",
                path: &args.capture,
            }],
        )?;
    }
    let options = Options {
        keep_static: args.keep_static,
        host: args.host.clone(),
        login: args.login.clone(),
        think_scale: args.think_scale,
        no_think: args.no_think,
        split_on,
        redact: args.redact,
        capture: Some(capture_as_seen_from(&args.capture, args.output.as_deref())),
    };
    let capture = args.capture.clone();
    let source = args.capture.display().to_string();
    // Read and converted on one thread: memory the reading freed is reused by the conversion
    // (another thread's allocations come from another pool, which would hold both at once).
    let conversion = tokio::task::spawn_blocking(move || {
        let (capture, warnings) = convert::read_capture(&capture)?;
        for warning in &warnings {
            eprintln!("warning: {warning}");
        }
        convert::convert_capture(capture, &source, &options)
            .with_context(|| format!("could not convert {source}"))
    })
    .await
    .context("the converter stopped")??;
    for warning in &conversion.warnings {
        eprintln!("warning: {warning}");
    }
    match &args.output {
        Some(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("could not create {}", parent.display()))?;
            }
            std::fs::write(path, &conversion.yaml)
                .with_context(|| format!("could not write {}", path.display()))?;
            eprintln!(
                "wrote {}: {} request(s) in {} flow(s), {} value(s) extracted from responses, {} generated per user",
                path.display(),
                conversion.requests,
                conversion.flows,
                conversion.extracted_values,
                conversion.generated_values
            );
            if !conversion.user_columns.is_empty() {
                eprintln!(
                    "it logs each virtual user in with its own row of a users CSV with the columns: {}",
                    conversion.user_columns.join(", ")
                );
            }
            let data = if conversion.user_columns.is_empty() {
                ""
            } else {
                " --data users=users.csv"
            };
            eprintln!(
                "compare its replay with the recording (2 users, each flow twice):  chorus run {} --check{data}",
                path.display()
            );
        }
        None => print!("{}", conversion.yaml),
    }
    Ok(ExitCode::from(super::EXIT_OK))
}

/// The capture's path as the scenario names it: relative to the scenario's folder when both
/// are known, so the two can move together.
fn capture_as_seen_from(capture: &std::path::Path, scenario: Option<&std::path::Path>) -> String {
    let absolute =
        |path: &std::path::Path| std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let Some(folder) = scenario.map(|s| absolute(s).parent().map(std::path::Path::to_path_buf))
    else {
        return capture.display().to_string();
    };
    let (Some(folder), capture) = (folder, absolute(capture)) else {
        return capture.display().to_string();
    };
    let ours: Vec<_> = folder.components().collect();
    let theirs: Vec<_> = capture.components().collect();
    let common = ours.iter().zip(&theirs).take_while(|(a, b)| a == b).count();
    let mut relative = std::path::PathBuf::new();
    for _ in common..ours.len() {
        relative.push("..");
    }
    for part in &theirs[common..] {
        relative.push(part);
    }
    relative.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn the_capture_is_named_relative_to_the_scenario() {
        assert_eq!(
            capture_as_seen_from(Path::new("/a/b/c.har"), Some(Path::new("/a/b/s.yaml"))),
            "c.har"
        );
        assert_eq!(
            capture_as_seen_from(
                Path::new("/a/captures/c.har"),
                Some(Path::new("/a/out/s.yaml"))
            ),
            "../captures/c.har"
        );
        assert_eq!(capture_as_seen_from(Path::new("c.har"), None), "c.har");
    }
}
