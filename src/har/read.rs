//! The tolerant HAR reader: what Chromium, Firefox, mitmproxy, Charles and Fiddler write, and
//! what a recorder that was killed left behind.
//!
//! ```no_run
//! let (har, warnings) = chorus::har::read::read_file("captures/session.har".as_ref())?;
//! for warning in &warnings {
//!     eprintln!("warning: {warning}");
//! }
//! println!("{} entries", har.log.entries.len());
//! # Ok::<(), chorus::har::read::HarError>(())
//! ```
//!
//! Tolerated: a UTF-8 byte-order mark (Fiddler, Charles), `null` wherever a value may be
//! missing, missing arrays and numbers, numbers written as strings and the reverse (see the
//! types in [`crate::har`]), unknown fields (Chromium's `_initiator`, Firefox's `_securityState`,
//! ...), and a file that ends early: the reader keeps every complete entry, drops the
//! incomplete tail and says so in a [`Warning`]. Anything else is a [`HarError`] naming
//! `file:line:column`, the JSON path and what was expected.
//!
//! Memory and speed: a well-formed file is read by [`super::scan`] (each entry parsed from its
//! own bytes as a byte scanner finds them in the buffered stream), so only the
//! resulting [`Har`] is held; [`read_file_each`] hands each entry on as soon as it is read,
//! so that not even the entries are all held at once. Only a damaged file is read whole (to
//! find where to cut it).

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::repair::{line_column, line_column_bytes, offset_of, repair};
use super::scan;
use super::{Entry, Har, Log};
use crate::files;

/// Something the reader accepted but the caller may want to tell the user about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Why a HAR file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HarError {
    /// The file cannot be opened or read: the reason, said once (`it is a folder ...`).
    #[error("{}: could not read the capture: {reason}", path.display())]
    Io { path: PathBuf, reason: String },
    /// The text is not a HAR document; `json_path` is where in the document (e.g.
    /// `log.entries[3].request.url`), empty for a syntax error before any field.
    #[error("{}:{line}:{column}: {}{message}", source_name, if json_path.is_empty() || json_path == "." { String::new() } else { format!("{json_path}: ") })]
    Invalid {
        source_name: String,
        line: usize,
        column: usize,
        json_path: String,
        message: String,
    },
}

/// The largest capture read: memory is a few times the file (docs/convert.md), and a bigger
/// one is better cut with `chorus record --include` or split by session.
pub const MAX_HAR_BYTES: u64 = 2 << 30;

/// What [`read_file_each`] hands the entries to, in the file's order.
pub trait EntrySink {
    /// The next entry.
    fn entry(&mut self, entry: Entry);
    /// The file turned out to be damaged after some entries were handed over: it is read
    /// again, repaired, from its first entry. Forget the entries handed over so far.
    fn restart(&mut self);
}

/// Collects the entries, for a [`Har`] whole.
struct Collect(Vec<Entry>);

impl EntrySink for Collect {
    fn entry(&mut self, entry: Entry) {
        self.0.push(entry);
    }

    fn restart(&mut self) {
        self.0.clear();
    }
}

/// Hands the entries to `sink` but for the first `skip`, which it already has.
struct Skip<'a> {
    sink: &'a mut dyn EntrySink,
    skip: usize,
}

impl EntrySink for Skip<'_> {
    fn entry(&mut self, entry: Entry) {
        if self.skip > 0 {
            self.skip -= 1;
        } else {
            self.sink.entry(entry);
        }
    }

    fn restart(&mut self) {
        self.skip = 0;
        self.sink.restart();
    }
}

/// Lets every entry go: the sink of a second reading that only looks for where the first
/// failed.
struct Discard;

impl EntrySink for Discard {
    fn entry(&mut self, _: Entry) {}

    fn restart(&mut self) {}
}

/// Reads a HAR file. See the module documentation for what is tolerated.
pub fn read_file(path: &Path) -> Result<(Har, Vec<Warning>), HarError> {
    let mut entries = Collect(Vec::new());
    let (mut har, warnings) = read_file_each(path, &mut entries)?;
    har.log.entries = entries.0;
    Ok((har, warnings))
}

