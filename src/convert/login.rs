//! Identity: find the login (a request whose body carries a password — by its name, or because
//! the page that served the form had it in a password input — or the first request with HTTP
//! credentials, or the one `--login` names), and make the recorded account's values the
//! user's own: the credentials, and every other place they appear (a page named after the
//! user, a title "edited by user01", a profile URL) become `{{ user.<column> }}` of the users
//! CSV. Values a response says are the account's (`"username": "user01"` after a login by
//! e-mail) join the columns.

use std::collections::{HashMap, HashSet};

use super::auth::HttpAuth;
use super::model::{DraftBody, DraftRequest, Exchange};
use super::slots::{Slot, set_slot, slots};
use crate::html::{FieldKind, Page};

/// Response fields that name the account.
const IDENTITY_KEYS: &[&str] = &[
    "username",
    "user_name",
    "username_",
    "login",
    "preferred_username",
    "email",
    "e-mail",
    "mail",
    "nickname",
];

/// The login that was found: where, which columns the users CSV needs, and the recorded
/// values those columns replace everywhere.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Login {
    pub(crate) index: usize,
    pub(crate) columns: Vec<String>,
    /// (recorded value, column) of each account value.
    pub(crate) values: Vec<(String, String)>,
}

impl Login {
    /// The template of a column.
    fn template(column: &str) -> String {
        format!("{{{{ user.{column} }}}}")
    }

    fn add(&mut self, value: &str, column: &str) {
        if value.is_empty() || self.values.iter().any(|(v, _)| v == value) {
            return;
        }
        if !self.columns.iter().any(|c| c == column) {
            self.columns.push(column.to_owned());
        }
        self.values.push((value.to_owned(), column.to_owned()));
    }
}

fn is_password_name(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    lower.contains("password")
        || matches!(
            lower.as_str(),
            "pass" | "passwd" | "pwd" | "passphrase" | "pin"
        )
}

fn is_identity_name(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    !is_password_name(key)
        && (lower.contains("user")
            || lower.contains("email")
            || lower.contains("login")
            || lower == "account"
            || lower == "u")
}

/// What the login form's fields are, from the page that served it: the password inputs and
/// the inputs a person typed into (buttons and hidden fields are neither).
struct FormRoles {
    passwords: Vec<String>,
    typed: Vec<String>,
}

/// The roles of the fields of the form `request` submits, read from the newest earlier page
/// that has a form with a password input among those fields.
fn form_roles(request: &DraftRequest, before: &[Exchange]) -> Option<FormRoles> {
    let DraftBody::Form(pairs) = &request.body else {
        return None;
    };
    before
        .iter()
        .rev()
        .find_map(|exchange| roles_in(exchange.page()?, pairs))
}

/// The roles of the fields of `page`'s form with a password input among the `sent` fields.
fn roles_in(page: &Page, sent: &[(String, String)]) -> Option<FormRoles> {
    let sent = |name: &str| sent.iter().any(|(key, _)| key == name);
    let form = page
        .fields
        .iter()
        .find(|f| f.kind == FieldKind::Password && sent(&f.name))?
        .form;
    let in_form = page.fields.iter().filter(|f| f.form == form);
    let mut roles = FormRoles {
        passwords: Vec::new(),
        typed: Vec::new(),
    };
    for field in in_form {
        match field.kind {
            FieldKind::Password => roles.passwords.push(field.name.clone()),
            FieldKind::Input => roles.typed.push(field.name.clone()),
            _ => {}
        }
    }
    Some(roles)
}

/// (slot, value, is the password) of each credential the request sends.
fn credentials(request: &DraftRequest, before: &[Exchange]) -> Vec<(Slot, String, bool)> {
    credentials_in_roles(request, form_roles(request, before))
}

/// [`credentials`], the form's roles known.
fn credentials_in_roles(
    request: &DraftRequest,
    roles: Option<FormRoles>,
) -> Vec<(Slot, String, bool)> {
    slots(request)
        .into_iter()
        .filter(|s| matches!(s.slot, Slot::Json(_) | Slot::Form(_) | Slot::Multipart(_)))
        .filter(|s| !s.value.is_empty())
        .filter_map(|s| {
            let key = s.key?.into_owned();
            let password = match &roles {
                Some(roles) if roles.passwords.contains(&key) => true,
                Some(roles) if roles.typed.contains(&key) => false,
                // A hidden field or a button of a known form is not a credential.
                Some(_) => return None,
                None if is_password_name(&key) => true,
                None if is_identity_name(&key) => false,
                None => return None,
            };
            Some((s.slot, s.value.into_owned(), password))
        })
        .collect()
}

