//! Fuzzing of the readers that take outside bytes (docs/security.md, "Fuzzing"): HAR
//! captures and `convert` on whatever reads, scenario YAML, CSV data, and a target's
//! responses (JSON, HTML, headers) through extracts, checks and the templates that use what
//! they take. Property tests (`proptest`) with strategies shaped like each input, mutated at
//! the structure and at the byte: no input panics, a bad one is an error that says where, and
//! the memory a reader holds stays within a bound of its input's size.
//!
//! The readers private to the crate (HTTP/1.1 heads and bodies of the engine and the relay,
//! form bodies, the page's API bodies, the cluster's frames, serialised histograms) have
//! theirs next to them, under `cargo test --lib fuzz`.

mod convert;
mod csv;
mod har;
mod responses;
mod scenario;

use proptest::test_runner::Config;

/// A property's configuration: `default` cases (tuned so that the whole short pass of a debug
/// `cargo test` takes well under a minute on two cores), or `CHORUS_FUZZ_CASES` when set.
pub(crate) fn config(default: u32) -> Config {
    let cases = std::env::var("CHORUS_FUZZ_CASES")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(default);
    Config {
        cases,
        max_shrink_iters: 2048,
        // A failure is kept as a regression test of its own, not in a file beside the source.
        failure_persistence: None,
        ..Config::default()
    }
}

/// Runs `read` and returns what it gave and the most heap it held at once (on this thread).
pub(crate) fn peak<T>(read: impl FnOnce() -> T) -> (T, u64) {
    let mut out = None;
    let info = allocation_counter::measure(|| out = Some(read()));
    (out.expect("the closure ran"), info.bytes_max)
}

/// Runs `read` and returns what it gave and how many heap bytes it allocated in all: a
/// measure of the work done that does not depend on the machine's speed.
pub(crate) fn allocated<T>(read: impl FnOnce() -> T) -> (T, u64) {
    let mut out = None;
    let info = allocation_counter::measure(|| out = Some(read()));
    (out.expect("the closure ran"), info.bytes_total)
}

/// Text mutations: a byte-level change at a random place (a cut, a deletion, an insertion
/// of one of the characters that matter to the format, a duplication of a stretch).
#[derive(Debug, Clone)]
pub(crate) enum Mutation {
    Cut(usize),
    Delete(usize, usize),
    Insert(usize, String),
    Repeat(usize, usize),
}

pub(crate) fn mutation(
    specials: &'static [&'static str],
) -> impl proptest::strategy::Strategy<Value = Mutation> {
    use proptest::prelude::*;
    prop_oneof![
        any::<usize>().prop_map(Mutation::Cut),
        (any::<usize>(), 1usize..8).prop_map(|(at, n)| Mutation::Delete(at, n)),
        (
            any::<usize>(),
            prop_oneof![
                prop::sample::select(specials).prop_map(str::to_owned),
                "[\\x00-\\x7f\u{e9}\u{1F600}]{1,3}"
            ]
        )
            .prop_map(|(at, text)| Mutation::Insert(at, text)),
        (any::<usize>(), 1usize..40).prop_map(|(at, n)| Mutation::Repeat(at, n)),
    ]
}

/// `text` with `mutations` applied (positions moved to character boundaries).
pub(crate) fn mutate(text: &str, mutations: &[Mutation]) -> String {
    let mut text = text.to_owned();
    let boundary = |text: &str, at: usize| {
        let mut at = at % (text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        at
    };
    let end_of = |text: &str, start: usize, n: usize| {
        let mut end = (start + n).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        end.max(start)
    };
    for mutation in mutations {
        match mutation {
            Mutation::Cut(at) => {
                let at = boundary(&text, *at);
                text.truncate(at);
            }
            Mutation::Delete(at, n) => {
                let start = boundary(&text, *at);
                let end = end_of(&text, start, *n);
                text.replace_range(start..end, "");
            }
            Mutation::Insert(at, insert) => {
                let at = boundary(&text, *at);
                text.insert_str(at, insert);
            }
            Mutation::Repeat(at, n) => {
                let start = boundary(&text, *at);
                let end = end_of(&text, start, *n);
                let stretch = text[start..end].to_owned();
                text.insert_str(end, &stretch);
            }
        }
    }
    text
}