/// Reads a HAR file, handing each entry to `sink` as soon as it is read; the [`Har`] returned
/// has no entries. For a capture too large to hold twice: whoever keeps less of an entry than
/// [`Entry`] does never holds all of them in full.
pub fn read_file_each(
    path: &Path,
    sink: &mut dyn EntrySink,
) -> Result<(Har, Vec<Warning>), HarError> {
    let io_error = |reason: String| HarError::Io {
        path: path.to_owned(),
        reason,
    };
    let name = path.display().to_string();
    let file = files::open_input(path, MAX_HAR_BYTES, "capture")
        .map_err(|err| io_error(err.to_string()))?;
    let regular = file.metadata().is_ok_and(|m| m.is_file());
    if !regular {
        // A pipe cannot be read twice: take it whole (up to the limit), then read the text.
        let bytes = files::read_limited(path, MAX_HAR_BYTES, "capture")
            .map_err(|err| io_error(err.to_string()))?;
        let text = utf8(bytes, &name)?;
        return read_str_each(&text, &name, sink);
    }
    let buffered_or_error = |file: File| {
        buffered(file, &name).map_err(|err| match err {
            Ok(invalid) => invalid,
            Err(io) => io_error(files::os_error(&io)),
        })
    };
    // Opened again for each further reading.
    let reopened = || {
        files::open_input(path, MAX_HAR_BYTES, "capture")
            .map_err(|err| io_error(err.to_string()))
            .and_then(buffered_or_error)
    };
    let reader = buffered_or_error(file)?;
    let mut handed = 0;
    if let Ok(har) = scan::read_entries(reader, sink, &mut handed) {
        return Ok(finish(har, Vec::new()));
    }
    // Read again the careful way, for its error or its repair; the entries the scan handed
    // over are not handed over twice.
    let sink = &mut Skip { sink, skip: handed };
    let reader = reopened()?;
    let mut deserializer = serde_json::Deserializer::from_reader(reader);
    let err = match parse(&mut deserializer, sink, false) {
        Ok((har, _)) => return Ok(finish(har, Vec::new())),
        Err(err) => err,
    };
    if err.inner().is_io() {
        return Err(io_error(
            err.inner()
                .io_error_kind()
                .map(|kind| files::os_error(&io::Error::from(kind)))
                .unwrap_or_else(|| err.inner().to_string()),
        ));
    }
    // Read again, the JSON path tracked, for the message to name the field (its entries are
    // not handed over twice): tracking every value of a large capture costs a fifth of the
    // reading, and a failure is rare.
    let reader = reopened()?;
    let mut deserializer = serde_json::Deserializer::from_reader(reader);
    let err = match parse(&mut deserializer, &mut Discard, true) {
        Err(tracked) if !tracked.inner().is_io() => tracked,
        // The file changed in between: the first reading's error, without its path.
        _ => err,
    };
    if is_damage(err.inner()) {
        sink.restart();
        let bytes = files::read_limited(path, MAX_HAR_BYTES, "capture")
            .map_err(|err| io_error(err.to_string()))?;
        let text = utf8(bytes, &name)?;
        let start = if text.starts_with('\u{feff}') { 3 } else { 0 };
        return repair_and_read(&text[start..], &name, &err, sink);
    }
    Err(invalid(&name, &err))
}

/// A file's reader past its byte-order mark, its first bytes checked to look like a HAR.
fn buffered(file: File, source_name: &str) -> Result<BufReader<File>, Result<HarError, io::Error>> {
    let mut reader = BufReader::with_capacity(1 << 16, file);
    skip_bom(&mut reader).map_err(Err)?;
    starts_like_har(&mut reader, source_name)?;
    Ok(reader)
}

/// Reads HAR text held in memory; `source_name` is what error messages call it.
pub fn read_str(text: &str, source_name: &str) -> Result<(Har, Vec<Warning>), HarError> {
    let mut entries = Collect(Vec::new());
    let (mut har, warnings) = read_str_each(text, source_name, &mut entries)?;
    har.log.entries = entries.0;
    Ok((har, warnings))
}

