//! The headers of one exchange: the scenario's defaults and the request's own rendered,
//! the user agent, trace context, referer, content type and the user's cookies; and the
//! cookies a response sets, stored in the user's jar.

use http::header::{CONTENT_TYPE, COOKIE, REFERER, SET_COOKIE, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue};

use super::step::Outcome;
use super::trace;
use super::user::User;
use crate::scenario::Request;

pub(super) const USER_AGENT_VALUE: &str = concat!("chorus/", env!("CARGO_PKG_VERSION"));
/// The W3C trace context headers (`--trace-headers`).
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const BAGGAGE: HeaderName = HeaderName::from_static("baggage");

/// The headers of one exchange: the scenario's defaults, the request's own, a body's
/// content type and the user's cookies for this URL.
pub(super) fn headers(
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
