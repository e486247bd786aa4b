//! Values as pdata renders them (`AsString`): shared by the debug exporter and processors.

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};

/// pdata's `AsString`.
pub fn as_string(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => js_number(*d),
        Some(any_value::Value::BytesValue(b)) => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(b)
        }
        Some(v @ (any_value::Value::ArrayValue(_) | any_value::Value::KvlistValue(_))) => {
            serde_json::to_string(&to_json(v)).unwrap_or_default()
        }
        Some(any_value::Value::StringValueStrindex(_)) | None => String::new(),
    }
}

/// The ES6 number-to-string rule pdata uses for doubles.
fn js_number(d: f64) -> String {
    if d.is_nan() {
        return "NaN".to_owned();
    }
    if d.is_infinite() {
        return if d > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    let abs = d.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{d:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let sign = if exp.starts_with('-') { "" } else { "+" };
        return format!("{mantissa}e{sign}{exp}");
    }
    format!("{d}")
}

fn to_json(value: &any_value::Value) -> serde_json::Value {
    match value {
        any_value::Value::StringValue(s) => serde_json::Value::from(s.clone()),
        any_value::Value::BoolValue(b) => serde_json::Value::from(*b),
        any_value::Value::IntValue(i) => serde_json::Value::from(*i),
        any_value::Value::DoubleValue(d) => serde_json::Value::from(*d),
        any_value::Value::BytesValue(b) => {
            use base64::Engine as _;
            serde_json::Value::from(base64::engine::general_purpose::STANDARD.encode(b))
        }
        any_value::Value::ArrayValue(a) => serde_json::Value::Array(
            a.values
                .iter()
                .map(|v| v.value.as_ref().map_or(serde_json::Value::Null, to_json))
                .collect(),
        ),
        any_value::Value::KvlistValue(kv) => serde_json::Value::Object(
            kv.values
                .iter()
                .map(|kv| {
                    (
                        kv.key.clone(),
                        kv.value
                            .as_ref()
                            .and_then(|v| v.value.as_ref())
                            .map_or(serde_json::Value::Null, to_json),
                    )
                })
                .collect(),
        ),
        any_value::Value::StringValueStrindex(_) => serde_json::Value::Null,
    }
}
