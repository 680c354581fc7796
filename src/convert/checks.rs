//! Checks that tell a request's recorded outcome from the ways a replay goes wrong while the
//! status still looks fine: where a redirect points (the login page instead of the list), an
//! HTML page's title, a JSON object's keys, the data of a GraphQL answer (which fails with
//! 200 and `errors`). Written for every request from its recorded response; ids and the
//! account's own values are generalised so that every user's replay passes.

use serde_json::Value;

use super::model::{DraftCheck, DraftRequest, Exchange};
use crate::html::FieldKind;

/// Adds the checks of `exchange`'s recorded response to `request`.
pub(crate) fn add_checks(
    request: &mut DraftRequest,
    exchange: &Exchange,
    account: &[(String, String)],
) {
    if (300..400).contains(&exchange.status) {
        if let Some(location) = exchange.response_header("location") {
            if let Ok(target) = exchange.url.join(location) {
                request
                    .checks
                    .push(DraftCheck::Redirect(path_glob(target.path(), account)));
            }
        }
        return;
    }
    if !(200..300).contains(&exchange.status) {
        return;
    }
    let Some(body) = exchange.response_body.as_deref() else {
        return;
    };
    if let Ok(json) = serde_json::from_str::<Value>(body) {
        if let Value::Object(object) = &json {
            let keys: Vec<String> = object.keys().cloned().collect();
            let plain = |key: &String| !key.chars().any(|c| c.is_ascii_digit());
            if !keys.is_empty() && keys.iter().all(plain) {
                request.checks.push(DraftCheck::JsonKeys(keys));
            }
            if let Some(path) = graphql_data_path(&json) {
                request.checks.push(DraftCheck::JsonPath(path));
            }
        }
        return;
    }
    if let Some(page) = exchange.page() {
        let Some(title) = page.title.as_deref().filter(|t| !t.is_empty()) else {
            return;
        };
        // What the page's own fields hold is data (an object's name), which other users
        // and later iterations change: generalised, like ids.
        let data: Vec<&str> = page
            .fields
            .iter()
            .filter(|f| {
                !matches!(
                    f.kind,
                    FieldKind::Hidden | FieldKind::Button | FieldKind::Password
                )
            })
            .filter_map(|f| f.value.as_deref())
            .filter(|v| v.trim().chars().count() >= 3)
            .collect();
        request.checks.push(title_check(title, account, &data));
    }
}

/// A path with the segments that name one thing (digits, tokens, the account's values) as
/// `*`: the glob a `redirect` check matches.
fn path_glob(path: &str, account: &[(String, String)]) -> String {
    path.split('/')
        .map(|segment| {
            let decoded = super::slots::percent_decode(segment);
            let names_one = crate::values::looks_generated(&decoded)
                || account
                    .iter()
                    .any(|(value, _)| decoded.contains(value.as_str()));
            if names_one && !segment.is_empty() {
                "*"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The title as a template (the account's values as `{{ user.<column> }}`), or, when it holds
/// numbers (an id, a count), as a regex with them generalised.
fn title_check(title: &str, account: &[(String, String)], data: &[&str]) -> DraftCheck {
    let values: Vec<&(String, String)> = account
        .iter()
        .filter(|(value, column)| value.chars().count() >= 4 && column != "password")
        .collect();
    let mut rest = title.to_owned();
    let mut data: Vec<&str> = data.iter().map(|d| d.trim()).collect();
    data.sort_by_key(|d| std::cmp::Reverse(d.len()));
    let mut generalised = false;
    for value in data {
        if rest.contains(value) {
            rest = rest.replace(value, "\u{0}");
            generalised = true;
        }
    }
    for (value, _) in &values {
        rest = rest.replace(value.as_str(), "\u{0}");
    }
    if generalised {
        return DraftCheck::TitleMatches(pattern_of(&rest));
    }
    if !rest.chars().any(|c| c.is_ascii_digit()) {
        let mut text = title.replace("{{", "{{ '{{' }}");
        for (value, column) in &values {
            text = text.replace(value.as_str(), &format!("{{{{ user.{column} }}}}"));
        }
        return DraftCheck::Title(text);
    }
    DraftCheck::TitleMatches(pattern_of(&rest))
}

/// A regex for a title whose data parts are NUL characters: those as `.+`, digit runs as
/// `[0-9]+`, the rest as written.
fn pattern_of(rest: &str) -> String {
    let mut pattern = String::from("^");
    let mut digits = false;
    for c in rest.chars() {
        if c.is_ascii_digit() {
            if !digits {
                pattern.push_str("[0-9]+");
            }
            digits = true;
            continue;
        }
        digits = false;
        if c == '\u{0}' {
            if !pattern.ends_with(".*") {
                pattern.push_str(".*");
            }
        } else {
            pattern.push_str(&regex::escape(&c.to_string()));
        }
    }
    pattern.push('$');
    pattern
}

/// For a GraphQL answer (`{"data": {...}}`), the path to its first value that is not null:
/// a failed operation answers 200 with `errors` and a null there.
fn graphql_data_path(json: &Value) -> Option<String> {
    let mut node = json.get("data")?.as_object()?;
    let mut path = "$.data".to_owned();
    loop {
        let (key, child) = node.iter().find(|(_, value)| !value.is_null())?;
        let plain = key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        path.push_str(&if plain {
            format!(".{key}")
        } else {
            format!("['{key}']")
        });
        match child {
            Value::Object(object) if !object.is_empty() => node = object,
            _ => return Some(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::request::draft_request;
    use crate::convert::testing::exchange;

    fn account() -> Vec<(String, String)> {
        vec![("user01".to_owned(), "username".to_owned())]
    }

    #[test]
    fn redirects_titles_json_keys_and_graphql_data() {
        let mut created = exchange("POST", "http://h:1/projects/team/issues", 302, "", "");
        created
            .response_headers
            .push(("Location".to_owned(), "http://h:1/issues/17".to_owned()));
        let mut request = draft_request(&created);
        add_checks(&mut request, &created, &account());
        assert_eq!(
            request.checks,
            [DraftCheck::Redirect("/issues/*".to_owned())]
        );

        let mut page = exchange("GET", "http://h/x", 200, "", "");
        page.response_mime = "text/html".to_owned();
        page.response_body = Some("<title>user01 [Chorus Wiki]</title>".to_owned());
        let mut request = draft_request(&page);
        add_checks(&mut request, &page, &account());
        assert_eq!(
            request.checks,
            [DraftCheck::Title(
                "{{ user.username }} [Chorus Wiki]".to_owned()
            )]
        );
        assert_eq!(
            title_check("#12 (Printer by user01) – Trac", &account(), &[]),
            DraftCheck::TitleMatches("^\\#[0-9]+ \\(Printer by .*\\) – Trac$".to_owned())
        );
        assert_eq!(
            title_check(
                "/about/ -- About | Change flat page | Django site admin",
                &account(),
                &["/about/", "About", "<p>Who we are.</p>"]
            ),
            DraftCheck::TitleMatches(
                "^.* \\-\\- .* \\| Change flat page \\| Django site admin$".to_owned()
            )
        );

        let graphql = exchange(
            "POST",
            "http://h/graphql",
            200,
            "{}",
            r#"{"data":{"createPost":{"post":{"id":22,"headline":"x"}}}}"#,
        );
        let mut request = draft_request(&graphql);
        add_checks(&mut request, &graphql, &account());
        assert_eq!(
            request.checks,
            [
                DraftCheck::JsonKeys(vec!["data".to_owned()]),
                DraftCheck::JsonPath("$.data.createPost.post.id".to_owned())
            ]
        );
    }
}
