//! How the page benches time an update in headless Chromium: `performance.now()` around the
//! page's `JSON.parse` of each event, its `applyUpdate`, and the animation-frame callbacks it
//! queues (table, charts) followed by a forced layout, summed per update, read back through
//! the driver.

use std::time::Duration;

use serde_json::Value;

/// Times every update the page applies (parse, `applyUpdate`, the frames it queues, layout)
/// into `window.__bench.ms`, one entry per event.
pub(crate) const INSTRUMENT: &str = r#"
const b = window.__bench = { ms: [], parse: 0 };
const parse = JSON.parse;
JSON.parse = function (text) {
  const t = performance.now();
  const value = parse(text);
  b.parse += performance.now() - t;
  return value;
};
const apply = applyUpdate;
window.applyUpdate = function (update, full) {
  const t = performance.now();
  apply(update, full);
  b.ms.push(b.parse + performance.now() - t);
  b.parse = 0;
};
const frame = window.requestAnimationFrame.bind(window);
window.requestAnimationFrame = function (callback) {
  return frame(function (ts) {
    const t = performance.now();
    callback(ts);
    void document.body.offsetHeight;
    if (b.ms.length) b.ms[b.ms.length - 1] += performance.now() - t;
  });
};
return true;
"#;

/// The per-update times the page recorded over `seconds`.
pub(crate) async fn collect(browser: &crate::browser::Browser, seconds: u64) -> Vec<f64> {
    restart(browser).await;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    recorded(browser).await
}

/// Forgets the updates timed so far: [`recorded`] returns those from now on.
pub(crate) async fn restart(browser: &crate::browser::Browser) {
    browser.script("window.__bench.ms = []; return true").await;
}

/// The per-update times the page recorded since [`restart`].
pub(crate) async fn recorded(browser: &crate::browser::Browser) -> Vec<f64> {
    let ms = browser.script("return window.__bench.ms").await;
    // The last entry may still wait for its frame.
    let mut ms: Vec<f64> = ms
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    ms.pop();
    ms
}

/// Median, p95 and max of the updates' times, against `target_ms`.
pub(crate) fn print_updates(label: &str, mut ms: Vec<f64>, target_ms: f64) {
    if ms.is_empty() {
        println!("{label} no updates seen");
        return;
    }
    let n = ms.len();
    ms.sort_by(f64::total_cmp);
    let p95 = ms[((n as f64 * 0.95) as usize).min(n - 1)];
    println!(
        "{label} median {:>6.1} ms, p95 {p95:>6.1} ms, max {:>6.1} ms over {n} updates (target < {target_ms} ms)",
        ms[n / 2],
        ms[n - 1],
    );
}
