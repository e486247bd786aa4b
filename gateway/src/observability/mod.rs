//! The gateway's own telemetry shared by plugins: captured log lines ([`logs`]).

pub mod logs;
