//! What a target's responses feed: bodies of every kind (JSON, HTML tag soup, text, bytes
//! that are not UTF-8) and headers read by every kind of extract and check, then the values
//! taken rendered in templates that repeat them. Nothing panics; an extract finds a value or
//! says it found none; the memory a response takes follows its size, and a template that
//! repeats a repeated value stops at chorus's limit with an error.

use chorus::scenario::{LoadOptions, ResponseView, Scenario, StepKind, Vars, load_str};
use proptest::collection::vec;
use proptest::prelude::*;

use super::{config, mutate, mutation, peak};

/// Every kind of extract and check over one response, and templates over what they take.
const SCENARIO: &str = r#"
host: http://127.0.0.1:9
flows:
  - steps:
      - get: /
        extract:
          id: $.id
          deep: { jsonpath: "$..id", default: 0 }
          filtered: { jsonpath: "$[?(@.id > 1)].name", default: none }
          token: { regex: 'name="token" value="([^"]*)"', default: "" }
          any: { regex: '(a*)*b', default: "" }
          requestId: { header: X-Request-Id, default: "" }
          item: { header: Location, regex: '/items/(\d+)', default: "" }
          sid: { cookie: sid, default: "" }
          csrf: { form_field: csrf, default: "" }
          choice: { form_field: s, default: "" }
          meta: { meta: csrf-token, default: "" }
          link: { link: "edit", regex: '/x/(\d+)/', default: "" }
          linked: { link: "{{ id }}", default: "" }
        check:
          - status: [200, 302]
          - jsonpath: $.status
            equals: ok
          - body_contains: Welcome
          - body_not_contains: error
          - header: Content-Type
            matches: ^text/html
          - header: X-Request-Id
            equals: "{{ requestId }}"
          - redirect: "/items/*"
          - url: { matches: "^/x" }
          - title: "{{ token }} | site"
          - title: { matches: "^#[0-9]+ .*$" }
          - json_keys: [id, status]
      - post: "/items/{{ item }}?t={{ token | url_encode }}"
        headers:
          X-CSRF: "{{ csrf }}{{ meta }}"
        json:
          id: "{{ id }}"
          all: "{{ [id, deep, filtered, token, sid, link] }}"
          twice: "{{ [token, token, [token, token]] }}"
      - post: /twice
        body: "{{ token ~ token ~ token ~ token }}{{ sid ~ sid }}{{ link }}{{ linked }}"
"#;

fn pick(list: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::sample::select(list).prop_map(str::to_owned)
}

/// A JSON body: the keys the scenario looks for, nested, with values of every kind.
fn json_body() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        pick(&[
            "null",
            "true",
            "1",
            "-1",
            "1e400",
            "18446744073709551616",
            "0.5",
            "\"ok\"",
            "\"\\ud800\"",
            "\"\"",
            "\"edit\"",
        ]),
        "[ -~]{0,10}".prop_map(|text| serde_json::Value::from(text).to_string()),
    ];
    leaf.prop_recursive(6, 40, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(|items| format!("[{}]", items.join(","))),
            vec((pick(&["id", "name", "status", "items", "x"]), inner), 0..5).prop_map(|pairs| {
                let pairs: Vec<String> = pairs
                    .into_iter()
                    .map(|(key, value)| format!("\"{key}\":{value}"))
                    .collect();
                format!("{{{}}}", pairs.join(","))
            }),
        ]
    })
}

/// An HTML body: the elements forms, metas, links and titles are read from, as tag soup.
fn html_body() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        pick(&[
            "<html>",
            "<head>",
            "<title>",
            "</title>",
            "#12 x",
            "<meta name=\"csrf-token\" content=\"m\">",
            "<meta name=csrf-token>",
            "<form method=post action=\"/x\">",
            "</form>",
            "<form>",
            "<input type=hidden name=token value=\"t1\">",
            "<input name=csrf value=c1>",
            "<input type=checkbox name=csrf checked>",
            "<select name=s>",
            "<option value=1 selected>",
            "<option>two",
            "</select>",
            "<textarea name=csrf>",
            "</textarea>",
            "<a href=\"/x/42/\">",
            "edit",
            "</a>",
            "<a>",
            "<a href=>",
            "<script>",
            "</script>",
            "<!--",
            "-->",
            "<![CDATA[",
            "&amp;",
            "&#0;",
            "&#x110000;",
            "&nosuch;",
            "<",
            ">",
            "\"",
            "'",
            "=",
            " ",
            "\n",
            "Welcome",
            "error",
            "\u{e9}",
            "\0",
            "<b",
            "<svg><title>",
            "</svg>",
        ]),
        "[ -~]{0,6}",
    ];
    vec(piece, 0..60).prop_map(|pieces| pieces.concat())
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => json_body().prop_map(String::into_bytes),
        3 => html_body().prop_map(String::into_bytes),
        1 => (json_body(), vec(mutation(&["{", "}", "[", "\"", ",", ":", "\\"]), 1..3))
            .prop_map(|(json, mutations)| mutate(&json, &mutations).into_bytes()),
        1 => vec(any::<u8>(), 0..100),
        1 => (1usize..64, pick(&["a", "ab", "<a>", "{[", "&amp;"]))
            .prop_map(|(n, text)| text.repeat(n * 64).into_bytes()),
    ]
}

