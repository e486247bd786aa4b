use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::pipeline::{Capture, ErrorKind};

const MIB: u64 = 1 << 20;

fn config(yaml: &str) -> Result<Config, FieldError> {
    let config: Config = decode(&yaml_serde::from_str(yaml).unwrap())?;
    config.validate().map(|()| config)
}

fn spans(n: usize) -> Batch {
    Batch::Traces(vec![ResourceSpans {
        scope_spans: vec![ScopeSpans {
            spans: (0..n).map(|_| Span::default()).collect(),
            ..Default::default()
        }],
        ..Default::default()
    }])
}

fn host() -> Host {
    let (_tx, ready) = watch::channel(true);
    Host {
        ready,
        shutdown: CancellationToken::new(),
        extensions: Default::default(),
    }
}

/// A limiter whose memory use is whatever `usage` holds.
fn limiter(limits: Limits, probe: Arc<AtomicU64>) -> (MemoryLimiter, Arc<Capture>) {
    let monitor = Monitor::new(limits, Box::new(move || Ok(probe.load(Ordering::Relaxed))));
    let capture = Arc::new(Capture::new());
    let limiter = MemoryLimiter::new(
        Arc::new(monitor),
        Duration::from_secs(1),
        "memory_limiter",
        Signal::Traces,
        capture.clone(),
    );
    (limiter, capture)
}

#[test]
fn validation_messages_and_paths() {
    let err = config("limit_mib: 100").unwrap_err();
    assert_eq!(err.message, "'check_interval' must be greater than zero");
    assert_eq!(err.path, ["check_interval"]);
    let err = config("check_interval: 1s").unwrap_err();
    assert_eq!(
        err.message,
        "'limit_mib' or 'limit_percentage' must be greater than zero"
    );
    let err = config("check_interval: 1s\nlimit_mib: 100\nspike_limit_mib: 100").unwrap_err();
    assert_eq!(
        err.message,
        "'spike_limit_mib' must be smaller than 'limit_mib'"
    );
    assert_eq!(err.path, ["spike_limit_mib"]);
    let err = config("check_interval: 1s\nlimit_percentage: 101").unwrap_err();
    assert!(
        err.message.contains("less than or equal to hundred"),
        "{err}"
    );
    let err =
        config("check_interval: 1s\nlimit_percentage: 50\nspike_limit_percentage: 60").unwrap_err();
    assert_eq!(
        err.message,
        "'spike_limit_percentage' must be smaller than 'limit_percentage'"
    );
    assert!(config("check_interval: 1s\nlimit_mib: 100\nbogus: 1").is_err());
    config("check_interval: 1s\nlimit_mib: 4000\nspike_limit_mib: 800").unwrap();
}

#[test]
fn limits_from_mib_and_percentages() {
    let c = config("check_interval: 1s\nlimit_mib: 100").unwrap();
    let l = c.limits(|| unreachable!("not asked")).unwrap();
    assert_eq!(l.hard, 100 * MIB);
    assert_eq!(l.soft, 80 * MIB);
    let c = config("check_interval: 1s\nlimit_mib: 100\nspike_limit_mib: 30").unwrap();
    assert_eq!(c.limits(|| Ok(0)).unwrap().soft, 70 * MIB);
    let c = config("check_interval: 1s\nlimit_percentage: 50\nspike_limit_percentage: 10").unwrap();
    let l = c.limits(|| Ok(1000 * MIB)).unwrap();
    assert_eq!(l.hard, 500 * MIB);
    assert_eq!(l.soft, 400 * MIB);
    let c = config("check_interval: 1s\nlimit_percentage: 50").unwrap();
    let l = c.limits(|| Ok(1000 * MIB)).unwrap();
    assert_eq!(l.soft, 400 * MIB);
}

