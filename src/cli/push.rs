//! `--otlp` in `chorus run`: the pushes started beside a run (headless or the page) and the
//! last one made from the run's result; a failed push is one line on stderr.

use std::sync::Arc;

use super::settings::RunSettings;
use crate::otlp::{Pusher, Source, now_unix_nanos};
use crate::stats::RunResult;
use crate::stats::report::prometheus::Exposition;

/// Starts the pushes `settings` ask for (none without `--otlp`), each made by `source`.
pub(super) fn start(settings: &RunSettings, source: Source) -> Option<Pusher> {
    let config = settings.otlp.as_ref()?;
    Some(Pusher::start(
        config,
        source,
        Arc::new(|line: &str| eprintln!("chorus: {line}")),
    ))
}

/// The last push: the finished run's numbers (`result`), or empty ones when there is no
/// result (a page closed before any run).
pub(super) async fn finish(pusher: Option<Pusher>, result: Option<&RunResult>) {
    let Some(pusher) = pusher else {
        return;
    };
    let start = pusher.start_unix_nanos();
    let body = match result {
        Some(result) => Exposition::of_result(result).otlp_request(start, now_unix_nanos()),
        None => Exposition::default().otlp_request(start, now_unix_nanos()),
    };
    pusher.finish(body).await;
}