/// [`read_str`], handing each entry to `sink` as [`read_file_each`] does.
fn read_str_each(
    text: &str,
    source_name: &str,
    sink: &mut dyn EntrySink,
) -> Result<(Har, Vec<Warning>), HarError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if let Some(refusal) = not_an_object(text.as_bytes(), source_name) {
        return Err(refusal);
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let first = parse(&mut deserializer, sink, false);
    let err = match first {
        Ok((har, _)) => return Ok(finish(har, Vec::new())),
        Err(err) => err,
    };
    // Again with the JSON path tracked, for the message (as `read_file_each` does).
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let err = parse(&mut deserializer, &mut Discard, true)
        .err()
        .unwrap_or(err);
    if is_damage(err.inner()) {
        sink.restart();
        return repair_and_read(text, source_name, &err, sink);
    }
    Err(invalid(source_name, &err))
}

/// The bytes as text, or where the first byte that is not UTF-8 is.
fn utf8(bytes: Vec<u8>, source_name: &str) -> Result<String, HarError> {
    String::from_utf8(bytes).map_err(|err| {
        let at = err.utf8_error().valid_up_to();
        let bytes = err.as_bytes();
        let (line, column) = line_column_bytes(bytes, at);
        HarError::Invalid {
            source_name: source_name.to_owned(),
            line,
            column,
            json_path: String::new(),
            message: format!(
                "not UTF-8 text (byte 0x{:02x}); a HAR capture is UTF-8 JSON",
                bytes[at]
            ),
        }
    })
}

/// A HAR document is a JSON object: anything else is refused at its first byte, before
/// reading on (a device or a pipe of random bytes never ends).
fn not_an_object(start: &[u8], source_name: &str) -> Option<HarError> {
    let Some(at) = start.iter().position(|b| !b.is_ascii_whitespace()) else {
        return Some(empty(source_name));
    };
    if start[at] == b'{' {
        return None;
    }
    let (line, column) = line_column_bytes(start, at);
    let found = match start[at] {
        b if b.is_ascii_graphic() => format!("`{}`", b as char),
        0xFF | 0xFE => format!("byte 0x{:02x} (UTF-16? save it as UTF-8)", start[at]),
        b => format!("byte 0x{b:02x}"),
    };
    Some(HarError::Invalid {
        source_name: source_name.to_owned(),
        line,
        column,
        json_path: String::new(),
        message: format!(
            "not a HAR capture: a HAR file is a JSON object, starting with `{{`; found {found}"
        ),
    })
}

fn empty(source_name: &str) -> HarError {
    HarError::Invalid {
        source_name: source_name.to_owned(),
        line: 1,
        column: 1,
        json_path: String::new(),
        message: "the capture is empty: a HAR file is a JSON object, starting with `{`".to_owned(),
    }
}

/// Looks at the first bytes that are not whitespace (see [`not_an_object`]), leaving them
/// in the reader.
fn starts_like_har<R: Read>(
    reader: &mut BufReader<R>,
    source_name: &str,
) -> Result<(), Result<HarError, io::Error>> {
    let mut lines = 0usize;
    let mut column = 0usize;
    loop {
        let buffer = reader.fill_buf().map_err(Err)?;
        if buffer.is_empty() {
            return Err(Ok(empty(source_name)));
        }
        let Some(at) = buffer.iter().position(|b| !b.is_ascii_whitespace()) else {
            for byte in buffer.iter() {
                if *byte == b'\n' {
                    lines += 1;
                    column = 0;
                } else {
                    column += 1;
                }
            }
            let length = buffer.len();
            reader.consume(length);
            continue;
        };
        return match not_an_object(&buffer[at..], source_name) {
            None => Ok(()),
            Some(HarError::Invalid {
                source_name,
                message,
                ..
            }) => {
                let (line, col) = line_column_bytes(&buffer[..at], at);
                Err(Ok(HarError::Invalid {
                    source_name,
                    line: lines + line,
                    column: if line == 1 { column + col } else { col },
                    json_path: String::new(),
                    message,
                }))
            }
            Some(other) => Err(Ok(other)),
        };
    }
}

/// A deserialization failure and where in the document it happened.
struct PathError {
    path: String,
    inner: serde_json::Error,
}

impl PathError {
    fn inner(&self) -> &serde_json::Error {
        &self.inner
    }
}

impl From<serde_path_to_error::Error<serde_json::Error>> for PathError {
    fn from(err: serde_path_to_error::Error<serde_json::Error>) -> Self {
        PathError {
            path: err.path().to_string(),
            inner: err.into_inner(),
        }
    }
}