#[tokio::test]
async fn refuses_above_soft_limit_and_resumes_below() {
    let usage = Arc::new(AtomicU64::new(10 * MIB));
    let limits = Limits {
        hard: 100 * MIB,
        soft: 80 * MIB,
    };
    let (limiter, capture) = limiter(limits, usage.clone());
    limiter.start(&host()).await.unwrap();
    let client = ClientInfo::default();

    limiter.consume(spans(3), &client).await.unwrap();
    assert_eq!(capture.item_count(), 3);

    usage.store(85 * MIB, Ordering::Relaxed);
    limiter.monitor.check();
    let err = limiter.consume(spans(2), &client).await.unwrap_err();
    assert_eq!(err.message, REFUSED_MESSAGE);
    assert_eq!(
        err.kind,
        ErrorKind::Retryable {
            retry_after: Some(Duration::from_secs(1))
        }
    );
    assert_eq!(capture.item_count(), 3, "refused data is not passed on");

    usage.store(120 * MIB, Ordering::Relaxed);
    limiter.monitor.check();
    assert!(limiter.consume(spans(1), &client).await.is_err());

    usage.store(50 * MIB, Ordering::Relaxed);
    limiter.monitor.check();
    limiter.consume(spans(4), &client).await.unwrap();
    assert_eq!(capture.item_count(), 7);
    limiter.shutdown().await.unwrap();
}

#[tokio::test]
async fn start_measures_before_the_first_tick() {
    let usage = Arc::new(AtomicU64::new(90 * MIB));
    let limits = Limits {
        hard: 100 * MIB,
        soft: 80 * MIB,
    };
    let (limiter, capture) = limiter(limits, usage);
    limiter.start(&host()).await.unwrap();
    assert!(limiter
        .consume(spans(1), &ClientInfo::default())
        .await
        .is_err());
    assert_eq!(capture.item_count(), 0);
    assert_eq!(limiter.monitor.last_usage(), 90 * MIB);
    limiter.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_ticker_updates_the_verdict() {
    let usage = Arc::new(AtomicU64::new(10 * MIB));
    let limits = Limits {
        hard: 100 * MIB,
        soft: 80 * MIB,
    };
    let (limiter, _capture) = limiter(limits, usage.clone());
    limiter.start(&host()).await.unwrap();
    assert!(!limiter.monitor.refusing());
    usage.store(95 * MIB, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(limiter.monitor.refusing());
    limiter.shutdown().await.unwrap();
}

#[test]
fn a_failed_probe_keeps_the_previous_state() {
    let monitor = Monitor::new(
        Limits { hard: 2, soft: 1 },
        Box::new(|| Err(std::io::Error::other("no /proc"))),
    );
    monitor.check();
    assert!(!monitor.refusing());
}

#[test]
fn one_monitor_per_id_and_limits() {
    let limits = Limits {
        hard: 100 * MIB,
        soft: 80 * MIB,
    };
    let second = Duration::from_secs(1);
    let a = shared_monitor("memory_limiter/shared-test", limits, second);
    let b = shared_monitor("memory_limiter/shared-test", limits, second);
    assert!(
        Arc::ptr_eq(&a, &b),
        "pipelines listing one id share its monitor"
    );
    let other = shared_monitor("memory_limiter/other-test", limits, second);
    assert!(!Arc::ptr_eq(&a, &other));
    let tighter = Limits {
        hard: 10 * MIB,
        soft: 8 * MIB,
    };
    let c = shared_monitor("memory_limiter/shared-test", tighter, second);
    assert!(
        !Arc::ptr_eq(&a, &c),
        "a different config is a different limiter"
    );
}

#[tokio::test(start_paused = true)]
async fn the_last_user_stops_the_ticker() {
    let usage = Arc::new(AtomicU64::new(10 * MIB));
    let limits = Limits {
        hard: 100 * MIB,
        soft: 80 * MIB,
    };
    let probe = usage.clone();
    let monitor = Arc::new(Monitor::new(
        limits,
        Box::new(move || Ok(probe.load(Ordering::Relaxed))),
    ));
    monitor.start(Duration::from_secs(1));
    monitor.start(Duration::from_secs(1));
    monitor.stop();
    usage.store(90 * MIB, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(monitor.refusing(), "one user left: still checking");
    monitor.stop();
    usage.store(10 * MIB, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(monitor.refusing(), "no user left: no more checks");
}
