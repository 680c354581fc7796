//! Integration tests for `scenario` (see tests/integration.rs).
