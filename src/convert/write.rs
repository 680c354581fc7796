//! The draft as scenario YAML, for a person to read: comments say where every extracted value
//! came from and what was left out.

use std::fmt::Write as _;

use serde_json::Value;

use super::model::{
    Draft, DraftBody, DraftCheck, DraftExtract, DraftRequest, DraftStep, ExtractSource,
    MessageStep, SendBody, Think,
};

/// A YAML scalar: plain when that reads the same, else double-quoted (JSON escaping is valid
/// YAML).
pub(crate) fn scalar(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-' | ' ' | '@'))
        && !text.starts_with(['-', ' ', '.', '@'])
        && !text.ends_with(' ')
        && !matches!(
            text.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n" | "~"
        )
        && text.parse::<f64>().is_err();
    if plain {
        text.to_owned()
    } else {
        Value::String(text.to_owned()).to_string()
    }
}

fn comment(out: &mut String, indent: usize, text: &str) {
    for line in text.lines() {
        let _ = writeln!(out, "{:indent$}# {line}", "");
    }
}

/// JSON as YAML block structure; a string that is exactly one `{{ var }}` is written as it
/// is, and the scenario keeps the variable's type when rendering it.
fn json_value(out: &mut String, indent: usize, value: &Value) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                let _ = write!(out, "{:indent$}{}:", "", scalar(key));
                json_child(out, indent, child);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                let _ = write!(out, "{:indent$}-", "");
                match item {
                    Value::Object(map) if !map.is_empty() => {
                        // The first key goes on the dash's line.
                        let mut first = true;
                        for (key, child) in map {
                            if first {
                                let _ = write!(out, " {}:", scalar(key));
                                first = false;
                            } else {
                                let _ = write!(
                                    out,
                                    "{:width$}{}:",
                                    "",
                                    scalar(key),
                                    width = indent + 2
                                );
                            }
                            json_child(out, indent + 2, child);
                        }
                    }
                    other => json_child(out, indent, other),
                }
            }
        }
        other => {
            let _ = writeln!(out, "{:indent$}{}", "", inline(other));
        }
    }
}

fn json_child(out: &mut String, indent: usize, child: &Value) {
    match child {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            json_value(out, indent + 2, child);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            json_value(out, indent + 2, child);
        }
        other => {
            let _ = writeln!(out, " {}", inline(other));
        }
    }
}

fn inline(value: &Value) -> String {
    match value {
        Value::String(text) => scalar(text),
        Value::Object(_) => "{}".to_owned(),
        Value::Array(_) => "[]".to_owned(),
        other => other.to_string(),
    }
}

fn url_of(request: &DraftRequest) -> String {
    let mut url = format!("/{}", request.path.join("/"));
    if !request.query.is_empty() {
        url.push('?');
        let pairs: Vec<String> = request
            .query
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        url.push_str(&pairs.join("&"));
    }
    url
}

/// Percent-encodes a query part, leaving `{{ templates }}` readable.
fn encode(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let end = rest[start..]
            .find("}}")
            .map_or(rest.len(), |e| start + e + 2);
        out.extend(url::form_urlencoded::byte_serialize(
            &rest.as_bytes()[..start],
        ));
        out.push_str(&rest[start..end]);
        rest = &rest[end..];
    }
    out.extend(url::form_urlencoded::byte_serialize(rest.as_bytes()));
    out
}

fn extract_line(extract: &DraftExtract) -> String {
    match &extract.source {
        ExtractSource::JsonPath(path) => scalar(path),
        ExtractSource::Header(name) => format!("{{ header: {} }}", scalar(name)),
        ExtractSource::Regex(pattern) => format!("{{ regex: {} }}", scalar(pattern)),
        ExtractSource::HeaderRegex { header, pattern } => {
            format!(
                "{{ header: {}, regex: {} }}",
                scalar(header),
                scalar(pattern)
            )
        }
        ExtractSource::FormField(name) => format!("{{ form_field: {} }}", scalar(name)),
        ExtractSource::Meta(name) => format!("{{ meta: {} }}", scalar(name)),
        ExtractSource::Link { text, pattern } => {
            format!("{{ link: {}, regex: {} }}", scalar(text), scalar(pattern))
        }
    }
}