fn plain(err: serde_json::Error) -> PathError {
    PathError {
        path: String::new(),
        inner: err,
    }
}

/// The document, its entries handed to `sink`, and how many there were; `tracked`: with the
/// JSON path of a failure (slower).
fn parse<'de, R: serde_json::de::Read<'de>>(
    deserializer: &mut serde_json::Deserializer<R>,
    sink: &mut dyn EntrySink,
    tracked: bool,
) -> Result<(Har, usize), PathError> {
    let mut handed = 0;
    let document = Document {
        sink,
        handed: &mut handed,
    };
    let har = if tracked {
        let mut track = serde_path_to_error::Track::new();
        document
            .deserialize(serde_path_to_error::Deserializer::new(
                &mut *deserializer,
                &mut track,
            ))
            .map_err(|inner| PathError {
                path: track.path().to_string(),
                inner,
            })?
    } else {
        document.deserialize(&mut *deserializer).map_err(plain)?
    };
    deserializer.end().map_err(plain)?;
    Ok((har, handed))
}

/// The document outside its entries ([`super::scan`]), or `None` when it does not read.
pub(super) fn parse_skeleton(skeleton: &[u8]) -> Option<Har> {
    let mut deserializer = serde_json::Deserializer::from_slice(skeleton);
    parse(&mut deserializer, &mut Discard, false)
        .ok()
        .map(|(har, _)| har)
}

/// `{"log": {...}}` read as [`Har`]'s derived reader reads it, but for `log.entries`, whose
/// entries go to a sink one by one.
struct Document<'a> {
    sink: &'a mut dyn EntrySink,
    handed: &'a mut usize,
}

impl<'de> DeserializeSeed<'de> for Document<'_> {
    type Value = Har;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Har, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Document<'_> {
    type Value = Har;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("struct Har")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Har, A::Error> {
        let mut log = None;
        let Document { sink, handed } = self;
        while let Some(key) = map.next_key::<String>()? {
            if key == "log" {
                log = Some(map.next_value_seed(LogSeed {
                    sink: &mut *sink,
                    handed: &mut *handed,
                })?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        let log = log.ok_or_else(|| serde::de::Error::missing_field("log"))?;
        Ok(Har { log })
    }
}

/// The `log` object: each field as [`Log`] reads it, `entries` to the sink.
struct LogSeed<'a> {
    sink: &'a mut dyn EntrySink,
    handed: &'a mut usize,
}

/// `version`, read as [`Log`] reads it.
#[derive(serde::Deserialize)]
struct Version(#[serde(deserialize_with = "super::string")] String);

impl<'de> DeserializeSeed<'de> for LogSeed<'_> {
    type Value = Log;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Log, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for LogSeed<'_> {
    type Value = Log;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("struct Log")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Log, A::Error> {
        let mut log = Log {
            version: super::default_version(),
            creator: Default::default(),
            browser: None,
            pages: Vec::new(),
            entries: Vec::new(),
            comment: None,
            tunnelled_hosts: Vec::new(),
        };
        // `null` reads as the default, as `Log`'s `or_default` fields do.
        fn or_default<'de, A: MapAccess<'de>, T: serde::Deserialize<'de> + Default>(
            map: &mut A,
        ) -> Result<T, A::Error> {
            Ok(map.next_value::<Option<T>>()?.unwrap_or_default())
        }
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "version" => log.version = map.next_value::<Version>()?.0,
                "creator" => log.creator = or_default(&mut map)?,
                "browser" => log.browser = or_default(&mut map)?,
                "pages" => log.pages = or_default(&mut map)?,
                "comment" => log.comment = or_default(&mut map)?,
                "_tunnelledHosts" => log.tunnelled_hosts = or_default(&mut map)?,
                "entries" => map.next_value_seed(Entries {
                    sink: &mut *self.sink,
                    handed: &mut *self.handed,
                })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(log)
    }
}

/// `log.entries`, `null` or a list, each entry handed to the sink as it is read.
struct Entries<'a> {
    sink: &'a mut dyn EntrySink,
    handed: &'a mut usize,
}

impl<'de> DeserializeSeed<'de> for Entries<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for Entries<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(entry) = seq.next_element::<Entry>()? {
            self.sink.entry(entry);
            *self.handed += 1;
        }
        Ok(())
    }
}

