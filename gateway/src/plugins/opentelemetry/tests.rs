use http::HeaderMap;
use serde_json::json;

use super::config::{check, parse};
use super::propagation::{extract, hex, inject, Outgoing};
use super::sample;

fn id16(s: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).unwrap();
    }
    out
}

fn id8(s: &str) -> [u8; 8] {
    let mut out = [0u8; 8];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).unwrap();
    }
    out
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, v.parse().unwrap());
    }
    h
}

fn order(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn sampler_reads_the_first_eight_bytes_little_endian() {
    assert!(sample(&id16("92a54b3e1a7c4f2da9e44b8a6f3e1dab"), 0.5));
    assert!(!sample(&id16("4bf92f3577b34da6a3ce929d0e0e4736"), 0.5));
    assert!(sample(&id16("4bf92f3577b34da6a3ce929d0e0e4736"), 1.0));
    assert!(!sample(&id16("92a54b3e1a7c4f2da9e44b8a6f3e1dab"), 0.0));
}

fn example() -> Outgoing {
    Outgoing {
        trace_id: id16("4bf92f3577b34da6a3ce929d0e0e4736"),
        trace_id_len: None,
        span_id: id8("00f067aa0ba902b7"),
        parent_id: Some(id8("53995c3f42cd8ad8")),
        sampled: true,
        debug: false,
    }
}

#[test]
fn injectors_write_the_fixture_headers() {
    let fixture: serde_json::Value = serde_json::from_str(include_str!(
        "../../../tests/fixtures/propagation-headers.json"
    ))
    .unwrap();
    let cases: &[(&str, &[(&str, &str)])] = &[
        (
            "w3c",
            &[(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )],
        ),
        (
            "b3",
            &[
                ("x-b3-traceid", "4bf92f3577b34da6a3ce929d0e0e4736"),
                ("x-b3-spanid", "00f067aa0ba902b7"),
                ("x-b3-parentspanid", "53995c3f42cd8ad8"),
                ("x-b3-sampled", "1"),
            ],
        ),
        (
            "b3-single",
            &[(
                "b3",
                "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1-53995c3f42cd8ad8",
            )],
        ),
        (
            "jaeger",
            &[(
                "uber-trace-id",
                "4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7:53995c3f42cd8ad8:01",
            )],
        ),
        (
            "ot",
            &[
                ("ot-tracer-traceid", "a3ce929d0e0e4736"),
                ("ot-tracer-spanid", "00f067aa0ba902b7"),
                ("ot-tracer-sampled", "1"),
            ],
        ),
        (
            "datadog",
            &[
                ("x-datadog-trace-id", "11803532876627986230"),
                ("x-datadog-parent-id", "67667974448284343"),
                ("x-datadog-sampling-priority", "1"),
            ],
        ),
        (
            "aws",
            &[(
                "x-amzn-trace-id",
                "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1",
            )],
        ),
        (
            "gcp",
            &[(
                "x-cloud-trace-context",
                "4bf92f3577b34da6a3ce929d0e0e4736/67667974448284343;o=1",
            )],
        ),
    ];
    for (format, expected) in cases {
        let mut h = HeaderMap::new();
        let id = inject(&mut h, format, &example(), &[]).unwrap();
        assert_eq!(h.len(), expected.len(), "{format}: {h:?}");
        for (k, v) in *expected {
            assert_eq!(h.get(*k).unwrap(), v, "{format} {k}");
        }
        let key = if *format == "b3-single" { "b3" } else { format };
        let log = fixture["formats"][format]["log_trace_id"][key]
            .as_str()
            .unwrap();
        if *format == "ot" {
            assert!(log.ends_with(&id), "{format}: fresh ot ids are 8 bytes");
        } else {
            assert_eq!(log, id, "{format}");
        }
    }
}

#[test]
fn extractors_follow_kongs_rules() {
    let all = order(&["w3c", "b3", "jaeger", "ot", "datadog", "aws", "gcp"]);
    let e = extract(
        &headers(&[(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01",
        )]),
        &all,
    )
    .unwrap();
    assert_eq!((e.format, e.sampled), ("w3c", Some(true)));
    assert_eq!(hex(&e.span_id.unwrap()), "b7ad6b7169203331");
    for bad in [
        "01-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01",
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473-b7ad6b7169203331-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-1",
    ] {
        assert!(
            extract(&headers(&[("traceparent", bad)]), &all).is_none(),
            "{bad}"
        );
    }
    let e = extract(
        &headers(&[
            ("x-b3-traceid", "a3ce929d0e0e4736"),
            ("x-b3-spanid", "b7ad6b7169203331"),
            ("x-b3-sampled", "true"),
        ]),
        &all,
    )
    .unwrap();
    assert_eq!((e.format, e.trace_id_len, e.sampled), ("b3", 8, Some(true)));
    assert_eq!(
        hex(&e.trace_id.unwrap()),
        "0000000000000000a3ce929d0e0e4736"
    );
    let e = extract(
        &headers(&[("b3", "4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-d")]),
        &all,
    )
    .unwrap();
    assert!(e.single && e.debug && e.sampled == Some(true));
    let e = extract(
        &headers(&[
            ("x-datadog-trace-id", "11803532876627986230"),
            ("x-datadog-parent-id", "13235353014750950193"),
            ("x-datadog-sampling-priority", "2"),
        ]),
        &all,
    )
    .unwrap();
    assert_eq!(
        hex(&e.trace_id.unwrap()),
        "0000000000000000a3ce929d0e0e4736"
    );
    assert!(extract(
        &headers(&[
            ("x-datadog-trace-id", "1"),
            ("x-datadog-sampling-priority", "5")
        ]),
        &all
    )
    .is_none());
    let e = extract(&headers(&[("x-amzn-trace-id", "Self=1-67a3b1c2-aaaaaaaaaaaaaaaaaaaaaaaa;Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=b7ad6b7169203331;Sampled=0")]), &all).unwrap();
    assert_eq!((e.format, e.sampled), ("aws", Some(false)));
    let e = extract(
        &headers(&[(
            "x-cloud-trace-context",
            "4bf92f3577b34da6a3ce929d0e0e4736/13235353014750950193",
        )]),
        &all,
    )
    .unwrap();
    assert_eq!((e.format, e.sampled), ("gcp", Some(false)));
    assert_eq!(
        u64::from_be_bytes(e.span_id.unwrap()),
        13_235_353_014_750_950_193
    );
    // b3 first (the preserve order) claims a bare tracestate.
    let preserve = order(&["b3", "w3c"]);
    let e = extract(
        &headers(&[
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01",
            ),
            ("tracestate", "vendor=x"),
        ]),
        &preserve,
    )
    .unwrap();
    assert_eq!((e.format, e.trace_id), ("b3", None));
    assert!(extract(&HeaderMap::new(), &all).is_none());
    assert!(extract(
        &headers(&[(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01"
        )]),
        &[]
    )
    .is_none());
}

