//! The fast reading of a well-formed capture: a byte scanner finds each entry of
//! `log.entries` in the buffered stream, and the entry is parsed from its own bytes
//! (`serde_json::from_slice`, much faster than parsing from a reader byte by byte); the rest
//! of the document (the skeleton, with `log.entries` emptied) is parsed at the end.
//!
//! The scanner only tells structure (strings, escapes, depth, the keys `log` and `entries`,
//! the commas between entries); the JSON itself is judged by serde_json, on the entries and
//! on the skeleton, which together are the whole document. Anything it does not expect (a
//! key spelled with escapes, an entry that is not an object, a stray byte between entries,
//! deep nesting, a failure of either parse, an I/O error) ends the fast reading with
//! [`Unusual`]: the caller then reads the file the careful way (not handing over again the
//! entries already handed), which finds the error and names its place exactly as before, or
//! repairs a capture that ends early.

use std::io::BufRead;

use super::Har;
use super::read::EntrySink;

/// The fast reading did not finish: read the file the careful way.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Unusual;

/// Deeper than this the scanner gives up: serde_json's own limit (128) counts from the top of
/// the document, which a parse of one entry's bytes would not see.
const MAX_DEPTH: usize = 100;

/// An entry larger than this leaves its buffer's room behind when the next one is smaller.
const KEPT_ENTRY_ROOM: usize = 1 << 20;

/// Reads the document from `reader` (past its byte-order mark), each entry handed to `sink`.
/// On [`Unusual`], some entries may have been handed over already.
/// `handed` counts the entries handed over.
pub(super) fn read_entries<R: BufRead>(
    mut reader: R,
    sink: &mut dyn EntrySink,
    handed: &mut usize,
) -> Result<Har, Unusual> {
    let mut scanner = Scanner::default();
    let mut skeleton = Vec::new();
    let mut entry = Vec::new();
    loop {
        let chunk = reader.fill_buf().map_err(|_| Unusual)?;
        if chunk.is_empty() {
            break;
        }
        let length = chunk.len();
        scanner.feed(chunk, &mut |piece| match piece {
            Piece::Skeleton(bytes) => {
                skeleton.extend_from_slice(bytes);
                Ok(())
            }
            Piece::Entry { bytes, first, last } => {
                if first && last {
                    return hand(bytes, sink, handed);
                }
                entry.extend_from_slice(bytes);
                if last {
                    hand(&entry, sink, handed)?;
                    entry.clear();
                    if entry.capacity() > KEPT_ENTRY_ROOM {
                        entry = Vec::new();
                    }
                }
                Ok(())
            }
        })?;
        reader.consume(length);
    }
    if !scanner.is_done() {
        return Err(Unusual);
    }
    super::read::parse_skeleton(&skeleton).ok_or(Unusual)
}

fn hand(bytes: &[u8], sink: &mut dyn EntrySink, handed: &mut usize) -> Result<(), Unusual> {
    let entry = serde_json::from_slice(bytes).map_err(|_| Unusual)?;
    sink.entry(entry);
    *handed += 1;
    Ok(())
}

/// A run of a chunk's bytes, as the scanner tells them apart.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Piece<'a> {
    /// Part of the document outside the entries.
    Skeleton(&'a [u8]),
    /// Part of one entry: `first` its first bytes, `last` its last ones.
    Entry {
        bytes: &'a [u8],
        first: bool,
        last: bool,
    },
}

/// Which of the keys that matter a key at depth 1 or 2 is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Key {
    #[default]
    Other,
    Log,
    Entries,
}

/// Where in `log.entries` the scanner is, between entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Between {
    /// Just after `[`: an entry or `]`.
    Opened,
    /// After an entry: `,` or `]`.
    AfterEntry,
    /// After `,`: an entry.
    AfterComma,
}

