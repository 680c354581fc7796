//! Whether a replayed exchange did what the recorded one did. Both are read into the same
//! [`Outcome`] (status, where a redirect points, the media type, an HTML page's title and
//! form fields, a JSON object's keys, the body's size) and compared after what legitimately
//! differs between two sessions is set aside: ids (digit runs, long tokens) and the
//! account's own values (`user01` in the recording, `user07` in the replay). Plain
//! functions; `chorus run --check` (cli) feeds them the engine's observations and the
//! capture's entries.

use base64::Engine as _;

use crate::har;
use crate::html::{FieldKind, Page};
use crate::scenario::{Body, Request, Scenario, Step, StepKind};

mod accounts;
mod review;

pub use accounts::{accounts_for, recorded_account};
pub use review::{Verdict, review};

/// Bodies within this factor of each other's size are alike (pages grow with the data a run
/// creates; a login form instead of a list differs far more).
const SIZE_FACTOR: usize = 4;
/// Size differences below this many bytes never count.
const SIZE_SLACK: usize = 2048;

/// One exchange of one replaying user, in the order the user had it (`--check` asks the
/// engine for these).
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The user's number (from 0).
    pub user: u64,
    /// The flow iteration (from 0); `None` in `on_start` and `on_stop`.
    pub iteration: Option<u64>,
    /// Where in the scenario: `on_start[2]`, `flows[0] (name).steps[3]`.
    pub place: String,
    /// The capture entry (from 1) the request replays, when the scenario says.
    pub recorded: Option<u32>,
    /// An exchange on the way to the step's answer, not the step's own request: a redirect
    /// the engine followed, an authentication challenge it answered (`auth:`), an answer
    /// that ended the session (`relogin:`).
    pub hop: bool,
    pub method: String,
    /// The name statistics count it under.
    pub name: String,
    pub url: String,
    /// The form fields the request's body sent, in order.
    pub sent: Vec<(String, String)>,
    /// What came back (status 0: nothing came back).
    pub outcome: Outcome,
    /// Why the request failed, when it did (status, check, extract, transport).
    pub failure: Option<String>,
}

/// What answered a request, in the shape two sessions are compared in.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Outcome {
    /// 0: nothing came back.
    pub status: u16,
    /// The `Location` header, as sent.
    pub location: Option<String>,
    /// The media type, lower case, without parameters (`text/html`).
    pub media_type: Option<String>,
    /// An HTML page's title.
    pub title: Option<String>,
    /// The title with what the page's own form fields hold set aside (an object's name,
    /// which other users and later iterations change): what two titles are compared by.
    pub title_frame: Option<String>,
    /// The names of an HTML page's form fields, sorted, each once.
    pub fields: Vec<String>,
    /// Whether an HTML page has a password input: a login form.
    pub asks_password: bool,
    /// JSON leaves under a name that says whose account it is (`username`, `email`):
    /// `(JSONPath, value)`; a replay must name its own account where the recording named
    /// its own.
    pub identities: Vec<(String, String)>,
    /// What an HTML page serves for the next request to send back: its hidden fields and
    /// `<meta>` contents, `(name, value)`.
    pub served: Vec<(String, String)>,
    /// A JSON object's top-level keys (of the first element, for an array of objects),
    /// sorted; `None` when the body is not JSON.
    pub json_keys: Option<Vec<String>>,
    /// A JSON array's length (its rows); `None` when the body is not one. An empty list's
    /// rows' keys and size say nothing.
    pub json_rows: Option<usize>,
    pub body_bytes: usize,
}

