//! Correlation: every value a request sends that an earlier response returned becomes an
//! `extract` at that response and a template at each use; values the client made up become
//! generators. Trivial values (small numbers, booleans, short words) are only correlated when
//! both sides name them as ids, never by coincidence.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::model::{DraftExtract, DraftRequest, Exchange, ExtractSource};
use super::offers::{Offer, offers, raw_offer};
use super::request::{Slot, SlotValue, set_slot, slots};

/// How many earlier responses are searched as raw text for a value no field offered: values
/// are used soon after they are returned, and searching every response of a large capture
/// for every value would be quadratic.
const RAW_TEXT_WINDOW: usize = 64;

/// What correlation found besides the templates it wrote into the requests.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Correlation {
    /// Per-user generated variables: name, template, comment.
    pub(crate) generators: Vec<(String, String, String)>,
    /// How many requests use each extracted variable.
    pub(crate) uses: BTreeMap<String, usize>,
}

/// Values correlated only with evidence from both sides: booleans, numbers below 1000, and
/// short or purely alphabetic strings.
pub(crate) fn is_trivial(value: &str) -> bool {
    if matches!(value, "true" | "false" | "null" | "") {
        return true;
    }
    if let Ok(number) = value.parse::<f64>() {
        return number.abs() < 1000.0;
    }
    value.chars().count() < 4
        || (value.len() <= 12 && value.chars().all(|c| c.is_ascii_alphabetic() || c == ' '))
}

pub(crate) fn is_id_like(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    lower == "id"
        || lower.ends_with("id")
        || lower.ends_with("_id")
        || lower.ends_with("ids")
        || lower == "code"
}

/// What a made-up value looks like, to generate one of the same shape.
fn generator_for(value: &str, wall_ms: f64) -> Option<String> {
    if value.len() == 13 && value.chars().all(|c| c.is_ascii_digit()) {
        let number: f64 = value.parse().ok()?;
        if (number - wall_ms).abs() < 2.0 * 86_400_000.0 {
            return Some("{{ now_ms() }}".to_owned());
        }
    }
    if value.len() == 10 && value.chars().all(|c| c.is_ascii_digit()) {
        let number: f64 = value.parse().ok()?;
        if (number * 1000.0 - wall_ms).abs() < 2.0 * 86_400_000.0 {
            return Some("{{ now_s() }}".to_owned());
        }
    }
    None
}

fn random_looking(value: &str) -> Option<String> {
    let is_uuid = value.len() == 36
        && value.chars().enumerate().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    if is_uuid {
        return Some("{{ uuid() }}".to_owned());
    }
    // `dev-k2j3h4` keeps its readable prefix and gets a random tail of the same length.
    let (prefix, tail) = match value.split_once(['-', '_']) {
        Some((prefix, tail))
            if prefix.chars().all(|c| c.is_ascii_alphabetic()) && !prefix.is_empty() =>
        {
            (&value[..prefix.len() + 1], tail)
        }
        _ => ("", value),
    };
    let has_digit = tail.chars().any(|c| c.is_ascii_digit());
    let has_alpha = tail.chars().any(|c| c.is_ascii_alphabetic());
    let alnum = tail
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    (tail.len() >= 8 && has_digit && has_alpha && alnum)
        .then(|| format!("{prefix}{{{{ random_string({}) }}}}", tail.len()))
}

fn sanitize(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'v');
    }
    out
}

fn last_word(request: &DraftRequest) -> String {
    request
        .path
        .iter()
        .rev()
        .find(|segment| {
            !segment.is_empty()
                && !segment.chars().all(|c| c.is_ascii_digit())
                && !segment.contains("{{")
        })
        .cloned()
        .unwrap_or_else(|| "value".to_owned())
}

/// Where a variable's value comes from: the same pattern at another response reuses its name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Origin {
    method: String,
    path: String,
    source: String,
}

struct Names {
    by_origin: HashMap<Origin, String>,
    taken: HashSet<String>,
}

