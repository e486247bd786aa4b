//! Numbered spans for delivery tests: requests whose span names carry an id, the ids a
//! sink accepted, and the own metrics a collector reports about them.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use otelpipe::pipeline::Batch;

use super::sink::Sink;

/// A request of `n` spans named `span-<id>` for the ids `first..first + n`, with
/// fixed-width ids, so that every request of `n` spans encodes to the same number of bytes.
pub(crate) fn request(first: usize, n: usize) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: (first..first + n)
                    .map(|i| Span {
                        name: format!("span-{i:06}"),
                        trace_id: vec![1; 16],
                        span_id: (i as u64 + 1).to_be_bytes().to_vec(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// The span ids the sink accepted (answered 200), with repetitions, sorted.
pub(crate) fn accepted_ids(sink: &Sink) -> Vec<usize> {
    let mut ids: Vec<usize> = sink
        .received()
        .iter()
        .filter(|r| r.status == 200)
        .flat_map(|r| match &r.batch {
            Batch::Traces(rs) => rs.clone(),
            _ => Vec::new(),
        })
        .flat_map(|r| r.scope_spans)
        .flat_map(|s| s.spans)
        .map(|s| s.name.trim_start_matches("span-").parse().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

/// Waits (at most 60 s) until the sink accepted every id in `ids`; what it accepted then.
pub(crate) fn wait_for_ids(sink: &Sink, ids: &BTreeSet<usize>) -> Vec<usize> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = accepted_ids(sink);
        let seen: BTreeSet<usize> = got.iter().copied().collect();
        if ids.is_subset(&seen) || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The sum over the own-metric series starting with `prefix` on the collector's metrics
/// port (None when there is none).
pub(crate) fn own_metric(metrics_port: u16, prefix: &str) -> Option<f64> {
    let out = std::process::Command::new("curl")
        .args(["-s", "--max-time", "10"])
        .arg(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .output()
        .expect("curl");
    let values: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}