fn check_line(check: &DraftCheck) -> String {
    match check {
        DraftCheck::Redirect(glob) => format!("redirect: {}", scalar(glob)),
        DraftCheck::Title(title) => format!("title: {}", scalar(title)),
        DraftCheck::TitleMatches(regex) => format!("title: {{ matches: {} }}", scalar(regex)),
        DraftCheck::JsonKeys(keys) => {
            let keys: Vec<String> = keys.iter().map(|k| scalar(k)).collect();
            format!("json_keys: [{}]", keys.join(", "))
        }
        DraftCheck::JsonPath(path) => format!("jsonpath: {}", scalar(path)),
    }
}

fn request(out: &mut String, indent: usize, request: &DraftRequest) {
    for line in &request.comments {
        comment(out, indent, line);
    }
    if let Some(socket) = &request.socket {
        let key = if socket.events { "sse" } else { "ws" };
        let _ = writeln!(out, "{:indent$}- {key}: {}", "", scalar(&url_of(request)));
        let inner = indent + 2;
        if let Some(when) = &request.when {
            let _ = writeln!(out, "{:inner$}when: {}", "", scalar(when));
        }
        headers_block(out, inner, &request.headers);
        // Its steps follow among the requests, by their recorded times (`steps`).
        return;
    }
    let method = request.method.to_ascii_lowercase();
    let standard = matches!(
        method.as_str(),
        "get" | "post" | "put" | "patch" | "delete" | "head" | "options"
    );
    if standard {
        let _ = writeln!(
            out,
            "{:indent$}- {method}: {}",
            "",
            scalar(&url_of(request))
        );
    } else {
        let _ = writeln!(
            out,
            "{:indent$}- request: {{ method: {}, url: {} }}",
            "",
            scalar(&request.method),
            scalar(&url_of(request))
        );
    }
    let inner = indent + 2;
    if let Some(when) = &request.when {
        let _ = writeln!(out, "{:inner$}when: {}", "", scalar(when));
    }
    if let Some(name) = &request.name {
        let _ = writeln!(out, "{:inner$}name: {}", "", scalar(name));
    }
    let _ = writeln!(out, "{:inner$}recorded: {}", "", request.entry + 1);
    // A raw body says its type in a header of its own, unless the recorded ones do: one
    // `headers:` holds both (a key twice is a scenario that does not load).
    let raw_type = match &request.body {
        DraftBody::Raw { mime, .. }
            if !mime.is_empty()
                && !(request.headers.iter())
                    .any(|(name, _)| name.eq_ignore_ascii_case("content-type")) =>
        {
            Some(("Content-Type".to_owned(), mime.clone()))
        }
        _ => None,
    };
    headers_block(out, inner, request.headers.iter().chain(&raw_type));
    match &request.body {
        DraftBody::None => {}
        DraftBody::Json(value) => {
            let _ = write!(out, "{:inner$}json:", "");
            json_child(out, inner, value);
        }
        DraftBody::Form(pairs) => {
            let _ = writeln!(out, "{:inner$}form:", "");
            for (name, value) in pairs {
                let _ = writeln!(
                    out,
                    "{:width$}{}: {}",
                    "",
                    scalar(name),
                    scalar(value),
                    width = inner + 2
                );
            }
        }
        DraftBody::Multipart(parts) => {
            let _ = writeln!(out, "{:inner$}multipart:", "");
            for part in parts {
                let value = match &part.file {
                    None => scalar(&part.value),
                    Some((filename, kind)) => format!(
                        "{{ filename: {}, content_type: {}, content: {} }}",
                        scalar(filename),
                        scalar(kind),
                        scalar(&part.value)
                    ),
                };
                let _ = writeln!(
                    out,
                    "{:width$}{}: {value}",
                    "",
                    scalar(&part.name),
                    width = inner + 2
                );
            }
        }
        DraftBody::Raw { text, .. } => {
            let _ = writeln!(out, "{:inner$}body: {}", "", scalar(text));
        }
    }
    if !request.extracts.is_empty() {
        let _ = writeln!(out, "{:inner$}extract:", "");
        for extract in &request.extracts {
            comment(out, inner + 2, &extract.comment);
            let _ = writeln!(
                out,
                "{:width$}{}: {}",
                "",
                extract.var,
                extract_line(extract),
                width = inner + 2
            );
        }
    }
    let mut checks: Vec<String> = Vec::new();
    if request.status == 304 {
        // The browser asked "has it changed?"; the replay sends no validators, so it gets
        // the whole answer.
        let _ = writeln!(out, "{:inner$}expect_status: [200, 304]", "");
    } else if request.status >= 400 || (300..400).contains(&request.status) {
        // The recording got this error status: the replay expects it too. A redirect is
        // expected rather than followed, so the step extracts from its `Location` and the
        // browser's next request (recorded as the following step) is the one that follows it.
        let _ = writeln!(out, "{:inner$}expect_status: {}", "", request.status);
    } else {
        checks.push(format!("status: {}", request.status));
    }
    checks.extend(request.checks.iter().map(check_line));
    if !checks.is_empty() {
        let _ = writeln!(out, "{:inner$}check:", "");
        for check in checks {
            let _ = writeln!(out, "{:width$}- {check}", "", width = inner + 2);
        }
    }
}

