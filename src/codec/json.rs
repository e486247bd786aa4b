//! OTLP/JSON, as the OpenTelemetry Collector reads and writes it.
//!
//! The protobuf structs carry serde derives (`opentelemetry-proto`'s `with-serde`): hex
//! trace/span ids, 64-bit integers as strings or numbers, camelCase names. What pdata also
//! accepts and those derives do not is handled by one normalising pass over the parsed JSON
//! before decoding: snake_case field names (`trace_id`), enum values given by name
//! (`"SPAN_KIND_SERVER"`), and the deprecated `instrumentationLibrary*` names. JSON is not
//! the hot path (protobuf is), so the extra pass is cheap where it matters.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Why a JSON body could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JsonError(String);

/// Decodes an `ExportTraceServiceRequest`.
///
/// # Errors
/// Invalid JSON, or a field of the wrong shape (e.g. a trace id that is not hex).
pub fn decode_traces(body: &[u8]) -> Result<ExportTraceServiceRequest, JsonError> {
    decode(body)
}

/// Decodes an `ExportMetricsServiceRequest`.
///
/// # Errors
/// Invalid JSON, or a field of the wrong shape.
pub fn decode_metrics(body: &[u8]) -> Result<ExportMetricsServiceRequest, JsonError> {
    decode(body)
}

/// Decodes an `ExportLogsServiceRequest`.
///
/// # Errors
/// Invalid JSON, or a field of the wrong shape.
pub fn decode_logs(body: &[u8]) -> Result<ExportLogsServiceRequest, JsonError> {
    decode(body)
}

/// Encodes any OTLP message (requests, responses) as OTLP/JSON. Absent messages are
/// omitted rather than written as `null`, as protobuf's JSON mapping does.
pub fn encode<T: serde::Serialize>(message: &T) -> Vec<u8> {
    // Serialising plain structs cannot fail.
    let mut value = serde_json::to_value(message).unwrap_or_default();
    strip_nulls(&mut value);
    serde_json::to_vec(&value).unwrap_or_default()
}

fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// A `google.rpc.Status` as JSON: `{"code":3,"message":"…"}`.
pub fn encode_status(code: i32, message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "code": code, "message": message })).unwrap_or_default()
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, JsonError> {
    let mut value: Value =
        serde_json::from_slice(body).map_err(|e| JsonError(format!("invalid JSON: {e}")))?;
    normalize(&mut value, None);
    serde_json::from_value(value).map_err(|e| JsonError(e.to_string()))
}

/// Rewrites keys to camelCase, deprecated names to current ones, and enum names to numbers.
/// `parent` is the (normalised) key this object sits under.
fn normalize(value: &mut Value, parent: Option<&str>) {
    match value {
        Value::Object(map) => {
            let old = std::mem::take(map);
            let mut new = Map::with_capacity(old.len());
            for (key, mut item) in old {
                let key = rename(&camel_case(&key));
                // AnyValue bodies and attribute values are data: keys inside `kvlistValue`
                // objects are still protobuf field names, so normalising them is correct.
                normalize(&mut item, Some(&key));
                if let Some(number) = enum_number(&key, &item, parent) {
                    item = Value::from(number);
                }
                new.insert(key, item);
            }
            *map = new;
        }
        Value::Array(items) => {
            for item in items {
                normalize(item, parent);
            }
        }
        _ => {}
    }
}

