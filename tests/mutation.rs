//! The mutation test's harness (`tests/util/mutation.rs`, issue 13 §5): the mutator on small
//! scenarios and captures (what each mutant says, that chorus loads it and renders what the
//! recorded values were), and the whole harness against the demo app, recorded through
//! chorus's recorder, so that CI runs it while the application tests wait for convert.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::util::mutation::template::{self, Rewritten};
use crate::util::mutation::yaml::{self, Node};
use crate::util::mutation::{self, Mutant};
use crate::util::output_dir;

#[test]
fn a_template_that_is_only_the_variable_becomes_the_value_with_its_type() {
    assert_eq!(
        template::substitute("{{ course }}", "course", &json!(7)),
        Some(Rewritten::Whole(json!(7)))
    );
    assert_eq!(
        template::substitute("{{course}}", "course", &json!("7")),
        Some(Rewritten::Whole(json!("7")))
    );
    assert_eq!(
        template::substitute("{{ courses }}", "course", &json!(7)),
        None
    );
    assert_eq!(
        template::substitute("/plain/text", "course", &json!(7)),
        None
    );
}

#[test]
fn inside_text_the_variable_becomes_its_text_and_inside_expressions_a_literal() {
    let rewrite = |text: &str, value: Value| match template::substitute(text, "id", &value) {
        Some(Rewritten::Text(text)) => text,
        other => panic!("{text}: {other:?}"),
    };
    assert_eq!(
        rewrite("/items/{{ id }}/edit", json!("41")),
        "/items/41/edit"
    );
    assert_eq!(rewrite("n={{ id }}&m={{ id }}", json!(3)), "n=3&m=3");
    assert_eq!(
        rewrite("{{ id + 1 }} of {{ user.id }}", json!(3)),
        "{{ 3 + 1 }} of {{ user.id }}"
    );
    assert_eq!(
        rewrite(r#"{{ id | default("id") }}-{{ other }}"#, json!("a\"b")),
        r#"{{ "a\"b" | default("id") }}-{{ other }}"#
    );
    assert_eq!(
        rewrite("{{ id is defined }}", json!(null)),
        "{{ none is defined }}"
    );
    // A value that holds braces stays an expression, so it is sent as it came.
    assert_eq!(rewrite("x{{ id }}", json!("{{a}}")), r#"x{{ "{{a}}" }}"#);
    assert_eq!(rewrite("{{ id }}/", json!([1, "a"])), r#"{{ [1, "a"] }}/"#);
    // Not reads of `id`: an attribute, a filter, a test, a function, a keyword, a string.
    for text in [
        "{{ row.id }}",
        "{{ x | id }}",
        "{{ x is id }}",
        "{{ x is not id }}",
        "{{ id(3) }}",
        "{{ f(id=3) }}",
        "{{ 'id' ~ \"id\" }}",
    ] {
        assert_eq!(template::uses_in_template(text, "id"), 0, "{text}");
        assert_eq!(template::substitute(text, "id", &json!(1)), None, "{text}");
    }
    assert_eq!(
        template::substitute_expression("level != 1 and id == 'x'", "level", &json!(2)),
        Some("2 != 1 and id == 'x'".to_owned())
    );
    assert_eq!(template::uses_in_expression("id == id", "id"), 2);
}

#[test]
fn the_yaml_tree_writes_back_what_it_read() {
    let text = r#"
host: http://h:1   # a comment
n: 0123
flag: yes
quoted: "302"
single: '1'
empty:
list: [1, "2", three]
maps:
  - {a: 1, "b c": x}
  - - nested
    - 2
block: |
  line 1
  line 2
json: {}
"#;
    let tree = yaml::parse(text).unwrap();
    let written = yaml::emit(&tree);
    assert_eq!(yaml::parse(&written).unwrap(), tree, "{written}");
    assert_eq!(tree.get("n"), Some(&Node::plain("0123")));
    assert_eq!(tree.get("quoted"), Some(&Node::text("302")));
    assert_eq!(tree.get("block"), Some(&Node::text("line 1\nline 2\n")));
    assert!(
        written.contains("n: 0123\n") && written.contains("quoted: \"302\"\n"),
        "{written}"
    );
}

#[test]
fn the_reference_scenarios_load_the_same_after_the_round_trip() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = output_dir("mutation_round_trip");
    std::fs::write(
        out.join("users.csv"),
        "username,password,class,basic\nu,p,c,b\n",
    )
    .unwrap();
    for source in [
        "tests/apps/django/faithful.yaml",
        "tests/apps/trac/faithful.yaml",
        "demo/scenario.yaml",
    ] {
        let original = out.join("original.yaml");
        std::fs::copy(root.join(source), &original).unwrap();
        let again = out.join("again.yaml");
        std::fs::write(
            &again,
            yaml::emit(&yaml::parse(&std::fs::read_to_string(&original).unwrap()).unwrap()),
        )
        .unwrap();
        let shown = |path: &Path| {
            let options = chorus::scenario::LoadOptions {
                data_overrides: vec![("users".to_owned(), out.join("users.csv"))],
                host_override: Some("http://127.0.0.1".to_owned()),
                ..Default::default()
            };
            let loaded = chorus::scenario::load(path, &options)
                .unwrap_or_else(|err| panic!("{source}: {err}"));
            format!(
                "{:?} {:?} {:?} {:?} {:?}",
                loaded.vars, loaded.defaults, loaded.on_start, loaded.flows, loaded.on_stop
            )
        };
        assert_eq!(shown(&original), shown(&again), "{source}");
    }
}

/// A capture entry: method, URL, status, response headers, response body.
type Exchange<'a> = (
    &'a str,
    &'a str,
    u16,
    &'a [(&'a str, &'a str)],
    &'a str,
    &'a str,
);

/// A HAR file with these exchanges (the last field is the request body).
fn har(exchanges: &[Exchange<'_>]) -> String {
    let entries: Vec<Value> = exchanges
        .iter()
        .map(|(method, url, status, headers, body, sent)| {
            let headers: Vec<Value> = headers
                .iter()
                .map(|(name, value)| json!({"name": name, "value": value}))
                .collect();
            json!({
                "startedDateTime": "2024-01-01T00:00:00.000Z",
                "time": 1,
                "request": {
                    "method": method, "url": url, "httpVersion": "HTTP/1.1",
                    "headers": [], "queryString": [], "cookies": [],
                    "headersSize": -1, "bodySize": sent.len(),
                    "postData": {"mimeType": "application/json", "text": sent}
                },
                "response": {
                    "status": status, "statusText": "", "httpVersion": "HTTP/1.1",
                    "headers": headers, "cookies": [],
                    "content": {"size": body.len(), "mimeType": "text/html", "text": body},
                    "redirectURL": "", "headersSize": -1, "bodySize": body.len()
                },
                "cache": {}, "timings": {"send": 0, "wait": 1, "receive": 0}
            })
        })
        .collect();
    json!({"log": {"version": "1.2", "creator": {"name": "t", "version": "1"}, "entries": entries}})
        .to_string()
}

const SMALL: &str = r#"
host: http://app.test
data:
  users: { file: users.csv, as: user }
headers:
  Authorization: "Bearer {{ token }}"
on_start:
  - post: /login
    recorded: 1
    json: { username: "{{ user.username }}", password: "{{ user.password }}" }
    extract:
      token: $.token
      course: $.courses[0].id
flows:
  - name: work
    steps:
      - get: /form
        recorded: 2
        extract:
          csrf: { form_field: csrf }
          mine: { link: "/notes-{{ user.username }}/", regex: '/p/(\d+)/' }
      - post: "/items?course={{ course }}"
        recorded: 3
        form: { csrf: "{{ csrf }}", title: "by {{ user.username }}" }
        expect_status: 303
        extract:
          item: { header: Location, regex: '/items/(\d+)' }
      - get: /go
        recorded: 4
        extract:
          next: { form_field: next }
      - put: "/items/{{ item }}"
        when: "course != 0"
        recorded: 6
        json: { id: "{{ item }}", course: "{{ course }}", label: "item {{ item }} of {{ course }}", next: "{{ next }}" }
      - get: /form
        recorded: 7
        extract:
          csrf: { form_field: csrf }
      - repeat: 1
        steps:
          - think: "{{ course }}"
          - delete: "/items/{{ item }}"
            recorded: 8
            form: { csrf: "{{ csrf }}" }
on_stop:
  - post: "/logout?page={{ mine }}"
    recorded: 9
"#;

fn small_capture() -> String {
    let form =
        |token: &str| format!(r#"<form><input type="hidden" name="csrf" value="{token}"></form>"#);
    let form1 =
        form("c-one") + r#"<a href="/p/3/">/notes-user02/</a> <a href="/p/4/">/notes-user01/</a>"#;
    let form2 = form("c-two");
    har(&[
        (
            "POST",
            "http://app.test/login",
            200,
            &[],
            r#"{"token":"T0K","courses":[{"id":7}]}"#,
            r#"{"username":"user01","password":"pw"}"#,
        ),
        ("GET", "http://app.test/form", 200, &[], &form1, ""),
        (
            "POST",
            "http://app.test/items?course=7",
            303,
            &[("Location", "http://app.test/items/41")],
            "",
            "csrf=c-one&title=by+user01",
        ),
        (
            "GET",
            "http://app.test/go",
            302,
            &[("Location", "/landing")],
            "",
            "",
        ),
        (
            "GET",
            "http://app.test/landing",
            200,
            &[],
            r#"<input name="next" value="0042">"#,
            "",
        ),
        ("PUT", "http://app.test/items/41", 200, &[], "{}", "{}"),
        ("GET", "http://app.test/form", 200, &[], &form2, ""),
        (
            "DELETE",
            "http://app.test/items/41",
            200,
            &[],
            "",
            "csrf=c-two",
        ),
        ("POST", "http://app.test/logout?page=4", 200, &[], "", ""),
    ])
}

/// The small scenario and its capture in `out`, and its mutants.
fn small_mutants(out: &Path, scenario: &str) -> (PathBuf, Vec<Mutant>) {
    let file = out.join("scenario.yaml");
    std::fs::write(&file, scenario).unwrap();
    std::fs::write(out.join("capture.har"), small_capture()).unwrap();
    std::fs::write(
        out.join("users.csv"),
        "username,password\nuser02,pw2\nuser03,pw3\n",
    )
    .unwrap();
    let (_, mutants) =
        mutation::build(&file, &out.join("capture.har"), &out.join("users.csv")).unwrap();
    (file, mutants)
}

fn find<'a>(mutants: &'a [Mutant], name: &str) -> &'a Mutant {
    mutants
        .iter()
        .find(|m| m.name.starts_with(name))
        .unwrap_or_else(|| {
            panic!(
                "no mutant {name}: {:#?}",
                mutants.iter().map(|m| &m.name).collect::<Vec<_>>()
            )
        })
}

/// The request at `label` of a mutant as chorus loads it.
fn request(out: &Path, mutant: &Mutant, label: &str) -> chorus::scenario::Request {
    let file = out.join("mutant.yaml");
    std::fs::write(&file, &mutant.text).unwrap();
    let loaded = chorus::scenario::load(&file, &Default::default())
        .unwrap_or_else(|err| panic!("{err}\n{}", mutant.text));
    let steps = match label.split_once('.') {
        None => &loaded.on_start,
        Some(_) => &loaded.flows[0].steps,
    };
    let index: usize = label
        .rsplit('[')
        .next()
        .unwrap()
        .trim_end_matches(']')
        .parse()
        .unwrap();
    match &steps[index].kind {
        chorus::scenario::StepKind::Request(request) => (**request).clone(),
        other => panic!("{label} is {other:?}"),
    }
}

fn json_body(request: &chorus::scenario::Request) -> Value {
    let Some(chorus::scenario::Body::Json(template)) = &request.body else {
        panic!("no JSON body: {request:?}");
    };
    let mut vars = chorus::scenario::Vars::new();
    vars.set("item", json!("41"));
    vars.set("course", json!(7));
    vars.set("next", json!("0042"));
    template.render_value(&vars).unwrap()
}

#[test]
fn each_extract_makes_a_mutant_that_sends_the_recorded_value() {
    let out = output_dir("mutation_small");
    let (_, mutants) = small_mutants(&out, SMALL);
    let names: Vec<&str> = mutants.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "without extract `token` of on_start[0] (POST /login)",
            "without extract `course` of on_start[0] (POST /login)",
            "without extract `csrf` of flows[0].steps[0] (GET /form)",
            "without extract `mine` of flows[0].steps[0] (GET /form)",
            "without extract `item` of flows[0].steps[1] (POST /items?course={{ course }})",
            "without extract `next` of flows[0].steps[2] (GET /go)",
            "without extract `csrf` of flows[0].steps[4] (GET /form)",
            "logout in the flow",
        ]
    );
    for mutant in &mutants {
        assert_eq!(mutant.problem, None, "{}:\n{}", mutant.name, mutant.text);
    }

    // A JSON number stays a number in the body, and text in a URL; the condition and the
    // pause read the number.
    let course = find(&mutants, "without extract `course`");
    assert_eq!(course.replaced, Some(5));
    assert!(!course.text.contains("{{ course }}"), "{}", course.text);
    assert_eq!(
        request(&out, course, "flows[0].steps[1]").url.source(),
        "/items?course=7"
    );
    let put = request(&out, course, "flows[0].steps[3]");
    assert_eq!(
        json_body(&put),
        json!({"id": "41", "course": 7, "label": "item 41 of 7", "next": "0042"})
    );
    assert!(course.text.contains("when: \"7 != 0\""), "{}", course.text);
    assert!(course.text.contains("think: 7\n"), "{}", course.text);

    // Text that looks like a number stays text; the extract is gone, other extracts stay.
    let item = find(&mutants, "without extract `item`");
    assert_eq!(item.replaced, Some(4));
    assert_eq!(
        request(&out, item, "flows[0].steps[3]").url.source(),
        "/items/41"
    );
    assert!(!item.text.contains("item:"), "{}", item.text);
    assert!(item.text.contains("form_field: csrf"), "{}", item.text);
    let recorded_put = request(&out, item, "flows[0].steps[3]");
    assert_eq!(json_body(&recorded_put)["id"], json!("41"));

    // A value read after the redirect the engine follows.
    let next = find(&mutants, "without extract `next`");
    assert_eq!(next.replaced, Some(1));
    assert_eq!(
        json_body(&request(&out, next, "flows[0].steps[3]"))["next"],
        json!("0042")
    );

    // Each csrf extract serves the reads up to the next one.
    let first = find(&mutants, "without extract `csrf` of flows[0].steps[0]");
    let second = find(&mutants, "without extract `csrf` of flows[0].steps[4]");
    assert_eq!((first.replaced, second.replaced), (Some(1), Some(1)));
    assert!(first.text.contains("csrf: \"c-one\"") && first.text.contains("{{ csrf }}"));
    assert!(second.text.contains("csrf: \"c-two\"") && second.text.contains("{{ csrf }}"));
    assert!(!second.text.contains("c-one"));

    // The header for every request reads the only token extract.
    let token = find(&mutants, "without extract `token`");
    assert_eq!(token.replaced, Some(1));
    assert!(
        token.text.contains("Authorization: \"Bearer T0K\""),
        "{}",
        token.text
    );

    // A link found by the recorded user's own name (read from the recorded login).
    let mine = find(&mutants, "without extract `mine`");
    assert!(
        mine.text.contains("post: \"/logout?page=4\""),
        "{}",
        mine.text
    );

    let logout = find(&mutants, "logout in the flow");
    let tree = yaml::parse(&logout.text).unwrap();
    assert_eq!(tree.get("on_stop"), None);
    let steps = tree.get("flows").unwrap().items()[0]
        .get("steps")
        .unwrap()
        .items();
    assert_eq!(
        steps.last().unwrap().get("post"),
        Some(&Node::text("/logout?page={{ mine }}"))
    );
}

