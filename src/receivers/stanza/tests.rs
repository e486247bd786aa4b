//! Operator chain tests.
