//! Correlation: every value a request sends that an earlier response handed over becomes an
//! `extract` at that response and a template at each use; values the client made up become
//! generators. A tie needs evidence in proportion to how likely the value is to match by
//! chance: a long token (a CSRF token, a session id) is tied wherever it was served; a small
//! number or a plain word only where its place makes the tie certain — a `Location` that
//! handed it over at the same place in the path, a JSON field named as an id, a link the
//! person clicked that appeared after the session changed something. Text is never tied.
//! Every extract is proven on the recorded response it reads (it must give the recorded
//! value) with the engine's own extraction code; a tie refused is said in a comment.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::model::{DraftExtract, DraftRequest, Exchange, ExtractSource};
use super::offers::{Offer, Place, location_pattern, offers, raw_offer};
use super::request::{Slot, SlotValue, percent_decode, set_slot, slots};
use super::seen::{FirstLinks, Offered, Seen, shown};
use crate::scenario::{Extract, ExtractKind, ResponseView, Template, Vars};
use crate::values::{Shape, shape};

/// How many earlier responses are searched as raw text for a token no field offered: values
/// are used soon after they are returned, and searching every response of a large capture
/// for every value would be quadratic.
const RAW_TEXT_WINDOW: usize = 64;
/// How many earlier pages are searched for a link the person clicked.
const LINK_WINDOW: usize = 8;

/// What correlation found besides the templates it wrote into the requests.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Correlation {
    /// Per-user generated variables: name, template, comment.
    pub(crate) generators: Vec<(String, String, String)>,
    /// How many requests use each extracted variable.
    pub(crate) uses: BTreeMap<String, usize>,
}

