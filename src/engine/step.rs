//! Executing steps for one user: render a request, send it (following redirects to the
//! scenario's hosts), extract and check, and record one sample per exchange the server saw;
//! thinks, repeats, conditions and emits. Problems map onto `stats::FailureKind`; nothing here
//! stops the run.

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, COOKIE, REFERER, SET_COOKIE, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use http_body_util::Full;
use rand::RngExt as _;

use super::http::{Endpoint, Reply, decoded_body, decoded_start};
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;

use super::EmitRow;
use super::auth::{Answer, Carried};
use super::login::{self, Sent, SessionEnd};
use super::observe::{self, Exchange};
use super::redirect::{hop_name, redirect_to, scheme_switch};
use super::request_body;
use super::response::{is_connect, is_transport, keeps_body, status_expected};
use super::trace;
use super::user::{Section, User};
use crate::scenario::{Count, Repeat, Request, ResponseView, Step, StepKind, Think};
use crate::stats::{FailureKind, Phases};

/// Redirects followed for one request, as browsers do.
const MAX_REDIRECTS: usize = 10;
pub(super) const USER_AGENT_VALUE: &str = concat!("chorus/", env!("CARGO_PKG_VERSION"));
/// The W3C trace context headers (`--trace-headers`).
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const BAGGAGE: HeaderName = HeaderName::from_static("baggage");
/// Setup runs: the first wait before a transport error is retried (then doubled each try).
const RETRY_BACKOFF: Duration = Duration::from_millis(200);
/// How much of a failed response's body a failure message quotes.
const BODY_QUOTE: usize = 200;

/// What the user does after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Go on with the next step.
    Continue,
    /// Leave the rest of this sequence: an error made its later steps meaningless (a value
    /// that was not extracted, a template that does not render).
    Abandon,
    /// The user was asked to stop, and left its steps between two of them.
    Stopped,
    /// The stop cut the sequence short (its deadline passed, or the stop was at once).
    Cut,
}

/// Runs steps in order until one abandons or the stop ends the sequence.
pub(super) async fn run_steps(user: &mut User, steps: &[Step]) -> Outcome {
    for (index, step) in steps.iter().enumerate() {
        if let Some(outcome) = user.leaving() {
            return outcome;
        }
        if user.stop.is_stopping() && user.is_pacing(user.path.len(), index) {
            // Only pacing is left of this iteration: it is done.
            return Outcome::Continue;
        }
        user.path.push(index);
        let outcome = run_step(user, step).await;
        user.path.pop();
        if outcome != Outcome::Continue {
            return outcome;
        }
    }
    Outcome::Continue
}

async fn run_step(user: &mut User, step: &Step) -> Outcome {
    if let Some(condition) = &step.when {
        match condition.evaluate(&user.vars) {
            Ok(true) => {}
            Ok(false) => return Outcome::Continue,
            Err(err) => return user.error("when", &err),
        }
    }
    match &step.kind {
        StepKind::Request(request) => send(user, request).await,
        StepKind::Think(think) => {
            let pause = match think {
                Think::Fixed(pause) => *pause,
                Think::Range(low, high) => random_between(*low, *high),
                Think::Template(template) => {
                    let seconds = template.render(&user.vars).map_err(|e| e.to_string());
                    match seconds.and_then(|text| parse_seconds(&text)) {
                        Ok(pause) => pause,
                        Err(err) => return user.error("think", &err),
                    }
                }
            };
            user.pause(pause).await
        }
        StepKind::Repeat(repeat) => {
            let count = match evaluate_count(user, &repeat.count) {
                Ok(count) => count,
                Err(err) => return user.error("repeat", &err),
            };
            let parallel = match &repeat.parallel {
                Some(parallel) => match evaluate_count(user, parallel) {
                    Ok(parallel) => parallel.max(1),
                    Err(err) => return user.error("parallel", &err),
                },
                None => 1,
            };
            if parallel > 1 {
                return run_parallel(user, repeat, count, parallel).await;
            }
            for index in 0..count {
                if let Some(name) = &repeat.index_as {
                    user.vars.set(name, index.into());
                }
                match Box::pin(run_steps(user, &repeat.steps)).await {
                    Outcome::Continue => {}
                    Outcome::Abandon if user.worker.setup.failure_ends_sequence => {}
                    other => return other,
                }
            }
            Outcome::Continue
        }
        StepKind::Emit(emit) => {
            let mut columns = Vec::with_capacity(emit.columns.len());
            for (column, template) in &emit.columns {
                match template.render(&user.vars) {
                    Ok(value) => columns.push((column.clone(), value)),
                    Err(err) => return user.error(&format!("emit.{column}"), &err),
                }
            }
            let outcome = match emit.outcome.as_ref().map(|t| t.render(&user.vars)) {
                Some(Ok(outcome)) => Some(outcome),
                Some(Err(err)) => return user.error("outcome", &err),
                None => None,
            };
            if let Some(sink) = &user.worker.setup.emit {
                let _ = sink.send(EmitRow { columns, outcome });
            }
            Outcome::Continue
        }
        // Boxed: a socket step's future is large, and inline it would be part of every
        // user's task, sockets or not.
        StepKind::Socket(socket) => Box::pin(super::socket::run(user, socket)).await,
        StepKind::Script(call) => {
            let scripts = user.worker.scenario.scripts.clone();
            match scripts.map(|scripts| scripts.run_step(call, &mut user.vars)) {
                Some(Err(failure)) => user.error("js", &failure),
                _ => Outcome::Continue,
            }
        }
    }
}