/// A step's `headers:` at `indent`, one `name: value` per line; nothing when there are none.
fn headers_block<'a>(
    out: &mut String,
    indent: usize,
    headers: impl IntoIterator<Item = &'a (String, String)>,
) {
    let mut headers = headers.into_iter().peekable();
    if headers.peek().is_none() {
        return;
    }
    let _ = writeln!(out, "{:indent$}headers:", "");
    for (name, value) in headers {
        let _ = writeln!(
            out,
            "{:width$}{}: {}",
            "",
            scalar(name),
            scalar(value),
            width = indent + 2
        );
    }
}

/// The steps on a socket, after the step that opens it.
/// `from`: the socket a `receive:` reads, when it is not the one opened last.
fn socket_steps<'a>(
    out: &mut String,
    indent: usize,
    list: impl IntoIterator<Item = (&'a MessageStep, Option<&'static str>)>,
) {
    let inner = indent + 2;
    // `send:` after `lead` (a dash, or the indent under `every:`), its keys at `inner`.
    let send = |out: &mut String, lead: &str, body: &SendBody| match body {
        SendBody::Json(value) => {
            let _ = write!(out, "{lead}send:\n{:width$}json:", "", width = inner + 2);
            json_child(out, inner + 2, value);
        }
        SendBody::Text(text) => {
            let _ = writeln!(out, "{lead}send: {}", scalar(text));
        }
    };
    for (step, from) in list {
        match step {
            MessageStep::Think(seconds) => {
                let _ = writeln!(out, "{:indent$}- think: {seconds}s", "");
            }
            MessageStep::Send(body) => send(out, &format!("{:indent$}- ", ""), body),
            MessageStep::Every(seconds, body) => {
                let _ = writeln!(out, "{:indent$}- every: {seconds}s", "");
                send(out, &format!("{:inner$}", ""), body);
            }
            MessageStep::Receive {
                event,
                equals,
                regex,
                timeout_s,
                extracts,
                comment: why,
            } => {
                comment(out, indent, why);
                let mut condition = Vec::new();
                if let Some(event) = event {
                    condition.push(format!("event: {}", scalar(event)));
                }
                if let Some((path, value)) = equals {
                    condition.push(format!(
                        "jsonpath: {}, equals: {}",
                        scalar(path),
                        scalar(value)
                    ));
                }
                if let Some(regex) = regex {
                    condition.push(format!("regex: {}", scalar(regex)));
                }
                if condition.is_empty() {
                    let _ = writeln!(out, "{:indent$}- receive: any", "");
                } else {
                    let _ = writeln!(
                        out,
                        "{:indent$}- receive: {{ {} }}",
                        "",
                        condition.join(", ")
                    );
                }
                let _ = writeln!(out, "{:inner$}timeout: {timeout_s}s", "");
                if let Some(from) = from {
                    let _ = writeln!(out, "{:inner$}from: {from}", "");
                }
                if !extracts.is_empty() {
                    let _ = writeln!(out, "{:inner$}extract:", "");
                    for (var, path) in extracts {
                        let _ = writeln!(
                            out,
                            "{:width$}{var}: {}",
                            "",
                            scalar(path),
                            width = inner + 2
                        );
                    }
                }
            }
        }
    }
}

