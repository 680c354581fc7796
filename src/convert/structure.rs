//! Structure: a session's shape. The login (through an OAuth token exchange that follows it)
//! and the reads right after it go to `on_start`; the logout — a request that says so, or
//! whose answer ends the session cookie — and everything after it go to `on_stop`, never into
//! a repeated flow; what lies between is one flow, or one per `--split-on` match, identical
//! flows merged with a weight. A page that served a form's token to the flow moves into the
//! flow, so each iteration sends a token from its own page.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use regex::Regex;

use super::model::{DraftBody, DraftExtract, DraftRequest, Exchange, ExtractSource};
use super::slots::{Slot, SlotValue, set_slot, slots};

/// Paths, queries and form values that say "log out".
static LOGOUT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(^|[^a-z])(log[-_ ]?out|sign[-_ ]?out|log[-_ ]?off|end[-_]?session)([^a-z]|$)")
        .expect("a valid pattern")
});

/// Cookie names that hold a session.
static SESSION_COOKIE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)sess|auth|sid|login|token|remember").expect("a valid pattern")
});

/// Positions (into the request list) of `on_start`, of each flow and of `on_stop`, in
/// recorded order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Layout {
    pub(crate) on_start: Vec<usize>,
    /// (name, positions, how many recorded flows had this shape)
    pub(crate) flows: Vec<(String, Vec<usize>, u32)>,
    pub(crate) on_stop: Vec<usize>,
    /// The request that ends the session, when there is one.
    pub(crate) logout: Option<usize>,
    /// Where the login ends ([`login_end`]), when there is a login.
    pub(crate) login_end: Option<usize>,
}

fn path_of(request: &DraftRequest) -> String {
    format!("/{}", request.path.join("/"))
}

/// Where the login ends: the login itself, or an OAuth authorization-code exchange that
/// follows it (the session is not usable before the token).
pub(crate) fn login_end(requests: &[DraftRequest], login: usize) -> usize {
    requests
        .iter()
        .enumerate()
        .skip(login + 1)
        .filter(|(_, request)| {
            slots(request)
                .iter()
                .any(|s| s.key.as_deref() == Some("grant_type") && s.value == "authorization_code")
        })
        .map(|(index, _)| index)
        .next_back()
        .unwrap_or(login)
}

/// Whether the request ends the session: it says "log out", or its answer expires a session
/// cookie.
fn is_logout(request: &DraftRequest, exchange: &Exchange) -> bool {
    // OpenID Connect's RP-initiated logout, whatever its endpoint is called.
    let oidc_logout = request
        .query
        .iter()
        .any(|(k, _)| k == "id_token_hint" || k == "post_logout_redirect_uri");
    let says = oidc_logout
        || LOGOUT.is_match(&path_of(request))
        || request.query.iter().any(|(_, v)| LOGOUT.is_match(v))
        || matches!(&request.body, DraftBody::Form(pairs) if pairs.iter().any(|(k, v)| LOGOUT.is_match(k) || LOGOUT.is_match(v)));
    says || exchange
        .response_headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
        .any(|(_, value)| expires_session(value))
}

/// A `Set-Cookie` that removes a session cookie (empty, or expired at once).
fn expires_session(set_cookie: &str) -> bool {
    let mut parts = set_cookie.split(';');
    let Some((name, value)) = parts.next().and_then(|pair| pair.split_once('=')) else {
        return false;
    };
    if !SESSION_COOKIE.is_match(name.trim()) {
        return false;
    }
    let attributes: Vec<String> = parts.map(|p| p.trim().to_ascii_lowercase()).collect();
    let max_age_zero = attributes.iter().any(|a| {
        a.strip_prefix("max-age=")
            .and_then(|n| n.trim().parse::<i64>().ok())
            .is_some_and(|n| n <= 0)
    });
    let expired = attributes.iter().any(|a| {
        a.strip_prefix("expires=")
            .is_some_and(|date| httpdate_year(date).is_some_and(|year| year < 2000))
    });
    let empty = value.trim().trim_matches('"').is_empty();
    max_age_zero || expired || (empty && !attributes.is_empty())
}

