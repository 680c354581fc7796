//! What a master sends its workers so that they need only the binary: the scenario's text (or
//! the `--url` list), the `-H` override, the `--var`s, the environment variables the scenario
//! reads (`env("NAME")`, as the master read them), the text of every data file and script,
//! and the bytes of every `multipart` file. A worker loads it
//! the same way `chorus run` loads a file, and before each start keeps of every `unique` data
//! source only the rows the master gave it, so no account is used by two workers.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::data::Mode;
use crate::scenario::{self, LoadOptions, Scenario};

/// The scenario as it travels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    /// The master's name for it (the file name), for messages and reports.
    pub name: String,
    pub source: Source,
    /// `-H/--host` on the master.
    pub host_override: Option<String>,
    /// Every data source's file: (source name, file name, text).
    pub data: Vec<DataFile>,
    /// `--var NAME=VALUE` on the master.
    #[serde(default)]
    pub vars: Vec<(String, String)>,
    /// The environment variables the scenario reads, as the master read them.
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// The files `multipart` parts send (`file:`), as the scenario writes their paths.
    #[serde(default)]
    pub files: Vec<AttachedFile>,
    /// The scenario's scripts (`scripts:` and the master's `--script`s): (name as written,
    /// text).
    #[serde(default)]
    pub scripts: Vec<(String, String)>,
    /// `--trace-headers` on the master, or `trace_headers: true` in its scenario.
    #[serde(default)]
    pub trace_headers: bool,
    /// `--http2` on the master: every request its scenario does not pin speaks HTTP/2.
    #[serde(default)]
    pub http2: bool,
}

/// A `multipart` file part's `file:`: its path as written and its bytes (base64).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttachedFile {
    pub written: String,
    pub base64: String,
}

/// A scenario file, or `chorus run --url`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    Yaml {
        text: String,
    },
    Urls {
        urls: Vec<String>,
        think_ms: Option<u64>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataFile {
    pub source: String,
    pub file_name: String,
    pub text: String,
}

impl Bundle {
    /// Packs the scenario file at `path` and the data files the master loaded for it with
    /// `options`.
    pub fn from_file(
        path: &Path,
        loaded: &Scenario,
        options: &LoadOptions,
    ) -> Result<Bundle, String> {
        use base64::Engine as _;
        let text = std::fs::read_to_string(path)
            .map_err(|err| format!("{}: cannot read the scenario: {err}", path.display()))?;
        let mut data = Vec::with_capacity(loaded.data.len());
        for source in &loaded.data {
            let text = std::fs::read_to_string(&source.file).map_err(|err| {
                format!(
                    "data file {} (source `{}`) cannot be sent to the workers: {err}",
                    source.file.display(),
                    source.name
                )
            })?;
            data.push(DataFile {
                source: source.name.clone(),
                file_name: file_name(&source.file),
                text,
            });
        }
        let files = loaded
            .attached_files()
            .into_iter()
            .map(|(written, bytes)| AttachedFile {
                written,
                base64: base64::engine::general_purpose::STANDARD.encode(bytes),
            })
            .collect();
        Ok(Bundle {
            name: file_name(path),
            source: Source::Yaml { text },
            host_override: options.host_override.clone(),
            data,
            vars: options.vars.clone(),
            env: loaded.env.clone(),
            files,
            scripts: loaded
                .scripts
                .iter()
                .flat_map(|scripts| scripts.files())
                .map(|file| (file.name.clone(), file.text.clone()))
                .collect(),
            trace_headers: loaded.defaults.trace_headers,
            http2: false,
        })
    }

    /// `chorus run --url ...`.
    pub fn from_urls(urls: &[String], think: Option<Duration>) -> Bundle {
        Bundle {
            name: "(--url)".to_owned(),
            source: Source::Urls {
                urls: urls.to_vec(),
                think_ms: think.map(|t| t.as_millis() as u64),
            },
            host_override: None,
            data: Vec::new(),
            vars: Vec::new(),
            env: Vec::new(),
            files: Vec::new(),
            scripts: Vec::new(),
            trace_headers: false,
            http2: false,
        }
    }

    /// What the scenario pin of a worker is compared with.
    pub fn text(&self) -> String {
        match &self.source {
            Source::Yaml { text } => text.clone(),
            Source::Urls { urls, .. } => urls.join("\n"),
        }
    }

    /// Loads the scenario on a worker: the files go to a private temporary folder (removed
    /// afterwards) and load as `chorus run` would load them.
    pub fn load(&self) -> Result<Scenario, String> {
        if let Source::Urls { urls, think_ms } = &self.source {
            let mut parsed = Vec::with_capacity(urls.len());
            for text in urls {
                parsed.push(url::Url::parse(text).map_err(|err| format!("--url {text:?}: {err}"))?);
            }
            let mut scenario = Scenario::from_urls(&parsed, think_ms.map(Duration::from_millis));
            scenario.defaults.trace_headers = self.trace_headers;
            self.settle_http(&mut scenario);
            return Ok(scenario);
        }
        let Source::Yaml { text } = &self.source else {
            return Err("unknown scenario source".to_owned());
        };
        let dir =
            TempDir::new().map_err(|err| format!("cannot create a temporary folder: {err}"))?;
        let mut overrides = Vec::with_capacity(self.data.len());
        for (index, file) in self.data.iter().enumerate() {
            let path = dir.0.join(format!("{index}-{}", safe(&file.file_name)));
            std::fs::write(&path, &file.text)
                .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
            overrides.push((file.source.clone(), path));
        }
        let mut files = Vec::with_capacity(self.files.len());
        for (index, file) in self.files.iter().enumerate() {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&file.base64)
                .map_err(|err| format!("the master's file {:?} is damaged: {err}", file.written))?;
            let path = dir.0.join(format!("file-{index}"));
            std::fs::write(&path, bytes)
                .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
            files.push((file.written.clone(), path));
        }
        let mut script_files = Vec::with_capacity(self.scripts.len());
        for (index, (name, text)) in self.scripts.iter().enumerate() {
            let path = dir.0.join(format!("script-{index}.js"));
            std::fs::write(&path, text)
                .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
            script_files.push((name.clone(), path));
        }
        let path = dir.0.join(safe(&self.name));
        std::fs::write(&path, text)
            .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
        let options = LoadOptions {
            data_overrides: overrides,
            host_override: self.host_override.clone(),
            vars: self.vars.clone(),
            env: self.env.clone(),
            files,
            scripts: Vec::new(),
            script_files,
        };
        let mut loaded = scenario::load(&path, &options).map_err(|err| err.to_string())?;
        loaded.source = PathBuf::from(&self.name);
        loaded.defaults.trace_headers |= self.trace_headers;
        self.settle_http(&mut loaded);
        for source in &mut loaded.data {
            if let Some(file) = self.data.iter().find(|f| f.source == source.name) {
                source.file = PathBuf::from(&file.file_name);
            }
        }
        Ok(loaded)
    }

    /// `--http2` on the master, as `chorus run` applies it after loading.
    fn settle_http(&self, scenario: &mut Scenario) {
        if self.http2 {
            scenario.defaults.http = scenario::HttpVersion::Http2;
        }
    }
}

