//! The scenario loader on files of every shape: a tree of the keys a scenario has (and some
//! it has not), with values of every kind (templates, durations, URLs, regexes, JSONPaths)
//! nested to any depth, written as block YAML and then changed in its bytes. It loads or
//! names the `line:column` that is wrong; it never panics, and the memory it holds follows
//! the size of the file.

use chorus::scenario::{LoadOptions, Vars, load_str};
use proptest::collection::vec;
use proptest::prelude::*;

use super::{config, mutate, mutation, peak};

/// A YAML tree.
#[derive(Debug, Clone)]
pub(super) enum Yaml {
    Scalar(String),
    Seq(Vec<Yaml>),
    Map(Vec<(String, Yaml)>),
}

impl Yaml {
    /// Block YAML, `indent` spaces in.
    pub(super) fn write(&self, indent: usize, out: &mut String) {
        let pad = " ".repeat(indent);
        match self {
            Yaml::Scalar(text) => {
                out.push_str(&pad);
                out.push_str(text);
                out.push('\n');
            }
            Yaml::Seq(items) if items.is_empty() => out.push_str(&format!("{pad}[]\n")),
            Yaml::Map(pairs) if pairs.is_empty() => out.push_str(&format!("{pad}{{}}\n")),
            Yaml::Seq(items) => {
                for item in items {
                    match item {
                        Yaml::Scalar(text) => out.push_str(&format!("{pad}- {text}\n")),
                        _ => {
                            out.push_str(&format!("{pad}-\n"));
                            item.write(indent + 2, out);
                        }
                    }
                }
            }
            Yaml::Map(pairs) => {
                for (key, value) in pairs {
                    match value {
                        Yaml::Scalar(text) => out.push_str(&format!("{pad}{key}: {text}\n")),
                        _ => {
                            out.push_str(&format!("{pad}{key}:\n"));
                            value.write(indent + 2, out);
                        }
                    }
                }
            }
        }
    }

    pub(super) fn text(&self) -> String {
        let mut out = String::new();
        self.write(0, &mut out);
        out
    }
}

fn scalar(list: &'static [&'static str]) -> impl Strategy<Value = Yaml> {
    prop::sample::select(list).prop_map(|text| Yaml::Scalar(text.to_owned()))
}

fn any_scalar() -> impl Strategy<Value = Yaml> {
    prop_oneof![
        scalar(&[
            "1",
            "0",
            "-3",
            "1.5",
            "1e300",
            ".nan",
            ".inf",
            "18446744073709551616",
            "true",
            "null",
            "~",
            "''",
            "\"\"",
            "x",
            "\"{{ x }}\"",
            "'{{'",
            "\"\\u0000\"",
            "&a 1",
            "*a",
            "!!binary aGk=",
            "[1, 2",
            "{a: 1}",
            "|",
            ">-",
            "\"\\ud800\"",
            "é",
            "\"\t\"",
        ]),
        "[a-z0-9 ]{0,8}".prop_map(Yaml::Scalar),
    ]
}

fn url() -> impl Strategy<Value = Yaml> {
    scalar(&[
        "/",
        "/api/games/{{ gameId }}",
        "\"/x?a={{ user.username | url_encode }}\"",
        "http://127.0.0.1:8001/x",
        "http://127.0.0.2/",
        "ftp://x/",
        "\"{{ undefined_var }}\"",
        "\"/{{ 1/0 }}\"",
        "\"/{{ x\"",
        "/a b",
        "\"/\\r\\nX: y\"",
    ])
}

fn template() -> impl Strategy<Value = Yaml> {
    scalar(&[
        "\"{{ uuid() }}\"",
        "\"{{ random_int(1, 10) }}\"",
        "\"{{ random_string(-1) }}\"",
        "\"{{ random_string(100000) }}\"",
        "\"{{ 'x' * 10000000 }}\"",
        "\"{{ user.password | sha256 }}\"",
        "\"{{ token | jwt_claims }}\"",
        "\"{{ 'garbage' | base64_decode }}\"",
        "\"{{ env('HOME') }}\"",
        "\"{{ env('CHORUS_FUZZ_UNSET') }}\"",
        "\"{{ x | nosuch }}\"",
        "\"{% if x %}y{% endif %}\"",
        "\"{{ (((((((((( 1 )))))))))) }}\"",
        "\"{{ range(100000) | list }}\"",
        "\"{{ vu }}-{{ iteration }}\"",
        "plain",
    ])
}

