//! The two shapes convert works on: `Exchange`, one recorded request and its response in the
//! form the passes need, and `Draft`, the scenario being built, which `write` renders as YAML.

use std::cell::OnceCell;

use serde_json::Value;
use url::Url;

use crate::html::Page;

/// One recorded request and response, as the passes see them.
#[derive(Debug, Clone)]
pub(crate) struct Exchange {
    /// Position of the entry in the capture (0-based), for comments and warnings.
    pub(crate) entry: usize,
    /// When the request started, in milliseconds after the first entry.
    pub(crate) started_ms: f64,
    /// When the request started, in milliseconds since the Unix epoch (for recognising
    /// timestamps the client made up).
    pub(crate) wall_ms: f64,
    /// How long the exchange took, in milliseconds.
    pub(crate) duration_ms: f64,
    pub(crate) method: String,
    pub(crate) url: Url,
    pub(crate) request_headers: Vec<(String, String)>,
    pub(crate) request_body: Option<RecordedBody>,
    pub(crate) status: u16,
    pub(crate) response_headers: Vec<(String, String)>,
    pub(crate) response_mime: String,
    /// The response body as text, when it is text.
    pub(crate) response_body: Option<String>,
    /// The response read as an HTML page, once, when someone asks (boxed: most responses are
    /// not pages, and a capture's exchanges are many).
    pub(crate) page: OnceCell<Option<Box<Page>>>,
    /// A WebSocket's messages (`_webSocketMessages`) or an event stream's events
    /// (`_eventSourceMessages`), when the exchange opened one.
    pub(crate) socket: Option<Box<RecordedSocket>>,
}

/// What went over a recorded socket.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RecordedSocket {
    /// An event stream (`sse:`), else a WebSocket.
    pub(crate) events: bool,
    pub(crate) messages: Vec<RecordedMessage>,
}

/// One text message (or event) on a recorded socket.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RecordedMessage {
    /// Sent by the browser (else received).
    pub(crate) sent: bool,
    /// Milliseconds since the Unix epoch.
    pub(crate) wall_ms: f64,
    /// An event's name (`None`: `message`).
    pub(crate) event: Option<String>,
    pub(crate) text: String,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RecordedBody {
    pub(crate) mime: String,
    pub(crate) text: String,
}

impl Exchange {
    pub(crate) fn request_header(&self, name: &str) -> Option<&str> {
        header(&self.request_headers, name)
    }

    /// `host` or `host:port` when the port is not the scheme's default.
    pub(crate) fn host_key(&self) -> String {
        host_key(&self.url)
    }

    pub(crate) fn ended_ms(&self) -> f64 {
        self.started_ms + self.duration_ms
    }

    pub(crate) fn response_header(&self, name: &str) -> Option<&str> {
        header(&self.response_headers, name)
    }

    /// The response as an HTML page, when it is one.
    pub(crate) fn page(&self) -> Option<&Page> {
        self.page
            .get_or_init(|| {
                let body = self.response_body.as_deref()?;
                let mime = self.response_mime.to_ascii_lowercase();
                let html = mime.contains("html")
                    || (mime.is_empty() && body.trim_start().starts_with('<'));
                html.then(|| Box::new(Page::parse(body)))
            })
            .as_deref()
    }
}

pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

pub(crate) fn host_key(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        _ => String::new(),
    }
}

