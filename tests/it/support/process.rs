//! Runs the `otelpipe` binary as a child process, bounded in time, stopped on drop.

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The built collector binary.
pub(crate) fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_otelpipe")
}

/// Runs `otelpipe args…` to completion (at most 60 s) and returns its output.
pub(crate) fn run(args: &[&str]) -> Output {
    run_env(args, &[])
}

/// [`run`] with extra environment variables.
pub(crate) fn run_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(binary())
        .args(args)
        .envs(env.iter().copied())
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

/// Ports handed out by [`free_port`] lie below the kernel's ephemeral range (32768–60999 by
/// default), so a socket another test binds to port 0 can never take one between the probe
/// and the child's bind; the counter keeps two calls in this process from returning the same
/// port, and the process id spreads concurrent test binaries apart.
const PORT_RANGE: std::ops::Range<u32> = 20_000..32_000;

/// A free TCP port on 127.0.0.1 for a child process to bind: probed, released, and never
/// handed out twice by this process.
pub(crate) fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let span = PORT_RANGE.end - PORT_RANGE.start;
    let base = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let offset = (base + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
        let port = u16::try_from(PORT_RANGE.start + offset).expect("port fits u16");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {PORT_RANGE:?}");
}

/// A running collector, killed on drop if still running.
pub(crate) struct Collector {
    child: Option<Child>,
}

impl Collector {
    /// Starts `otelpipe --config <config>` with extra env vars and waits until `ready_port`
    /// accepts connections (at most 30 s).
    pub(crate) fn start(config: &Path, env: &[(&str, &str)], ready_port: u16) -> Self {
        Self::start_merged(&[config], env, ready_port)
    }

    /// [`Collector::start`] with several `--config` sources, merged in order.
    pub(crate) fn start_merged(configs: &[&Path], env: &[(&str, &str)], ready_port: u16) -> Self {
        let mut cmd = Command::new(binary());
        for config in configs {
            cmd.arg("--config").arg(config);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn otelpipe");
        let mut collector = Self { child: Some(child) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", ready_port)).is_err() {
            if let Some(status) = collector.child_mut().try_wait().expect("wait") {
                let output = collector.child.take().unwrap().wait_with_output().unwrap();
                panic!(
                    "otelpipe exited early with {status}: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            assert!(
                Instant::now() < deadline,
                "otelpipe did not listen on {ready_port} within 30s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        collector
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("child running").id()
    }

    fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("child running")
    }

    /// Kills the process with SIGKILL (`kill -9`) and waits for it.
    pub(crate) fn kill9(mut self) {
        let mut child = self.child.take().expect("child running");
        child.kill().expect("kill -9");
        child.wait().expect("wait");
    }

    /// Sends SIGTERM and waits (at most 30 s); returns the exit code, stdout and stderr.
    pub(crate) fn terminate(mut self) -> (Option<i32>, String, String) {
        let mut child = self.child.take().expect("child running");
        let pid = child.id().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "otelpipe did not stop within 30s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            pipe.read_to_string(&mut stderr).expect("read stderr");
        }
        let mut stdout = String::new();
        if let Some(mut pipe) = child.stdout.take() {
            pipe.read_to_string(&mut stdout).expect("read stdout");
        }
        (status.code(), stdout, stderr)
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if child.kill().and_then(|()| child.wait().map(drop)).is_err() {
                eprintln!("otelpipe child could not be killed");
            }
        }
    }
}