fn duration() -> impl Strategy<Value = Yaml> {
    scalar(&[
        "1s",
        "0.5",
        "0",
        "-1s",
        "1e300",
        "99999999999999999999999s",
        "30s..10s",
        "1s..2s",
        "500ms",
        "1h30m",
        "forever",
        "\"{{ n }}\"",
        "1y",
        ".nan",
    ])
}

fn headers() -> impl Strategy<Value = Yaml> {
    vec(
        (
            prop::sample::select(vec!["X-A", "Content-Type", "Bad Name", "", "Host"]),
            prop_oneof![template(), any_scalar()],
        ),
        0..3,
    )
    .prop_map(|pairs| {
        Yaml::Map(
            pairs
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value))
                .collect(),
        )
    })
}

fn extract() -> impl Strategy<Value = Yaml> {
    vec(
        (
            prop::sample::select(vec!["gameId", "token", "x", "vu", "1bad", "a-b"]),
            prop_oneof![
                scalar(&[
                    "$.id",
                    "$[0].id",
                    "$..x",
                    "$[?(@.a > 1)].b",
                    "$[",
                    "\"$.a.b\"",
                    "((("
                ]),
                vec(
                    (
                        prop::sample::select(vec![
                            "jsonpath",
                            "regex",
                            "header",
                            "cookie",
                            "form_field",
                            "meta",
                            "link",
                            "default",
                            "nope",
                        ]),
                        scalar(&[
                            "$.id",
                            "\"id=(\\\\w+)\"",
                            "\"(\"",
                            "\"(a*)*b\"",
                            "Set-Cookie",
                            "csrftoken",
                            "x",
                            "1",
                        ]),
                    ),
                    1..3,
                )
                .prop_map(|pairs| Yaml::Map(
                    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                )),
            ],
        ),
        0..3,
    )
    .prop_map(|pairs| {
        Yaml::Map(
            pairs
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value))
                .collect(),
        )
    })
}

fn check() -> impl Strategy<Value = Yaml> {
    vec(
        vec(
            (
                prop::sample::select(vec![
                    "status",
                    "jsonpath",
                    "equals",
                    "matches",
                    "body_contains",
                    "body_not_contains",
                    "header",
                    "redirect",
                    "url",
                    "title",
                    "json_keys",
                    "nope",
                ]),
                prop_oneof![
                    scalar(&[
                        "200",
                        "[200, 302]",
                        "2xx",
                        "$.ok",
                        "\"x\"",
                        "\"(\"",
                        "/login*",
                        "\"{matches: '^/x'}\"",
                        "[a, b]"
                    ]),
                    any_scalar(),
                ],
            ),
            1..3,
        )
        .prop_map(|pairs| Yaml::Map(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        0..3,
    )
    .prop_map(Yaml::Seq)
}

fn json_body() -> impl Strategy<Value = Yaml> {
    let leaf = prop_oneof![template(), any_scalar()];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..3).prop_map(Yaml::Seq),
            vec(("[a-z]{1,4}", inner), 0..3).prop_map(Yaml::Map),
        ]
    })
}

fn request_step() -> impl Strategy<Value = Yaml> {
    (
        prop::sample::select(vec![
            "get", "post", "put", "delete", "head", "patch", "options",
        ]),
        url(),
        prop::option::of(prop_oneof![template(), any_scalar()]),
        prop::option::of(headers()),
        prop::option::of(prop_oneof![
            json_body().prop_map(|body| ("json", body)),
            headers().prop_map(|form| ("form", form)),
            template().prop_map(|body| ("body", body)),
        ]),
        prop::option::of(extract()),
        prop::option::of(check()),
        prop::option::of(scalar(&["200", "[200, 404]", "2xx", "600", "x"])),
    )
        .prop_map(
            |(method, url, name, headers, body, extract, check, expect_status)| {
                let mut pairs = vec![(method.to_owned(), url)];
                if let Some(name) = name {
                    pairs.push(("name".to_owned(), name));
                }
                if let Some(headers) = headers {
                    pairs.push(("headers".to_owned(), headers));
                }
                if let Some((key, body)) = body {
                    pairs.push((key.to_owned(), body));
                }
                if let Some(extract) = extract {
                    pairs.push(("extract".to_owned(), extract));
                }
                if let Some(check) = check {
                    pairs.push(("check".to_owned(), check));
                }
                if let Some(expect_status) = expect_status {
                    pairs.push(("expect_status".to_owned(), expect_status));
                }
                Yaml::Map(pairs)
            },
        )
}

