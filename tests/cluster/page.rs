//! The page served by a master: a distributed run started, steered and stopped from it.

use super::*;

/// A worker's state and users in the text of the page's workers table (one row a line:
/// name, address, state, users, requests).
fn worker_row(table: &str, name: &str) -> Option<(String, u64)> {
    table.lines().find_map(|line| {
        let cells: Vec<&str> = line.split_whitespace().collect();
        (cells.len() >= 4 && cells[0] == name)
            .then(|| (cells[2].to_owned(), cells[3].replace(',', "").parse().ok()))
            .and_then(|(state, users)| Some((state, users?)))
    })
}

/// A worker's own CPU (%) and memory (MiB) in the workers table's last column.
fn worker_load(table: &str, name: &str) -> Option<(f64, f64)> {
    table.lines().find_map(|line| {
        let cells: Vec<&str> = line.split_whitespace().collect();
        if cells.len() < 9 || cells[0] != name || cells[6] != "%" || cells[8] != "MiB" {
            return None;
        }
        Some((cells[5].parse().ok()?, cells[7].parse().ok()?))
    })
}

/// The text of `css` on the page, polled until `done` holds (the page's own state is the
/// signal); returns how long it took.
async fn page_waits(
    browser: &crate::util::browser::Browser,
    css: &str,
    what: &str,
    done: impl Fn(&str) -> bool,
) -> Duration {
    let started = Instant::now();
    let text = browser.wait_text(css, PATIENCE, |text| done(text)).await;
    println!("page: {what}: {text:?} after {:?}", started.elapsed());
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_serves_the_page_that_starts_steers_and_stops_the_workers_run() {
    let dir = output_dir("cluster_page");
    let (server, _app, scenario, users, host) = demo_cluster(&dir, 60).await;
    let mut master = Process::start(
        "master",
        &[
            "run",
            &scenario,
            "--data",
            &users,
            "-H",
            &host,
            "--master",
            "--expect-workers",
            "2",
            "--master-bind",
            "127.0.0.1:0",
            "--web-port",
            "0",
            "--json",
            "run.json",
        ],
        &dir,
    );
    // Both addresses, in either order (stdout and stderr are read apart).
    let (mut url, mut address) = (String::new(), String::new());
    while url.is_empty() || address.is_empty() {
        let line = master.wait_for("the page's and the workers' addresses", |l| {
            l.contains("the page is on ")
                || l.contains("workers join with: chorus worker --master ")
        });
        let last = line.rsplit(' ').next().unwrap().to_owned();
        if line.contains("the page is on ") {
            url = last;
        } else {
            address = last;
        }
    }
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    // Before the expected workers are there, Start is refused with what to do.
    let refused = reqwest::Client::new()
        .post(format!("{url}/api/start"))
        .json(&serde_json::json!({ "users": 2, "spawn_rate": 2 }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 409);
    let why = refused.text().await.unwrap();
    assert!(why.contains("0 of 2 expected worker(s) ready"), "{why}");
    let w1 = worker(&dir, &address, "w1", &[]);
    let mut w2 = worker(&dir, &address, "w2", &[]);

    let mut browser = crate::util::browser::Browser::start(&[], &dir.join("screenshots")).await;
    browser.goto(&format!("{url}/")).await;
    page_waits(&browser, "#workers-table", "both workers ready", |t| {
        worker_row(t, "w1").is_some_and(|(state, _)| state == "ready")
            && worker_row(t, "w2").is_some_and(|(state, _)| state == "ready")
    })
    .await;
    browser.screenshot("workers-ready").await;

    // Start from the page: 10 users at 10/s, split 5 and 5.
    browser.fill("#start-users", "10").await;
    browser.fill("#start-spawn-rate", "10").await;
    browser.click("#start-button").await;
    page_waits(&browser, "#users", "10 users", |t| t.trim() == "10").await;
    page_waits(&browser, "#workers-table", "5 users on each worker", |t| {
        ["w1", "w2"]
            .iter()
            .all(|w| worker_row(t, w) == Some(("running".to_owned(), 5)))
    })
    .await;
    // Each worker's own CPU and memory, as it sent them (a chorus process holds MiBs).
    page_waits(
        &browser,
        "#workers-table",
        "each worker's CPU and memory",
        |t| {
            ["w1", "w2"].iter().all(|w| {
                worker_load(t, w)
                    .is_some_and(|(cpu, mib)| (0.0..=100.0 * 1024.0).contains(&cpu) && mib > 1.0)
            })
        },
    )
    .await;
    // The demo scenario's names show with counts.
    let login = "/api/v2/auth/login/glasslab";
    let courses = "/api/v2/lms/courses";
    page_waits(&browser, "#stats-table", "the scenario's names", |t| {
        t.contains(login) && t.contains(courses)
    })
    .await;
    let count = async |name: &str| {
        let script = format!(
            "for (const row of document.querySelectorAll('#stats-table tbody tr')) {{ \
               if (row.children[1].textContent === {name:?}) \
                 return Number(row.children[2].textContent.replace(/,/g, '')); }} return 0;"
        );
        browser.script(&script).await.as_u64().unwrap_or(0)
    };
    let deadline = Instant::now() + PATIENCE;
    while count(login).await < 10 || count(courses).await == 0 {
        assert!(
            Instant::now() < deadline,
            "the page never counted 10 logins and courses"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    browser.screenshot("running").await;

    // Change users: 20, split 10 and 10.
    browser.click("#edit-button").await;
    browser.fill("#edit-users", "20").await;
    browser.click("#edit-submit").await;
    page_waits(&browser, "#users", "20 users", |t| t.trim() == "20").await;
    page_waits(&browser, "#workers-table", "10 users on each worker", |t| {
        ["w1", "w2"]
            .iter()
            .all(|w| worker_row(t, w) == Some(("running".to_owned(), 10)))
    })
    .await;

    // kill -9 one worker: the page marks it missing, and its users move to the other.
    w2.kill();
    let missed = page_waits(&browser, "#workers-table", "w2 missing", |t| {
        worker_row(t, "w2").is_some_and(|(state, _)| state == "missing")
    })
    .await;
    println!("w2 shown missing {missed:?} after the kill (the issue asks for 3 s)");
    browser.screenshot("w2-missing").await;
    page_waits(&browser, "#workers-table", "20 users on w1", |t| {
        worker_row(t, "w1") == Some(("running".to_owned(), 20))
    })
    .await;
    page_waits(&browser, "#users", "20 users again", |t| t.trim() == "20").await;

    // Stop from the page; the downloads are the merged result.
    browser.click("#stop-button").await;
    page_waits(&browser, "#state", "stopped", |t| t == "stopped").await;
    browser.screenshot("stopped").await;
    let result: serde_json::Value = reqwest::get(format!("{url}/api/report/result.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = result["entries"].as_array().unwrap();
    let requests = |name: &str| {
        entries
            .iter()
            .find(|e| e["name"] == name)
            .and_then(|e| e["requests"].as_u64())
            .unwrap_or(0)
    };
    assert!(requests(login) >= 20, "{result:#}");
    assert!(requests(courses) > 0, "{result:#}");
    let errors = result["errors"].to_string();
    assert!(errors.contains("went missing"), "{errors}");
    let csv = reqwest::get(format!("{url}/api/report/stats.csv"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.contains(login), "{csv}");
    browser.close().await;

    // A second run on the same master: refused while only w1 of the two is there, then on w1
    // and a new worker w3.
    let http = reqwest::Client::new();
    let start = async || {
        http.post(format!("{url}/api/start"))
            .json(&serde_json::json!({ "users": 4, "spawn_rate": 4 }))
            .send()
            .await
            .unwrap()
    };
    let refused = start().await;
    assert_eq!(refused.status(), 409);
    let why = refused.text().await.unwrap();
    assert!(why.contains("1 of 2 expected worker(s) ready"), "{why}");
    let w3 = worker(&dir, &address, "w3", &[]);
    let state = async || -> serde_json::Value {
        http.get(format!("{url}/api/state"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    };
    let worker_state = |state: &serde_json::Value, name: &str| {
        state["workers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["name"] == name)
            .map(|w| {
                (
                    w["state"].as_str().unwrap().to_owned(),
                    w["users"].as_u64().unwrap(),
                )
            })
    };
    let deadline = Instant::now() + PATIENCE;
    while worker_state(&state().await, "w3").is_none_or(|(s, _)| s != "ready") {
        assert!(
            Instant::now() < deadline,
            "w3 never ready: {}",
            state().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(start().await.status(), 200);
    loop {
        let now = state().await;
        let w1 = worker_state(&now, "w1");
        let w3 = worker_state(&now, "w3");
        if now["users"] == 4
            && w1 == Some(("running".to_owned(), 2))
            && w3 == Some(("running".to_owned(), 2))
        {
            // The missing w2 of the first run is forgotten.
            assert!(worker_state(&now, "w2").is_none(), "{now}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the second run never had 2 + 2 users: {now}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stopped = http.post(format!("{url}/api/stop")).send().await.unwrap();
    assert_eq!(stopped.status(), 200);
    while state().await["state"] != "stopped" {
        assert!(Instant::now() < deadline, "the second run never stopped");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let second: serde_json::Value = http
        .get(format!("{url}/api/report/result.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let second_requests = second["total"]["requests"].as_u64().unwrap();
    assert!(second_requests > 0, "{second:#}");
    assert!(
        !second["errors"].to_string().contains("went missing"),
        "{second:#}"
    );

    // The master closes on Ctrl-C, writes the last run's report and lets w1 and w3 go.
    let pid = master.child.id().to_string();
    let interrupted = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(interrupted.success());
    let (status, printed) = master.finish();
    assert!(status.success(), "{status:?}\n{printed}");
    let written = read_result(&dir.join("run.json"));
    assert_eq!(written.total.requests, second_requests, "{printed}");
    for worker in [w1, w3] {
        let (_, said) = worker.finish();
        assert!(said.contains("the run is over"), "{said}");
    }
    drop(server);
}
