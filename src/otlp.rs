//! `--otlp URL`: pushes the numbers of `GET /metrics` to an OpenTelemetry collector (or any
//! OTLP/HTTP receiver) every few seconds and once at the run's end, as OTLP/HTTP with JSON
//! encoding (the body is `stats::report::otlp`'s). The IO edge: one task sends, a slot of
//! one body (the newest; every push is cumulative, so an older one waiting is only replaced)
//! stands between it and the run, each push has a timeout, and a receiver that refuses or is
//! slow costs one notice line, never the run's pace or its result.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use tokio::sync::Notify;
use url::Url;

/// How long one push may take (connect, send, answer).
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the numbers are pushed unless `OTEL_METRIC_EXPORT_INTERVAL` says otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// The path a collector's OTLP/HTTP receiver takes metrics on, added to a URL without one.
pub const METRICS_PATH: &str = "/v1/metrics";

/// What `--otlp` (or the scenario's `otlp:`) asks: where, and how often.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpConfig {
    pub url: Url,
    pub interval: Duration,
}

/// `--otlp URL` checked: an `http://` URL with a host; a URL without a path gets
/// [`METRICS_PATH`] (as `OTEL_EXPORTER_OTLP_ENDPOINT` does), one with a path is used as it is.
pub fn parse_endpoint(text: &str) -> Result<Url, String> {
    let example = "e.g. http://127.0.0.1:4318 (the collector's OTLP/HTTP port)";
    let mut url = Url::parse(text.trim()).map_err(|err| {
        format!("{text:?} is not a URL ({err}); write the receiver's URL, {example}")
    })?;
    match url.scheme() {
        "http" => {}
        "https" => {
            return Err(format!(
                "{text:?}: https is not supported yet; push to a collector over http, {example}"
            ));
        }
        other => {
            return Err(format!(
                "{text:?}: expected an http:// URL, found {other}:, {example}"
            ));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{text:?} names no host; {example}"));
    }
    if url.path() == "/" || url.path().is_empty() {
        url.set_path(METRICS_PATH);
    }
    Ok(url)
}

/// The push interval from `OTEL_METRIC_EXPORT_INTERVAL`'s text (milliseconds, as the
/// OpenTelemetry SDKs read it), [`DEFAULT_INTERVAL`] when unset.
pub fn interval(env: Option<&str>) -> Result<Duration, String> {
    let Some(text) = env.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(DEFAULT_INTERVAL);
    };
    match text.parse::<u64>() {
        Ok(ms) if ms >= 100 => Ok(Duration::from_millis(ms)),
        _ => Err(format!(
            "OTEL_METRIC_EXPORT_INTERVAL={text:?}: expected milliseconds, at least 100, e.g. 5000"
        )),
    }
}

/// Nanoseconds since the Unix epoch, as OTLP's timestamps are.
pub fn now_unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The body of a push, made from the numbers now: (start, now) in Unix nanoseconds; none
/// when there is nothing to push between the run's start and end (a cluster's master).
pub type Source = Arc<dyn Fn(u64, u64) -> Option<Value> + Send + Sync>;

/// Where a notice goes (the terminal's stderr in `chorus run`).
pub type Say = Arc<dyn Fn(&str) + Send + Sync>;

/// The slot between the run and the sending task.
#[derive(Default)]
struct Slot {
    body: Mutex<Option<Vec<u8>>>,
    closed: AtomicBool,
    wake: Notify,
}

impl Slot {
    fn put(&self, body: Vec<u8>) {
        if let Ok(mut slot) = self.body.lock() {
            *slot = Some(body);
        }
        self.wake.notify_one();
    }
}

/// A run's pushes: started with the run, finished with its result.
pub struct Pusher {
    slot: Arc<Slot>,
    start_unix_nanos: u64,
    ticker: tokio::task::JoinHandle<()>,
    sender: tokio::task::JoinHandle<()>,
}

impl Pusher {
    /// Pushes `source`'s body every `config.interval` from now on, on the current runtime.
    pub fn start(config: &OtlpConfig, source: Source, notify: Say) -> Pusher {
        let slot = Arc::new(Slot::default());
        let start_unix_nanos = now_unix_nanos();
        let ticker = tokio::spawn({
            let slot = slot.clone();
            let every = config.interval;
            async move {
                let mut ticks = tokio::time::interval(every);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                ticks.tick().await;
                loop {
                    ticks.tick().await;
                    if let Some(body) = source(start_unix_nanos, now_unix_nanos()) {
                        slot.put(serde_json::to_vec(&body).unwrap_or_default());
                    }
                }
            }
        });
        let sender = tokio::spawn(send_all(config.url.clone(), slot.clone(), notify));
        Pusher {
            slot,
            start_unix_nanos,
            ticker,
            sender,
        }
    }

