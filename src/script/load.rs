//! Loading scripts with their scenario: reading the files, evaluating them once to find
//! syntax errors (with `file:line:column`) and what they export, and checking each `js:`
//! expression and `js.name` a template calls, before any traffic.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::engine::{Engine, compile_call};
use super::{ScriptFile, Scripts};

/// The most text one script may have.
const MAX_SCRIPT_BYTES: u64 = 16 << 20;

/// Words that may stand before `(` in an expression without being a call.
const KEYWORDS: &[&str] = &[
    "if",
    "for",
    "while",
    "switch",
    "catch",
    "function",
    "return",
    "typeof",
    "void",
    "new",
    "delete",
    "in",
    "of",
    "instanceof",
    "await",
    "yield",
    "do",
    "else",
    "case",
];

/// A script problem found at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoadProblem {
    /// The script, when the problem is in one (else: the scenario's place that named it).
    pub(crate) file: Option<PathBuf>,
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) message: String,
}

/// Scripts being loaded with a scenario: the engine that checked them stays until loading
/// ends, to check the `js:` expressions too.
pub(crate) struct Loading {
    files: Vec<ScriptFile>,
    exports: Vec<String>,
    data_files: Arc<[(String, Arc<str>)]>,
    time_limit: Duration,
    keeps_last_response: bool,
    engine: Engine,
}

impl Loading {
    /// Reads and evaluates `files` (name as written, where to read it). `data_files`: what
    /// `open(name)` gives.
    pub(crate) fn start(
        files: Vec<(String, PathBuf)>,
        data_files: Vec<(String, Arc<str>)>,
        time_limit: Duration,
    ) -> Result<Loading, LoadProblem> {
        let mut read = Vec::with_capacity(files.len());
        for (name, path) in files {
            let bytes =
                crate::files::read_limited(&path, MAX_SCRIPT_BYTES, "script").map_err(|err| {
                    LoadProblem {
                        file: None,
                        line: 0,
                        column: 0,
                        message: format!("cannot read the script {name}: {err}"),
                    }
                })?;
            let text = String::from_utf8(bytes).map_err(|_| LoadProblem {
                file: Some(path.clone()),
                line: 0,
                column: 0,
                message: "not UTF-8 text; save the script as UTF-8".to_owned(),
            })?;
            if read.iter().any(|file: &ScriptFile| file.name == name) {
                continue;
            }
            read.push(ScriptFile { name, path, text });
        }
        let data_files: Arc<[(String, Arc<str>)]> = data_files.into();
        let (engine, exports) = Engine::new(&read, &data_files, time_limit).map_err(|problem| {
            let file = problem.file.map(|index| read[index].path.clone());
            LoadProblem {
                file,
                line: problem.line,
                column: problem.column,
                message: problem.message,
            }
        })?;
        Ok(Loading {
            files: read,
            exports,
            data_files,
            time_limit,
            keeps_last_response: false,
            engine,
        })
    }

    /// The functions the scripts export, sorted.
    pub(crate) fn exports(&self) -> &[String] {
        &self.exports
    }

    /// Whether the scripts export `name`.
    pub(crate) fn exports_fn(&self, name: &str) -> bool {
        self.exports
            .binary_search_by(|e| e.as_str().cmp(name))
            .is_ok()
    }

    /// Whether a script has `word` as a whole word (a variable it may set).
    pub(crate) fn mentions(&self, word: &str) -> bool {
        let part = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$';
        self.files.iter().any(|file| {
            file.text.match_indices(word).any(|(at, _)| {
                let before = file.text[..at].chars().next_back();
                let after = file.text[at + word.len()..].chars().next();
                !before.is_some_and(part) && !after.is_some_and(part)
            })
        })
    }

