//! The replay judged exchange by exchange ([`review`]): a failure, or a difference from the
//! entry it replays; and the fields a page served that a replayed POST did not send back.

use super::*;

/// How one exchange of the replay went.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// It did what the recording did (or, with nothing recorded to compare, did not fail).
    Pass,
    /// It did something else than the recorded exchange; `failure` when it also failed.
    Diff {
        differences: Vec<Difference>,
        failure: Option<String>,
    },
    /// It failed (a status, a check, an extract, the transport) as the recording did not say.
    Fail(String),
}

/// Judges each observation: a failure is a `Fail`, an exchange that replays a capture entry
/// is compared with it. `accounts(user)` gives the values to set aside for that user.
pub fn review(
    observations: &[Observation],
    capture: Option<&[har::Entry]>,
    accounts: impl Fn(u64) -> Accounts,
) -> Vec<Verdict> {
    let echoed = capture.map(echoed_fields).unwrap_or_default();
    // What each user's pages served so far, by field name.
    let mut served: std::collections::HashMap<u64, Vec<(String, String)>> = Default::default();
    observations
        .iter()
        .map(|observation| {
            let entry_index = match (capture, observation.recorded) {
                (Some(_), Some(number)) if !observation.hop => (number as usize).checked_sub(1),
                _ => None,
            };
            let entry = entry_index.and_then(|i| capture.and_then(|entries| entries.get(i)));
            let mut differences = entry
                .map(|entry| {
                    compare(
                        &Outcome::of_entry(entry),
                        &observation.outcome,
                        &accounts(observation.user),
                    )
                })
                .unwrap_or_default();
            let pages = served.entry(observation.user).or_default();
            if let Some(names) = entry_index.and_then(|i| echoed.get(i)) {
                differences.extend(unechoed(names, &observation.sent, pages));
            }
            for (name, value) in &observation.outcome.served {
                pages.retain(|(known, _)| known != name);
                pages.push((name.clone(), value.clone()));
            }
            match (differences.is_empty(), &observation.failure) {
                (true, None) => Verdict::Pass,
                (true, Some(failure)) => Verdict::Fail(failure.clone()),
                (false, failure) => Verdict::Diff {
                    differences,
                    failure: failure.clone(),
                },
            }
        })
        .collect()
}

/// For each entry of a capture, the fields its request sent back as a page had served them
/// (a hidden field or `<meta>` of an earlier answer, sent with the same value): what a
/// browser echoes, and so what a replay must take from its own pages.
fn echoed_fields(entries: &[har::Entry]) -> Vec<Vec<String>> {
    let mut served: std::collections::HashMap<String, String> = Default::default();
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let content_type = entry
            .request
            .post_data
            .as_ref()
            .map(|post| post.mime_type.as_str());
        let body = entry
            .request
            .post_data
            .as_ref()
            .map(|post| post.text.as_bytes())
            .unwrap_or_default();
        // A form's body: what a link's query sends comes from the link, not a served field.
        let sent = crate::forms::fields(content_type, body);
        out.push(
            sent.into_iter()
                .filter(|(name, value)| !value.is_empty() && served.get(name) == Some(value))
                .map(|(name, _)| name)
                .collect(),
        );
        for (name, value) in Outcome::of_entry(entry).served {
            served.insert(name, value);
        }
    }
    out
}

/// The first characters of a value, for a message.
fn snippet(text: &str, max: usize) -> String {
    let mut out: String = text.chars().take(max).collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

/// The fields of `names` the replay sent with another value than its own pages served.
fn unechoed(
    names: &[String],
    sent: &[(String, String)],
    pages: &[(String, String)],
) -> Vec<Difference> {
    names
        .iter()
        .filter_map(|name| {
            let served = pages.iter().find(|(known, _)| known == name)?;
            let value = sent.iter().find(|(key, _)| key == name).map(|(_, v)| v)?;
            (*value != served.1).then(|| Difference {
                what: "sent field",
                recorded: format!("{name} as its page served it"),
                replayed: format!(
                    "{name}={}, while its page served {}",
                    snippet(value, 40),
                    snippet(&served.1, 40)
                ),
            })
        })
        .collect()
}

#[cfg(test)]
mod echo_tests {
    use super::*;

    fn capture() -> Vec<har::Entry> {
        let entry = |method: &str, url: &str, post: Option<&str>, body: &str| {
            serde_json::json!({
                "startedDateTime": "2026-12-01T10:00:00Z", "time": 1,
                "request": {"method": method, "url": url, "httpVersion": "HTTP/1.1", "headers": [],
                    "queryString": [], "cookies": [], "headersSize": -1, "bodySize": -1,
                    "postData": post.map(|text| serde_json::json!({"mimeType": "application/x-www-form-urlencoded", "text": text}))},
                "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1", "headers": [],
                    "cookies": [], "content": {"size": body.len(), "mimeType": "text/html", "text": body},
                    "redirectURL": "", "headersSize": -1, "bodySize": -1},
                "cache": {}, "timings": {"send": 0, "wait": 1, "receive": 0}
            })
        };
        let har = serde_json::json!({"log": {"version": "1.2", "creator": {"name": "t", "version": "1"}, "entries": [
            entry("GET", "http://w/edit", None, r#"<form><input type=hidden name=sectok value=REC1><input name=text></form>"#),
            entry("POST", "http://w/save", Some("sectok=REC1&text=hello&lang=en"), "<title>Saved</title>"),
        ]}});
        crate::har::read::read_str(&har.to_string(), "c.har")
            .unwrap()
            .0
            .log
            .entries
    }

    fn observation(recorded: u32, sent: &[(&str, &str)], served: &[(&str, &str)]) -> Observation {
        Observation {
            user: 0,
            iteration: Some(0),
            place: "flows[0].steps[0]".to_owned(),
            recorded: Some(recorded),
            hop: false,
            method: "GET".to_owned(),
            name: "/".to_owned(),
            url: "http://w/".to_owned(),
            sent: sent
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            outcome: Outcome {
                status: 200,
                media_type: Some("text/html".to_owned()),
                served: served
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                ..Outcome::default()
            },
            failure: None,
        }
    }

    #[test]
    fn a_field_the_page_served_must_be_sent_back_as_served() {
        let entries = capture();
        assert_eq!(
            echoed_fields(&entries),
            vec![vec![], vec!["sectok".to_owned()]]
        );
        let review_of = |sent: &str| {
            let mut page = observation(1, &[], &[("sectok", "MINE")]);
            page.outcome = Outcome::of_entry(&entries[0]);
            page.outcome.served = vec![("sectok".to_owned(), "MINE".to_owned())];
            let mut save =
                observation(2, &[("sectok", sent), ("text", "bye"), ("lang", "en")], &[]);
            save.outcome = Outcome::of_entry(&entries[1]);
            review(&[page, save], Some(&entries), |_| Accounts::default())
        };
        assert_eq!(review_of("MINE")[1], Verdict::Pass);
        let Verdict::Diff { differences, .. } = &review_of("REC1")[1] else {
            panic!("a recorded token sent back is a difference")
        };
        assert_eq!(differences[0].what, "sent field");
        assert_eq!(
            differences[0].replayed,
            "sectok=REC1, while its page served MINE"
        );
    }
}