/// Whether a socket's step recorded at `at_ms` goes before `request`, as the browser
/// interleaved them: a message it sent while the request was still waiting for its answer
/// (a long-poll that the message ends: Engine.IO answers a poll once the WebSocket's probe
/// came), anything else when it happened before the request started (a message the server
/// pushed because of the request is waited for after it).
fn goes_before(step: &MessageStep, at_ms: f64, request: &DraftRequest) -> bool {
    match step {
        MessageStep::Send(_) => at_ms <= request.done_ms,
        MessageStep::Every(..) | MessageStep::Receive { .. } | MessageStep::Think(_) => {
            at_ms <= request.at_ms
        }
    }
}

/// Writes `list`, each open socket's steps among the requests by their recorded times
/// ([`goes_before`]), in the socket's own order, before the pause ahead of the request they
/// precede. Socket.IO's upgrade needs it: the long-polling requests that the WebSocket's
/// probe answers, and the events posted before the upgrade, come between the socket's first
/// messages and its later ones.
fn steps(out: &mut String, indent: usize, list: &[DraftStep]) {
    // (recorded time, step, whether its socket is an event stream)
    let mut pending: Vec<(f64, &MessageStep, bool)> = Vec::new();
    // Whether the socket opened last is an event stream: a `receive:` reads it by default.
    let mut last_opened: Option<bool> = None;
    let from = |events: bool, last_opened: Option<bool>| {
        (last_opened != Some(events)).then_some(if events { "sse" } else { "ws" })
    };
    for (at, step) in list.iter().enumerate() {
        let next_request = list[at..].iter().find_map(|step| match step {
            DraftStep::Request(r) => Some(r),
            _ => None,
        });
        if !matches!(step, DraftStep::Repeat { .. }) {
            let due = pending
                .iter()
                .take_while(|(ms, message, _)| {
                    next_request.is_some_and(|request| goes_before(message, *ms, request))
                })
                .count();
            let due = pending.drain(..due);
            socket_steps(out, indent, due.map(|(_, s, e)| (s, from(e, last_opened))));
        } else {
            let due = pending.drain(..);
            socket_steps(out, indent, due.map(|(_, s, e)| (s, from(e, last_opened))));
        }
        match step {
            DraftStep::Request(r) => {
                request(out, indent, r);
                if let Some(socket) = &r.socket {
                    last_opened = Some(socket.events);
                    let steps = socket.at_ms.iter().copied().zip(&socket.steps);
                    pending.extend(steps.map(|(ms, step)| (ms, step, socket.events)));
                    pending.sort_by(|a, b| a.0.total_cmp(&b.0));
                }
            }
            DraftStep::Think(Think::Seconds(seconds)) => {
                let _ = writeln!(out, "{:indent$}- think: {seconds}s", "");
            }
            DraftStep::Think(Think::Template {
                template,
                comment: why,
            }) => {
                comment(out, indent, why);
                let _ = writeln!(out, "{:indent$}- think: {}", "", scalar(template));
            }
            DraftStep::Repeat {
                count,
                comment: why,
                steps: body,
            } => {
                comment(out, indent, why);
                let _ = writeln!(out, "{:indent$}- repeat: {count}", "");
                let _ = writeln!(out, "{:width$}steps:", "", width = indent + 2);
                steps(out, indent + 4, body);
            }
        }
    }
    let rest = pending.into_iter();
    socket_steps(out, indent, rest.map(|(_, s, e)| (s, from(e, last_opened))));
}