impl Names {
    fn name_for(&mut self, origin: Origin, wanted: &str) -> String {
        if let Some(name) = self.by_origin.get(&origin) {
            return name.clone();
        }
        let base = sanitize(wanted);
        let mut name = base.clone();
        let mut n = 2;
        while self.taken.contains(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        self.taken.insert(name.clone());
        self.by_origin.insert(origin, name.clone());
        name
    }
}

/// Rewrites `requests` (parallel to `exchanges`) with templates for correlated and generated
/// values. `fixed` values (credentials, already templated) are left alone.
pub(crate) fn correlate(
    requests: &mut [DraftRequest],
    exchanges: &[Exchange],
    fixed: &HashSet<String>,
) -> Correlation {
    let mut result = Correlation::default();
    // value -> offers seen so far, newest last: (response index, offer)
    let mut seen: HashMap<String, Vec<(usize, Offer)>> = HashMap::new();
    let mut bound: HashMap<(usize, String), String> = HashMap::new();
    let mut names = Names {
        by_origin: HashMap::new(),
        taken: HashSet::new(),
    };
    let mut generated: HashMap<String, String> = HashMap::new();
    // What each extracted variable holds at this point of the recording.
    let mut holding: BTreeMap<String, String> = BTreeMap::new();
    // Variables extracted from a field named as an id: evidence enough for a short word.
    let mut id_vars: HashSet<String> = HashSet::new();

    for j in 0..requests.len() {
        let mut counted: HashSet<String> = HashSet::new();
        for SlotValue {
            slot,
            value,
            key,
            number: _,
        } in slots(&requests[j])
        {
            if value.contains("{{") || fixed.contains(&value) || value.is_empty() {
                continue;
            }
            let numeric_segment =
                matches!(slot, Slot::PathSegment(_)) && value.chars().all(|c| c.is_ascii_digit());
            // A short word in a path (`/posts/abcd`) may be an id too, but only an offer
            // named as an id (`"id": "abcd"`) is evidence enough: `pick_offer` asks for one.
            let word_segment = matches!(slot, Slot::PathSegment(_)) && !numeric_segment;
            let slot_id_like = match (&slot, &key) {
                (Slot::PathSegment(_), _) => true,
                (_, Some(key)) => is_id_like(key),
                _ => false,
            };
            let trivial = is_trivial(&value);
            if trivial && !slot_id_like {
                continue;
            }
            // A variable that already holds this value (nothing re-set it since) serves again:
            // a constant the server returned twice is extracted once.
            if let Some(var) = holding
                .iter()
                .find(|(var, held)| {
                    **held == value && (!(trivial && word_segment) || id_vars.contains(*var))
                })
                .map(|(var, _)| var.clone())
            {
                set_slot(&mut requests[j], &slot, &format!("{{{{ {var} }}}}"));
                if counted.insert(var.clone()) {
                    *result.uses.entry(var).or_default() += 1;
                }
                continue;
            }
            let candidates = seen.get(&value).map(Vec::as_slice).unwrap_or(&[]);
            let chosen = pick_offer(candidates, key.as_deref(), trivial).or_else(|| {
                // Not a JSON leaf, header or form field: look in the raw text of earlier
                // responses, newest first, for values long enough not to match by chance.
                (!trivial && value.len() >= 8)
                    .then(|| {
                        (0..j)
                            .rev()
                            .take(RAW_TEXT_WINDOW)
                            .find_map(|i| raw_offer(&exchanges[i], &value).map(|offer| (i, offer)))
                    })
                    .flatten()
            });
            if let Some((i, offer)) = chosen {
                let source_text = format!("{:?}", offer.source);
                let var = match bound.get(&(i, source_text.clone())) {
                    Some(var) => var.clone(),
                    None => {
                        let wanted = match (&slot, &key) {
                            (
                                Slot::Json(_)
                                | Slot::Form(_)
                                | Slot::Query(_)
                                | Slot::Cookie { .. },
                                Some(key),
                            ) if !is_generic(key) => key.clone(),
                            _ => match offer.key.as_deref() {
                                Some(k) if !is_generic(k) => k.to_owned(),
                                Some(k) => format!("{}_{k}", last_word(&requests[i])),
                                None => last_word(&requests[i]),
                            },
                        };
                        let origin = Origin {
                            method: requests[i].method.clone(),
                            path: requests[i].path.join("/"),
                            source: source_text.clone(),
                        };
                        let var = names.name_for(origin, &wanted);
                        bound.insert((i, source_text), var.clone());
                        holding.insert(var.clone(), value.clone());
                        if offer.key.as_deref().is_some_and(is_id_like) {
                            id_vars.insert(var.clone());
                        }
                        let (method, path) =
                            (requests[i].method.clone(), requests[i].path.join("/"));
                        requests[i].extracts.push(DraftExtract {
                            var: var.clone(),
                            source: offer.source.clone(),
                            comment: format!(
                                "from the response to {method} /{path} (entry {})",
                                requests[i].entry + 1
                            ),
                        });
                        var
                    }
                };
                set_slot(&mut requests[j], &slot, &format!("{{{{ {var} }}}}"));
                if counted.insert(var.clone()) {
                    *result.uses.entry(var).or_default() += 1;
                }
                continue;
            }
            if let Some(template) = generator_for(&value, exchanges[j].wall_ms) {
                set_slot(&mut requests[j], &slot, &template);
                continue;
            }
            // A credential no response returned (an API key, a bearer token, a cookie a
            // script set from elsewhere) is not made up per user: it stays as recorded, for
            // the user to template (and `--redact` replaces it).
            let credential = matches!(slot, Slot::Bearer(_))
                || key.as_deref().is_some_and(super::redact::secret_key);
            if credential {
                continue;
            }
            if let Some(template) = random_looking(&value) {
                let var = match generated.get(&value) {
                    Some(var) => var.clone(),
                    None => {
                        let wanted = key
                            .clone()
                            .filter(|k| !is_generic(k))
                            .unwrap_or_else(|| "generated".to_owned());
                        let origin = Origin {
                            method: String::new(),
                            path: String::new(),
                            source: value.clone(),
                        };
                        let var = names.name_for(origin, &wanted);
                        result.generators.push((
                            var.clone(),
                            template,
                            format!("made up by the client (recorded {value:?}); a new one per virtual user"),
                        ));
                        generated.insert(value.clone(), var.clone());
                        var
                    }
                };
                set_slot(&mut requests[j], &slot, &format!("{{{{ {var} }}}}"));
            }
        }
        for offer in offers(&exchanges[j]) {
            seen.entry(offer.value.clone())
                .or_default()
                .push((j, offer));
        }
    }
    result
}

fn is_generic(key: &str) -> bool {
    matches!(
        key.to_ascii_lowercase().as_str(),
        "id" | "value" | "data" | "authorization" | "key" | "code"
    )
}

/// The newest offer of the value; for a trivial value only one whose key names an id, and
/// among offers of one response, the one whose key matches the slot's key.
fn pick_offer(
    candidates: &[(usize, Offer)],
    slot_key: Option<&str>,
    trivial: bool,
) -> Option<(usize, Offer)> {
    let newest = candidates
        .iter()
        .rfind(|(_, offer)| !trivial || offer.key.as_deref().is_some_and(is_id_like))?;
    let response = newest.0;
    let same_response = candidates.iter().filter(|(i, offer)| {
        *i == response && (!trivial || offer.key.as_deref().is_some_and(is_id_like))
    });
    // A body field reads better and survives more than a regex over a Location header.
    let from_body =
        |(_, offer): &&(usize, Offer)| !matches!(offer.source, ExtractSource::HeaderRegex { .. });
    let same_key =
        |(_, offer): &&(usize, Offer)| offer.key.as_deref().is_some_and(|k| Some(k) == slot_key);
    let best = same_response
        .clone()
        .find(|candidate| from_body(candidate) && same_key(candidate))
        .or_else(|| same_response.clone().find(from_body))
        .or_else(|| same_response.clone().find(same_key))
        .or_else(|| same_response.clone().next())
        .unwrap_or(newest);
    Some(best.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::model::DraftBody;
    use crate::convert::request::draft_request;
    use crate::convert::testing::{exchange, sequence};
    use serde_json::json;

    fn run(list: Vec<Exchange>) -> (Vec<DraftRequest>, Correlation) {
        let list = sequence(list, 1000.0);
        let mut requests: Vec<DraftRequest> = list.iter().map(draft_request).collect();
        let correlation = correlate(&mut requests, &list, &HashSet::new());
        (requests, correlation)
    }

    #[test]
    fn ids_from_responses_become_extracts_and_templates() {
        let (requests, correlation) = run(vec![
            exchange(
                "POST",
                "http://app/login",
                200,
                r#"{"username":"a","password":"b"}"#,
                r#"{"sessionId":"s9f8e7d6c5"}"#,
            ),
            exchange(
                "GET",
                "http://app/courses",
                200,
                "",
                r#"[{"id":7,"title":"Math"}]"#,
            ),
            exchange(
                "POST",
                "http://app/session/start",
                200,
                r#"{"userSessionId":"s9f8e7d6c5","courseId":7,"deviceId":"dev-k2j3h4k2l3","gameId":"AA-1"}"#,
                r#"{"gameSessionId":"g123abc456","eventsPeriodSecs":2}"#,
            ),
            exchange(
                "POST",
                "http://app/events",
                200,
                r#"[{"gameSessionId":"g123abc456","n":1}]"#,
                "{}",
            ),
        ]);
        assert_eq!(requests[0].extracts[0].var, "userSessionId");
        assert_eq!(
            requests[0].extracts[0].source,
            ExtractSource::JsonPath("$.sessionId".to_owned())
        );
        assert_eq!(requests[1].extracts[0].var, "courseId");
        assert_eq!(
            requests[1].extracts[0].source,
            ExtractSource::JsonPath("$[0].id".to_owned())
        );
        assert_eq!(
            requests[2].body,
            DraftBody::Json(json!({
                "userSessionId": "{{ userSessionId }}", "courseId": "{{ courseId }}",
                "deviceId": "{{ deviceId }}", "gameId": "AA-1"
            }))
        );
        assert_eq!(
            requests[3].body,
            DraftBody::Json(json!([{"gameSessionId": "{{ gameSessionId }}", "n": 1}]))
        );
        assert_eq!(correlation.generators[0].0, "deviceId");
        assert_eq!(correlation.generators[0].1, "dev-{{ random_string(10) }}");
        assert_eq!(correlation.uses.get("gameSessionId"), Some(&1));
    }

    #[test]
    fn trivial_values_are_not_correlated_by_coincidence() {
        let (requests, _) = run(vec![
            exchange(
                "GET",
                "http://app/a",
                200,
                "",
                r#"{"count":1,"flag":"yes","level":7}"#,
            ),
            exchange(
                "POST",
                "http://app/b",
                200,
                r#"{"page":1,"answer":"yes","level":7}"#,
                "{}",
            ),
        ]);
        assert!(requests[0].extracts.is_empty());
        assert_eq!(
            requests[1].body,
            DraftBody::Json(json!({"page": 1, "answer": "yes", "level": 7}))
        );
    }

    #[test]
    fn timestamps_and_cache_busters_become_the_current_time() {
        let (requests, _) = run(vec![exchange(
            "GET",
            "http://app/x?cb=1700000000000",
            200,
            "",
            "{}",
        )]);
        assert_eq!(requests[0].query[0].1, "{{ now_ms() }}");
    }

    #[test]
    fn repeated_origins_reuse_the_variable_name() {
        let start = |g: &str| {
            exchange(
                "POST",
                "http://app/start",
                200,
                "{}",
                &format!(r#"{{"gameSessionId":"{g}"}}"#),
            )
        };
        let event = |g: &str| {
            exchange(
                "POST",
                "http://app/events",
                200,
                &format!(r#"{{"gameSessionId":"{g}"}}"#),
                "{}",
            )
        };
        let (requests, _) = run(vec![
            start("gA1b2c3d4e"),
            event("gA1b2c3d4e"),
            start("gZ9y8x7w6v"),
            event("gZ9y8x7w6v"),
        ]);
        assert_eq!(requests[0].extracts[0].var, "gameSessionId");
        assert_eq!(requests[2].extracts[0].var, "gameSessionId");
        assert_eq!(
            requests[3].body,
            DraftBody::Json(json!({"gameSessionId": "{{ gameSessionId }}"}))
        );
    }

    #[test]
    fn values_in_raw_text_are_found_by_their_context() {
        let mut page = exchange("GET", "http://app/page", 200, "", "");
        page.response_mime = "text/html".to_owned();
        page.response_body = Some(r#"<a href="/item?token=Zx81Kq2Pw9">open</a>"#.to_owned());
        let (requests, _) = run(vec![
            page,
            exchange("GET", "http://app/item?token=Zx81Kq2Pw9", 200, "", "{}"),
        ]);
        assert_eq!(
            requests[0].extracts[0].source,
            ExtractSource::Regex(r#"tem\?token=([^"]+)"#.to_owned())
        );
        assert_eq!(requests[1].query[0].1, "{{ token }}");
    }

    #[test]
    fn a_cookie_a_script_set_from_a_response_is_correlated() {
        let page = exchange("GET", "http://app/api/data", 200, "", "{}");
        let login = exchange(
            "POST",
            "http://app/api/session",
            200,
            "{}",
            r#"{"xsrf":"Q9w8E7r6T5y4"}"#,
        );
        let list = sequence(vec![login, page], 1000.0);
        let mut requests: Vec<DraftRequest> = list.iter().map(draft_request).collect();
        // `convert` writes the cookies no server set as a Cookie header before correlating.
        requests[1].headers.push((
            "Cookie".to_owned(),
            "theme=dark; xsrf=Q9w8E7r6T5y4".to_owned(),
        ));
        correlate(&mut requests, &list, &HashSet::new());
        assert_eq!(requests[0].extracts[0].var, "xsrf");
        assert_eq!(requests[1].headers[0].1, "theme=dark; xsrf={{ xsrf }}");
    }

    #[test]
    fn a_short_word_in_a_path_is_an_id_only_when_a_response_named_it_so() {
        let (requests, _) = run(vec![
            exchange(
                "POST",
                "http://app/posts",
                201,
                r#"{"title":"hello"}"#,
                r#"{"title":"hello","id":"beef"}"#,
            ),
            exchange("GET", "http://app/posts/beef", 200, "", r#"{"id":"beef"}"#),
            exchange("DELETE", "http://app/posts/beef", 200, "", "{}"),
            exchange("GET", "http://app/hello", 200, "", "{}"),
        ]);
        assert_eq!(requests[0].extracts.len(), 1, "{:?}", requests[0].extracts);
        assert_eq!(requests[0].extracts[0].var, "posts_id");
        assert_eq!(requests[1].path, ["posts", "{{ posts_id }}"]);
        assert_eq!(requests[2].path, ["posts", "{{ posts_id }}"]);
        // "hello" came back as a title, not as an id: a coincidence, left alone.
        assert_eq!(requests[3].path, ["hello"]);
    }

    #[test]
    fn a_body_field_is_preferred_to_a_regex_over_the_location_header() {
        let mut created = exchange(
            "POST",
            "http://app/items",
            201,
            r#"{"name":"x"}"#,
            r#"{"itemId":"i-7a6b5c4d3e"}"#,
        );
        created
            .response_headers
            .push(("Location".to_owned(), "/items/i-7a6b5c4d3e".to_owned()));
        let mut redirected = exchange("POST", "http://app/orders", 302, r#"{"n":1}"#, "");
        redirected.response_headers.push((
            "Location".to_owned(),
            "/orders/o-1a2b3c4d5e?tab=new".to_owned(),
        ));
        let (requests, _) = run(vec![
            created,
            exchange("GET", "http://app/items/i-7a6b5c4d3e", 200, "", "{}"),
            redirected,
            exchange(
                "GET",
                "http://app/orders/o-1a2b3c4d5e?tab=new",
                200,
                "",
                "{}",
            ),
        ]);
        assert_eq!(
            requests[0].extracts[0].source,
            ExtractSource::JsonPath("$.itemId".to_owned())
        );
        // Only the Location header has the order's id: a regex over it is needed there.
        assert_eq!(
            requests[2].extracts[0].source,
            ExtractSource::HeaderRegex {
                header: "Location".to_owned(),
                pattern: "/orders/([^/?#]+)".to_owned()
            }
        );
        assert_eq!(
            requests[3].path[1],
            format!("{{{{ {} }}}}", requests[2].extracts[0].var)
        );
    }
}
