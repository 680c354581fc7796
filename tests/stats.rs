//! Integration tests for `stats` (see tests/integration.rs).
