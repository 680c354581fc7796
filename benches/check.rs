//! `chorus run --check` on a 200-request capture: how long the check takes beyond the
//! server's own time. Target: under 2 s plus the server's time.
//!
//! The demo app runs in this process on 127.0.0.1, behind a layer that sums the time its
//! handlers take (the server's time). A student's session of 200 requests (login, the
//! pages, class and game configuration, game sessions with their telemetry, saves, the
//! time played, logout) is played against it by a plain HTTP client and written as a HAR
//! from what was really sent and answered; `chorus convert` makes the scenario and
//! `chorus run --check` replays it (2 users, each flow twice) as a child process, timed
//! whole. Printed: the check's time, the server's time during it, their difference
//! against the target, and, as a reference from the same run, the same number of requests
//! sent one after another by the plain client.
//!
//! `cargo bench --bench check` (`CHORUS_BENCH_REQUESTS=200` sets the capture's length).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::middleware::Next;
use chorus::demo::{App, AppOptions, GAME_ID, Seed};
use chorus::har::{Content, Creator, Entry, Har, Header, Log, PostData};

const TARGET_BEYOND_SERVER: Duration = Duration::from_secs(2);

/// The time the app's handlers took, and how many requests they answered.
#[derive(Default)]
struct ServerTime {
    nanos: AtomicU64,
    requests: AtomicU64,
}

impl ServerTime {
    fn take(&self) -> (Duration, u64) {
        (
            Duration::from_nanos(self.nanos.swap(0, Ordering::SeqCst)),
            self.requests.swap(0, Ordering::SeqCst),
        )
    }
}

