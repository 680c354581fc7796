//! The CSV data reader on files of every shape: tables of the values `provision` writes and
//! people type (quotes, commas and line ends inside quotes, BOMs, blank lines, ragged rows,
//! bytes that are not UTF-8), then changed in their bytes. A file loads with every row as
//! long as the header, or the error names the file (and the line, for a bad row); it never
//! panics, and the memory it holds follows the size of the file.

use chorus::data::{DataSource, Mode};
use proptest::collection::vec;
use proptest::prelude::*;

use super::{config, mutate, mutation, peak};

fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "username", "password", "u1", "pw1", "", " ", "\"quoted\"", "\"a,b\"",
            "\"line\nend\"", "\"say \"\"hi\"\"\"", "\"unclosed", "x\"y", "\u{e9}t\u{e9}",
            "\u{feff}username", "1e300", "-1", "\t",
        ])
        .prop_map(str::to_owned),
        1 => "[ -~]{0,8}",
    ]
}

/// A table: a header, rows of about as many fields, line ends of every kind.
fn table() -> impl Strategy<Value = Vec<u8>> {
    let row = |fields| vec(field(), fields);
    (
        row(1..5),
        vec(row(0..6), 0..8),
        prop::sample::select(vec!["\n", "\r\n", "\r"]),
        any::<bool>(),
    )
        .prop_map(|(header, rows, end, trailing)| {
            let mut text = header.join(",");
            for row in rows {
                text.push_str(end);
                text.push_str(&row.join(","));
            }
            if trailing {
                text.push_str(end);
            }
            text.into_bytes()
        })
}

const CSV_SPECIALS: &[&str] = &[
    ",", "\"", "\n", "\r\n", "\r", "\"\"", " ", "\u{feff}", "\0", "#", ";", "\t",
];

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn any_data_file_loads_or_says_what_is_wrong(
        bytes in prop_oneof![
            3 => (table(), vec(mutation(CSV_SPECIALS), 0..3)).prop_map(|(table, mutations)| {
                mutate(&String::from_utf8_lossy(&table), &mutations).into_bytes()
            }),
            1 => (table(), any::<usize>(), vec(any::<u8>(), 1..4)).prop_map(|(mut table, at, bytes)| {
                // Bytes that are not UTF-8 in the middle of a file.
                let at = at % (table.len() + 1);
                table.splice(at..at, bytes);
                table
            }),
        ],
        mode in prop::sample::select(vec![Mode::Unique, Mode::Cycle, Mode::Random, Mode::Shared]),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("users.csv");
        std::fs::write(&file, &bytes).unwrap();
        let (result, held) = peak(|| DataSource::load("users", "user", mode, &file));
        match result {
            Ok(source) => {
                prop_assert!(!source.columns.is_empty() && !source.rows.is_empty());
                let lines = bytes.iter().filter(|byte| matches!(byte, b'\n' | b'\r')).count();
                prop_assert!(source.rows.len() <= lines, "{} rows from {lines} line ends", source.rows.len());
                for row in &source.rows {
                    prop_assert_eq!(row.len(), source.columns.len());
                }
                for user in 0..3 {
                    let row = source.row_for_user(user);
                    prop_assert!(row.is_some() || mode == Mode::Unique);
                }
                let _ = source.check_capacity(u64::MAX);
            }
            Err(err) => {
                let shown = file.display().to_string();
                prop_assert!(err.message.contains(&shown), "{}", err.message);
            }
        }
        // The file's bytes, the rows as strings (each a little heap of its own) and the
        // reader's buffer.
        prop_assert!(held <= 40 * bytes.len() as u64 + (128 << 10), "{held} bytes for {}", bytes.len());
    }
}

#[test]
fn a_doubled_column_among_many_is_named() {
    // Regression: duplicate columns were looked for among all the columns before each, so a
    // header of 50,000 columns took over a billion comparisons (this test took minutes).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wide.csv");
    let header = (0..50_000)
        .map(|n| format!("c{n}"))
        .collect::<Vec<_>>()
        .join(",");
    let row = vec!["1"; 50_000].join(",");
    std::fs::write(&file, format!("{header}\n{row}\n")).unwrap();
    let source = DataSource::load("wide", "wide", Mode::Cycle, &file).unwrap();
    assert_eq!(source.columns.len(), 50_000);

    std::fs::write(&file, format!("{header},c49999\n{row},1\n")).unwrap();
    let err = DataSource::load("wide", "wide", Mode::Cycle, &file).unwrap_err();
    assert!(
        err.message.contains("column `c49999` appears twice"),
        "{}",
        err.message
    );
}
