//! Templates compiled and rendered: values, filters, functions, limits and the messages.

use super::*;
use serde_json::json;

fn vars() -> Vars {
    let mut vars = Vars::new();
    vars.set("courseId", json!(7));
    vars.set("name", json!("ada"));
    vars.set("user", json!({"username": "s1", "password": "pw"}));
    vars.set("level", json!(1));
    vars
}

#[test]
fn text_without_braces_is_static() {
    let template = Template::parse("/api/v2/lms/courses").unwrap();
    assert!(template.is_static());
    assert_eq!(template.render(&vars()).unwrap(), "/api/v2/lms/courses");
}

#[test]
fn inserts_render_between_text() {
    let template = Template::parse("/api/{{ courseId }}/x/{{ user.username }}").unwrap();
    assert!(!template.is_static());
    assert_eq!(template.render(&vars()).unwrap(), "/api/7/x/s1");
    assert_eq!(template.variables(), ["courseId", "user.username"]);
}

#[test]
fn a_single_expression_keeps_its_type() {
    let template = Template::parse("{{ courseId }}").unwrap();
    assert_eq!(template.render_value(&vars()).unwrap(), json!(7));
    assert_eq!(template.render(&vars()).unwrap(), "7");
    let text = Template::parse("id {{ courseId }}").unwrap();
    assert_eq!(text.render_value(&vars()).unwrap(), json!("id 7"));
}

#[test]
fn json_bodies_keep_types_and_order() {
    let body = json!({"userSessionId": "{{ user.username }}", "courseId": "{{ courseId }}", "gameId": "AA-1", "n": [1, "{{ level + 1 }}"]});
    let template = Template::json(&body).unwrap();
    let text = template.render(&vars()).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        parsed,
        json!({"userSessionId": "s1", "courseId": 7, "gameId": "AA-1", "n": [1, 2]})
    );
    let fixed = Template::json(&json!({"a": [1, "b"]})).unwrap();
    assert!(fixed.is_static());
    assert_eq!(fixed.render_value(&vars()).unwrap(), json!({"a": [1, "b"]}));
    assert_eq!(
        Template::json(&json!(3))
            .unwrap()
            .render_value(&vars())
            .unwrap(),
        json!(3)
    );
}

#[test]
fn undefined_variables_are_errors() {
    let template = Template::parse("/x/{{ missing }}").unwrap();
    let err = template.render(&vars()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "{{ missing }}: undefined (no variable of that name has been set)"
    );
    let err = Template::parse("{{ user.nope }}")
        .unwrap()
        .render(&vars())
        .unwrap_err();
    assert!(
        err.to_string().starts_with("{{ user.nope }}: undefined"),
        "{err}"
    );
}

#[test]
fn syntax_errors_are_reported_at_parse() {
    let err = Template::parse("/x/{{ user. }}").unwrap_err().to_string();
    assert!(err.starts_with("syntax error"), "{err}");
    let err = Template::parse("/x/{{ user").unwrap_err().to_string();
    assert_eq!(err, "`{{` at character 4 has no matching `}}`");
    assert!(Template::parse("a{#b}{%c").unwrap().is_static());
    let err = Template::parse("{% if x %}y{% endif %}")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("`{%` blocks are not supported"), "{err}");
    assert!(Template::parse("{{ }}").is_err());
}

#[test]
fn plain_variables_take_the_short_path() {
    let vars = vars();
    let template =
        Template::parse("{{ user.username }}/{{ courseId }}/{{ true }}/{{ none }}").unwrap();
    assert_eq!(template.render(&vars).unwrap(), "s1/7/true/null");
    assert_eq!(
        Template::parse("{{ 1 == 1 }}")
            .unwrap()
            .render(&vars)
            .unwrap(),
        "true"
    );
    let expr = Expr::compile("user.password").unwrap();
    assert!(expr.path.is_some());
    assert_eq!(expr.eval(&vars).unwrap().as_str(), Some("pw"));
    assert!(Expr::compile("user.nope").unwrap().eval(&vars).is_err());
    assert!(Expr::compile("courseId + 1").unwrap().path.is_none());
}

#[test]
fn braces_inside_strings_do_not_close() {
    let template = Template::parse("{{ '}}' ~ name }}!").unwrap();
    assert_eq!(template.render(&vars()).unwrap(), "}}ada!");
}

#[test]
fn functions_are_available() {
    let vars = vars();
    let id = Template::parse("{{ uuid() }}")
        .unwrap()
        .render(&vars)
        .unwrap();
    assert_eq!(id.len(), 36);
    assert_eq!(&id[14..15], "4");
    let n = Template::parse("{{ random_int(3, 5) }}")
        .unwrap()
        .render_value(&vars)
        .unwrap();
    assert!((3..=5).contains(&n.as_i64().unwrap()));
    let s = Template::parse("{{ random_string(12) }}")
        .unwrap()
        .render(&vars)
        .unwrap();
    assert_eq!(s.len(), 12);
    assert!(
        Template::parse("{{ now_ms() }}")
            .unwrap()
            .render_value(&vars)
            .unwrap()
            .is_u64()
    );
    // Constant mistakes fail when the template is compiled, not per request.
    assert_eq!(
        Template::parse("{{ random_int(5, 3) }}")
            .unwrap_err()
            .to_string(),
        "invalid operation: random_int(5, 3): the first bound is above the second"
    );
    assert!(
        Template::parse("{{ random_int(n, 3) }}")
            .unwrap()
            .render(&vars)
            .is_err()
    );
    for (source, message) in [
        (
            "{{ 1 / 0 }}",
            "invalid operation: unable to calculate 1 / 0",
        ),
        (
            "{{ random_string(-1) }}",
            "invalid operation: cannot convert number to usize",
        ),
        ("{{ vu | nosuch }}", "unknown filter `nosuch`"),
    ] {
        assert_eq!(
            Template::parse(source).unwrap_err().to_string(),
            message,
            "{source}"
        );
    }
    // env(..) is not evaluated at load: a cluster worker gets its values with the scenario.
    assert!(Template::parse("{{ env('CHORUS_SURELY_UNSET_VARIABLE') }}").is_ok());
    assert!(
        Template::parse("{{ uuid() }}")
            .unwrap()
            .variables()
            .is_empty()
    );
}

#[test]
fn conditions_evaluate_truthiness() {
    let vars = vars();
    assert!(
        !Condition::parse("level != 1")
            .unwrap()
            .evaluate(&vars)
            .unwrap()
    );
    assert!(
        Condition::parse("{{ level == 1 }}")
            .unwrap()
            .evaluate(&vars)
            .unwrap()
    );
    assert!(
        Condition::parse("missing")
            .unwrap()
            .evaluate(&vars)
            .is_err()
    );
    assert!(
        !Condition::parse("missing is defined")
            .unwrap()
            .evaluate(&vars)
            .unwrap()
    );
}

#[test]
fn placeholders_name_the_variable() {
    let template =
        Template::parse("/api/v2/data/config/{{ gameId }}?u={{ user.username }}").unwrap();
    assert_eq!(
        template.display_with_placeholders(),
        "/api/v2/data/config/[gameId]?u=[user.username]"
    );
    assert_eq!(template.static_prefix(), "/api/v2/data/config/");
}
