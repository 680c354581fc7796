//! Issue 17: an event stream through the recorder. Chromium subscribes with `EventSource`
//! through reverse mode to an event source that sends each event only after the page has
//! acknowledged the one before: a recorder that held the stream back would stall it. The
//! capture's entry carries the events as Chromium's HAR does (`_eventSourceMessages`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::response::Html;
use axum::response::sse::{Event, Sse};
use axum::routing::get;

use crate::util::record::*;
use crate::util::{self, browser::Browser};

/// Events the source sends.
pub(super) const EVENTS: u64 = 3;

/// The source's own record, in order: `sent N`, `ack N`.
#[derive(Default)]
pub(super) struct Feed {
    pub(super) log: Mutex<Vec<String>>,
    pub(super) acked: Option<tokio::sync::watch::Sender<u64>>,
}

const PAGE: &str = r#"<!doctype html><title>feed</title><p id="log"></p><script>
const log = document.getElementById('log');
const source = new EventSource('/feed');
source.onmessage = (e) => {
  log.textContent += e.data + ' ';
  if (e.data === '3') source.close();
  fetch('/ack?n=' + e.data);
};
</script>"#;

pub(super) async fn feed(State(state): State<Arc<Feed>>) -> impl axum::response::IntoResponse {
    let acked = state.acked.as_ref().unwrap().subscribe();
    let stream = futures_util::stream::unfold((1u64, acked), move |(n, mut acked)| {
        let state = state.clone();
        async move {
            // Each event after the page acknowledged the one before (bounded: a held-back
            // stream ends here, and the page never shows every event).
            let wait = acked.wait_for(|seen| *seen + 1 >= n);
            if !matches!(
                tokio::time::timeout(Duration::from_secs(10), wait).await,
                Ok(Ok(_))
            ) {
                return None;
            }
            if n > EVENTS {
                return None;
            }
            state.log.lock().unwrap().push(format!("sent {n}"));
            let event = Event::default().id(n.to_string()).data(n.to_string());
            Some((Ok::<_, std::convert::Infallible>(event), (n + 1, acked)))
        }
    });
    Sse::new(stream)
}

pub(super) async fn ack(
    State(state): State<Arc<Feed>>,
    Query(query): Query<std::collections::BTreeMap<String, u64>>,
) -> &'static str {
    let n = query.get("n").copied().unwrap_or(0);
    state.log.lock().unwrap().push(format!("ack {n}"));
    let _ = state.acked.as_ref().unwrap().send(n);
    "ok"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_sees_each_event_as_it_is_sent_and_the_capture_keeps_them() {
    let (acked, _) = tokio::sync::watch::channel(0);
    let state = Arc::new(Feed {
        log: Mutex::default(),
        acked: Some(acked),
    });
    let router = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/feed", get(feed))
        .route("/ack", get(ack))
        .with_state(state.clone());
    let app = serve_http(router).await;
    let out = util::output_dir("record_event_stream_chromium");
    let target = format!("http://{app}");
    let recorder = start(reverse(&target, &out.join("capture.har"))).await;
    let browser = Browser::start(&[], &out).await;
    browser.goto(&recorder.url()).await;
    browser
        .wait_text("#log", Duration::from_secs(30), |text| {
            text.trim() == "1 2 3"
        })
        .await;
    browser.close().await;
    let expected: Vec<String> = (1..=EVENTS)
        .flat_map(|n| [format!("sent {n}"), format!("ack {n}")])
        .collect();
    until("the last acknowledgement", || {
        state.log.lock().unwrap().len() == expected.len()
    })
    .await;
    assert_eq!(*state.log.lock().unwrap(), expected);
    // The page, the stream (once it ended) and the acknowledgements.
    until("every exchange to be written", || {
        recorder.summary().exchanges >= 2 + EVENTS
    })
    .await;
    let summary = recorder.shutdown().await;
    let har = read_valid(&summary.path);
    let stream = har
        .log
        .entries
        .iter()
        .find(|e| e.request.url.ends_with("/feed"))
        .expect("the event stream's entry");
    assert_eq!(stream.resource_type.as_deref(), Some("eventsource"));
    let events = &stream.event_source_messages;
    let seen: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| (e.event_name.as_str(), e.event_id.as_str(), e.data.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("message", "1", "1"),
            ("message", "2", "2"),
            ("message", "3", "3")
        ]
    );
    assert!(
        events.windows(2).all(|pair| pair[0].time <= pair[1].time),
        "{events:?}"
    );
}
