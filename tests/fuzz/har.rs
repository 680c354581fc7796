//! The HAR reader on captures of every shape: a capture built of the parts browsers and the
//! recorder write (logins, JSON APIs, forms, redirects, cookies), then changed in its
//! structure (any value replaced by any other) and in its bytes (cut, bytes dropped or
//! inserted): it reads, or it says where it is wrong; it never panics, and the memory it
//! holds follows the size of the file.

use chorus::har::read::read_str;
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::{Mutation, config, mutate, mutation, peak};

const IDS: &[&str] = &[
    "42",
    "7",
    "g-1f2e9a",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIiwiZXhwIjo5OTk5OTk5OTk5fQ.c2ln",
    "\u{e9}t\u{e9}",
    "a b&c=d",
    "",
    "0",
];

fn pick(list: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::sample::select(list).prop_map(str::to_owned)
}

fn url() -> impl Strategy<Value = String> {
    let origin = pick(&[
        "http://127.0.0.1:8001",
        "http://127.0.0.1:8001",
        "https://app.example",
        "http://[::1]:8080",
        "http://127.0.0.1:8001:99999",
        "ws://127.0.0.1:8001",
        "not a url",
        "http://[::1",
        "",
    ]);
    let path = pick(&[
        "/",
        "/login",
        "/accounts/login/?next=/",
        "/api/games/{id}",
        "/api/games/{id}/moves?after={id}",
        "/api/items?page=2&q=%C3%A9&q=x",
        "/static/app.js",
        "/favicon.ico",
        "/logout",
        "/x/{id}/change/",
        "/{id}",
        "",
    ]);
    (origin, path, pick(IDS))
        .prop_map(|(origin, path, id)| format!("{origin}{}", path.replace("{id}", &urlish(&id))))
}

fn urlish(id: &str) -> String {
    id.replace(' ', "%20").replace('&', "%26")
}

fn header() -> impl Strategy<Value = Value> {
    let pair = prop_oneof![
        pick(&[
            "Content-Type: application/json",
            "Content-Type: application/x-www-form-urlencoded",
            "Content-Type: multipart/form-data; boundary=XyZ",
            "Content-Type: text/html; charset=utf-8",
            "Cookie: sessionid={id}; csrftoken={id}",
            "Set-Cookie: sessionid={id}; Path=/; HttpOnly",
            "Set-Cookie: csrftoken={id}; expires=Thu, 01 Jan 2099 00:00:00 GMT",
            "Authorization: Bearer {id}",
            "Authorization: Basic dTpw",
            "X-CSRFToken: {id}",
            "Location: /x/{id}/change/",
            "Location: http://[bad",
            "Location: javascript:alert(1)",
            "Referer: http://127.0.0.1:8001/login",
            "Content-Encoding: gzip",
            "X-Api-Key: {id}",
            "Bad Name: x",
            "X-Crlf: a\r\nb",
            ":authority: 127.0.0.1",
        ]),
        "[A-Za-z-]{1,10}: [ -~]{0,20}",
    ];
    (pair, pick(IDS)).prop_map(|(pair, id)| {
        let pair = pair.replace("{id}", &id);
        let (name, value) = pair.split_once(": ").unwrap_or((&pair, ""));
        json!({"name": name, "value": value})
    })
}