pub(crate) fn is_id_like(key: &str) -> bool {
    // Compared without a lowercase copy: this runs for every value of every request.
    let ends_with = |suffix: &str| {
        key.len() >= suffix.len()
            && key.as_bytes()[key.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
    };
    ends_with("id") || ends_with("ids") || key.eq_ignore_ascii_case("code")
}

/// Names of values that a server hands out per page or per session for the next request to
/// send back: taken from the newest page that served them.
fn is_token_name(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    [
        "csrf",
        "xsrf",
        "token",
        "nonce",
        "sectok",
        "authenticity",
        "verification",
        "viewstate",
        "changecheck",
    ]
    .iter()
    .any(|word| lower.contains(word))
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
    // `dev-k2j3h4` keeps its readable prefix (lower-case letters: `OGYDVahhaAefYogT_XVqZQ`,
    // a browser's OAuth state, is random through and through) and gets a random tail of the
    // same length.
    let (prefix, tail) = match value.split_once(['-', '_']) {
        Some((prefix, tail))
            if !prefix.is_empty() && prefix.chars().all(|c| c.is_ascii_lowercase()) =>
        {
            (&value[..prefix.len() + 1], tail)
        }
        _ => ("", value),
    };
    let has_alpha = tail.chars().any(|c| c.is_ascii_alphabetic());
    let alnum = tail
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    // A token's shape is the one `values::shape` gives (8 characters with a digit, or 16 of
    // both cases without one); digits alone are a number the server may parse, kept.
    (alnum && has_alpha && shape(tail) == Shape::Token)
        .then(|| format!("{prefix}{{{{ random_string({}) }}}}", tail.len()))
}

pub(crate) fn sanitize(name: &str) -> String {
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
struct Provenance {
    method: String,
    path: String,
    source: String,
}

/// Variable names: one per origin, `name_2`, `name_3`... when a name is taken (a counter per
/// name, so a capture with thousands of them stays linear).
#[derive(Default)]
struct Names {
    by_provenance: HashMap<Provenance, String>,
    taken: HashSet<String>,
    next_suffix: HashMap<String, usize>,
}

impl Names {
    fn name_for(&mut self, origin: Provenance, wanted: &str) -> String {
        if let Some(name) = self.by_provenance.get(&origin) {
            return name.clone();
        }
        let base = sanitize(wanted);
        let mut name = base.clone();
        while self.taken.contains(&name) {
            let n = self.next_suffix.entry(base.clone()).or_insert(2);
            name = format!("{base}_{n}");
            *n += 1;
        }
        self.taken.insert(name.clone());
        self.by_provenance.insert(origin, name.clone());
        name
    }
}

/// The plain name a JSONPath's last key sits under (`$.data.createPost.post.id`: `post`).
fn json_parent(source: &ExtractSource) -> Option<String> {
    let ExtractSource::JsonPath(path) = source else {
        return None;
    };
    let keys: Vec<&str> = path.split(['.', '[']).collect();
    let parent = keys.len().checked_sub(2).map(|i| keys[i])?;
    let plain = !parent.is_empty()
        && parent != "$"
        && parent
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    (plain && !is_generic(parent)).then(|| parent.to_owned())
}

fn is_generic(key: &str) -> bool {
    matches!(
        key.to_ascii_lowercase().as_str(),
        "id" | "value" | "data" | "authorization" | "key" | "code"
    )
}

/// A variable holding a value, and where that value came from (to judge a reuse the way a
/// fresh tie would be judged).
#[derive(Debug, Clone)]
struct Held {
    var: String,
    place: Place,
    key: Option<String>,
    /// The response it was extracted from (`None`: generated by the client).
    response: Option<usize>,
    /// For a value handed over as a path segment (a Location, a link), the path before it:
    /// a short value serves again only at the same place.
    before: Option<String>,
}

/// Why a tie of a value of `shape` in `slot` to an offer at `place` under `key` is not
/// certain enough, or `None` when it is. `path` is the request's recorded path, segment by segment; `known`
/// says whether a path (`/issues/7`) was already in an earlier request's URL.
fn refusal(
    slot: &SlotValue,
    path: &[String],
    place: &Place,
    key: Option<&str>,
    shape: Shape,
    known: &dyn Fn(&str) -> bool,
) -> Option<&'static str> {
    let same_key = slot.key.is_some() && slot.key.as_deref() == key;
    let slot_id_like =
        matches!(slot.slot, Slot::PathSegment(_)) || slot.key.as_deref().is_some_and(is_id_like);
    let offer_id_like = key.is_some_and(is_id_like);
    match shape {
        // A visible field's value is a choice the page offered (a select's option), not a
        // token handed over, unless its name says token.
        Shape::Token => match place {
            Place::FormField { hidden: false }
                if !slot.key.as_deref().is_some_and(is_token_name) =>
            {
                Some("a value a visible form field offered: a choice, not a token")
            }
            _ => None,
        },
        Shape::Number => match place {
            Place::Location { before } => {
                let Slot::PathSegment(index) = slot.slot else {
                    return Some("a small number a Location also holds, in another place");
                };
                let mine = if index == 0 {
                    String::new()
                } else {
                    format!("/{}", path[..index].join("/"))
                };
                if mine != *before {
                    Some("a small number a Location also holds, at another place in the path")
                } else if known(&format!("{mine}/{}", slot.value)) {
                    Some("a small number the client already had before this Location")
                } else {
                    None
                }
            }
            Place::Json { .. } if slot_id_like && offer_id_like => None,
            Place::LocationQuery | Place::Header | Place::Meta if same_key && offer_id_like => None,
            Place::FormField { hidden: true }
                if same_key && (offer_id_like || slot.value.len() >= 4) =>
            {
                None
            }
            Place::Link => None,
            Place::FormField { .. } => {
                Some("a small number a form also shows, a choice rather than a value handed over")
            }
            _ => Some("a small number a response also holds, with nothing tying the two"),
        },
        Shape::Word => match place {
            Place::Json { .. } if slot_id_like && offer_id_like => None,
            Place::Link => None,
            _ => Some("a plain word a response also holds, by coincidence or as a constant"),
        },
        Shape::Text => Some("text a person wrote, not a value handed over"),
    }
}

/// The engine's rule for an extract source.
fn extract_kind(source: &ExtractSource) -> Option<ExtractKind> {
    Some(match source {
        ExtractSource::JsonPath(path) => ExtractKind::JsonPath {
            path: serde_json_path::JsonPath::parse(path).ok()?,
            source: path.clone(),
        },
        ExtractSource::Header(name) => {
            ExtractKind::Header(http::HeaderName::from_bytes(name.as_bytes()).ok()?)
        }
        ExtractSource::Regex(pattern) => ExtractKind::Regex(regex::Regex::new(pattern).ok()?),
        ExtractSource::HeaderRegex { header, pattern } => ExtractKind::HeaderRegex {
            header: http::HeaderName::from_bytes(header.as_bytes()).ok()?,
            regex: regex::Regex::new(pattern).ok()?,
        },
        ExtractSource::FormField(name) => ExtractKind::FormField(name.clone()),
        ExtractSource::Meta(name) => ExtractKind::Meta(name.clone()),
        ExtractSource::Link { text, pattern } => ExtractKind::Link {
            text: Template::parse(text).ok()?,
            regex: Some(regex::Regex::new(pattern).ok()?),
        },
    })
}

/// The engine's rules for the extract sources tried so far, each compiled once (a regex, a
/// JSONPath). Cleared when it holds many: the same few sources are tried again and again.
#[derive(Default)]
struct Rules(HashMap<ExtractSource, Option<Extract>>);

impl Rules {
    const MOST: usize = 4096;

    fn get(&mut self, source: &ExtractSource) -> Option<&Extract> {
        if !self.0.contains_key(source) {
            if self.0.len() >= Self::MOST {
                self.0.clear();
            }
            let rule = extract_kind(source).map(|kind| Extract {
                name: "proof".to_owned(),
                kind,
                default: None,
            });
            self.0.insert(source.clone(), rule);
        }
        self.0.get(source)?.as_ref()
    }
}

/// What the extract gives on the recorded response: the proof that it reads the value it was
/// made for (a regex finds the first match, which may be another element's).
fn extracted(
    source: &ExtractSource,
    exchange: &Exchange,
    vars: &Vars,
    rules: &mut Rules,
) -> Option<String> {
    let rule = rules.get(source)?;
    let mut headers = http::HeaderMap::new();
    for (name, value) in &exchange.response_headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    let body = exchange.response_body.as_deref().unwrap_or_default();
    let view = ResponseView::new(exchange.status, &headers, body.as_bytes()).at(&exchange.url);
    let mut scratch = vars.clone();
    rule.apply(&view, &mut scratch).ok()?;
    match scratch.get("proof")? {
        serde_json::Value::String(text) => Some(text),
        other => Some(other.to_string()),
    }
}

/// The link the person clicked to send `request`: a link in one of the last pages whose href
/// is the request's URL, that appeared only after the session changed something (so it names
/// something the session made, not a constant), found by its text.
fn link_offer(
    index: usize,
    exchanges: &[Exchange],
    first_links: &mut FirstLinks,
    first_written: Option<usize>,
    account: &[(String, String)],
    j: usize,
) -> Option<(usize, Offer)> {
    let target = &exchanges[j].url;
    let wanted = shown(target);
    let href_is_target = |page_url: &url::Url, href: &str| {
        page_url
            .join(href)
            .ok()
            .is_some_and(|url| shown(&url) == wanted)
    };
    let first_seen = first_links.before(exchanges, j, &wanted)?;
    // The link must have appeared after a write of this session.
    if first_written.is_none_or(|w| w >= first_seen) {
        return None;
    }
    (first_seen..j).rev().take(LINK_WINDOW).find_map(|i| {
        let page = exchanges[i].page()?;
        let link = page
            .links
            .iter()
            .find(|l| href_is_target(&exchanges[i].url, &l.href))?;
        let text = templated_text(&link.text, account);
        // A text the same for every user cannot pick this user's object.
        if text == link.text {
            return None;
        }
        let path: Vec<&str> = target.path().trim_start_matches('/').split('/').collect();
        let before = format!("/{}", path[..index.min(path.len())].join("/"));
        let before = if index == 0 { String::new() } else { before };
        Some((
            i,
            Offer {
                value: percent_decode(path.get(index).copied().unwrap_or_default()),
                source: ExtractSource::Link {
                    text,
                    pattern: location_pattern(&before),
                },
                key: None,
                place: Place::Link,
            },
        ))
    })
}

/// A text with the account's own values as templates (a link named after the user).
fn templated_text(text: &str, account: &[(String, String)]) -> String {
    let mut out = text.to_owned();
    for (value, column) in account {
        if value.chars().count() >= 4 && column != "password" {
            out = out.replace(value.as_str(), &format!("{{{{ user.{column} }}}}"));
        }
    }
    out
}

fn describe(slot: &SlotValue) -> String {
    match (&slot.slot, &slot.key) {
        (Slot::PathSegment(index), _) => format!("path segment {}", index + 1),
        (Slot::Query(_), Some(key)) => format!("query `{key}`"),
        (Slot::Form(_) | Slot::Multipart(_), Some(key)) => format!("form field `{key}`"),
        (Slot::Json(_), Some(key)) => format!("JSON `{key}`"),
        (Slot::Header(_) | Slot::Bearer(_), Some(key)) => format!("header `{key}`"),
        (Slot::Cookie { name, .. }, _) => format!("cookie `{name}`"),
        _ => "a value".to_owned(),
    }
}

/// Rewrites `requests` (parallel to `exchanges`) with templates for correlated and generated
/// values. `fixed` values (credentials, already templated) are left alone; `account` holds
/// the recorded account's values and columns, for proofs and link texts; `login` is the
/// position of the login, after which a request that changes something makes new things.
pub(crate) fn correlate(
    requests: &mut [DraftRequest],
    exchanges: &[Exchange],
    fixed: &HashSet<String>,
    account: &[(String, String)],
    login: Option<usize>,
) -> Correlation {
    let mut result = Correlation::default();
    let mut proof_vars = Vars::new();
    let mut row = serde_json::Map::new();
    for (value, column) in account {
        row.entry(column.clone())
            .or_insert_with(|| serde_json::Value::String(value.clone()));
    }
    proof_vars.set("user", serde_json::Value::Object(row));
    // What the responses so far offered, for the values some request sends.
    let mut wanted: HashSet<String> = HashSet::new();
    for request in requests.iter() {
        for found in slots(request) {
            if !found.value.contains("{{") && !fixed.contains(&found.value) {
                wanted.insert(found.value);
            }
        }
    }
    let mut seen = Seen::new(wanted);
    let mut first_links = FirstLinks::default();
    let mut bound: HashMap<(usize, ExtractSource), String> = HashMap::new();
    let mut rules = Rules::default();
    let mut names = Names::default();
    // What each variable holds at this point of the recording, by value.
    let mut held: HashMap<String, Vec<Held>> = HashMap::new();
    let mut holding: HashMap<String, String> = HashMap::new();
    let mut first_written: Option<usize> = None;

    // Every path prefix (`/issues/7`) of a request URL, with the first request that had it.
    let mut paths_seen: HashMap<String, usize> = HashMap::new();
    for (index, exchange) in exchanges.iter().enumerate() {
        let mut prefix = String::new();
        for segment in exchange.url.path().split('/').filter(|s| !s.is_empty()) {
            prefix.push('/');
            prefix.push_str(&percent_decode(segment));
            paths_seen.entry(prefix.clone()).or_insert(index);
        }
    }
    // Whether a path was in a request URL up to response `i` (inclusive).
    let known_before = |i: usize| {
        let paths_seen = &paths_seen;
        move |path: &str| paths_seen.get(path).is_some_and(|&first| first <= i)
    };
    let mut noted: HashSet<(String, String)> = HashSet::new();

    for j in 0..requests.len() {
        let mut counted: HashSet<String> = HashSet::new();
        let mut notes: Vec<String> = Vec::new();
        let recorded_path: Vec<String> = exchanges[j]
            .url
            .path()
            .trim_start_matches('/')
            .split('/')
            .map(percent_decode)
            .collect();
        // The first segment of the path no earlier request had is what a link named.
        let first_new = recorded_path.iter().enumerate().position(|(k, _)| {
            !known_before(j.saturating_sub(1))(&format!("/{}", recorded_path[..=k].join("/")))
        });
        for found in slots(&requests[j]) {
            let value = found.value.clone();
            if value.contains("{{") || fixed.contains(&value) || value.is_empty() {
                continue;
            }
            let value_shape = shape(&value);
            let token = found.key.as_deref().is_some_and(is_token_name);
            // A variable that still holds this value serves again, when a fresh tie to where
            // it came from would be accepted here.
            let here = match found.slot {
                Slot::PathSegment(index) if index > 0 => {
                    Some(format!("/{}", recorded_path[..index].join("/")))
                }
                Slot::PathSegment(_) => Some(String::new()),
                _ => None,
            };
            let reuse = held.get(&value).and_then(|list| {
                list.iter().rev().find(|h| {
                    holding.get(&h.var) == Some(&value)
                        && (value_shape == Shape::Token
                            || h.before.is_none()
                            || h.before == here)
                        && (h.response.is_none()
                            || refusal(
                                &found,
                                &recorded_path,
                                &h.place,
                                h.key.as_deref(),
                                value_shape,
                                &known_before(h.response.unwrap_or(j)),
                            )
                            .is_none())
                        // A token is taken from the newest page that served it.
                        && !(token && h.response.is_some_and(|r| {
                            seen.get(&value).is_some_and(|offered| offered.newest > r)
                        }))
                })
            });
            if let Some(h) = reuse {
                let var = h.var.clone();
                set_slot(&mut requests[j], &found.slot, &format!("{{{{ {var} }}}}"));
                if counted.insert(var.clone()) {
                    *result.uses.entry(var).or_default() += 1;
                }
                continue;
            }
            // The offers a tie may be made to, best first (each group of offers judged at
            // once), then the link the person clicked, then the value in raw text.
            let offered = seen.get(&value);
            let (ranked, first_refusal) = match offered {
                Some(offered) => {
                    let (ranked, first_refusal) = offered.ranked(token, |place, key, i| {
                        refusal(
                            &found,
                            &recorded_path,
                            place,
                            key,
                            value_shape,
                            &known_before(i),
                        )
                    });
                    (Some(ranked), first_refusal)
                }
                None => (None, None),
            };
            // A response's offers are made again when tried (the last response's are kept:
            // the next candidate is often another of its offers).
            let mut last: Option<(usize, Vec<Offer>)> = None;
            let ranked = ranked.into_iter().flatten().filter_map(|member| {
                let list = match &mut last {
                    Some((response, list)) if *response == member.response => list,
                    _ => {
                        &mut last
                            .insert((member.response, offers(&exchanges[member.response])))
                            .1
                    }
                };
                Some((member.response, list.get(member.index)?.clone()))
            });
            let mut link = None;
            if let Slot::PathSegment(index) = found.slot {
                let names_something = value_shape == Shape::Number
                    || (value_shape == Shape::Word && value.chars().any(|c| c.is_ascii_digit()));
                if names_something && j > 0 && first_new == Some(index) {
                    link = link_offer(
                        index,
                        exchanges,
                        &mut first_links,
                        first_written,
                        account,
                        j,
                    );
                }
            }
            // A value a visible field offered is a choice: raw text would only find it again.
            let offered_by_a_field = offered.is_some_and(Offered::by_a_visible_field);
            let search_raw =
                value_shape == Shape::Token && !value.contains(['\n', '\r']) && !offered_by_a_field;
            // Searched only when nothing before it proved: a window of whole bodies.
            let mut finder = None;
            let raw = (0..j)
                .rev()
                .take(if search_raw { RAW_TEXT_WINDOW } else { 0 })
                .filter_map(|i| {
                    let finder =
                        finder.get_or_insert_with(|| memchr::memmem::Finder::new(value.as_str()));
                    raw_offer(&exchanges[i], finder, &value).map(|offer| (i, offer))
                });
            let chosen = ranked.chain(link).chain(raw).find(|(i, offer)| {
                extracted(&offer.source, &exchanges[*i], &proof_vars, &mut rules).as_deref()
                    == Some(value.as_str())
            });
            if let Some((i, offer)) = chosen {
                let var = match bound.get(&(i, offer.source.clone())) {
                    Some(var) => var.clone(),
                    None => {
                        let source_text = format!("{:?}", offer.source);
                        let wanted = match (&found.slot, &found.key) {
                            (Slot::PathSegment(_), Some(before))
                                if !before.contains("{{")
                                    && !is_generic(before)
                                    && !before.is_empty() =>
                            {
                                format!("{}_id", before.trim_end_matches('s'))
                            }
                            (
                                Slot::Json(_)
                                | Slot::Form(_)
                                | Slot::Multipart(_)
                                | Slot::Query(_)
                                | Slot::Cookie { .. },
                                Some(key),
                            ) if !is_generic(key) => key.clone(),
                            _ => match offer.key.as_deref() {
                                Some(k) if !is_generic(k) => k.to_owned(),
                                Some(k) => match json_parent(&offer.source) {
                                    Some(parent) => format!("{parent}_{k}"),
                                    None => format!("{}_{k}", last_word(&requests[i])),
                                },
                                None => format!("{}_id", last_word(&requests[j])),
                            },
                        };
                        let origin = Provenance {
                            method: requests[i].method.clone(),
                            path: requests[i].path.join("/"),
                            source: source_text,
                        };
                        let var = names.name_for(origin, &wanted);
                        bound.insert((i, offer.source.clone()), var.clone());
                        let (method, path) =
                            (requests[i].method.clone(), requests[i].path.join("/"));
                        let how = match offer.place {
                            Place::Location { .. } => "; handed over in its Location",
                            Place::Link => "; the link the recording clicked, found by its text",
                            _ => "",
                        };
                        requests[i].extracts.push(DraftExtract {
                            var: var.clone(),
                            source: offer.source.clone(),
                            comment: format!(
                                "from the response to {method} /{path} (entry {}){how}",
                                requests[i].entry + 1
                            ),
                        });
                        var
                    }
                };
                holding.insert(var.clone(), value.clone());
                let before = match (&offer.place, &offer.source) {
                    (Place::Location { before }, _) => Some(before.clone()),
                    (Place::Link, _) => here.clone(),
                    _ => None,
                };
                held.entry(value.clone()).or_default().push(Held {
                    var: var.clone(),
                    place: offer.place.clone(),
                    key: offer.key.clone(),
                    response: Some(i),
                    before,
                });
                set_slot(&mut requests[j], &found.slot, &format!("{{{{ {var} }}}}"));
                if counted.insert(var.clone()) {
                    *result.uses.entry(var).or_default() += 1;
                }
                continue;
            }
            let worth_saying = matches!(found.slot, Slot::PathSegment(_))
                && value_shape == Shape::Number
                || found.key.as_deref().is_some_and(is_id_like)
                || value_shape == Shape::Token;
            let first_time = noted.insert((describe(&found), value.clone()));
            if let (Some((reason, i)), true, true) = (first_refusal, worth_saying, first_time) {
                notes.push(format!(
                    "{} {value:?} kept as recorded: {reason} (entry {})",
                    describe(&found),
                    requests[i].entry + 1
                ));
            }
            // A value some response had is the server's, not made up: it stays as recorded.
            if seen.get(&value).is_some() {
                continue;
            }
            if let Some(template) = generator_for(&value, exchanges[j].wall_ms) {
                set_slot(&mut requests[j], &found.slot, &template);
                continue;
            }
            // A credential no response returned (an API key, a bearer token, a cookie a
            // script set from elsewhere) is not made up per user: it stays as recorded, for
            // the user to template (and `--redact` replaces it).
            let credential = matches!(found.slot, Slot::Bearer(_))
                || found.key.as_deref().is_some_and(super::redact::secret_key);
            if credential {
                continue;
            }
            if let Some(template) = random_looking(&value) {
                let wanted = found
                    .key
                    .clone()
                    .filter(|k| !is_generic(k))
                    .unwrap_or_else(|| "generated".to_owned());
                let origin = Provenance {
                    method: String::new(),
                    path: String::new(),
                    source: value.clone(),
                };
                let known = names.by_provenance.contains_key(&origin);
                let var = names.name_for(origin, &wanted);
                if !known {
                    result.generators.push((
                        var.clone(),
                        template,
                        format!(
                            "made up by the client (recorded {value:?}); a new one per virtual user"
                        ),
                    ));
                }
                holding.insert(var.clone(), value.clone());
                held.entry(value.clone()).or_default().push(Held {
                    var: var.clone(),
                    place: Place::Raw,
                    key: found.key.clone(),
                    response: None,
                    before: None,
                });
                set_slot(&mut requests[j], &found.slot, &format!("{{{{ {var} }}}}"));
            }
        }
        requests[j].comments.extend(notes);
        seen.add(j, offers(&exchanges[j]));
        let writes = !matches!(requests[j].method.as_str(), "GET" | "HEAD" | "OPTIONS");
        if writes && login.is_none_or(|login| j > login) && first_written.is_none() {
            first_written = Some(j);
        }
    }
    result
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
        let correlation = correlate(&mut requests, &list, &HashSet::new(), &[], None);
        (requests, correlation)
    }

    #[test]
    fn client_made_values_are_told_by_their_shape() {
        let random = |value| random_looking(value);
        assert_eq!(
            random("dev-k2j3h4k2l3").as_deref(),
            Some("dev-{{ random_string(10) }}")
        );
        // A browser's OAuth state or PKCE verifier may have no digit, or an `_` after letters.
        assert_eq!(
            random("OGYDVahhaAefYogT_XVqZQ").as_deref(),
            Some("{{ random_string(22) }}")
        );
        assert_eq!(
            random("PcvoBbTgrSveOsRsMKfKa").as_deref(),
            Some("{{ random_string(21) }}")
        );
        assert!(random("c0ffee-8c2f1e3d").is_some());
        // Words, short values and numbers the server may parse are kept as recorded.
        for kept in [
            "notes-app",
            "dark_mode",
            "abc1",
            "17962857336629891",
            "en-US",
        ] {
            assert_eq!(random(kept), None, "{kept}");
        }
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
        correlate(&mut requests, &list, &HashSet::new(), &[], None);
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
        assert_eq!(requests[0].extracts[0].var, "post_id");
        assert_eq!(requests[1].path, ["posts", "{{ post_id }}"]);
        assert_eq!(requests[2].path, ["posts", "{{ post_id }}"]);
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
                pattern: "^(?:[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*)?/orders/([^/?#]+)".to_owned()
            }
        );
        assert_eq!(
            requests[3].path[1],
            format!("{{{{ {} }}}}", requests[2].extracts[0].var)
        );
    }
}
