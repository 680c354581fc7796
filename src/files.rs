//! The files a user names, checked before any work: an input (a capture, a scenario, a CSV
//! of test data) is a readable regular file of a sane size, not a folder or a device that
//! never ends; an output can be created, and is not one of the inputs. Each refusal is one
//! sentence with the reason, the OS error said once.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Why a file cannot be used. Displays without the path: callers put it where their
/// message needs it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FileError(String);

impl FileError {
    fn from_io(err: &io::Error) -> FileError {
        FileError(os_error(err))
    }
}

/// An OS error as a person reads it: `permission denied`, `no such file or directory`, and
/// the raw code only when there is no better text.
pub fn os_error(err: &io::Error) -> String {
    use io::ErrorKind::*;
    match err.kind() {
        NotFound => "no such file or folder".to_owned(),
        PermissionDenied => "permission denied".to_owned(),
        IsADirectory => "it is a folder, not a file".to_owned(),
        NotADirectory => "a part of the path is a file, not a folder".to_owned(),
        ReadOnlyFilesystem => "the file system is read-only".to_owned(),
        StorageFull => "no space left on the device".to_owned(),
        _ => err.to_string(),
    }
}

/// How big a number of bytes reads: `2 GiB`, `300 MiB`, `12 KiB`.
pub fn show_size(bytes: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= size {
            let value = bytes as f64 / size as f64;
            return if value.fract() == 0.0 {
                format!("{value:.0} {unit}")
            } else {
                format!("{value:.1} {unit}")
            };
        }
    }
    format!("{bytes} bytes")
}

/// Opens an input for reading: a regular file of at most `limit` bytes, or a pipe (read up
/// to `limit` by [`read_limited`] or [`Limited`]). `what` names it in messages: `capture`,
/// `scenario`, `CSV file`.
pub fn open_input(path: &Path, limit: u64, what: &str) -> Result<File, FileError> {
    let metadata = std::fs::metadata(path).map_err(|err| FileError::from_io(&err))?;
    let kind = metadata.file_type();
    if kind.is_dir() {
        return Err(FileError(format!("it is a folder, not a {what}")));
    }
    if !kind.is_file() && !is_pipe(&kind) {
        return Err(FileError(format!(
            "it is a device or another special file, not a {what}"
        )));
    }
    if kind.is_file() && metadata.len() > limit {
        return Err(too_big(metadata.len(), limit, what));
    }
    File::open(path).map_err(|err| FileError::from_io(&err))
}

fn too_big(size: u64, limit: u64, what: &str) -> FileError {
    FileError(format!(
        "it is {}, more than a {what} may be ({})",
        show_size(size),
        show_size(limit)
    ))
}

#[cfg(unix)]
fn is_pipe(kind: &std::fs::FileType) -> bool {
    use std::os::unix::fs::FileTypeExt;
    kind.is_fifo()
}

#[cfg(not(unix))]
fn is_pipe(_kind: &std::fs::FileType) -> bool {
    false
}

/// Reads a whole input (see [`open_input`]).
pub fn read_limited(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, FileError> {
    let file = open_input(path, limit, what)?;
    let mut bytes = Vec::new();
    Limited::new(file, limit, what)
        .read_to_end(&mut bytes)
        .map_err(|err| match Limited::<File>::refusal(&err) {
            Some(refusal) => refusal,
            None => FileError::from_io(&err),
        })?;
    Ok(bytes)
}

/// A reader that fails once more than `limit` bytes came: a pipe may be endless.
pub struct Limited<R> {
    inner: R,
    left: u64,
    limit: u64,
    what: String,
}

/// The error a [`Limited`] reader gives past its limit, carried inside an `io::Error`.
#[derive(Debug)]
struct PastLimit(FileError);

impl fmt::Display for PastLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for PastLimit {}

impl<R: Read> Limited<R> {
    pub fn new(inner: R, limit: u64, what: &str) -> Self {
        Limited {
            inner,
            left: limit,
            limit,
            what: what.to_owned(),
        }
    }

    /// The refusal inside an error this reader returned, if that is what it is.
    pub fn refusal(err: &io::Error) -> Option<FileError> {
        err.get_ref()
            .and_then(|inner| inner.downcast_ref::<PastLimit>())
            .map(|past| past.0.clone())
    }
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // One byte more than allowed says the input goes on.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(PastLimit(FileError(format!(
                    "it goes on past {}, more than a {} may be",
                    show_size(self.limit),
                    self.what
                ))))),
            };
        }
        let most = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buf[..most])?;
        self.left -= read as u64;
        Ok(read)
    }
}

