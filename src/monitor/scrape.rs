//! Fetching a Prometheus endpoint (plain HTTP/1.1 over hyper), bounded in time and size:
//! the IO edge of `prometheus.rs`. A scrape runs as a task of the engine's runtime and
//! leaves its answer in a slot the sampler reads at its next look, so a slow exporter never
//! holds up the second's statistics.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use url::Url;

/// A scrape that takes longer fails (the sampler looks once a second).
pub(super) const TIMEOUT: Duration = Duration::from_millis(800);
/// A body past this size fails (node_exporter's is about 60 KiB, a big application's some
/// hundreds).
pub(super) const MAX_BODY: usize = 8 << 20;

/// A scrape's answer: the second it was started for, when it ended, and the text or why
/// there is none.
pub(super) type Answer = (u64, Instant, Result<String, String>);

/// One endpoint's scrapes: at most one in flight, its answer waiting in `slot`.
#[derive(Debug)]
pub(super) struct Scraper {
    pub(super) url: Url,
    slot: Arc<Mutex<Option<Answer>>>,
    in_flight: Arc<Mutex<bool>>,
}

impl Scraper {
    pub(super) fn new(url: Url) -> Scraper {
        Scraper {
            url,
            slot: Arc::new(Mutex::new(None)),
            in_flight: Arc::new(Mutex::new(false)),
        }
    }

    /// The answer of the last scrape, if it has come.
    pub(super) fn take(&self) -> Option<Answer> {
        self.slot.lock().ok()?.take()
    }

    /// Starts a scrape for `second` on the current tokio runtime (none: nothing is started,
    /// and false is returned); one still in flight is left to end first.
    pub(super) fn start(&self, second: u64) -> bool {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        {
            let Ok(mut busy) = self.in_flight.lock() else {
                return false;
            };
            if *busy {
                return true;
            }
            *busy = true;
        }
        let (url, slot, in_flight) = (
            self.url.clone(),
            Arc::clone(&self.slot),
            Arc::clone(&self.in_flight),
        );
        runtime.spawn(async move {
            let text = match tokio::time::timeout(TIMEOUT, fetch(&url)).await {
                Ok(answer) => answer,
                Err(_) => Err(format!("no answer within {} ms", TIMEOUT.as_millis())),
            };
            if let Ok(mut slot) = slot.lock() {
                *slot = Some((second, Instant::now(), text));
            }
            if let Ok(mut busy) = in_flight.lock() {
                *busy = false;
            }
        });
        true
    }
}

/// GET the endpoint's text (status 2xx, at most `MAX_BODY` bytes, UTF-8).
pub(super) async fn fetch(url: &Url) -> Result<String, String> {
    let headers = [
        (http::header::ACCEPT, "text/plain;version=0.0.4"),
        (http::header::USER_AGENT, "chorus-monitor"),
    ];
    let response =
        crate::side_http::exchange(url, http::Method::GET, &headers, Empty::<Bytes>::new()).await?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP {}", status.as_u16()));
    }
    let body = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|err| {
            if err.is::<http_body_util::LengthLimitError>() {
                format!(
                    "the answer is larger than {}",
                    crate::size::format(MAX_BODY as u64)
                )
            } else {
                err.to_string()
            }
        })?
        .to_bytes();
    String::from_utf8(body.to_vec()).map_err(|_| "the answer is not UTF-8 text".to_owned())
}
