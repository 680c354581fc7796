//! HPACK (RFC 7541) for a client: a decoder for the server's header blocks, with its dynamic
//! table stored compactly (the entries' bytes in one `Vec<u8>`, oldest first, and their
//! lengths; nothing points into network buffers), table size updates up to the 4,096 bytes a
//! client offers by default, Huffman strings, and a bound on the decoded header list; and an
//! encoder for requests that uses the static table and literals without indexing (so it keeps
//! no state). Plain functions over byte slices; no input makes them panic.

use std::collections::VecDeque;

use super::huffman;

/// The dynamic table size a client offers by default (SETTINGS_HEADER_TABLE_SIZE unsent).
pub(super) const TABLE_SIZE: usize = 4096;
/// The most a response's decoded header list may hold (names, values and 32 bytes a field,
/// as RFC 9113's SETTINGS_MAX_HEADER_LIST_SIZE counts).
pub(super) const MAX_HEADER_LIST: usize = 256 * 1024;

/// Why a header block cannot be decoded (a connection error: the tables are out of step).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct HpackError(pub(super) String);

impl HpackError {
    fn new(text: &str) -> HpackError {
        HpackError(text.to_owned())
    }
}

/// RFC 7541 Appendix A.
const STATIC: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// The server's header blocks decoded, in order, against a dynamic table.
#[derive(Debug)]
pub(super) struct Decoder {
    /// The entries' names and values, oldest first, back to back.
    bytes: Vec<u8>,
    /// Each entry's start (counted from the first byte ever stored, wrapping), name length and
    /// value length, oldest first.
    entries: VecDeque<(u32, u16, u16)>,
    /// How many bytes were ever dropped off the front of `bytes` (wrapping).
    dropped: u32,
    /// The table's size as RFC 7541 §4.1 counts it.
    size: usize,
    /// The size the server set (at most `TABLE_SIZE`).
    max_size: usize,
}

impl Default for Decoder {
    fn default() -> Decoder {
        Decoder {
            bytes: Vec::new(),
            entries: VecDeque::new(),
            dropped: 0,
            size: 0,
            max_size: TABLE_SIZE,
        }
    }
}

impl Decoder {
    /// Decodes one whole header block, giving each field to `field` in order; fails past
    /// [`MAX_HEADER_LIST`] decoded bytes, or on any malformed representation.
    pub(super) fn decode(
        &mut self,
        mut block: &[u8],
        field: &mut impl FnMut(&[u8], &[u8]),
    ) -> Result<(), HpackError> {
        let mut listed = 0usize;
        let mut fields_seen = false;
        let mut name = Vec::new();
        let mut value = Vec::new();
        while let Some(&first) = block.first() {
            if first & 0x80 != 0 {
                let index = integer(&mut block, 7)?;
                let (n, v) = self.get(index)?;
                listed += n.len() + v.len() + 32;
                check_list(listed)?;
                field(n, v);
                fields_seen = true;
            } else if first & 0xe0 == 0x20 {
                if fields_seen {
                    return Err(HpackError::new("a table size update after a header field"));
                }
                let size = integer(&mut block, 5)?;
                if size > TABLE_SIZE {
                    return Err(HpackError(format!(
                        "a table size update to {size} bytes, past the {TABLE_SIZE} offered"
                    )));
                }
                self.max_size = size;
                self.evict_to(size);
            } else {
                // Literals: with incremental indexing (01), without (0000), never indexed (0001).
                let (prefix, indexed) = if first & 0xc0 == 0x40 {
                    (6, true)
                } else {
                    (4, false)
                };
                let index = integer(&mut block, prefix)?;
                name.clear();
                value.clear();
                if index == 0 {
                    string(&mut block, &mut name)?;
                } else {
                    name.extend_from_slice(self.get(index)?.0);
                }
                string(&mut block, &mut value)?;
                listed += name.len() + value.len() + 32;
                check_list(listed)?;
                field(&name, &value);
                fields_seen = true;
                if indexed {
                    self.insert(&name, &value);
                }
            }
        }
        Ok(())
    }

    /// The field at `index` (1-based; the static table first, then the newest entry on).
    fn get(&self, index: usize) -> Result<(&[u8], &[u8]), HpackError> {
        if index == 0 {
            return Err(HpackError::new("index 0"));
        }
        if let Some((name, value)) = STATIC.get(index - 1) {
            return Ok((name.as_bytes(), value.as_bytes()));
        }
        let back = index - STATIC.len() - 1;
        if back >= self.entries.len() {
            return Err(HpackError(format!(
                "index {index} past the tables ({} dynamic entries)",
                self.entries.len()
            )));
        }
        let (start, n, v) = self.entries[self.entries.len() - 1 - back];
        let start = start.wrapping_sub(self.dropped) as usize;
        let name_end = start + usize::from(n);
        Ok((
            &self.bytes[start..name_end],
            &self.bytes[name_end..name_end + usize::from(v)],
        ))
    }

