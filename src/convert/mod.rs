//! HAR -> scenario: filtering, login detection, correlation, think times, loops and pacing.
//! A pipeline of passes over data; no IO. `convert` takes a read HAR and returns the
//! scenario's YAML text with comments saying where each extracted value came from.

mod auth;
mod checks;
mod correlate;
mod filter;
mod from_har;
mod liveness;
mod login;
mod made_up;
mod model;
mod names;
mod offers;
mod pacing;
mod pkce;
mod proof;
mod redact;
mod request;
mod seen;
mod slots;
mod sockets;
mod structure;
#[cfg(test)]
mod testing;
mod ties;
mod write;

use std::collections::HashSet;

use regex::Regex;

use std::path::Path;

use crate::har::{Har, read};
use model::{Draft, DraftFlow, DraftStep};

/// How to convert (the `chorus convert` flags).
#[derive(Debug, Clone)]
pub struct Options {
    /// Keep requests for images, scripts, styles and fonts.
    pub keep_static: bool,
    /// The host to keep (`host` or `host:port`); default: the host most requests went to.
    pub host: Option<String>,
    /// The login request's URL, when it is not detected.
    pub login: Option<String>,
    pub think_scale: f64,
    pub no_think: bool,
    /// Start a new flow at each request whose path matches.
    pub split_on: Option<Regex>,
    /// Replace passwords, tokens and cookies in everything written.
    pub redact: bool,
    /// How the scenario names its capture (`capture:`, for `--check`): the capture's path
    /// relative to the scenario's folder. `None`: no `capture:` line.
    pub capture: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            keep_static: false,
            host: None,
            login: None,
            think_scale: 1.0,
            no_think: false,
            split_on: None,
            redact: false,
            capture: None,
        }
    }
}

/// The converted scenario and what the user should know about it.
#[derive(Debug, Clone)]
pub struct Conversion {
    pub yaml: String,
    /// Entries left out because they could not be replayed, each naming the entry.
    pub warnings: Vec<String>,
    pub requests: usize,
    pub extracted_values: usize,
    pub generated_values: usize,
    /// The CSV columns the `users` data must have; empty when no login was found.
    pub user_columns: Vec<String>,
    pub flows: usize,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConvertError {
    #[error("the capture holds no requests that can be replayed")]
    Empty,
    #[error(
        "no request in the capture went to {wanted}; it has {available} (choose one with --host)"
    )]
    HostNotFound { wanted: String, available: String },
    #[error("--login {0}: no request in the capture has that URL")]
    LoginNotFound(String),
}

/// Converts a capture. `source` names it in the scenario's comments.
pub fn convert(har: &Har, source: &str, options: &Options) -> Result<Conversion, ConvertError> {
    convert_owned(har.clone(), source, options)
}

/// [`convert`] for a capture the caller no longer needs: its bodies move into the conversion
/// instead of being copied, so a large capture is held in memory once.
pub fn convert_owned(
    har: Har,
    source: &str,
    options: &Options,
) -> Result<Conversion, ConvertError> {
    let recorded = har.log.entries.len();
    let (exchanges, warnings) = from_har::exchanges(har.log.entries);
    convert_capture(
        Capture {
            exchanges,
            warnings,
            recorded,
        },
        source,
        options,
    )
}

/// A capture as convert reads it: each entry's request and response, without what convert
/// never reads (timings, the browser's own headers, cookie lists).
#[derive(Debug)]
pub struct Capture {
    exchanges: Vec<model::Exchange>,
    warnings: Vec<String>,
    recorded: usize,
}

/// Reads a HAR file for [`convert_capture`], entry by entry: an entry is held whole only
/// until what convert needs of it is taken, so a large capture is not held twice.
pub fn read_capture(path: &Path) -> Result<(Capture, Vec<read::Warning>), read::HarError> {
    let mut read = from_har::Exchanges::default();
    let (_, warnings) = read::read_file_each(path, &mut read)?;
    let recorded = read.read;
    let (exchanges, entry_warnings) = read.finish();
    Ok((
        Capture {
            exchanges,
            warnings: entry_warnings,
            recorded,
        },
        warnings,
    ))
}