fn condition() -> impl Strategy<Value = Yaml> {
    scalar(&[
        "\"x == 1\"",
        "\"not not true\"",
        "\"iteration < 3\"",
        "\"{{ gameId }}\"",
        "\"undefined_thing\"",
        "\"(\"",
        "\"1 +\"",
        "\"last_status == 200\"",
    ])
}

fn steps() -> impl Strategy<Value = Yaml> {
    let leaf = prop_oneof![
        4 => request_step(),
        1 => duration().prop_map(|think| Yaml::Map(vec![("think".to_owned(), think)])),
        1 => vec(("[a-z]{1,5}", template()), 1..3)
            .prop_map(|pairs| Yaml::Map(vec![("emit".to_owned(), Yaml::Map(pairs))])),
        1 => (any_scalar(), any_scalar()).prop_map(|(key, value)| {
            let Yaml::Scalar(key) = key else { unreachable!() };
            Yaml::Map(vec![(key, value)])
        }),
    ];
    let step = leaf.prop_recursive(4, 24, 4, |inner| {
        let nested = vec(inner, 0..4).prop_map(Yaml::Seq);
        prop_oneof![
            (
                scalar(&["2", "0", "-3", "8..3", "1..3", "\"{{ n }}\"", "1e11", "x"]),
                nested.clone()
            )
                .prop_map(|(count, steps)| Yaml::Map(vec![
                    ("repeat".to_owned(), count),
                    ("steps".to_owned(), steps),
                ])),
            (scalar(&["2", "0", "x"]), nested.clone()).prop_map(|(count, steps)| Yaml::Map(vec![
                ("parallel".to_owned(), count),
                ("steps".to_owned(), steps),
            ])),
            (condition(), nested).prop_map(|(when, steps)| Yaml::Map(vec![
                ("when".to_owned(), when),
                ("steps".to_owned(), steps),
            ])),
        ]
    });
    vec(step, 0..5).prop_map(Yaml::Seq)
}

/// A scenario of the keys a scenario has, and now and then one it has not.
pub(super) fn scenario() -> impl Strategy<Value = Yaml> {
    (
        prop::option::of(scalar(&[
            "http://127.0.0.1:8001",
            "https://app.example:443/base/",
            "ftp://x",
            "\"http://[zz\"",
            "127.0.0.1",
        ])),
        prop::option::of(vec(("[a-z]{1,6}", template()), 0..4).prop_map(Yaml::Map)),
        prop::option::of(
            (
                scalar(&["users.csv", "missing.csv", ".", "/dev/null"]),
                scalar(&["unique", "cycle", "random", "shared", "bogus"]),
            )
                .prop_map(|(file, mode)| {
                    Yaml::Map(vec![(
                        "users".to_owned(),
                        Yaml::Map(vec![("file".to_owned(), file), ("mode".to_owned(), mode)]),
                    )])
                }),
        ),
        prop::option::of(steps()),
        vec(
            (
                prop::option::of(any_scalar()),
                prop::option::of(scalar(&[
                    "1",
                    "0",
                    "-1",
                    "1.5",
                    "18446744073709551616",
                    "x",
                ])),
                steps(),
            ),
            0..3,
        ),
        prop::option::of((duration(), duration()).prop_map(|(connect, request)| {
            Yaml::Map(vec![
                ("connect".to_owned(), connect),
                ("request".to_owned(), request),
            ])
        })),
        prop::option::of((any_scalar(), any_scalar())),
    )
        .prop_map(|(host, vars, data, on_start, flows, timeouts, extra)| {
            let mut pairs = Vec::new();
            let mut push = |key: &str, value: Option<Yaml>| {
                if let Some(value) = value {
                    pairs.push((key.to_owned(), value));
                }
            };
            push("host", host);
            push("vars", vars);
            push("data", data);
            push("timeouts", timeouts);
            push("on_start", on_start);
            let flows = flows
                .into_iter()
                .map(|(name, weight, steps)| {
                    let mut flow = Vec::new();
                    if let Some(name) = name {
                        flow.push(("name".to_owned(), name));
                    }
                    if let Some(weight) = weight {
                        flow.push(("weight".to_owned(), weight));
                    }
                    flow.push(("steps".to_owned(), steps));
                    Yaml::Map(flow)
                })
                .collect();
            push("flows", Some(Yaml::Seq(flows)));
            if let Some((Yaml::Scalar(key), value)) = extra {
                pairs.push((key, value));
            }
            Yaml::Map(pairs)
        })
}

