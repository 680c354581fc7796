//! What `chorus run --check` sees of each exchange a user had ([`Observation`]): where in the
//! scenario it came from and what answered, in the shape the recording is compared in
//! (`crate::fidelity`). Built only when a run asks for observations; a load run pays nothing.

use http::{HeaderValue, Method};

use super::user::User;
use crate::fidelity::{Observation, Outcome};
use crate::scenario::{Request, ResponseView};

/// The shape of a response, read from the engine's view of it.
pub(super) fn outcome_of(view: &ResponseView<'_>) -> Outcome {
    let header = |name: http::HeaderName| {
        view.headers
            .get(name)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
    };
    Outcome::read(
        view.status,
        header(http::header::LOCATION),
        header(http::header::CONTENT_TYPE),
        view.body,
    )
}

/// The request side of an observation: which step sent what.
#[derive(Clone, Copy)]
pub(super) struct Exchange<'a> {
    pub(super) request: &'a Request,
    pub(super) hop: bool,
    pub(super) method: &'a Method,
    pub(super) name: &'a str,
    pub(super) url: &'a url::Url,
    /// The body sent and its content type: the form fields `--check` compares with the
    /// fields the user's pages served.
    pub(super) body: &'a [u8],
    pub(super) content_type: Option<&'a HeaderValue>,
}

impl<'a> Exchange<'a> {
    pub(super) fn of(
        request: &'a Request,
        method: &'a Method,
        name: &'a str,
        url: &'a url::Url,
        (body, content_type): (&'a [u8], Option<&'a HeaderValue>),
    ) -> Exchange<'a> {
        Exchange {
            request,
            hop: false,
            method,
            name,
            url,
            body,
            content_type,
        }
    }

    /// The form fields sent.
    fn sent(&self) -> Vec<(String, String)> {
        let content_type = self
            .content_type
            .and_then(|value| value.to_str().ok())
            .or_else(|| {
                // A raw body's type is in the request's own headers.
                self.request
                    .headers
                    .iter()
                    .find(|(name, _)| name == http::header::CONTENT_TYPE)
                    .map(|(_, template)| template.source())
            });
        crate::forms::fields(content_type, self.body)
    }
}

/// Describes an exchange to the run's observer, if it has one; `outcome` is only read then.
pub(super) fn note(
    user: &User,
    exchange: &Exchange<'_>,
    outcome: impl FnOnce() -> Outcome,
    failure: Option<&str>,
) {
    let Some(observer) = &user.worker.setup.observe else {
        return;
    };
    let _ = observer.send(Observation {
        user: user.index,
        iteration: user.iteration,
        place: user.here(),
        recorded: exchange.request.recorded,
        hop: exchange.hop,
        method: exchange.method.to_string(),
        name: exchange.name.to_owned(),
        url: exchange.url.to_string(),
        sent: exchange.sent(),
        outcome: outcome(),
        failure: failure.map(str::to_owned),
    });
}

/// Tells the run's observer of a step that is not HTTP's (a socket's open, send or receive)
/// that failed: it replays no capture entry, so its failure is all `--check` judges of it. A
/// replay whose socket the server refused or closed fails the check, not only the load run.
pub(super) fn note_failure(user: &User, method: &str, name: &str, message: &str) {
    let Some(observer) = &user.worker.setup.observe else {
        return;
    };
    let _ = observer.send(Observation {
        user: user.index,
        iteration: user.iteration,
        place: user.here(),
        recorded: None,
        hop: false,
        method: method.to_owned(),
        name: name.to_owned(),
        url: String::new(),
        sent: Vec::new(),
        outcome: Outcome::read(0, None, None, b""),
        failure: Some(message.to_owned()),
    });
}
