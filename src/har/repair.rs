//! Where a HAR text is, by line and column, and the repair of a capture that ends early: cut
//! back to its last complete entry and closed, so that the entries before the damage are
//! read.

/// The byte offset of serde_json's 1-based line and column.
pub(super) fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let line_start = if line <= 1 {
        0
    } else {
        text.match_indices('\n')
            .nth(line - 2)
            .map_or(text.len(), |(i, _)| i + 1)
    };
    (line_start + column.saturating_sub(1)).min(text.len())
}

pub(super) fn line_column_bytes(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let column = offset
        - before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    (line, column)
}

/// A damaged document cut back to its last complete entry and closed.
#[derive(Debug)]
pub(super) struct Repaired {
    pub(super) text: String,
    /// Byte offset in the original text where it was cut.
    pub(super) cut: usize,
}

/// How deep a cut may be: inside the root object (1), the `log` object (2) and the `entries`
/// array (3), so that an entry is either kept whole or dropped whole.
const MAX_CUT_DEPTH: usize = 3;

/// Walks the JSON text up to where it ends or stops making sense, remembering the last
/// place at depth <= [`MAX_CUT_DEPTH`] where a value had just completed (or a container had
/// just opened); cuts there and appends the closing brackets.
pub(super) fn repair(text: &str) -> Option<Repaired> {
    #[derive(Clone, Copy, PartialEq)]
    enum Frame {
        Array,
        /// An object; `true` while a key is expected next.
        Object(bool),
    }
    let bytes = text.as_bytes();
    let mut stack: Vec<Frame> = Vec::new();
    let mut safe: Option<(usize, Vec<Frame>)> = None;
    let mut i = 0;
    let mut remember = |i: usize, stack: &Vec<Frame>| {
        if !stack.is_empty() && stack.len() <= MAX_CUT_DEPTH {
            safe = Some((i, stack.clone()));
        }
    };
    // After a value completes inside an object, a key is expected after the next comma.
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'{' => {
                stack.push(Frame::Object(true));
                i += 1;
                remember(i, &stack);
            }
            b'[' => {
                stack.push(Frame::Array);
                i += 1;
                remember(i, &stack);
            }
            b'}' | b']' => {
                let expected = if bytes[i] == b'}' {
                    matches!(stack.last(), Some(Frame::Object(_)))
                } else {
                    matches!(stack.last(), Some(Frame::Array))
                };
                if !expected {
                    break;
                }
                stack.pop();
                i += 1;
                if stack.is_empty() {
                    break;
                }
                remember(i, &stack);
            }
            b',' => {
                if let Some(Frame::Object(expect_key)) = stack.last_mut() {
                    *expect_key = true;
                }
                i += 1;
            }
            b':' => {
                if let Some(Frame::Object(expect_key)) = stack.last_mut() {
                    *expect_key = false;
                }
                i += 1;
            }
            b'"' => {
                let mut j = i + 1;
                let mut closed = false;
                while j < bytes.len() {
                    match bytes[j] {
                        b'\\' => j += 2,
                        b'"' => {
                            closed = true;
                            j += 1;
                            break;
                        }
                        _ => j += 1,
                    }
                }
                if !closed {
                    break;
                }
                i = j;
                let is_key = matches!(stack.last(), Some(Frame::Object(true)));
                if !is_key {
                    remember(i, &stack);
                }
            }
            b if b.is_ascii_alphanumeric() || b == b'-' || b == b'+' || b == b'.' => {
                let mut j = i;
                while j < bytes.len()
                    && (bytes[j].is_ascii_alphanumeric() || matches!(bytes[j], b'-' | b'+' | b'.'))
                {
                    j += 1;
                }
                if j == bytes.len() {
                    // A number may have been cut short.
                    break;
                }
                i = j;
                remember(i, &stack);
            }
            _ => break,
        }
    }
    let (cut, stack) = safe?;
    let mut repaired = String::with_capacity(cut + stack.len());
    repaired.push_str(text[..cut].trim_end());
    // A comma left dangling before the cut would make the closed text invalid.
    if repaired.ends_with(',') {
        repaired.pop();
    }
    for frame in stack.iter().rev() {
        repaired.push(if *frame == Frame::Array { ']' } else { '}' });
    }
    Some(Repaired {
        text: repaired,
        cut,
    })
}