fn headers() -> impl Strategy<Value = http::HeaderMap> {
    vec(
        (
            pick(&["x-request-id", "location", "set-cookie", "content-type"]),
            prop_oneof![
                pick(&[
                    "/items/42",
                    "http://[::1/items/7",
                    "sid=1; Path=/",
                    "sid=; Max-Age=0",
                    "sid",
                    "=1",
                    "text/html; charset=utf-8",
                    "application/json",
                    "",
                ]),
                "[ -~]{0,12}",
            ],
        ),
        0..5,
    )
    .prop_map(|pairs| {
        let mut headers = http::HeaderMap::new();
        for (name, value) in pairs {
            if let Ok(value) = http::HeaderValue::from_str(&value) {
                headers.append(
                    http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    value,
                );
            }
        }
        headers
    })
}

/// The scenario, loaded once for every case.
static LOADED: std::sync::LazyLock<Scenario> = std::sync::LazyLock::new(|| {
    let dir = tempfile::tempdir().unwrap();
    load_str(
        SCENARIO,
        &dir.path().join("s.yaml"),
        &LoadOptions::default(),
    )
    .unwrap_or_else(|err| panic!("the fuzz scenario loads: {err}"))
});

/// Every extract and check of the first step over the response, then every template of the
/// others over what was taken.
fn follow(scenario: &Scenario, status: u16, headers: &http::HeaderMap, body: &[u8]) -> usize {
    let url = url::Url::parse("http://127.0.0.1:9/x/1").unwrap();
    let view = ResponseView::new(status, headers, body).at(&url);
    let mut vars = Vars::for_user(scenario, 0).unwrap();
    let steps = &scenario.flows[0].steps;
    let StepKind::Request(first) = &steps[0].kind else {
        panic!("a request first")
    };
    let mut found = 0;
    for extract in &first.extract {
        found += usize::from(extract.apply(&view, &mut vars).is_ok());
    }
    for check in &first.check {
        let _ = check.evaluate(&view, &vars);
    }
    for step in &steps[1..] {
        let StepKind::Request(request) = &step.kind else {
            continue;
        };
        let _ = request.url.render(&vars);
        for (_, value) in &request.headers {
            let _ = value.render(&vars);
        }
        if let Some(chorus::scenario::Body::Json(body) | chorus::scenario::Body::Raw(body)) =
            &request.body
        {
            let _ = body.render(&vars);
        }
    }
    found
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn any_response_is_read_within_bounds(
        status in prop_oneof![Just(200u16), Just(302), 100u16..600],
        headers in headers(),
        body in body(),
    ) {
        let scenario = &*LOADED;
        let (found, held) = peak(|| follow(scenario, status, &headers, &body));
        prop_assert!(found <= scenario_extracts(scenario));
        // The body as text, as JSON and as a page, each value taken, and the templates
        // that repeat them (four times the largest value, at most).
        prop_assert!(held <= 64 * body.len() as u64 + (1 << 20), "{held} bytes for {}", body.len());
    }
}

fn scenario_extracts(scenario: &Scenario) -> usize {
    match &scenario.flows[0].steps[0].kind {
        StepKind::Request(request) => request.extract.len(),
        _ => 0,
    }
}

#[test]
fn a_template_that_repeats_what_repeats_stops_at_the_limit() {
    // Regression: `vars:` read one another and an expression can double what it reads, so
    // forty lines of vars asked for a terabyte; now each template stops at 64 MiB.
    let start = format!(
        "host: http://127.0.0.1:9\nvars:\n  v0: {}\n",
        "x".repeat(1000)
    );
    let mut text = start.clone();
    for n in 1..40 {
        let before = n - 1;
        text.push_str(&format!("  v{n}: \"{{{{ v{before} ~ v{before} }}}}\"\n"));
    }
    text.push_str("flows:\n  - steps:\n      - get: \"/{{ v39 }}\"\n");
    let dir = tempfile::tempdir().unwrap();
    let (result, held) = peak(|| {
        let scenario = load_str(&text, &dir.path().join("s.yaml"), &LoadOptions::default())?;
        Ok::<_, Box<dyn std::error::Error>>(Vars::for_user(&scenario, 0).map(|_| ())?)
    });
    let err = result.expect_err("a value past the limit").to_string();
    assert!(err.contains("renders to more than 64 MiB"), "{err}");
    assert!(held < 400 << 20, "{held} bytes held");

    // A list of lists of one value: shared in memory, not in JSON.
    let mut text = start;
    for n in 1..40 {
        let before = n - 1;
        text.push_str(&format!("  v{n}: \"{{{{ [v{before}, v{before}] }}}}\"\n"));
    }
    text.push_str("flows:\n  - steps:\n      - post: /\n        json: \"{{ v39 }}\"\n");
    let (result, held) = peak(|| {
        let scenario = load_str(&text, &dir.path().join("s.yaml"), &LoadOptions::default())?;
        let vars = Vars::for_user(&scenario, 0)?;
        let StepKind::Request(request) = &scenario.flows[0].steps[0].kind else {
            unreachable!()
        };
        let Some(chorus::scenario::Body::Json(body)) = &request.body else {
            unreachable!()
        };
        Ok::<_, Box<dyn std::error::Error>>(body.render(&vars).map(|_| ())?)
    });
    let err = result.expect_err("a value past the limit").to_string();
    assert!(err.contains("renders to more than 64 MiB"), "{err}");
    assert!(held < 400 << 20, "{held} bytes held");
}
