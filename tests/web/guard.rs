//! Issue 14 H3: no other web site can drive the page. A page served from another origin
//! (`attacker.test`, mapped to 127.0.0.1 in Chromium) tries what the reliability report did —
//! a cross-site form POST to `/swarm` naming a host of its choosing, a `text/plain` fetch to
//! `/api/start`, `<img>` GETs to `/stop` and `/stats/reset` — in real Chromium, and the run
//! is untouched: the host it names receives nothing, and the run's state is what it was. A
//! name rebound to 127.0.0.1 (DNS rebinding) gets nothing either.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::Path;
use axum::response::Html;
use axum::routing::get;
use serde_json::{Value, json};

use super::{setup, until};
use crate::util::{self, browser::Browser};

/// The attacker's page for `phase`: `a` (nothing runs: try to start one against `decoy`) or
/// `b` (a run is going: try to stop it and reset its statistics). It sets its title to
/// `done` when every attempt has had its answer.
fn attack_page(phase: &str, page: &str, decoy: &str) -> String {
    let attempts = match phase {
        "a" => format!(
            r#"
            await new Promise((done) => {{
              const sink = document.getElementById("sink");
              sink.onload = done;
              const form = document.getElementById("swarm");
              form.action = "{page}/swarm";
              form.submit();
            }});
            await fetch("{page}/api/start", {{
              method: "POST", mode: "no-cors", headers: {{ "Content-Type": "text/plain" }},
              body: JSON.stringify({{ users: 2, spawn_rate: 2, host: "{decoy}" }}),
            }}).then(() => log("fetch answered"), (e) => log("fetch failed " + e));"#
        ),
        _ => format!(
            r#"
            for (const path of ["/stop", "/stats/reset", "/stop?token=", "/api/stop"]) {{
              await new Promise((done) => {{
                const img = new Image();
                img.onload = img.onerror = done;
                img.src = "{page}" + path;
              }});
            }}
            for (const path of ["/api/reset", "/api/stop"]) {{
              await fetch("{page}" + path, {{ method: "POST", mode: "no-cors" }})
                .then(() => log(path + " answered"), (e) => log(path + " failed " + e));
            }}"#
        ),
    };
    format!(
        r#"<!doctype html><html><head><title>attacking</title></head><body>
        <iframe name="sink" id="sink"></iframe>
        <form id="swarm" method="POST" target="sink">
          <input name="user_count" value="2"><input name="spawn_rate" value="2">
          <input name="host" value="{decoy}">
        </form>
        <pre id="log"></pre>
        <script>
          function log(line) {{ document.getElementById("log").textContent += line + "\n"; }}
          (async () => {{
            {attempts}
            document.title = "done";
          }})();
        </script></body></html>"#
    )
}