impl Outcome {
    /// Reads a response.
    pub fn read(
        status: u16,
        location: Option<String>,
        content_type: Option<String>,
        body: &[u8],
    ) -> Outcome {
        let media_type = content_type.map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
        let text = String::from_utf8_lossy(body);
        // Only a JSON object or array has keys to compare: a body that is one number or
        // word (Engine.IO's long-polling answers a poll with `6`, a no-op packet, where the
        // recording had `430[...]`) is text like any other.
        let json = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .filter(|json| json.is_object() || json.is_array());
        let json_rows = json.as_ref().and_then(|json| json.as_array()).map(Vec::len);
        let json_keys = json.map(|json| keys_of(&json));
        let html = json_keys.is_none()
            && (media_type.as_deref().is_some_and(|m| m.contains("html"))
                || text.trim_start().starts_with('<'));
        let mut served = Vec::new();
        let mut asks_password = false;
        let identities = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .map(|json| identities_of(&json))
            .unwrap_or_default();
        let (title, title_frame, fields) = if html {
            let page = Page::parse(&text);
            asks_password = page.fields.iter().any(|f| f.kind == FieldKind::Password);
            for field in &page.fields {
                if let (FieldKind::Hidden, Some(value)) = (field.kind, &field.value) {
                    served.push((field.name.clone(), value.clone()));
                }
            }
            served.extend(page.metas.iter().cloned());
            let fields = page.field_names().into_iter().map(str::to_owned).collect();
            let frame = page.title.as_deref().map(|title| {
                let mut data: Vec<&str> = page
                    .fields
                    .iter()
                    .filter(|f| {
                        !matches!(
                            f.kind,
                            FieldKind::Hidden | FieldKind::Button | FieldKind::Password
                        )
                    })
                    .filter_map(|f| f.value.as_deref().map(str::trim))
                    .filter(|v| v.chars().count() >= 3)
                    .collect();
                data.sort_by_key(|d| std::cmp::Reverse(d.len()));
                let mut frame = title.to_owned();
                for value in data {
                    frame = frame.replace(value, "…");
                }
                frame
            });
            (page.title, frame, fields)
        } else {
            (None, None, Vec::new())
        };
        Outcome {
            status,
            location,
            media_type,
            title,
            title_frame,
            fields,
            asks_password,
            identities,
            served,
            json_rows,
            json_keys,
            body_bytes: body.len(),
        }
    }

    /// Reads the response of a capture's entry.
    pub fn of_entry(entry: &har::Entry) -> Outcome {
        let header = |name: &str| {
            entry
                .response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| h.value.clone())
        };
        let content = &entry.response.content;
        let body: Vec<u8> = match (&content.text, content.encoding.as_deref()) {
            (Some(text), Some("base64")) => base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .unwrap_or_default(),
            (Some(text), _) => text.clone().into_bytes(),
            (None, _) => Vec::new(),
        };
        let content_type = header("content-type")
            .or_else(|| (!content.mime_type.is_empty()).then(|| content.mime_type.clone()));
        let mut outcome = Outcome::read(
            entry.response.status,
            header("location"),
            content_type,
            &body,
        );
        // A capture may leave a body out (too large, binary); its size is still known.
        if content.text.is_none() && content.size > 0 {
            outcome.body_bytes = content.size as usize;
        }
        // A body cut at the recorder's --max-body: what went over the wire is its size.
        if entry.truncated {
            let sent = usize::try_from(entry.response.body_size).unwrap_or(0);
            outcome.body_bytes = outcome.body_bytes.max(sent);
        }
        outcome
    }
}

/// Names of JSON fields that hold an account's identity.
const IDENTITY_KEYS: &[&str] = &[
    "username",
    "user_name",
    "login",
    "preferred_username",
    "email",
    "sub",
];

