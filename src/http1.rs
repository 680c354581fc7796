//! HTTP/1.1 framing that chorus's two HTTP speakers share, the engine's client and the
//! recorder's relay: what a head's headers say about its body and its connection, how a body
//! ends, a chunked-body scanner that finds the end without changing the bytes, and decimal numbers written without the formatting machinery (the
//! capture's JSON writer uses those too). Plain functions over buffers.

/// The most headers a message head may have.
pub(crate) const MAX_HEADERS: usize = 128;

/// The longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 64 * 1024;

/// How a body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    Length(u64),
    Chunked,
    /// When the sender closes the connection (responses only).
    Close,
}

/// What a head's headers say about its body and its connection, noted header by header
/// while the head is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct HeadFacts {
    pub(crate) content_length: Option<u64>,
    /// `Some(true)` when the last transfer coding is chunked.
    pub(crate) transfer_encoding: Option<bool>,
    pub(crate) connection_close: bool,
    pub(crate) connection_keep_alive: bool,
    pub(crate) connection_upgrade: bool,
}

impl HeadFacts {
    /// Notes one header; a `Content-Length` that is not a number, or disagrees with an
    /// earlier one, is refused.
    pub(crate) fn note(&mut self, name: &[u8], value: &[u8]) -> Result<(), String> {
        if name.eq_ignore_ascii_case(b"content-length") {
            let length = std::str::from_utf8(value)
                .ok()
                .and_then(|text| text.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    format!(
                        "Content-Length {:?} is not a number",
                        String::from_utf8_lossy(value)
                    )
                })?;
            if self.content_length.is_some_and(|known| known != length) {
                return Err("two Content-Length headers disagree".to_owned());
            }
            self.content_length = Some(length);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            let last = value.rsplit(|&byte| byte == b',').next().unwrap_or(&[]);
            self.transfer_encoding = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&byte| byte == b',') {
                let token = token.trim_ascii();
                self.connection_close |= token.eq_ignore_ascii_case(b"close");
                self.connection_keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                self.connection_upgrade |= token.eq_ignore_ascii_case(b"upgrade");
            }
        }
        Ok(())
    }

    /// A response body's framing, for `status`; `head_request` when it answers a HEAD.
    pub(crate) fn response_framing(&self, status: u16, head_request: bool) -> Framing {
        if head_request || status == 204 || status == 304 || (100..200).contains(&status) {
            return Framing::Length(0);
        }
        match (self.transfer_encoding, self.content_length) {
            (Some(true), _) => Framing::Chunked,
            (Some(false), _) | (None, None) => Framing::Close,
            (None, Some(length)) => Framing::Length(length),
        }
    }

    /// Whether the connection stays open after this message (`version` 0 for HTTP/1.0;
    /// `status` 0 for a request). After a `101` it belongs to the new protocol.
    pub(crate) fn keep_alive(&self, version: u8, status: u16, framing: Framing) -> bool {
        if framing == Framing::Close || status == 101 || self.connection_close {
            return false;
        }
        version >= 1 || self.connection_keep_alive
    }
}

/// Where the search for the end of a head stands. A head can only become complete when a
/// line end arrives, so a head is parsed again only when one did (and once when its first
/// bytes come, so that what is not HTTP at all is refused at once): a head sent a byte at a
/// time costs a parse per line, not a parse per byte.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct HeadScan {
    /// How many bytes of the buffer were there at the last look.
    seen: usize,
    /// Parses so far (for the tests that bound the work).
    pub(crate) parses: usize,
}

impl HeadScan {
    /// Whether parsing `buffer` again could give another answer than last time.
    pub(crate) fn worth_parsing(&mut self, buffer: &[u8]) -> bool {
        let fresh = buffer.get(self.seen..).unwrap_or_default();
        let worth = !buffer.is_empty() && (self.seen == 0 || fresh.contains(&b'\n'));
        self.seen = buffer.len();
        self.parses += usize::from(worth);
        worth
    }

    /// A head was taken out of the buffer: what follows is looked at afresh.
    pub(crate) fn restart(&mut self) {
        self.seen = 0;
    }
}

/// Where a chunked body stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunk {
    /// Expecting a chunk-size line, of which this many bytes came already without its end
    /// (they are not searched again: a line sent a byte at a time is read in linear time).
    Size(usize),
    /// This many bytes of chunk data to go.
    Data(u64),
    /// Expecting the line end after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one (the number as for `Size`).
    Trailers(usize),
}

impl Default for Chunk {
    fn default() -> Self {
        Chunk::Size(0)
    }
}

