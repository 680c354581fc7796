//! JavaScript functions a scenario can call (`scripts:`, `--script FILE`): ES modules whose
//! exported functions templates call (`{{ js.sign(body, key) }}`), `js:` steps and checks
//! run, and the `before_request` / `after_response` hooks wrap every request with.
//!
//! The engine is QuickJS-ng (rquickjs), one runtime per engine worker thread, made the first
//! time a thread calls a script; never one per virtual user: a user's state stays in its
//! variables, passed in and out. Scripts get no file system, network or process (QuickJS has
//! none built in, and no module loader is installed); `open(name)` gives the text of a data
//! file the scenario names, read at load; `chorus.hmac_sha256(key, text)` and its siblings
//! are the templates' native functions. Each call has a time limit (an interrupt handler).
//! This module owns the JavaScript side and its values; it sends nothing.

mod call;
mod engine;
mod lazy;
mod load;
mod values;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::stats::FailureKind;

pub use call::Call;
pub(crate) use call::template_object;
pub(crate) use lazy::JS_VARIABLE;
pub(crate) use load::{Loading, unknown_function};

/// How long one call may run before it is stopped (`script_time_limit:` changes it). A call
/// holds its worker thread, and every user on it, while it runs.
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_millis(100);

/// The hook called before every request (headers to add), if a script exports it.
pub const BEFORE_REQUEST: &str = "before_request";
/// The hook called after every final response (variables to set), if a script exports it.
pub const AFTER_RESPONSE: &str = "after_response";

/// A scenario's scripts, loaded and checked: their text, what they export, and the data
/// files `open()` may read.
#[derive(Debug)]
pub struct Scripts {
    files: Vec<ScriptFile>,
    /// The functions the scripts export, sorted.
    exports: Vec<String>,
    /// `open(name)`: (name, text); a data source is found by its name and by its file's name.
    data_files: Arc<[(String, Arc<str>)]>,
    time_limit: Duration,
    /// A `js:` step reads `last_response`: every final response is kept in the user's
    /// variables until the next.
    keeps_last_response: bool,
}

/// One script file.
#[derive(Debug)]
pub struct ScriptFile {
    /// The name messages give (the path as written in the scenario or on the command line).
    pub name: String,
    pub path: PathBuf,
    pub text: String,
}

impl Scripts {
    /// The functions the scripts export, sorted.
    pub fn exports(&self) -> &[String] {
        &self.exports
    }

    pub fn files(&self) -> &[ScriptFile] {
        &self.files
    }

    pub fn time_limit(&self) -> Duration {
        self.time_limit
    }

    fn exports_fn(&self, name: &str) -> bool {
        self.exports
            .binary_search_by(|e| e.as_str().cmp(name))
            .is_ok()
    }

    /// Whether the engine must keep every final response's body (an `after_response` hook,
    /// or a `js:` step that reads `last_response`).
    pub fn reads_bodies(&self) -> bool {
        self.keeps_last_response || self.exports_fn(AFTER_RESPONSE)
    }
}

/// A script call that failed: an exception (with the script's `file:line:column`), a value
/// the caller cannot use, or the time limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptFailure {
    pub timed_out: bool,
    pub message: String,
}

impl ScriptFailure {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            timed_out: false,
            message: message.into(),
        }
    }

    /// What a request that this failure made fail counts as.
    pub fn kind(&self) -> FailureKind {
        if self.timed_out {
            FailureKind::ScriptTimeout
        } else {
            FailureKind::ScriptError
        }
    }
}

impl fmt::Display for ScriptFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ScriptFailure {}

#[cfg(test)]
mod tests;