/// Converts a capture read by [`read_capture`]; `source` names it in the scenario's comments.
pub fn convert_capture(
    capture: Capture,
    source: &str,
    options: &Options,
) -> Result<Conversion, ConvertError> {
    let Capture {
        exchanges,
        warnings,
        recorded,
    } = capture;
    if exchanges.is_empty() {
        return Err(ConvertError::Empty);
    }
    let host = match &options.host {
        Some(wanted) => {
            let wanted = wanted
                .trim_start_matches("http://")
                .trim_start_matches("https://")
                .trim_end_matches('/');
            if !exchanges.iter().any(|e| e.host_key() == wanted) {
                let mut hosts: Vec<String> =
                    exchanges.iter().map(model::Exchange::host_key).collect();
                hosts.sort();
                hosts.dedup();
                return Err(ConvertError::HostNotFound {
                    wanted: wanted.to_owned(),
                    available: hosts.join(", "),
                });
            }
            wanted.to_owned()
        }
        None => filter::main_host(&exchanges).ok_or(ConvertError::Empty)?,
    };
    let base = exchanges
        .iter()
        .find(|e| e.host_key() == host)
        .map(|e| format!("{}://{host}", e.url.scheme()));
    let (exchanges, dropped) = filter::filter(exchanges, &host, options.keep_static);
    let mut warnings = warnings;
    warnings.extend(
        dropped
            .unanswered
            .iter()
            .map(|entry| format!("{entry}: the capture has no response to it; left out")),
    );
    warnings.extend(
        dropped
            .not_http
            .iter()
            .map(|entry| format!("{entry}; left out")),
    );
    if exchanges.is_empty() {
        return Err(ConvertError::Empty);
    }

    // HTTP authentication: the engine answers the challenges itself, with each user's own
    // credentials; the browser's first try without them is not replayed.
    let http_auth = auth::detect(&exchanges);
    let mut exchanges: Vec<model::Exchange> = match &http_auth {
        Some(found) => exchanges
            .into_iter()
            .enumerate()
            .filter(|(index, _)| !found.challenges.contains(index))
            .map(|(_, exchange)| exchange)
            .collect(),
        None => exchanges,
    };
    let mut requests: Vec<_> = exchanges.iter().map(request::draft_request).collect();
    if http_auth.is_some() {
        for request in &mut requests {
            request.headers.retain(|(name, value)| {
                !(name.eq_ignore_ascii_case("authorization") && auth::is_http_auth(value))
            });
        }
    }
    // The engine's cookie jar sends what servers set; cookies set by the page's scripts must
    // be sent by the scenario.
    let mut set_by_server: HashSet<String> = HashSet::new();
    for (request, exchange) in requests.iter_mut().zip(&exchanges) {
        let own = request::cookies_not_from_server(exchange, &set_by_server);
        if !own.is_empty() {
            let pairs: Vec<String> = own
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            request
                .headers
                .push(("Cookie".to_owned(), pairs.join("; ")));
        }
        for (name, value) in &exchange.response_headers {
            if name.eq_ignore_ascii_case("set-cookie") {
                if let Some((cookie, _)) = value.split_once('=') {
                    set_by_server.insert(cookie.trim().to_owned());
                }
            }
        }
    }
    let http_login = http_auth.as_ref().and_then(|found| {
        exchanges
            .iter()
            .position(|e| {
                e.request_header("authorization")
                    .is_some_and(auth::is_http_auth)
            })
            .map(|index| login::http_login(found, index))
    });
    let mut login = match http_login {
        Some(found) if options.login.is_none() => Some(found),
        _ => {
            let login_index = login::find(&requests, &exchanges, options.login.as_deref());
            if let (Some(wanted), None) = (&options.login, login_index) {
                return Err(ConvertError::LoginNotFound(wanted.clone()));
            }
            login_index.map(|index| login::template_credentials(&mut requests, &exchanges, index))
        }
    };
    if let Some(found) = &mut login {
        login::add_response_identities(found, &requests, &exchanges);
        login::template_account_values(&mut requests, found);
    }
    let account: Vec<(String, String)> = login
        .as_ref()
        .map(|found| found.values.clone())
        .unwrap_or_default();
    let pkce = pkce::template_pkce(&mut requests);
    let mut fixed: HashSet<String> = account.iter().map(|(value, _)| value.clone()).collect();
    fixed.extend(pkce.iter().flat_map(|p| p.values.iter().cloned()));
    let login_index = login.as_ref().map(|found| found.index);
    let mut correlation =
        correlate::correlate(&mut requests, &exchanges, &fixed, &account, login_index);
    if let Some(pkce) = &pkce {
        correlation.generators.insert(0, pkce.var.clone());
    }
    for (request, exchange) in requests.iter_mut().zip(&exchanges) {
        checks::add_checks(request, exchange, &account);
    }
    // The pages read so far (for offers, links and checks) are let go: the few read again
    // below are parsed again.
    for exchange in &mut exchanges {
        exchange.page.take();
    }
    // Sockets: their messages become steps, carrying values from earlier messages and
    // responses (new extracts there).
    let mut taken: HashSet<String> = (requests.iter())
        .flat_map(|request| request.extracts.iter().map(|e| e.var.clone()))
        .chain(
            correlation
                .generators
                .iter()
                .map(|(name, _, _)| name.clone()),
        )
        .collect();
    let thinks = sockets::Thinks {
        scale: options.think_scale,
        none: options.no_think,
    };
    sockets::draft_sockets(&mut requests, &exchanges, &mut taken, thinks, &account);
    if let Some(origin) = &base {
        request::template_origin(&mut requests, origin);
    }

    let mut layout = structure::layout(
        &requests,
        &exchanges,
        login_index,
        options.split_on.as_ref(),
    );
    if let Some(login_end) = layout.login_end {
        structure::move_token_pages(&mut layout, &requests, login_end);
    }
    let kept = requests.len();
    structure::reload_token_pages_for_logout(&mut layout, &mut requests, &mut exchanges);
    warnings.extend(structure::send_recorded_across_flows(
        &layout,
        &mut requests,
        &exchanges,
    ));
    let pacing = pacing::Pacing {
        think_scale: options.think_scale,
        no_think: options.no_think,
    };
    // Pacing may add extracts to earlier requests: plan every part first, then copy the
    // requests, with all their extracts, into the steps.
    let mut numbers = pacing::ServerNumbers::default();
    let thinks = pacing::SocketThinks::of(&requests);
    let mut plan = |positions: &[usize], requests: &mut Vec<model::DraftRequest>| {
        pacing::plan(
            positions,
            requests,
            &exchanges,
            pacing,
            &thinks,
            &mut numbers,
        )
    };
    let on_start_plan = plan(&layout.on_start, &mut requests);
    let flow_plans: Vec<_> = layout
        .flows
        .iter()
        .map(|(_, positions, _)| plan(positions, &mut requests))
        .collect();
    let on_stop_plan = plan(&layout.on_stop, &mut requests);

    // What the header says of the requests, before they move into the steps.
    let described = |index: usize| {
        let request = &requests[index];
        (
            request.method.clone(),
            request.path.join("/"),
            request.entry + 1,
        )
    };
    let login_request = login.as_ref().map(|login| described(login.index));
    let logout_request = layout.logout.map(described);
    // The capture is no longer needed (but for the secrets --redact looks for at the end):
    // its bodies and pages go before the scenario is written.
    let secrets = if options.redact {
        redact::secret_values(&exchanges)
    } else {
        Vec::new()
    };
    drop(exchanges);
    // Each request moves into the step that sends it (copied only for a step that is not
    // the last to send it).
    let mut steps_left = vec![0; requests.len()];
    for planned in [&on_start_plan, &on_stop_plan]
        .into_iter()
        .chain(&flow_plans)
    {
        pacing::count_requests(planned, &mut steps_left);
    }
    let mut request_at = |index: usize| {
        steps_left[index] -= 1;
        if steps_left[index] == 0 {
            std::mem::take(&mut requests[index])
        } else {
            requests[index].clone()
        }
    };
    let on_start = pacing::materialize(&on_start_plan, &mut request_at);
    let flows: Vec<DraftFlow> = layout
        .flows
        .iter()
        .zip(&flow_plans)
        .map(|((name, _, count), plan)| DraftFlow {
            name: name.clone(),
            weight: *count,
            comment: (*count > 1).then(|| format!("seen {count} times in the recording")),
            steps: pacing::materialize(plan, &mut request_at),
        })
        .collect();
    let on_stop = pacing::materialize(&on_stop_plan, &mut request_at);
    drop(requests);

    let mut header_comments = vec![
        format!(
            "converted by chorus {} from {source}",
            env!("CARGO_PKG_VERSION")
        ),
        format!("{kept} request(s) kept of {recorded} recorded"),
    ];
    header_comments.extend(dropped.comments());
    match (&login, login_request) {
        (Some(login), Some((method, path, entry))) => header_comments.push(format!(
            "login: {method} /{path} (entry {entry}); each virtual user logs in with its own row of the users CSV, columns: {}",
            login.columns.join(", ")
        )),
        _ => header_comments.push("no login found (no request body with a password field; --login URL names one)".to_owned()),
    }
    if let Some((method, path, entry)) = logout_request {
        header_comments.push(format!(
            "logout: {method} /{path} (entry {entry}) ends the session: it runs once per user when the run ends (on_stop), never in the repeated flow"
        ));
    }
    let mut draft = Draft {
        host: base.unwrap_or_else(|| format!("http://{host}")),
        header_comments,
        user_columns: login
            .as_ref()
            .map(|l| l.columns.clone())
            .unwrap_or_default(),
        vars: correlation.generators.clone(),
        on_start,
        flows,
        on_stop,
        auth: http_auth.as_ref().map(|_| {
            (
                "{{ user.username }}".to_owned(),
                "{{ user.password }}".to_owned(),
            )
        }),
        capture: options.capture.clone(),
    };
    liveness::prune(&mut draft);
    let extracted_values = count_extracts(&draft);
    annotate_uses(&mut draft, &correlation.uses);
    if options.redact {
        redact::redact(&mut draft);
        draft.header_comments.push(format!(
            "--redact: passwords, tokens and cookies of the capture are written as {}; a request that needs one fails until you template it or fill it in",
            redact::REDACTED
        ));
    }
    let mut yaml = write::yaml(&draft);
    if options.redact {
        // Whatever the by-name pass missed (a token quoted in a URL, a comment, a raw body).
        yaml = redact::scrub_text(&yaml, &secrets).0;
    }
    Ok(Conversion {
        yaml,
        warnings,
        requests: kept,
        extracted_values,
        generated_values: correlation.generators.len(),
        user_columns: draft.user_columns.clone(),
        flows: draft.flows.len(),
    })
}

