use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use tokio::sync::watch;

use super::*;
use crate::pipeline::Capture;

fn spans(resources: usize, per_scope: usize) -> Batch {
    Batch::Traces(
        (0..resources)
            .map(|r| ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: (0..per_scope)
                        .map(|i| Span {
                            name: format!("r{r}-s{i}"),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                schema_url: format!("r{r}"),
                ..Default::default()
            })
            .collect(),
    )
}

fn host() -> Host {
    let (_tx, ready) = watch::channel(true);
    Host {
        ready,
        shutdown: CancellationToken::new(),
        extensions: Default::default(),
    }
}

fn processor(yaml: &str) -> (Arc<BatchProcessor>, Arc<Capture>) {
    let config: Config = decode(&yaml_serde::from_str(yaml).unwrap()).unwrap();
    config.validate().unwrap();
    let capture = Arc::new(Capture::new());
    let p = Arc::new(BatchProcessor::new(config, "batch".into(), capture.clone()));
    (p, capture)
}

fn sizes(capture: &Capture) -> Vec<usize> {
    capture.batches().iter().map(Batch::item_count).collect()
}

/// Lets the worker task run (paused time: no wall clock passes).
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn sends_when_size_reached_and_on_timeout() {
    let (p, capture) = processor("send_batch_size: 10\ntimeout: 1s");
    p.start(&host()).await.unwrap();
    let client = ClientInfo::default();
    p.consume(spans(1, 6), &client).await.unwrap();
    settle().await;
    assert!(capture.batches().is_empty());
    p.consume(spans(1, 6), &client).await.unwrap();
    settle().await;
    assert_eq!(sizes(&capture), vec![12]);

    p.consume(spans(1, 3), &client).await.unwrap();
    settle().await;
    tokio::time::advance(Duration::from_millis(999)).await;
    settle().await;
    assert_eq!(sizes(&capture), vec![12]);
    tokio::time::advance(Duration::from_millis(2)).await;
    settle().await;
    assert_eq!(sizes(&capture), vec![12, 3]);
    p.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn splits_at_max_size_keeping_resources() {
    let (p, capture) = processor("send_batch_size: 5\nsend_batch_max_size: 5\ntimeout: 1s");
    p.start(&host()).await.unwrap();
    p.consume(spans(2, 6), &ClientInfo::default())
        .await
        .unwrap();
    settle().await;
    assert_eq!(sizes(&capture), vec![5, 5, 2]);
    let Batch::Traces(second) = &capture.batches()[1] else {
        panic!("traces")
    };
    // The second part spans both resources, each with its own copy of resource data.
    assert_eq!(
        second
            .iter()
            .map(|r| r.schema_url.as_str())
            .collect::<Vec<_>>(),
        ["r0", "r1"]
    );
    p.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn zero_timeout_sends_each_request() {
    let (p, capture) = processor("timeout: 0s");
    p.start(&host()).await.unwrap();
    p.consume(spans(1, 2), &ClientInfo::default())
        .await
        .unwrap();
    settle().await;
    p.consume(spans(1, 3), &ClientInfo::default())
        .await
        .unwrap();
    settle().await;
    assert_eq!(sizes(&capture), vec![2, 3]);
    p.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn shutdown_flushes_once_and_errors_downstream_are_swallowed() {
    let (p, capture) = processor("send_batch_size: 100\ntimeout: 10s");
    p.start(&host()).await.unwrap();
    capture.refuse_next(vec![ConsumeError::retryable("down")]);
    p.consume(spans(1, 4), &ClientInfo::default())
        .await
        .unwrap();
    p.consume(spans(1, 1), &ClientInfo::default())
        .await
        .unwrap();
    p.shutdown().await.unwrap();
    // The one flush was refused downstream: logged, not retried (otelcol's behaviour).
    assert!(capture.batches().is_empty());

    let (p, capture) = processor("send_batch_size: 100\ntimeout: 10s");
    p.start(&host()).await.unwrap();
    p.consume(spans(1, 4), &ClientInfo::default())
        .await
        .unwrap();
    p.shutdown().await.unwrap();
    assert_eq!(sizes(&capture), vec![4]);
}

#[tokio::test(start_paused = true)]
async fn metadata_partitions_and_cardinality_limit() {
    let (p, capture) = processor(
        "send_batch_size: 100\ntimeout: 1s\nmetadata_keys: [tenant]\nmetadata_cardinality_limit: 2",
    );
    p.start(&host()).await.unwrap();
    let client = |t: &str| ClientInfo {
        addr: None,
        metadata: Arc::new(vec![("tenant".into(), t.into())]),
    };
    p.consume(spans(1, 1), &client("a")).await.unwrap();
    p.consume(spans(1, 2), &client("b")).await.unwrap();
    p.consume(spans(1, 3), &client("a")).await.unwrap();
    let err = p.consume(spans(1, 1), &client("c")).await.unwrap_err();
    assert_eq!(err.message, "too many batcher metadata-value combinations");
    assert!(!err.is_retryable());
    settle().await;
    tokio::time::advance(Duration::from_secs(2)).await;
    settle().await;
    let mut got = sizes(&capture);
    got.sort_unstable();
    assert_eq!(got, vec![2, 4]);
    p.shutdown().await.unwrap();
}

#[test]
fn config_rules() {
    let c: Config =
        decode(&yaml_serde::from_str("send_batch_size: 10\nsend_batch_max_size: 5").unwrap())
            .unwrap();
    assert_eq!(
        c.validate().unwrap_err().message,
        "send_batch_max_size must be greater or equal to send_batch_size"
    );
    let c: Config = decode(&RawConfig::Null).unwrap();
    assert_eq!(
        (c.send_batch_size, c.timeout),
        (8192, Duration::from_millis(200))
    );
}
