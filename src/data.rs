//! Test data from CSV files with a header row: `unique`, `cycle`, `random` and `shared` row
//! sources, handed out per virtual user. Loading checks the file once; handing out a row is
//! an index, never IO.

use std::fmt;
use std::path::{Path, PathBuf};

/// How a source hands out rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Each user its own row; a run with more users than rows is refused before it starts.
    Unique,
    /// User i gets row i mod rows.
    Cycle,
    /// A random row each time one is asked for.
    Random,
    /// One row (the first) for every user.
    Shared,
}

impl Mode {
    /// The names a scenario file uses.
    pub const NAMES: &[&str] = &["unique", "cycle", "random", "shared"];

    pub fn from_name(name: &str) -> Option<Mode> {
        Some(match name {
            "unique" => Mode::Unique,
            "cycle" => Mode::Cycle,
            "random" => Mode::Random,
            "shared" => Mode::Shared,
            _ => return None,
        })
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Unique => "unique",
            Mode::Cycle => "cycle",
            Mode::Random => "random",
            Mode::Shared => "shared",
        })
    }
}

/// One data row, values in the order of the source's columns.
pub type Row = Vec<String>;

/// A loaded CSV table.
#[derive(Debug, Clone)]
pub struct DataSource {
    /// The name under `data:`.
    pub name: String,
    /// The variable templates see the row as (`as:`, default: the name).
    pub as_name: String,
    pub mode: Mode,
    pub file: PathBuf,
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
}

/// A data file that cannot be used, or a run it cannot serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DataError {
    pub message: String,
}

impl DataError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl DataSource {
    /// Reads `file`: a header row naming the columns, then at least one row.
    pub fn load(
        name: &str,
        as_name: &str,
        mode: Mode,
        file: &Path,
    ) -> Result<DataSource, DataError> {
        let shown = file.display();
        if !file.exists() {
            return Err(DataError::new(format!(
                "data file {shown} not found; create it (chorus provision writes one) or pass --data {name}=FILE"
            )));
        }
        let text = crate::files::read_limited(file, MAX_CSV_BYTES, "CSV data file")
            .map_err(|err| DataError::new(format!("data file {shown} cannot be read: {err}")))?;
        if let Some(line) = unclosed_quote(&text) {
            return Err(DataError::new(format!(
                "data file {shown}: line {line}: a quoted field opens here and never closes (a `\"` is missing)"
            )));
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_slice());
        let columns: Vec<String> = reader
            .headers()
            .map_err(|err| DataError::new(format!("data file {shown}: {}", csv_error(&err))))?
            .iter()
            .map(str::to_owned)
            .collect();
        if columns.iter().all(String::is_empty) {
            return Err(DataError::new(format!(
                "data file {shown} is empty: its first line must name the columns, e.g. `username,password`"
            )));
        }
        if let Some(at) = columns.iter().position(String::is_empty) {
            return Err(DataError::new(format!(
                "data file {shown}: column {} of the header row has no name",
                at + 1
            )));
        }
        // A set, not a search of the columns before each: a header of 50,000 columns is read
        // in linear time.
        let mut named = std::collections::HashSet::with_capacity(columns.len());
        for column in &columns {
            if !named.insert(column) {
                return Err(DataError::new(format!(
                    "data file {shown}: column `{column}` appears twice in the header row"
                )));
            }
        }
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record
                .map_err(|err| DataError::new(format!("data file {shown}: {}", csv_error(&err))))?;
            if record.len() == 1 && record.get(0) == Some("") && columns.len() > 1 {
                continue;
            }
            rows.push(record.iter().map(str::to_owned).collect());
        }
        if rows.is_empty() {
            return Err(DataError::new(format!(
                "data file {shown} has a header row but no data rows"
            )));
        }
        Ok(DataSource {
            name: name.to_owned(),
            as_name: as_name.to_owned(),
            mode,
            file: file.to_owned(),
            columns,
            rows,
        })
    }

    /// The row of user number `user_index` (from 0), per the source's mode. `None` only for
    /// a `unique` source asked for a user beyond its rows (which `check_capacity` refuses).
    pub fn row_for_user(&self, user_index: u64) -> Option<&Row> {
        let count = self.rows.len() as u64;
        if count == 0 {
            return None;
        }
        let index = match self.mode {
            Mode::Unique => user_index,
            Mode::Cycle => user_index % count,
            Mode::Random => rand::random_range(0..count),
            Mode::Shared => 0,
        };
        self.rows.get(usize::try_from(index).ok()?)
    }

    /// Refuses `users` users when a `unique` source has fewer rows.
    pub fn check_capacity(&self, users: u64) -> Result<(), DataError> {
        let rows = self.rows.len() as u64;
        if self.mode == Mode::Unique && users > rows {
            return Err(DataError::new(format!(
                "data source `{}` ({}) has {rows} rows, one per user, but the run asks for {users} users; \
                 add rows (chorus provision), lower -u, or set `mode: cycle` on the source to reuse rows",
                self.name,
                self.file.display()
            )));
        }
        Ok(())
    }

    /// The position of `column`, or an error naming the file and the columns it has.
    pub fn column(&self, column: &str) -> Result<usize, DataError> {
        self.columns
            .iter()
            .position(|c| c == column)
            .ok_or_else(|| {
                DataError::new(format!(
                    "{} has no column `{column}` (its columns: {})",
                    self.file.display(),
                    self.columns.join(", ")
                ))
            })
    }
}

