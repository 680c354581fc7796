//! Integration tests for `engine` (see tests/integration.rs).
