//! What the page tests ask of a browser, so that one test body drives Debian's Chromium
//! (WebDriver, [`super::browser`]) and Firefox (Marionette, [`super::firefox`]) alike.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::browser::Browser;
use super::firefox::Firefox;

#[allow(async_fn_in_trait)]
pub trait PageDriver {
    async fn goto(&mut self, url: &str);
    async fn fill(&mut self, css: &str, text: &str);
    async fn click(&mut self, css: &str);
    /// Runs `js` in the page and returns what it returned.
    async fn script(&mut self, js: &str) -> Value;
    /// Waits until the text of `css` satisfies `done`; panics with the last text after
    /// `timeout`.
    async fn wait_text(
        &mut self,
        css: &str,
        timeout: Duration,
        done: impl Fn(&str) -> bool,
    ) -> String;
    /// Saves a numbered PNG of the page under the test's output folder.
    async fn screenshot(&mut self, label: &str) -> PathBuf;
}

impl PageDriver for Browser {
    async fn goto(&mut self, url: &str) {
        Browser::goto(self, url).await;
    }
    async fn fill(&mut self, css: &str, text: &str) {
        Browser::fill(self, css, text).await;
    }
    async fn click(&mut self, css: &str) {
        Browser::click(self, css).await;
    }
    async fn script(&mut self, js: &str) -> Value {
        Browser::script(self, js).await
    }
    async fn wait_text(
        &mut self,
        css: &str,
        timeout: Duration,
        done: impl Fn(&str) -> bool,
    ) -> String {
        Browser::wait_text(self, css, timeout, done).await
    }
    async fn screenshot(&mut self, label: &str) -> PathBuf {
        Browser::screenshot(self, label).await
    }
}

impl PageDriver for Firefox {
    async fn goto(&mut self, url: &str) {
        Firefox::goto(self, url).await;
    }
    async fn fill(&mut self, css: &str, text: &str) {
        Firefox::fill(self, css, text).await;
    }
    async fn click(&mut self, css: &str) {
        Firefox::click(self, css).await;
    }
    async fn script(&mut self, js: &str) -> Value {
        Firefox::script(self, js).await
    }
    async fn wait_text(
        &mut self,
        css: &str,
        timeout: Duration,
        done: impl Fn(&str) -> bool,
    ) -> String {
        Firefox::wait_text(self, css, timeout, done).await
    }
    async fn screenshot(&mut self, label: &str) -> PathBuf {
        Firefox::screenshot(self, label).await
    }
}