/// The largest CSV file read (every row is held in memory for the run).
const MAX_CSV_BYTES: u64 = 1 << 30;

/// The line where a quoted field opens that the file never closes: the CSV reader would
/// take the rest of the file as that one field.
fn unclosed_quote(text: &[u8]) -> Option<usize> {
    let mut line = 1;
    let mut opened_at = None;
    let mut field_start = true;
    let mut i = 0;
    while i < text.len() {
        let byte = text[i];
        match (opened_at, byte) {
            (Some(_), b'"') if text.get(i + 1) == Some(&b'"') => i += 1,
            (Some(_), b'"') => opened_at = None,
            (None, b'"') if field_start => opened_at = Some(line),
            _ => {}
        }
        if byte == b'\n' {
            line += 1;
        }
        field_start = opened_at.is_none() && matches!(byte, b',' | b'\n' | b'\r');
        i += 1;
    }
    opened_at
}

fn csv_error(err: &csv::Error) -> String {
    match err.kind() {
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => format!(
            "line {}: {len} fields where the header row has {expected_len}",
            pos.as_ref().map_or(0, csv::Position::line)
        ),
        csv::ErrorKind::Utf8 { pos, .. } => format!(
            "line {}: not valid UTF-8",
            pos.as_ref().map_or(0, csv::Position::line)
        ),
        _ => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(mode: Mode, rows: usize) -> DataSource {
        DataSource {
            name: "users".to_owned(),
            as_name: "user".to_owned(),
            mode,
            file: PathBuf::from("users.csv"),
            columns: vec!["username".to_owned()],
            rows: (0..rows).map(|i| vec![format!("s{i}")]).collect(),
        }
    }

    #[test]
    fn rows_per_mode() {
        let unique = source(Mode::Unique, 3);
        assert_eq!(unique.row_for_user(2).unwrap()[0], "s2");
        assert_eq!(unique.row_for_user(3), None);
        let cycle = source(Mode::Cycle, 3);
        assert_eq!(cycle.row_for_user(4).unwrap()[0], "s1");
        let shared = source(Mode::Shared, 3);
        assert_eq!(shared.row_for_user(9).unwrap()[0], "s0");
        let random = source(Mode::Random, 3);
        assert!(random.row_for_user(100).is_some());
    }

    #[test]
    fn unique_sources_refuse_more_users_than_rows() {
        assert!(source(Mode::Unique, 3).check_capacity(3).is_ok());
        assert_eq!(
            source(Mode::Unique, 3)
                .check_capacity(4)
                .unwrap_err()
                .to_string(),
            "data source `users` (users.csv) has 3 rows, one per user, but the run asks for 4 users; \
             add rows (chorus provision), lower -u, or set `mode: cycle` on the source to reuse rows"
        );
        assert!(source(Mode::Cycle, 3).check_capacity(400).is_ok());
    }

    #[test]
    fn loads_a_csv_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.csv");
        std::fs::write(&path, "username, password,class\ns1,pw1,A\n\"s,2\",pw2,B\n").unwrap();
        let source = DataSource::load("users", "user", Mode::Unique, &path).unwrap();
        assert_eq!(source.columns, ["username", "password", "class"]);
        assert_eq!(source.rows[1], ["s,2", "pw2", "B"]);
        assert_eq!(source.column("class").unwrap(), 2);
        let err = source.column("email").unwrap_err().to_string();
        assert!(
            err.ends_with("has no column `email` (its columns: username, password, class)"),
            "{err}"
        );
    }

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.csv");
        let err = DataSource::load("users", "user", Mode::Unique, &missing)
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("nope.csv not found; create it (chorus provision writes one) or pass --data users=FILE"),
            "{err}"
        );
        let ragged = dir.path().join("ragged.csv");
        std::fs::write(&ragged, "a,b\n1,2\n3\n").unwrap();
        let err = DataSource::load("t", "t", Mode::Cycle, &ragged)
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("line 3: 1 fields where the header row has 2"),
            "{err}"
        );
        let empty = dir.path().join("empty.csv");
        std::fs::write(&empty, "a,b\n").unwrap();
        let err = DataSource::load("t", "t", Mode::Cycle, &empty)
            .unwrap_err()
            .to_string();
        assert!(err.ends_with("has a header row but no data rows"), "{err}");
        let unterminated = dir.path().join("unterminated.csv");
        std::fs::write(&unterminated, "username,password\ns1,p1\n\"s2,p2\ns3,p3\n").unwrap();
        let err = DataSource::load("t", "t", Mode::Cycle, &unterminated)
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("unterminated.csv: line 3: a quoted field opens here and never closes (a `\"` is missing)"),
            "{err}"
        );
        let err = DataSource::load("t", "t", Mode::Cycle, dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("cannot be read: it is a folder, not a CSV data file"),
            "{err}"
        );
        let err = DataSource::load("t", "t", Mode::Cycle, Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "data file /dev/zero cannot be read: it is a device or another special file, not a CSV data file"
        );
    }

    #[test]
    fn quotes_that_close_are_not_unclosed() {
        assert_eq!(
            unclosed_quote(b"a,b\n\"x, \"\"y\"\"\",2\n\"multi\nline\",3\n"),
            None
        );
        assert_eq!(unclosed_quote(b"a\n\"x\n"), Some(2));
        assert_eq!(unclosed_quote(b"a,b\nsay \"hi\",2\n"), None);
    }
}
