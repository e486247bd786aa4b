//! A byte-sized sending queue end to end through the binary: OTLP in, otlphttp out to a
//! downstream that is down, `sending_queue.sizer: bytes`.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;

use crate::support::process::{free_port, Collector};
use crate::support::sink::Sink;
use crate::support::spans::{own_metric, request, wait_for_ids};

/// The queue holds three requests' worth of bytes: past that the client gets
/// `UNAVAILABLE`, a request bigger than the whole queue is refused too, own metrics count
/// in bytes, and once the downstream is up every accepted span arrives exactly once.
#[test]
fn a_byte_sized_queue_refuses_past_its_bytes_and_delivers_what_it_took() {
    let (grpc, downstream, metrics) = (free_port(), free_port(), free_port());
    let downstream: SocketAddr = format!("127.0.0.1:{downstream}").parse().unwrap();
    let per = 5;
    let size = request(0, per).encoded_len();
    let capacity = 3 * size;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("collector.yaml");
    std::fs::write(
        &config,
        format!(
            "receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
exporters:
  otlphttp:
    endpoint: http://{downstream}
    retry_on_failure:
      initial_interval: 100ms
      max_interval: 300ms
      max_elapsed_time: 0
    sending_queue:
      sizer: bytes
      queue_size: {capacity}
      num_consumers: 1
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlphttp]
"
        ),
    )
    .unwrap();
    let collector = Collector::start(&config, &[], grpc);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (acknowledged, refused, too_large) = runtime.block_on(async {
        let mut client = TraceServiceClient::connect(format!("http://127.0.0.1:{grpc}"))
            .await
            .unwrap();
        let mut acknowledged = BTreeSet::new();
        let mut refused = 0;
        for b in 0..12 {
            match client.export(request(b * per, per)).await {
                Ok(_) => acknowledged.extend(b * per..(b + 1) * per),
                Err(status) => {
                    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
                    assert!(
                        status.message().contains("sending queue is full"),
                        "{status:?}"
                    );
                    refused += per;
                }
            }
        }
        let big = client.export(request(1000, 4 * per)).await.unwrap_err();
        (acknowledged, refused, big)
    });
    // Closes the client's connection, which a graceful shutdown would wait for.
    drop(runtime);
    // Three requests fill the queue; the dispatcher holds at most two more (one exporting,
    // one waiting for the only consumer).
    assert!(
        (3 * per..=5 * per).contains(&acknowledged.len()),
        "{acknowledged:?}"
    );
    assert!(refused > 0);
    assert_eq!(too_large.code(), tonic::Code::Unavailable, "{too_large:?}");
    assert!(
        too_large.message().contains("element size too large"),
        "{too_large:?}"
    );

    assert_eq!(
        own_metric(metrics, "otelcol_exporter_queue_capacity{"),
        Some(capacity as f64)
    );
    let queued = own_metric(metrics, "otelcol_exporter_queue_size{").unwrap();
    assert!(
        queued > 0.0 && queued <= capacity as f64 && queued % size as f64 == 0.0,
        "{queued} bytes queued, {size} per request"
    );
    assert_eq!(
        own_metric(metrics, "otelcol_exporter_enqueue_failed_spans{"),
        Some((refused + 4 * per) as f64)
    );

    let sink = Sink::http_at(downstream);
    let got = wait_for_ids(&sink, &acknowledged);
    let (code, _, stderr) = collector.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    let expected: Vec<usize> = acknowledged.into_iter().collect();
    assert_eq!(got, expected, "every accepted span once, no refused one");
    assert!(
        stderr.contains("Dropping data because sending_queue is full."),
        "{stderr}"
    );
}