#[test]
fn an_extract_that_finds_nothing_in_the_recording_makes_no_mutant() {
    let out = output_dir("mutation_unproven");
    let scenario = SMALL.replace(
        "      course: $.courses[0].id",
        "      course: $.courses[0].id\n      missing: $.nope",
    );
    let (_, mutants) = small_mutants(&out, &scenario);
    let missing = find(&mutants, "without extract `missing`");
    assert_eq!(missing.text, "");
    assert_eq!(
        missing.problem.as_deref(),
        Some(
            "on the recorded entry 1: extract missing: $.nope found nothing in a 36-byte JSON body"
        )
    );
    let without_recorded = SMALL.replace("    recorded: 1\n", "");
    let (_, mutants) = small_mutants(&out, &without_recorded);
    assert_eq!(
        find(&mutants, "without extract `token`").problem.as_deref(),
        Some("the request names no `recorded:` entry")
    );
}

/// The demo app's student session, written by hand with the capture entry each request
/// replays: log in (the session id), the class (a number the session start must get as a
/// number), the game's settings (only for the pause and a condition), a game session started,
/// an event, ended; log out in `on_stop`.
const DEMO: &str = r#"
data:
  users: { file: users.csv, as: user }
vars:
  gameId: AA-1
on_start:
  - post: /api/v2/auth/login/glasslab
    recorded: 1
    json: { username: "{{ user.username }}", password: "{{ user.password }}" }
    extract:
      sessionId: $.sessionId
  - get: /api/v2/lms/courses
    recorded: 2
    extract:
      courseId: $[0].id
  - get: "/api/v2/data/config/{{ gameId }}"
    recorded: 3
    extract:
      eventsPeriodSecs: $.eventsPeriodSecs
      eventsDetailLevel: $.eventsDetailLevel
