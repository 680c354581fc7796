//! What the fuzz properties next to the private parsers share (tests only): how many cases a
//! property runs (`CHORUS_FUZZ_CASES` sets it for a long pass, see docs/security.md,
//! "Fuzzing"), byte strategies that look enough like HTTP to get past the first check,
//! and splitting an input into the pieces a socket might deliver.

use bytes::BytesMut;
use proptest::prelude::*;
use proptest::test_runner::Config;

use crate::http1::HeadScan;

/// A property's configuration: `default` cases (tuned so that the whole short pass of a debug
/// `cargo test` takes well under a minute on two cores), or `CHORUS_FUZZ_CASES` when set.
pub(crate) fn config(default: u32) -> Config {
    let cases = std::env::var("CHORUS_FUZZ_CASES")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(default);
    Config {
        cases,
        // Shrinking a failure is worth a few seconds; an endless shrink is not.
        max_shrink_iters: 2048,
        // A failure is kept as a regression test of its own, not in a file beside the source.
        failure_persistence: None,
        ..Config::default()
    }
}

/// Bytes that are mostly HTTP: tokens, separators, line ends, digits, and a few bytes of
/// anything.
pub(crate) fn http_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        4 => prop::sample::select(HTTP_TOKENS).prop_map(|token| token.as_bytes().to_vec()),
        2 => prop::collection::vec(any::<u8>(), 0..4),
        1 => "[0-9a-fA-F]{1,18}".prop_map(String::into_bytes),
        1 => "[ -~]{0,12}".prop_map(String::into_bytes),
    ];
    prop::collection::vec(piece, 0..max).prop_map(|pieces| pieces.concat())
}

const HTTP_TOKENS: &[&str] = &[
    "HTTP/1.1 ",
    "HTTP/1.0 ",
    "GET ",
    "POST ",
    "CONNECT ",
    " / ",
    " http://a/x ",
    "200 OK",
    "100 Continue",
    "101",
    "204",
    "304",
    "\r\n",
    "\n",
    "\r",
    "\r\n\r\n",
    ": ",
    ":",
    ";",
    ",",
    " ",
    "\t",
    "\0",
    "Content-Length",
    "content-length: ",
    "Transfer-Encoding: chunked",
    "transfer-encoding: gzip, chunked",
    "Connection: close",
    "Connection: keep-alive, Upgrade",
    "Upgrade: websocket",
    "Expect: 100-continue",
    "Host: a",
    "0\r\n\r\n",
    "ffffffffffffffff",
    "18446744073709551616",
    "-1",
    "é",
];

/// `bytes` cut at `cuts` (any positions; sorted and kept within the input).
pub(crate) fn pieces<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut pieces = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for cut in cuts {
        pieces.push(&bytes[start..cut]);
        start = cut;
    }
    pieces.push(&bytes[start..]);
    pieces
}

/// A JSON value: numbers of every kind (huge, tiny, negative, fractional), strings that
/// look like numbers and durations, nesting.
pub(crate) fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(vec![
            0.0,
            -0.0,
            1e-300,
            1e300,
            0.5,
            1.5,
            10_000_000.0,
            10_000_001.0,
            1e19,
        ])
        .prop_map(Value::from),
        prop::sample::select(vec![
            "",
            " ",
            "0",
            "1",
            "-1",
            "1.5",
            "1e300",
            "1e-300",
            "NaN",
            "inf",
            "10s",
            "1e19s",
            "500000000000y",
            "1h30m",
            "http://127.0.0.1:9/",
            "localhost",
            "\u{e9}",
        ])
        .prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// An object key: mostly the names the page's API and chorus's formats use.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "users", "spawn_rate", "host", "run_time", "arrival_rate", "max_users", "user_count",
            "type", "id", "token", "name", "value", "status",
        ])
        .prop_map(str::to_owned),
        1 => "[ -~]{0,8}",
    ]
}

/// Feeds `pieces` into a buffer one after another, as reads would, and runs `parse` (a head
/// parser of `crate::http1`'s kind) after each: the first head or error, the buffer's rest
/// (with every piece in it) and the scan.
pub(crate) fn parse_in_pieces<H, E>(
    parse: impl Fn(&mut BytesMut, &mut HeadScan) -> Result<Option<H>, E>,
    pieces: &[&[u8]],
) -> (Result<Option<H>, E>, BytesMut, HeadScan) {
    let mut buffer = BytesMut::new();
    let mut scan = HeadScan::default();
    let mut result = Ok(None);
    let mut fed = 0;
    for piece in pieces {
        buffer.extend_from_slice(piece);
        fed += 1;
        result = parse(&mut buffer, &mut scan);
        if !matches!(result, Ok(None)) {
            break;
        }
    }
    for piece in &pieces[fed..] {
        buffer.extend_from_slice(piece);
    }
    (result, buffer, scan)
}

/// The property every head parser holds: `bytes` parsed whole and cut at `cuts` give the
/// same head (`same` compares the two) and the same rest, a parse per line end at most (and
/// one for the first bytes: never one per byte), a head still waiting no longer than
/// `max_head`, and an error whole is an error in pieces or a line still waiting for its end
/// (what has no line end yet is not wrong yet).
pub(crate) fn a_head_in_pieces_is_the_head_whole<H, E: std::fmt::Debug>(
    parse: impl Fn(&mut BytesMut, &mut HeadScan) -> Result<Option<H>, E>,
    bytes: &[u8],
    cuts: &[usize],
    max_head: usize,
    same: impl FnOnce(&H, &H) -> Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    let (whole, whole_rest, _) = parse_in_pieces(&parse, &[bytes]);
    let (split, split_rest, scan) = parse_in_pieces(&parse, &pieces(bytes, cuts));
    let line_ends = bytes.iter().filter(|byte| **byte == b'\n').count();
    prop_assert!(scan.parses <= line_ends + 2, "{} parses", scan.parses);
    match (&whole, &split) {
        (Ok(Some(whole)), Ok(Some(split))) => {
            same(whole, split)?;
            prop_assert_eq!(&whole_rest, &split_rest);
        }
        (Ok(None), Ok(None)) => prop_assert!(bytes.len() <= max_head),
        (Err(_), Err(_) | Ok(None)) => {}
        _ => prop_assert!(
            false,
            "whole: {:?}, in pieces: {:?}",
            whole.err(),
            split.err()
        ),
    }
    Ok(())
}

/// What reading a body whole and in pieces must agree on: both the same value (given back,
/// for more checks) or both an error (`None`).
pub(crate) fn the_same_whole_and_in_pieces<'a, T, E>(
    whole: &'a Result<T, E>,
    split: &Result<T, E>,
) -> Result<Option<&'a T>, TestCaseError>
where
    T: PartialEq + std::fmt::Debug,
    E: std::fmt::Debug,
{
    match (whole, split) {
        (Ok(whole), Ok(split)) => {
            prop_assert_eq!(whole, split);
            Ok(Some(whole))
        }
        (Err(_), Err(_)) => Ok(None),
        _ => Err(TestCaseError::fail(format!(
            "whole: {whole:?}, in pieces: {split:?}"
        ))),
    }
}