/// How many times: a `repeat`'s count or its `parallel`.
fn evaluate_count(user: &User, count: &Count) -> Result<u64, String> {
    Ok(match count {
        Count::Fixed(count) => *count,
        Count::Range(low, high) if low < high => rand::rng().random_range(*low..=*high),
        Count::Range(low, _) => *low,
        Count::Template(template) => {
            let text = template.render(&user.vars).map_err(|e| e.to_string())?;
            parse_count(&text)?
        }
    })
}

/// A `repeat` with `parallel: N`: up to N iterations at once, each on a copy of the user
/// (variables, cookies; its own connections). Ends when all have ended.
async fn run_parallel(user: &mut User, repeat: &Repeat, count: u64, parallel: u64) -> Outcome {
    let ends_sequence = user.worker.setup.failure_ends_sequence;
    let mut pending = (0..count).map(|index| {
        let mut copy = user.fork();
        if let Some(name) = &repeat.index_as {
            copy.vars.set(name, index.into());
        }
        async move { Box::pin(run_steps(&mut copy, &repeat.steps)).await }
    });
    let mut running = FuturesUnordered::new();
    let mut outcome = Outcome::Continue;
    loop {
        while outcome == Outcome::Continue && (running.len() as u64) < parallel {
            match pending.next() {
                Some(iteration) => running.push(iteration),
                None => break,
            }
        }
        match running.next().await {
            None => return outcome,
            Some(Outcome::Cut) => outcome = Outcome::Cut,
            Some(Outcome::Stopped) if outcome != Outcome::Cut => outcome = Outcome::Stopped,
            Some(Outcome::Abandon) if !ends_sequence && outcome == Outcome::Continue => {
                outcome = Outcome::Abandon
            }
            Some(_) => {}
        }
    }
}

/// Where a request goes, resolved and checked against the scenario's hosts.
pub(super) struct Target {
    pub(super) url: url::Url,
    pub(super) origin: Endpoint,
    /// Origin form: path and query.
    pub(super) uri: http::Uri,
}

impl Target {
    pub(super) fn new(user: &User, url: url::Url) -> Result<Target, String> {
        let origin = match Endpoint::of(&url) {
            Some(origin) if host_allowed(user, &origin) => origin,
            _ => {
                return Err(format!(
                    "refusing to send to {url}: the scenario does not name this host (allowed: {})",
                    allowed_list(user)
                ));
            }
        };
        let path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let uri = http::Uri::try_from(path.as_str())
            .map_err(|err| format!("{url} has no valid request path: {err}"))?;
        Ok(Target { url, origin, uri })
    }
}

/// The request's target: resolved once per worker when its URL has no template.
fn target(user: &User, request: &Request) -> Result<Rc<Target>, String> {
    let key = request as *const Request as usize;
    if let Some(target) = user.worker.targets.borrow().get(&key) {
        return Ok(target.clone());
    }
    let text = request.url.render(&user.vars).map_err(|e| e.to_string())?;
    let url = resolve(user.worker.scenario.host.as_ref(), &text)?;
    let target = Rc::new(Target::new(user, url)?);
    if request.url.is_static() {
        user.worker.targets.borrow_mut().insert(key, target.clone());
    }
    Ok(target)
}