/// A syntax error or an early end: what a killed writer leaves, worth an attempt at repair.
fn is_damage(err: &serde_json::Error) -> bool {
    matches!(
        err.classify(),
        serde_json::error::Category::Eof | serde_json::error::Category::Syntax
    )
}

fn invalid(source_name: &str, err: &PathError) -> HarError {
    let inner = err.inner();
    let mut message = inner.to_string();
    // serde_json appends " at line L column C"; the location leads the message instead.
    if let Some(at) = message.rfind(" at line ") {
        message.truncate(at);
    }
    HarError::Invalid {
        source_name: source_name.to_owned(),
        line: inner.line(),
        column: inner.column(),
        json_path: err.path.clone(),
        message,
    }
}

fn skip_bom<R: Read>(reader: &mut BufReader<R>) -> io::Result<()> {
    let buffer = reader.fill_buf()?;
    if buffer.starts_with(&[0xEF, 0xBB, 0xBF]) {
        reader.consume(3);
    }
    Ok(())
}

/// Damage followed by more than this many bytes is not a file that ends early.
const MAX_TAIL_AFTER_DAMAGE: usize = 64;

fn repair_and_read(
    text: &str,
    source_name: &str,
    original: &PathError,
    sink: &mut dyn EntrySink,
) -> Result<(Har, Vec<Warning>), HarError> {
    // Repair is for a file that ends early (a recorder stopped abruptly). A mistake with the
    // rest of the capture after it is damage: say where, and convert nothing.
    let inner = original.inner();
    if inner.classify() != serde_json::error::Category::Eof {
        let at = offset_of(text, inner.line(), inner.column());
        if text.len().saturating_sub(at) > MAX_TAIL_AFTER_DAMAGE {
            let mut error = invalid(source_name, original);
            if let HarError::Invalid { message, .. } = &mut error {
                message.push_str(&format!(
                    "; the capture is damaged here ({} bytes follow), not cut short",
                    text.len() - at
                ));
            }
            return Err(error);
        }
    }
    let Some(repaired) = repair(text) else {
        return Err(invalid(source_name, original));
    };
    let mut deserializer = serde_json::Deserializer::from_str(&repaired.text);
    let (har, entries) =
        parse(&mut deserializer, sink, false).map_err(|_| invalid(source_name, original))?;
    let (line, column) = line_column(text, repaired.cut);
    let warning = Warning {
        message: format!(
            "{source_name}:{line}:{column}: the file ends early or is damaged here \
             (a recorder that was stopped abruptly leaves this); kept the {} complete entries \
             before it and dropped {} bytes after",
            entries,
            text.len() - repaired.cut
        ),
    };
    Ok(finish(har, vec![warning]))
}