/// Scans the next bytes of a chunked body: returns how many of them belong to the body (a line
/// cut by the end of `bytes` is left for the next call) and whether the body is complete;
/// `data` gets each piece of chunk data. The bytes themselves are passed on unchanged.
pub(crate) fn scan_chunks(
    bytes: &[u8],
    state: &mut Chunk,
    mut data: impl FnMut(&[u8]),
) -> Result<(usize, bool), String> {
    let invalid = |what: &str| format!("a chunked body with {what}");
    let mut at = 0;
    loop {
        let rest = &bytes[at..];
        match *state {
            Chunk::Size(looked) | Chunk::Trailers(looked) => {
                let looked = looked.min(rest.len());
                let Some(end) = rest[looked..]
                    .iter()
                    .position(|&byte| byte == b'\n')
                    .map(|end| looked + end)
                else {
                    if rest.len() > MAX_LINE {
                        return Err(invalid("a line that never ends"));
                    }
                    *state = match *state {
                        Chunk::Trailers(_) => Chunk::Trailers(rest.len()),
                        _ => Chunk::Size(rest.len()),
                    };
                    return Ok((at, false));
                };
                let line = rest[..end].strip_suffix(b"\r").unwrap_or(&rest[..end]);
                at += end + 1;
                if let Chunk::Trailers(_) = *state {
                    *state = Chunk::Trailers(0);
                    if line.is_empty() {
                        return Ok((at, true));
                    }
                    continue;
                }
                let digits = line
                    .split(|&byte| byte == b';')
                    .next()
                    .unwrap_or_default()
                    .trim_ascii();
                let size = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|digits| u64::from_str_radix(digits, 16).ok())
                    .ok_or_else(|| {
                        invalid(&format!(
                            "an invalid chunk size {:?}",
                            String::from_utf8_lossy(digits)
                        ))
                    })?;
                *state = if size == 0 {
                    Chunk::Trailers(0)
                } else {
                    Chunk::Data(size)
                };
            }
            Chunk::Data(left) => {
                if rest.is_empty() {
                    return Ok((at, false));
                }
                let take = left.min(rest.len() as u64) as usize;
                data(&rest[..take]);
                at += take;
                *state = if take as u64 == left {
                    Chunk::DataEnd
                } else {
                    Chunk::Data(left - take as u64)
                };
            }
            Chunk::DataEnd => {
                if rest.starts_with(b"\r\n") {
                    at += 2;
                } else if rest.starts_with(b"\n") {
                    at += 1;
                } else if rest.is_empty() || rest == b"\r" {
                    return Ok((at, false));
                } else {
                    return Err(invalid("chunk data longer than its size"));
                }
                *state = Chunk::Size(0);
            }
        }
    }
}

/// Writes `n` in decimal (`write!` goes through the formatting machinery for every message).
/// Where `part`, a slice `httparse` took out of `buffer`, is in it: `(start, end)`. An empty
/// part may be a `""` of httparse's own, not in the buffer at all (the reason of a status line
/// without one, `HTTP/1.1 101\r\n`): it is the empty span at 0.
pub(crate) fn span(buffer: &[u8], part: &[u8]) -> (u32, u32) {
    let start = (part.as_ptr() as usize).wrapping_sub(buffer.as_ptr() as usize);
    if part.is_empty() || start > buffer.len() {
        return (0, 0);
    }
    (start as u32, (start + part.len()) as u32)
}

pub(crate) fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_scanned_across_reads_without_change() {
        let body = b"4\r\nWiki\r\n6;ext=1\r\npedia \r\n0\r\nTrailer: x\r\n\r\nNEXT";
        for cut in 0..body.len() {
            let mut state = Chunk::default();
            let mut data = Vec::new();
            let (first, done) = scan_chunks(&body[..cut], &mut state, |d| {
                data.extend_from_slice(d);
            })
            .unwrap();
            assert!(!done || cut >= body.len() - 4, "cut {cut}");
            let (second, done) = if done {
                (0, true)
            } else {
                scan_chunks(&body[first..], &mut state, |d| data.extend_from_slice(d)).unwrap()
            };
            assert!(done, "cut {cut}");
            assert_eq!(first + second, body.len() - 4, "cut {cut}");
            assert_eq!(data, b"Wikipedia ", "cut {cut}");
        }
        let mut state = Chunk::default();
        assert!(scan_chunks(b"zz\r\n", &mut state, |_| {}).is_err());
        let mut state = Chunk::default();
        assert!(scan_chunks(b"1\r\nab\r\n", &mut state, |_| {}).is_err());
    }

    #[test]
    fn heads_say_how_their_bodies_end_and_whether_the_connection_stays() {
        let facts = |headers: &[(&str, &str)]| {
            let mut facts = HeadFacts::default();
            for (name, value) in headers {
                facts.note(name.as_bytes(), value.as_bytes())?;
            }
            Ok::<_, String>(facts)
        };
        let length = facts(&[("Content-Length", "3"), ("content-length", " 3 ")]).unwrap();
        assert_eq!(length.response_framing(200, false), Framing::Length(3));
        assert_eq!(length.response_framing(200, true), Framing::Length(0));
        assert_eq!(length.response_framing(304, false), Framing::Length(0));
        assert!(length.keep_alive(1, 200, Framing::Length(3)));
        assert!(!length.keep_alive(0, 200, Framing::Length(3)));
        assert!(!length.keep_alive(1, 101, Framing::Length(0)));
        let chunked = facts(&[("Transfer-Encoding", "gzip, chunked")]).unwrap();
        assert_eq!(chunked.response_framing(200, false), Framing::Chunked);
        let none = facts(&[("Connection", "Keep-Alive, Upgrade")]).unwrap();
        assert_eq!(none.response_framing(200, false), Framing::Close);
        assert!(none.connection_upgrade && none.keep_alive(0, 0, Framing::Length(0)));
        let close = facts(&[("Connection", "close")]).unwrap();
        assert!(!close.keep_alive(1, 200, Framing::Length(0)));
        assert!(facts(&[("Content-Length", "x")]).is_err());
        assert!(facts(&[("Content-Length", "1"), ("Content-Length", "2")]).is_err());
    }

    #[test]
    fn decimals() {
        for n in [0, 7, 10, 65535, u64::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }
}
