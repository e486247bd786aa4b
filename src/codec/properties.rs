//! Property tests of the wire decoders: whatever a client sends, decoding returns a value
//! or an error, never panics, and never produces more than its limit. Case budgets are
//! fixed so the suite stays fast.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use proptest::prelude::*;
use prost::Message;

use super::{json, Compression, DecompressError};

const ALL: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Zlib,
    Compression::Deflate,
    Compression::Zstd,
];

fn any_value() -> impl Strategy<Value = AnyValue> {
    let leaf = prop_oneof![
        ".{0,16}".prop_map(any_value::Value::StringValue),
        any::<i64>().prop_map(any_value::Value::IntValue),
        any::<bool>().prop_map(any_value::Value::BoolValue),
        proptest::num::f64::NORMAL.prop_map(any_value::Value::DoubleValue),
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(any_value::Value::BytesValue),
    ];
    leaf.prop_map(|v| AnyValue { value: Some(v) })
}

fn logs_request() -> impl Strategy<Value = ExportLogsServiceRequest> {
    let record = (
        any::<u64>(),
        any_value(),
        proptest::collection::vec(("[a-z.]{1,8}", any_value()), 0..4),
        proptest::collection::vec(any::<u8>(), 16..=16),
    )
        .prop_map(|(time, body, attrs, trace_id)| LogRecord {
            time_unix_nano: time,
            body: Some(body),
            attributes: attrs
                .into_iter()
                .map(|(key, value)| KeyValue {
                    key,
                    value: Some(value),
                    ..Default::default()
                })
                .collect(),
            trace_id,
            ..Default::default()
        });
    proptest::collection::vec(record, 0..5).prop_map(|log_records| ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

/// Arbitrary JSON text shaped like OTLP/JSON, to reach past the first brace.
fn otlp_json_like() -> impl Strategy<Value = String> {
    let scalar = prop_oneof![
        Just("null".to_owned()),
        any::<i64>().prop_map(|i| i.to_string()),
        any::<i64>().prop_map(|i| format!("\"{i}\"")),
        "[0-9a-fA-F]{0,40}".prop_map(|s| format!("\"{s}\"")),
        any::<bool>().prop_map(|b| b.to_string()),
        Just("{}".to_owned()),
        Just("[]".to_owned()),
    ];
    let key = prop_oneof![
        Just("resourceLogs"),
        Just("resourceSpans"),
        Just("resourceMetrics"),
        Just("scopeLogs"),
        Just("scopeSpans"),
        Just("logRecords"),
        Just("spans"),
        Just("traceId"),
        Just("spanId"),
        Just("timeUnixNano"),
        Just("body"),
        Just("stringValue"),
        Just("intValue"),
        Just("kvlistValue"),
        Just("arrayValue"),
        Just("attributes"),
        Just("severityNumber"),
        Just("kind"),
        Just("gauge"),
        Just("dataPoints"),
        Just("asDouble"),
    ];
    scalar.prop_recursive(4, 32, 4, move |inner| {
        prop_oneof![
            proptest::collection::vec((key.clone(), inner.clone()), 0..4).prop_map(|fields| {
                let body: Vec<String> = fields
                    .into_iter()
                    .map(|(k, v)| format!("\"{k}\":{v}"))
                    .collect();
                format!("{{{}}}", body.join(","))
            }),
            proptest::collection::vec(inner, 0..3)
                .prop_map(|items| format!("[{}]", items.join(","))),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random bytes under any encoding: an error or a body within the limit.
    #[test]
    fn decompressing_random_bytes_is_bounded(body in proptest::collection::vec(any::<u8>(), 0..512), limit in 0usize..2048) {
        for c in ALL {
            match c.decompress(&body, limit) {
                Ok(out) => prop_assert!(out.len() <= limit),
                Err(DecompressError::TooLarge { .. } | DecompressError::Corrupt { .. }) => {}
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
        }
    }

    /// What is compressed decompresses to the same bytes; one byte less of limit refuses it.
    #[test]
    fn compression_round_trips_and_the_limit_is_exact(body in proptest::collection::vec(any::<u8>(), 1..4096)) {
        for c in ALL {
            let packed = c.compress(&body);
            prop_assert_eq!(c.decompress(&packed, body.len()).unwrap(), body.clone());
            let too_small = c.decompress(&packed, body.len() - 1);
            prop_assert!(matches!(too_small, Err(DecompressError::TooLarge { .. })), "{c:?}");
        }
    }

    /// A truncated or bit-flipped compressed body never panics and never exceeds the limit.
    #[test]
    fn corrupted_compressed_bodies_are_refused_or_bounded(
        body in proptest::collection::vec(any::<u8>(), 1..1024),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
    ) {
        for c in ALL {
            let mut packed = c.compress(&body);
            let at = flip.index(packed.len());
            packed[at] ^= 0x5a;
            packed.truncate(cut.index(packed.len()) + 1);
            if let Ok(out) = c.decompress(&packed, 2048) {
                prop_assert!(out.len() <= 2048);
            }
        }
    }

    /// OTLP protobuf: random bytes decode or fail; encoded requests decode back.
    #[test]
    fn protobuf_bodies_decode_or_fail(bytes in proptest::collection::vec(any::<u8>(), 0..512), request in logs_request()) {
        let _outcome = ExportTraceServiceRequest::decode(bytes.as_slice());
        let _outcome = ExportMetricsServiceRequest::decode(bytes.as_slice());
        let _outcome = ExportLogsServiceRequest::decode(bytes.as_slice());
        let encoded = request.encode_to_vec();
        prop_assert_eq!(ExportLogsServiceRequest::decode(encoded.as_slice()).unwrap(), request);
        // Truncated encodings fail cleanly or decode a prefix.
        for cut in [1, encoded.len() / 2] {
            if cut < encoded.len() {
                let _outcome = ExportLogsServiceRequest::decode(&encoded[..cut]);
            }
        }
    }

    /// OTLP/JSON: random bytes and OTLP-shaped documents decode or fail; what the encoder
    /// writes decodes back to the same request.
    #[test]
    fn json_bodies_decode_or_fail(bytes in proptest::collection::vec(any::<u8>(), 0..256), text in otlp_json_like(), request in logs_request()) {
        let _outcome = json::decode_traces(&bytes);
        let _outcome = json::decode_metrics(&bytes);
        let _outcome = json::decode_logs(&bytes);
        let _outcome = json::decode_traces(text.as_bytes());
        let _outcome = json::decode_metrics(text.as_bytes());
        let _outcome = json::decode_logs(text.as_bytes());
        let encoded = json::encode(&request);
        prop_assert_eq!(json::decode_logs(&encoded).unwrap(), request);
    }
}
