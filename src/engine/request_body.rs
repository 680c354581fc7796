//! The body a request step sends, rendered over the user's variables: JSON, a URL-encoded
//! form, text as written, or `multipart/form-data` (RFC 7578) written as browsers write it (a
//! fresh random boundary per request, one part per field in order, names and file names
//! quoted with `"`, CR and LF percent-encoded as the HTML standard says, a `Content-Type` on
//! file parts). Plain functions; the content type goes with the body.

use bytes::{BufMut as _, Bytes, BytesMut};
use http::HeaderValue;

use crate::scenario::{Body, FileContent, Part, Template, Vars};

/// The body's bytes and the `Content-Type` that says what they are (`None`: text as
/// written, whose type the request's headers give).
pub(super) fn render(
    body: Option<&Body>,
    vars: &Vars,
) -> Result<(Bytes, Option<HeaderValue>), String> {
    let render = |template: &Template| template.render(vars).map_err(|e| e.to_string());
    Ok(match body {
        None => (Bytes::new(), None),
        Some(Body::Json(template)) => (
            Bytes::from(render(template)?),
            Some(HeaderValue::from_static("application/json")),
        ),
        Some(Body::Raw(template)) => (Bytes::from(render(template)?), None),
        Some(Body::Form(pairs)) => {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            for (name, template) in pairs {
                let value = render(template).map_err(|e| format!("{name}: {e}"))?;
                form.append_pair(name, &value);
            }
            (
                Bytes::from(form.finish()),
                Some(HeaderValue::from_static(
                    "application/x-www-form-urlencoded",
                )),
            )
        }
        Some(Body::Multipart(parts)) => {
            let mut rendered = Vec::with_capacity(parts.len());
            for (name, part) in parts {
                let part = match part {
                    Part::Text(template) => {
                        Rendered::Text(render(template).map_err(|e| format!("{name}: {e}"))?)
                    }
                    Part::File(file) => Rendered::File {
                        filename: render(&file.filename)
                            .map_err(|e| format!("{name}.filename: {e}"))?,
                        content_type: file.content_type.clone(),
                        content: match &file.content {
                            FileContent::Template(template) => Bytes::from(
                                render(template).map_err(|e| format!("{name}.content: {e}"))?,
                            ),
                            FileContent::File { bytes, .. } => bytes.clone(),
                        },
                    },
                };
                rendered.push((name.clone(), part));
            }
            let (body, boundary) = encode(&rendered);
            let content_type =
                HeaderValue::from_str(&format!("multipart/form-data; boundary={boundary}"))
                    .map_err(|_| "the multipart boundary is not a valid header".to_owned())?;
            (body, Some(content_type))
        }
    })
}

/// One rendered part of a multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rendered {
    Text(String),
    File {
        filename: String,
        content_type: String,
        content: Bytes,
    },
}

/// A boundary like a browser's (`----WebKitFormBoundary` and 16 random characters), made
/// longer so that content is even less likely to hold it.
fn boundary() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let random: String = (0..24)
        .map(|_| char::from(ALPHABET[rand::random_range(0..ALPHABET.len())]))
        .collect();
    format!("----chorusFormBoundary{random}")
}

/// The body, with a boundary that occurs in no part (a new one is drawn until it does not),
/// and the boundary it used.
fn encode(parts: &[(String, Rendered)]) -> (Bytes, String) {
    loop {
        let boundary = boundary();
        let clashes = parts.iter().any(|(_, part)| match part {
            Rendered::Text(text) => contains(text.as_bytes(), boundary.as_bytes()),
            Rendered::File { content, .. } => contains(content, boundary.as_bytes()),
        });
        if !clashes {
            return (encode_with(parts, &boundary), boundary);
        }
    }
}

/// The body with this boundary.
fn encode_with(parts: &[(String, Rendered)], boundary: &str) -> Bytes {
    let size: usize = parts
        .iter()
        .map(|(name, part)| {
            name.len()
                + 128
                + match part {
                    Rendered::Text(text) => text.len(),
                    Rendered::File {
                        filename, content, ..
                    } => filename.len() + content.len(),
                }
        })
        .sum();
    let mut out = BytesMut::with_capacity(size + boundary.len() * (parts.len() + 1));
    for (name, part) in parts {
        out.put_slice(b"--");
        out.put_slice(boundary.as_bytes());
        out.put_slice(b"\r\nContent-Disposition: form-data; name=\"");
        out.put_slice(escape(name).as_bytes());
        out.put_slice(b"\"");
        match part {
            Rendered::Text(text) => {
                out.put_slice(b"\r\n\r\n");
                out.put_slice(text.as_bytes());
            }
            Rendered::File {
                filename,
                content_type,
                content,
            } => {
                out.put_slice(b"; filename=\"");
                out.put_slice(escape(filename).as_bytes());
                out.put_slice(b"\"\r\nContent-Type: ");
                out.put_slice(content_type.as_bytes());
                out.put_slice(b"\r\n\r\n");
                out.put_slice(content);
            }
        }
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"--");
    out.put_slice(boundary.as_bytes());
    out.put_slice(b"--\r\n");
    out.freeze()
}

/// A name or file name inside `"..."`: `"` as `%22`, CR as `%0D`, LF as `%0A`, as the HTML
/// standard has browsers write them.
fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(['"', '\r', '\n']) {
        return text.into();
    }
    text.replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
        .into()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_written_in_order_with_crlf() {
        let parts = vec![
            (
                "authenticity_token".to_owned(),
                Rendered::Text("t0k".to_owned()),
            ),
            (
                "issue[subject]".to_owned(),
                Rendered::Text("Printer \"jams\"".to_owned()),
            ),
            (
                "attachments[dummy][file]".to_owned(),
                Rendered::File {
                    filename: "a\"b\n.txt".to_owned(),
                    content_type: "application/octet-stream".to_owned(),
                    content: Bytes::from_static(b"\x00\x01"),
                },
            ),
        ];
        let body = encode_with(&parts, "XyZ");
        let expected: &[u8] = b"--XyZ\r\n\
            Content-Disposition: form-data; name=\"authenticity_token\"\r\n\r\n\
            t0k\r\n\
            --XyZ\r\n\
            Content-Disposition: form-data; name=\"issue[subject]\"\r\n\r\n\
            Printer \"jams\"\r\n\
            --XyZ\r\n\
            Content-Disposition: form-data; name=\"attachments[dummy][file]\"; filename=\"a%22b%0A.txt\"\r\n\
            Content-Type: application/octet-stream\r\n\r\n\
            \x00\x01\r\n\
            --XyZ--\r\n";
        assert_eq!(&body[..], expected, "{}", String::from_utf8_lossy(&body));
    }

    #[test]
    fn boundaries_are_fresh_and_absent_from_the_content() {
        let (first, second) = (boundary(), boundary());
        assert_ne!(first, second);
        assert!(first.len() >= 40, "{first}");
        let parts = vec![("a".to_owned(), Rendered::Text("x".to_owned()))];
        let (body, used) = encode(&parts);
        assert!(body.starts_with(format!("--{used}\r\n").as_bytes()));
        assert!(body.ends_with(format!("--{used}--\r\n").as_bytes()));
        assert!(contains(b"abcd", b"bc") && !contains(b"abcd", b"ce"));
        let (empty, used) = encode(&[]);
        assert_eq!(&empty[..], format!("--{used}--\r\n").as_bytes());
    }
}