/// The extracts the scenario keeps.
fn count_extracts(draft: &Draft) -> usize {
    fn count(steps: &[DraftStep]) -> usize {
        steps
            .iter()
            .map(|step| match step {
                DraftStep::Request(request) => request.extracts.len(),
                DraftStep::Repeat { steps, .. } => count(steps),
                DraftStep::Think(_) => 0,
            })
            .sum()
    }
    count(&draft.on_start)
        + draft
            .flows
            .iter()
            .map(|flow| count(&flow.steps))
            .sum::<usize>()
        + count(&draft.on_stop)
}

/// Adds "used by N request(s)" to each extract's comment.
fn annotate_uses(draft: &mut Draft, uses: &std::collections::BTreeMap<String, usize>) {
    fn visit(steps: &mut [DraftStep], uses: &std::collections::BTreeMap<String, usize>) {
        for step in steps {
            match step {
                DraftStep::Request(request) => {
                    for extract in &mut request.extracts {
                        if let Some(count) = uses.get(&extract.var) {
                            extract
                                .comment
                                .push_str(&format!("; used by {count} request(s)"));
                        }
                    }
                }
                DraftStep::Repeat { steps, .. } => visit(steps, uses),
                DraftStep::Think(_) => {}
            }
        }
    }
    visit(&mut draft.on_start, uses);
    for flow in &mut draft.flows {
        visit(&mut flow.steps, uses);
    }
    visit(&mut draft.on_stop, uses);
}