/// The index of the login request: the one whose URL contains `login_url`, or the first that
/// sends a password.
pub(crate) fn find(
    requests: &[DraftRequest],
    exchanges: &[Exchange],
    login_url: Option<&str>,
) -> Option<usize> {
    if let Some(wanted) = login_url {
        return requests.iter().position(|request| {
            let path = format!("/{}", request.path.join("/"));
            wanted.ends_with(&path) || path.ends_with(wanted.trim_start_matches(|c| c != '/'))
        });
    }
    // The newest page so far with a password input of each name: the page of the form a
    // request submits is found at once, not by reading back through every page.
    let mut password_pages: HashMap<&str, usize> = HashMap::new();
    for (index, request) in requests.iter().enumerate() {
        let roles = match &request.body {
            DraftBody::Form(pairs) => pairs
                .iter()
                .filter_map(|(key, _)| password_pages.get(key.as_str()))
                .max()
                .and_then(|&page| roles_in(exchanges[page].page()?, pairs)),
            _ => None,
        };
        if credentials_in_roles(request, roles)
            .iter()
            .any(|(_, _, password)| *password)
        {
            return Some(index);
        }
        if let Some(page) = exchanges[index].page() {
            for field in page.fields.iter().filter(|f| f.kind == FieldKind::Password) {
                password_pages.insert(&field.name, index);
            }
        }
    }
    None
}

/// The column an identity value goes to.
fn identity_column(value: &str) -> &'static str {
    if value.contains('@') {
        "email"
    } else {
        "username"
    }
}

/// Replaces the credentials in `requests[index]` by `{{ user.<column> }}`.
pub(crate) fn template_credentials(
    requests: &mut [DraftRequest],
    exchanges: &[Exchange],
    index: usize,
) -> Login {
    let mut login = Login {
        index,
        columns: Vec::new(),
        values: Vec::new(),
    };
    for (slot, value, password) in credentials(&requests[index], &exchanges[..index]) {
        let column = if password {
            "password"
        } else {
            identity_column(&value)
        };
        if login.columns.iter().any(|c| c == column)
            && !login.values.iter().any(|(v, _)| *v == value)
        {
            continue; // a second, different identity: not the account's
        }
        set_slot(&mut requests[index], &slot, &Login::template(column));
        login.add(&value, column);
    }
    login.columns.sort_by_key(|column| column == "password");
    login
}

/// The login of HTTP authentication: the first request that sent credentials.
pub(crate) fn http_login(auth: &HttpAuth, index: usize) -> Login {
    let mut login = Login {
        index,
        columns: Vec::new(),
        values: Vec::new(),
    };
    login.add(&auth.username, "username");
    match &auth.password {
        Some(password) => login.add(password, "password"),
        None => login.columns.push("password".to_owned()),
    }
    login
}

/// Values the responses after the login say are the account's (`"username": "user01"` when
/// the login was by e-mail), when a later request sends them: more columns.
pub(crate) fn add_response_identities(
    login: &mut Login,
    requests: &[DraftRequest],
    exchanges: &[Exchange],
) {
    // (first response, value) of each identity the responses name, in recorded order: a
    // value's later responses cannot pass where its first did not (it must be sent after).
    let mut named: Vec<(usize, String)> = Vec::new();
    let mut first_seen: HashSet<String> = HashSet::new();
    for (i, exchange) in exchanges.iter().enumerate().skip(login.index) {
        let Some(body) = &exchange.response_body else {
            continue;
        };
        let Ok(json) = serde_json::from_str::<serde_json::Value>(body) else {
            continue;
        };
        identities(&json, None, &mut |value| {
            if first_seen.insert(value.clone()) {
                named.push((i, value));
            }
        });
    }
    if named.is_empty() {
        return;
    }
    let mut sent = Sent::new(requests, named.iter().map(|(_, value)| value.as_str()));
    for (i, value) in &named {
        let column = identity_column(value);
        let known = login.values.iter().any(|(v, _)| v == value);
        let taken = login.columns.iter().any(|c| c == column);
        if !known && !taken && sent.last(value).is_some_and(|last| last > *i) {
            login.add(value, column);
            login.columns.sort_by_key(|column| column == "password");
        }
    }
}

/// The alphanumeric runs of a text (what [`occurrences`] treats as words).
fn runs(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|run| !run.is_empty())
}

