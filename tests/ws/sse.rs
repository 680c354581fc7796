//! Event streams that end and drop: a server written here on raw sockets (so it can cut a
//! chunked body short) says what each subscription asked for (`Last-Event-ID`); chorus must
//! reconnect as a browser's `EventSource` does.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::{failures, load, row, run_once};

/// One chunk of a chunked body.
fn chunk(text: &str) -> String {
    format!("{:x}\r\n{text}\r\n", text.len())
}

/// An event source on a free port. Its first subscription gets `retry: 50` and events 1 and 2,
/// then the connection drops in the middle of the chunked body; the second gets event 3 and
/// the body's clean end; the third gets event 4 and stays open. Each subscription's
/// `Last-Event-ID` (or `None`) is kept in order.
async fn dropping_server() -> (std::net::SocketAddr, Arc<Mutex<Vec<Option<String>>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let kept = asked.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                if stream.read_exact(&mut byte).await.is_err() {
                    break;
                }
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let last_id = head.lines().find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("last-event-id")
                    .then(|| value.trim().to_owned())
            });
            let index = {
                let mut asked = kept.lock().unwrap();
                asked.push(last_id);
                asked.len()
            };
            let mut answer = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n".to_owned();
            match index {
                1 => answer.push_str(&chunk(
                    "retry: 50\nid: 1\ndata: one\n\nid: 2\ndata: two\n\nid: 9\ndata: cut",
                )),
                2 => {
                    answer.push_str(&chunk("id: 3\ndata: three\n\n"));
                    answer.push_str("0\r\n\r\n");
                }
                _ => answer.push_str(&chunk("id: 4\ndata: four\n\n")),
            }
            let _ = stream.write_all(answer.as_bytes()).await;
            if index == 1 {
                // Dropped mid-body: no last chunk.
                drop(stream);
            } else {
                held.push(stream);
            }
        }
    });
    (address, asked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stream_that_ends_or_drops_is_resubscribed_from_its_last_event() {
    let (address, asked) = dropping_server().await;
    let scenario = load(&format!(
        r#"
host: http://{address}
flows:
  - steps:
      - sse: /feed
      - receive: {{ regex: "^one$" }}
        timeout: 5s
        name: event
      - receive: {{ regex: "^two$" }}
        timeout: 5s
        name: event
      - receive: {{ regex: "^three$" }}
        timeout: 5s
        name: event
      - receive: {{ regex: "^four$" }}
        timeout: 5s
        name: event
      - close
"#
    ));
    let result = run_once(scenario, 1).await;
    assert_eq!(
        result.total.failures,
        0,
        "{:#?} {:#?}",
        failures(&result),
        super::rows(&result)
    );
    // The event cut off by the drop (id 9) was never whole: the reconnect asks from 2.
    assert_eq!(
        *asked.lock().unwrap(),
        [None, Some("2".to_owned()), Some("3".to_owned())],
        "{:#?}",
        super::rows(&result)
    );
    assert_eq!(row(&result, "SSE", "/feed"), (1, 0));
    assert_eq!(row(&result, "RECONNECT", "/feed"), (2, 0));
    assert_eq!(row(&result, "EVENT", "event"), (4, 0));
}

/// Issue 17's proof: 1,000 users each subscribed to the event source of tests/ws.rs, each
/// receiving every event the server sent it (judged by the server's count per user), and the
/// time to the first event in the report as a histogram of every user's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_subscribers_receive_every_event_sent_to_them() {
    const SUBSCRIBERS: u64 = 1000;
    let (address, seen) = super::server().await;
    let ticks = super::TICKS;
    let scenario = load(&format!(
        r#"
host: http://{address}
on_start:
  - get: "/login?user=u{{{{ vu }}}}"
flows:
  - steps:
      - sse: /events
      - receive: {{ event: tick }}
        timeout: 20s
        name: first
      - repeat: {rest}
        steps:
          - receive: {{ event: tick }}
            timeout: 20s
      - receive: {{ event: done }}
        timeout: 20s
"#,
        rest = ticks - 1
    ));
    let result = run_once(scenario, SUBSCRIBERS).await;
    assert_eq!(result.total.failures, 0, "{:#?}", failures(&result));
    let sent = seen.events_sent.lock().unwrap().clone();
    assert_eq!(sent.len() as u64, SUBSCRIBERS, "{sent:?}");
    assert!(sent.values().all(|n| *n == ticks + 1), "{sent:?}");
    let received = |name: &str| row(&result, "EVENT", name).0;
    assert_eq!(
        received("first") + received("tick") + received("done"),
        sent.values().sum::<u64>()
    );
    // The time to each user's first event, as a histogram that survives the JSON report and
    // is the HTML report's percentile row.
    let result = chorus::stats::RunResult::from_json(&result.to_json()).unwrap();
    let first = result
        .entries
        .iter()
        .find(|e| e.method == "EVENT" && e.name == "first")
        .unwrap();
    assert_eq!(first.histogram.len(), SUBSCRIBERS);
    assert!(first.percentile_us(99.0) > 0);
    let page = chorus::stats::report::html::render(&result);
    assert!(
        page.contains("<td>EVENT</td><td>first</td>"),
        "no percentile row for EVENT first in the HTML report"
    );
}