/// The scenario file's text.
pub(crate) fn yaml(draft: &Draft) -> String {
    let mut out = String::new();
    for line in &draft.header_comments {
        comment(&mut out, 0, line);
    }
    out.push('\n');
    let _ = writeln!(out, "host: {}", scalar(&draft.host));
    if let Some(capture) = &draft.capture {
        comment(
            &mut out,
            0,
            "the recording this was converted from: `chorus run --check` compares the replay with it",
        );
        let _ = writeln!(out, "capture: {}", scalar(capture));
    }
    if !draft.user_columns.is_empty() {
        out.push('\n');
        comment(
            &mut out,
            0,
            &format!(
                "one row per virtual user; the CSV needs the columns: {}",
                draft.user_columns.join(", ")
            ),
        );
        comment(&mut out, 0, "bind another file with --data users=FILE");
        let _ = writeln!(
            out,
            "data:\n  users: {{ file: users.csv, mode: unique, as: user }}"
        );
    }
    if let Some((username, password)) = &draft.auth {
        out.push('\n');
        comment(
            &mut out,
            0,
            "HTTP authentication: the server asked for it (401); each user answers with its own row",
        );
        let _ = writeln!(
            out,
            "auth:\n  username: {}\n  password: {}",
            scalar(username),
            scalar(password)
        );
    }
    if !draft.vars.is_empty() {
        out.push('\n');
        let _ = writeln!(out, "vars:");
        for (name, template, why) in &draft.vars {
            comment(&mut out, 2, why);
            let _ = writeln!(out, "  {name}: {}", scalar(template));
        }
    }
    if !draft.on_start.is_empty() {
        out.push('\n');
        comment(&mut out, 0, "once per virtual user");
        let _ = writeln!(out, "on_start:");
        steps(&mut out, 2, &draft.on_start);
    }
    out.push('\n');
    comment(
        &mut out,
        0,
        "then, over and over, a flow picked at random by weight",
    );
    let _ = writeln!(out, "flows:");
    for flow in &draft.flows {
        if let Some(why) = &flow.comment {
            comment(&mut out, 2, why);
        }
        let _ = writeln!(out, "  - name: {}", scalar(&flow.name));
        let _ = writeln!(out, "    weight: {}", flow.weight);
        let _ = writeln!(out, "    steps:");
        steps(&mut out, 6, &flow.steps);
    }
    if !draft.on_stop.is_empty() {
        out.push('\n');
        comment(
            &mut out,
            0,
            "once per virtual user, when the run ends: the session ends as the recording's did",
        );
        let _ = writeln!(out, "on_stop:");
        steps(&mut out, 2, &draft.on_stop);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_are_quoted_only_when_needed() {
        assert_eq!(scalar("/api/v2/lms/courses"), "/api/v2/lms/courses");
        assert_eq!(scalar("{{ user.username }}"), "\"{{ user.username }}\"");
        assert_eq!(scalar("true"), "\"true\"");
        assert_eq!(scalar("12"), "\"12\"");
        assert_eq!(scalar("a: b"), "\"a: b\"");
        assert_eq!(scalar(""), "\"\"");
    }

    #[test]
    fn json_bodies_become_block_yaml() {
        let mut out = String::new();
        json_child(
            &mut out,
            4,
            &serde_json::json!({"a": 1, "list": [{"x": "{{ v }}", "z": [1, 2]}], "empty": {}}),
        );
        assert_eq!(
            out,
            "\n      a: 1\n      list:\n        - x: \"{{ v }}\"\n          z:\n            - 1\n            - 2\n      empty: {}\n"
        );
    }

    #[test]
    fn redirects_and_errors_are_expected_and_a_304_accepts_a_200() {
        let written = |status: u16| {
            let mut out = String::new();
            let exchange = crate::convert::testing::exchange("GET", "http://app/a", status, "", "");
            request(
                &mut out,
                0,
                &crate::convert::request::draft_request(&exchange),
            );
            out
        };
        assert_eq!(
            written(200),
            "- get: /a\n  recorded: 1\n  check:\n    - status: 200\n"
        );
        assert_eq!(
            written(302),
            "- get: /a\n  recorded: 1\n  expect_status: 302\n"
        );
        assert_eq!(
            written(404),
            "- get: /a\n  recorded: 1\n  expect_status: 404\n"
        );
        assert_eq!(
            written(304),
            "- get: /a\n  recorded: 1\n  expect_status: [200, 304]\n"
        );
    }

    #[test]
    fn a_raw_body_s_type_joins_the_recorded_headers() {
        // Regression (found by tests/fuzz/convert.rs): a raw body with recorded headers wrote
        // `headers:` twice, and the scenario did not load.
        let mut draft = crate::convert::request::draft_request(&crate::convert::testing::exchange(
            "POST",
            "http://app/a",
            200,
            "",
            "",
        ));
        draft.headers = vec![("Cookie".to_owned(), "a=1".to_owned())];
        draft.body = DraftBody::Raw {
            mime: "text/html".to_owned(),
            text: "<p>".to_owned(),
        };
        let mut out = String::new();
        request(&mut out, 0, &draft);
        assert_eq!(
            out,
            "- post: /a\n  recorded: 1\n  headers:\n    Cookie: \"a=1\"\n    Content-Type: text/html\n  body: \"<p>\"\n  check:\n    - status: 200\n"
        );
    }

    #[test]
    fn a_socket_s_steps_go_among_the_requests_by_their_recorded_times() {
        use crate::convert::model::DraftSocket;
        let at = |method: &str, path: &str, at_ms: f64, done_ms: f64| DraftRequest {
            method: method.to_owned(),
            path: vec![path.to_owned()],
            status: 200,
            at_ms,
            done_ms,
            ..DraftRequest::default()
        };
        let send = |text: &str| MessageStep::Send(SendBody::Text(text.to_owned()));
        let receive = |text: &str| MessageStep::Receive {
            event: None,
            equals: None,
            regex: Some(text.to_owned()),
            timeout_s: 10.0,
            extracts: Vec::new(),
            comment: String::new(),
        };
        let mut socket = at("GET", "ws", 0.0, 0.0);
        socket.socket = Some(Box::new(DraftSocket {
            events: false,
            // The probe is sent while the poll waits (the poll ends because of it); the
            // message pushed after the post started is waited for after the post.
            steps: vec![send("2probe"), receive("pushed"), send("upgrade")],
            at_ms: vec![10.0, 16.0, 30.0],
        }));
        let list = vec![
            DraftStep::Request(Box::new(socket)),
            DraftStep::Request(Box::new(at("GET", "poll", 11.0, 20.0))),
            DraftStep::Think(Think::Seconds(1.0)),
            DraftStep::Request(Box::new(at("POST", "post", 15.0, 18.0))),
        ];
        let mut out = String::new();
        steps(&mut out, 0, &list);
        let order: Vec<&str> = out.lines().filter(|line| line.starts_with("- ")).collect();
        assert_eq!(
            order,
            [
                "- ws: /ws",
                "- send: 2probe",
                "- get: /poll",
                "- think: 1s",
                "- post: /post",
                "- receive: { regex: pushed }",
                "- send: upgrade",
            ]
        );
    }

    #[test]
    fn a_receive_names_its_socket_when_another_opened_since() {
        use crate::convert::model::DraftSocket;
        let receive = |at_ms: f64| {
            (
                MessageStep::Receive {
                    event: None,
                    equals: None,
                    regex: Some("x".to_owned()),
                    timeout_s: 10.0,
                    extracts: Vec::new(),
                    comment: String::new(),
                },
                at_ms,
            )
        };
        let opens = |path: &str, events: bool, at_ms: f64, steps: Vec<(MessageStep, f64)>| {
            let (steps, at_ms_of): (Vec<MessageStep>, Vec<f64>) = steps.into_iter().unzip();
            DraftStep::Request(Box::new(DraftRequest {
                method: "GET".to_owned(),
                path: vec![path.to_owned()],
                at_ms,
                done_ms: at_ms,
                socket: Some(Box::new(DraftSocket {
                    events,
                    steps,
                    at_ms: at_ms_of,
                })),
                ..DraftRequest::default()
            }))
        };
        let list = vec![
            opens("chat", false, 0.0, vec![receive(1.0), receive(9.0)]),
            opens("events", true, 5.0, vec![receive(6.0)]),
        ];
        let mut out = String::new();
        steps(&mut out, 0, &list);
        assert_eq!(
            out,
            "- ws: /chat\n- receive: { regex: x }\n  timeout: 10s\n- sse: /events\n\
             - receive: { regex: x }\n  timeout: 10s\n\
             - receive: { regex: x }\n  timeout: 10s\n  from: ws\n"
        );
    }

    #[test]
    fn query_templates_stay_readable() {
        assert_eq!(encode("a b{{ now_ms() }}&"), "a+b{{ now_ms() }}%26");
    }
}
