//! Capture of the gateway's own log lines for the opentelemetry plugin's `logs_endpoint`
//! (Kong/kong:kong/observability/logs.lua, spec §8.8).
//!
//! Kong hooks `ngx.log`; here a `tracing` layer ([`CaptureLayer`]) sees every event that passes
//! its level filter. An event emitted while a request is handled (inside [`scope`] or
//! [`sync_scope`]) goes to that request's [`RequestLogs`]; any other (timers, background
//! sends, startup) goes to the worker buffer. Both are bounded at [`MAX_RECORDS`]; the
//! plugin drains them in its log phase. Nothing is captured while no plugin instance has a
//! `logs_endpoint` ([`Enabled`] counts them), so the layer costs one atomic load otherwise.

use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

/// Records kept per request and for the worker between two flushes (Kong's limits).
pub const MAX_RECORDS: usize = 1000;

/// Lines of this crate are captured; the libraries' own debug lines are not (Kong captures
/// its Lua `ngx.log` calls, not nginx's internal log).
const OWN_TARGET: &str = "otelpipe_gateway";

/// Plugin instances exporting logs; capture is off while 0.
static ENABLED: AtomicUsize = AtomicUsize::new(0);

/// Records logged outside any request.
static WORKER: Mutex<Vec<Record>> = Mutex::new(Vec::new());

/// Whether [`WORKER`] may hold records, so requests skip its lock when it is empty.
static WORKER_PENDING: AtomicBool = AtomicBool::new(false);

tokio::task_local! {
    static REQUEST: Arc<RequestLogs>;
}

/// One captured log line.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Unix ns at capture.
    pub time_unix_nano: u64,
    /// Kong's severity of the line.
    pub severity: Severity,
    /// The message followed by the event's other fields as `key=value`.
    pub body: String,
    /// Source file of the call site.
    pub file: &'static str,
    /// Line of the call site.
    pub line: u32,
    /// Module (target) of the call site.
    pub target: &'static str,
    /// The request's active span when the line was logged (none outside requests or
    /// before tracing set one).
    pub span_id: Option<[u8; 8]>,
}

/// Kong's log levels with their OTLP severity numbers (spec §8.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// `debug`, 5.
    Debug,
    /// `info`, 9.
    Info,
    /// `notice`, 11.
    Notice,
    /// `warn`, 13.
    Warn,
    /// `error`, 17.
    Err,
    /// `crit`, 19.
    Crit,
    /// `alert`, 21.
    Alert,
    /// `emerg`, 23.
    Emerg,
}

impl Severity {
    /// The kong.conf `log_level` value (`notice` for anything unknown, Kong's default).
    pub fn from_log_level(level: &str) -> Self {
        match level {
            "debug" => Self::Debug,
            "info" => Self::Info,
            "warn" => Self::Warn,
            "error" => Self::Err,
            "crit" => Self::Crit,
            "alert" => Self::Alert,
            "emerg" => Self::Emerg,
            _ => Self::Notice,
        }
    }

    /// The severity of a `tracing` level. The gateway's `info!` lines are what Kong logs at
    /// notice (kong.conf `log_level = notice` shows them), so INFO maps to NOTICE.
    pub fn of(level: &Level) -> Self {
        match *level {
            Level::ERROR => Self::Err,
            Level::WARN => Self::Warn,
            Level::INFO => Self::Notice,
            _ => Self::Debug,
        }
    }

    /// OTLP `severity_number`.
    pub fn number(self) -> i32 {
        match self {
            Self::Debug => 5,
            Self::Info => 9,
            Self::Notice => 11,
            Self::Warn => 13,
            Self::Err => 17,
            Self::Crit => 19,
            Self::Alert => 21,
            Self::Emerg => 23,
        }
    }

    /// OTLP `severity_text`.
    pub fn text(self) -> &'static str {
        match self {
            Self::Debug => "DEBUG",
            Self::Info => "INFO",
            Self::Notice => "NOTICE",
            Self::Warn => "WARN",
            Self::Err => "ERR",
            Self::Crit => "CRIT",
            Self::Alert => "ALERT",
            Self::Emerg => "EMERG",
        }
    }
}

/// The records of one request.
#[derive(Debug, Default)]
pub struct RequestLogs {
    records: Mutex<Vec<Record>>,
    /// The active span's id as a big-endian number; 0 for none (span ids are never 0).
    active_span: AtomicU64,
}

impl RequestLogs {
    /// Sets the span that lines logged from now on belong to (Kong's active span).
    pub fn set_active_span(&self, span_id: Option<[u8; 8]>) {
        let id = span_id.map_or(0, u64::from_be_bytes);
        self.active_span.store(id, Ordering::Relaxed);
    }

    /// The active span, if one is set.
    pub fn active_span(&self) -> Option<[u8; 8]> {
        let id = self.active_span.load(Ordering::Relaxed);
        (id != 0).then(|| id.to_be_bytes())
    }

    /// Takes the records captured so far.
    pub fn take(&self) -> Vec<Record> {
        self.records
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }
}

/// Held by each plugin instance that exports logs: capture runs while one exists.
#[derive(Debug)]
pub struct Enabled(());

