//! `convert` on any capture that reads: it converts or says why not, never panics, and what
//! it writes loads as a scenario (with a `users` CSV of the columns it asks for).

use std::path::Path;

use chorus::convert::{Options, convert};
use chorus::har::read::read_str;
use chorus::scenario::{LoadOptions, load_str};
use proptest::prelude::*;

use super::config;
use super::har::{capture, damaged_capture};

fn options() -> impl Strategy<Value = Options> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::option::of(prop::sample::select(vec!["/login", "/api/", "("])),
    )
        .prop_map(|(keep_static, redact, no_think, split_on)| Options {
            keep_static,
            redact,
            no_think,
            split_on: split_on.and_then(|text| regex::Regex::new(text).ok()),
            ..Options::default()
        })
}

/// Converts `text` if it reads; the scenario written must load.
fn convert_and_load(text: &str, options: &Options) -> Result<(), TestCaseError> {
    let Ok((har, _)) = read_str(text, "f.har") else {
        return Ok(());
    };
    let Ok(conversion) = convert(&har, "f.har", options) else {
        return Ok(());
    };
    let dir = tempfile::tempdir().unwrap();
    if !conversion.user_columns.is_empty() {
        let header = conversion.user_columns.join(",");
        let row = vec!["v1"; conversion.user_columns.len()].join(",");
        std::fs::write(dir.path().join("users.csv"), format!("{header}\n{row}\n")).unwrap();
    }
    let path = dir.path().join("s.yaml");
    if let Err(err) = load_str(&conversion.yaml, &path, &LoadOptions::default()) {
        return Err(TestCaseError::fail(format!(
            "the scenario convert wrote does not load:\n{err}\n--- scenario:\n{}",
            conversion.yaml
        )));
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn any_capture_that_reads_converts_to_a_scenario_that_loads(
        text in prop_oneof![
            3 => capture(8).prop_map(|har| har.to_string()),
            1 => damaged_capture(),
        ],
        options in options(),
    ) {
        convert_and_load(&text, &options)?;
    }
}

#[test]
fn the_capture_fixtures_convert_to_scenarios_that_load() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/har");
    for name in ["chromium", "firefox", "mitmproxy", "charles", "fiddler"] {
        let text = std::fs::read_to_string(fixtures.join(format!("{name}.har"))).unwrap();
        convert_and_load(&text, &Options::default()).unwrap_or_else(|err| panic!("{name}: {err}"));
    }
}
