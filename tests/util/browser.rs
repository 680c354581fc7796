//! A headless Chromium driven through chromedriver (WebDriver), started fresh per test with
//! its own profile folder, and stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// The flags every test browser starts with: no sandbox (we run as root), and no background
/// traffic, since the machine has no network beyond loopback.
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
];

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    screenshots: PathBuf,
    shots: usize,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium; `extra_args` are added to the flags
    /// (a proxy, for instance). Screenshots go to `screenshots`.
    pub async fn start(extra_args: &[String], screenshots: &Path) -> Browser {
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
        let chromedriver =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".to_owned());
        assert!(
            Path::new(&chromium).exists() && Path::new(&chromedriver).exists(),
            "browser tests need Debian's chromium and chromium-driver: apt-get install chromium chromium-driver"
        );
        let port = super::nginx::free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        wait_for_driver(&url).await;

        let profile = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| (*s).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.extend(extra_args.iter().cloned());
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".to_owned(),
            json!({ "binary": chromium, "args": args }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&url)
            .await
            .expect("chromedriver starts a Chromium session");
        std::fs::create_dir_all(screenshots).unwrap();
        Browser {
            client,
            driver,
            _profile: profile,
            screenshots: screenshots.to_owned(),
            shots: 0,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|err| panic!("could not open {url}: {err}"));
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let element = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|err| panic!("no {css}: {err}"));
        element.clear().await.unwrap();
        element.send_keys(text).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|err| panic!("no {css}: {err}"))
            .click()
            .await
            .unwrap();
    }

    pub async fn select(&self, css: &str, value: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .select_by_value(value)
            .await
            .unwrap();
    }

    pub async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|err| panic!("no {css}: {err}"))
            .text()
            .await
            .unwrap()
    }

    pub async fn script(&self, js: &str) -> Value {
        self.client.execute(js, vec![]).await.unwrap()
    }

    /// Waits until the text of `css` satisfies `done`, polling the page (the page's own state
    /// is the signal); panics with the last text after `timeout`.
    pub async fn wait_text(
        &self,
        css: &str,
        timeout: Duration,
        done: impl Fn(&str) -> bool,
    ) -> String {
        poll_text(css, timeout, done, async || {
            match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            }
        })
        .await
    }

    /// Waits until the `textContent` of `css` satisfies `done`: what the page wrote into the
    /// element whether or not it is shown (WebDriver's text is empty for a hidden element).
    pub async fn wait_text_content(
        &self,
        css: &str,
        timeout: Duration,
        done: impl Fn(&str) -> bool,
    ) -> String {
        let script = format!(
            "const e = document.querySelector({}); return e ? e.textContent : ''",
            serde_json::to_string(css).unwrap()
        );
        poll_text(css, timeout, done, async || {
            self.script(&script)
                .await
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .await
    }

    /// Waits until the text `js` returns satisfies `done` (the page's own state, polled).
    pub async fn wait_script(&self, js: &str, timeout: Duration, done: impl Fn(&str) -> bool) {
        poll_text(js, timeout, done, async || {
            self.script(js)
                .await
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .await;
    }

    /// Saves a numbered PNG of the page under the test's output folder.
    pub async fn screenshot(&mut self, label: &str) -> PathBuf {
        self.shots += 1;
        let path = self
            .screenshots
            .join(format!("{:02}-{label}.png", self.shots));
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(&path, png).unwrap();
        path
    }

    /// On the demo app's pages at `base`: logs in as the student `username` and plays
    /// `periods` event periods, screenshotting the login and the end; panics with the page's
    /// message unless the session ended.
    pub async fn play_as_student(
        &mut self,
        base: &str,
        username: &str,
        password: &str,
        periods: u32,
    ) {
        self.goto(&format!("{base}/")).await;
        self.select("#role", "student").await;
        self.fill("#username", username).await;
        self.fill("#password", password).await;
        self.screenshot("login").await;
        self.click("#submit").await;
        self.wait_text("#status", Duration::from_secs(15), |s| s == "ready")
            .await;
        self.fill("#periods", &periods.to_string()).await;
        self.click("#play").await;
        let status = self
            .wait_text("#status", Duration::from_secs(30), |s| {
                s == "ended" || s == "failed"
            })
            .await;
        self.screenshot("ended").await;
        assert_eq!(
            status,
            "ended",
            "the page said: {}",
            self.text("#message").await
        );
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    /// A test or bench that panics drops its browser without closing it: chromedriver is
    /// killed, and so is every Chromium process of this browser's own profile, which
    /// chromedriver's death would otherwise leave running.
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        kill_processes_naming(&format!(
            "--user-data-dir={}",
            self._profile.path().display()
        ));
    }
}

/// Kills (SIGKILL) every process whose command line holds `argument` as one of its
/// arguments.
fn kill_processes_naming(argument: &str) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if cmdline
            .split(|b| *b == 0)
            .any(|arg| arg == argument.as_bytes())
        {
            if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                // A process gone since is ESRCH: nothing to do.
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }
}

async fn wait_for_driver(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let client = reqwest::Client::new();
    loop {
        if let Ok(response) = client.get(format!("{url}/status")).send().await {
            if response.status().is_success() {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not answer on {url} within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads the text of `css` with `read` until it satisfies `done`, polling the page (the
/// page's own state is the signal); panics with the last text after `timeout`.
async fn poll_text(
    css: &str,
    timeout: Duration,
    done: impl Fn(&str) -> bool,
    mut read: impl AsyncFnMut() -> String,
) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let text = read().await;
        if done(&text) {
            return text;
        }
        if Instant::now() > deadline {
            panic!("{css} never reached the expected state; last text: {text:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A browser dropped without `close` (a test that panicked) leaves no Chromium running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_dropped_unclosed_leaves_no_chromium_behind() {
    let browser = Browser::start(&[], &super::output_dir("browser_drop")).await;
    browser.goto("about:blank").await;
    let profile = format!("--user-data-dir={}", browser._profile.path().display());
    let running = || -> usize {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|entry| {
                std::fs::read(entry.path().join("cmdline")).is_ok_and(|cmdline| {
                    cmdline
                        .split(|b| *b == 0)
                        .any(|arg| arg == profile.as_bytes())
                })
            })
            .count()
    };
    assert!(running() > 0, "Chromium runs with {profile}");
    drop(browser);
    // A killed process leaves /proc (or keeps an empty cmdline as a zombie) once the kernel
    // has run its exit: polled, as nothing signals it to another process.
    let deadline = Instant::now() + Duration::from_secs(10);
    while running() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        running(),
        0,
        "Chromium processes with {profile} after the drop"
    );
}