/// Which requests send a value (whole, as [`occurrences`] finds it): the requests each word of
/// the values asked about appears in, gathered in one pass; a value is then looked for only
/// in the requests that have its rarest word, since a whole occurrence of a value holds each
/// of its words whole. Each answer is kept.
struct Sent<'a> {
    requests: &'a [DraftRequest],
    /// Word -> the requests (ascending) whose slots have it.
    requests_with: HashMap<&'a str, Vec<usize>>,
    last: HashMap<String, Option<usize>>,
}

impl<'a> Sent<'a> {
    fn new(requests: &'a [DraftRequest], values: impl Iterator<Item = &'a str>) -> Self {
        let mut requests_with: HashMap<&'a str, Vec<usize>> = HashMap::new();
        for value in values {
            for run in runs(value) {
                requests_with.entry(run).or_default();
            }
        }
        for (index, request) in requests.iter().enumerate() {
            for found in slots(request) {
                for run in runs(&found.value) {
                    if let Some(list) = requests_with.get_mut(run) {
                        if list.last() != Some(&index) {
                            list.push(index);
                        }
                    }
                }
            }
        }
        Self {
            requests,
            requests_with,
            last: HashMap::new(),
        }
    }

    /// The last request that sends `value`.
    fn last(&mut self, value: &str) -> Option<usize> {
        if let Some(last) = self.last.get(value) {
            return *last;
        }
        let sends = |request: &DraftRequest| {
            slots(request)
                .iter()
                .any(|s| occurrences(&s.value, value).next().is_some())
        };
        let rarest = runs(value)
            .filter_map(|run| self.requests_with.get(run))
            .min_by_key(|list| list.len());
        let last = match rarest {
            Some(list) => list
                .iter()
                .rev()
                .copied()
                .find(|&index| sends(&self.requests[index])),
            // No word to look up by: every request.
            None => self.requests.iter().rposition(sends),
        };
        self.last.insert(value.to_owned(), last);
        last
    }
}

/// Every string or number leaf of `json` under an identity key (`username`, `email`...) of
/// four characters or more, in document order.
fn identities(json: &serde_json::Value, key: Option<&str>, found: &mut dyn FnMut(String)) {
    use serde_json::Value;
    let value = match json {
        Value::Object(map) => {
            for (name, child) in map {
                identities(child, Some(name), found);
            }
            return;
        }
        Value::Array(items) => {
            for child in items {
                identities(child, key, found);
            }
            return;
        }
        Value::String(text) => std::borrow::Cow::Borrowed(text.as_str()),
        Value::Number(number) => std::borrow::Cow::Owned(number.to_string()),
        Value::Bool(_) | Value::Null => return,
    };
    let Some(key) = key else { return };
    if IDENTITY_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key)) && value.chars().count() >= 4 {
        found(value.into_owned());
    }
}

/// Where `value` occurs in `text` as a whole (not inside a longer word or number).
fn occurrences<'a>(text: &'a str, value: &'a str) -> impl Iterator<Item = usize> + 'a {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric());
    text.match_indices(value).filter_map(move |(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + value.len()..].chars().next();
        (!alnum(before) && !alnum(after)).then_some(at)
    })
}

/// Every place a request sends one of the account's values — whole, or inside a longer text
/// — becomes `{{ user.<column> }}`. Passwords only where sent whole.
pub(crate) fn template_account_values(requests: &mut [DraftRequest], login: &Login) {
    for request in requests.iter_mut() {
        let mut changed: Vec<(Slot, String)> = Vec::new();
        for found in slots(request) {
            if matches!(found.slot, Slot::Cookie { .. } | Slot::Bearer(_)) {
                continue;
            }
            let text = with_account_values(&found.value, &login.values);
            if text != found.value {
                changed.push((found.slot, text));
            }
        }
        for (slot, text) in changed {
            set_slot(request, &slot, &text);
        }
    }
}

