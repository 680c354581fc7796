//! The answers' edges: reading the application's response head (interim answers passed on
//! or dropped), and the proxy's own answers (plain text, the 502 page).

use tokio::io::{AsyncReadExt as _, AsyncWrite};

use super::body::{READ_SIZE, write_flush};
use super::wire::{self, Head, HeadError};
use crate::record::upstream::Upstream;

/// Why a response head did not come.
#[derive(Debug)]
pub(super) enum ResponseError {
    /// The connection closed (or was reset) before a byte of the answer.
    Closed,
    Io(std::io::Error),
    /// It closed in the middle of the head.
    Cut,
    Invalid(HeadError),
}

impl std::fmt::Display for ResponseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResponseError::Closed => {
                f.write_str("the application closed the connection without answering")
            }
            ResponseError::Io(err) => write!(f, "reading the answer failed: {err}"),
            ResponseError::Cut => f.write_str(
                "the application closed the connection in the middle of the response head",
            ),
            ResponseError::Invalid(err) => write!(f, "the application sent {err}"),
        }
    }
}

/// Reads the final response head; interim answers (`103 Early Hints`) go on to the browser,
/// `100 Continue` does not (the relay sent its own).
pub(super) async fn read_response<B: AsyncWrite + Unpin>(
    upstream: &mut Upstream,
    browser: &mut B,
) -> Result<Head, ResponseError> {
    loop {
        let mut scan = wire::HeadScan::default();
        let head = loop {
            if let Some(head) = wire::parse_response(&mut upstream.buffer, &mut scan)
                .map_err(ResponseError::Invalid)?
            {
                break head;
            }
            upstream.buffer.reserve(READ_SIZE);
            match upstream.stream.read_buf(&mut upstream.buffer).await {
                Ok(0) if upstream.buffer.is_empty() => return Err(ResponseError::Closed),
                Ok(0) => return Err(ResponseError::Cut),
                Ok(_) => {}
                Err(err)
                    if upstream.buffer.is_empty()
                        && err.kind() == std::io::ErrorKind::ConnectionReset =>
                {
                    return Err(ResponseError::Closed);
                }
                Err(err) => return Err(ResponseError::Io(err)),
            }
        };
        if (100..200).contains(&head.status) && head.status != 101 {
            if head.status != 100 {
                let _ = write_flush(browser, &head.bytes).await;
            }
            continue;
        }
        return Ok(head);
    }
}

/// A plain-text answer from the proxy itself.
pub(super) fn plain(status: u16, reason: &str, text: &str) -> Vec<u8> {
    wire::answer(
        status,
        reason,
        "text/plain; charset=utf-8",
        format!("{text}\n").as_bytes(),
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page the browser gets when the application cannot be reached.
pub(crate) fn bad_gateway_page(url: &str, reason: &str) -> String {
    let target = url::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| url.to_owned());
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>502 chorus record: {target} unreachable</title></head>\n\
         <body><h1>502 Bad Gateway</h1>\n<p>chorus record could not reach <b>{target}</b> for <code>{url}</code>:</p>\n\
         <pre>{reason}</pre>\n<p>Is the application running? The exchange is recorded in the capture with this error.</p></body></html>\n",
        target = escape(&target),
        url = escape(url),
        reason = escape(reason),
    )
}
