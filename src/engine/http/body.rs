//! Response bodies as the engine keeps them: whole, up to the body limit, when something reads
//! them (an extract, a check); otherwise only counted, with the first bytes kept for a failure
//! message that quotes them. Decoding (gzip, deflate, brotli) stays within the same limit, so
//! memory is bounded whatever a server sends. Plain functions over bytes, no IO.

use std::io::Read as _;

use bytes::Bytes;
use http::HeaderMap;

use crate::stats::FailureKind;

/// How much of a body nothing reads is kept (for a failure message quoting its start).
pub(crate) const PREFIX: usize = 1024;

/// Takes a body piece by piece as it arrives.
#[derive(Debug)]
pub(super) struct Collector {
    keep: bool,
    limit: usize,
    data: Vec<u8>,
    seen: u64,
    too_large: bool,
}

/// A body as read: what was kept, and how many bytes came on the wire.
#[derive(Debug)]
pub(crate) struct Kept {
    pub(crate) bytes: Bytes,
    pub(crate) wire_len: u64,
}

impl Collector {
    /// `keep`: the whole body is wanted, up to `limit` bytes; else only its start.
    pub(super) fn new(keep: bool, limit: usize) -> Collector {
        Collector {
            keep,
            limit,
            data: Vec::new(),
            seen: 0,
            too_large: false,
        }
    }

    pub(super) fn push(&mut self, piece: &[u8]) {
        self.seen += piece.len() as u64;
        let room = if self.keep {
            if self.data.len() + piece.len() > self.limit {
                self.too_large = true;
                return;
            }
            piece.len()
        } else {
            PREFIX.saturating_sub(self.data.len()).min(piece.len())
        };
        self.data.extend_from_slice(&piece[..room]);
    }

    /// A kept body went past the limit: stop reading.
    pub(super) fn too_large(&self) -> bool {
        self.too_large
    }

    pub(super) fn finish(self) -> Kept {
        Kept {
            bytes: Bytes::from(self.data),
            wire_len: self.seen,
        }
    }
}

/// Why a body could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BodyError {
    pub(crate) kind: FailureKind,
    pub(crate) message: String,
}

/// The body limit as people read it: `16 MiB`, `512 KiB`, `100 bytes`.
pub(crate) fn size_text(bytes: u64) -> String {
    crate::size::format(bytes)
}

/// The failure of a response whose body said in its `Content-Length` (`announced`) that it is
/// larger than the limit, or went past it as it was read (`None`).
pub(crate) fn response_too_large(limit: usize, announced: Option<u64>) -> BodyError {
    let detail = match announced {
        Some(length) => format!("(Content-Length {length}) is larger than"),
        None => "went past".to_owned(),
    };
    too_large(limit, &detail)
}

/// The failure of a body past the limit.
pub(crate) fn too_large(limit: usize, detail: &str) -> BodyError {
    BodyError {
        kind: FailureKind::BodyTooLarge,
        message: format!(
            "the response body {detail} the body limit of {}; the step reads it (an extract or a check), so the rest was not read (raise --max-body or `max_body:` if it needs all of it)",
            size_text(limit as u64)
        ),
    }
}

/// The body as the application meant it: gzip, deflate and brotli bodies decoded, at most
/// `limit` bytes of it.
pub(crate) fn decoded_body(
    headers: &HeaderMap,
    body: &Bytes,
    limit: usize,
) -> Result<Bytes, BodyError> {
    let Some(encoding) = content_encoding(headers) else {
        return Ok(body.clone());
    };
    let mut out = Vec::new();
    let cap = limit as u64 + 1;
    let result = match encoding.as_str() {
        "gzip" | "x-gzip" => flate2::read::MultiGzDecoder::new(&body[..])
            .take(cap)
            .read_to_end(&mut out),
        "deflate" => flate2::read::ZlibDecoder::new(&body[..])
            .take(cap)
            .read_to_end(&mut out),
        "br" => brotli::Decompressor::new(&body[..], 4096)
            .take(cap)
            .read_to_end(&mut out),
        _ => return Ok(body.clone()),
    };
    match result {
        Ok(_) if out.len() > limit => Err(too_large(
            limit,
            &format!("decodes ({encoding}) to more than"),
        )),
        Ok(_) => Ok(Bytes::from(out)),
        Err(err) => Err(BodyError {
            kind: FailureKind::InvalidResponse,
            message: format!("the {encoding} body does not decode: {err}"),
        }),
    }
}

