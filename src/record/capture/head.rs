//! Reading a raw HTTP/1.x message head (start line and header lines) for the capture:
//! `httparse` first; when that refuses the head, the text the HTTP/2 relay writes
//! (`GET /x HTTP/2`, `HTTP/2 200`, pseudo-header fields first), else a lenient line reader,
//! so a malformed head still gives an entry with what could be read and a note saying so.
//! Borrows everything from the head's bytes; allocates only for a head that `httparse`
//! refused.

use std::mem::MaybeUninit;

use httparse::{Header, ParserConfig};

/// Headers read without allocating: as many as the relay lets through, so a head with more
/// (which the relay refuses) only reaches the lenient reader.
pub(super) const INLINE: usize = crate::http1::MAX_HEADERS;

/// Where `httparse` puts the headers of a head; lives on the caller's stack, left
/// uninitialized (writing empty headers twice per exchange was measurable).
pub(super) type Storage<'b> = [MaybeUninit<Header<'b>>; INLINE];

pub(super) fn storage<'b>() -> Storage<'b> {
    [const { MaybeUninit::uninit() }; INLINE]
}

/// The headers of a head, in order, repeated ones repeated.
pub(super) enum Fields<'b, 'h> {
    Inline(&'h [Header<'b>]),
    Owned(Vec<Header<'b>>),
}

impl<'b> Fields<'b, '_> {
    pub(super) fn all(&self) -> &[Header<'b>] {
        match self {
            Fields::Inline(headers) => headers,
            Fields::Owned(headers) => headers,
        }
    }

    /// Every value of the header `name` (case-insensitive).
    pub(super) fn values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'b [u8]> + 's {
        self.all()
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// The first value of the header `name`.
    pub(super) fn first(&self, name: &str) -> Option<&'b [u8]> {
        self.values(name).next()
    }
}

/// One parsed head. For a request `status` is 0 and `reason` empty; for a response `method`
/// is empty.
pub(super) struct Head<'b, 'h> {
    pub(super) method: &'b str,
    pub(super) status: u16,
    pub(super) reason: &'b str,
    /// `HTTP/1.1`, `HTTP/1.0`, or what the start line said when the head did not parse.
    pub(super) version: &'b str,
    pub(super) headers: Fields<'b, 'h>,
    /// Why the head did not parse, when it did not (then the rest is what could be read).
    pub(super) problem: Option<String>,
}

fn version_text(version: Option<u8>) -> &'static str {
    match version {
        Some(0) => "HTTP/1.0",
        _ => "HTTP/1.1",
    }
}

/// Reads a request head: `GET /x HTTP/1.1\r\nhost: a\r\n\r\n`.
pub(super) fn request<'b, 'h>(bytes: &'b [u8], storage: &'h mut Storage<'b>) -> Head<'b, 'h> {
    let mut parsed = httparse::Request::new(&mut []);
    let error = match ParserConfig::default().parse_request_with_uninit_headers(
        &mut parsed,
        bytes,
        storage,
    ) {
        Ok(httparse::Status::Complete(_)) => {
            return Head {
                method: parsed.method.unwrap_or_default(),
                status: 0,
                reason: "",
                version: version_text(parsed.version),
                headers: Fields::Inline(parsed.headers),
                problem: None,
            };
        }
        Ok(httparse::Status::Partial) => "the head ends before its blank line".to_owned(),
        Err(err) => err.to_string(),
    };
    http2(bytes, Kind::Request).unwrap_or_else(|| lenient(bytes, Kind::Request, &error))
}