fn body_text() -> impl Strategy<Value = (String, String)> {
    let text = prop_oneof![
        pick(&[
            r#"{"id": "{id}", "token": "{id}", "user": {"name": "u1", "id": {num}}}"#,
            r#"{"username": "u1", "password": "pw1"}"#,
            r#"[{"id": {num}}, {"id": "{id}"}, null, 1e400]"#,
            r#"{"next": "/api/games/{id}", "items": [{"id": "{id}"}]}"#,
            r#"{"a": {"a": {"a": {"a": [[[[[]]]]]}}}}"#,
        ])
        .prop_map(|text| ("application/json".to_owned(), text)),
        pick(&[
            "username=u1&password=pw1&csrfmiddlewaretoken={id}",
            "q=%E9%zz&&=&a=1=2",
            "next={id}&game={num}",
        ])
        .prop_map(|text| ("application/x-www-form-urlencoded".to_owned(), text)),
        pick(&[
            "<html><head><title>Log in</title><meta name=\"csrf-token\" content=\"{id}\"></head><body><form method=post action=\"/login\"><input type=hidden name=csrfmiddlewaretoken value=\"{id}\"><input name=username><input type=password name=password></form><a href=\"/x/{id}/change/\">edit</a></body></html>",
            "<select name=s><option value={num} selected>x<option>y</select><textarea name=t>{id}</textarea",
            "<title>unclosed",
        ])
        .prop_map(|text| ("text/html".to_owned(), text)),
        pick(&[
            "--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n{id}\r\n--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a;b.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XyZ--\r\n",
            "--XyZ\r\nno head\r\n--XyZ--",
        ])
        .prop_map(|text| ("multipart/form-data; boundary=XyZ".to_owned(), text)),
        ("[ -~]{0,12}", "[ -~\u{e9}\u{0}]{0,40}"),
    ];
    (text, pick(IDS), 0u64..100_000).prop_map(|((mime, text), id, num)| {
        let text = text.replace("{id}", &id).replace("{num}", &num.to_string());
        (mime, text)
    })
}

fn entry() -> impl Strategy<Value = Value> {
    let method = pick(&[
        "GET", "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "", "G ET", "5",
    ]);
    let status = prop_oneof![
        prop::sample::select(vec![
            200u64, 200, 201, 204, 301, 302, 303, 304, 400, 401, 403, 404, 500, 0, 99, 1000,
        ]),
        any::<u16>().prop_map(u64::from),
    ];
    let date = pick(&[
        "2026-01-01T00:00:00.000Z",
        "2026-01-01T00:00:01.500+01:00",
        "2026-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "yesterday",
        "",
    ]);
    (
        (
            method,
            url(),
            vec(header(), 0..5),
            prop::option::of(body_text()),
        ),
        (status, vec(header(), 0..5), prop::option::of(body_text())),
        (
            date,
            prop_oneof![Just(12.5f64), 0.0f64..1e4, Just(-5.0), Just(1e308)],
        ),
        any::<bool>(),
    )
        .prop_map(
            |(
                (method, url, request_headers, post),
                (status, headers, content),
                (date, time),
                base64,
            )| {
                let mut request = json!({
                    "method": method,
                    "url": url,
                    "httpVersion": "HTTP/1.1",
                    "cookies": [],
                    "headers": request_headers,
                    "queryString": [],
                    "headersSize": -1,
                    "bodySize": 0,
                });
                if let Some((mime, text)) = post {
                    request["postData"] = json!({"mimeType": mime, "text": text});
                }
                let (mime, text) = content.unwrap_or_default();
                let mut content = json!({"size": text.len(), "mimeType": mime, "text": text});
                if base64 {
                    use base64::Engine as _;
                    content["text"] =
                        Value::from(base64::engine::general_purpose::STANDARD.encode(&text));
                    content["encoding"] = Value::from("base64");
                }
                json!({
                    "startedDateTime": date,
                    "time": time,
                    "request": request,
                    "response": {
                        "status": status,
                        "statusText": "",
                        "httpVersion": "HTTP/1.1",
                        "cookies": [],
                        "headers": headers,
                        "content": content,
                        "redirectURL": "",
                        "headersSize": -1,
                        "bodySize": -1,
                    },
                    "cache": {},
                    "timings": {"send": 0, "wait": time, "receive": 0},
                })
            },
        )
}

/// A capture as browsers and the recorder write one.
pub(super) fn capture(entries: usize) -> impl Strategy<Value = Value> {
    (vec(entry(), 0..entries), pick(&["1.2", "1.1", "", "9.9"])).prop_map(|(entries, version)| {
        json!({"log": {
            "version": version,
            "creator": {"name": "chorus", "version": "0.1.0"},
            "entries": entries,
        }})
    })
}

/// A value of any JSON kind, to put where the capture had something else.
fn any_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[ -~\u{e9}]{0,10}".prop_map(Value::from),
        Just(json!([])),
        Just(json!({})),
        Just(json!([{"name": "x", "value": 1}])),
    ]
}