/// The headers of one exchange: the scenario's defaults, the request's own, a body's
/// content type and the user's cookies for this URL.
fn headers(
    user: &User,
    request: &Request,
    content_type: Option<&HeaderValue>,
    url: &url::Url,
) -> Result<HeaderMap, Outcome> {
    let scenario = &user.worker.scenario;
    let mut headers =
        HeaderMap::with_capacity(scenario.defaults.headers.len() + request.headers.len() + 3);
    for (name, template) in scenario.defaults.headers.iter().chain(&request.headers) {
        let value = template
            .render(&user.vars)
            .map_err(|err| user.error(&format!("headers.{name}"), &err))?;
        let value = HeaderValue::from_str(&value).map_err(|_| {
            user.error(
                &format!("headers.{name}"),
                &format!("{value:?} is not a valid header value"),
            )
        })?;
        headers.insert(name.clone(), value);
    }
    if !headers.contains_key(USER_AGENT) {
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
    }
    if let Some(trace) = user.trace() {
        headers.insert(TRACEPARENT, trace::traceparent(trace));
        let account = user.account();
        headers.insert(
            BAGGAGE,
            trace::baggage(user.index, user.section_name(), account.as_deref()),
        );
    }
    if let (false, Some(page)) = (headers.contains_key(REFERER), &user.page) {
        // A browser's default policy: the whole page URL to its own origin, the origin
        // elsewhere.
        let referer = if page.origin() == url.origin() {
            page.as_str().to_owned()
        } else {
            format!("{}/", page.origin().ascii_serialization())
        };
        if let Ok(value) = HeaderValue::from_str(&referer) {
            headers.insert(REFERER, value);
        }
    }
    if let Some(content_type) = content_type {
        if !headers.contains_key(CONTENT_TYPE) {
            headers.insert(CONTENT_TYPE, content_type.clone());
        }
    }
    add_cookies(user, url, &mut headers);
    Ok(headers)
}

/// A redirect followed on the way to a request's final response: an exchange the server saw,
/// counted under the method and URL it was sent with.
struct Hop {
    method: Method,
    name: String,
    latency: Duration,
    phases: Phases,
    bytes: u64,
}

/// One request step: render, send, follow redirects, then status, checks and extracts. In a
/// flow of a scenario with `relogin:`, an answer that says the session ended has the user
/// run `on_start` again and send the request once more.
async fn send(user: &mut User, request: &Request) -> Outcome {
    let relogin =
        matches!(user.section, Section::Flow(_)) && user.worker.scenario.relogin.is_some();
    if !relogin {
        return match send_once(user, request, SessionEnd::Ignored).await {
            Sent::Done(outcome) => outcome,
            Sent::SessionEnded => Outcome::Continue,
        };
    }
    match send_once(user, request, SessionEnd::HandedBack).await {
        Sent::Done(outcome) => return outcome,
        Sent::SessionEnded => {}
    }
    let logged_in = login::log_in_again(user).await;
    if logged_in != Outcome::Continue {
        return logged_in;
    }
    match send_once(user, request, SessionEnd::Failure).await {
        Sent::Done(outcome) => outcome,
        // Only `HandedBack` hands back.
        Sent::SessionEnded => Outcome::Continue,
    }
}

/// Sends a request once: its exchanges, following redirects and answering authentication
/// challenges, and judges the final response.
async fn send_once(user: &mut User, request: &Request, session_end: SessionEnd) -> Sent {
    let mut hops = Vec::new();
    let sent = send_following(user, request, &mut hops, session_end).await;
    // Each hop is an exchange the server saw, so each is counted; a chain that ended in a
    // redirect loop took its hops into its one failure.
    for hop in hops {
        user.record(
            &hop.method,
            &hop.name,
            (hop.latency, Some(&hop.phases)),
            hop.bytes,
            None,
        );
    }
    sent
}

