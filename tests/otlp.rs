//! `--otlp URL`: a real HTTP server on 127.0.0.1 takes the pushes as an OpenTelemetry
//! collector's OTLP/HTTP receiver would (`POST /v1/metrics`, `application/json`), decodes
//! each into structs that follow the OTLP JSON encoding of `ExportMetricsServiceRequest`
//! field by field and refuse any other field (the `opentelemetry-proto` crate's serde types
//! would pull the OpenTelemetry SDK into the build), and the last push's request counts are
//! judged against the demo app's own count. A receiver that refuses or never answers costs a
//! notice line, not the run.

#![expect(
    dead_code,
    reason = "the OTLP message structs name every field its encoding has, so that any other \
              is refused; the test reads only some"
)]

use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;

use crate::util::{self, free_port, output_dir};

/// A 64-bit integer of the protobuf-JSON mapping: a decimal string (what the mapping
/// writes), or a number (what receivers also accept).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
struct Int64(u64);

impl<'de> Deserialize<'de> for Int64 {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Text(String),
            Number(u64),
        }
        match Either::deserialize(deserializer)? {
            Either::Number(n) => Ok(Int64(n)),
            Either::Text(t) => t.parse().map(Int64).map_err(serde::de::Error::custom),
        }
    }
}

// opentelemetry/proto/collector/metrics/v1 and metrics/v1, common/v1, resource/v1, in the
// OTLP JSON encoding: lowerCamelCase names, enums as integers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ExportMetricsServiceRequest {
    resource_metrics: Vec<ResourceMetrics>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ResourceMetrics {
    resource: Resource,
    scope_metrics: Vec<ScopeMetrics>,
    #[serde(default)]
    schema_url: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Resource {
    attributes: Vec<KeyValue>,
    #[serde(default)]
    dropped_attributes_count: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ScopeMetrics {
    scope: InstrumentationScope,
    metrics: Vec<Metric>,
    #[serde(default)]
    schema_url: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct InstrumentationScope {
    name: String,
    #[serde(default)]
    version: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct KeyValue {
    key: String,
    value: AnyValue,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AnyValue {
    string_value: Option<String>,
    int_value: Option<Int64>,
    double_value: Option<f64>,
    bool_value: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Metric {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    unit: String,
    sum: Option<Sum>,
    gauge: Option<Gauge>,
    summary: Option<Summary>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Sum {
    data_points: Vec<NumberDataPoint>,
    /// 1 delta, 2 cumulative.
    aggregation_temporality: i32,
    is_monotonic: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Gauge {
    data_points: Vec<NumberDataPoint>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NumberDataPoint {
    #[serde(default)]
    attributes: Vec<KeyValue>,
    start_time_unix_nano: Option<Int64>,
    time_unix_nano: Int64,
    as_int: Option<Int64>,
    as_double: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Summary {
    data_points: Vec<SummaryDataPoint>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SummaryDataPoint {
    #[serde(default)]
    attributes: Vec<KeyValue>,
    start_time_unix_nano: Option<Int64>,
    time_unix_nano: Int64,
    count: Int64,
    sum: f64,
    quantile_values: Vec<ValueAtQuantile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ValueAtQuantile {
    quantile: f64,
    value: f64,
}

/// A point's string attributes.
fn labels(attributes: &[KeyValue]) -> BTreeMap<String, String> {
    attributes
        .iter()
        .map(|kv| {
            let value = kv.value.string_value.clone().expect("string attributes");
            (kv.key.clone(), value)
        })
        .collect()
}

impl ExportMetricsServiceRequest {
    fn metric(&self, name: &str) -> Option<&Metric> {
        self.resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .find(|m| m.name == name)
    }

    /// A cumulative monotonic sum's points: (name, method) → (start, count).
    fn counter(&self, name: &str) -> BTreeMap<(String, String), (u64, u64)> {
        let Some(metric) = self.metric(name) else {
            return BTreeMap::new();
        };
        let sum = metric.sum.as_ref().expect("a counter is a sum");
        assert_eq!(sum.aggregation_temporality, 2, "{name}: cumulative");
        assert!(sum.is_monotonic, "{name}: monotonic");
        sum.data_points
            .iter()
            .map(|p| {
                let labels = labels(&p.attributes);
                let key = (labels["name"].clone(), labels["method"].clone());
                let start = p.start_time_unix_nano.expect("a start time").0;
                assert!(start <= p.time_unix_nano.0);
                (key, (start, p.as_int.expect("an integer count").0))
            })
            .collect()
    }

    fn users(&self) -> u64 {
        let metric = self.metric("chorus.users").expect("chorus.users");
        let gauge = metric.gauge.as_ref().expect("users is a gauge");
        gauge.data_points[0].as_int.expect("an integer").0
    }

    /// When the push was made: the time of its users gauge.
    fn made_at(&self) -> u64 {
        let metric = self.metric("chorus.users").expect("chorus.users");
        let gauge = metric.gauge.as_ref().expect("users is a gauge");
        gauge.data_points[0].time_unix_nano.0
    }
}

/// What the receiver got: each push decoded, and how many bodies would not decode.
#[derive(Default)]
struct Received {
    pushes: Vec<ExportMetricsServiceRequest>,
    refused: Vec<String>,
}

/// An OTLP/HTTP receiver on 127.0.0.1: `POST /v1/metrics` with a JSON body.
async fn receiver() -> (String, Arc<Mutex<Received>>) {
    let received: Arc<Mutex<Received>> = Arc::default();
    let noted = received.clone();
    let app = axum::Router::new().route(
        "/v1/metrics",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let noted = noted.clone();
            async move {
                let json = headers
                    .get("content-type")
                    .is_some_and(|v| v == "application/json");
                let decoded = serde_json::from_slice::<ExportMetricsServiceRequest>(&body);
                let mut noted = noted.lock().unwrap();
                match decoded {
                    Ok(request) if json => {
                        noted.pushes.push(request);
                        (StatusCode::OK, "{}")
                    }
                    Ok(_) => {
                        noted.refused.push(format!("content-type {headers:?}"));
                        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}")
                    }
                    Err(err) => {
                        noted
                            .refused
                            .push(format!("{err}: {}", String::from_utf8_lossy(&body)));
                        (StatusCode::BAD_REQUEST, "{}")
                    }
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, received)
}

/// `chorus run --url DEMO --headless -u 4 -t SECONDS --otlp TARGET`, pushing every second;
/// the binary runs on a blocking thread while the test's servers answer, and must end
/// within a minute (a hang guard, not a timing goal).
async fn run_pushing(demo: &str, target: &str, seconds: u64, dir: &std::path::Path) -> Output {
    run_pushing_with(demo, target, seconds, dir, &["--headless"]).await
}

/// [`run_pushing`] driven another way than `--headless` (`way`: the page's flags).
async fn run_pushing_with(
    demo: &str,
    target: &str,
    seconds: u64,
    dir: &std::path::Path,
    way: &[&str],
) -> Output {
    let mut args: Vec<String> = [
        "run",
        "--url",
        demo,
        "-u",
        "4",
        "-r",
        "4",
        "-t",
        &format!("{seconds}s"),
        "--otlp",
        target,
        "--json",
        "result.json",
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(way.iter().map(|a| (*a).to_owned()));
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chorus"))
            .args(&args)
            .current_dir(&dir)
            .env("NO_COLOR", "1")
            .env("OTEL_METRIC_EXPORT_INTERVAL", "1000")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("chorus {args:?} did not end");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

fn result_total(dir: &std::path::Path) -> u64 {
    let text = std::fs::read_to_string(dir.join("result.json")).unwrap();
    let result: serde_json::Value = serde_json::from_str(&text).unwrap();
    result["total"]["requests"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_decode_as_otlp_and_the_last_counts_what_the_demo_app_counted() {
    let dir = output_dir("otlp_pushes");
    let (demo, _app) = util::demo_app(Default::default()).await;
    let (receiver, received) = receiver().await;
    let demo_url = demo.url();
    let output = run_pushing(&demo_url, &receiver, 4, &dir).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("--otlp"), "{stderr}");

    let seen = util::demo_stats(demo_url.trim_end_matches('/')).await["requests_total"]
        .as_u64()
        .unwrap();
    let received = std::mem::take(&mut *received.lock().unwrap());
    assert!(received.refused.is_empty(), "{:#?}", received.refused);
    // In the order they were made: on a loaded machine a periodic push still on its way can
    // arrive after the final one.
    let mut pushes = received.pushes;
    pushes.sort_by_key(|push| push.made_at());
    let pushes = &pushes;
    // Pushes while it ran (every second for 4 s), then the last one.
    assert!(pushes.len() >= 3, "{} pushes", pushes.len());
    for push in pushes.iter() {
        let resource = labels(&push.resource_metrics[0].resource.attributes);
        assert_eq!(resource["service.name"], "chorus");
        assert_eq!(
            push.resource_metrics[0].scope_metrics[0].scope.name,
            "chorus"
        );
        for metric in push
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics[0].metrics)
        {
            let kinds = [
                metric.sum.is_some(),
                metric.gauge.is_some(),
                metric.summary.is_some(),
            ];
            assert_eq!(kinds.iter().filter(|k| **k).count(), 1, "{metric:?}");
        }
    }
    assert!(
        pushes.iter().any(|p| p.users() > 0),
        "no push saw a user running"
    );
    // Cumulative: one start time, counts that never fall.
    let counts: Vec<_> = pushes
        .iter()
        .map(|p| p.counter("chorus.requests"))
        .collect();
    let starts: std::collections::BTreeSet<u64> = counts
        .iter()
        .flat_map(|c| c.values().map(|(start, _)| *start))
        .collect();
    assert_eq!(starts.len(), 1, "{starts:?}");
    for pair in counts.windows(2) {
        for (key, (_, count)) in &pair[0] {
            let later = pair[1]
                .get(key)
                .unwrap_or_else(|| panic!("{key:?} is in a push and not in the next: {pair:?}"));
            assert!(later.1 >= *count, "{key:?} fell: {pair:?}");
        }
    }

    // The last push: the run's whole count, as the demo app counted it.
    let last = pushes.last().unwrap();
    assert_eq!(last.users(), 0);
    let pushed: u64 = last
        .counter("chorus.requests")
        .values()
        .map(|(_, n)| n)
        .sum();
    assert!(seen > 0);
    assert_eq!(pushed, seen, "pushed against the demo app's count");
    assert_eq!(pushed, result_total(&dir), "pushed against the JSON result");
    let failures: u64 = last
        .counter("chorus.failures")
        .values()
        .map(|(_, n)| n)
        .sum();
    assert_eq!(failures, 0);
    let latency = last.metric("chorus.latency").expect("chorus.latency");
    assert_eq!(latency.unit, "s");
    let summary = latency.summary.as_ref().expect("latency is a summary");
    for point in &summary.data_points {
        let quantiles: Vec<f64> = point.quantile_values.iter().map(|q| q.quantile).collect();
        assert_eq!(quantiles, [0.5, 0.9, 0.95, 0.99]);
        assert!(
            point
                .quantile_values
                .windows(2)
                .all(|w| w[0].value <= w[1].value)
        );
        assert!(point.count.0 > 0 && point.sum > 0.0);
    }
    let monitors = last.metric("chorus.monitor").expect("chorus.monitor");
    let series: Vec<String> = monitors
        .gauge
        .as_ref()
        .unwrap()
        .data_points
        .iter()
        .map(|p| labels(&p.attributes)["series"].clone())
        .collect();
    assert!(series.iter().any(|s| s == "chorus.memory"), "{series:?}");
    demo.shutdown().await;
}

/// With the page: it pushes while the run goes (`--autostart`) and the whole run at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_pushes_as_the_run_goes_and_at_its_end() {
    let dir = output_dir("otlp_page");
    let (demo, _app) = util::demo_app(Default::default()).await;
    let (receiver, received) = receiver().await;
    let demo_url = demo.url();
    let port = free_port().to_string();
    let way = ["--autostart", "--autoquit", "0", "--web-port", &port];
    let output = run_pushing_with(&demo_url, &receiver, 3, &dir, &way).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let seen = util::demo_stats(demo_url.trim_end_matches('/')).await["requests_total"]
        .as_u64()
        .unwrap();
    let received = std::mem::take(&mut *received.lock().unwrap());
    assert!(received.refused.is_empty(), "{:#?}", received.refused);
    assert!(
        received.pushes.iter().any(|p| p.users() > 0),
        "no push while the run went ({} pushes)",
        received.pushes.len()
    );
    let last = received.pushes.last().unwrap();
    let pushed: u64 = last
        .counter("chorus.requests")
        .values()
        .map(|(_, n)| n)
        .sum();
    assert!(seen > 0);
    assert_eq!(pushed, seen, "pushed against the demo app's count");
    assert_eq!(pushed, result_total(&dir), "pushed against the JSON result");
    demo.shutdown().await;
}

/// A receiver that takes the connection and never answers.
async fn silent_receiver() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    (base, held)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_refuses_or_never_answers_costs_one_line_not_the_run() {
    let (demo, _app) = util::demo_app(Default::default()).await;
    let demo_url = demo.url();
    let refusing = format!("http://127.0.0.1:{}", free_port());
    let (silent, held) = silent_receiver().await;
    for (name, target, why) in [
        ("otlp_refused", refusing.as_str(), "cannot connect"),
        ("otlp_silent", silent.as_str(), "no answer within 2 s"),
    ] {
        let dir = output_dir(name);
        let before = util::demo_stats(demo_url.trim_end_matches('/')).await["requests_total"]
            .as_u64()
            .unwrap();
        let output = run_pushing(&demo_url, target, 3, &dir).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        let notices: Vec<&str> = stderr.lines().filter(|l| l.contains("--otlp")).collect();
        assert_eq!(notices.len(), 1, "{target}: {stderr}");
        assert!(
            notices[0].starts_with(&format!(
                "chorus: --otlp {target}/v1/metrics: a push failed ("
            )) && notices[0].contains(why)
                && notices[0].ends_with("the run goes on, and later failures are not said"),
            "{}",
            notices[0]
        );
        // The run itself: every request counted, as the app saw them.
        let after = util::demo_stats(demo_url.trim_end_matches('/')).await["requests_total"]
            .as_u64()
            .unwrap();
        assert!(after > before);
        assert_eq!(result_total(&dir), after - before, "{target}");
    }
    held.abort();
    demo.shutdown().await;
}

#[test]
fn a_malformed_otlp_url_is_refused_before_the_run() {
    let dir = output_dir("otlp_bad_input");
    let output = util::chorus(
        &[
            "run",
            "--url",
            "http://127.0.0.1:9/",
            "--headless",
            "--otlp",
            "localhost:4318",
        ],
        &dir,
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "invalid value 'localhost:4318' for '--otlp <URL>': \"localhost:4318\": expected an http:// URL, found localhost:, e.g. http://127.0.0.1:4318"
        ),
        "{stderr}"
    );

    // The same in a scenario file, with its place.
    std::fs::write(
        dir.join("scenario.yaml"),
        "host: http://127.0.0.1:9\notlp: ftp://collector\nflows:\n  - name: a\n    steps:\n      - get: /\n",
    )
    .unwrap();
    let output = util::chorus(&["run", "scenario.yaml", "--headless"], &dir);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "scenario.yaml:2:7: otlp: \"ftp://collector\": expected an http:// URL, found ftp:"
        ),
        "{stderr}"
    );
    // And an interval that is not milliseconds.
    let output = Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args(["run", "--url", "http://127.0.0.1:9/", "--headless"])
        .args(["--otlp", "http://127.0.0.1:4318"])
        .env("OTEL_METRIC_EXPORT_INTERVAL", "5s")
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("OTEL_METRIC_EXPORT_INTERVAL=\"5s\": expected milliseconds"),
        "{stderr}"
    );
}

/// A `--processes` run (a master and its worker processes) pushes the merged numbers while
/// it goes, not only at its end; the last push is the run's whole count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processes_run_pushes_as_it_goes_and_at_its_end() {
    let dir = output_dir("otlp_processes");
    let (demo, _app) = util::demo_app(Default::default()).await;
    let (receiver, received) = receiver().await;
    let demo_url = demo.url();
    let way = ["--headless", "--processes", "2"];
    let output = run_pushing_with(&demo_url, &receiver, 4, &dir, &way).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let seen = util::demo_stats(demo_url.trim_end_matches('/')).await["requests_total"]
        .as_u64()
        .unwrap();
    let received = std::mem::take(&mut *received.lock().unwrap());
    assert!(received.refused.is_empty(), "{:#?}", received.refused);
    let pushes = &received.pushes;
    let requests = |push: &ExportMetricsServiceRequest| -> u64 {
        push.counter("chorus.requests")
            .values()
            .map(|(_, n)| n)
            .sum()
    };
    // While it ran: pushes with users running and some requests counted already.
    let live = pushes[..pushes.len().saturating_sub(1)]
        .iter()
        .filter(|p| p.users() > 0 && requests(p) > 0)
        .count();
    assert!(
        live >= 2,
        "{live} live pushes of {}: {stderr}",
        pushes.len()
    );
    let last = pushes.last().unwrap();
    assert_eq!(last.users(), 0);
    assert!(seen > 0);
    assert_eq!(requests(last), seen, "pushed against the demo app's count");
    assert_eq!(
        requests(last),
        result_total(&dir),
        "pushed against the JSON result"
    );
    demo.shutdown().await;
}