flows:
  - name: play
    steps:
      - post: /api/v2/data/session/start
        recorded: 4
        json:
          userSessionId: "{{ sessionId }}"
          courseId: "{{ courseId }}"
          deviceId: "device of {{ user.username }}"
          gameId: "{{ gameId }}"
        extract:
          gameSessionId: $.gameSessionId
      - repeat: 1
        when: "eventsDetailLevel != 1"
        steps:
          - think: "{{ eventsPeriodSecs }}"
          - post: /api/v2/data/events
            recorded: 5
            json:
              - gameSessionId: "{{ gameSessionId }}"
                eventName: move
      - post: /api/v2/data/session/end
        recorded: 6
        json: { gameSessionId: "{{ gameSessionId }}" }
on_stop:
  - post: /api/user/logout
    recorded: 7
"#;

/// Plays [`DEMO`]'s session as `username` through a recorder in front of the app at `base`;
/// the capture's path.
async fn record_demo_session(
    app: std::net::SocketAddr,
    username: &str,
    password: &str,
) -> (tempfile::TempDir, PathBuf) {
    let (dir, recorder) = crate::util::record::record_in_front_of(app).await;
    let base = recorder.url();
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let post = |path: &str, body: Value| http.post(format!("{base}{path}")).json(&body).send();
    let login: Value = post(
        "/api/v2/auth/login/glasslab",
        json!({"username": username, "password": password}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let courses: Value = http
        .get(format!("{base}/api/v2/lms/courses"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Each body read to its end, so that the recorder writes the entries in this order.
    let config = http
        .get(format!("{base}/api/v2/data/config/AA-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(config.status(), 200);
    config.text().await.unwrap();
    let started: Value = post(
        "/api/v2/data/session/start",
        json!({
            "userSessionId": login["sessionId"],
            "courseId": courses[0]["id"],
            "deviceId": format!("device of {username}"),
            "gameId": "AA-1",
        }),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let game = &started["gameSessionId"];
    for (path, body) in [
        (
            "/api/v2/data/events",
            json!([{"gameSessionId": game, "eventName": "move"}]),
        ),
        ("/api/v2/data/session/end", json!({"gameSessionId": game})),
        ("/api/user/logout", json!({})),
    ] {
        let answer = post(path, body).await.unwrap();
        let status = answer.status();
        let text = answer.text().await.unwrap();
        assert_eq!(status, 200, "{path}: {text}");
    }
    let capture = recorder.shutdown().await.path;
    (dir, capture)
}

/// The harness end to end on the demo app: the mutants that break the session are caught;
/// those whose value every user shares (the class all students are in, the pause and the
/// detail level the app tells everyone) survive, which also proves that the class id went
/// into the JSON body as a number (as text the app refuses it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_harness_catches_what_breaks_the_demo_session() {
    let out = output_dir("mutation_demo");
    let app = chorus::demo::App::new(chorus::demo::AppOptions {
        events_period_secs: 1,
        seed: Some(chorus::demo::Seed {
            classes: 1,
            students: 15,
        }),
    });
    let server = chorus::demo::serve(&app, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let students = app.seeded_users();
    let (_recording, capture) =
        record_demo_session(server.local_addr(), &students[0].0, &students[0].1).await;
    let scenario = out.join("scenario.yaml");
    std::fs::write(&scenario, DEMO).unwrap();
    let users = out.join("users.csv");
    let mut csv = String::from("username,password\n");
    for (username, password, _) in &students[1..] {
        csv.push_str(&format!("{username},{password}\n"));
    }
    std::fs::write(&users, csv).unwrap();
    let base = format!("http://{}", server.local_addr());

    let report = tokio::task::block_in_place(|| {
        mutation::mutation_test(
            &scenario,
            &capture,
            &users,
            &mutation::Application::Running {
                base: &base,
                concurrency: 3,
            },
        )
    });
    assert_eq!(
        report.baseline,
        Vec::<String>::new(),
        "{}",
        report.summary()
    );
    let survivors: Vec<&str> = report.survivors().iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        survivors,
        [
            "without extract `courseId` of on_start[1] (GET /api/v2/lms/courses)",
            "without extract `eventsPeriodSecs` of on_start[2] (GET /api/v2/data/config/{{ gameId }})",
            "without extract `eventsDetailLevel` of on_start[2] (GET /api/v2/data/config/{{ gameId }})",
        ],
        "{}",
        report.summary()
    );
    assert_eq!(
        (report.mutants(), report.caught()),
        (6, 3),
        "{}",
        report.summary()
    );
    let first_wrong = |name: &str| {
        report
            .verdicts
            .iter()
            .find(|v| v.name.starts_with(name))
            .and_then(|v| v.first_wrong.clone())
            .unwrap_or_default()
    };
    assert!(
        first_wrong("without extract `sessionId`").contains("POST /api/v2/data/session/start"),
        "{report:#?}"
    );
    assert!(
        first_wrong("without extract `gameSessionId`").contains("POST /api/v2/data/events"),
        "{report:#?}"
    );
    assert!(
        first_wrong("logout in the flow").contains("iteration 2"),
        "{report:#?}"
    );
    // The app's own count: only the session id mutant's starts were refused as a bad
    // request (2 users, 2 iterations); had the class id gone as text, its mutant's would be too.
    let stats = crate::util::demo_stats(&base).await;
    let starts = &stats["endpoints"]["POST /api/v2/data/session/start"];
    assert_eq!(starts["400"], json!(4), "{stats:#}");
    // The logout mutant's users were refused their second start as logged out.
    assert_eq!(starts["401"], json!(2), "{stats:#}");
}

#[test]
fn a_hand_written_scenario_gets_the_entries_it_replays() {
    let out = output_dir("mutation_with_recorded");
    let capture = out.join("capture.har");
    std::fs::write(&capture, small_capture()).unwrap();
    let without: String = SMALL
        .lines()
        .filter(|line| !line.trim_start().starts_with("recorded:"))
        .map(|line| format!("{line}\n"))
        .collect();
    let annotated = yaml::parse(&mutation::with_recorded(&without, &capture).unwrap()).unwrap();
    let original = yaml::parse(SMALL).unwrap();
    let recorded = |tree: &Node| -> Vec<String> {
        let mut numbers = Vec::new();
        for section in ["on_start", "flows", "on_stop"] {
            collect_recorded(tree.get(section).unwrap(), &mut numbers);
        }
        numbers
    };
    assert_eq!(recorded(&annotated), recorded(&original));
    assert_eq!(
        recorded(&annotated),
        ["1", "2", "3", "4", "6", "7", "8", "9"]
    );

    // An authentication challenge answered later is not the request's entry.
    std::fs::write(
        &capture,
        har(&[
            ("GET", "http://h/", 200, &[], "", ""),
            ("GET", "http://h/login", 401, &[], "", ""),
            ("GET", "http://h/other", 200, &[], "", ""),
            ("GET", "http://h/login", 302, &[("Location", "/")], "", ""),
            ("GET", "http://h/items/5?x=1", 200, &[], "", ""),
            ("GET", "http://h/login/?next=/admin/&y=2", 200, &[], "", ""),
        ]),
    )
    .unwrap();
    let scenario = "on_start:\n  - get: /\n  - get: /login\nflows:\n  - steps:\n      - get: \"/items/{{ id }}?x=1\"\n      - get: /nowhere\n      - get: \"/login/?next={{ next }}&y=2\"\non_stop: []\n";
    let annotated = yaml::parse(&mutation::with_recorded(scenario, &capture).unwrap()).unwrap();
    assert_eq!(recorded(&annotated), ["1", "4", "5", "6"]);
}

fn collect_recorded(node: &Node, out: &mut Vec<String>) {
    match node {
        Node::Map(entries) => {
            for (key, value) in entries {
                match (key.as_str(), value.scalar()) {
                    ("recorded", Some(number)) => out.push(number.to_owned()),
                    _ => collect_recorded(value, out),
                }
            }
        }
        Node::Seq(items) => items.iter().for_each(|item| collect_recorded(item, out)),
        Node::Scalar { .. } => {}
    }
}
