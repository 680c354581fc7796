//! A headless Firefox (Debian's firefox-esr) driven over Marionette, its own remote protocol,
//! so no geckodriver is needed: started fresh per test with its own profile folder, and
//! stopped when dropped. The methods mirror `browser::Browser`, so tests read alike.
//!
//! Marionette frames each message as `LENGTH:JSON` (the length in bytes). The server speaks
//! first (`{"applicationType":"gecko","marionetteProtocol":3}`); a command is
//! `[0, id, "WebDriver:Name", {params}]` and its reply `[1, id, error, result]`, where `error`
//! is null or `{"error", "message", "stacktrace"}`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The W3C WebDriver key under which an element reference travels.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Preferences that keep a test Firefox quiet and offline: no updates, telemetry, first-run
/// pages, safe-browsing lists or remote settings (the machine has no network beyond loopback).
const PREFS: &[(&str, &str)] = &[
    ("app.update.disabledForTesting", "true"),
    ("app.update.auto", "false"),
    ("app.normandy.enabled", "false"),
    ("browser.shell.checkDefaultBrowser", "false"),
    ("browser.startup.homepage_override.mstone", "\"ignore\""),
    ("browser.startup.page", "0"),
    ("browser.aboutwelcome.enabled", "false"),
    ("browser.newtabpage.enabled", "false"),
    ("browser.discovery.enabled", "false"),
    ("browser.region.network.url", "\"\""),
    ("browser.safebrowsing.malware.enabled", "false"),
    ("browser.safebrowsing.phishing.enabled", "false"),
    ("browser.safebrowsing.downloads.enabled", "false"),
    ("browser.safebrowsing.update.enabled", "false"),
    ("browser.tabs.warnOnClose", "false"),
    ("datareporting.policy.dataSubmissionEnabled", "false"),
    ("datareporting.healthreport.uploadEnabled", "false"),
    ("toolkit.telemetry.enabled", "false"),
    ("toolkit.telemetry.server", "\"\""),
    ("extensions.update.enabled", "false"),
    ("extensions.getAddons.cache.enabled", "false"),
    ("media.gmp-manager.url", "\"\""),
    ("network.proxy.type", "0"),
    ("network.captive-portal-service.enabled", "false"),
    ("network.connectivity-service.enabled", "false"),
    ("network.dns.disablePrefetch", "true"),
    ("network.prefetch-next", "false"),
    ("services.settings.server", "\"http://127.0.0.1:1/\""),
    ("startup.homepage_welcome_url", "\"about:blank\""),
    ("startup.homepage_welcome_url.additional", "\"\""),
];

pub struct Firefox {
    process: Child,
    stream: BufReader<TcpStream>,
    next_id: u64,
    _profile: tempfile::TempDir,
    screenshots: PathBuf,
    shots: usize,
}

impl Firefox {
    /// Starts a headless Firefox with a fresh profile and opens a Marionette session.
    /// Screenshots go to `screenshots`.
    pub async fn start(screenshots: &Path) -> Firefox {
        let binary = std::env::var("FIREFOX").unwrap_or_else(|_| "/usr/bin/firefox-esr".to_owned());
        assert!(
            Path::new(&binary).exists(),
            "Firefox tests need Debian's firefox-esr: apt-get install firefox-esr (or set FIREFOX)"
        );
        let profile = tempfile::tempdir().unwrap();
        let port = super::nginx::free_port();
        let mut prefs = format!("user_pref(\"marionette.port\", {port});\n");
        for (name, value) in PREFS {
            prefs.push_str(&format!("user_pref(\"{name}\", {value});\n"));
        }
        std::fs::write(profile.path().join("user.js"), prefs).unwrap();
        let process = Command::new(&binary)
            .args(["--marionette", "--headless", "--no-remote", "--profile"])
            .arg(profile.path())
            .arg("about:blank")
            .env("MOZ_HEADLESS", "1")
            .env("MOZ_CRASHREPORTER_DISABLE", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("{binary} starts: {err}"));
        let stream = connect(port).await;
        std::fs::create_dir_all(screenshots).unwrap();
        let mut firefox = Firefox {
            process,
            stream: BufReader::new(stream),
            next_id: 0,
            _profile: profile,
            screenshots: screenshots.to_owned(),
            shots: 0,
        };
        let hello = firefox.read_message().await;
        assert_eq!(
            hello["marionetteProtocol"],
            json!(3),
            "Marionette said hello with {hello}"
        );
        firefox
            .command(
                "WebDriver:NewSession",
                json!({ "capabilities": { "alwaysMatch": { "acceptInsecureCerts": true } } }),
            )
            .await;
        // The size the Chromium tests use, so screenshots compare.
        firefox
            .command(
                "WebDriver:SetWindowRect",
                json!({ "width": 1280, "height": 900 }),
            )
            .await;
        firefox
    }

