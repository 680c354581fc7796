//! Scenario files that used to exhaust memory or the stack, or load as a run that does
//! nothing, refused at load with their place (report rows 16-17, 19-20, 23).

use std::path::Path;

use chorus::scenario::{self, LoadOptions};

use super::refused;
use crate::util::output_dir;

const HOST: &str = "host: http://127.0.0.1:9\n";

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// `chorus run NAME --headless -t 1s` on `text`: refused with `expected`.
#[track_caller]
fn refuses(dir: &Path, name: &str, text: &str, expected: &str) {
    write(dir, name, text);
    refused(&["run", name, "--headless", "-t", "1s"], dir, expected);
}

#[test]
fn alias_bombs_are_refused_at_the_alias_that_passes_the_limit() {
    let dir = output_dir("inputs_alias_bomb");
    // "A billion laughs": nine levels of ten aliases of the level before, 10^9 values.
    let levels = |indent: &str| {
        let mut text = format!("{indent}a: &a [x,x,x,x,x,x,x,x,x,x]\n");
        let names: Vec<char> = ('a'..='i').collect();
        for pair in names.windows(2) {
            let aliases = vec![format!("*{}", pair[0]); 10].join(",");
            text.push_str(&format!("{indent}{}: &{} [{aliases}]\n", pair[1], pair[1]));
        }
        text
    };
    let flows = "flows: [{steps: [{get: /}]}]\n";
    refuses(
        &dir,
        "bomb.yaml",
        &format!("{HOST}{}{flows}", levels("")),
        "bomb.yaml:6:29: aliases (`*name`) expand to more than 100000 values in all (aliases of aliases multiply); write the values out, or reuse less",
    );
    // The same under `vars:`, where the values would be read.
    refuses(
        &dir,
        "bomb_vars.yaml",
        &format!("{HOST}vars:\n{}{flows}", levels("  ")),
        "bomb_vars.yaml:7:31: aliases (`*name`) expand to more than 100000 values",
    );
    // A few aliases are fine.
    write(
        &dir,
        "few.yaml",
        &format!("{HOST}flows: [{{steps: [&g {{get: /}}, *g, *g]}}]\n"),
    );
    let scenario = scenario::load(&dir.join("few.yaml"), &LoadOptions::default())
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(scenario.flows[0].steps.len(), 3);
}

#[test]
fn deep_nesting_is_refused_as_too_deeply_nested() {
    let dir = output_dir("inputs_deep_nesting");
    let depth = 400;
    let mut repeats = format!("{HOST}flows:\n  - steps:\n");
    for level in 0..depth {
        let indent = "  ".repeat(level + 2);
        repeats.push_str(&format!("{indent}- repeat: 1\n{indent}  steps:\n"));
    }
    repeats.push_str(&format!("{}- get: /\n", "  ".repeat(depth + 3)));
    refuses(
        &dir,
        "repeats.yaml",
        &repeats,
        "too deeply nested: more than 64 lists and maps inside each other",
    );
    let nots = "not ".repeat(100_000);
    refuses(
        &dir,
        "when.yaml",
        &format!("{HOST}flows:\n  - steps:\n      - get: /\n        when: \"{nots}true\"\n"),
        "when.yaml:5:15: flows[0].steps[0].when: bad condition \"not not not not not not not not not not \" … (399924 characters) … \"not not not not not not not not not true\": too deeply nested: 100000 brackets or `not`/`-`/`!` inside each other, at most 32",
    );
    let parens = format!("{}@.a{}", "(".repeat(50_000), ")".repeat(50_000));
    refuses(
        &dir,
        "jsonpath.yaml",
        &format!(
            "{HOST}flows:\n  - steps:\n      - get: /\n        extract: {{a: \"$[?{parens}]\"}}\n"
        ),
        "jsonpath.yaml:5:22: flows[0].steps[0].extract.a: bad JSONPath: too deeply nested: 50001 brackets or `not`/`-`/`!` inside each other, at most 32",
    );
    let json = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    refuses(
        &dir,
        "body.yaml",
        &format!("{HOST}flows:\n  - steps:\n      - post: /\n        json: {json}\n"),
        "too deeply nested",
    );
}