/// The same file, whatever the path says (`./c.har`, `c.har`, a link to it). Paths that do
/// not exist yet are compared by their folder's canonical path and their name.
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (canonical(a), canonical(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

fn canonical(path: &Path) -> Option<PathBuf> {
    if let Ok(path) = path.canonicalize() {
        return Some(path);
    }
    let name = path.file_name()?;
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.canonicalize().ok()?,
        _ => std::env::current_dir().ok()?.canonicalize().ok()?,
    };
    Some(folder.join(name))
}

/// Checks that `path` can be written, before any work: creates its folders and opens it for
/// writing without truncating an existing file (a new file is removed again, so nothing is
/// left behind if the work fails). The message says why not.
pub fn check_writable(path: &Path) -> Result<(), FileError> {
    if path.is_dir() {
        return Err(FileError(
            "it is a folder; give a file name (e.g. out/run.json)".to_owned(),
        ));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|err| {
            FileError(format!(
                "cannot create the folder {}: {}",
                parent.display(),
                os_error(&err)
            ))
        })?;
    }
    if let Some(why) = not_a_place_for_output(path) {
        return Err(FileError(why));
    }
    let existed = path.exists();
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|err| FileError::from_io(&err))?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// Why an existing `path` cannot take a report, found before the run rather than when the
/// report is written after it: a device that refuses writes (`/dev/full`), a disk device, a
/// file of the kernel's (`/proc`, `/sys`). The null device, terminals and pipes (`>(jq)`)
/// are fine.
fn not_a_place_for_output(path: &Path) -> Option<String> {
    use std::os::unix::fs::FileTypeExt;
    let real = path.canonicalize().ok()?;
    if real.starts_with("/proc") || real.starts_with("/sys") {
        return Some(format!(
            "{} is a file of the kernel's, not a place for a report; give a regular file",
            real.display()
        ));
    }
    let kind = std::fs::metadata(&real).ok()?.file_type();
    let terminal = real.starts_with("/dev/pts") || real.to_string_lossy().starts_with("/dev/tty");
    let device = kind.is_block_device() || (kind.is_char_device() && !terminal);
    (device && real != Path::new("/dev/null")).then(|| {
        format!(
            "{} is a device; write the report to a regular file (or /dev/null to discard it)",
            real.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_devices_and_big_files_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            open_input(dir.path(), 100, "capture")
                .unwrap_err()
                .to_string(),
            "it is a folder, not a capture"
        );
        assert_eq!(
            open_input(Path::new("/dev/zero"), 100, "capture")
                .unwrap_err()
                .to_string(),
            "it is a device or another special file, not a capture"
        );
        let big = dir.path().join("big.csv");
        std::fs::write(&big, vec![b'a'; 2048]).unwrap();
        assert_eq!(
            read_limited(&big, 1024, "CSV file")
                .unwrap_err()
                .to_string(),
            "it is 2 KiB, more than a CSV file may be (1 KiB)"
        );
        assert_eq!(
            open_input(&dir.path().join("nothing"), 100, "capture")
                .unwrap_err()
                .to_string(),
            "no such file or folder"
        );
    }

    #[test]
    fn an_endless_stream_stops_at_the_limit() {
        let mut bytes = Vec::new();
        let err = Limited::new(io::repeat(0), 4096, "capture")
            .read_to_end(&mut bytes)
            .unwrap_err();
        assert_eq!(
            Limited::<io::Repeat>::refusal(&err).unwrap().to_string(),
            "it goes on past 4 KiB, more than a capture may be"
        );
        let mut exact = Vec::new();
        Limited::new(&[1u8; 10][..], 10, "capture")
            .read_to_end(&mut exact)
            .unwrap();
        assert_eq!(exact.len(), 10);
    }

    #[test]
    fn the_same_file_by_any_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.har");
        std::fs::write(&file, "{}").unwrap();
        let dotted = dir.path().join(".").join("c.har");
        assert!(same_file(&file, &dotted));
        assert!(!same_file(&file, &dir.path().join("c.yaml")));
        let later = dir.path().join("sub/../new.json");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        assert!(same_file(&later, &dir.path().join("new.json")));
    }

    #[test]
    fn writable_outputs_are_checked_without_leaving_files() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("deeper/run.json");
        check_writable(&out).unwrap();
        assert!(!out.exists());
        assert_eq!(
            check_writable(dir.path()).unwrap_err().to_string(),
            "it is a folder; give a file name (e.g. out/run.json)"
        );
        let kept = dir.path().join("kept.json");
        std::fs::write(&kept, "old").unwrap();
        check_writable(&kept).unwrap();
        assert_eq!(std::fs::read_to_string(&kept).unwrap(), "old");
    }

    #[test]
    fn devices_and_kernel_files_are_refused_as_outputs_before_any_work() {
        assert_eq!(
            check_writable(Path::new("/dev/full"))
                .unwrap_err()
                .to_string(),
            "/dev/full is a device; write the report to a regular file (or /dev/null to discard it)"
        );
        assert_eq!(
            check_writable(Path::new("/proc/self/comm"))
                .unwrap_err()
                .to_string()
                .split_once(" is ")
                .map(|(_, why)| why.to_owned())
                .unwrap(),
            "a file of the kernel's, not a place for a report; give a regular file"
        );
        check_writable(Path::new("/dev/null")).unwrap();
        // A pipe (what `--json >(jq .)` names) takes a report.
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        assert!(not_a_place_for_output(&fifo).is_none());
    }
}