    /// Sends one command and returns its result; panics with Marionette's error.
    pub async fn command(&mut self, name: &str, params: Value) -> Value {
        match self.try_command(name, params).await {
            Ok(result) => result,
            Err(error) => panic!("Marionette {name} failed: {error}"),
        }
    }

    /// Sends one command: its result, or the error Marionette answered with.
    pub async fn try_command(&mut self, name: &str, params: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let body = json!([0, id, name, params]).to_string();
        let framed = format!("{}:{body}", body.len());
        let stream = self.stream.get_mut();
        stream.write_all(framed.as_bytes()).await.unwrap();
        stream.flush().await.unwrap();
        loop {
            let reply = self.read_message().await;
            // Replies to other ids cannot happen (one command at a time), but skip them.
            if reply[0] != json!(1) || reply[1] != json!(id) {
                continue;
            }
            return if reply[2].is_null() {
                Ok(reply[3].clone())
            } else {
                Err(reply[2].clone())
            };
        }
    }

    async fn read_message(&mut self) -> Value {
        let mut length = Vec::new();
        loop {
            let byte = self
                .stream
                .read_u8()
                .await
                .expect("Marionette closed the connection");
            if byte == b':' {
                break;
            }
            length.push(byte);
        }
        let length: usize = std::str::from_utf8(&length)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("Marionette sent a bad frame length {length:?}"));
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await.unwrap();
        serde_json::from_slice(&body)
            .unwrap_or_else(|err| panic!("Marionette sent bad JSON: {err}"))
    }

    pub async fn goto(&mut self, url: &str) {
        self.command("WebDriver:Navigate", json!({ "url": url }))
            .await;
    }

    /// Runs `js` as a function body in the page and returns what it returns.
    pub async fn script(&mut self, js: &str) -> Value {
        let result = self
            .command(
                "WebDriver:ExecuteScript",
                json!({ "script": js, "args": [] }),
            )
            .await;
        result["value"].clone()
    }

    async fn find(&mut self, css: &str) -> Result<String, Value> {
        let found = self
            .try_command(
                "WebDriver:FindElement",
                json!({ "using": "css selector", "value": css }),
            )
            .await?;
        Ok(found["value"][ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("FindElement answered {found}"))
            .to_owned())
    }

    async fn element(&mut self, css: &str) -> String {
        self.find(css)
            .await
            .unwrap_or_else(|err| panic!("no {css}: {err}"))
    }

    pub async fn fill(&mut self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.command("WebDriver:ElementClear", json!({ "id": id }))
            .await;
        self.command(
            "WebDriver:ElementSendKeys",
            json!({ "id": id, "text": text }),
        )
        .await;
    }

    pub async fn click(&mut self, css: &str) {
        let id = self.element(css).await;
        self.command("WebDriver:ElementClick", json!({ "id": id }))
            .await;
    }

    pub async fn text(&mut self, css: &str) -> String {
        let id = self.element(css).await;
        self.element_text(&id).await.unwrap_or_default()
    }

    async fn element_text(&mut self, id: &str) -> Option<String> {
        self.try_command("WebDriver:GetElementText", json!({ "id": id }))
            .await
            .ok()
            .and_then(|r| r["value"].as_str().map(str::to_owned))
    }

    /// Waits until the text of `css` satisfies `done`, polling the page (the page's own state
    /// is the signal); panics with the last text after `timeout`.
    pub async fn wait_text(
        &mut self,
        css: &str,
        timeout: Duration,
        done: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let text = match self.find(css).await {
                Ok(id) => self.element_text(&id).await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if done(&text) {
                return text;
            }
            if Instant::now() > deadline {
                panic!("{css} never reached the expected state in Firefox; last text: {text:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a numbered PNG of the page under the test's output folder.
    pub async fn screenshot(&mut self, label: &str) -> PathBuf {
        self.shots += 1;
        let path = self
            .screenshots
            .join(format!("{:02}-firefox-{label}.png", self.shots));
        let shot = self
            .command("WebDriver:TakeScreenshot", json!({ "full": false }))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["value"].as_str().unwrap_or_default())
            .expect("the screenshot is base64");
        std::fs::write(&path, png).unwrap();
        path
    }

    pub async fn close(mut self) {
        let _ = self.try_command("WebDriver:DeleteSession", json!({})).await;
        // Quit answers only as Firefox goes away: send it without waiting for the reply.
        let quit = json!([0, self.next_id + 1, "Marionette:Quit", {}]).to_string();
        let _ = self
            .stream
            .get_mut()
            .write_all(format!("{}:{quit}", quit.len()).as_bytes())
            .await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.process.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Drop for Firefox {
    fn drop(&mut self) {
        if let Ok(None) = self.process.try_wait() {
            let _ = self.process.kill();
            let _ = self.process.wait();
        }
    }
}

/// Connects to Marionette once Firefox listens (its listening is the signal).
async fn connect(port: u16) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)).await {
            return stream;
        }
        assert!(
            Instant::now() < deadline,
            "Firefox's Marionette did not listen on 127.0.0.1:{port} within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