    /// Checks a `js:` expression: it compiles, and each function it calls is exported (or is
    /// JavaScript's own: `String(..)`, `parseInt(..)`). `step`: a step, whose
    /// `last_response` is the previous request's (kept from then on).
    pub(crate) fn check_call(&mut self, source: &str, step: bool) -> Result<super::Call, String> {
        let exports = &self.exports;
        let problem = self.engine.with(|ctx, _| {
            if let Err(err) = compile_call(ctx, source) {
                let caught = rquickjs::CatchResultExt::catch(Err::<(), _>(err), ctx);
                let message = match caught {
                    Err(rquickjs::CaughtError::Exception(exception)) => {
                        exception.message().unwrap_or_default()
                    }
                    Err(other) => other.to_string(),
                    Ok(()) => String::new(),
                };
                return Some(format!("not a JavaScript expression: {message}"));
            }
            for name in called_names(source) {
                if exports.contains(&name) {
                    continue;
                }
                let builtin: bool = ctx
                    .eval(format!("typeof globalThis[{name:?}] === \"function\""))
                    .unwrap_or(false);
                if !builtin {
                    return Some(unknown_function(&name, exports));
                }
            }
            None
        });
        if let Some(problem) = problem {
            return Err(problem);
        }
        if step && source.contains("last_response") {
            self.keeps_last_response = true;
        }
        Ok(super::Call::new(source))
    }

    /// The loaded scripts, for the scenario.
    pub(crate) fn finish(self) -> Arc<Scripts> {
        Arc::new(Scripts {
            files: self.files,
            exports: self.exports,
            data_files: self.data_files,
            time_limit: self.time_limit,
            keeps_last_response: self.keeps_last_response,
        })
    }
}

/// The message for a call of a function no script exports.
pub(crate) fn unknown_function(name: &str, exports: &[String]) -> String {
    if exports.is_empty() {
        format!("`{name}` is not a function the scripts export (they export none)")
    } else {
        format!(
            "`{name}` is not a function the scripts export (they export: {})",
            exports.join(", ")
        )
    }
}

/// The names an expression calls directly (`name(` not after a `.`), and `js.name(`.
pub(crate) fn called_names(source: &str) -> Vec<String> {
    let bytes = source.as_bytes();
    let mut names = Vec::new();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let c = bytes[i];
        if let Some(q) = quote {
            if c == b'\\' {
                i += 2;
                continue;
            }
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        if matches!(c, b'"' | b'\'' | b'`') {
            quote = Some(c);
            i += 1;
            continue;
        }
        let starts = c.is_ascii_alphabetic() || c == b'_' || c == b'$';
        let after_word = i > 0 && {
            let p = bytes[i - 1];
            p.is_ascii_alphanumeric() || p == b'_' || p == b'$'
        };
        if !starts || after_word {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len()
            && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'$')
        {
            i += 1;
        }
        let word = &source[start..i];
        let before = source[..start].trim_end();
        let rest = source[i..].trim_start();
        if !rest.starts_with('(') || KEYWORDS.contains(&word) {
            continue;
        }
        if let Some(object) = before.strip_suffix('.') {
            // `js.name(`: an export; any other `a.b(` is a method.
            let object = object.trim_end();
            let direct = object.ends_with("js")
                && !object[..object.len() - 2].ends_with(|c: char| {
                    c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '.'
                });
            if direct {
                names.push(word.to_owned());
            }
            continue;
        }
        names.push(word.to_owned());
    }
    names
}

#[cfg(test)]
mod tests {
    use super::called_names;

    #[test]
    fn called_names_are_direct_calls_and_js_members() {
        assert_eq!(
            called_names("computeBasket(vars, last_response.json.items.map(x => x.id))"),
            ["computeBasket"]
        );
        assert_eq!(called_names("js.sign(a) + String(b)"), ["sign", "String"]);
        assert_eq!(called_names("'f(x)' + ok(\"g(\")"), ["ok"]);
        assert_eq!(
            called_names("typeof (x) === 'y' && a.b(c)"),
            Vec::<String>::new()
        );
    }
}
