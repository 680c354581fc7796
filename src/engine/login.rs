//! What the engine does for a user's login beyond ordinary requests: HTTP authentication on
//! the wire (`auth:`: the user's credentials added where it has them, a server's challenge
//! answered, the state in `auth::Auth`) and sessions that end mid-run (`relogin:`: such an
//! answer recognised, `on_start` run again). `step` sends and counts.

use http::header::{AUTHORIZATION, LOCATION};
use http::{HeaderMap, Method};

use super::auth::{Answer, Carried};
use super::http::Reply;
use super::observe::{self, Exchange};
use super::send::after_failure;
use super::step::{Outcome, run_steps};
use super::target::Target;
use super::user::{Section, User};
use crate::scenario::{Request, ResponseView};
use crate::stats::FailureKind;

/// How a request's exchanges ended.
pub(super) enum Sent {
    /// With this outcome (the final response was judged and recorded, or the request
    /// failed).
    Done(Outcome),
    /// With an answer that says the user's session ended (`relogin:`), recorded but not
    /// judged.
    SessionEnded,
}

/// What a request does with an answer that says the user's session ended (`relogin:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SessionEnd {
    /// Nothing: outside flows, or the scenario has no `relogin:`.
    Ignored,
    /// Hands it back, so that the user logs in again.
    HandedBack,
    /// The try after logging in again: a failure.
    Failure,
}

/// Adds the user's credentials for where the exchange goes (`auth:`), unless the request
/// sets its own `Authorization`; says what the exchange carries.
pub(super) fn authorize(
    user: &mut User,
    headers: &mut HeaderMap,
    target: &Target,
    method: &Method,
    body: &[u8],
) -> Carried {
    if headers.contains_key(AUTHORIZATION) {
        return Carried::Explicit;
    }
    if user.worker.scenario.auth.is_none() {
        return Carried::Nothing;
    }
    let uri = target.uri.path_and_query().map_or("/", |p| p.as_str());
    match user.auth.authorize(&target.origin, method, uri, body) {
        Some((value, sent)) => {
            headers.insert(AUTHORIZATION, value);
            sent
        }
        None => Carried::Nothing,
    }
}

/// What a `401` asks of the user: another try with credentials (rendered from `auth:` now),
/// or nothing.
pub(super) fn challenged(
    user: &mut User,
    target: &Target,
    headers: &HeaderMap,
    sent: Carried,
    stale_retried: bool,
) -> Result<Answer, String> {
    let Some(auth) = user.worker.scenario.auth.as_ref() else {
        return Ok(Answer::Refused);
    };
    let vars = &user.vars;
    let credentials = || {
        let username = auth
            .username
            .render(vars)
            .map_err(|e| format!("username: {e}"))?;
        let password = auth
            .password
            .render(vars)
            .map_err(|e| format!("password: {e}"))?;
        Ok((username, password))
    };
    let uri = target.uri.path_and_query().map_or("/", |p| p.as_str());
    user.auth.challenged(
        &target.origin,
        uri,
        headers,
        sent,
        stale_retried,
        credentials,
    )
}

/// Whether an answer says the user's session ended (`relogin:`): a status the step does not
/// expect, or a redirect to the pattern (the login page) whatever the step expects.
fn session_ended(user: &User, request: &Request, status: u16, location: Option<&url::Url>) -> bool {
    let Some(relogin) = &user.worker.scenario.relogin else {
        return false;
    };
    let expected = request
        .expect_status
        .as_ref()
        .is_some_and(|expected| expected.contains(&status));
    (relogin.statuses.contains(&status) && !expected)
        || relogin.redirects_to_login(status, location)
}

/// An answer that says the session ended (`relogin:`), seen before anything else is done
/// with it: counted here (not a failure when handed back, a failure on the try after logging
/// in again); `None` when it is not one, or not looked for.
pub(super) fn session_end(
    user: &mut User,
    exchange: &Exchange<'_>,
    reply: &Reply,
    session_end: SessionEnd,
) -> Option<Sent> {
    if session_end == SessionEnd::Ignored {
        return None;
    }
    let (request, method, name) = (exchange.request, exchange.method, exchange.name);
    let location = reply
        .headers
        .get(LOCATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|location| exchange.url.join(location).ok());
    if !session_ended(user, request, reply.status, location.as_ref()) {
        return None;
    }
    let view = ResponseView::new(reply.status, &reply.headers, &[]);
    if session_end == SessionEnd::HandedBack {
        let intermediate = Exchange {
            hop: true,
            ..*exchange
        };
        observe::note(user, &intermediate, || observe::outcome_of(&view), None);
        user.record(method, name, reply.timing(), reply.body_len, None);
        return Some(Sent::SessionEnded);
    }
    let message = format!(
        "HTTP {}{}: the session ended again right after `on_start` logged in again (relogin)",
        reply.status,
        location.map(|to| format!(" to {to}")).unwrap_or_default()
    );
    observe::note(
        user,
        exchange,
        || observe::outcome_of(&view),
        Some(&message),
    );
    let failure = Some((FailureKind::Status(reply.status), message.as_str()));
    user.record(method, name, reply.timing(), reply.body_len, failure);
    Some(Sent::Done(after_failure(user, request)))
}

/// Runs `on_start` again, in the middle of a flow, and comes back to where the user was:
/// `Continue` when the steps all ran.
pub(super) async fn log_in_again(user: &mut User) -> Outcome {
    let scenario = user.worker.scenario.clone();
    let (section, path, iteration) = (
        user.section,
        std::mem::take(&mut user.path),
        user.iteration.take(),
    );
    user.section = Section::OnStart;
    let logged_in = Box::pin(run_steps(user, &scenario.on_start)).await;
    (user.section, user.path, user.iteration) = (section, path, iteration);
    logged_in
}