/// `text` with the account's values (`(recorded value, users CSV column)`, as
/// [`Login::values`]) templated: a whole value, or one inside the text but for a password.
/// Values shorter than 4 characters are left alone, they match by chance.
pub(crate) fn with_account_values(text: &str, account: &[(String, String)]) -> String {
    let mut values: Vec<&(String, String)> = account
        .iter()
        .filter(|(value, _)| value.chars().count() >= 4)
        .collect();
    // Longer values first: `user01@example.org` before `user01`.
    values.sort_by_key(|(value, _)| std::cmp::Reverse(value.len()));
    let mut text = text.to_owned();
    for (value, column) in values {
        let template = Login::template(column);
        if text == *value {
            text = template;
        } else if column != "password" {
            let at: Vec<usize> = occurrences(&text, value).collect();
            for start in at.into_iter().rev() {
                text.replace_range(start..start + value.len(), &template);
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::model::RecordedBody;
    use crate::convert::request::draft_request;
    use crate::convert::testing::exchange;
    use serde_json::json;

    #[test]
    fn the_login_is_found_and_the_account_templated_everywhere() {
        let list = [
            exchange("GET", "http://app/", 200, "", ""),
            exchange(
                "POST",
                "http://app/api/login",
                200,
                r#"{"username":"student-001-002","password":"pw-001-002"}"#,
                "{}",
            ),
            exchange(
                "POST",
                "http://app/api/profile/student-001-002",
                200,
                r#"{"title":"Notes of student-001-002","n":"student-001-0021"}"#,
                "{}",
            ),
        ];
        let mut requests: Vec<_> = list.iter().map(draft_request).collect();
        assert_eq!(find(&requests, &list, None), Some(1));
        let login = template_credentials(&mut requests, &list, 1);
        assert_eq!(login.columns, ["username", "password"]);
        template_account_values(&mut requests, &login);
        assert_eq!(
            requests[1].body,
            DraftBody::Json(
                json!({"username": "{{ user.username }}", "password": "{{ user.password }}"})
            )
        );
        assert_eq!(requests[2].path, ["api", "profile", "{{ user.username }}"]);
        assert_eq!(
            requests[2].body,
            DraftBody::Json(
                json!({"title": "Notes of {{ user.username }}", "n": "student-001-0021"})
            )
        );
    }

    #[test]
    fn a_form_login_whose_fields_the_page_names() {
        let mut page = exchange("GET", "http://wiki/login", 200, "", "");
        page.response_mime = "text/html".to_owned();
        page.response_body = Some(
            r#"<form method=post><input type=hidden name=sectok value=""><input name=u>
               <input type=password name=p><button name=login value=Login>Log in</button></form>"#
                .to_owned(),
        );
        let mut post = exchange("POST", "http://wiki/login", 302, "", "");
        post.request_body = Some(RecordedBody {
            mime: "application/x-www-form-urlencoded".to_owned(),
            text: "sectok=&u=user01&p=secret&login=Login".to_owned(),
        });
        let list = [page, post];
        let mut requests: Vec<_> = list.iter().map(draft_request).collect();
        assert_eq!(find(&requests, &list, None), Some(1));
        let login = template_credentials(&mut requests, &list, 1);
        assert_eq!(login.columns, ["username", "password"]);
        assert_eq!(
            requests[1].body,
            DraftBody::Form(vec![
                ("sectok".to_owned(), String::new()),
                ("u".to_owned(), "{{ user.username }}".to_owned()),
                ("p".to_owned(), "{{ user.password }}".to_owned()),
                ("login".to_owned(), "Login".to_owned()),
            ])
        );
        assert_eq!(find(&requests, &list, Some("http://wiki/login")), Some(0));
    }

    #[test]
    fn a_value_is_sent_only_where_it_stands_whole() {
        let list = [
            exchange(
                "POST",
                "http://api/a",
                200,
                r#"{"title":"About (edited by user01)"}"#,
                "{}",
            ),
            exchange(
                "POST",
                "http://api/b",
                200,
                r#"{"n":"user012","m":"--"}"#,
                "{}",
            ),
            exchange("GET", "http://api/c", 200, "", "{}"),
        ];
        let requests: Vec<_> = list.iter().map(draft_request).collect();
        let mut sent = Sent::new(&requests, ["user01", "user0", "--", "nobody"].into_iter());
        assert_eq!(sent.last("user01"), Some(0));
        assert_eq!(sent.last("user0"), None);
        assert_eq!(sent.last("nobody"), None);
        // No word to look it up by: every request is read.
        assert_eq!(sent.last("--"), Some(1));
    }

    #[test]
    fn a_username_the_login_answer_gives_is_the_account_s() {
        let list = [
            exchange(
                "POST",
                "http://api/login",
                200,
                r#"{"email":"user01@example.test","password":"pw"}"#,
                r#"{"accessToken":"x","user":{"id":1,"username":"user01"}}"#,
            ),
            exchange(
                "POST",
                "http://api/posts",
                201,
                r#"{"title":"Reading list of user01"}"#,
                "{}",
            ),
        ];
        let mut requests: Vec<_> = list.iter().map(draft_request).collect();
        let mut login = template_credentials(&mut requests, &list, 0);
        add_response_identities(&mut login, &requests, &list);
        assert_eq!(login.columns, ["email", "username", "password"]);
        template_account_values(&mut requests, &login);
        assert_eq!(
            requests[1].body,
            DraftBody::Json(json!({"title": "Reading list of {{ user.username }}"}))
        );
    }
}
