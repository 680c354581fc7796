//! The one integration-test binary: a module per part of chorus, helpers in `util`.

mod util;

mod apps;
mod capacity;
mod cluster;
mod compare;
mod convert;
mod demo_app;
mod engine;
mod faults;
mod fuzz;
mod http2;
mod inputs;
mod monitor;
mod mutation;
mod otlp;
mod provision;
mod record;
mod scenario;
mod stats;
mod stopping;
mod trace;
mod web;
mod ws;