/// The demo app on a free port, its handlers timed.
async fn serve(app: &App, time: Arc<ServerTime>) -> String {
    let router = app.router().layer(axum::middleware::from_fn(
        move |request: Request, next: Next| {
            let time = time.clone();
            async move {
                let started = Instant::now();
                let response = next.run(request).await;
                time.nanos
                    .fetch_add(started.elapsed().as_nanos() as u64, Ordering::SeqCst);
                time.requests.fetch_add(1, Ordering::SeqCst);
                response
            }
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let base = format!("http://{}", listener.local_addr().expect("bound"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

/// One exchange, as the client sent it and the server answered.
struct Sent {
    method: &'static str,
    path: String,
    body: Option<serde_json::Value>,
}

/// Plays a student's session against the app with a plain client and records it.
struct Recorder {
    client: reqwest::Client,
    base: String,
    entries: Vec<Entry>,
    sent: Vec<Sent>,
    clock_ms: i64,
}

impl Recorder {
    async fn send(
        &mut self,
        method: &'static str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let url = format!("{}{path}", self.base);
        let mut request = match method {
            "GET" => self.client.get(&url),
            _ => self.client.post(&url),
        };
        if let Some(body) = &body {
            request = request.json(body);
        }
        let started = Instant::now();
        let response = request.send().await.expect("the app answers");
        let status = response.status().as_u16();
        let headers: Vec<Header> = response
            .headers()
            .iter()
            .map(|(n, v)| Header::new(n.as_str(), v.to_str().unwrap_or_default()))
            .collect();
        let mime = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = response.text().await.expect("a body");
        let took = started.elapsed().as_secs_f64() * 1000.0;
        assert!(status < 400, "{method} {path}: {status} {text}");
        let mut request_headers = vec![
            Header::new("Host", self.base.trim_start_matches("http://")),
            Header::new("Accept", "application/json, text/plain, */*"),
        ];
        let post_data = body.as_ref().map(|body| {
            request_headers.push(Header::new("Content-Type", "application/json"));
            PostData {
                mime_type: "application/json".to_owned(),
                text: body.to_string(),
                ..PostData::default()
            }
        });
        let started_at = 1_795_597_200_000 + self.clock_ms;
        let seconds = started_at / 1000;
        self.entries.push(Entry {
            started_date_time: format!(
                "2026-11-25T{:02}:{:02}:{:02}.{:03}Z",
                seconds / 3600 % 24,
                seconds / 60 % 60,
                seconds % 60,
                started_at % 1000
            ),
            time: took,
            request: chorus::har::Request {
                method: method.to_owned(),
                url,
                http_version: "HTTP/1.1".to_owned(),
                headers: request_headers,
                post_data,
                ..chorus::har::Request::default()
            },
            response: chorus::har::Response {
                status,
                status_text: "OK".to_owned(),
                http_version: "HTTP/1.1".to_owned(),
                headers,
                content: Content {
                    size: text.len() as i64,
                    mime_type: mime,
                    text: Some(text.clone()),
                    ..Content::default()
                },
                ..chorus::har::Response::default()
            },
            ..Entry::default()
        });
        self.sent.push(Sent {
            method,
            path: path.to_owned(),
            body,
        });
        // A person's pace: the scenario gets think times, which --check leaves out.
        self.clock_ms += 1200;
        serde_json::from_str(&text).unwrap_or_default()
    }
}

/// A student's session of about `requests` requests.
async fn record(base: &str, username: &str, password: &str, requests: usize) -> Recorder {
    let mut recorder = Recorder {
        client: reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .expect("a client"),
        base: base.to_owned(),
        entries: Vec::new(),
        sent: Vec::new(),
        clock_ms: 0,
    };
    let login = recorder
        .send(
            "POST",
            "/api/v2/auth/login/glasslab",
            Some(serde_json::json!({"username": username, "password": password})),
        )
        .await;
    let session = login["sessionId"].as_str().unwrap_or_default().to_owned();
    let courses = recorder.send("GET", "/api/v2/lms/courses", None).await;
    let course = courses[0]["id"].clone();
    recorder
        .send("GET", &format!("/api/v2/data/config/{GAME_ID}"), None)
        .await;
    recorder
        .send(
            "GET",
            &format!("/api/v2/data/game/{GAME_ID}/playInfo"),
            None,
        )
        .await;
    let mut round = 0;
    while recorder.entries.len() + 7 < requests {
        let started = recorder
            .send(
                "POST",
                "/api/v2/data/session/start",
                Some(serde_json::json!({
                    "userSessionId": session, "courseId": course,
                    "deviceId": "dev-k2j3h4k2l3x9", "gameId": GAME_ID
                })),
            )
            .await;
        let game = started["gameSessionId"].clone();
        for step in 0..3 {
            recorder
                .send(
                    "POST",
                    "/api/v2/data/events",
                    Some(serde_json::json!([{
                        "gameSessionId": game, "name": "move",
                        "data": {"step": step, "round": round}, "clientTimeStamp": 1_795_597_200_000_i64 + recorder.clock_ms
                    }])),
                )
                .await;
        }
        recorder
            .send(
                "POST",
                "/api/v2/data/session/end",
                Some(serde_json::json!({"gameSessionId": game})),
            )
            .await;
        if round % 2 == 0 {
            recorder
                .send(
                    "POST",
                    &format!("/api/v2/data/game/{GAME_ID}"),
                    Some(serde_json::json!({"level": round % 12 + 1, "inventory": ["map"]})),
                )
                .await;
        } else {
            recorder
                .send(
                    "POST",
                    &format!("/api/v2/data/game/{GAME_ID}/totalTimePlayed"),
                    Some(serde_json::json!({"setTime": 60 + round})),
                )
                .await;
        }
        round += 1;
    }
    while recorder.entries.len() + 1 < requests {
        recorder
            .send(
                "GET",
                &format!("/api/v2/data/game/{GAME_ID}/playInfo"),
                None,
            )
            .await;
    }
    recorder.send("POST", "/api/user/logout", None).await;
    recorder
}

/// Runs chorus in `dir`: what it printed, how long it took, and the CPU time it used (read
/// from /proc while it runs; the last reading before it exits).
fn chorus(args: &[&str], dir: &Path) -> (String, Duration, Duration) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chorus runs");
    let stat = format!("/proc/{}/stat", child.id());
    let mut ticks = 0;
    // The output is read after the exit: the check's report is far below a pipe's buffer.
    while child.try_wait().expect("waiting for chorus").is_none() {
        if let Ok(text) = std::fs::read_to_string(&stat) {
            // utime and stime, after the parenthesised command name.
            let fields: Vec<&str> = text
                .rsplit_once(')')
                .map_or("", |(_, rest)| rest)
                .split_whitespace()
                .collect();
            let cpu: u64 = [11, 12]
                .iter()
                .filter_map(|&i| fields.get(i).and_then(|n| n.parse::<u64>().ok()))
                .sum();
            ticks = ticks.max(cpu);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let took = started.elapsed();
    let output = child.wait_with_output().expect("chorus's output");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success() || args.contains(&"--check"),
        "chorus {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The kernel counts CPU time in ticks of 1/100 s.
    (stdout, took, Duration::from_millis(ticks * 10))
}

/// The same number of requests the check sent, from the recording, one after another on one
/// connection with a plain client: the reference.
async fn plain_client(
    base: &str,
    sent: &[Sent],
    username: &str,
    password: &str,
    count: u64,
) -> Duration {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("a client");
    let started = Instant::now();
    for index in 0..count as usize {
        let at = index % sent.len();
        let exchange = &sent[at];
        let url = format!("{base}{}", exchange.path);
        let mut request = match exchange.method {
            "GET" => client.get(&url),
            _ => client.post(&url),
        };
        // Each pass through the recording logs in again, as the check's users do.
        let body = match at {
            0 => Some(serde_json::json!({"username": username, "password": password})),
            _ => exchange.body.clone(),
        };
        if let Some(body) = &body {
            request = request.json(body);
        }
        let response = request.send().await.expect("the app answers");
        let _ = response.bytes().await;
    }
    started.elapsed()
}

fn main() {
    let requests: usize = std::env::var("CHORUS_BENCH_REQUESTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let app = App::new(AppOptions {
        events_period_secs: 1,
        seed: Some(Seed {
            classes: 1,
            students: 3,
        }),
    });
    app.write_users_csv(&dir.path().join("users.csv"))
        .expect("the users are written");
    let (username, password, _) = app.seeded_users()[2].clone();
    let time = Arc::new(ServerTime::default());
    let base = runtime.block_on(serve(&app, time.clone()));
    let recorder = runtime.block_on(record(&base, &username, &password, requests));
    let har = Har {
        log: Log {
            version: "1.2".to_owned(),
            creator: Creator {
                name: "chorus bench".to_owned(),
                version: "1".to_owned(),
                comment: None,
            },
            browser: None,
            pages: Vec::new(),
            entries: recorder.entries,
            comment: None,
            tunnelled_hosts: Vec::new(),
        },
    };
    let recorded = har.log.entries.len();
    std::fs::write(
        dir.path().join("capture.har"),
        serde_json::to_string(&har).expect("a HAR serializes"),
    )
    .expect("the capture is written");
    chorus(
        &["convert", "capture.har", "-o", "scenario.yaml"],
        dir.path(),
    );
    time.take();
    let (report, check, check_cpu) = chorus(
        &[
            "run",
            "scenario.yaml",
            "--check",
            "--data",
            "users=users.csv",
            "-H",
            &base,
        ],
        dir.path(),
    );
    let (server, answered) = time.take();
    let summary = report
        .lines()
        .find(|line| line.contains(" request(s) sent: "))
        .unwrap_or("(no summary line)")
        .to_owned();
    let sent: u64 = summary
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(answered);
    let reference = runtime.block_on(plain_client(
        &base,
        &recorder.sent,
        &username,
        &password,
        sent,
    ));
    let beyond = check.saturating_sub(server);
    println!("chorus run --check on a {recorded}-request capture of the demo app");
    println!("  {summary}");
    println!(
        "  check (whole process)   {:>8.3} s  (its CPU time {:.2} s)",
        check.as_secs_f64(),
        check_cpu.as_secs_f64()
    );
    println!(
        "  server's time           {:>8.3} s  ({answered} requests answered)",
        server.as_secs_f64()
    );
    println!(
        "  check - server's time   {:>8.3} s: {} (target < {} s)",
        beyond.as_secs_f64(),
        if beyond < TARGET_BEYOND_SERVER {
            "PASS"
        } else {
            "MISS"
        },
        TARGET_BEYOND_SERVER.as_secs()
    );
    println!(
        "  reference: the same {sent} requests sent one by one by a plain client  {:.3} s (check / reference: {:.1}x)",
        reference.as_secs_f64(),
        check.as_secs_f64() / reference.as_secs_f64()
    );
}