/// Rows every `unique` source has (the users a whole cluster can run); `None` without such
/// a source.
pub fn unique_rows(scenario: &Scenario) -> Option<u64> {
    scenario
        .data
        .iter()
        .filter(|source| source.mode == Mode::Unique)
        .map(|source| source.rows.len() as u64)
        .min()
}

/// The scenario a worker runs: of every `unique` source, only `rows` (in that order), so its
/// user `k` logs in with row `rows[k]`.
pub fn with_rows(scenario: &Scenario, rows: &[u32]) -> Scenario {
    let mut sliced = scenario.clone();
    for source in &mut sliced.data {
        if source.mode == Mode::Unique {
            source.rows = rows
                .iter()
                .filter_map(|i| source.rows.get(*i as usize).cloned())
                .collect();
        }
    }
    sliced
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// A name that stays inside the temporary folder.
fn safe(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() || cleaned.starts_with('.') {
        format!("f{cleaned}")
    } else {
        cleaned
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> std::io::Result<TempDir> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "chorus-worker-{}-{}-{:08x}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        ));
        std::fs::create_dir(&path)?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_loads_on_a_worker_and_unique_rows_are_sliced() {
        let bundle = Bundle {
            name: "s.yaml".to_owned(),
            source: Source::Yaml {
                text: "host: http://127.0.0.1:1\n\
                       data:\n  users: { file: users.csv, mode: unique }\n  \
                       words: { file: words.csv, mode: cycle }\n\
                       flows:\n  - name: a\n    steps:\n      - get: /{{ users.name }}/{{ words.w }}\n"
                    .to_owned(),
            },
            host_override: None,
            vars: Vec::new(),
            env: Vec::new(),
            files: Vec::new(),
            scripts: Vec::new(),
            trace_headers: false,
            http2: false,
            data: vec![
                DataFile {
                    source: "users".to_owned(),
                    file_name: "users.csv".to_owned(),
                    text: "name\nu0\nu1\nu2\nu3\n".to_owned(),
                },
                DataFile {
                    source: "words".to_owned(),
                    file_name: "../../words.csv".to_owned(),
                    text: "w\nx\ny\n".to_owned(),
                },
            ],
        };
        let scenario = bundle.load().unwrap();
        assert_eq!(scenario.source, PathBuf::from("s.yaml"));
        assert_eq!(unique_rows(&scenario), Some(4));
        let mine = with_rows(&scenario, &[3, 1]);
        assert_eq!(
            mine.data[0].rows,
            vec![vec!["u3".to_owned()], vec!["u1".to_owned()]]
        );
        assert_eq!(mine.data[1].rows.len(), 2, "cycle sources are whole");
        assert_eq!(safe("../x y"), "f.._x_y");
    }

    #[test]
    fn a_broken_scenario_says_where() {
        let bundle = Bundle {
            name: "s.yaml".to_owned(),
            source: Source::Yaml {
                text: "flows: 3\n".to_owned(),
            },
            host_override: None,
            data: Vec::new(),
            vars: Vec::new(),
            env: Vec::new(),
            files: Vec::new(),
            scripts: Vec::new(),
            trace_headers: false,
            http2: false,
        };
        let err = bundle.load().unwrap_err();
        assert!(err.contains("s.yaml"), "{err}");
    }

    #[test]
    fn the_scripts_travel_with_the_scenario() {
        // The master's folder: a scenario with `scripts:` and a --script beside it.
        let master = tempfile::tempdir().unwrap();
        let scenario = master.path().join("s.yaml");
        std::fs::write(
            &scenario,
            "host: http://127.0.0.1:1\nscripts: [lib/sign.js]\nflows:\n  - name: a\n    steps:\n      - get: /{{ js.sign(\"x\") }}/{{ js.twice(2) }}\n",
        )
        .unwrap();
        std::fs::create_dir(master.path().join("lib")).unwrap();
        std::fs::write(
            master.path().join("lib/sign.js"),
            "export function sign(x) { return x + '!'; }\n",
        )
        .unwrap();
        let extra = master.path().join("extra.js");
        std::fs::write(&extra, "export function twice(n) { return n * 2; }\n").unwrap();
        let options = LoadOptions {
            scripts: vec![extra],
            ..LoadOptions::default()
        };
        let loaded = scenario::load(&scenario, &options).unwrap();
        let bundle = Bundle::from_file(&scenario, &loaded, &options).unwrap();
        assert_eq!(bundle.scripts.len(), 2);
        // The worker has neither file.
        drop(master);
        let on_worker = bundle.load().unwrap();
        let scripts = on_worker.scripts.expect("the scripts load on the worker");
        assert_eq!(scripts.exports(), ["sign", "twice"]);
    }

    #[test]
    fn trace_headers_asked_on_the_master_are_sent_on_the_workers() {
        let mut bundle = Bundle::from_urls(&["http://127.0.0.1:9/".to_owned()], None);
        bundle.trace_headers = true;
        let sent = serde_json::to_string(&bundle).unwrap();
        let received: Bundle = serde_json::from_str(&sent).unwrap();
        assert!(received.load().unwrap().defaults.trace_headers);
        // A master that does not know the field sends none: no trace headers.
        let older = sent.replace(",\"trace_headers\":true", "");
        assert_ne!(older, sent);
        let received: Bundle = serde_json::from_str(&older).unwrap();
        assert!(!received.load().unwrap().defaults.trace_headers);
    }

    #[test]
    fn http2_asked_on_the_master_is_spoken_on_the_workers() {
        let mut bundle = Bundle::from_urls(&["http://127.0.0.1:9/".to_owned()], None);
        assert_eq!(
            bundle.load().unwrap().defaults.http,
            scenario::HttpVersion::Auto
        );
        bundle.http2 = true;
        let sent = serde_json::to_string(&bundle).unwrap();
        let received: Bundle = serde_json::from_str(&sent).unwrap();
        assert_eq!(
            received.load().unwrap().defaults.http,
            scenario::HttpVersion::Http2
        );
        // A master that does not know the field sends none: the scenario's own `http:`.
        let older = sent.replace(",\"http2\":true", "");
        assert_ne!(older, sent);
        let received: Bundle = serde_json::from_str(&older).unwrap();
        assert!(!received.http2);
    }
}