/// The scanner's state between chunks.
#[derive(Debug, Default)]
pub(super) struct Scanner {
    /// Open containers.
    depth: usize,
    /// Whether the containers at depth 1 and 2 are objects.
    object: [bool; 3],
    in_string: bool,
    /// The last byte was a backslash inside a string.
    escaped: bool,
    /// In an object at depth 1 or 2, the next string is a key.
    expect_key: bool,
    /// A key at depth 1 or 2 is being read: its bytes so far (`None` when too long to matter).
    key: Option<Option<Vec<u8>>>,
    /// The last key read at depth 1 and 2.
    last_key: [Key; 3],
    /// A `:` followed the last key at this depth; the value is next.
    value_next: bool,
    /// The object at depth 2 is a value of the top object's `log`.
    in_log: bool,
    /// Inside `log.entries` (the list at depth 3), between entries.
    between: Option<Between>,
    /// Inside an entry (which then holds depth 4 and deeper).
    in_entry: bool,
    /// The top object has closed.
    done: bool,
}

impl Scanner {
    /// The whole document was seen: its top object closed.
    pub(super) fn is_done(&self) -> bool {
        self.done && !self.in_string
    }

    /// Tells the bytes of `chunk` apart, handing each run to `out` in order.
    pub(super) fn feed(
        &mut self,
        chunk: &[u8],
        out: &mut dyn FnMut(Piece<'_>) -> Result<(), Unusual>,
    ) -> Result<(), Unusual> {
        // Where the run not yet handed over starts; `entry_first`: that run begins an entry.
        let mut start = 0;
        let mut entry_first = false;
        let mut i = 0;
        while i < chunk.len() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                    i += 1;
                    continue;
                }
                let Some(found) = memchr::memchr2(b'"', b'\\', &chunk[i..]) else {
                    self.key_bytes(&chunk[i..]);
                    break;
                };
                self.key_bytes(&chunk[i..i + found]);
                i += found;
                if chunk[i] == b'\\' {
                    if self.key.is_some() {
                        // A key spelled with escapes: serde_json reads it decoded.
                        return Err(Unusual);
                    }
                    self.escaped = true;
                } else {
                    self.in_string = false;
                    self.string_ended();
                }
                i += 1;
                continue;
            }
            let byte = chunk[i];
            if self.in_entry {
                match byte {
                    b'"' => self.in_string = true,
                    b'{' | b'[' => {
                        self.depth += 1;
                        if self.depth > MAX_DEPTH {
                            return Err(Unusual);
                        }
                    }
                    b'}' | b']' => {
                        self.depth -= 1;
                        if self.depth == 3 {
                            self.in_entry = false;
                            self.between = Some(Between::AfterEntry);
                            out(Piece::Entry {
                                bytes: &chunk[start..=i],
                                first: entry_first,
                                last: true,
                            })?;
                            start = i + 1;
                            entry_first = false;
                        }
                    }
                    _ => {}
                }
                i += 1;
                continue;
            }
            if let Some(between) = self.between {
                match (byte, between) {
                    (b' ' | b'\t' | b'\n' | b'\r', _) => {}
                    (b'{', Between::Opened | Between::AfterComma) => {
                        if start < i {
                            out(Piece::Skeleton(&chunk[start..i]))?;
                        }
                        start = i;
                        entry_first = true;
                        self.in_entry = true;
                        self.between = None;
                        self.depth += 1;
                    }
                    (b',', Between::AfterEntry) => self.between = Some(Between::AfterComma),
                    (b']', Between::Opened | Between::AfterEntry) => {
                        // The bytes between entries are left out; the `]` is the skeleton's.
                        start = i;
                        self.between = None;
                        self.depth -= 1;
                    }
                    _ => return Err(Unusual),
                }
                if self.between.is_some() {
                    // Commas and white space between entries are not the skeleton's.
                    start = i + 1;
                }
                i += 1;
                continue;
            }
            if self.done {
                // Trailing bytes: the skeleton's parse judges them.
                i += 1;
                continue;
            }
            match byte {
                b'"' => {
                    self.in_string = true;
                    if self.depth <= 2 && self.expect_key {
                        self.key = Some(Some(Vec::new()));
                    }
                }
                b':' if self.depth <= 2 => {
                    self.value_next = true;
                    self.expect_key = false;
                }
                b',' if self.depth <= 2 => {
                    self.expect_key = self.object[self.depth.min(2)];
                    self.value_next = false;
                }
                b'{' | b'[' => {
                    let value_of = if self.value_next && self.depth <= 2 {
                        self.last_key[self.depth]
                    } else {
                        Key::Other
                    };
                    self.value_next = false;
                    self.depth += 1;
                    if self.depth > MAX_DEPTH {
                        return Err(Unusual);
                    }
                    if self.depth <= 2 {
                        self.object[self.depth] = byte == b'{';
                        self.expect_key = byte == b'{';
                        self.last_key[self.depth] = Key::Other;
                    }
                    if self.depth == 2 {
                        self.in_log = value_of == Key::Log && byte == b'{';
                    }
                    if self.depth == 3 && self.in_log && value_of == Key::Entries && byte == b'[' {
                        // The `[` is the skeleton's; the entries are not.
                        out(Piece::Skeleton(&chunk[start..=i]))?;
                        start = i + 1;
                        self.between = Some(Between::Opened);
                    }
                }
                b'}' | b']' => {
                    if self.depth == 0 {
                        return Err(Unusual);
                    }
                    self.depth -= 1;
                    self.value_next = false;
                    self.expect_key = false;
                    if self.depth == 1 {
                        self.in_log = false;
                    }
                    if self.depth == 0 {
                        self.done = true;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        if self.in_entry {
            out(Piece::Entry {
                bytes: &chunk[start..],
                first: entry_first,
                last: false,
            })?;
        } else if start < chunk.len() {
            out(Piece::Skeleton(&chunk[start..]))?;
        }
        Ok(())
    }

    /// Bytes of a string, kept when they are a key at depth 1 or 2.
    fn key_bytes(&mut self, bytes: &[u8]) {
        if let Some(Some(key)) = &mut self.key {
            if key.len() + bytes.len() > 16 {
                self.key = Some(None);
            } else {
                key.extend_from_slice(bytes);
            }
        }
    }

    fn string_ended(&mut self) {
        let Some(key) = self.key.take() else {
            return;
        };
        self.expect_key = false;
        let key = match key.as_deref() {
            Some(b"log") if self.depth == 1 => Key::Log,
            Some(b"entries") if self.depth == 2 && self.in_log => Key::Entries,
            _ => Key::Other,
        };
        self.last_key[self.depth] = key;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The skeleton and the entries the scanner finds in `text` fed in chunks of `size`.
    fn scan(text: &str, size: usize) -> Result<(String, Vec<String>), Unusual> {
        let mut scanner = Scanner::default();
        let mut skeleton = Vec::new();
        let mut entries: Vec<Vec<u8>> = Vec::new();
        let mut open = false;
        for chunk in text.as_bytes().chunks(size) {
            scanner.feed(chunk, &mut |piece| {
                match piece {
                    Piece::Skeleton(bytes) => skeleton.extend_from_slice(bytes),
                    Piece::Entry { bytes, first, last } => {
                        assert_eq!(first, !open, "first only at an entry's start");
                        if first {
                            entries.push(Vec::new());
                        }
                        entries.last_mut().unwrap().extend_from_slice(bytes);
                        open = !last;
                    }
                }
                Ok(())
            })?;
        }
        if !scanner.is_done() {
            return Err(Unusual);
        }
        Ok((
            String::from_utf8(skeleton).unwrap(),
            entries
                .into_iter()
                .map(|e| String::from_utf8(e).unwrap())
                .collect(),
        ))
    }

    /// The same answer whatever the chunks' size (every split of an entry).
    fn scan_all_sizes(text: &str) -> Result<(String, Vec<String>), Unusual> {
        let whole = scan(text, text.len().max(1));
        for size in 1..text.len() {
            assert_eq!(scan(text, size), whole, "chunks of {size}");
        }
        whole
    }

    #[test]
    fn entries_are_cut_out_and_the_rest_is_the_skeleton() {
        let text = r#"{"log": {"version": "1.2", "entries": [ {"a": 1} ,
            {"b": [2, {"c": "}"}]} ], "pages": []}}"#;
        let (skeleton, entries) = scan_all_sizes(text).unwrap();
        assert_eq!(
            skeleton,
            r#"{"log": {"version": "1.2", "entries": [], "pages": []}}"#
        );
        assert_eq!(entries, [r#"{"a": 1}"#, r#"{"b": [2, {"c": "}"}]}"#]);
    }

    #[test]
    fn brackets_and_escaped_quotes_inside_strings_are_text() {
        let text = r#"{"log":{"entries":[{"u":"a\"]}[{\\","v":"\\"},{"w":"\"\\\"}"}]}}"#;
        let (skeleton, entries) = scan_all_sizes(text).unwrap();
        assert_eq!(skeleton, r#"{"log":{"entries":[]}}"#);
        assert_eq!(
            entries,
            [r#"{"u":"a\"]}[{\\","v":"\\"}"#, r#"{"w":"\"\\\"}"}"#]
        );
    }

    #[test]
    fn only_log_entries_is_cut_out() {
        // `entries` elsewhere, `log` as a value or deeper, a string that reads "entries".
        let text = r#"{"x":{"entries":[{"a":1}]},"log":{"creator":{"entries":[{}]},"c":"entries","entries":[{"e":1}]},"y":["log",{"log":{"entries":[{}]}}]}"#;
        let (skeleton, entries) = scan_all_sizes(text).unwrap();
        assert_eq!(
            skeleton,
            r#"{"x":{"entries":[{"a":1}]},"log":{"creator":{"entries":[{}]},"c":"entries","entries":[]},"y":["log",{"log":{"entries":[{}]}}]}"#
        );
        assert_eq!(entries, [r#"{"e":1}"#]);
    }

    #[test]
    fn an_empty_or_null_list_and_a_missing_one() {
        for text in [
            r#"{"log":{"entries":[ ]}}"#,
            r#"{"log":{"entries":null}}"#,
            r#"{"log":{}}"#,
        ] {
            let (skeleton, entries) = scan_all_sizes(text).unwrap();
            assert_eq!(skeleton, text.replace("[ ]", "[]"));
            assert!(entries.is_empty());
        }
    }

    #[test]
    fn what_the_scanner_does_not_expect_is_unusual() {
        for text in [
            // Not objects, or stray bytes between entries.
            r#"{"log":{"entries":[1]}}"#,
            r#"{"log":{"entries":[{},]}}"#,
            r#"{"log":{"entries":[,{}]}}"#,
            r#"{"log":{"entries":[{}{}]}}"#,
            r#"{"log":{"entries":[{}}}"#,
            // A key spelled with an escape.
            r#"{"l\u006fg":{"entries":[{}]}}"#,
            // Cut short.
            r#"{"log":{"entries":[{"a":"#,
            r#"{"log":{"entries":[{}]}"#,
        ] {
            assert_eq!(scan(text, text.len()), Err(Unusual), "{text}");
        }
        let deep = format!(
            "{{\"log\":{{\"entries\":[{}{}]}}}}",
            "[".repeat(200),
            "]".repeat(200)
        );
        assert_eq!(scan(&deep, deep.len()), Err(Unusual));
    }

    #[test]
    fn trailing_bytes_stay_in_the_skeleton_for_its_parse_to_judge() {
        let (skeleton, _) = scan_all_sizes(r#"{"log":{"entries":[{}]}} x"#).unwrap();
        assert_eq!(skeleton, r#"{"log":{"entries":[]}} x"#);
    }
}
