//! Test data from CSV files with a header row: `unique`, `cycle`, `random` and `shared` row
//! sources, handed out per virtual user.

use std::path::PathBuf;

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

/// A data file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DataError {
    pub message: String,
}

impl DataSource {
    /// The row of user number `user_index` (from 0), per the source's mode.
    pub fn row_for_user(&self, user_index: u64) -> Option<&Row> {
        let _ = user_index;
        self.rows.first()
    }

    /// Refuses `users` users when a `unique` source has fewer rows.
    pub fn check_capacity(&self, users: u64) -> Result<(), DataError> {
        let _ = users;
        Ok(())
    }
}