/// As much of the start of a body (perhaps only its first bytes, perhaps compressed) as
/// decodes, at most [`PREFIX`] bytes: for a failure message.
pub(crate) fn decoded_start(headers: &HeaderMap, body: &Bytes) -> Bytes {
    let Some(encoding) = content_encoding(headers) else {
        return body.clone();
    };
    let mut out = vec![0u8; PREFIX];
    let mut filled = 0;
    let mut reader: Box<dyn std::io::Read + '_> = match encoding.as_str() {
        "gzip" | "x-gzip" => Box::new(flate2::read::MultiGzDecoder::new(&body[..])),
        "deflate" => Box::new(flate2::read::ZlibDecoder::new(&body[..])),
        "br" => Box::new(brotli::Decompressor::new(&body[..], 4096)),
        _ => return body.clone(),
    };
    while filled < PREFIX {
        match reader.read(&mut out[filled..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => filled += n,
        }
    }
    out.truncate(filled);
    Bytes::from(out)
}

fn content_encoding(headers: &HeaderMap) -> Option<String> {
    headers
        .get(http::header::CONTENT_ENCODING)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.trim().to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use http::HeaderValue;

    use super::*;

    fn gzip(data: &[u8]) -> Bytes {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).unwrap();
        Bytes::from(encoder.finish().unwrap())
    }

    fn gzip_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_ENCODING,
            HeaderValue::from_static("gzip"),
        );
        headers
    }

    #[test]
    fn a_kept_body_stops_at_the_limit_and_an_unread_one_keeps_its_start() {
        let mut kept = Collector::new(true, 10);
        kept.push(b"0123456");
        kept.push(b"789");
        assert!(!kept.too_large());
        kept.push(b"x");
        assert!(kept.too_large());
        assert_eq!(&kept.finish().bytes[..], b"0123456789");

        let mut unread = Collector::new(false, 10);
        for _ in 0..1000 {
            unread.push(&[b'a'; 100]);
        }
        assert!(!unread.too_large());
        let unread = unread.finish();
        assert_eq!((unread.bytes.len(), unread.wire_len), (PREFIX, 100_000));
    }

    #[test]
    fn bodies_are_decoded_within_the_limit() {
        let headers = gzip_headers();
        let body = gzip(b"{\"a\":1}");
        assert_eq!(
            decoded_body(&headers, &body, 100).unwrap(),
            &b"{\"a\":1}"[..]
        );
        let bomb = gzip(&vec![b'0'; 1_000_000]);
        let err = decoded_body(&headers, &bomb, 1000).unwrap_err();
        assert_eq!(err.kind, FailureKind::BodyTooLarge);
        assert!(
            err.message
                .contains("decodes (gzip) to more than the body limit of 1000 bytes"),
            "{}",
            err.message
        );
        let err = decoded_body(&headers, &Bytes::from_static(b"plain"), 100).unwrap_err();
        assert_eq!(err.kind, FailureKind::InvalidResponse);
        assert_eq!(
            decoded_body(&HeaderMap::new(), &Bytes::from_static(b"plain"), 1).unwrap(),
            &b"plain"[..]
        );
    }

    #[test]
    fn the_start_of_a_cut_compressed_body_decodes_for_a_message() {
        let body = gzip(&b"error: the database is down. ".repeat(500));
        let start = body.slice(..body.len() / 2);
        let text = decoded_start(&gzip_headers(), &start);
        assert!(
            text.starts_with(b"error: the database is down."),
            "{text:?}"
        );
        assert!(text.len() <= PREFIX);
    }
}
