//! The collector under test as a child process, and what `/proc` says about it.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// CPU time (user + system) and peak resident set of a process.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Usage {
    /// CPU seconds so far.
    pub(crate) cpu_seconds: f64,
    /// Peak RSS in bytes (`VmHWM`).
    pub(crate) peak_rss: u64,
    /// Current RSS in bytes (`VmRSS`).
    pub(crate) rss: u64,
}

/// Reads `/proc/<pid>` for CPU time and memory.
pub(crate) fn usage(pid: u32) -> Option<Usage> {
    const TICKS_PER_SECOND: f64 = 100.0;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse::<u64>()
            .ok()
            .map(|k| k * 1024)
    };
    Some(Usage {
        cpu_seconds: ticks / TICKS_PER_SECOND,
        peak_rss: kib("VmHWM:")?,
        rss: kib("VmRSS:")?,
    })
}

/// Starts `command` (a program and its arguments), pinned to `cpu` with `taskset` when given,
/// with `env` set; its output goes to `log`.
pub(crate) fn spawn(
    command: &[String],
    cpu: Option<&str>,
    env: &[(String, String)],
    log: &std::path::Path,
) -> Child {
    let mut argv: Vec<String> = Vec::new();
    if let Some(cpu) = cpu {
        argv.extend(["taskset".into(), "-c".into(), cpu.into()]);
    }
    argv.extend(command.iter().cloned());
    let file = std::fs::File::create(log).expect("create collector log");
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("log file"))
        .stderr(file);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn()
        .unwrap_or_else(|e| panic!("cannot start {argv:?}: {e}"))
}

/// Waits until `port` on 127.0.0.1 accepts connections (at most 30 s).
pub(crate) fn wait_for_port(port: u16) -> bool {
    for _ in 0..1500 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The collector process, stopped when dropped, so a failing run leaves nothing behind.
pub(crate) struct Collector(pub(crate) Child);

impl Drop for Collector {
    fn drop(&mut self) {
        stop(&mut self.0);
    }
}

/// Sends SIGTERM and waits up to 30 s, then kills. Does nothing once the child was reaped.
pub(crate) fn stop(child: &mut Child) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    if let Err(e) = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
    {
        eprintln!("cannot signal the collector: {e}");
    }
    for _ in 0..300 {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if child.kill().and_then(|()| child.wait()).is_err() {
        eprintln!("the collector could not be killed");
    }
}