#[test]
fn empty_flows_and_step_lists_are_refused_like_no_steps() {
    let dir = output_dir("inputs_no_steps");
    refuses(
        &dir,
        "flows.yaml",
        &format!("{HOST}flows: []\n"),
        "flows.yaml:1:1: the scenario has no steps: add `flows:` (or `on_start:`) with at least one step",
    );
    refuses(
        &dir,
        "steps.yaml",
        &format!("{HOST}flows:\n  - steps: []\n"),
        "steps.yaml:3:12: flows[0].steps: a flow needs at least one step (`- get: /path` ...); add steps or remove the flow",
    );
    refuses(
        &dir,
        "repeat.yaml",
        &format!(
            "{HOST}flows:\n  - steps:\n      - get: /\n      - repeat: 3\n        steps: []\n"
        ),
        "repeat.yaml:6:16: flows[0].steps[1].steps: a `repeat` needs at least one step to repeat",
    );
    refuses(
        &dir,
        "emit.yaml",
        &format!("{HOST}flows:\n  - steps:\n      - emit: {{a: b}}\n"),
        "emit.yaml:4:7: flows[0].steps: this flow sends no request and never pauses, so each user would repeat it at full speed; add a request or a `think` (`emit` writes rows only in chorus provision)",
    );
}

#[test]
fn a_bom_is_read_past_and_a_nul_byte_is_placed() {
    let dir = output_dir("inputs_bom_nul");
    write(
        &dir,
        "bom.yaml",
        &format!("\u{feff}{HOST}flows:\n  - steps: [{{get: /}}]\n"),
    );
    let scenario = scenario::load(&dir.join("bom.yaml"), &LoadOptions::default())
        .unwrap_or_else(|err| panic!("a BOM is accepted: {err}"));
    assert_eq!(scenario.flows.len(), 1);
    refuses(
        &dir,
        "nul.yaml",
        "host: http://127.0.0.1:9\0\nflows:\n  - steps: [{get: /}]\n",
        "nul.yaml:1:25: a NUL byte: a scenario is a YAML text file (was a binary file given, or one saved as UTF-16?)",
    );
    std::fs::write(
        dir.join("latin1.yaml"),
        b"host: http://127.0.0.1:9\nflows:\n  - steps: [{get: /caf\xe9}]\n",
    )
    .unwrap();
    refused(
        &["run", "latin1.yaml", "--headless", "-t", "1s"],
        &dir,
        "latin1.yaml:3:23: not UTF-8 text (byte 0xe9); save the scenario as UTF-8",
    );
}

#[test]
fn template_mistakes_that_fail_for_every_user_fail_at_load() {
    let dir = output_dir("inputs_template_load");
    let cases = [
        (
            "filter.yaml",
            "/{{ vu | nosuch }}",
            "unknown filter `nosuch`",
        ),
        (
            "random.yaml",
            "/{{ random_string(-1) }}",
            "invalid operation: cannot convert number to usize",
        ),
        (
            "div.yaml",
            "/{{ 1 / 0 }}",
            "invalid operation: unable to calculate 1 / 0",
        ),
    ];
    for (name, url, message) in cases {
        refuses(
            &dir,
            name,
            &format!("{HOST}flows:\n  - steps: [{{get: '{url}'}}]\n"),
            &format!("{name}:3:19: flows[0].steps[0].get: bad template \"{url}\": {message}"),
        );
    }
    refuses(
        &dir,
        "cycle.yaml",
        &format!(
            "{HOST}vars:\n  a: '{{{{ b }}}}'\n  b: '{{{{ a }}}}'\nflows:\n  - steps: [{{get: '/{{{{ a }}}}'}}]\n"
        ),
        "cycle.yaml:3:6: vars.a: uses `b`, which is set later in `vars:` (line 4); vars are set in file order: move `b` above",
    );
}
