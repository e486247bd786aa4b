//! Shared helpers for integration tests.

pub(crate) mod process;
pub(crate) mod sink;
pub(crate) mod spans;
