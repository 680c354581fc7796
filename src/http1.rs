//! HTTP/1.1 framing that chorus's two HTTP speakers share, the engine's client and the
//! recorder's relay: how a body ends, a chunked-body scanner that finds the end without
//! changing the bytes, and decimal numbers written without the formatting machinery (the
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

/// Where a chunked body stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Chunk {
    /// Expecting a chunk-size line.
    #[default]
    Size,
    /// This many bytes of chunk data to go.
    Data(u64),
    /// Expecting the line end after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailers,
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
            Chunk::Size | Chunk::Trailers => {
                let Some(end) = rest.iter().position(|&byte| byte == b'\n') else {
                    if rest.len() > MAX_LINE {
                        return Err(invalid("a line that never ends"));
                    }
                    return Ok((at, false));
                };
                let line = rest[..end].strip_suffix(b"\r").unwrap_or(&rest[..end]);
                at += end + 1;
                if *state == Chunk::Trailers {
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
                    Chunk::Trailers
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
                *state = Chunk::Size;
            }
        }
    }
}

/// Writes `n` in decimal (`write!` goes through the formatting machinery for every message).
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
    fn decimals() {
        for n in [0, 7, 10, 65535, u64::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }
}