/// The scenario being built. Strings may hold `{{ templates }}` already.
#[derive(Debug, Clone, Default)]
pub(crate) struct Draft {
    pub(crate) host: String,
    /// Lines for the comment at the top of the file.
    pub(crate) header_comments: Vec<String>,
    /// The CSV columns the `users` source must have, when a login was found.
    pub(crate) user_columns: Vec<String>,
    /// Per-user generated variables: name, template, comment.
    pub(crate) vars: Vec<(String, String, String)>,
    pub(crate) on_start: Vec<DraftStep>,
    pub(crate) flows: Vec<DraftFlow>,
    pub(crate) on_stop: Vec<DraftStep>,
    /// HTTP authentication the engine answers challenges with: (username, password)
    /// templates.
    pub(crate) auth: Option<(String, String)>,
    /// The capture, as the scenario names it (`capture:`).
    pub(crate) capture: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct DraftFlow {
    pub(crate) name: String,
    pub(crate) weight: u32,
    pub(crate) comment: Option<String>,
    pub(crate) steps: Vec<DraftStep>,
}

#[derive(Debug, Clone)]
pub(crate) enum DraftStep {
    Request(Box<DraftRequest>),
    /// Seconds, or a template giving seconds.
    Think(Think),
    Repeat {
        count: u64,
        comment: String,
        steps: Vec<DraftStep>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Think {
    Seconds(f64),
    Template { template: String, comment: String },
}

#[derive(Debug, Clone, Default)]
pub(crate) struct DraftRequest {
    pub(crate) entry: usize,
    pub(crate) method: String,
    /// Path segments as recorded (percent-encoded), possibly templated.
    pub(crate) path: Vec<String>,
    /// Query pairs, decoded, possibly templated.
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: DraftBody,
    pub(crate) extracts: Vec<DraftExtract>,
    pub(crate) status: u16,
    pub(crate) comments: Vec<String>,
    /// What statistics count it under, when the URL alone does not tell requests apart
    /// (GraphQL operations all go to one URL).
    pub(crate) name: Option<String>,
    /// What the recorded response looked like, beyond its status.
    pub(crate) checks: Vec<DraftCheck>,
    /// A condition the step runs under (`when:`).
    pub(crate) when: Option<String>,
    /// The steps on the socket this request opened (`ws:` / `sse:` instead of a request).
    pub(crate) socket: Option<Box<DraftSocket>>,
    /// When the request started and when its response had come, in the capture's
    /// milliseconds: a socket's steps are written among the requests by their recorded times.
    pub(crate) at_ms: f64,
    pub(crate) done_ms: f64,
}

/// A socket the scenario opens, and what it does on it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct DraftSocket {
    pub(crate) events: bool,
    pub(crate) steps: Vec<MessageStep>,
    /// When each step happened in the recording (parallel to `steps`, never decreasing).
    pub(crate) at_ms: Vec<f64>,
}

/// One step on a socket.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MessageStep {
    Send(SendBody),
    /// `every: seconds` with this message.
    Every(f64, SendBody),
    Receive {
        /// An event stream's event name.
        event: Option<String>,
        /// `jsonpath` and what it must equal (a template).
        equals: Option<(String, String)>,
        /// A regex over the text, when no JSON condition fits.
        regex: Option<String>,
        timeout_s: f64,
        /// (variable, JSONPath) extracts.
        extracts: Vec<(String, String)>,
        comment: String,
    },
    Think(f64),
}

/// A message to send: JSON (written as YAML) or text (a Socket.IO packet: its JSON inside).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SendBody {
    Json(Value),
    Text(String),
}

/// A check convert writes so that a replay that went elsewhere fails loudly.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum DraftCheck {
    /// The redirect's path, as a glob (`/ticket/*`).
    Redirect(String),
    /// The page's title, a template.
    Title(String),
    /// The page's title, a regex (when it holds numbers).
    TitleMatches(String),
    /// The JSON object's top-level keys.
    JsonKeys(Vec<String>),
    /// A JSONPath that must find something (a GraphQL answer's data).
    JsonPath(String),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) enum DraftBody {
    #[default]
    None,
    /// JSON; a string leaf that is exactly `{{ var }}` keeps the variable's type.
    Json(Value),
    Form(Vec<(String, String)>),
    /// `multipart/form-data`, part by part.
    Multipart(Vec<Part>),
    Raw {
        mime: String,
        text: String,
    },
}

/// One part of a multipart body: a text field, or a file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Part {
    pub(crate) name: String,
    pub(crate) value: String,
    /// `(filename, content type)` of a file part.
    pub(crate) file: Option<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DraftExtract {
    pub(crate) var: String,
    pub(crate) source: ExtractSource,
    pub(crate) comment: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ExtractSource {
    JsonPath(String),
    Header(String),
    /// A regular expression over the body whose first group is the value.
    Regex(String),
    /// A regular expression over a response header whose first group is the value.
    HeaderRegex {
        header: String,
        pattern: String,
    },
    /// The value of the HTML form field with this name.
    FormField(String),
    /// The content of `<meta name=X>`.
    Meta(String),
    /// A link found by its text (a template), cut by a regex over its href.
    Link {
        text: String,
        pattern: String,
    },
}

/// Pushes `item`, growing a list one element at a time at first (1, 2, 4, ...) instead of by
/// `Vec`'s first step of 4: convert keeps tens of thousands of short lists (a value's offers,
/// a request's extracts), most of them of one element, alive at once.
pub(crate) fn push_snug<T>(list: &mut Vec<T>, item: T) {
    if list.len() == list.capacity() {
        list.reserve_exact(list.len().max(1));
    }
    list.push(item);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snug_list_grows_from_one_by_doubling() {
        let mut list = Vec::new();
        let mut capacities = Vec::new();
        for n in 0..5 {
            push_snug(&mut list, n);
            capacities.push(list.capacity());
        }
        assert_eq!(list, [0, 1, 2, 3, 4]);
        assert_eq!(capacities, [1, 2, 4, 4, 8]);
    }
}
