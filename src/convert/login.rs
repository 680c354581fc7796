//! Identity: find the login (a request whose body carries a password-like field, or the one
//! `--login` names) and turn its credentials into `{{ user.<field> }}` from the `users` data.

use super::model::{DraftBody, DraftRequest};
use super::request::{Slot, set_slot, slots};

/// The login that was found: where, which columns the users CSV needs, and the recorded
/// values those columns replace everywhere.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Login {
    pub(crate) index: usize,
    pub(crate) columns: Vec<String>,
    /// (recorded value, template) for each credential.
    pub(crate) replaced: Vec<(String, String)>,
}

fn is_password_field(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    lower.contains("password") || matches!(lower.as_str(), "pass" | "passwd" | "pwd" | "passphrase")
}

fn is_identity_field(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    !is_password_field(key)
        && (lower.contains("user")
            || lower.contains("email")
            || lower.contains("login")
            || lower == "account")
}

fn column_name(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn body_slots(request: &DraftRequest) -> Vec<(Slot, String, String)> {
    slots(request)
        .into_iter()
        .filter(|s| matches!(s.slot, Slot::Json(_) | Slot::Form(_)))
        .filter_map(|s| Some((s.slot, s.value, s.key?)))
        .collect()
}

/// The index of the login request: the one whose URL contains `login_url`, or the first whose
/// body has a password-like field.
pub(crate) fn find(requests: &[DraftRequest], login_url: Option<&str>) -> Option<usize> {
    if let Some(wanted) = login_url {
        return requests.iter().position(|request| {
            let path = format!("/{}", request.path.join("/"));
            wanted.ends_with(&path) || path.ends_with(wanted.trim_start_matches(|c| c != '/'))
        });
    }
    requests.iter().position(|request| {
        matches!(request.body, DraftBody::Json(_) | DraftBody::Form(_))
            && body_slots(request)
                .iter()
                .any(|(_, value, key)| is_password_field(key) && !value.is_empty())
    })
}

/// Replaces the credentials in `requests[index]` by `{{ user.<field> }}`, and the same values
/// anywhere else they appear (a profile URL naming the username, say).
pub(crate) fn template_credentials(requests: &mut [DraftRequest], index: usize) -> Login {
    let mut login = Login {
        index,
        columns: Vec::new(),
        replaced: Vec::new(),
    };
    for (slot, value, key) in body_slots(&requests[index]) {
        if value.is_empty() || !(is_password_field(&key) || is_identity_field(&key)) {
            continue;
        }
        let column = column_name(&key);
        let template = format!("{{{{ user.{column} }}}}");
        set_slot(&mut requests[index], &slot, &template);
        if !login.columns.contains(&column) {
            login.columns.push(column);
        }
        login.replaced.push((value, template));
    }
    // Identity columns first, as people write them: username, password.
    login
        .columns
        .sort_by_key(|column| is_password_field(column));
    for request in requests.iter_mut() {
        for found in slots(request) {
            if let Some((_, template)) = login
                .replaced
                .iter()
                .find(|(value, _)| *value == found.value)
            {
                set_slot(request, &found.slot, template);
            }
        }
    }
    login
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::request::draft_request;
    use crate::convert::testing::exchange;
    use serde_json::json;

    #[test]
    fn the_login_is_found_and_its_credentials_templated() {
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
                "GET",
                "http://app/api/profile/student-001-002",
                200,
                "",
                "{}",
            ),
        ];
        let mut requests: Vec<_> = list.iter().map(draft_request).collect();
        assert_eq!(find(&requests, None), Some(1));
        let login = template_credentials(&mut requests, 1);
        assert_eq!(login.columns, ["username", "password"]);
        assert_eq!(
            requests[1].body,
            DraftBody::Json(
                json!({"username": "{{ user.username }}", "password": "{{ user.password }}"})
            )
        );
        assert_eq!(requests[2].path, ["api", "profile", "{{ user.username }}"]);
    }

    #[test]
    fn form_logins_and_the_login_flag() {
        let mut ex = exchange("POST", "http://app/session", 200, "", "");
        ex.request_body = Some(crate::convert::model::RecordedBody {
            mime: "application/x-www-form-urlencoded".to_owned(),
            text: "email=a%40b.c&pwd=secret".to_owned(),
        });
        let requests = vec![draft_request(&ex)];
        assert_eq!(find(&requests, None), Some(0));
        assert_eq!(find(&requests, Some("http://app/session")), Some(0));
        assert_eq!(find(&requests, Some("/nothing")), None);
    }
}
