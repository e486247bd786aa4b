//! Delivery end to end through the binary: memory_limiter refusals, outages of the
//! downstream, the persistent queue across `kill -9`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;

use crate::support::process::{free_port, Collector};
use crate::support::sink::Sink;
use crate::support::spans::{own_metric, request, wait_for_ids};

fn write_config(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let path = dir.path().join("collector.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn curl(args: &[&str]) -> String {
    let out = std::process::Command::new("curl")
        .args(["-s", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A limit far below what any process uses: the limiter refuses from the first check, over
/// gRPC (`UNAVAILABLE`) and HTTP (503 with `Retry-After`), counts the refusals, and the
/// collector keeps serving.
#[test]
fn memory_limiter_refuses_with_unavailable_and_503() {
    let (grpc, http, metrics) = (free_port(), free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        &dir,
        &format!(
            "receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
      http:
        endpoint: 127.0.0.1:{http}
processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: 1
exporters:
  debug:
    verbosity: basic
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter]
      exporters: [debug]
"
        ),
    );
    let collector = Collector::start(&config, &[], grpc);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let status = runtime.block_on(async {
        let mut client = TraceServiceClient::connect(format!("http://127.0.0.1:{grpc}"))
            .await
            .unwrap();
        client.export(request(0, 3)).await.unwrap_err()
    });
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        status
            .message()
            .contains("data refused due to high memory usage"),
        "{status:?}"
    );

    let body = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"http"},{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060709","name":"http2"}]}]}]}"#;
    let headers = curl(&[
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-H",
        "Content-Type: application/json",
        "--data",
        body,
        &format!("http://127.0.0.1:{http}/v1/traces"),
    ]);
    let headers = headers.to_ascii_lowercase();
    assert!(headers.starts_with("http/1.1 503"), "{headers}");
    assert!(headers.contains("\r\nretry-after: 1\r\n"), "{headers}");

    assert_eq!(
        own_metric(metrics, "otelcol_processor_refused_spans{"),
        Some(5.0)
    );
    assert_eq!(
        own_metric(metrics, "otelcol_receiver_refused_spans{"),
        Some(5.0)
    );

    let (code, _, stderr) = collector.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("Memory usage is above soft limit. Refusing data."),
        "{stderr}"
    );
}

/// What a client saw: ids acknowledged, ids sent but refused or failed.
#[derive(Default)]
struct Sent {
    acknowledged: BTreeSet<usize>,
    unacknowledged: BTreeSet<usize>,
}

/// Sends `batches` requests of `per` spans over gRPC, one after another, stopping at the
/// first transport failure (the collector went away); `progress` counts acknowledged
/// batches as they come.
fn send_batches(port: u16, batches: usize, per: usize, progress: &AtomicUsize) -> Sent {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut sent = Sent::default();
        let mut client = TraceServiceClient::connect(format!("http://127.0.0.1:{port}"))
            .await
            .unwrap();
        for b in 0..batches {
            let ids = b * per..(b + 1) * per;
            match client.export(request(b * per, per)).await {
                Ok(_) => {
                    sent.acknowledged.extend(ids);
                    progress.fetch_add(1, Ordering::Relaxed);
                }
                Err(status) => {
                    sent.unacknowledged.extend(ids);
                    if !status.message().contains("sending queue is full") {
                        break;
                    }
                }
            }
        }
        sent
    })
}

fn queue_config(
    grpc: u16,
    metrics: &str,
    downstream: SocketAddr,
    queue: &str,
    extensions: &str,
) -> String {
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
{queue}
{extensions}
service:
  telemetry:
    metrics:
{metrics}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlphttp]
"
    )
}

/// A downstream that is down (nothing listens) for a while, then comes back on its port:
/// every acknowledged item arrives, exactly once.
#[test]
fn downstream_outage_then_back_delivers_every_item_exactly_once() {
    let (grpc, downstream) = (free_port(), free_port());
    let downstream: SocketAddr = format!("127.0.0.1:{downstream}").parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        &dir,
        &queue_config(
            grpc,
            "      level: none",
            downstream,
            "      queue_size: 1000",
            "",
        ),
    );
    let collector = Collector::start(&config, &[], grpc);
    let progress = AtomicUsize::new(0);
    let sent = send_batches(grpc, 40, 10, &progress);
    assert_eq!(sent.acknowledged.len(), 400, "the queue takes all of it");

    // The exporter has been retrying against a closed port; now the backend comes back.
    std::thread::sleep(Duration::from_millis(500));
    let sink = Sink::http_at(downstream);
    let got = wait_for_ids(&sink, &sent.acknowledged);
    let (code, _, stderr) = collector.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    let mut expected: Vec<usize> = sent.acknowledged.into_iter().collect();
    let mut got = got;
    got.sort_unstable();
    expected.sort_unstable();
    assert_eq!(got, expected, "each item exactly once");
    assert!(
        stderr.contains("Exporting failed. Will retry the request after interval."),
        "{stderr}"
    );
}