fn finish(har: Har, mut warnings: Vec<Warning>) -> (Har, Vec<Warning>) {
    if !matches!(har.log.version.as_str(), "1.1" | "1.2" | "") {
        warnings.push(Warning {
            message: format!(
                "HAR version {:?}: read as 1.2, which may not be right",
                har.log.version
            ),
        });
    }
    (har, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTRY: &str = r#"{"startedDateTime":"2026-01-01T00:00:00.000Z","time":1,"request":{"method":"GET","url":"http://a/","httpVersion":"HTTP/1.1","cookies":[],"headers":[],"queryString":[],"headersSize":-1,"bodySize":0},"response":{"status":200,"statusText":"OK","httpVersion":"HTTP/1.1","cookies":[],"headers":[],"content":{"size":0,"mimeType":""},"redirectURL":"","headersSize":-1,"bodySize":0},"cache":{},"timings":{"send":0,"wait":1,"receive":0}}"#;

    fn document(entries: usize) -> String {
        let list = vec![ENTRY; entries].join(",\n");
        format!(
            "{{\"log\":{{\"version\":\"1.2\",\"creator\":{{\"name\":\"t\",\"version\":\"1\"}},\"entries\":[\n{list}\n]}}}}"
        )
    }

    #[test]
    fn every_truncation_of_a_document_keeps_the_complete_entries() {
        let full = document(3);
        let entry_ends: Vec<usize> = full
            .match_indices("\"receive\":0}}")
            .map(|(i, m)| i + m.len())
            .collect();
        for cut in 60..full.len() {
            let (har, warnings) =
                read_str(&full[..cut], "t.har").unwrap_or_else(|err| panic!("cut at {cut}: {err}"));
            let complete = entry_ends.iter().filter(|end| **end <= cut).count();
            assert_eq!(har.log.entries.len(), complete, "cut at {cut}");
            assert_eq!(warnings.len(), 1, "cut at {cut}");
        }
    }

    /// Records what a streaming read hands over.
    #[derive(Default)]
    struct Seen {
        urls: Vec<String>,
        restarts: usize,
    }

    impl EntrySink for Seen {
        fn entry(&mut self, entry: Entry) {
            self.urls.push(entry.request.url);
        }

        fn restart(&mut self) {
            self.urls.clear();
            self.restarts += 1;
        }
    }

    #[test]
    fn entries_are_handed_over_one_by_one_and_again_after_a_repair() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.har");
        std::fs::write(&path, document(3)).unwrap();
        let mut seen = Seen::default();
        let (har, warnings) = read_file_each(&path, &mut seen).unwrap();
        assert!(har.log.entries.is_empty() && warnings.is_empty());
        assert_eq!((seen.urls.len(), seen.restarts), (3, 0));
        assert_eq!(har.log.creator.name, "t");

        let full = document(3);
        std::fs::write(&path, &full[..full.len() - 40]).unwrap();
        let mut seen = Seen::default();
        let (_, warnings) = read_file_each(&path, &mut seen).unwrap();
        assert_eq!((seen.urls.len(), seen.restarts), (2, 1));
        assert!(
            warnings[0].message.contains("kept the 2 complete entries"),
            "{warnings:?}"
        );
    }

    #[test]
    fn a_half_overwritten_closing_is_repaired() {
        // The writer seeks back over `\n]}}` and was killed after writing ",\n" of the next entry.
        let full = document(2);
        let damaged = format!("{},\n}}}}", &full[..full.len() - 4]);
        let (har, warnings) = read_str(&damaged, "t.har").unwrap();
        assert_eq!(har.log.entries.len(), 2);
        assert!(warnings[0].message.contains("dropped"), "{warnings:?}");
    }

    #[test]
    fn a_wrong_type_names_line_column_and_path() {
        let text = document(2).replacen("\"status\":200", "\"status\":\"two hundred\"", 2);
        let err = read_str(&text, "t.har").unwrap_err().to_string();
        assert!(
            err.starts_with("t.har:2:") && err.contains("log.entries[0].response.status: "),
            "{err}"
        );
        assert!(err.contains("expected a number"), "{err}");
    }

    #[test]
    fn a_missing_url_is_an_error_with_its_path() {
        let text = document(1).replace("\"url\":\"http://a/\",", "");
        let err = read_str(&text, "t.har").unwrap_err().to_string();
        assert!(
            err.contains("log.entries[0].request: missing field `url`"),
            "{err}"
        );
    }

    #[test]
    fn not_json_at_all_is_an_error() {
        let err = read_str("<html>", "t.har").unwrap_err().to_string();
        assert_eq!(
            err,
            "t.har:1:1: not a HAR capture: a HAR file is a JSON object, starting with `{`; found `<`"
        );
        let err = read_str("\n\n  [1, 2]", "t.har").unwrap_err().to_string();
        assert!(err.starts_with("t.har:3:3: not a HAR capture"), "{err}");
        let err = read_str(" \n ", "t.har").unwrap_err().to_string();
        assert_eq!(
            err,
            "t.har:1:1: the capture is empty: a HAR file is a JSON object, starting with `{`"
        );
    }

    #[test]
    fn damage_in_the_middle_is_an_error_not_an_early_end() {
        let full = document(6);
        // One character of `"method"` removed in the second entry.
        let second = full.match_indices("\"method\"").nth(1).unwrap().0;
        let damaged = format!("{}{}", &full[..second], &full[second + 1..]);
        let err = read_str(&damaged, "t.har").unwrap_err().to_string();
        assert!(err.starts_with("t.har:3:"), "{err}");
        assert!(
            err.ends_with("; the capture is damaged here (2085 bytes follow), not cut short"),
            "{err}"
        );
    }
}
