//! Runs the `otelpipe` binary as a child process, bounded in time, stopped on drop.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The built collector binary.
pub(crate) fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_otelpipe")
}

/// Runs `otelpipe args…` to completion (at most 60 s) and returns its output.
pub(crate) fn run(args: &[&str]) -> Output {
    let mut child = Command::new(binary())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn otelpipe");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        assert!(
            Instant::now() < deadline,
            "otelpipe {args:?} did not finish within 60s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
