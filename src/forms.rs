//! Form bodies as a server reads them: `application/x-www-form-urlencoded` pairs and the
//! parts of `multipart/form-data` (RFC 7578). One reader for convert (what a recorded request
//! sent) and `--check` (what a replayed one sent).

/// One part of a multipart body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FormPart {
    pub(crate) name: String,
    pub(crate) value: String,
    /// `(filename, content type)` of a file part.
    pub(crate) file: Option<(String, String)>,
}

/// The parts of a `multipart/form-data` body whose content type is `mime`, or `None` when
/// it does not parse.
pub(crate) fn multipart(mime: &str, text: &str) -> Option<Vec<FormPart>> {
    let boundary = mime
        .split(';')
        .find_map(|param| param.trim().strip_prefix("boundary="))?
        .trim_matches('"');
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut sections = text.split(delimiter.as_str());
    sections.next()?; // the preamble, before the first delimiter
    for section in sections {
        if section.starts_with("--") {
            return Some(parts); // the closing delimiter
        }
        let section = section.strip_prefix("\r\n")?;
        let (head, content) = section.split_once("\r\n\r\n")?;
        let content = content.strip_suffix("\r\n")?;
        let mut name = None;
        let mut filename = None;
        let mut content_type = None;
        for line in head.split("\r\n") {
            let (header, value) = line.split_once(':')?;
            if header.trim().eq_ignore_ascii_case("content-disposition") {
                for param in parameters(value).into_iter().skip(1) {
                    let (key, quoted) = param.trim().split_once('=')?;
                    let unquoted = unquote(quoted.trim());
                    match key.trim() {
                        "name" => name = Some(unquoted),
                        "filename" => filename = Some(unquoted),
                        _ => {}
                    }
                }
            } else if header.trim().eq_ignore_ascii_case("content-type") {
                content_type = Some(value.trim().to_owned());
            }
        }
        parts.push(FormPart {
            name: name?,
            value: content.to_owned(),
            file: filename.map(|filename| {
                let kind = content_type.unwrap_or_else(|| "application/octet-stream".to_owned());
                (filename, kind)
            }),
        });
    }
    None
}