const YAML_SPECIALS: &[&str] = &[
    ":",
    "- ",
    "\n",
    "\t",
    "  ",
    "'",
    "\"",
    "{",
    "}",
    "[",
    "]",
    "&a ",
    "*a",
    "!!str ",
    "#",
    "|",
    ">",
    "%YAML 1.2\n---\n",
    "---\n",
    "...\n",
    "\u{feff}",
    "\0",
    "{{",
    "}}",
    "<<: *a\n",
];

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn any_scenario_loads_or_names_the_line_that_is_wrong(
        tree in scenario(),
        mutations in vec(mutation(YAML_SPECIALS), 0..3),
    ) {
        let text = mutate(&tree.text(), &mutations);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("users.csv"), "username,password\nu1,p1\nu2,p2\n").unwrap();
        let path = dir.path().join("s.yaml");
        let (result, held) = peak(|| load_str(&text, &path, &LoadOptions::default()));
        match result {
            Ok(scenario) => {
                // The variables a user starts with render, or say why not.
                let _ = Vars::for_user(&scenario, 0);
            }
            Err(err) => {
                // Line breaks as YAML counts them: `\r\n`, `\n`, and a `\r` alone.
                let lines = text.replace("\r\n", "\n").matches(['\n', '\r']).count() + 1;
                for problem in &err.problems {
                    prop_assert!(problem.line <= lines, "line {} of {lines}: {}", problem.line, problem.message);
                }
                let _ = err.to_string();
            }
        }
        // Compiled templates, regexes and JSONPaths: some memory per byte of the file, and
        // what a regex may compile to; `vars:` are rendered at load, and minijinja builds a
        // repeated string (`'x' * 100000000`) of up to 100 MB before chorus's 64 MiB limit on
        // what a template renders refuses it: that much per `*`.
        let repeats = text.matches('*').count() as u64;
        prop_assert!(
            held <= 200 * text.len() as u64 + (32 << 20) + repeats * (256 << 20),
            "{held} bytes for {}", text.len()
        );
    }
}

#[test]
fn a_duration_too_long_for_a_duration_is_an_error_at_its_line() {
    // Regression: `timeouts: connect: 1e300` panicked in the loader (Duration::from_secs_f64).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.yaml");
    for text in ["1e300", "1e300s", "99999999999999999999999s", "1e20h"] {
        let yaml = format!(
            "host: http://127.0.0.1:9\ntimeouts:\n  connect: {text}\nflows:\n  - steps:\n      - get: /\n"
        );
        let err = load_str(&yaml, &path, &LoadOptions::default()).unwrap_err();
        let problem = &err.problems[0];
        assert_eq!(problem.line, 3, "{text}: {err}");
        assert_eq!(problem.path, "timeouts.connect", "{text}: {err}");
        assert!(problem.message.contains(text), "{text}: {err}");
    }
}

#[test]
fn what_is_missing_at_the_end_of_a_file_is_placed_on_its_last_line() {
    // Regression (found by the property above): a file cut after `users:` (no final line
    // break) was said to be wrong on line 3 of 2.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.yaml");
    for (text, line, column) in [
        ("data:\n  users:", 2, 9),
        ("data:\n  users:\n    file: missing.csv\n    mode", 4, 9),
        ("data:\r  users:", 2, 9),
    ] {
        let err = load_str(text, &path, &LoadOptions::default()).unwrap_err();
        let problem = err.problems.last().unwrap();
        assert_eq!(
            (problem.line, problem.column),
            (line, column),
            "{text:?}: {err}"
        );
    }
}