/// Sends a request and follows its redirects and authentication challenges; the hops
/// followed go to `hops`.
async fn send_following(
    user: &mut User,
    request: &Request,
    hops: &mut Vec<Hop>,
    session_end: SessionEnd,
) -> Sent {
    let mut target = match target(user, request) {
        Ok(target) => target,
        Err(err) => return Sent::Done(user.error("url", &err)),
    };
    let (mut body, mut content_type) = match request_body::render(request.body.as_ref(), &user.vars)
    {
        Ok(rendered) => rendered,
        Err(err) => return Sent::Done(user.error("body", &err)),
    };
    let mut method = request.method.clone();
    // The first exchange counts under the step's name; each redirect hop under its own URL.
    let mut name = std::borrow::Cow::Borrowed(request.name.as_str());
    let mut tries = 0;
    // A Digest `stale=true` gets one fresh try per request.
    let mut stale_retried = false;
    loop {
        let mut headers = match headers(user, request, content_type.as_ref(), &target.url) {
            Ok(headers) => headers,
            Err(outcome) => return Sent::Done(outcome),
        };
        if let Some(scripts) = &user.worker.scenario.scripts {
            let hook =
                scripts.before_request(&method, &target.url, &mut headers, &body, &user.vars);
            if let Err(failure) = hook {
                return Sent::Done(user.error("before_request", &failure));
            }
        }
        let credentials = login::authorize(user, &mut headers, &target, &method, &body);
        let mut exchange = http::Request::new(Full::new(body.clone()));
        *exchange.method_mut() = method.clone();
        *exchange.uri_mut() = target.uri.clone();
        *exchange.headers_mut() = headers;
        // The body is kept only for a final response that something reads; a redirect's or
        // an unread body is only counted.
        let base = &target.url;
        let observing = keeps_every_body(user);
        let wants_body = |status: u16, headers: &HeaderMap| {
            keeps_body(observing, request, status)
                && redirect_to(request, status, headers, base).is_none()
        };
        let http = request.http.unwrap_or(user.worker.scenario.defaults.http);
        let phase = user.phase();
        // The cut first: a body that never ends keeps the send ready and spends the task's
        // budget, and a timer polled after it would never see its deadline.
        // What an observation says of a request that got no answer.
        let unanswered = || {
            Exchange::of(
                request,
                &method,
                &name,
                &target.url,
                (&body, content_type.as_ref()),
            )
        };
        let sent = tokio::select! {
            biased;
            _ = user.stop.cut(phase) => None,
            sent = user.session.send(&target.origin, exchange, http, wants_body) => Some(sent),
        };
        let Some(sent) = sent else {
            let message = "the run stopped while this request waited for its response (the stop timeout ran out, or the stop was at once)";
            observe::note(user, &unanswered(), Default::default, Some(message));
            user.record_untimed(&method, &name, (FailureKind::CutAtStop, message));
            return Sent::Done(Outcome::Cut);
        };
        let reply = match sent {
            Ok(reply) => {
                user.connect_failures = 0;
                reply
            }
            Err(err) if tries < user.worker.setup.transport_retries && is_transport(err.kind) => {
                let backoff = RETRY_BACKOFF * 2u32.saturating_pow(tries.min(10));
                tries += 1;
                if user.back_off(backoff).await == Outcome::Stopped {
                    return Sent::Done(Outcome::Stopped);
                }
                continue;
            }
            Err(err) => {
                observe::note(user, &unanswered(), Default::default, Some(&err.message));
                if is_connect(err.kind) {
                    // Nothing was sent: a failed attempt, without a latency to count.
                    user.record_untimed(&method, &name, (err.kind, &err.message));
                    user.connect_failed().await;
                } else {
                    let failure = Some((err.kind, err.message.as_str()));
                    user.record(&method, &name, (err.latency, None), 0, failure);
                }
                return Sent::Done(after_failure(user, request));
            }
        };
        store_cookies(user, &target.url, &reply.headers);
        let hop = Exchange {
            hop: !hops.is_empty(),
            ..Exchange::of(
                request,
                &method,
                &name,
                &target.url,
                (&body, content_type.as_ref()),
            )
        };
        // An authentication challenge answered, or a session that ended: an exchange the
        // server saw, counted (not a failure), and not the step's answer.
        let intermediate = Exchange { hop: true, ..hop };
        if reply.status == 401 {
            match login::challenged(user, &target, &reply.headers, credentials, stale_retried) {
                Ok(Answer::Retry) => {
                    stale_retried |= credentials == Carried::Digest;
                    let view = ResponseView::new(reply.status, &reply.headers, &[]);
                    observe::note(user, &intermediate, || observe::outcome_of(&view), None);
                    user.record(&method, &name, reply.timing(), reply.body_len, None);
                    continue;
                }
                Ok(Answer::Refused) => {}
                Err(err) => return Sent::Done(user.error("auth", &err)),
            }
        }
        if let Some(sent) = login::session_end(user, &hop, &reply, session_end) {
            return sent;
        }
        let Some(next) = redirect_to(request, reply.status, &reply.headers, &target.url) else {
            return Sent::Done(finish(user, &hop, reply));
        };
        let bytes = reply.body_len;
        let hop_view = ResponseView::new(reply.status, &reply.headers, &[]);
        if hops.len() == MAX_REDIRECTS {
            // A loop (or a chain too long to be one): the whole chain is one failed request,
            // counted under the step's name.
            let message = format!(
                "more than {MAX_REDIRECTS} redirects ({} exchanges, counted as this one failed request); the last went to {next}",
                MAX_REDIRECTS + 1
            );
            observe::note(
                user,
                &hop,
                || observe::outcome_of(&hop_view),
                Some(&message),
            );
            let latency = hops.iter().map(|hop| hop.latency).sum::<Duration>() + reply.latency;
            let bytes = hops.iter().map(|hop| hop.bytes).sum::<u64>() + bytes;
            hops.clear();
            let failure = Some((FailureKind::InvalidResponse, message.as_str()));
            user.record(
                &request.method,
                &request.name,
                (latency, None),
                bytes,
                failure,
            );
            return Sent::Done(after_failure(user, request));
        }
        let next_target = match scheme_switch(&target.url, &next, reply.status) {
            Some(message) => Err(message),
            None => Target::new(user, next.clone()).map_err(|_| {
                format!(
                    "HTTP {} redirected to {next}, a host the scenario does not name (allowed: {}); not followed",
                    reply.status,
                    allowed_list(user)
                )
            }),
        };
        let next_target = match next_target {
            Ok(next_target) => next_target,
            Err(message) => {
                observe::note(
                    user,
                    &hop,
                    || observe::outcome_of(&hop_view),
                    Some(&message),
                );
                let failure = Some((FailureKind::OffHostRedirect, message.as_str()));
                user.record(&method, &name, reply.timing(), bytes, failure);
                return Sent::Done(after_failure(user, request));
            }
        };
        observe::note(user, &hop, || observe::outcome_of(&hop_view), None);
        hops.push(Hop {
            method: method.clone(),
            name: name.into_owned(),
            latency: reply.latency,
            phases: reply.phases,
            bytes,
        });
        if reply.status == 303 || (matches!(reply.status, 301 | 302) && method == Method::POST) {
            method = Method::GET;
            body = Bytes::new();
            content_type = None;
        }
        name = std::borrow::Cow::Owned(hop_name(&next_target.url));
        target = Rc::new(next_target);
    }
}

