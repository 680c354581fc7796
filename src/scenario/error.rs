//! Load errors: every problem found in a scenario file, each at `file:line:column`.

use std::fmt;
use std::path::PathBuf;

/// One problem in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based; 0 when the problem has no place in the file (it could not be read).
    pub line: usize,
    pub column: usize,
    /// The path of the field, such as `flows[0].weight`; empty for the whole file.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if self.path.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.path, self.message)
        }
    }
}

impl Problem {
    /// The problem placed within `text`. The YAML reader places what is missing at the end of
    /// a file without a final line break on a line after the last (`data:\n  users:` said line
    /// 3 of 2); that place is the end of the last line.
    pub(crate) fn within(mut self, text: &str) -> Problem {
        // Line breaks as YAML counts them: `\r\n`, `\n`, and a `\r` alone.
        let last_start = text
            .char_indices()
            .filter(|&(at, c)| {
                c == '\n' || (c == '\r' && text.as_bytes().get(at + 1) != Some(&b'\n'))
            })
            .map(|(at, _)| at + 1);
        let (mut lines, mut start) = (1, 0);
        for at in last_start {
            lines += 1;
            start = at;
        }
        if self.line > lines {
            self.line = lines;
            self.column = text[start..].chars().count() + 1;
        }
        self
    }
}

/// Everything wrong with a scenario file, one problem per line; no traffic was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioError {}
