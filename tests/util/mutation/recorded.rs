//! What the recording says: the value each extract gives on the response its request
//! replays (chorus's own `Extract::apply` on the capture's entry, after the redirects the
//! engine follows), and `recorded: N` found for a hand-written scenario.

use std::collections::HashMap;
use std::path::Path;

use chorus::har::{self, Entry};
use chorus::scenario::{Request, Scenario, Step, StepKind, Vars};
use serde_json::Value;

use super::mutants::{at_mut, steps_of};
use super::yaml::{self, Node};
use crate::util::round_trip::RecordedResponse;

/// What each extract gives on the recorded responses, by (step label, variable name).
pub(super) type RecordedValues = HashMap<(String, String), Result<Value, String>>;

/// What each extract gives on the recorded responses, by (step label, variable): the
/// scenario run through once on the capture, as the recorded user (the account's values read
/// from the capture where the scenario sends them), each extract applied to the response its
/// request's `recorded:` entry got after the redirects the engine would follow.
pub(super) fn recorded_values(
    scenario: &Scenario,
    entries: &[Entry],
) -> Result<RecordedValues, String> {
    let mut vars = Vars::for_user(scenario, 0).map_err(|err| err.to_string())?;
    for (variable, recorded) in chorus::fidelity::recorded_account(scenario, entries) {
        let Some((source, column)) = variable.split_once('.') else {
            continue;
        };
        if let Some(Value::Object(mut row)) = vars.get(source) {
            row.insert(column.to_owned(), Value::from(recorded));
            vars.set(source, Value::Object(row));
        }
    }
    let mut requests = Vec::new();
    collect_requests(&scenario.on_start, "on_start", &mut requests);
    for (index, flow) in scenario.flows.iter().enumerate() {
        collect_requests(&flow.steps, &format!("flows[{index}].steps"), &mut requests);
    }
    collect_requests(&scenario.on_stop, "on_stop", &mut requests);
    let mut values = HashMap::new();
    for (label, request) in requests {
        let entry = request
            .recorded
            .ok_or_else(|| "the request names no `recorded:` entry".to_owned())
            .and_then(|number| {
                let index = (number as usize)
                    .checked_sub(1)
                    .filter(|&i| i < entries.len());
                index.ok_or_else(|| {
                    format!(
                        "`recorded: {number}`: the capture has {} entries",
                        entries.len()
                    )
                })
            })
            .map(|index| final_entry(entries, index, request.expect_status.as_deref()));
        for extract in &request.extract {
            let value = match &entry {
                Err(problem) => Err(problem.clone()),
                Ok(index) => {
                    let response = RecordedResponse::of(&entries[*index]);
                    let view = response.view();
                    extract
                        .apply(&view, &mut vars)
                        .map(|()| vars.get(&extract.name).unwrap_or(Value::Null))
                        .map_err(|err| format!("on the recorded entry {}: {err}", index + 1))
                }
            };
            values.insert((label.clone(), extract.name.clone()), value);
        }
    }
    Ok(values)
}

fn collect_requests<'a>(steps: &'a [Step], label: &str, out: &mut Vec<(String, &'a Request)>) {
    for (index, step) in steps.iter().enumerate() {
        let here = format!("{label}[{index}]");
        match &step.kind {
            StepKind::Request(request) => out.push((here, request)),
            StepKind::Repeat(repeat) => {
                collect_requests(&repeat.steps, &format!("{here}.steps"), out)
            }
            StepKind::Think(_) | StepKind::Emit(_) | StepKind::Script(_) | StepKind::Socket(_) => {}
        }
    }
}

/// The entry whose response the engine's extracts see: `index`'s, or, when that is a redirect
/// the engine follows (not one `expect_status` accepts), the entry the recording went to next.
fn final_entry(entries: &[Entry], index: usize, expected: Option<&[u16]>) -> usize {
    let mut at = index;
    for _ in 0..10 {
        let entry = &entries[at];
        let status = entry.response.status;
        let followed = matches!(status, 301 | 302 | 303 | 307 | 308)
            && !expected.is_some_and(|statuses| statuses.contains(&status));
        let location = header(entry, "location");
        let (true, Some(location)) = (followed, location) else {
            return at;
        };
        let Some(next) = url::Url::parse(&entry.request.url)
            .ok()
            .and_then(|url| url.join(location).ok())
        else {
            return at;
        };
        let method =
            if status == 303 || (matches!(status, 301 | 302) && entry.request.method == "POST") {
                "GET"
            } else {
                entry.request.method.as_str()
            };
        let wanted = chorus::fidelity::path_and_query(next.as_str());
        let Some(found) = entries[at + 1..].iter().position(|later| {
            later.request.method == method
                && chorus::fidelity::path_and_query(&later.request.url) == wanted
        }) else {
            return at;
        };
        at += 1 + found;
    }
    at
}

fn header<'a>(entry: &'a Entry, name: &str) -> Option<&'a str> {
    entry
        .response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// A hand-written scenario (`text`) with `recorded: N` added to each request that has none:
/// the next entry of the capture, after the one the previous request took, with the same
/// method and a path and query that the URL matches (each `{{ ... }}` standing for one path
/// segment, or one query value). A 401 that the same request later got past (an authentication
/// challenge answered) is passed over. Requests found nowhere are left without.
pub fn with_recorded(text: &str, capture: &Path) -> Result<String, String> {
    let mut document = yaml::parse(text)?;
    let (har, _) = har::read::read_file(capture).map_err(|err| err.to_string())?;
    let entries = &har.log.entries;
    let mut next = 0;
    for step in steps_of(&document) {
        let node = at_mut(&mut document, &step.path).unwrap();
        let Some((method, url)) = step.request.split_once(' ') else {
            continue;
        };
        if node.get("recorded").is_some() {
            continue;
        }
        let pattern = url_pattern(url);
        let found = (next..entries.len()).find(|&index| {
            let entry = &entries[index];
            let challenged = entry.response.status == 401
                && entries[index + 1..].iter().any(|again| {
                    again.request.method == entry.request.method
                        && again.request.url == entry.request.url
                        && again.response.status != 401
                });
            entry.request.method.eq_ignore_ascii_case(method)
                && !challenged
                && pattern.is_match(&chorus::fidelity::path_and_query(&entry.request.url))
        });
        if let (Some(index), Node::Map(entries)) = (found, node) {
            entries.push(("recorded".to_owned(), Node::plain((index + 1).to_string())));
            next = index + 1;
        }
    }
    Ok(yaml::emit(&document))
}

/// A regex for the path and query a URL template may send.
fn url_pattern(url: &str) -> regex::Regex {
    let path = match url.find("://") {
        Some(scheme) => url[scheme + 3..]
            .find('/')
            .map_or("/", |at| &url[scheme + 3 + at..]),
        None => url,
    };
    let mut pattern = String::from("^");
    let mut rest = path;
    let mut in_query = false;
    while let Some(open) = rest.find("{{") {
        let close = rest[open..]
            .find("}}")
            .map_or(rest.len(), |at| open + at + 2);
        let literal = &rest[..open];
        in_query |= literal.contains('?');
        pattern.push_str(&regex::escape(literal));
        // A path segment, or a query value (which may hold `/`).
        pattern.push_str(if in_query { "[^&#]+" } else { "[^/?]+" });
        rest = &rest[close..];
    }
    pattern.push_str(&regex::escape(rest));
    pattern.push('$');
    regex::Regex::new(&pattern).expect("an escaped pattern compiles")
}