/// The final response of a request: status, checks, extracts, then one sample.
fn finish(user: &mut User, exchange: &Exchange<'_>, reply: Reply) -> Outcome {
    let Exchange {
        request,
        method,
        name,
        url,
        ..
    } = *exchange;
    user.vars.set_last_status(reply.status);
    let html = reply
        .headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"));
    if html && (200..300).contains(&reply.status) {
        let mut page = url.clone();
        page.set_fragment(None);
        user.page = Some(page);
    }
    let bytes = reply.body_len;
    let kept = keeps_body(keeps_every_body(user), request, reply.status);
    let body = if kept {
        match decoded_body(&reply.headers, &reply.body, user.worker.client.max_body()) {
            Ok(body) => body,
            Err(err) => {
                let view = ResponseView::new(reply.status, &reply.headers, &[]).at(url);
                observe::note(
                    user,
                    exchange,
                    || observe::outcome_of(&view),
                    Some(&err.message),
                );
                let failure = Some((err.kind, err.message.as_str()));
                user.record(method, name, reply.timing(), bytes, failure);
                return after_failure(user, request);
            }
        }
    } else {
        // Only the start was kept: enough to quote in a failure message.
        decoded_start(&reply.headers, &reply.body)
    };
    let cut_short = !kept && (reply.body.len() as u64) < bytes;
    let view = ResponseView::new(reply.status, &reply.headers, &body).at(url);
    let (failure, next) = judge(user, request, &view, cut_short);
    let message = failure.as_ref().map(|(_, message)| message.as_str());
    observe::note(user, exchange, || observe::outcome_of(&view), message);
    let failure = failure
        .as_ref()
        .map(|(kind, message)| (*kind, message.as_str()));
    user.record(method, name, reply.timing(), bytes, failure);
    next
}