fn identities_of(json: &serde_json::Value) -> Vec<(String, String)> {
    fn walk(value: &serde_json::Value, path: &str, out: &mut Vec<(String, String)>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, child) in map {
                    let here = format!("{path}.{key}");
                    match child {
                        serde_json::Value::String(text)
                            if IDENTITY_KEYS.contains(&key.to_ascii_lowercase().as_str()) =>
                        {
                            out.push((here, text.clone()));
                        }
                        _ => walk(child, &here, out),
                    }
                }
            }
            serde_json::Value::Array(items) => {
                if let Some(first) = items.first() {
                    walk(first, &format!("{path}[0]"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(json, "$", &mut out);
    out
}

fn keys_of(json: &serde_json::Value) -> Vec<String> {
    let object = match json {
        serde_json::Value::Object(object) => Some(object),
        serde_json::Value::Array(items) => items.first().and_then(|first| first.as_object()),
        _ => None,
    };
    let mut keys: Vec<String> = object
        .map(|object| object.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

/// One way a replayed exchange differs from the recorded one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// `status`, `redirect`, `media type`, `title`, `form fields`, `JSON keys`, `body size`.
    pub what: &'static str,
    pub recorded: String,
    pub replayed: String,
}

/// The values that differ between the recorded account and the replaying one, each set
/// aside as a placeholder before comparing: (placeholder, recorded value, replayed value).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Accounts {
    pub pairs: Vec<(String, String, String)>,
}

/// How the replay differs from the recording; empty when it did what the recording did.
pub fn compare(recorded: &Outcome, replayed: &Outcome, accounts: &Accounts) -> Vec<Difference> {
    let mut out = Vec::new();
    let recorded_side = |text: &str| shape(text, accounts.pairs.iter().map(|(p, r, _)| (p, r)));
    let replayed_side = |text: &str| shape(text, accounts.pairs.iter().map(|(p, _, r)| (p, r)));
    let not_modified = |a: u16, b: u16| (a == 304 && b == 200) || (a == 200 && b == 304);
    if recorded.status != replayed.status && !not_modified(recorded.status, replayed.status) {
        differ(
            &mut out,
            "status",
            recorded.status.to_string(),
            status_text(replayed.status),
        );
    }
    let location = |outcome: &Outcome| {
        outcome
            .location
            .as_deref()
            .map(path_and_query)
            .unwrap_or_default()
    };
    let (recorded_location, replayed_location) = (location(recorded), location(replayed));
    if recorded_side(&recorded_location) != replayed_side(&replayed_location) {
        differ(
            &mut out,
            "redirect",
            shown_or_none(&recorded_location),
            shown_or_none(&replayed_location),
        );
    }
    // Where the recording's answer named its own account, the replay's must name the
    // replaying user's (a replay acting as the recorded user gets the recording's name).
    for (path, value) in &recorded.identities {
        let Some((_, recorded_value, own)) = accounts
            .pairs
            .iter()
            .find(|(_, recorded_value, _)| recorded_value == value)
        else {
            continue;
        };
        let replayed_value = replayed
            .identities
            .iter()
            .find(|(other, _)| other == path)
            .map(|(_, v)| v.as_str());
        if replayed_value.is_some_and(|v| v != own && v == recorded_value) {
            differ(
                &mut out,
                "account",
                format!("{path} named the recording's own account"),
                format!(
                    "{path} is {recorded_value}, the recording's account, not the replaying user's {own}"
                ),
            );
        }
    }
    // A status that differs says it all; the rest compares bodies of the same kind.
    if !out.is_empty() || replayed.status == 304 || recorded.status == 304 {
        return out;
    }
    if recorded.media_type != replayed.media_type {
        differ(
            &mut out,
            "media type",
            recorded.media_type.clone().unwrap_or_default(),
            replayed.media_type.clone().unwrap_or_default(),
        );
        return out;
    }
    let title =
        |outcome: &Outcome, side: &dyn Fn(&str) -> String| outcome.title_frame.as_deref().map(side);
    if title(recorded, &recorded_side) != title(replayed, &replayed_side) {
        differ(
            &mut out,
            "title",
            recorded.title.clone().unwrap_or_default(),
            replayed.title.clone().unwrap_or_default(),
        );
    }
    let fields = |outcome: &Outcome, side: &dyn Fn(&str) -> String| {
        let mut names: Vec<String> = outcome.fields.iter().map(|f| side(f)).collect();
        names.sort();
        names.dedup();
        names
    };
    let (recorded_fields, replayed_fields) = (
        fields(recorded, &recorded_side),
        fields(replayed, &replayed_side),
    );
    // Pages that list data have fields per row (`ids[]`, next/previous links): another
    // page is one that asks for a password the other did not, or lost most of the
    // recorded fields.
    let lost = recorded_fields
        .iter()
        .filter(|name| !replayed_fields.contains(name))
        .count();
    let another_page = recorded.asks_password != replayed.asks_password
        || (lost > 0 && lost * 2 > recorded_fields.len());
    if another_page {
        differ(
            &mut out,
            "form fields",
            set_difference(&recorded_fields, &replayed_fields),
            set_difference(&replayed_fields, &recorded_fields),
        );
    }
    // A list that was empty on one side and has rows on the other (the application's state
    // moved on: another user's kernel in a list of them) has no keys or size to compare.
    let rows_vs_none = match (recorded.json_rows, replayed.json_rows) {
        (Some(recorded), Some(replayed)) => (recorded == 0) != (replayed == 0),
        _ => false,
    };
    if recorded.json_keys != replayed.json_keys && !rows_vs_none {
        let list = |keys: &Option<Vec<String>>| match keys {
            Some(keys) => keys.join(", "),
            None => "(not JSON)".to_owned(),
        };
        differ(
            &mut out,
            "JSON keys",
            list(&recorded.json_keys),
            list(&replayed.json_keys),
        );
    }
    let (small, large) = if recorded.body_bytes < replayed.body_bytes {
        (recorded.body_bytes, replayed.body_bytes)
    } else {
        (replayed.body_bytes, recorded.body_bytes)
    };
    let empty_vs_not = (small == 0) != (large == 0);
    if !rows_vs_none
        && (empty_vs_not || (large - small > SIZE_SLACK && large > small * SIZE_FACTOR))
    {
        differ(
            &mut out,
            "body size",
            format!("{} bytes", recorded.body_bytes),
            format!("{} bytes", replayed.body_bytes),
        );
    }
    out
}

fn differ(out: &mut Vec<Difference>, what: &'static str, recorded: String, replayed: String) {
    out.push(Difference {
        what,
        recorded,
        replayed,
    });
}

fn status_text(status: u16) -> String {
    if status == 0 {
        "no response".to_owned()
    } else {
        status.to_string()
    }
}

fn shown_or_none(text: &str) -> String {
    if text.is_empty() {
        "(no redirect)".to_owned()
    } else {
        text.to_owned()
    }
}

/// What a `Location` points at, without scheme and host: a replay runs against another
/// host, and the recorder rewrote the recorded ones to itself.
pub fn path_and_query(location: &str) -> String {
    match url::Url::parse(location) {
        Ok(url) => match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        },
        Err(_) => location.to_owned(),
    }
}

/// Names in `a` that `b` lacks, or `(same)`.
fn set_difference(a: &[String], b: &[String]) -> String {
    let only: Vec<&str> = a
        .iter()
        .filter(|name| !b.contains(name))
        .map(String::as_str)
        .collect();
    if only.is_empty() {
        "(none other)".to_owned()
    } else {
        format!("only here: {}", only.join(", "))
    }
}

/// `text` with the account's values as their placeholders, then every run of digits as `#`
/// and every long token of letters and digits as `*`: what stays is what must be alike.
fn shape<'a>(text: &str, values: impl Iterator<Item = (&'a String, &'a String)>) -> String {
    // Decoded first: `iss=http%3A%2F%2Fh%3A8001` compares as `iss=http://h:#`.
    let mut text = percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned();
    let mut values: Vec<(&String, &String)> = values.filter(|(_, v)| !v.is_empty()).collect();
    // Longer values first, so `user01@example.org` goes before `user01`.
    values.sort_by_key(|(_, value)| std::cmp::Reverse(value.len()));
    for (placeholder, value) in values {
        text = text.replace(value.as_str(), placeholder);
        let encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
        if encoded != *value {
            text = text.replace(&encoded, placeholder);
        }
    }
    let mut out = String::with_capacity(text.len());
    for token in tokens(&text) {
        match crate::values::shape(token) {
            crate::values::Shape::Number => out.push('#'),
            crate::values::Shape::Token => out.push('*'),
            _ => out.push_str(token),
        }
    }
    out
}

/// `text` cut into runs of the characters ids and tokens are made of (ASCII letters,
/// digits, `-`, `_`) and single other characters.
fn tokens(text: &str) -> impl Iterator<Item = &str> {
    let in_token = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut rest = text;
    std::iter::from_fn(move || {
        let first = rest.chars().next()?;
        let end = if in_token(first) {
            rest.find(|c: char| !in_token(c)).unwrap_or(rest.len())
        } else {
            first.len_utf8()
        };
        let (token, tail) = rest.split_at(end);
        rest = tail;
        Some(token)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html(status: u16, location: Option<&str>, body: &str) -> Outcome {
        Outcome::read(
            status,
            location.map(str::to_owned),
            Some("text/html; charset=utf-8".to_owned()),
            body.as_bytes(),
        )
    }

    fn accounts() -> Accounts {
        Accounts {
            pairs: vec![(
                "{user.username}".to_owned(),
                "admin01".to_owned(),
                "editor".to_owned(),
            )],
        }
    }

    #[test]
    fn a_body_the_recorder_cut_counts_at_its_full_size() {
        let text = r#"{"startedDateTime":"2026-01-01T00:00:00Z","time":1,
            "request":{"method":"GET","url":"https://a/big","httpVersion":"HTTP/2","headers":[],
              "queryString":[],"cookies":[],"headersSize":-1,"bodySize":0},
            "response":{"status":200,"statusText":"","httpVersion":"HTTP/2","headers":[],
              "cookies":[],"content":{"size":4,"mimeType":"text/plain","text":"abcd"},
              "redirectURL":"","headersSize":-1,"bodySize":3000000},
            "cache":{},"timings":{"send":0,"wait":0,"receive":0},"_truncated":true}"#;
        let entry: har::Entry = serde_json::from_str(text).unwrap();
        assert_eq!(Outcome::of_entry(&entry).body_bytes, 3_000_000);
        let replayed = Outcome::read(
            200,
            None,
            Some("text/plain".to_owned()),
            &vec![b'x'; 3_000_000],
        );
        assert_eq!(
            compare(&Outcome::of_entry(&entry), &replayed, &accounts()),
            vec![]
        );
    }

    #[test]
    fn ids_and_account_values_are_set_aside() {
        let recorded = html(302, Some("http://127.0.0.1:9090/ticket/6?by=admin01"), "");
        let replayed = html(302, Some("/ticket/41?by=editor"), "");
        assert_eq!(compare(&recorded, &replayed, &accounts()), vec![]);
        let page = |title: &str| {
            html(
                200,
                None,
                &format!("<title>{title}</title><form><input name=csrf value=x></form>"),
            )
        };
        assert_eq!(
            compare(
                &page("#6 by admin01 | Trac"),
                &page("#418 by editor | Trac"),
                &accounts()
            ),
            vec![]
        );
    }

    #[test]
    fn a_port_inside_an_encoded_url_is_a_number_like_any_other() {
        let location =
            |port: u16| format!("http://127.0.0.1:{port}/cb?iss=http%3A%2F%2F127.0.0.1%3A{port}");
        let (recorded, replayed) = (
            html(303, Some(&location(45933)), ""),
            html(303, Some(&location(8001)), ""),
        );
        assert_eq!(compare(&recorded, &replayed, &accounts()), vec![]);
        let elsewhere = html(303, Some("/cb?iss=http%3A%2F%2Fevil.example%3A8001"), "");
        assert_eq!(compare(&recorded, &elsewhere, &accounts()).len(), 1);
    }

    #[test]
    fn a_login_page_instead_of_the_list_is_a_difference() {
        let recorded = html(302, Some("/admin/flatpages/flatpage/"), "");
        let replayed = html(
            302,
            Some("/admin/login/?next=/admin/flatpages/flatpage/"),
            "",
        );
        assert_eq!(
            compare(&recorded, &replayed, &Accounts::default()),
            vec![Difference {
                what: "redirect",
                recorded: "/admin/flatpages/flatpage/".to_owned(),
                replayed: "/admin/login/?next=/admin/flatpages/flatpage/".to_owned()
            }]
        );
        let list = html(
            200,
            None,
            "<title>Select flat page to change | Django site admin</title><form><input name=q></form>",
        );
        let login = html(
            200,
            None,
            "<title>Log in | Django site admin</title><form><input name=username><input name=password></form>",
        );
        let differences = compare(&list, &login, &Accounts::default());
        assert_eq!(
            differences.iter().map(|d| d.what).collect::<Vec<_>>(),
            ["title", "form fields"]
        );
        assert_eq!(differences[1].recorded, "only here: q");
        assert_eq!(differences[1].replayed, "only here: password, username");
    }

    #[test]
    fn a_body_that_is_one_json_number_has_no_keys() {
        // Engine.IO answers a long-poll with `6` (a no-op) when the recording had the
        // acknowledgement the browser's concurrent post brought (`430[...]`).
        let text =
            |body: &str| Outcome::read(200, None, Some("text/plain".to_owned()), body.as_bytes());
        assert_eq!(
            compare(
                &text(r#"430[{"room":"lobby","members":1}]"#),
                &text("6"),
                &Accounts::default()
            ),
            vec![]
        );
    }

    #[test]
    fn statuses_media_types_json_keys_and_sizes() {
        let json = |status: u16, body: &str| {
            Outcome::read(
                status,
                None,
                Some("application/json".to_owned()),
                body.as_bytes(),
            )
        };
        assert_eq!(
            compare(
                &json(200, r#"{"id":1}"#),
                &json(401, r#"{"error":"x"}"#),
                &Accounts::default()
            ),
            vec![Difference {
                what: "status",
                recorded: "200".to_owned(),
                replayed: "401".to_owned()
            }]
        );
        assert_eq!(
            compare(
                &json(200, r#"[{"id":1,"title":"a"}]"#),
                &json(200, r#"[{"id":9,"title":"b"},{"id":10,"title":"c"}]"#),
                &Accounts::default()
            ),
            vec![]
        );
        assert_eq!(
            compare(
                &json(200, r#"{"accessToken":"x","user":{}}"#),
                &json(200, r#""Cannot find user""#),
                &Accounts::default()
            )[0]
            .what,
            "JSON keys"
        );
        let big = "x".repeat(50_000);
        assert_eq!(
            compare(
                &json(200, &format!("\"{big}\"")),
                &json(200, "\"small\""),
                &Accounts::default()
            )[0]
            .what,
            "body size"
        );
        let nothing = Outcome::default();
        assert_eq!(
            compare(&json(200, "{}"), &nothing, &Accounts::default())[0].replayed,
            "no response"
        );
        // A list empty in the recording has rows in the replay (or the other way round):
        // nothing to compare; an object in place of the list is a difference.
        assert_eq!(
            compare(
                &json(200, "[]"),
                &json(200, r#"[{"id":"k1","name":"python3"}]"#),
                &Accounts::default()
            ),
            vec![]
        );
        assert_eq!(
            compare(
                &json(200, r#"[{"id":"k1"}]"#),
                &json(200, " [ ]"),
                &Accounts::default()
            ),
            vec![]
        );
        assert_eq!(
            compare(
                &json(200, "[]"),
                &json(200, r#"{"message":"Forbidden"}"#),
                &Accounts::default()
            )[0]
            .what,
            "JSON keys"
        );
        // A 304 in the recording is a 200 in a replay without the browser's cache.
        assert_eq!(
            compare(&json(304, ""), &json(200, "{}"), &Accounts::default()),
            vec![]
        );
    }
}
