use std::sync::Mutex as StdMutex;

use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use tokio::sync::watch;

use super::*;

/// Answers each attempt from a script, then succeeds; records attempt times.
#[derive(Default)]
struct Scripted {
    script: StdMutex<Vec<Result<(), ExportError>>>,
    attempts: StdMutex<Vec<(Instant, usize)>>,
}

impl Scripted {
    fn new(mut script: Vec<Result<(), ExportError>>) -> Self {
        script.reverse();
        Self {
            script: StdMutex::new(script),
            attempts: StdMutex::default(),
        }
    }
}

#[async_trait]
impl Export for Scripted {
    async fn export(&self, batch: &Batch) -> Result<(), ExportError> {
        self.attempts
            .lock()
            .unwrap()
            .push((Instant::now(), batch.item_count()));
        self.script.lock().unwrap().pop().unwrap_or(Ok(()))
    }
}

fn logs(n: usize) -> Batch {
    Batch::Logs(vec![ResourceLogs {
        scope_logs: vec![ScopeLogs {
            log_records: vec![LogRecord::default(); n],
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

fn retry(initial: u64, max_elapsed: u64) -> RetryConfig {
    RetryConfig {
        initial_interval: Duration::from_secs(initial),
        randomization_factor: 0.0,
        multiplier: 2.0,
        max_interval: Duration::from_secs(30),
        max_elapsed_time: Duration::from_secs(max_elapsed),
        ..RetryConfig::default()
    }
}

fn exporter(
    script: Vec<Result<(), ExportError>>,
    retry: RetryConfig,
    queue: QueueConfig,
) -> QueuedExporter<Scripted> {
    QueuedExporter::new(
        Scripted::new(script),
        "test",
        Signal::Logs,
        Duration::from_secs(5),
        retry,
        queue,
    )
}

fn gaps(e: &QueuedExporter<Scripted>) -> Vec<u64> {
    let attempts = e.exporter().attempts.lock().unwrap();
    attempts
        .windows(2)
        .map(|w| (w[1].0 - w[0].0).as_secs())
        .collect()
}

async fn drain(e: &QueuedExporter<Scripted>, attempts: usize) {
    for _ in 0..10_000 {
        if e.exporter().attempts.lock().unwrap().len() >= attempts {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn retries_with_backoff_then_succeeds() {
    let e = exporter(
        vec![
            Err(ExportError::retryable("503")),
            Err(ExportError::retryable("503")),
        ],
        retry(1, 300),
        QueueConfig::default(),
    );
    e.start(&host()).await.unwrap();
    e.consume(logs(3), &ClientInfo::default()).await.unwrap();
    drain(&e, 3).await;
    assert_eq!(gaps(&e), vec![1, 2]);
    e.shutdown().await.unwrap();
    assert_eq!(e.exporter().attempts.lock().unwrap().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn throttle_hint_wins_over_shorter_backoff() {
    let e = exporter(
        vec![Err(ExportError::Retryable {
            message: "429".into(),
            throttle: Some(Duration::from_secs(7)),
        })],
        retry(1, 300),
        QueueConfig::default(),
    );
    e.start(&host()).await.unwrap();
    e.consume(logs(1), &ClientInfo::default()).await.unwrap();
    drain(&e, 2).await;
    assert_eq!(gaps(&e), vec![7]);
    e.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_are_not_retried_and_gives_up_past_max_elapsed() {
    let e = exporter(
        vec![Err(ExportError::permanent("400"))],
        retry(1, 300),
        QueueConfig::default(),
    );
    e.start(&host()).await.unwrap();
    e.consume(logs(2), &ClientInfo::default()).await.unwrap();
    drain(&e, 1).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(e.exporter().attempts.lock().unwrap().len(), 1);
    e.shutdown().await.unwrap();

    let always = (0..100)
        .map(|_| Err(ExportError::retryable("down")))
        .collect();
    let e = exporter(always, retry(2, 10), QueueConfig::default());
    e.start(&host()).await.unwrap();
    e.consume(logs(1), &ClientInfo::default()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(120)).await;
    // Waits 2, 4 (total 6); the next wait (8) would pass 10 s: give up after 3 attempts.
    assert_eq!(gaps(&e), vec![2, 4]);
    e.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn full_queue_refuses_with_a_retryable_error() {
    let queue = QueueConfig {
        queue_size: 2,
        num_consumers: 1,
        ..QueueConfig::default()
    };
    // Not started: nothing drains the queue.
    let e = exporter(Vec::new(), retry(1, 300), queue);
    e.consume(logs(1), &ClientInfo::default()).await.unwrap();
    e.consume(logs(1), &ClientInfo::default()).await.unwrap();
    let err = e
        .consume(logs(1), &ClientInfo::default())
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(err.message, "sending queue is full");
    // Once started, the two accepted batches go out.
    e.start(&host()).await.unwrap();
    drain(&e, 2).await;
    e.shutdown().await.unwrap();
    assert_eq!(e.exporter().attempts.lock().unwrap().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn without_queue_the_caller_gets_the_result() {
    let queue = QueueConfig {
        enabled: false,
        ..QueueConfig::default()
    };
    let e = exporter(
        vec![Err(ExportError::permanent("400 bad request"))],
        retry(1, 300),
        queue,
    );
    e.start(&host()).await.unwrap();
    let err = e
        .consume(logs(1), &ClientInfo::default())
        .await
        .unwrap_err();
    assert!(!err.is_retryable());
    assert_eq!(err.message, "400 bad request");
    e.consume(logs(1), &ClientInfo::default()).await.unwrap();
    e.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn shutdown_gives_queued_batches_one_attempt() {
    let queue = QueueConfig {
        num_consumers: 1,
        ..QueueConfig::default()
    };
    let always = (0..100)
        .map(|_| Err(ExportError::retryable("down")))
        .collect();
    let e = exporter(always, retry(1, 0), queue);
    e.start(&host()).await.unwrap();
    for _ in 0..3 {
        e.consume(logs(1), &ClientInfo::default()).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    e.shutdown().await.unwrap();
    // First batch: its attempt, then the retry wait is interrupted; the two still queued get
    // one attempt each.
    assert_eq!(e.exporter().attempts.lock().unwrap().len(), 3);
}

/// A fan-out over two queues refuses a batch before either took it when one is full, so
/// the client's retry duplicates nothing in the other.
#[tokio::test(start_paused = true)]
async fn fan_out_is_all_or_nothing_over_queues() {
    use crate::pipeline::Fanout;
    let small = QueueConfig {
        queue_size: 1,
        ..QueueConfig::default()
    };
    let roomy = QueueConfig {
        queue_size: 10,
        ..QueueConfig::default()
    };
    // Not started: nothing drains, so the queues' contents are what they accepted.
    let a = Arc::new(exporter(Vec::new(), retry(1, 300), roomy));
    let b = Arc::new(exporter(Vec::new(), retry(1, 300), small));
    let fanout = Fanout::new(vec![a.clone(), b.clone()]);
    fanout
        .consume(logs(1), &ClientInfo::default())
        .await
        .unwrap();
    let err = fanout
        .consume(logs(2), &ClientInfo::default())
        .await
        .unwrap_err();
    assert_eq!(err.message, "sending queue is full");
    assert!(err.is_retryable());
    // Nested fan-outs (a receiver feeding two exporter-only pipelines) reserve too.
    let outer = Fanout::new(vec![Arc::new(Fanout::new(vec![a.clone(), b.clone()]))]);
    assert!(outer
        .consume(logs(3), &ClientInfo::default())
        .await
        .is_err());

    a.start(&host()).await.unwrap();
    b.start(&host()).await.unwrap();
    drain(&a, 1).await;
    drain(&b, 1).await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    assert_eq!(
        a.exporter().attempts.lock().unwrap().len(),
        1,
        "the refused batches never reached the queue with room"
    );
    assert_eq!(b.exporter().attempts.lock().unwrap().len(), 1);
}

fn sized(sizer: Sizer, queue_size: usize) -> QueueConfig {
    QueueConfig {
        sizer,
        queue_size,
        num_consumers: 1,
        ..QueueConfig::default()
    }
}

async fn offer(e: &QueuedExporter<Scripted>, batch: Batch) -> Result<(), ConsumeError> {
    e.consume(batch, &ClientInfo::default()).await
}

/// Bytes of `batch` as the exporter would send it.
fn wire_len(batch: &Batch) -> usize {
    batch.encode_request().len()
}

#[tokio::test(start_paused = true)]
async fn each_sizer_fills_and_refuses_at_the_exact_boundary() {
    // requests: two batches, whatever their size.
    let e = exporter(Vec::new(), retry(1, 300), sized(Sizer::Requests, 2));
    offer(&e, logs(50)).await.unwrap();
    offer(&e, logs(50)).await.unwrap();
    let err = offer(&e, logs(1)).await.unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(err.message, "sending queue is full");
    assert_eq!(e.capacity.used(), 2);

    // items: 2 + 3 fill five exactly, one more does not fit.
    let e = exporter(Vec::new(), retry(1, 300), sized(Sizer::Items, 5));
    offer(&e, logs(2)).await.unwrap();
    offer(&e, logs(3)).await.unwrap();
    assert_eq!(e.capacity.used(), 5);
    let err = offer(&e, logs(1)).await.unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(err.message, "sending queue is full");

    // bytes: the encoded requests, to the byte.
    let (a, b) = (logs(3), logs(7));
    let exact = wire_len(&a) + wire_len(&b);
    let e = exporter(Vec::new(), retry(1, 300), sized(Sizer::Bytes, exact));
    offer(&e, a.clone()).await.unwrap();
    offer(&e, b.clone()).await.unwrap();
    assert_eq!(e.capacity.used(), exact as u64);
    assert_eq!(
        offer(&e, logs(1)).await.unwrap_err().message,
        "sending queue is full"
    );
    let e = exporter(Vec::new(), retry(1, 300), sized(Sizer::Bytes, exact - 1));
    offer(&e, a).await.unwrap();
    assert_eq!(
        offer(&e, b).await.unwrap_err().message,
        "sending queue is full",
        "one byte short"
    );
}

#[tokio::test(start_paused = true)]
async fn a_batch_bigger_than_the_whole_queue_is_refused() {
    let e = exporter(Vec::new(), retry(1, 300), sized(Sizer::Items, 3));
    let err = offer(&e, logs(4)).await.unwrap_err();
    assert_eq!(err.message, "element size too large");
    assert!(err.is_retryable(), "otelcol's error is not a permanent one");
    assert_eq!(e.capacity.used(), 0);
    offer(&e, logs(3)).await.unwrap();

    let batch = logs(2);
    let e = exporter(
        Vec::new(),
        retry(1, 300),
        sized(Sizer::Bytes, wire_len(&batch) - 1),
    );
    assert_eq!(
        offer(&e, batch).await.unwrap_err().message,
        "element size too large"
    );
}

#[tokio::test(start_paused = true)]
async fn drained_items_free_their_capacity() {
    let e = exporter(Vec::new(), retry(1, 300), sized(Sizer::Items, 4));
    offer(&e, logs(4)).await.unwrap();
    assert!(offer(&e, logs(1)).await.is_err());
    e.start(&host()).await.unwrap();
    drain(&e, 1).await;
    assert_eq!(e.capacity.used(), 0);
    offer(&e, logs(4)).await.unwrap();
    drain(&e, 2).await;
    e.shutdown().await.unwrap();
    let attempts = e.exporter().attempts.lock().unwrap();
    let sent: Vec<usize> = attempts.iter().map(|a| a.1).collect();
    assert_eq!(sent, vec![4, 4]);
}

#[tokio::test(start_paused = true)]
async fn a_blocking_sized_queue_waits_for_room() {
    let queue = QueueConfig {
        block_on_overflow: Some(true),
        ..sized(Sizer::Items, 3)
    };
    let e = Arc::new(exporter(Vec::new(), retry(1, 300), queue));
    offer(&e, logs(3)).await.unwrap();
    let waiting = tokio::spawn({
        let e = e.clone();
        async move { offer(&e, logs(2)).await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!waiting.is_finished(), "no room yet");
    e.start(&host()).await.unwrap();
    waiting.await.unwrap().unwrap();
    drain(&e, 2).await;
    e.shutdown().await.unwrap();
    assert_eq!(e.exporter().attempts.lock().unwrap().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn reservations_hold_sized_room_until_committed_or_dropped() {
    let e = exporter(Vec::new(), retry(1, 300), sized(Sizer::Items, 5));
    let held = e.try_reserve(&logs(4)).unwrap().unwrap();
    assert_eq!(e.capacity.used(), 4);
    assert_eq!(
        e.try_reserve(&logs(2)).err().unwrap().message,
        "sending queue is full"
    );
    drop(held);
    assert_eq!(e.capacity.used(), 0);
    let held = e.try_reserve(&logs(5)).unwrap().unwrap();
    held.commit(logs(5), &ClientInfo::default()).unwrap();
    assert_eq!(e.capacity.used(), 5);
}

#[tokio::test(start_paused = true)]
async fn empty_batches_are_accepted_and_dropped_when_sized_by_items() {
    let e = exporter(Vec::new(), retry(1, 300), sized(Sizer::Items, 1));
    offer(&e, logs(0)).await.unwrap();
    assert_eq!(e.capacity.used(), 0);
    e.start(&host()).await.unwrap();
    e.shutdown().await.unwrap();
    assert!(e.exporter().attempts.lock().unwrap().is_empty());
}

#[test]
fn sizer_is_read_from_yaml() {
    let q: QueueConfig = yaml_serde::from_str("sizer: bytes\nqueue_size: 100").unwrap();
    assert_eq!(q.sizer, Sizer::Bytes);
    let q: QueueConfig = yaml_serde::from_str("sizer: items").unwrap();
    assert_eq!(q.sizer, Sizer::Items);
    assert!(q.validate().is_ok());
    assert_eq!(QueueConfig::default().sizer, Sizer::Requests);
    assert!(yaml_serde::from_str::<QueueConfig>("sizer: pages").is_err());
    let q: QueueConfig = yaml_serde::from_str("sizer: bytes\nstorage: file_storage").unwrap();
    assert!(q.validate().is_ok(), "the persistent queue sizes too");
}

#[test]
fn config_validation_messages() {
    let r = RetryConfig {
        randomization_factor: 2.0,
        ..RetryConfig::default()
    };
    assert_eq!(
        r.validate().unwrap_err().to_string(),
        "retry_on_failure::randomization_factor: 'randomization_factor' must be within [0, 1]"
    );
    let r = RetryConfig {
        max_elapsed_time: Duration::from_secs(1),
        ..RetryConfig::default()
    };
    assert!(r
        .validate()
        .unwrap_err()
        .message
        .contains("must not be less than 'initial_interval'"));
    let q = QueueConfig {
        queue_size: 0,
        ..QueueConfig::default()
    };
    assert_eq!(
        q.validate().unwrap_err().message,
        "`queue_size` must be positive"
    );
    let q = QueueConfig {
        enabled: false,
        queue_size: 0,
        ..QueueConfig::default()
    };
    assert!(q.validate().is_ok());
}

mod persistent_queue {
    use super::*;
    use crate::component::Extensions;
    use crate::extensions::file_storage::{Config as StorageConfig, FileStorage};

    fn storage_host(dir: &std::path::Path) -> Host {
        let (_tx, ready) = watch::channel(true);
        let config = StorageConfig {
            directory: dir.to_owned(),
            ..StorageConfig::default()
        };
        let storage: Arc<dyn Component> =
            Arc::new(FileStorage::new("file_storage/q".into(), config));
        Host {
            ready,
            shutdown: CancellationToken::new(),
            extensions: Extensions::new(vec![("file_storage/q".into(), storage)]),
        }
    }

    fn persistent(queue_size: usize) -> QueueConfig {
        QueueConfig {
            num_consumers: 1,
            queue_size,
            storage: Some("file_storage/q".into()),
            ..QueueConfig::default()
        }
    }

    fn down() -> Vec<Result<(), ExportError>> {
        (0..1000)
            .map(|_| Err(ExportError::retryable("down")))
            .collect()
    }

    fn items(e: &QueuedExporter<Scripted>) -> Vec<usize> {
        let mut n: Vec<usize> = e
            .exporter()
            .attempts
            .lock()
            .unwrap()
            .iter()
            .map(|a| a.1)
            .collect();
        n.sort_unstable();
        n
    }

    #[tokio::test(start_paused = true)]
    async fn what_could_not_be_sent_is_sent_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let host = storage_host(dir.path());
        let e = exporter(down(), retry(1, 0), persistent(10));
        e.start(&host).await.unwrap();
        for n in 1..=3 {
            e.consume(logs(n), &ClientInfo::default()).await.unwrap();
        }
        drain(&e, 2).await;
        e.shutdown().await.unwrap();
        drop(e);
        assert!(dir.path().join("exporter_test__logs").is_dir());

        // The next run sends all three, each once.
        let e = exporter(Vec::new(), retry(1, 0), persistent(10));
        e.start(&host).await.unwrap();
        drain(&e, 3).await;
        e.shutdown().await.unwrap();
        assert_eq!(items(&e), [1, 2, 3]);
        drop(e);

        // They were acknowledged: a third run has nothing to send.
        let e = exporter(Vec::new(), retry(1, 0), persistent(10));
        e.start(&host).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        e.shutdown().await.unwrap();
        assert!(items(&e).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_persistent_queue_counts_bytes_and_recovered_items() {
        let dir = tempfile::tempdir().unwrap();
        let host = storage_host(dir.path());
        let (a, b) = (logs(3), logs(7));
        let exact = wire_len(&a) + wire_len(&b);
        let sized_persistent = |sizer, queue_size| QueueConfig {
            sizer,
            ..persistent(queue_size)
        };
        // Not draining: the exporter is started only to open the log, and the dispatcher
        // does not run before the test yields (current-thread runtime).
        let e = exporter(down(), retry(1, 0), sized_persistent(Sizer::Bytes, exact));
        e.start(&host).await.unwrap();
        let queue = e.persistent.get().unwrap().clone();
        e.consume(a, &ClientInfo::default()).await.unwrap();
        let held = e.try_reserve(&b).unwrap().unwrap();
        assert_eq!(
            e.try_reserve(&logs(1)).err().unwrap().message,
            "sending queue is full"
        );
        held.commit(b, &ClientInfo::default()).unwrap();
        assert_eq!(queue.used(), exact as u64);
        let err = e
            .consume(logs(1), &ClientInfo::default())
            .await
            .unwrap_err();
        assert!(err.is_retryable());
        assert_eq!(err.message, "sending queue is full");
        assert_eq!(
            e.consume(logs(30), &ClientInfo::default())
                .await
                .unwrap_err()
                .message,
            "element size too large"
        );
        drop(queue);
        e.shutdown().await.unwrap();
        drop(e);

        // Restarted with the items sizer, the recovered records count their 3 + 7 items.
        let e = exporter(down(), retry(1, 0), sized_persistent(Sizer::Items, 10));
        e.start(&host).await.unwrap();
        assert_eq!(e.persistent.get().unwrap().used(), 10);
        e.shutdown().await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_failures_are_dropped_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let host = storage_host(dir.path());
        let e = exporter(
            vec![Err(ExportError::permanent("400"))],
            retry(1, 0),
            persistent(10),
        );
        e.start(&host).await.unwrap();
        e.consume(logs(4), &ClientInfo::default()).await.unwrap();
        drain(&e, 1).await;
        e.shutdown().await.unwrap();
        drop(e);
        let e = exporter(Vec::new(), retry(1, 0), persistent(10));
        e.start(&host).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        e.shutdown().await.unwrap();
        assert!(items(&e).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_persistent_queue_refuses_with_a_retryable_error() {
        let dir = tempfile::tempdir().unwrap();
        let host = storage_host(dir.path());
        let e = exporter(down(), retry(1, 0), persistent(2));
        let err = e
            .consume(logs(1), &ClientInfo::default())
            .await
            .unwrap_err();
        assert_eq!(err.message, "exporter is not started");
        e.start(&host).await.unwrap();
        // The first is taken by the one consumer (retrying), two wait, the fourth is refused.
        e.consume(logs(1), &ClientInfo::default()).await.unwrap();
        drain(&e, 1).await;
        e.consume(logs(1), &ClientInfo::default()).await.unwrap();
        e.consume(logs(1), &ClientInfo::default()).await.unwrap();
        let err = e
            .consume(logs(1), &ClientInfo::default())
            .await
            .unwrap_err();
        assert!(err.is_retryable());
        assert_eq!(err.message, "sending queue is full");
        e.shutdown().await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_blocking_persistent_queue_waits_for_room() {
        let dir = tempfile::tempdir().unwrap();
        let host = storage_host(dir.path());
        let queue = QueueConfig {
            blocking: true,
            ..persistent(1)
        };
        let e = Arc::new(exporter(
            vec![Err(ExportError::retryable("503"))],
            retry(1, 0),
            queue,
        ));
        e.start(&host).await.unwrap();
        e.consume(logs(1), &ClientInfo::default()).await.unwrap();
        drain(&e, 1).await;
        e.consume(logs(2), &ClientInfo::default()).await.unwrap();
        // Full: this one waits until the retried first batch is through.
        let waiting = {
            let e = e.clone();
            tokio::spawn(async move { e.consume(logs(3), &ClientInfo::default()).await })
        };
        waiting.await.unwrap().unwrap();
        drain(&e, 4).await;
        e.shutdown().await.unwrap();
        assert_eq!(items(&e), [1, 1, 2, 3]);
    }

    #[tokio::test(start_paused = true)]
    async fn reservations_hold_room_until_committed_or_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let host = storage_host(dir.path());
        let e = exporter(down(), retry(1, 0), persistent(1));
        e.start(&host).await.unwrap();
        let held = e.try_reserve(&logs(1)).unwrap().expect("room");
        let err = e.try_reserve(&logs(1)).err().unwrap();
        assert_eq!(err.message, "sending queue is full");
        assert!(e.consume(logs(1), &ClientInfo::default()).await.is_err());
        drop(held);
        let held = e.try_reserve(&logs(5)).unwrap().expect("room again");
        held.commit(logs(5), &ClientInfo::default()).unwrap();
        drain(&e, 1).await;
        e.shutdown().await.unwrap();
        assert_eq!(items(&e)[0], 5);
    }

    #[tokio::test]
    async fn a_missing_storage_extension_fails_the_start() {
        let e = exporter(Vec::new(), retry(1, 0), persistent(2));
        let err = e.start(&host()).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "storage extension \"file_storage/q\" not found"
        );
    }
}