/// The status, the checks, then the extracts of a final response: the failure, if any, and
/// what the user does next. `cut_short`: the body in the view is only the start of it.
fn judge(
    user: &mut User,
    request: &Request,
    view: &ResponseView<'_>,
    cut_short: bool,
) -> (Option<(FailureKind, String)>, Outcome) {
    if let Some(scripts) = &user.worker.scenario.scripts {
        if let Err(failure) = scripts.after_response(view, &mut user.vars) {
            let failure = (failure.kind(), failure.message);
            return (Some(failure), after_failure(user, request));
        }
    }
    if !status_expected(request, view.status) {
        let message = format!("HTTP {}: {}", view.status, quote(view.body, cut_short));
        let failure = (FailureKind::Status(view.status), message);
        return (Some(failure), after_failure(user, request));
    }
    for check in &request.check {
        if let Err(failure) = check.judge(view, &user.vars) {
            return (Some(failure), after_failure(user, request));
        }
    }
    for extract in &request.extract {
        if let Err(err) = extract.apply(view, &mut user.vars) {
            let failure = (FailureKind::ExtractFailed, err.to_string());
            return (Some(failure), Outcome::Abandon);
        }
    }
    (None, Outcome::Continue)
}

/// Whether every final response's body is kept: `--check` observes them, or a script reads
/// them (`after_response`, `last_response`).
fn keeps_every_body(user: &User) -> bool {
    user.worker.setup.observe.is_some()
        || (user.worker.scenario.scripts.as_ref()).is_some_and(|scripts| scripts.reads_bodies())
}

/// What follows a failed request. One whose extracts did not run leaves variables unset: the
/// rest of the sequence would only produce template errors. In a setup run every failure
/// ends the sequence.
pub(super) fn after_failure(user: &User, request: &Request) -> Outcome {
    if request.extract.is_empty() && !user.worker.setup.failure_ends_sequence {
        Outcome::Continue
    } else {
        Outcome::Abandon
    }
}

/// An absolute URL as it is, a relative one against the scenario's host.
pub(super) fn resolve(host: Option<&url::Url>, text: &str) -> Result<url::Url, String> {
    match url::Url::parse(text) {
        Ok(url) => Ok(url),
        Err(url::ParseError::RelativeUrlWithoutBase) => match host {
            Some(host) => host
                .join(text)
                .map_err(|err| format!("{text:?} does not resolve against {host}: {err}")),
            None => Err(format!(
                "{text:?} is relative and the scenario has no host; set `host:` or pass -H"
            )),
        },
        Err(err) => Err(format!("{text:?} is not a valid URL: {err}")),
    }
}

/// A host the scenario names: an entry `host` allows every port, `host:port` only that one.
pub(super) fn host_allowed(user: &User, origin: &Endpoint) -> bool {
    let scenario = &user.worker.scenario;
    if scenario.allowed_hosts.is_empty() {
        return scenario
            .host
            .as_ref()
            .and_then(Endpoint::of)
            .is_some_and(|host| host.host == origin.host && host.port == origin.port);
    }
    scenario
        .allowed_hosts
        .iter()
        .any(|entry| entry_matches(entry, origin))
}

fn entry_matches(entry: &str, origin: &Endpoint) -> bool {
    let entry = entry.trim();
    let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
        match rest.split_once(']') {
            Some((host, tail)) => (host, tail.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => (rest, None),
        }
    } else {
        match entry.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => match port.parse::<u16>() {
                Ok(port) => (host, Some(port)),
                Err(_) => (entry, None),
            },
            _ => (entry, None),
        }
    };
    host.eq_ignore_ascii_case(&origin.host) && port.is_none_or(|port| port == origin.port)
}

fn allowed_list(user: &User) -> String {
    let scenario = &user.worker.scenario;
    if scenario.allowed_hosts.is_empty() {
        scenario
            .host
            .as_ref()
            .and_then(Endpoint::of)
            .map(|origin| origin.authority())
            .unwrap_or_else(|| "none".to_owned())
    } else {
        scenario.allowed_hosts.join(", ")
    }
}

