//! What the engine does for a user's login beyond ordinary requests: HTTP authentication on
//! the wire (`auth:`: the user's credentials added where it has them, a server's challenge
//! answered, the state in `auth::Auth`) and sessions that end mid-run (`relogin:`: such an
//! answer recognised, `on_start` run again). `step` sends and counts.

use http::header::AUTHORIZATION;
use http::{HeaderMap, Method};

use super::auth::{Answer, Carried};
use super::step::{Outcome, Target, run_steps};
use super::user::{Section, User};
use crate::scenario::Request;

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
pub(super) fn session_ended(
    user: &User,
    request: &Request,
    status: u16,
    location: Option<&url::Url>,
) -> bool {
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