    fn insert(&mut self, name: &[u8], value: &[u8]) {
        let size = name.len() + value.len() + 32;
        if size > self.max_size {
            // Larger than the whole table: the table empties (§4.4).
            self.evict_to(0);
            return;
        }
        self.evict_to(self.max_size - size);
        let needed = self.bytes.len() + name.len() + value.len();
        // Grown by an eighth at a time, not doubled: a table full of small entries holds about
        // half of its size in bytes, and every idle connection keeps its table.
        if needed > self.bytes.capacity() {
            let target = (needed + needed / 8).min(self.max_size).max(needed);
            self.bytes.reserve_exact(target - self.bytes.len());
        }
        if self.entries.len() == self.entries.capacity() {
            self.entries.reserve_exact((self.entries.len() / 4).max(4));
        }
        let start = self.dropped.wrapping_add(self.bytes.len() as u32);
        self.bytes.extend_from_slice(name);
        self.bytes.extend_from_slice(value);
        // An entry is at most `max_size` (4,096) bytes: its lengths fit 16 bits.
        self.entries
            .push_back((start, name.len() as u16, value.len() as u16));
        self.size += size;
    }

    /// Drops the oldest entries until the table's size is at most `size`.
    fn evict_to(&mut self, size: usize) {
        let mut dropped = 0;
        while self.size > size {
            let Some((_, n, v)) = self.entries.pop_front() else {
                break;
            };
            let length = usize::from(n) + usize::from(v);
            dropped += length;
            self.size -= length + 32;
        }
        self.bytes.drain(..dropped);
        self.dropped = self.dropped.wrapping_add(dropped as u32);
        if self.entries.is_empty() {
            self.dropped = 0;
            self.bytes = Vec::new();
            self.entries = VecDeque::new();
        }
    }

    /// The table's size as RFC 7541 counts it (for tests).
    #[cfg(test)]
    pub(super) fn size(&self) -> usize {
        self.size
    }
}

fn check_list(listed: usize) -> Result<(), HpackError> {
    if listed > MAX_HEADER_LIST {
        return Err(HpackError(format!(
            "a header list larger than {} KiB",
            MAX_HEADER_LIST / 1024
        )));
    }
    Ok(())
}

/// Reads an integer with an `prefix`-bit prefix (§5.1) off the front of `block`.
fn integer(block: &mut &[u8], prefix: u32) -> Result<usize, HpackError> {
    let truncated = || HpackError::new("a header block that ends inside an integer");
    let (&first, mut rest) = block.split_first().ok_or_else(truncated)?;
    let mask = ((1u16 << prefix) - 1) as u8;
    let mut value = usize::from(first & mask);
    if value == usize::from(mask) {
        let mut shift = 0;
        loop {
            let (&byte, after) = rest.split_first().ok_or_else(truncated)?;
            rest = after;
            if shift > 21 {
                return Err(HpackError::new("an integer past 2^28"));
            }
            value += usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
    }
    *block = rest;
    Ok(value)
}

/// Reads a string literal (§5.2) off the front of `block` into `out`.
fn string(block: &mut &[u8], out: &mut Vec<u8>) -> Result<(), HpackError> {
    let huffman = block.first().is_some_and(|&b| b & 0x80 != 0);
    let length = integer(block, 7)?;
    if length > block.len() {
        return Err(HpackError::new("a string longer than its header block"));
    }
    let (text, rest) = block.split_at(length);
    *block = rest;
    if huffman {
        huffman::decode(text, out).map_err(|err| HpackError(err.0.to_owned()))
    } else {
        out.extend_from_slice(text);
        Ok(())
    }
}

/// Appends an integer with a `prefix`-bit prefix, its first byte's other bits `flags`.
fn put_integer(out: &mut Vec<u8>, flags: u8, prefix: u32, value: usize) {
    let max = (1usize << prefix) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    let mut rest = value - max;
    while rest >= 0x80 {
        out.push((rest as u8 & 0x7f) | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// Appends a string literal, Huffman-coded when that is shorter.
fn put_string(out: &mut Vec<u8>, text: &[u8]) {
    let coded = huffman::encoded_len(text);
    if coded < text.len() {
        put_integer(out, 0x80, 7, coded);
        huffman::encode(text, out);
    } else {
        put_integer(out, 0, 7, text.len());
        out.extend_from_slice(text);
    }
}

/// Appends one request field: the static table's index for a whole match, else a literal
/// without indexing (the name by index where the static table has it).
pub(super) fn encode_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    let mut name_index = None;
    for (at, (n, v)) in STATIC.iter().enumerate() {
        if n.as_bytes() == name {
            if v.as_bytes() == value {
                put_integer(out, 0x80, 7, at + 1);
                return;
            }
            name_index.get_or_insert(at + 1);
        }
    }
    match name_index {
        Some(index) => put_integer(out, 0, 4, index),
        None => {
            out.push(0);
            put_string(out, name);
        }
    }
    put_string(out, value);
}

#[cfg(test)]
mod tests;
