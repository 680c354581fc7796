//! The report writers: each takes a [`RunResult`](super::RunResult) and only formats it.
//! `csv` writes Locust 2.x's four files, `json` the complete versioned result, `html` one
//! self-contained page, `summary` the terminal tables, `junit` JUnit XML for CI systems,
//! `markdown` a table for CI comments, `prometheus` the page's `GET /metrics` text.

pub mod capacity;
pub mod csv;
pub mod format;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod otlp;
pub mod prometheus;
pub mod summary;

pub use summary::{live_table, summary};