/// Serves the attacker's pages on a port of 127.0.0.1 of its own.
async fn attacker(page: String, decoy: String) -> SocketAddr {
    let router = axum::Router::new().route(
        "/{phase}",
        get(move |Path(phase): Path<String>| {
            let html = attack_page(&phase, &page, &decoy);
            async move { Html(html) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

async fn attack(browser: &Browser, url: &str) {
    browser.goto(url).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let title = browser.script("return document.title").await;
        if title == "done" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the attacker's page never finished ({title})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn get_json(url: &str) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_web_site_cannot_start_stop_or_reset_a_run_in_chromium() {
    let setup = setup().await;
    let page = setup.page.url();
    let port = setup.page.local_addr().port();
    let target = setup.demo.url();
    let (decoy, _decoy_app) = util::demo_app(Default::default()).await;
    let attacker = attacker(page.clone(), decoy.url()).await;
    let rules = "--host-resolver-rules=MAP attacker.test 127.0.0.1, MAP rebind.test 127.0.0.1";
    let mut browser = Browser::start(&[rules.to_owned()], &util::output_dir("web_guard")).await;

    // Nothing runs: the attacker tries to start a run against its own host.
    attack(
        &browser,
        &format!("http://attacker.test:{}/a", attacker.port()),
    )
    .await;
    browser.screenshot("attack-start").await;
    let state = get_json(&format!("{page}/api/state")).await;
    assert_eq!(state["state"], "ready", "{state}");
    assert_eq!(state["runs"], 0, "{state}");
    let decoy_saw = util::demo_stats(&decoy.url()).await;
    assert_eq!(decoy_saw["requests_total"], 0, "{decoy_saw}");
    assert_eq!(
        util::demo_stats(&target).await["requests_total"],
        0,
        "nothing was sent anywhere"
    );

    // A run is going: the attacker tries to stop it and to reset its statistics.
    let http = reqwest::Client::new();
    let started = http
        .post(format!("{page}/api/start"))
        .json(&json!({"users": 2, "spawn_rate": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 200);
    let before = until("requests counted", Duration::from_secs(20), async || {
        let stats = get_json(&format!("{page}/api/stats")).await;
        stats["aggregated"]["requests"].as_u64().filter(|n| *n >= 4)
    })
    .await;
    attack(
        &browser,
        &format!("http://attacker.test:{}/b", attacker.port()),
    )
    .await;
    // Commands reach the run in order: once a change of users made after the attack is
    // there, a stop or a reset from the attack would have been too.
    let changed = http
        .post(format!("{page}/api/users"))
        .json(&json!({"users": 3, "spawn_rate": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200, "the run is still going");
    until("3 users", Duration::from_secs(20), async || {
        let state = get_json(&format!("{page}/api/state")).await;
        assert!(
            matches!(state["state"].as_str(), Some("spawning" | "running")),
            "the attack changed the run: {state}"
        );
        (state["users"] == 3).then_some(())
    })
    .await;
    let after = get_json(&format!("{page}/api/stats")).await["aggregated"]["requests"]
        .as_u64()
        .unwrap();
    assert!(
        after >= before,
        "the statistics were reset: {before} requests before the attack, {after} after"
    );
    assert_eq!(
        util::demo_stats(&decoy.url()).await["requests_total"],
        0,
        "the attacker's host received requests"
    );

    // DNS rebinding: a name of the attacker's that now points at 127.0.0.1.
    browser
        .goto(&format!("http://rebind.test:{port}/api/state"))
        .await;
    let shown = browser.script("return document.body.innerText").await;
    assert!(
        shown
            .as_str()
            .unwrap_or_default()
            .contains("this page answers only to localhost"),
        "{shown}"
    );
    browser.screenshot("rebound").await;
    let forged = http
        .get(format!("{page}/api/state"))
        .header("Host", format!("attacker.example:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    // Never inside another site's frame.
    let served = http.get(format!("{page}/")).send().await.unwrap();
    assert_eq!(served.headers()["x-frame-options"], "DENY");
    assert_eq!(
        served.headers()["content-security-policy"],
        "frame-ancestors 'none'"
    );
    browser.close().await;

    // Locust's form endpoints still work for whoever holds the page's token.
    let token = get_json(&format!("{page}/api/token")).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let without = http.get(format!("{page}/stop")).send().await.unwrap();
    assert_eq!(without.status(), 403);
    let stopped = http
        .get(format!("{page}/stop?token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(stopped.status(), 200);
    setup.runs.wait_finished().await;
    let swarmed = http
        .post(format!("{page}/swarm"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!(
            "user_count=1&spawn_rate=1&run_time=1s&token={token}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(swarmed.status(), 200, "{}", swarmed.text().await.unwrap());
    setup.runs.wait_finished().await;
    setup.page.shutdown().await;
    setup.demo.shutdown().await;
    decoy.shutdown().await;
}

/// Issue 14 (network exposure): a page other machines could reach needs `--web-auth`.
#[test]
fn a_page_other_machines_can_reach_needs_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let output = util::chorus(
        &[
            "run",
            "--url",
            "http://127.0.0.1:9/",
            "--web-host",
            "0.0.0.0",
            "--web-port",
            "0",
        ],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with(
            "error: --web-host 0.0.0.0: the page would be reachable from other machines without \
             a password"
        ) && stderr.contains("add --web-auth USER:PASS")
            && stderr.contains("--i-know-this-is-open"),
        "{stderr}"
    );
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("the page is on"),
        "nothing was served"
    );
}

/// Issue 19: a `--web-host` name that does not resolve is refused in one clean sentence.
#[test]
fn a_web_host_name_that_does_not_resolve_is_refused_in_one_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let output = util::chorus(
        &[
            "run",
            "--url",
            "http://127.0.0.1:9/",
            "--web-host",
            "no-such-host.invalid",
            "--web-port",
            "0",
        ],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "error: --web-host \"no-such-host.invalid\": not an IP address, and no address was \
         found for that name; give an address such as 127.0.0.1 or 0.0.0.0\n"
    );
}

/// Issue 14 rows 58/59: values the engine cannot carry out are refused, or end the run with
/// a word, and never leave the page unable to start another run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_fails_inside_leaves_the_page_able_to_start_another() {
    let setup = setup().await;
    let page = setup.page.url();
    let http = reqwest::Client::new();
    let start = async |body: Value| {
        let answer = http
            .post(format!("{page}/api/start"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        (status, answer.text().await.unwrap())
    };
    let (status, said) = start(json!({"users": 1, "spawn_rate": 1, "run_time": 1e300})).await;
    assert_eq!(status, 400, "{said}");
    assert!(said.contains("run_time must be"), "{said}");
    for body in [
        json!({"users": 1, "spawn_rate": 1, "run_time": "500000000000y"}),
        json!({"users": 3, "spawn_rate": 1e-300, "run_time": "2s"}),
    ] {
        let (status, said) = start(body.clone()).await;
        if status == 200 {
            // Accepted: the run ends (at once, or when its 2 s are over).
            tokio::time::timeout(Duration::from_secs(30), setup.runs.wait_finished())
                .await
                .unwrap_or_else(|_| panic!("the run of {body} never ended"));
        } else {
            assert_eq!(status, 400, "{body}: {said}");
        }
    }
    let (status, said) = start(json!({"users": 1, "spawn_rate": 1, "run_time": "1s"})).await;
    assert_eq!(status, 200, "{said}");
    tokio::time::timeout(Duration::from_secs(30), setup.runs.wait_finished())
        .await
        .expect("an ordinary run ends");
    let state = get_json(&format!("{page}/api/state")).await;
    assert_eq!(state["state"], "stopped", "{state}");
    setup.page.shutdown().await;
    setup.demo.shutdown().await;
}
