//! The recorded account's own values, read from the capture, and each user's values to set
//! aside in their place ([`Accounts`]).

use super::*;

/// The recorded account's values, by `source.column`: read from the capture where the
/// scenario sends exactly `{{ source.column }}` (a login form's `username`, a JSON login's
/// `email`) in a request that says which entry it replays.
pub fn recorded_account(scenario: &Scenario, entries: &[har::Entry]) -> Vec<(String, String)> {
    let sources: Vec<&str> = scenario.data.iter().map(|d| d.as_name.as_str()).collect();
    let mut found: Vec<(String, String)> = Vec::new();
    let mut visit = |request: &Request| {
        let Some(entry) = request
            .recorded
            .and_then(|n| (n as usize).checked_sub(1))
            .and_then(|i| entries.get(i))
        else {
            return;
        };
        let recorded_body = entry
            .request
            .post_data
            .as_ref()
            .map(|post| post.text.as_str())
            .unwrap_or_default();
        let mut note = |template: &str, value: Option<String>| {
            if let Some((variable, value)) =
                value.and_then(|v| account_value(template, &v, &sources))
            {
                if !found.iter().any(|(v, _)| *v == variable) && !value.is_empty() {
                    found.push((variable, value));
                }
            }
        };
        match &request.body {
            Some(Body::Form(pairs)) => {
                for (name, template) in pairs {
                    let value = url::form_urlencoded::parse(recorded_body.as_bytes())
                        .find(|(key, _)| key == name)
                        .map(|(_, value)| value.into_owned());
                    note(template.source(), value);
                }
            }
            Some(Body::Json(template)) => {
                if let (Ok(written), Ok(recorded)) = (
                    serde_json::from_str::<serde_json::Value>(template.source()),
                    serde_json::from_str::<serde_json::Value>(recorded_body),
                ) {
                    let mut leaves = Vec::new();
                    json_leaves(&written, &recorded, &mut leaves);
                    for (written, value) in leaves {
                        note(&written, Some(value));
                    }
                }
            }
            _ => {}
        }
    };
    visit_requests(&scenario.on_start, &mut visit);
    for flow in &scenario.flows {
        visit_requests(&flow.steps, &mut visit);
    }
    visit_requests(&scenario.on_stop, &mut visit);
    // HTTP authentication: the user name the recording's Basic credentials carried.
    if let Some(auth) = &scenario.auth {
        let basic = entries.iter().find_map(|entry| {
            let header = entry
                .request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("authorization"))?;
            let encoded = header.value.trim().strip_prefix("Basic ")?;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()?;
            let text = String::from_utf8(decoded).ok()?;
            Some(text.split_once(':')?.0.to_owned())
        });
        if let (Some(variable), Some(name)) = (column_of(auth.username.source(), &sources), basic) {
            if !found.iter().any(|(v, _)| *v == variable) {
                found.push((variable, name));
            }
        }
    }
    found
}

/// Pairs of (string leaf as written, the recorded value at the same place).
fn json_leaves(
    written: &serde_json::Value,
    recorded: &serde_json::Value,
    out: &mut Vec<(String, String)>,
) {
    match (written, recorded) {
        (serde_json::Value::Object(w), serde_json::Value::Object(r)) => {
            for (key, child) in w {
                if let Some(other) = r.get(key) {
                    json_leaves(child, other, out);
                }
            }
        }
        (serde_json::Value::Array(w), serde_json::Value::Array(r)) => {
            for (child, other) in w.iter().zip(r) {
                json_leaves(child, other, out);
            }
        }
        (serde_json::Value::String(w), serde_json::Value::String(r)) => {
            out.push((w.clone(), r.clone()));
        }
        _ => {}
    }
}

/// The account value a text template sent: `{{ user.username }}` whole, or inside literal
/// text (`Notes of {{ user.username }}` recorded as `Notes of user01`).
fn account_value(template: &str, recorded: &str, sources: &[&str]) -> Option<(String, String)> {
    if let Some(variable) = column_of(template, sources) {
        return Some((variable, recorded.to_owned()));
    }
    let start = template.find("{{")?;
    let end = start + template[start..].find("}}")? + 2;
    let (prefix, suffix) = (&template[..start], &template[end..]);
    if prefix.contains("{{") || suffix.contains("{{") {
        return None;
    }
    let variable = column_of(&template[start..end], sources)?;
    let value = recorded.strip_prefix(prefix)?.strip_suffix(suffix)?;
    (!value.is_empty()).then(|| (variable, value.to_owned()))
}

/// `source.column` when `template` is exactly `{{ source.column }}` for a data source.
fn column_of(template: &str, sources: &[&str]) -> Option<String> {
    let inner = template
        .trim()
        .strip_prefix("{{")?
        .strip_suffix("}}")?
        .trim();
    let (source, column) = inner.split_once('.')?;
    let plain = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    (sources.contains(&source) && plain(column)).then(|| inner.to_owned())
}

fn visit_requests(steps: &[Step], visit: &mut impl FnMut(&Request)) {
    for step in steps {
        match &step.kind {
            StepKind::Request(request) => visit(request),
            StepKind::Repeat(repeat) => visit_requests(&repeat.steps, visit),
            StepKind::Think(_) | StepKind::Emit(_) | StepKind::Script(_) | StepKind::Socket(_) => {}
        }
    }
}

/// The values to set aside for replaying user `user`: each recorded account value beside
/// the same column of the user's own row.
pub fn accounts_for(scenario: &Scenario, recorded: &[(String, String)], user: u64) -> Accounts {
    let pairs = recorded
        .iter()
        .filter_map(|(variable, value)| {
            let (source, column) = variable.split_once('.')?;
            let data = scenario.data.iter().find(|d| d.as_name == source)?;
            let index = data.columns.iter().position(|c| c == column)?;
            let own = data.row_for_user(user)?.get(index)?.clone();
            Some((format!("{{{variable}}}"), value.clone(), own))
        })
        .collect();
    Accounts { pairs }
}