/// A header value's `;`-separated parts; a `;` inside a quoted string (`filename="a;b.txt"`)
/// does not separate. Browsers write a `"` in a name as `%22` and a backslash as it is, so a
/// backslash escapes nothing.
fn parameters(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (at, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => {
                parts.push(&value[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}

/// A parameter's value without the quotes around it.
fn unquote(value: &str) -> String {
    value
        .strip_prefix('"')
        .map_or(value, |rest| rest.strip_suffix('"').unwrap_or(rest))
        .to_owned()
}

/// The fields a form body sends, `(name, value)` in order: URL-encoded pairs, or the text
/// parts of a multipart body. Nothing for other bodies.
pub(crate) fn fields(content_type: Option<&str>, body: &[u8]) -> Vec<(String, String)> {
    let Some(content_type) = content_type else {
        return Vec::new();
    };
    let lower = content_type.to_ascii_lowercase();
    if lower.starts_with("application/x-www-form-urlencoded") {
        return url::form_urlencoded::parse(body).into_owned().collect();
    }
    if lower.starts_with("multipart/form-data") {
        let text = String::from_utf8_lossy(body);
        return multipart(content_type, &text)
            .unwrap_or_default()
            .into_iter()
            .filter(|part| part.file.is_none())
            .map(|part| (part.name, part.value))
            .collect();
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;
    use crate::fuzzing::config;

    /// A multipart body as a browser writes it: names and file names with `"`, CR and LF
    /// percent-encoded (WHATWG's rule), values that never hold the boundary.
    fn browser_body(boundary: &str, parts: &[(String, String, Option<String>)]) -> String {
        let escape = |text: &str| {
            text.replace('"', "%22")
                .replace('\r', "%0D")
                .replace('\n', "%0A")
        };
        let mut body = String::new();
        for (name, value, filename) in parts {
            body.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"",
                escape(name)
            ));
            if let Some(filename) = filename {
                body.push_str(&format!(
                    "; filename=\"{}\"\r\nContent-Type: text/plain",
                    escape(filename)
                ));
            }
            body.push_str(&format!("\r\n\r\n{value}\r\n"));
        }
        body.push_str(&format!("--{boundary}--\r\n"));
        body
    }

    #[test]
    fn a_quoted_semicolon_is_part_of_a_name() {
        // Regression: parameters were split at every `;`, so a file named `a;b.txt` made the
        // whole body unreadable and a field named `x;y` was read as `x`.
        let parts = vec![
            ("x;y".to_owned(), "1".to_owned(), None),
            (
                "f".to_owned(),
                "data".to_owned(),
                Some("a;b.txt".to_owned()),
            ),
        ];
        let body = browser_body("B", &parts);
        let read = multipart("multipart/form-data; boundary=B", &body).unwrap();
        assert_eq!(read[0].name, "x;y");
        assert_eq!(
            read[1].file,
            Some(("a;b.txt".to_owned(), "text/plain".to_owned()))
        );
        assert_eq!(unquote(r#""a\b""#), "a\\b");
    }

    /// The fuzz properties (`cargo test fuzz`; docs/security.md, "Fuzzing").
    mod fuzz {
        use super::*;

        proptest! {
            #![proptest_config(config(2048))]

            #[test]
            fn what_a_browser_sends_reads_back(
                boundary in "[-a-zA-Z0-9'()+_,./:=?]{1,40}",
                parts in vec(
                    ("[ -~\u{e9}\n]{0,12}", "[ -~\u{e9}\r\n]{0,30}", proptest::option::of("[ -~]{0,10}")),
                    0..6,
                ),
            ) {
                let body = browser_body(&boundary, &parts);
                // A browser picks a boundary that is nowhere in what it sends.
                prop_assume!(body.matches(&format!("--{boundary}")).count() == parts.len() + 1);
                let mime = format!("multipart/form-data; boundary={boundary}");
                let read = multipart(&mime, &body);
                prop_assert!(read.is_some(), "{:?}", body);
                let read = read.unwrap();
                prop_assert_eq!(read.len(), parts.len());
                for (part, (name, value, filename)) in read.iter().zip(&parts) {
                    let escape = |text: &str| {
                        text.replace('"', "%22").replace('\r', "%0D").replace('\n', "%0A")
                    };
                    prop_assert_eq!(&part.name, &escape(name));
                    prop_assert_eq!(&part.value, value);
                    prop_assert_eq!(
                        part.file.as_ref().map(|(name, _)| name.clone()),
                        filename.as_deref().map(escape)
                    );
                }
            }

            #[test]
            fn any_body_reads_as_fields_no_larger_than_itself(
                content_type in prop_oneof![
                    Just("application/x-www-form-urlencoded".to_owned()),
                    "multipart/form-data; boundary=[-a-z\"]{0,6}",
                    "[ -~]{0,30}",
                ],
                body in prop_oneof![
                    vec(any::<u8>(), 0..200),
                    vec(prop::sample::select(vec![
                        "--", "--b", "\r\n", "\r\n\r\n", "Content-Disposition: form-data",
                        "; name=", "\"", ";", "=", "&", "%", "%2", "%e9", "+", "filename=",
                        "Content-Type:", "a", "\u{e9}",
                    ]), 0..40).prop_map(|pieces| pieces.concat().into_bytes()),
                ],
            ) {
                let fields = fields(Some(&content_type), &body);
                let size: usize = fields.iter().map(|(name, value)| name.len() + value.len()).sum();
                // Lossy UTF-8 turns a stray byte into a 3-byte replacement character at most.
                prop_assert!(size <= 3 * body.len(), "{} from {} bytes", size, body.len());
                let _ = multipart(&content_type, &String::from_utf8_lossy(&body));
            }
        }
    }
}