/// Reads a response head: `HTTP/1.1 200 OK\r\ncontent-type: x\r\n\r\n`.
pub(super) fn response<'b, 'h>(bytes: &'b [u8], storage: &'h mut Storage<'b>) -> Head<'b, 'h> {
    let mut parsed = httparse::Response::new(&mut []);
    let error = match ParserConfig::default().parse_response_with_uninit_headers(
        &mut parsed,
        bytes,
        storage,
    ) {
        Ok(httparse::Status::Complete(_)) => {
            return Head {
                method: "",
                status: parsed.code.unwrap_or_default(),
                reason: parsed.reason.unwrap_or_default(),
                version: version_text(parsed.version),
                headers: Fields::Inline(parsed.headers),
                problem: None,
            };
        }
        Ok(httparse::Status::Partial) => "the head ends before its blank line".to_owned(),
        Err(err) => err.to_string(),
    };
    http2(bytes, Kind::Response).unwrap_or_else(|| lenient(bytes, Kind::Response, &error))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Request,
    Response,
}

/// The version of the heads the HTTP/2 relay writes, as the entry's `httpVersion`.
pub(super) const HTTP2: &str = "HTTP/2";

/// Reads a head the HTTP/2 relay wrote: `METHOD PATH HTTP/2` or `HTTP/2 STATUS`, then
/// `name: value` lines (names may start with `:`) up to the blank line; `None` when it is
/// not one.
fn http2<'b, 'h>(bytes: &'b [u8], kind: Kind) -> Option<Head<'b, 'h>> {
    let mut lines = bytes
        .split(|b| *b == b'\n')
        .map(|line| line.strip_suffix(b"\r"));
    let start = std::str::from_utf8(lines.next()??).ok()?;
    let (method, status) = match kind {
        Kind::Request => {
            let rest = start.strip_suffix(" HTTP/2")?;
            let (method, _path) = rest.split_once(' ')?;
            (method, 0)
        }
        Kind::Response => ("", start.strip_prefix("HTTP/2 ")?.parse().ok()?),
    };
    let mut headers = Vec::new();
    for line in lines {
        let line = line?;
        if line.is_empty() {
            return Some(Head {
                method,
                status,
                reason: "",
                version: HTTP2,
                headers: Fields::Owned(headers),
                problem: None,
            });
        }
        let colon = 1 + line.get(1..)?.iter().position(|b| *b == b':')?;
        let name = std::str::from_utf8(&line[..colon]).ok()?;
        let value = line[colon + 1..]
            .strip_prefix(b" ")
            .unwrap_or(&line[colon + 1..]);
        headers.push(Header { name, value });
    }
    None
}

fn trim(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

/// Reads what it can: the start line's words, then `name: value` lines up to the first
/// empty line; lines it cannot read are counted in the note.
fn lenient<'b, 'h>(bytes: &'b [u8], kind: Kind, error: &str) -> Head<'b, 'h> {
    let mut lines = bytes
        .split(|b| *b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    let start = lines.next().unwrap_or_default();
    let mut words = start
        .splitn(3, |b| *b == b' ')
        .map(|w| std::str::from_utf8(w).ok());
    let (first, second, third) = (
        words.next().flatten().unwrap_or_default(),
        words.next().flatten().unwrap_or_default(),
        words.next().flatten().unwrap_or_default(),
    );
    let mut headers = Vec::new();
    let mut skipped = 0;
    for line in lines {
        if line.is_empty() {
            break;
        }
        let field = line.iter().position(|b| *b == b':').and_then(|colon| {
            let name = std::str::from_utf8(trim(&line[..colon])).ok()?;
            (!name.is_empty()).then(|| Header {
                name,
                value: trim(&line[colon + 1..]),
            })
        });
        match field {
            Some(header) => headers.push(header),
            None => skipped += 1,
        }
    }
    let what = match kind {
        Kind::Request => "request",
        Kind::Response => "response",
    };
    let mut problem =
        format!("the {what} head did not parse as HTTP/1.1 ({error}); recorded what could be read");
    if skipped > 0 {
        problem.push_str(&format!(", {skipped} header lines left out"));
    }
    let (method, version, status, reason) = match kind {
        Kind::Request => (first, third, 0, ""),
        Kind::Response => ("", first, second.parse().unwrap_or_default(), third.trim()),
    };
    Head {
        method,
        status,
        reason,
        version,
        headers: Fields::Owned(headers),
        problem: Some(problem),
    }
}