/// The year of an HTTP date (`Thu, 01 Jan 1970 00:00:00 GMT`, or with dashes).
fn httpdate_year(date: &str) -> Option<i32> {
    date.split([' ', '-'])
        .filter_map(|part| part.parse::<i32>().ok())
        .find(|n| *n > 31)
}

/// Whether the request opens an Engine.IO connection (Socket.IO's transport): its first
/// long-polling request, `?EIO=4&transport=polling` with no `sid` yet.
fn is_engine_io_handshake(request: &DraftRequest) -> bool {
    let has = |name: &str| request.query.iter().any(|(key, _)| key == name);
    has("EIO") && has("transport") && !has("sid")
}

/// Lays out `requests`: `login` is the position of the login request, if one was found.
pub(crate) fn layout(
    requests: &[DraftRequest],
    exchanges: &[Exchange],
    login: Option<usize>,
    split_on: Option<&Regex>,
) -> Layout {
    let starts_flow =
        |index: usize| split_on.is_some_and(|regex| regex.is_match(&path_of(&requests[index])));
    let login_end = login.map(|login| login_end(requests, login));
    let logout = login_end.and_then(|end| {
        (end + 1..requests.len()).find(|&i| is_logout(&requests[i], &exchanges[i]))
    });
    let stop = logout.unwrap_or(requests.len());
    let mut on_start = Vec::new();
    let mut next = 0;
    if let Some(end) = login_end {
        on_start.extend(0..=end);
        next = end + 1;
        // The reads right after the login only depend on it: once per user. An Engine.IO
        // handshake is no read: it opens the connection the flow's socket steps use and end.
        while next < stop
            && requests[next].method == "GET"
            && !starts_flow(next)
            && !is_engine_io_handshake(&requests[next])
        {
            on_start.push(next);
            next += 1;
        }
    }
    if split_on.is_some() {
        // Whatever comes before the first flow start is setup too.
        while next < stop && !starts_flow(next) {
            on_start.push(next);
            next += 1;
        }
    }
    let mut recorded: Vec<Vec<usize>> = Vec::new();
    for index in next..stop {
        if recorded.is_empty() || starts_flow(index) {
            recorded.push(Vec::new());
        }
        recorded.last_mut().expect("pushed above").push(index);
    }
    let shape_of = |positions: &[usize]| -> Vec<String> {
        positions
            .iter()
            .map(|&i| format!("{} {}", requests[i].method, path_of(&requests[i])))
            .collect()
    };
    let mut flows: Vec<(String, Vec<usize>, u32)> = Vec::new();
    // Each flow's shape, with repeats collapsed, to find an identical one at once.
    let mut by_shape: HashMap<Vec<String>, usize> = HashMap::new();
    for positions in recorded {
        let shape: Vec<String> = dedup_runs(&shape_of(&positions))
            .into_iter()
            .cloned()
            .collect();
        match by_shape.get(&shape) {
            Some(&same) => flows[same].2 += 1,
            None => {
                by_shape.insert(shape, flows.len());
                let first = &requests[positions[0]];
                let name = if split_on.is_some() {
                    format!("{} {}", first.method, path_of(first))
                } else {
                    "recorded session".to_owned()
                };
                flows.push((name, positions, 1));
            }
        }
    }
    Layout {
        on_start,
        flows,
        on_stop: (stop..requests.len()).collect(),
        logout,
        login_end,
    }
}

