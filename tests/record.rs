//! Integration tests for `record` (see tests/integration.rs).