fn camel_case(key: &str) -> String {
    if !key.contains('_') {
        return key.to_owned();
    }
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn rename(key: &str) -> String {
    match key {
        "instrumentationLibrarySpans" => "scopeSpans",
        "instrumentationLibraryMetrics" => "scopeMetrics",
        "instrumentationLibraryLogs" => "scopeLogs",
        "instrumentationLibrary" => "scope",
        other => other,
    }
    .to_owned()
}

/// The number for an enum given by name, for the enum-typed fields of OTLP.
fn enum_number(key: &str, value: &Value, parent: Option<&str>) -> Option<i64> {
    let name = value.as_str()?;
    let table: &[&str] = match (key, parent) {
        ("kind", _) => &[
            "SPAN_KIND_UNSPECIFIED",
            "SPAN_KIND_INTERNAL",
            "SPAN_KIND_SERVER",
            "SPAN_KIND_CLIENT",
            "SPAN_KIND_PRODUCER",
            "SPAN_KIND_CONSUMER",
        ],
        ("code", Some("status")) => &["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"],
        ("aggregationTemporality", _) => &[
            "AGGREGATION_TEMPORALITY_UNSPECIFIED",
            "AGGREGATION_TEMPORALITY_DELTA",
            "AGGREGATION_TEMPORALITY_CUMULATIVE",
        ],
        ("severityNumber", _) => return severity_number(name),
        _ => return None,
    };
    table.iter().position(|n| *n == name).map(|i| i as i64)
}

fn severity_number(name: &str) -> Option<i64> {
    const LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
    let rest = name.strip_prefix("SEVERITY_NUMBER_")?;
    if rest == "UNSPECIFIED" {
        return Some(0);
    }
    let level = rest.trim_end_matches(|c: char| c.is_ascii_digit());
    let step: i64 = match &rest[level.len()..] {
        "" => 1,
        n => n.parse().ok().filter(|n| (2..=4).contains(n))?,
    };
    let base = LEVELS.iter().position(|l| *l == level)? as i64;
    Some(base * 4 + step)
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::any_value;
    use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
    use prost::Message;

    use super::*;

    const TRACE_ID: &str = "5B8EFFF798038103D269B633813FC60C";

    #[test]
    fn decodes_camel_and_snake_case_hex_ids_enum_names_and_string_ints() {
        let body = format!(
            r#"{{"resource_spans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"kong"}}}}]}},
            "scope_spans":[{{"scope":{{"name":"kong"}},"spans":[
              {{"trace_id":"{TRACE_ID}","spanId":"eee19b7ec3c1b174","name":"GET","kind":"SPAN_KIND_SERVER",
               "startTimeUnixNano":"1544712660000000000","end_time_unix_nano":1544712661000000000,
               "attributes":[{{"key":"n","value":{{"intValue":"42"}}}},{{"key":"m","value":{{"intValue":7}}}}],
               "status":{{"code":"STATUS_CODE_ERROR"}}}}]}}]}}]}}"#
        );
        let req = decode_traces(body.as_bytes()).unwrap();
        let span = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(hex::encode_upper(&span.trace_id), TRACE_ID);
        assert_eq!(span.kind, SpanKind::Server as i32);
        assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
        assert_eq!(span.end_time_unix_nano, 1_544_712_661_000_000_000);
        assert_eq!(span.status.as_ref().unwrap().code, 2);
        assert_eq!(
            span.attributes[0].value.as_ref().unwrap().value,
            Some(any_value::Value::IntValue(42))
        );
        assert_eq!(
            span.attributes[1].value.as_ref().unwrap().value,
            Some(any_value::Value::IntValue(7))
        );
    }

    #[test]
    fn deprecated_instrumentation_library_is_migrated() {
        let body = br#"{"resourceLogs":[{"instrumentationLibraryLogs":[{"instrumentationLibrary":{"name":"lib"},
            "logRecords":[{"severityNumber":"SEVERITY_NUMBER_WARN2","body":{"stringValue":"x"}}]}]}]}"#;
        let req = decode_logs(body).unwrap();
        let scope = &req.resource_logs[0].scope_logs[0];
        assert_eq!(scope.scope.as_ref().unwrap().name, "lib");
        assert_eq!(scope.log_records[0].severity_number, 14);
    }

    #[test]
    fn bad_ids_and_bad_json_are_errors() {
        let wrong = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}"#;
        assert!(decode_traces(wrong).is_err());
        assert!(decode_traces(b"{not json")
            .unwrap_err()
            .to_string()
            .starts_with("invalid JSON"));
    }

    #[test]
    fn proto_json_round_trip() {
        let body = format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"{TRACE_ID}","spanId":"eee19b7ec3c1b174","name":"a","kind":2,"attributes":[{{"key":"b","value":{{"boolValue":true}}}}]}}]}}]}}]}}"#
        );
        let req = decode_traces(body.as_bytes()).unwrap();
        let again = decode_traces(&encode(&req)).unwrap();
        assert_eq!(req, again);
        let proto = ExportTraceServiceRequest::decode(req.encode_to_vec().as_slice()).unwrap();
        assert_eq!(proto, again);
        let text = String::from_utf8(encode(&req)).unwrap();
        assert!(text.contains(&TRACE_ID.to_lowercase()), "{text}");
        assert!(!text.contains("null"), "{text}");
    }

    #[test]
    fn status_body() {
        assert_eq!(encode_status(3, "bad"), br#"{"code":3,"message":"bad"}"#);
    }
}