/// Moves the reads at the end of `on_start` that served a form's token (a form field, a
/// `<meta>`, a value named as a token) used by a flow into the flow's start, with the reads
/// after them: each iteration then sends a token from a page it loaded itself.
pub(crate) fn move_token_pages(layout: &mut Layout, requests: &[DraftRequest], login_end: usize) {
    let Some((_, first_flow, _)) = layout.flows.first() else {
        return;
    };
    let flow_values = || {
        layout
            .flows
            .iter()
            .flat_map(|(_, positions, _)| positions)
            .flat_map(|&p| slots(&requests[p]))
            .map(|found| found.value)
    };
    // The variables written as `{{ var }}` in the flows, gathered once when first asked.
    let mut in_flows: Option<HashSet<String>> = None;
    let mut used_in_flow = |var: &str| {
        if !var.chars().all(is_name_char) {
            let template = format!("{{{{ {var} }}}}");
            return flow_values().any(|value| value.contains(&template));
        }
        in_flows
            .get_or_insert_with(|| {
                flow_values()
                    .flat_map(|value| plain_uses(&value).map(str::to_owned).collect::<Vec<_>>())
                    .collect()
            })
            .contains(var)
    };
    let trailing: Vec<usize> = layout
        .on_start
        .iter()
        .copied()
        .filter(|&p| p > login_end)
        .collect();
    let mut serves_token = |p: usize| {
        requests[p].extracts.iter().any(|extract| {
            let token_like = matches!(
                extract.source,
                ExtractSource::FormField(_) | ExtractSource::Meta(_)
            );
            token_like && used_in_flow(&extract.var)
        })
    };
    let Some(from) = trailing.iter().position(|&p| serves_token(p)) else {
        return;
    };
    let moved: Vec<usize> = trailing[from..].to_vec();
    let moving: HashSet<usize> = moved.iter().copied().collect();
    layout.on_start.retain(|p| !moving.contains(p));
    let mut flow = moved;
    flow.extend(first_flow.iter().copied());
    layout.flows[0].1 = flow;
}

