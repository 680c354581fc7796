//! The crash-safe incremental HAR writer.
//!
//! The file on disk is always a complete HAR document, or one that [`super::read`] repairs:
//! after each entry the writer writes the entry and the closing `\n]}}` in one `write`, and
//! the next entry starts where that closing began, overwriting it. A process killed at any
//! moment (even `kill -9`) leaves every entry whose `append` returned in the file; the reader
//! drops only a half-written last entry. Data reaches the disk itself (`fsync`) at most a
//! second after an entry, and on [`Writer::finish`].
//!
//! The writer does file IO only; it never decides what an entry holds.

use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Creator, Entry};

/// What precedes each entry in [`Writer::append_serialized`]'s buffer.
const SEPARATOR: &[u8] = b",\n";

/// How often written entries are also forced to the disk.
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// Writes one HAR file entry by entry. Not `Sync`: one task owns it.
#[derive(Debug)]
pub struct Writer {
    file: File,
    path: PathBuf,
    /// Where the next entry's bytes start (the first byte of the current closing).
    position: u64,
    entries: u64,
    tunnelled_hosts: Vec<String>,
    last_sync: Instant,
    unsynced: bool,
}

impl Writer {
    /// Creates (or truncates) `path` and writes an empty, valid HAR document to it.
    pub fn create(path: &Path, creator: &Creator, comment: Option<&str>) -> io::Result<Writer> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        let mut header = String::from("{\"log\":{\"version\":\"1.2\",\"creator\":");
        header.push_str(&serde_json::to_string(creator).map_err(io::Error::other)?);
        if let Some(comment) = comment {
            header.push_str(",\"comment\":");
            header.push_str(&serde_json::to_string(comment).map_err(io::Error::other)?);
        }
        header.push_str(",\"pages\":[],\"entries\":[");
        let mut writer = Writer {
            file,
            path: path.to_owned(),
            position: header.len() as u64,
            entries: 0,
            tunnelled_hosts: Vec::new(),
            last_sync: Instant::now(),
            unsynced: true,
        };
        let mut bytes = header.into_bytes();
        bytes.extend_from_slice(writer.closing().as_bytes());
        writer.file.write_all(&bytes)?;
        writer.file.flush()?;
        Ok(writer)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Entries written so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Appends one entry; when this returns `Ok` the entry survives the process being killed.
    pub fn append(&mut self, entry: &Entry) -> io::Result<()> {
        self.append_all(std::slice::from_ref(entry))
    }

    /// Appends several entries in one write; when this returns `Ok` they survive the process
    /// being killed (a write cut short leaves whole entries and a tail the reader drops).
    pub fn append_all(&mut self, entries: &[Entry]) -> io::Result<()> {
        let mut bytes = Vec::with_capacity(1024 * entries.len());
        for entry in entries {
            bytes.extend_from_slice(SEPARATOR);
            serde_json::to_writer(&mut bytes, entry).map_err(io::Error::other)?;
        }
        self.append_serialized(&mut bytes, entries.len() as u64)
    }