impl Enabled {
    /// Turns capture on until the returned value is dropped.
    pub fn acquire() -> Self {
        ENABLED.fetch_add(1, Ordering::Relaxed);
        Self(())
    }
}

impl Drop for Enabled {
    fn drop(&mut self) {
        ENABLED.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whether any plugin instance exports logs.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed) > 0
}

/// A buffer for a request starting now, when capture is on.
pub fn request_buffer() -> Option<Arc<RequestLogs>> {
    enabled().then(Arc::default)
}

/// Runs `fut` with `logs` as the request whose lines are captured. A plain function, not an
/// `async` one, so the returned future holds `fut` once rather than twice.
pub fn scope<F: Future>(logs: Arc<RequestLogs>, fut: F) -> impl Future<Output = F::Output> {
    REQUEST.scope(logs, fut)
}

/// Runs `f` with `logs` (when there is a buffer) as the request whose lines are captured.
pub fn sync_scope<R>(logs: Option<&Arc<RequestLogs>>, f: impl FnOnce() -> R) -> R {
    match logs {
        Some(logs) => REQUEST.sync_scope(Arc::clone(logs), f),
        None => f(),
    }
}

/// Takes the worker records captured since the last call.
pub fn take_worker() -> Vec<Record> {
    if !WORKER_PENDING.swap(false, Ordering::Acquire) {
        return Vec::new();
    }
    WORKER
        .lock()
        .map(|mut r| std::mem::take(&mut *r))
        .unwrap_or_default()
}

fn push(buffer: &Mutex<Vec<Record>>, record: Record) {
    if let Ok(mut records) = buffer.lock() {
        if records.len() < MAX_RECORDS {
            records.push(record);
        }
    }
}

/// Collects an event's message and fields into one line.
#[derive(Default)]
struct Body {
    message: String,
    fields: String,
}

impl Visit for Body {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            write!(self.fields, " {}={value}", field.name()).ok();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            write!(self.message, "{value:?}").ok();
        } else {
            write!(self.fields, " {}={value:?}", field.name()).ok();
        }
    }
}

/// The `tracing` layer feeding the buffers; give it the kong.conf `log_level` as its filter.
#[derive(Debug, Default, Clone, Copy)]
pub struct CaptureLayer;

impl<S: Subscriber> Layer<S> for CaptureLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if !enabled() || !meta.target().starts_with(OWN_TARGET) {
            return;
        }
        let mut body = Body::default();
        event.record(&mut body);
        body.message.push_str(&body.fields);
        let record = Record {
            time_unix_nano: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0),
            severity: Severity::of(meta.level()),
            body: body.message,
            file: meta.file().unwrap_or_default(),
            line: meta.line().unwrap_or(0),
            target: meta.target(),
            span_id: None,
        };
        let in_request = REQUEST.try_with(|logs| {
            let record = Record {
                span_id: logs.active_span(),
                ..record.clone()
            };
            push(&logs.records, record);
        });
        if in_request.is_err() {
            push(&WORKER, record);
            WORKER_PENDING.store(true, Ordering::Release);
        }
    }
}

/// The level filter for [`CaptureLayer`] matching kong.conf `log_level`.
pub fn level_filter(log_level: &str) -> tracing_subscriber::filter::LevelFilter {
    use tracing_subscriber::filter::LevelFilter;
    match Severity::from_log_level(log_level) {
        Severity::Debug => LevelFilter::DEBUG,
        Severity::Info | Severity::Notice => LevelFilter::INFO,
        Severity::Warn => LevelFilter::WARN,
        _ => LevelFilter::ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn request_and_worker_lines_go_to_their_buffers_and_libraries_are_skipped() {
        let subscriber = tracing_subscriber::registry().with(CaptureLayer);
        let _enabled = Enabled::acquire();
        tracing::subscriber::with_default(subscriber, || {
            let logs = Arc::new(RequestLogs::default());
            sync_scope(Some(&logs), || {
                tracing::warn!(peer = "10.0.0.1", "upstream responded slowly");
            });
            tracing::error!("outside");
            sync_scope(Some(&logs), || {
                tracing::error!(target: "hyper_util::client", "library line");
            });
            let request = logs.take();
            assert_eq!(request.len(), 1);
            assert_eq!(request[0].body, "upstream responded slowly peer=10.0.0.1");
            assert_eq!(request[0].severity, Severity::Warn);
            assert!(request[0].file.ends_with("logs.rs"));
            assert!(request[0].line > 0);
            assert!(take_worker().iter().any(|r| r.body == "outside"));
            for _ in 0..MAX_RECORDS + 5 {
                sync_scope(Some(&logs), || tracing::info!("many"));
            }
            assert_eq!(logs.take().len(), MAX_RECORDS, "bounded per request");
        });
    }

    #[test]
    fn severities_follow_kong() {
        assert_eq!(Severity::from_log_level("notice").number(), 11);
        assert_eq!(Severity::from_log_level("error").text(), "ERR");
        assert_eq!(Severity::of(&Level::WARN).number(), 13);
        assert!(Severity::of(&Level::DEBUG) < Severity::from_log_level("notice"));
        assert_eq!(Severity::Emerg.number(), 23);
    }
}