pub(super) fn add_cookies(user: &User, url: &url::Url, headers: &mut HeaderMap) {
    let mut cookies = user.cookies.get_request_values(url).peekable();
    if cookies.peek().is_none() {
        return;
    }
    let mut cookie = String::new();
    if let Some(explicit) = headers.get(COOKIE).and_then(|value| value.to_str().ok()) {
        cookie.push_str(explicit);
    }
    for (name, value) in cookies {
        if !cookie.is_empty() {
            cookie.push_str("; ");
        }
        cookie.push_str(name);
        cookie.push('=');
        cookie.push_str(value);
    }
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        headers.insert(COOKIE, value);
    }
}

pub(super) fn store_cookies(user: &mut User, url: &url::Url, headers: &HeaderMap) {
    for value in headers.get_all(SET_COOKIE) {
        if let Ok(text) = value.to_str() {
            let _ = user.cookies.parse(text, url);
        }
    }
}

/// The start of a body, for a failure message.
fn quote(body: &[u8], more: bool) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(BODY_QUOTE)]);
    let text = text.trim();
    if body.len() > BODY_QUOTE || more {
        format!("{text}...")
    } else if text.is_empty() {
        "(empty body)".to_owned()
    } else {
        text.to_owned()
    }
}

fn random_between(low: Duration, high: Duration) -> Duration {
    if high <= low {
        return low;
    }
    let micros = rand::rng().random_range(low.as_micros() as u64..=high.as_micros() as u64);
    Duration::from_micros(micros)
}

/// A think template's text: seconds, fractions allowed, within a think time's bounds.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let seconds = trimmed
        .parse::<f64>()
        .ok()
        .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
        .ok_or_else(|| format!("expected a number of seconds, the template gave {trimmed:?}"))?;
    crate::units::from_seconds(seconds, crate::units::THINK)
        .map_err(|err| format!("the template gave {trimmed:?}: {err}"))
}

/// A repeat template's text: a whole number.
fn parse_count(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    match trimmed.parse::<f64>() {
        Ok(count) if count >= 0.0 && count.fract() == 0.0 && count <= u32::MAX as f64 => {
            Ok(count as u64)
        }
        Ok(count) if count.fract() == 0.0 && count > u32::MAX as f64 => Err(format!(
            "a repeat runs at most {} times, the template gave {trimmed:?}",
            u32::MAX
        )),
        _ => Err(format!(
            "expected a whole number of times, the template gave {trimmed:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(host: &str, port: u16) -> Endpoint {
        Endpoint {
            https: false,
            host: host.to_owned(),
            port,
        }
    }

    #[test]
    fn allowed_host_entries() {
        assert!(entry_matches("127.0.0.1:8001", &origin("127.0.0.1", 8001)));
        assert!(!entry_matches("127.0.0.1:8001", &origin("127.0.0.1", 8002)));
        assert!(entry_matches("Example.org", &origin("example.org", 443)));
        assert!(!entry_matches("example.org", &origin("evil.example", 443)));
        assert!(entry_matches("[::1]:80", &origin("::1", 80)));
    }

    #[test]
    fn relative_urls_resolve_against_the_host() {
        let host = url::Url::parse("http://127.0.0.1:8001/").unwrap();
        assert_eq!(
            resolve(Some(&host), "/api/course?x=1").unwrap().as_str(),
            "http://127.0.0.1:8001/api/course?x=1"
        );
        assert_eq!(
            resolve(None, "/api").unwrap_err(),
            "\"/api\" is relative and the scenario has no host; set `host:` or pass -H"
        );
    }

    #[test]
    fn template_numbers() {
        assert_eq!(parse_seconds(" 1.5 "), Ok(Duration::from_millis(1500)));
        assert!(parse_seconds("soon").is_err());
        assert_eq!(
            parse_seconds("1e300"),
            Err(
                "the template gave \"1e300\": a think time must be from 0s to 1d, found 1e300"
                    .to_owned()
            )
        );
        assert_eq!(parse_count("3"), Ok(3));
        assert_eq!(parse_count("3.0"), Ok(3));
        assert_eq!(
            parse_count("100000000000"),
            Err(
                "a repeat runs at most 4294967295 times, the template gave \"100000000000\""
                    .to_owned()
            )
        );
        assert_eq!(
            parse_count("2.5"),
            Err("expected a whole number of times, the template gave \"2.5\"".to_owned())
        );
    }

    #[test]
    fn failure_quotes_are_short() {
        assert_eq!(quote(b"", false), "(empty body)");
        assert_eq!(quote(&[b'a'; 300], false).len(), BODY_QUOTE + 3);
        assert_eq!(quote(b"oops", true), "oops...");
    }
}