/// A full in-memory queue refuses with UNAVAILABLE; own metrics show the refusals, the
/// queue at its capacity, and the receiver's refused items.
#[test]
fn a_full_queue_refuses_and_own_metrics_show_it() {
    let (grpc, downstream, metrics) = (free_port(), free_port(), free_port());
    let downstream: SocketAddr = format!("127.0.0.1:{downstream}").parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        &dir,
        &queue_config(
            grpc,
            &format!("      address: 127.0.0.1:{metrics}"),
            downstream,
            "      queue_size: 5\n      num_consumers: 1",
            "",
        ),
    );
    let collector = Collector::start(&config, &[], grpc);
    let progress = AtomicUsize::new(0);
    let sent = send_batches(grpc, 20, 2, &progress);
    assert!(!sent.unacknowledged.is_empty(), "some batches are refused");
    let refused = sent.unacknowledged.len() as f64;
    assert_eq!(
        own_metric(metrics, "otelcol_exporter_enqueue_failed_spans{"),
        Some(refused)
    );
    assert_eq!(
        own_metric(metrics, "otelcol_receiver_refused_spans{"),
        Some(refused)
    );
    assert_eq!(
        own_metric(metrics, "otelcol_exporter_queue_capacity{"),
        Some(5.0)
    );
    assert_eq!(
        own_metric(metrics, "otelcol_exporter_queue_size{"),
        Some(5.0)
    );
    let (code, _, stderr) = collector.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("Dropping data because sending_queue is full."),
        "{stderr}"
    );
}

/// A persistent queue under load, exporting to a live backend, `kill -9`, then a restart:
/// every acknowledged item arrives. Sent-but-unacknowledged items (in flight at the kill)
/// may arrive too; duplicates are possible (at-least-once) and reported.
#[test]
fn persistent_queue_survives_kill_9() {
    persistent_queue_restart(true, |c| c.kill9());
}

/// The same with the backend down until after the kill: everything comes from the disk.
#[test]
fn persistent_queue_survives_kill_9_with_the_backend_down() {
    persistent_queue_restart(false, |c| c.kill9());
}

/// SIGTERM with the backend down: shutdown stops within its deadline, the queue keeps
/// what it could not send, and the next start sends it.
#[test]
fn persistent_queue_keeps_what_sigterm_could_not_send() {
    persistent_queue_restart(false, |c| {
        let (code, _, stderr) = c.terminate();
        assert_eq!(code, Some(0), "{stderr}");
        assert!(stderr.contains("Shutdown complete."), "{stderr}");
    });
}

fn persistent_queue_restart(backend_up: bool, stop: impl FnOnce(Collector)) {
    let (grpc, downstream) = (free_port(), free_port());
    let downstream: SocketAddr = format!("127.0.0.1:{downstream}").parse().unwrap();
    let early = backend_up.then(|| Sink::http_at(downstream));
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("queue");
    let config = write_config(
        &dir,
        &queue_config(
            grpc,
            "      level: none",
            downstream,
            "      queue_size: 5000\n      storage: file_storage/queue",
            &format!(
                "extensions:
  file_storage/queue:
    directory: {}
    create_directory: true
",
                storage.display()
            ),
        )
        .replace(
            "service:\n",
            "service:\n  extensions: [file_storage/queue]\n",
        ),
    );
    let collector = Collector::start(&config, &[], grpc);
    let progress = Arc::new(AtomicUsize::new(0));
    let load = {
        let progress = progress.clone();
        std::thread::spawn(move || send_batches(grpc, 2000, 5, &progress))
    };
    // Stop while the client is still sending.
    let deadline = Instant::now() + Duration::from_secs(30);
    while progress.load(Ordering::Relaxed) < 100 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    stop(collector);
    let sent = load.join().unwrap();
    assert!(
        sent.acknowledged.len() >= 500,
        "{}",
        sent.acknowledged.len()
    );

    let sink = early.unwrap_or_else(|| Sink::http_at(downstream));
    let collector = Collector::start(&config, &[], grpc);
    let got = wait_for_ids(&sink, &sent.acknowledged);
    let (code, _, stderr) = collector.terminate();
    assert_eq!(code, Some(0), "{stderr}");

    let seen: BTreeSet<usize> = got.iter().copied().collect();
    let lost: Vec<&usize> = sent.acknowledged.difference(&seen).collect();
    let duplicates = got.len() - seen.len();
    let unacknowledged_arrived = seen.intersection(&sent.unacknowledged).count();
    eprintln!(
        "sent {}, acknowledged {}, received {} ({} distinct), lost {}, duplicates {duplicates}, unacknowledged that arrived {unacknowledged_arrived}",
        sent.acknowledged.len() + sent.unacknowledged.len(),
        sent.acknowledged.len(),
        got.len(),
        seen.len(),
        lost.len(),
    );
    assert!(lost.is_empty(), "lost {} acknowledged items", lost.len());
    assert!(
        seen.iter()
            .all(|id| sent.acknowledged.contains(id) || sent.unacknowledged.contains(id)),
        "only what was sent arrives"
    );
}