/// Replaces the `index`-th value of `value` (in document order) with `with`.
pub(super) fn replace_nth(value: &mut Value, index: &mut usize, with: &Value) -> bool {
    if *index == 0 {
        *value = with.clone();
        return true;
    }
    *index -= 1;
    match value {
        Value::Array(items) => items.iter_mut().any(|item| replace_nth(item, index, with)),
        Value::Object(map) => map.values_mut().any(|item| replace_nth(item, index, with)),
        _ => false,
    }
}

fn count(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(count).sum(),
        Value::Object(map) => map.values().map(count).sum(),
        _ => 0,
    }
}

/// A capture, changed in its structure and then in its bytes.
pub(super) fn damaged_capture() -> impl Strategy<Value = String> {
    (
        capture(6),
        vec((any::<usize>(), any_value()), 0..3),
        any::<bool>(),
        vec(mutation(HAR_SPECIALS), 0..3),
    )
        .prop_map(|(mut har, replacements, pretty, mutations)| {
            for (at, with) in replacements {
                let mut index = at % count(&har);
                replace_nth(&mut har, &mut index, &with);
            }
            let text = if pretty {
                serde_json::to_string_pretty(&har).unwrap()
            } else {
                har.to_string()
            };
            mutate(&text, &mutations)
        })
}

const HAR_SPECIALS: &[&str] = &[
    "{", "}", "[", "]", ",", ":", "\"", "\\", "\\u", "\\ud800", "null", "1e999", "-", "\u{feff}",
    "\n",
];

proptest! {
    #![proptest_config(config(2048))]

    #[test]
    fn any_capture_reads_or_says_where_it_is_wrong(text in damaged_capture()) {
        let (result, held) = peak(|| read_str(&text, "f.har"));
        match result {
            Ok((har, _warnings)) => {
                prop_assert!(har.log.entries.len() <= text.matches("\"request\"").count());
            }
            Err(err) => {
                let message = err.to_string();
                prop_assert!(message.starts_with("f.har:"), "{}", message);
            }
        }
        // The capture held as typed values, and the text once more when it is damaged.
        prop_assert!(held <= 20 * text.len() as u64 + (256 << 10), "{held} bytes for {}", text.len());
    }
}

#[test]
fn reading_a_large_capture_takes_memory_and_work_in_proportion() {
    // 100 KB and 400 KB of the same entries, and each cut in the middle: the bytes allocated
    // (the work) and held (the memory) grow with the size, not faster.
    let entry = r#"{"startedDateTime":"2026-01-01T00:00:00.000Z","time":1,"request":{"method":"POST","url":"http://a/api/x?y=1","httpVersion":"HTTP/1.1","cookies":[],"headers":[{"name":"Content-Type","value":"application/json"}],"queryString":[],"postData":{"mimeType":"application/json","text":"{\"id\":42}"},"headersSize":-1,"bodySize":9},"response":{"status":200,"statusText":"OK","httpVersion":"HTTP/1.1","cookies":[],"headers":[],"content":{"size":9,"mimeType":"application/json","text":"{\"id\":43}"},"redirectURL":"","headersSize":-1,"bodySize":9},"cache":{},"timings":{"send":0,"wait":1,"receive":0}}"#;
    let document = |entries: usize| {
        format!(
            "{{\"log\":{{\"version\":\"1.2\",\"creator\":{{\"name\":\"t\",\"version\":\"1\"}},\"entries\":[{}]}}}}",
            vec![entry; entries].join(",\n")
        )
    };
    let measure = |text: &str| {
        let ((result, total), held) = peak(|| super::allocated(|| read_str(text, "f.har")));
        assert!(result.is_ok());
        (total, held)
    };
    let small = document(100_000 / entry.len());
    let large = document(400_000 / entry.len());
    for (name, small, large) in [
        ("whole", small.clone(), large.clone()),
        (
            "cut",
            mutate(&small, &[Mutation::Cut(small.len() / 2)]),
            mutate(&large, &[Mutation::Cut(large.len() / 2)]),
        ),
    ] {
        let (small_work, small_held) = measure(&small);
        let (large_work, large_held) = measure(&large);
        let ratio = |large: u64, small: u64| large as f64 / small.max(1) as f64;
        assert!(
            ratio(large_work, small_work) < 6.0,
            "{name}: {small_work} then {large_work} bytes allocated"
        );
        assert!(
            ratio(large_held, small_held) < 6.0,
            "{name}: {small_held} then {large_held} bytes held"
        );
    }
}
