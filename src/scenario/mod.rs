//! The scenario model: host, defaults, data sources, `on_start`, weighted `flows`, `on_stop`,
//! steps, templates, extraction rules and checks. Loading validates everything once, with
//! `file:line:column` errors, so nothing is parsed on the hot path.