#[test]
fn config_defaults_and_problems() {
    let mut c = json!({"traces_endpoint": "http://collector:4318/v1/traces"});
    check(&mut c).unwrap();
    assert_eq!(c["queue"]["max_batch_size"], 200);
    assert_eq!(c["queue"]["max_coalescing_delay"], 1.0);
    assert_eq!(c["queue"]["max_entries"], 10000);
    assert_eq!(c["connect_timeout"], 1000);
    assert_eq!(c["send_timeout"], 5000);
    assert_eq!(c["read_timeout"], 5000);
    assert_eq!(c["header_type"], "preserve");
    assert_eq!(c["propagation"]["default_format"], "w3c");
    let eff = parse(&c).unwrap().effective();
    assert_eq!(
        eff.extract,
        order(&["b3", "w3c", "jaeger", "ot", "datadog", "aws", "gcp", "instana"])
    );
    assert_eq!(eff.inject, order(&["preserve"]));
    let seed = parse(&json!({"traces_endpoint": "http://c/v1/traces", "propagation": {"default_format": "w3c", "inject": ["w3c"]}})).unwrap();
    assert!(seed.effective().extract.is_empty());
    let mut old = json!({"endpoint": "http://c:4318/v1/traces", "batch_span_count": 50, "batch_flush_delay": 3});
    check(&mut old).unwrap();
    assert_eq!(old["queue"]["max_batch_size"], 50);
    assert_eq!(old["queue"]["max_coalescing_delay"], 1.0);
    let problems =
        parse(&json!({"traces_endpoint": "http://c/v1/traces", "bogus": 1})).unwrap_err();
    assert_eq!(
        problems,
        vec![("bogus".to_owned(), "unknown field".to_owned())]
    );
    let problems =
        parse(&json!({"header_type": "zipkin", "queue": {"max_batch_size": 0}})).unwrap_err();
    let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(fields, ["@entity", "header_type", "queue.max_batch_size"]);
}

