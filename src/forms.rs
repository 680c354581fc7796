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
                for param in value.split(';').skip(1) {
                    let (key, quoted) = param.trim().split_once('=')?;
                    let unquoted = quoted.trim().trim_matches('"').to_owned();
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