    /// When the pushes' counts start (every point's `startTimeUnixNano`).
    pub fn start_unix_nanos(&self) -> u64 {
        self.start_unix_nanos
    }

    /// The last push, `last`'s body, replacing any still waiting; waits for it at most twice
    /// [`PUSH_TIMEOUT`] (a push under way, then this one), then gives up.
    pub async fn finish(self, last: Value) {
        self.ticker.abort();
        self.slot.put(serde_json::to_vec(&last).unwrap_or_default());
        self.slot.closed.store(true, Ordering::Release);
        self.slot.wake.notify_one();
        let sender = self.sender;
        let abort = sender.abort_handle();
        if tokio::time::timeout(2 * PUSH_TIMEOUT + Duration::from_millis(200), sender)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}

/// Sends each body put in the slot until it is closed and empty; the first failure is said
/// once, with what to check.
async fn send_all(url: Url, slot: Arc<Slot>, notify: Say) {
    let mut said = false;
    loop {
        let body = slot.body.lock().ok().and_then(|mut b| b.take());
        let Some(body) = body else {
            if slot.closed.load(Ordering::Acquire) {
                return;
            }
            slot.wake.notified().await;
            continue;
        };
        let outcome = match tokio::time::timeout(PUSH_TIMEOUT, post(&url, body)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("no answer within {} s", PUSH_TIMEOUT.as_secs())),
        };
        if let Err(err) = outcome
            && !said
        {
            said = true;
            notify(&format!(
                "--otlp {url}: a push failed ({err}); the run goes on, and later failures are not said"
            ));
        }
    }
}

/// One `POST` of an OTLP/HTTP JSON body; a status that is not 2xx fails.
async fn post(url: &Url, body: Vec<u8>) -> Result<(), String> {
    let headers = [
        (http::header::CONTENT_TYPE, "application/json"),
        (http::header::USER_AGENT, "chorus-otlp"),
    ];
    let body = Full::new(Bytes::from(body));
    let response = crate::side_http::exchange(url, http::Method::POST, &headers, body).await?;
    let status = response.status();
    // Read the answer (an ExportMetricsServiceResponse) so the connection ends cleanly.
    let _ = response.into_body().collect().await;
    if !status.is_success() {
        return Err(format!("HTTP {}", status.as_u16()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_without_a_path_gets_the_metrics_path() {
        assert_eq!(
            parse_endpoint("http://127.0.0.1:4318").unwrap().as_str(),
            "http://127.0.0.1:4318/v1/metrics"
        );
        assert_eq!(
            parse_endpoint("http://collector:4318/otlp/v1/metrics")
                .unwrap()
                .as_str(),
            "http://collector:4318/otlp/v1/metrics"
        );
    }

    #[test]
    fn a_malformed_endpoint_is_refused_with_advice() {
        assert_eq!(
            parse_endpoint("localhost:4318").unwrap_err(),
            "\"localhost:4318\": expected an http:// URL, found localhost:, e.g. http://127.0.0.1:4318 (the collector's OTLP/HTTP port)"
        );
        assert_eq!(
            parse_endpoint("not a url").unwrap_err(),
            "\"not a url\" is not a URL (relative URL without a base); write the receiver's URL, e.g. http://127.0.0.1:4318 (the collector's OTLP/HTTP port)"
        );
        assert!(
            parse_endpoint("https://collector:4318")
                .unwrap_err()
                .contains("https is not supported yet")
        );
    }

    #[test]
    fn the_interval_is_read_as_the_sdks_read_it() {
        assert_eq!(interval(None).unwrap(), DEFAULT_INTERVAL);
        assert_eq!(interval(Some("1000")).unwrap(), Duration::from_secs(1));
        assert_eq!(
            interval(Some("5s")).unwrap_err(),
            "OTEL_METRIC_EXPORT_INTERVAL=\"5s\": expected milliseconds, at least 100, e.g. 5000"
        );
    }
}