mod queue_semantics {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;
    use tokio::sync::mpsc;

    use super::super::config::QueueConfig;
    use super::super::queue::{Queue, Sender};

    struct Recorder {
        failures: AtomicUsize,
        tx: Mutex<mpsc::UnboundedSender<Bytes>>,
    }

    impl Sender for Recorder {
        type Item = u8;

        fn encode(&self, batch: Vec<u8>) -> Bytes {
            Bytes::from(batch)
        }

        async fn send(&self, body: Bytes) -> Result<(), String> {
            if let Ok(tx) = self.tx.lock() {
                tx.send(body).ok();
            }
            if self.failures.load(Ordering::SeqCst) > 0 {
                self.failures.fetch_sub(1, Ordering::SeqCst);
                return Err("refused".into());
            }
            Ok(())
        }
    }

    fn queue(
        max_entries: u64,
        failures: usize,
    ) -> (Arc<Queue<Recorder>>, mpsc::UnboundedReceiver<Bytes>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let conf = QueueConfig {
            max_entries,
            max_batch_size: 3,
            max_coalescing_delay: 0.01,
            ..QueueConfig::default()
        };
        let sender = Recorder {
            failures: AtomicUsize::new(failures),
            tx: Mutex::new(tx),
        };
        (Queue::new("test:traces".into(), conf, sender), rx)
    }

    #[test]
    fn a_full_queue_drops_the_oldest_entries() {
        let (q, _rx) = queue(2, 0);
        q.push_all(vec![1, 2, 3, 4, 5]);
        assert_eq!(q.dropped(), 3);
    }

    #[tokio::test]
    async fn full_queues_evict_old_spans_but_refuse_new_log_records() {
        // The sender task runs only once the test awaits, so both pushes meet a full queue.
        let (spans, mut sent) = queue(2, 0);
        spans.push_all(vec![1, 2, 3, 4, 5]);
        assert_eq!(sent.recv().await.unwrap(), Bytes::from(vec![4, 5]));
        let (logs, mut sent) = queue(2, 0);
        logs.push_while_room(vec![1, 2, 3, 4, 5]);
        assert_eq!(logs.dropped(), 3);
        assert_eq!(sent.recv().await.unwrap(), Bytes::from(vec![1, 2]));
    }

    #[tokio::test]
    async fn batches_are_bounded_and_a_failed_batch_is_retried_unchanged() {
        let (q, mut rx) = queue(100, 2);
        q.push_all(vec![1, 2, 3, 4]);
        let first = rx.recv().await.unwrap();
        assert_eq!(&first[..], &[1, 2, 3]);
        assert_eq!(rx.recv().await.unwrap(), first);
        assert_eq!(rx.recv().await.unwrap(), first);
        assert_eq!(&rx.recv().await.unwrap()[..], &[4]);
        assert_eq!(q.dropped(), 0);
        q.close();
    }
    #[tokio::test]
    async fn drain_sends_every_queued_entry_before_it_returns() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let conf = QueueConfig {
            max_entries: 100,
            max_batch_size: 3,
            max_coalescing_delay: 3600.0,
            ..QueueConfig::default()
        };
        let sender = Recorder {
            failures: AtomicUsize::new(0),
            tx: Mutex::new(tx),
        };
        let q = Queue::new("test:logs".into(), conf, sender);
        q.push_all(vec![1, 2, 3, 4, 5]);
        Arc::clone(&q).drain().await;
        let mut sent = Vec::new();
        while let Ok(batch) = rx.try_recv() {
            sent.extend_from_slice(&batch);
        }
        assert_eq!(sent, vec![1, 2, 3, 4, 5]);
        // A queue that never held anything drains at once.
        let (empty, _rx) = queue(10, 0);
        empty.drain().await;
    }
}