/// The logout sends a token a page served (Django's, Trac's, Rails'): a page serving that
/// field is loaded again at the start of `on_stop`, so the logout works whichever step the
/// user's last iteration ended on. A page whose URL every user can load (no value of the
/// flow in it) is preferred: it is then loaded with an extract of its own.
pub(crate) fn reload_token_pages_for_logout(
    layout: &mut Layout,
    requests: &mut Vec<DraftRequest>,
    exchanges: &mut Vec<Exchange>,
) {
    let Some(&first) = layout.on_stop.first() else {
        return;
    };
    let mut reloads: Vec<usize> = Vec::new();
    // The requests (and the recorded exchange each repeats) to add at the end.
    let mut added: Vec<(DraftRequest, usize)> = Vec::new();
    let mut reloaded: HashSet<usize> = HashSet::new();
    let in_on_stop: HashSet<usize> = layout.on_stop.iter().copied().collect();
    let logout_uses: Vec<String> = layout
        .on_stop
        .iter()
        .flat_map(|&p| slots(&requests[p]))
        .filter_map(|found| {
            found
                .value
                .strip_prefix("{{ ")
                .and_then(|v| v.strip_suffix(" }}"))
                .map(str::to_owned)
        })
        .collect();
    // The newest page before `on_stop` that extracts each variable from a form field or a
    // `<meta>`, with its first such rule (one pass, not one per variable).
    let mut token_pages: HashMap<String, (usize, ExtractSource)> = HashMap::new();
    if !logout_uses.is_empty() {
        for (i, request) in requests[..first].iter().enumerate() {
            if request.method != "GET" {
                continue;
            }
            let mut first_rule: HashSet<&str> = HashSet::new();
            for extract in &request.extracts {
                let token_like = matches!(
                    extract.source,
                    ExtractSource::FormField(_) | ExtractSource::Meta(_)
                );
                if token_like && first_rule.insert(&extract.var) {
                    token_pages.insert(extract.var.clone(), (i, extract.source.clone()));
                }
            }
        }
    }
    // The newest page every user can load that serves each field name.
    let mut fallback_pages: HashMap<String, Option<usize>> = HashMap::new();
    for var in logout_uses {
        let Some((source, rule)) = token_pages.get(&var).cloned() else {
            continue;
        };
        let name = match &rule {
            ExtractSource::FormField(name) | ExtractSource::Meta(name) => name.clone(),
            _ => continue,
        };
        let is_static = |i: usize| {
            requests[i].path.iter().all(|s| !s.contains("{{"))
                && requests[i].query.iter().all(|(_, v)| !v.contains("{{"))
        };
        let serves = |i: usize| {
            exchanges[i]
                .page()
                .is_some_and(|page| page.field(&name).is_some() || page.meta(&name).is_some())
        };
        // Values every user has from its start: its row (`user.x`), the built-in `origin`.
        let needed: Vec<String> = slots(&requests[source])
            .iter()
            .filter(|s| matches!(s.slot, Slot::PathSegment(_) | Slot::Query(_)))
            .flat_map(|s| template_variables(&s.value))
            .filter(|v| v != "origin")
            .collect();
        if is_static(source) || needed.is_empty() {
            if !in_on_stop.contains(&source) && reloaded.insert(source) {
                reloads.push(source);
            }
            continue;
        }
        // The page the recording logged out from, when the values its URL needs are set
        // (its Referer can matter: Trac's logout goes back to it); else a page every user
        // can load.
        let defined = needed
            .iter()
            .map(|v| format!("{v} is defined"))
            .collect::<Vec<_>>()
            .join(" and ");
        let fallback_page = *fallback_pages.entry(name.clone()).or_insert_with(|| {
            (0..first)
                .rev()
                .find(|&i| requests[i].method == "GET" && is_static(i) && serves(i))
        });
        let mut primary = requests[source].clone();
        primary.when = Some(defined.clone());
        primary.checks.clear();
        added.push((primary, source));
        reloads.push(requests.len() + added.len() - 1);
        reloaded.insert(requests.len() + added.len() - 1);
        if let Some(page) = fallback_page {
            let mut fallback = requests[page].clone();
            fallback.extracts = vec![DraftExtract {
                var: var.clone(),
                source: rule,
                comment: format!(
                    "the logout's token when the page above could not be loaded (entry {})",
                    fallback.entry + 1
                ),
            }];
            fallback.checks.clear();
            fallback.when = Some(format!("not ({defined})"));
            added.push((fallback, page));
            reloads.push(requests.len() + added.len() - 1);
            reloaded.insert(requests.len() + added.len() - 1);
        }
    }
    // Grown once, to their size: these lists are long, and doubling one here, at the
    // conversion's peak, held it twice over.
    requests.reserve_exact(added.len());
    exchanges.reserve_exact(added.len());
    for (request, recorded) in added {
        requests.push(request);
        exchanges.push(exchanges[recorded].clone());
    }
    reloads.extend(layout.on_stop.iter().copied());
    layout.on_stop = reloads;
    guard_flow_values(layout, requests);
}

