//! A request step: render it, send it (following redirects to the scenario's hosts and
//! answering authentication challenges), judge the final response (status, checks,
//! extracts) and record one sample per exchange the server saw. Problems map onto
//! `stats::FailureKind`; nothing here stops the run.

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, Method};
use http_body_util::Full;

use super::auth::{Answer, Carried};
use super::headers::{headers, store_cookies};
use super::http::{Reply, decoded_body, decoded_start};
use super::login::{self, Sent, SessionEnd};
use super::observe::{self, Exchange};
use super::redirect::{hop_name, redirect_to, scheme_switch};
use super::request_body;
use super::response::{is_connect, is_transport, keeps_body, status_expected};
use super::step::Outcome;
use super::target::{Target, allowed_list, target};
use super::user::{Section, User};
use crate::scenario::{Request, ResponseView};
use crate::stats::{FailureKind, Phases};

/// Redirects followed for one request, as browsers do.
const MAX_REDIRECTS: usize = 10;
/// Setup runs: the first wait before a transport error is retried (then doubled each try).
const RETRY_BACKOFF: Duration = Duration::from_millis(200);
/// How much of a failed response's body a failure message quotes.
const BODY_QUOTE: usize = 200;

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
pub(super) async fn send(user: &mut User, request: &Request) -> Outcome {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_quotes_are_short() {
        assert_eq!(quote(b"", false), "(empty body)");
        assert_eq!(quote(&[b'a'; 300], false).len(), BODY_QUOTE + 3);
        assert_eq!(quote(b"oops", true), "oops...");
    }
}