    /// Appends `count` entries that are already JSON, in one write, with the guarantee of
    /// [`Writer::append_all`]. `buffer` holds each entry as `,\n` followed by one JSON object
    /// (`,\n{...},\n{...}`), which the writer does not check beyond the first separator:
    /// the caller vouches for the objects. The closing is added to `buffer` for the write and
    /// taken off again, so `buffer` comes back as it was given, ready to be cleared and reused.
    pub fn append_serialized(&mut self, buffer: &mut Vec<u8>, count: u64) -> io::Result<()> {
        if count == 0 {
            return Ok(());
        }
        if !buffer.starts_with(SEPARATOR) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: serialized entries must each start with \",\\n\" (nothing was written)",
                    self.path.display()
                ),
            ));
        }
        // The file's first entry follows `[` directly: its comma is left out.
        let skip = usize::from(self.entries == 0);
        let length = buffer.len();
        buffer.extend_from_slice(self.closing().as_bytes());
        let written = self.write_at_position(&buffer[skip..]);
        buffer.truncate(length);
        if let Err(err) = written {
            // A write cut short (a full disk) may have left part of the entries after the
            // last whole one: the file goes back to the whole entries and its closing.
            let _ = self.close_at_position();
            return Err(err);
        }
        self.position += (length - skip) as u64;
        self.entries += count;
        self.maybe_sync()
    }

    /// Notes a host whose CONNECT tunnel passed through unrecorded (`_tunnelledHosts` on
    /// the log). Each host is listed once.
    pub fn add_tunnelled_host(&mut self, host: &str) -> io::Result<()> {
        if self.tunnelled_hosts.iter().any(|known| known == host) {
            return Ok(());
        }
        self.tunnelled_hosts.push(host.to_owned());
        // The closing only grows, so it always covers the previous one.
        let closing = self.closing();
        self.write_at_position(closing.as_bytes())?;
        self.maybe_sync()
    }

    /// Forces everything to the disk. The document is complete after every call anyway.
    pub fn finish(mut self) -> io::Result<PathBuf> {
        self.file.sync_all()?;
        self.unsynced = false;
        Ok(self.path.clone())
    }

    fn closing(&self) -> Cow<'static, str> {
        if self.tunnelled_hosts.is_empty() {
            Cow::Borrowed("\n]}}\n")
        } else {
            Cow::Owned(format!(
                "\n],\"_tunnelledHosts\":{}}}}}\n",
                serde_json::to_string(&self.tunnelled_hosts).unwrap_or_else(|_| "[]".to_owned())
            ))
        }
    }

    /// Writes the closing where the next entry would start and cuts the file there, so it
    /// holds exactly the entries counted. The closing overwrites bytes the file already had
    /// (the previous closing was there), and cutting frees space: both work on a full disk.
    fn close_at_position(&mut self) -> io::Result<()> {
        let closing = self.closing();
        self.write_at_position(closing.as_bytes())?;
        self.file.set_len(self.position + closing.len() as u64)
    }

    fn write_at_position(&mut self, bytes: &[u8]) -> io::Result<()> {
        // One write call: the kernel holds the bytes once it returns, so `kill -9` loses nothing.
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileExt as _;
            self.file.write_all_at(bytes, self.position)?;
        }
        #[cfg(not(unix))]
        {
            use std::io::{Seek as _, SeekFrom};
            self.file.seek(SeekFrom::Start(self.position))?;
            self.file.write_all(bytes)?;
        }
        self.unsynced = true;
        Ok(())
    }

    fn maybe_sync(&mut self) -> io::Result<()> {
        if self.unsynced && self.last_sync.elapsed() >= SYNC_EVERY {
            self.file.sync_data()?;
            self.last_sync = Instant::now();
            self.unsynced = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::har::{Request, read};

    fn entry(url: &str) -> Entry {
        Entry {
            started_date_time: "2026-01-01T00:00:00.000Z".to_owned(),
            request: Request {
                method: "GET".to_owned(),
                url: url.to_owned(),
                ..Request::default()
            },
            ..Entry::default()
        }
    }

    #[test]
    fn the_file_is_a_complete_document_after_every_append() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.har");
        let creator = Creator {
            name: "chorus".to_owned(),
            version: "0".to_owned(),
            comment: None,
        };
        let mut writer = Writer::create(&path, &creator, Some("test")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let har: crate::har::Har = serde_json::from_str(&text).unwrap();
        assert!(har.log.entries.is_empty());
        for n in 1..=3 {
            writer.append(&entry(&format!("http://a/{n}"))).unwrap();
            if n == 2 {
                writer.add_tunnelled_host("example.org:443").unwrap();
                writer.add_tunnelled_host("example.org:443").unwrap();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let har: crate::har::Har = serde_json::from_str(&text)
                .unwrap_or_else(|err| panic!("after {n}: {err}\n{text}"));
            assert_eq!(har.log.entries.len(), n);
            assert_eq!(har.log.entries[n - 1].request.url, format!("http://a/{n}"));
        }
        let path = writer.finish().unwrap();
        let (har, warnings) = read::read_file(&path).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(har.log.tunnelled_hosts, vec!["example.org:443".to_owned()]);
        assert_eq!(har.log.comment.as_deref(), Some("test"));
    }

    #[test]
    fn serialized_entries_append_in_one_write_and_the_buffer_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.har");
        let mut writer = Writer::create(&path, &Creator::default(), None).unwrap();
        let mut buffer = Vec::new();
        for n in 1..=2 {
            buffer.extend_from_slice(b",\n");
            serde_json::to_writer(&mut buffer, &entry(&format!("http://a/{n}"))).unwrap();
        }
        let given = buffer.clone();
        writer.append_serialized(&mut buffer, 2).unwrap();
        assert_eq!(buffer, given);
        writer.append(&entry("http://a/3")).unwrap();
        writer.append_serialized(&mut buffer, 2).unwrap();
        writer.append_serialized(&mut Vec::new(), 0).unwrap();
        let err = writer
            .append_serialized(&mut b"{}".to_vec(), 1)
            .unwrap_err();
        assert!(err.to_string().contains("must each start with"), "{err}");
        assert_eq!(writer.entries(), 5);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"entries\":[\n{"), "{text}");
        let har: crate::har::Har = serde_json::from_str(&text).unwrap();
        let urls: Vec<&str> = har
            .log
            .entries
            .iter()
            .map(|e| e.request.url.as_str())
            .collect();
        assert_eq!(
            urls,
            [
                "http://a/1",
                "http://a/2",
                "http://a/3",
                "http://a/1",
                "http://a/2"
            ]
        );
    }

    #[test]
    fn a_write_cut_short_leaves_the_whole_entries_and_the_closing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.har");
        let mut writer = Writer::create(&path, &Creator::default(), None).unwrap();
        writer.append(&entry("http://a/1")).unwrap();
        writer.add_tunnelled_host("example.org:443").unwrap();
        // What a full disk leaves: half of the next entry written where the closing was.
        let mut half = b",\n".to_vec();
        serde_json::to_writer(&mut half, &entry("http://a/2")).unwrap();
        half.truncate(half.len() / 2);
        writer.write_at_position(&half).unwrap();
        assert!(serde_json::from_slice::<crate::har::Har>(&std::fs::read(&path).unwrap()).is_err());
        writer.close_at_position().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let har: crate::har::Har =
            serde_json::from_str(&text).unwrap_or_else(|err| panic!("{err}\n{text}"));
        assert_eq!(har.log.entries.len(), 1);
        assert_eq!(har.log.tunnelled_hosts, vec!["example.org:443".to_owned()]);
        assert!(text.ends_with("}}\n"), "{text}");
    }
}