/// A request of `on_stop` whose URL needs a value only a flow extracts (the ticket the
/// recording went back to after its logout) runs only when that value is set: a user whose
/// run ended before its first iteration got that far still logs out cleanly.
fn guard_flow_values(layout: &Layout, requests: &mut [DraftRequest]) {
    // Sets: `on_stop` holds everything after the logout, which may be most of the capture.
    let mut known: HashSet<String> = layout
        .on_start
        .iter()
        .flat_map(|&p| requests[p].extracts.iter().map(|e| e.var.clone()))
        .collect();
    let from_flows: HashSet<String> = layout
        .flows
        .iter()
        .flat_map(|(_, positions, _)| positions)
        .flat_map(|&p| requests[p].extracts.iter().map(|e| e.var.clone()))
        .collect();
    for &p in &layout.on_stop {
        let request = &mut requests[p];
        if request.when.is_none() {
            let needed: Vec<String> = slots(request)
                .iter()
                .filter(|s| matches!(s.slot, Slot::PathSegment(_) | Slot::Query(_)))
                .flat_map(|s| template_variables(&s.value))
                .filter(|v| from_flows.contains(v) && !known.contains(v))
                .collect();
            if !needed.is_empty() {
                let condition: Vec<String> =
                    needed.iter().map(|v| format!("{v} is defined")).collect();
                request.when = Some(condition.join(" and "));
            }
        }
        known.extend(request.extracts.iter().map(|e| e.var.clone()));
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every `var` that `text` holds as `{{ var }}` exactly (one space inside each brace).
fn plain_uses(text: &str) -> impl Iterator<Item = &str> {
    text.match_indices("{{ ").filter_map(move |(at, _)| {
        let rest = &text[at + 3..];
        let name = &rest[..rest.find(|c: char| !is_name_char(c)).unwrap_or(rest.len())];
        (!name.is_empty() && rest[name.len()..].starts_with(" }}")).then_some(name)
    })
}

/// The variables a text's templates read.
fn template_variables(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let Some(end) = rest[start..].find("}}") else {
            break;
        };
        let inner = rest[start + 2..start + end].trim();
        if inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !inner.is_empty() {
            out.push(inner.to_owned());
        }
        rest = &rest[start + end + 2..];
    }
    out
}

/// A shape with repeats collapsed, so flows that differ only in a loop's count are one flow.
fn dedup_runs(shape: &[String]) -> Vec<&String> {
    let mut out: Vec<&String> = Vec::new();
    for item in shape {
        if out.last() != Some(&item) {
            out.push(item);
        }
    }
    out
}

/// With `--split-on`, each flow runs on its own, in any order: a value a request sends that
/// only another flow extracts (a game id the recording got from one page and sent from the
/// next, split apart) would be unknown where it is read. Such a value is sent as recorded,
/// and a warning says so. `extracted` holds every variable some request extracts; what is
/// not among them (the user's row, generated values, `origin`) is known everywhere.
pub(crate) fn send_recorded_across_flows(
    layout: &Layout,
    requests: &mut [DraftRequest],
    exchanges: &[Exchange],
) -> Vec<String> {
    let extracted: HashSet<String> = requests
        .iter()
        .flat_map(|r| r.extracts.iter().map(|e| e.var.clone()))
        .collect();
    let from_start: HashSet<String> = layout
        .on_start
        .iter()
        .flat_map(|&p| requests[p].extracts.iter().map(|e| e.var.clone()))
        .collect();
    let mut warnings = Vec::new();
    for (flow, positions, _) in &layout.flows {
        let mut known = from_start.clone();
        for &p in positions {
            let unknown: Vec<(SlotValue<'static>, Vec<String>)> = slots(&requests[p])
                .into_iter()
                .map(SlotValue::into_owned)
                .filter_map(|found| {
                    let missing: Vec<String> = template_variables(&found.value)
                        .into_iter()
                        .filter(|v| extracted.contains(v) && !known.contains(v))
                        .collect();
                    (!missing.is_empty()).then_some((found, missing))
                })
                .collect();
            if !unknown.is_empty() {
                let fresh = super::request::draft_request(&exchanges[p]);
                let recorded = slots(&fresh);
                for (found, missing) in unknown {
                    let Some(original) = recorded.iter().find(|r| r.slot == found.slot) else {
                        continue;
                    };
                    match found.slot {
                        // As the URL had it (`slots` reads segments percent-decoded).
                        Slot::PathSegment(i) => requests[p].path[i] = fresh.path[i].clone(),
                        _ => set_slot(&mut requests[p], &found.slot, &original.value),
                    }
                    let request = &requests[p];
                    warnings.push(format!(
                        "entry {} ({} /{}) sends {:?} as recorded: the recording took it from a response of another flow ({}), and with --split-on flow `{flow}` runs on its own",
                        request.entry + 1,
                        request.method,
                        request.path.join("/"),
                        original.value,
                        missing.join(", "),
                    ));
                }
            }
            known.extend(requests[p].extracts.iter().map(|e| e.var.clone()));
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::request::draft_request;
    use crate::convert::testing::exchange;

    fn exchanges(list: &[(&str, &str)]) -> Vec<Exchange> {
        list.iter()
            .map(|(method, path)| exchange(method, &format!("http://app{path}"), 200, "", ""))
            .collect()
    }

    fn requests(list: &[Exchange]) -> Vec<DraftRequest> {
        list.iter().map(draft_request).collect()
    }

    #[test]
    fn login_and_following_reads_go_to_on_start_the_logout_to_on_stop() {
        let list = exchanges(&[
            ("GET", "/"),
            ("POST", "/login"),
            ("GET", "/courses"),
            ("GET", "/config"),
            ("POST", "/start"),
            ("GET", "/x"),
            ("POST", "/admin/logout/"),
            ("GET", "/"),
        ]);
        let layout = layout(&requests(&list), &list, Some(1), None);
        assert_eq!(layout.on_start, [0, 1, 2, 3]);
        assert_eq!(
            layout.flows,
            vec![("recorded session".to_owned(), vec![4, 5], 1)]
        );
        assert_eq!(layout.on_stop, [6, 7]);
    }

    #[test]
    fn an_engine_io_handshake_after_the_login_starts_the_flow() {
        // The handshake opens the connection the flow upgrades and ends: a second iteration
        // needs its own.
        let list = exchanges(&[
            ("POST", "/login"),
            ("GET", "/me"),
            ("GET", "/socket.io/?EIO=4&transport=polling&t=pmbpbjqp"),
            (
                "POST",
                "/socket.io/?EIO=4&transport=polling&t=pmbpugg5&sid=SLAaEH",
            ),
        ]);
        let layout = layout(&requests(&list), &list, Some(0), None);
        assert_eq!(layout.on_start, [0, 1]);
        assert_eq!(
            layout.flows,
            vec![("recorded session".to_owned(), vec![2, 3], 1)]
        );
    }

    #[test]
    fn an_answer_that_expires_the_session_cookie_is_a_logout() {
        assert!(expires_session(
            "sessionid=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/"
        ));
        assert!(expires_session(
            "trac_auth=; Expires=Thu, 01-Jan-1970 00:00:00 GMT; Path=/"
        ));
        assert!(!expires_session(
            "messages=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/"
        ));
        assert!(!expires_session("sessionid=abc; Path=/; HttpOnly"));
        let mut list = exchanges(&[("POST", "/login"), ("POST", "/x"), ("GET", "/bye")]);
        list[2]
            .response_headers
            .push(("Set-Cookie".to_owned(), "sid=; Max-Age=0".to_owned()));
        let layout = layout(&requests(&list), &list, Some(0), None);
        assert_eq!(layout.on_stop, [2]);
    }

    #[test]
    fn an_oauth_token_exchange_ends_the_login() {
        let mut list = exchanges(&[
            ("POST", "/interaction/u/login"),
            ("GET", "/auth/u"),
            ("POST", "/token"),
            ("POST", "/api/notes"),
        ]);
        list[2].request_body = Some(crate::convert::model::RecordedBody {
            mime: "application/x-www-form-urlencoded".to_owned(),
            text: "grant_type=authorization_code&code=x".to_owned(),
        });
        let layout = layout(&requests(&list), &list, Some(0), None);
        assert_eq!(layout.on_start, [0, 1, 2]);
        assert_eq!(layout.flows[0].1, [3]);
    }

    #[test]
    fn split_on_makes_flows_and_merges_identical_ones() {
        let list = exchanges(&[
            ("POST", "/login"),
            ("POST", "/start"),
            ("POST", "/events"),
            ("POST", "/end"),
            ("POST", "/start"),
            ("POST", "/events"),
            ("POST", "/events"),
            ("POST", "/end"),
            ("POST", "/save"),
        ]);
        let regex = Regex::new("/start$|/save$").unwrap();
        let layout = layout(&requests(&list), &list, Some(0), Some(&regex));
        assert_eq!(layout.on_start, [0]);
        assert_eq!(
            layout.flows,
            vec![
                ("POST /start".to_owned(), vec![1, 2, 3], 2),
                ("POST /save".to_owned(), vec![8], 1)
            ]
        );
    }
}