/// `sending_queue.storage` naming an extension that is not configured is a config error at
/// its key path; one that is configured but not enabled too.
#[test]
fn storage_must_name_a_configured_enabled_extension() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(
        &path,
        "receivers:
  otlp:
    protocols:
      grpc:
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:1
    sending_queue:
      storage: file_storage/missing
  otlp:
    endpoint: 127.0.0.1:1
    sending_queue:
      storage: file_storage/idle
extensions:
  file_storage/idle:
    directory: /tmp
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlphttp, otlp]
",
    )
    .unwrap();
    let out = crate::support::process::run(&["validate", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("exporters::otlphttp::sending_queue::storage: references storage extension \"file_storage/missing\" which is not configured"),
        "{stderr}"
    );
    assert!(
        stderr.contains("exporters::otlp::sending_queue::storage: storage extension \"file_storage/idle\" is not enabled"),
        "{stderr}"
    );
}

/// Two exporters in one pipeline, one of them down with a tiny queue: a batch its full
/// queue refuses is refused for both (all-or-nothing), so the healthy backend receives
/// exactly the acknowledged items, none of the refused ones.
#[test]
fn a_full_queue_refuses_for_every_exporter_of_the_pipeline() {
    let (grpc, down) = (free_port(), free_port());
    let healthy = Sink::http();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        &dir,
        &format!(
            "receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
exporters:
  otlphttp/healthy:
    endpoint: http://{}
  otlphttp/down:
    endpoint: http://127.0.0.1:{down}
    retry_on_failure:
      initial_interval: 1s
      max_elapsed_time: 0
    sending_queue:
      queue_size: 2
      num_consumers: 1
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlphttp/healthy, otlphttp/down]
",
            healthy.addr
        ),
    );
    let collector = Collector::start(&config, &[], grpc);
    let progress = AtomicUsize::new(0);
    let sent = send_batches(grpc, 20, 3, &progress);
    assert!(!sent.unacknowledged.is_empty(), "the small queue fills");
    assert!(!sent.acknowledged.is_empty());
    let got = wait_for_ids(&healthy, &sent.acknowledged);
    let (code, _, stderr) = collector.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    let mut got = got;
    got.sort_unstable();
    let expected: Vec<usize> = sent.acknowledged.into_iter().collect();
    assert_eq!(got, expected, "the healthy backend got no refused batch");
}

/// A torn tail left in the persistent queue (a write cut short) is detected, counted and
/// skipped at the next start; everything before it is sent, the process keeps running.
#[test]
fn a_torn_persistent_queue_tail_is_counted_and_skipped() {
    let (grpc, downstream, metrics) = (free_port(), free_port(), free_port());
    let downstream: SocketAddr = format!("127.0.0.1:{downstream}").parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("queue");
    let config_text = |metrics: &str| {
        queue_config(
            grpc,
            metrics,
            downstream,
            "      storage: file_storage/queue",
            &format!(
                "extensions:\n  file_storage/queue:\n    directory: {}\n    create_directory: true\n",
                storage.display()
            ),
        )
        .replace(
            "service:\n",
            "service:\n  extensions: [file_storage/queue]\n",
        )
    };
    let config = write_config(&dir, &config_text("      level: none"));
    let collector = Collector::start(&config, &[], grpc);
    let progress = AtomicUsize::new(0);
    let sent = send_batches(grpc, 30, 4, &progress);
    assert_eq!(sent.acknowledged.len(), 120);
    collector.kill9();

    let client = storage.join("exporter_otlphttp__traces");
    let mut segments: Vec<_> = std::fs::read_dir(&client)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "log") && p.file_name().unwrap() != "acks.log"
        })
        .collect();
    segments.sort();
    let newest = segments.last().expect("a segment was written");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(newest)
        .unwrap();
    std::io::Write::write_all(&mut file, &[200, 0, 0, 0, 1, 2, 3]).unwrap();
    drop(file);

    let sink = Sink::http_at(downstream);
    let config = write_config(
        &dir,
        &config_text(&format!("      address: 127.0.0.1:{metrics}")),
    );
    let collector = Collector::start(&config, &[], grpc);
    let got = wait_for_ids(&sink, &sent.acknowledged);
    let seen: BTreeSet<usize> = got.iter().copied().collect();
    assert!(sent.acknowledged.is_subset(&seen));
    assert_eq!(
        own_metric(metrics, "otelpipe_storage_corrupt_records{"),
        Some(1.0)
    );
    let (code, _, stderr) = collector.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("Torn record header"), "{stderr}");
}
