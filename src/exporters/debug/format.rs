//! The text otelcol's debug exporter prints, verbosity by verbosity, with credentials
//! replaced by `[REDACTED]` (see [`super::redact`]).

use std::time::{Duration, UNIX_EPOCH};

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::ResourceLogs;
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, metric, number_data_point, Exemplar, Metric, NumberDataPoint, ResourceMetrics,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;

use super::redact::{self, REDACTED};
use crate::pipeline::{as_string, Batch};

/// Appends formatted text and a newline (writing to a `String` cannot fail).
macro_rules! line {
    ($out:expr, $($arg:tt)*) => {{
        $out.push_str(&format!($($arg)*));
        $out.push('\n');
    }};
}

/// Appends formatted text.
macro_rules! text {
    ($out:expr, $($arg:tt)*) => {
        $out.push_str(&format!($($arg)*))
    };
}

/// The basic line: a message and its JSON-ish fields.
pub(super) fn summary(batch: &Batch) -> (&'static str, String) {
    match batch {
        Batch::Traces(rs) => (
            "Traces",
            format!(
                "\"resource spans\": {}, \"spans\": {}",
                rs.len(),
                batch.item_count()
            ),
        ),
        Batch::Metrics(rm) => {
            let metrics: usize = rm
                .iter()
                .flat_map(|r| &r.scope_metrics)
                .map(|s| s.metrics.len())
                .sum();
            (
                "Metrics",
                format!(
                    "\"resource metrics\": {}, \"metrics\": {metrics}, \"data points\": {}",
                    rm.len(),
                    batch.item_count()
                ),
            )
        }
        Batch::Logs(rl) => (
            "Logs",
            format!(
                "\"resource logs\": {}, \"log records\": {}",
                rl.len(),
                batch.item_count()
            ),
        ),
    }
}

/// One line per item.
pub(super) fn normal(batch: &Batch) -> String {
    let mut out = String::new();
    match batch {
        Batch::Traces(rs) => {
            for span in rs
                .iter()
                .flat_map(|r| &r.scope_spans)
                .flat_map(|s| &s.spans)
            {
                out.push_str(&format!(
                    "{} {} {}",
                    span.name,
                    hex::encode(&span.trace_id),
                    hex::encode(&span.span_id)
                ));
                for kv in &span.attributes {
                    out.push_str(&format!(" {}={}", kv.key, plain_entry(kv)));
                }
                out.push('\n');
            }
        }
        Batch::Logs(rl) => {
            for record in rl
                .iter()
                .flat_map(|r| &r.scope_logs)
                .flat_map(|s| &s.log_records)
            {
                out.push_str(&plain_value(record.body.as_ref()));
                out.push(' ');
                let attrs: Vec<String> = record
                    .attributes
                    .iter()
                    .map(|kv| format!("{}={}", kv.key, plain_entry(kv)))
                    .collect();
                out.push_str(&attrs.join(" "));
                out.push('\n');
            }
        }
        Batch::Metrics(rm) => {
            for m in rm
                .iter()
                .flat_map(|r| &r.scope_metrics)
                .flat_map(|s| &s.metrics)
            {
                normal_metric(&mut out, m);
            }
        }
    }
    out
}

fn labels(attrs: &[KeyValue]) -> String {
    attrs
        .iter()
        .map(|kv| format!("{}={}", kv.key, plain_entry(kv)))
        .collect::<Vec<_>>()
        .join(",")
}

fn normal_metric(out: &mut String, m: &Metric) {
    let name = &m.name;
    match &m.data {
        Some(metric::Data::Gauge(g)) => {
            g.data_points.iter().for_each(|p| number_line(out, name, p))
        }
        Some(metric::Data::Sum(s)) => s.data_points.iter().for_each(|p| number_line(out, name, p)),
        Some(metric::Data::Histogram(h)) => {
            for p in &h.data_points {
                text!(out, "{name}{{{}}} count={}", labels(&p.attributes), p.count);
                if let Some(sum) = p.sum {
                    text!(out, " sum={}", go_float(sum));
                }
                if let Some(min) = p.min {
                    text!(out, " min={}", go_float(min));
                }
                if let Some(max) = p.max {
                    text!(out, " max={}", go_float(max));
                }
                for (i, c) in p.bucket_counts.iter().enumerate() {
                    match p.explicit_bounds.get(i) {
                        Some(b) => {
                            text!(out, " le{}={c}", go_float(*b));
                        }
                        None => {
                            text!(out, " {c}");
                        }
                    }
                }
                out.push('\n');
            }
        }
        Some(metric::Data::ExponentialHistogram(h)) => {
            for p in &h.data_points {
                text!(out, "{name}{{{}}} count={}", labels(&p.attributes), p.count);
                if let Some(sum) = p.sum {
                    text!(out, " sum={}", go_float(sum));
                }
                out.push('\n');
            }
        }
        Some(metric::Data::Summary(s)) => {
            for p in &s.data_points {
                text!(
                    out,
                    "{name}{{{}}} count={} sum={:.6}",
                    labels(&p.attributes),
                    p.count,
                    p.sum
                );
                for q in &p.quantile_values {
                    text!(out, " q{}={}", go_float(q.quantile), go_float(q.value));
                }
                out.push('\n');
            }
        }
        None => {}
    }
}

fn number_line(out: &mut String, name: &str, p: &NumberDataPoint) {
    let value = match p.value {
        Some(number_data_point::Value::AsInt(i)) => i.to_string(),
        Some(number_data_point::Value::AsDouble(d)) => go_float(d),
        None => String::new(),
    };
    line!(out, "{name}{{{}}} {value}", labels(&p.attributes));
}

/// Go's `%v` for a float64: shortest round-trip form.
fn go_float(v: f64) -> String {
    format!("{v}")
}

/// Everything, as otelcol's detailed marshaler prints it.
pub(super) fn detailed(batch: &Batch) -> String {
    let mut out = String::new();
    match batch {
        Batch::Traces(rs) => traces(&mut out, rs),
        Batch::Metrics(rm) => metrics(&mut out, rm),
        Batch::Logs(rl) => logs(&mut out, rl),
    }
    out
}

fn resource(
    out: &mut String,
    title: &str,
    i: usize,
    schema_url: &str,
    resource: Option<&Resource>,
) {
    line!(out, "{title} #{i}");
    line!(out, "Resource SchemaURL: {schema_url}");
    if let Some(r) = resource {
        attributes(out, "Resource attributes", &r.attributes);
    }
}

fn scope(
    out: &mut String,
    title: &str,
    i: usize,
    schema_url: &str,
    scope: Option<&InstrumentationScope>,
) {
    line!(out, "{title} #{i}");
    line!(out, "{title} SchemaURL: {schema_url}");
    let (name, version) = scope.map_or(("", ""), |s| (s.name.as_str(), s.version.as_str()));
    line!(out, "InstrumentationScope {name} {version}");
    if let Some(s) = scope {
        attributes(out, "InstrumentationScope attributes", &s.attributes);
    }
}

fn attributes(out: &mut String, title: &str, attrs: &[KeyValue]) {
    if attrs.is_empty() {
        return;
    }
    line!(out, "{title}:");
    for kv in attrs {
        line!(out, "     -> {}: {}", kv.key, typed_entry(kv));
    }
}

fn nested_attributes(out: &mut String, attrs: &[KeyValue]) {
    for kv in attrs {
        line!(out, "          -> {}: {}", kv.key, typed_entry(kv));
    }
}

fn traces(out: &mut String, rs: &[ResourceSpans]) {
    const KINDS: [&str; 6] = [
        "Unspecified",
        "Internal",
        "Server",
        "Client",
        "Producer",
        "Consumer",
    ];
    const CODES: [&str; 3] = ["Unset", "Ok", "Error"];
    for (i, r) in rs.iter().enumerate() {
        resource(out, "ResourceSpans", i, &r.schema_url, r.resource.as_ref());
        for (j, s) in r.scope_spans.iter().enumerate() {
            scope(out, "ScopeSpans", j, &s.schema_url, s.scope.as_ref());
            for (k, span) in s.spans.iter().enumerate() {
                line!(out, "Span #{k}");
                let field = |out: &mut String, name: &str, value: &str| {
                    line!(out, "    {name:<15}: {value}");
                };
                field(out, "Trace ID", &hex::encode(&span.trace_id));
                field(out, "Parent ID", &hex::encode(&span.parent_span_id));
                field(out, "ID", &hex::encode(&span.span_id));
                field(out, "Name", &span.name);
                field(
                    out,
                    "Kind",
                    KINDS.get(span.kind as usize).unwrap_or(&"Unspecified"),
                );
                if !span.trace_state.is_empty() {
                    field(out, "TraceState", &span.trace_state);
                }
                field(out, "Start time", &go_time(span.start_time_unix_nano));
                field(out, "End time", &go_time(span.end_time_unix_nano));
                let status = span.status.clone().unwrap_or_default();
                field(
                    out,
                    "Status code",
                    CODES.get(status.code as usize).unwrap_or(&"Unset"),
                );
                field(out, "Status message", &status.message);
                attributes(out, "Attributes", &span.attributes);
                if !span.events.is_empty() {
                    line!(out, "Events:");
                    for (e, event) in span.events.iter().enumerate() {
                        line!(out, "SpanEvent #{e}");
                        line!(out, "     -> Name: {}", event.name);
                        line!(out, "     -> Timestamp: {}", go_time(event.time_unix_nano));
                        line!(
                            out,
                            "     -> DroppedAttributesCount: {}",
                            event.dropped_attributes_count
                        );
                        if !event.attributes.is_empty() {
                            line!(out, "     -> Attributes::");
                            nested_attributes(out, &event.attributes);
                        }
                    }
                }
                if !span.links.is_empty() {
                    line!(out, "Links:");
                    for (l, link) in span.links.iter().enumerate() {
                        line!(out, "SpanLink #{l}");
                        line!(out, "     -> Trace ID: {}", hex::encode(&link.trace_id));
                        line!(out, "     -> ID: {}", hex::encode(&link.span_id));
                        line!(out, "     -> TraceState: {}", link.trace_state);
                        line!(
                            out,
                            "     -> DroppedAttributesCount: {}",
                            link.dropped_attributes_count
                        );
                        if !link.attributes.is_empty() {
                            line!(out, "     -> Attributes::");
                            nested_attributes(out, &link.attributes);
                        }
                    }
                }
            }
        }
    }
}

fn logs(out: &mut String, rl: &[ResourceLogs]) {
    for (i, r) in rl.iter().enumerate() {
        resource(out, "ResourceLog", i, &r.schema_url, r.resource.as_ref());
        for (j, s) in r.scope_logs.iter().enumerate() {
            scope(out, "ScopeLogs", j, &s.schema_url, s.scope.as_ref());
            for (k, record) in s.log_records.iter().enumerate() {
                line!(out, "LogRecord #{k}");
                line!(
                    out,
                    "ObservedTimestamp: {}",
                    go_time(record.observed_time_unix_nano)
                );
                line!(out, "Timestamp: {}", go_time(record.time_unix_nano));
                line!(out, "SeverityText: {}", record.severity_text);
                line!(
                    out,
                    "SeverityNumber: {}({})",
                    severity_name(record.severity_number),
                    record.severity_number
                );
                if !record.event_name.is_empty() {
                    line!(out, "EventName: {}", record.event_name);
                }
                line!(out, "Body: {}", typed_value(record.body.as_ref()));
                attributes(out, "Attributes", &record.attributes);
                line!(out, "Trace ID: {}", hex::encode(&record.trace_id));
                line!(out, "Span ID: {}", hex::encode(&record.span_id));
                line!(out, "Flags: {}", record.flags);
            }
        }
    }
}

fn severity_name(n: i32) -> String {
    const LEVELS: [&str; 6] = ["Trace", "Debug", "Info", "Warn", "Error", "Fatal"];
    if !(1..=24).contains(&n) {
        return "Unspecified".to_owned();
    }
    let level = LEVELS[((n - 1) / 4) as usize];
    match (n - 1) % 4 {
        0 => level.to_owned(),
        step => format!("{level}{}", step + 1),
    }
}

fn metrics(out: &mut String, rm: &[ResourceMetrics]) {
    const TEMPORALITY: [&str; 3] = ["Unspecified", "Delta", "Cumulative"];
    for (i, r) in rm.iter().enumerate() {
        resource(
            out,
            "ResourceMetrics",
            i,
            &r.schema_url,
            r.resource.as_ref(),
        );
        for (j, s) in r.scope_metrics.iter().enumerate() {
            scope(out, "ScopeMetrics", j, &s.schema_url, s.scope.as_ref());
            for (k, m) in s.metrics.iter().enumerate() {
                line!(out, "Metric #{k}");
                line!(out, "Descriptor:");
                line!(out, "     -> Name: {}", m.name);
                line!(out, "     -> Description: {}", m.description);
                line!(out, "     -> Unit: {}", m.unit);
                let temporality = |t: i32| {
                    TEMPORALITY
                        .get(t as usize)
                        .copied()
                        .unwrap_or("Unspecified")
                };
                match &m.data {
                    Some(metric::Data::Gauge(g)) => {
                        line!(out, "     -> DataType: Gauge");
                        number_points(out, &g.data_points);
                    }
                    Some(metric::Data::Sum(sum)) => {
                        line!(out, "     -> DataType: Sum");
                        line!(out, "     -> IsMonotonic: {}", sum.is_monotonic);
                        line!(
                            out,
                            "     -> AggregationTemporality: {}",
                            temporality(sum.aggregation_temporality)
                        );
                        number_points(out, &sum.data_points);
                    }
                    Some(metric::Data::Histogram(h)) => {
                        line!(out, "     -> DataType: Histogram");
                        line!(
                            out,
                            "     -> AggregationTemporality: {}",
                            temporality(h.aggregation_temporality)
                        );
                        for (n, p) in h.data_points.iter().enumerate() {
                            line!(out, "HistogramDataPoints #{n}");
                            point_header(
                                out,
                                &p.attributes,
                                p.start_time_unix_nano,
                                p.time_unix_nano,
                            );
                            line!(out, "Count: {}", p.count);
                            if let Some(v) = p.sum {
                                line!(out, "Sum: {v:.6}");
                            }
                            if let Some(v) = p.min {
                                line!(out, "Min: {v:.6}");
                            }
                            if let Some(v) = p.max {
                                line!(out, "Max: {v:.6}");
                            }
                            for (b, bound) in p.explicit_bounds.iter().enumerate() {
                                line!(out, "ExplicitBounds #{b}: {bound:.6}");
                            }
                            for (b, count) in p.bucket_counts.iter().enumerate() {
                                line!(out, "Buckets #{b}, Count: {count}");
                            }
                            exemplars(out, &p.exemplars);
                        }
                    }
                    Some(metric::Data::ExponentialHistogram(h)) => {
                        line!(out, "     -> DataType: ExponentialHistogram");
                        line!(
                            out,
                            "     -> AggregationTemporality: {}",
                            temporality(h.aggregation_temporality)
                        );
                        for (n, p) in h.data_points.iter().enumerate() {
                            line!(out, "ExponentialHistogramDataPoints #{n}");
                            point_header(
                                out,
                                &p.attributes,
                                p.start_time_unix_nano,
                                p.time_unix_nano,
                            );
                            line!(out, "Count: {}", p.count);
                            if let Some(v) = p.sum {
                                line!(out, "Sum: {v:.6}");
                            }
                            if let Some(v) = p.min {
                                line!(out, "Min: {v:.6}");
                            }
                            if let Some(v) = p.max {
                                line!(out, "Max: {v:.6}");
                            }
                            let base = 2f64.powf(2f64.powi(-p.scale));
                            if let Some(neg) = &p.negative {
                                for (b, count) in neg.bucket_counts.iter().enumerate().rev() {
                                    let index = f64::from(neg.offset) + b as f64;
                                    line!(
                                        out,
                                        "Bucket [{:.6}, {:.6}), Count: {count}",
                                        -base.powf(index + 1.0),
                                        -base.powf(index)
                                    );
                                }
                            }
                            if p.zero_count != 0 {
                                line!(out, "Bucket [0, 0], Count: {}", p.zero_count);
                            }
                            if let Some(pos) = &p.positive {
                                for (b, count) in pos.bucket_counts.iter().enumerate() {
                                    let index = f64::from(pos.offset) + b as f64;
                                    line!(
                                        out,
                                        "Bucket ({:.6}, {:.6}], Count: {count}",
                                        base.powf(index),
                                        base.powf(index + 1.0)
                                    );
                                }
                            }
                            exemplars(out, &p.exemplars);
                        }
                    }
                    Some(metric::Data::Summary(s)) => {
                        line!(out, "     -> DataType: Summary");
                        for (n, p) in s.data_points.iter().enumerate() {
                            line!(out, "SummaryDataPoints #{n}");
                            point_header(
                                out,
                                &p.attributes,
                                p.start_time_unix_nano,
                                p.time_unix_nano,
                            );
                            line!(out, "Count: {}", p.count);
                            line!(out, "Sum: {:.6}", p.sum);
                            for (q, qv) in p.quantile_values.iter().enumerate() {
                                line!(
                                    out,
                                    "QuantileValue #{q}: Quantile {:.6}, Value {:.6}",
                                    qv.quantile,
                                    qv.value
                                );
                            }
                        }
                    }
                    None => {
                        line!(out, "     -> DataType: Empty");
                    }
                }
            }
        }
    }
}

fn point_header(out: &mut String, attrs: &[KeyValue], start: u64, time: u64) {
    attributes(out, "Data point attributes", attrs);
    line!(out, "StartTimestamp: {}", go_time(start));
    line!(out, "Timestamp: {}", go_time(time));
}

fn number_points(out: &mut String, points: &[NumberDataPoint]) {
    for (n, p) in points.iter().enumerate() {
        line!(out, "NumberDataPoints #{n}");
        point_header(out, &p.attributes, p.start_time_unix_nano, p.time_unix_nano);
        match p.value {
            Some(number_data_point::Value::AsInt(i)) => {
                line!(out, "Value: {i}");
            }
            Some(number_data_point::Value::AsDouble(d)) => {
                line!(out, "Value: {d:.6}");
            }
            None => {
                line!(out, "Value: ");
            }
        }
        exemplars(out, &p.exemplars);
    }
}

fn exemplars(out: &mut String, list: &[Exemplar]) {
    if list.is_empty() {
        return;
    }
    line!(out, "Exemplars:");
    for (i, e) in list.iter().enumerate() {
        line!(out, "Exemplar #{i}");
        line!(out, "     -> Trace ID: {}", hex::encode(&e.trace_id));
        line!(out, "     -> Span ID: {}", hex::encode(&e.span_id));
        line!(out, "     -> Timestamp: {}", go_time(e.time_unix_nano));
        let value = match e.value {
            Some(exemplar::Value::AsInt(i)) => i.to_string(),
            Some(exemplar::Value::AsDouble(d)) => format!("{d:.6}"),
            None => String::new(),
        };
        line!(out, "     -> Value: {value}");
        if !e.filtered_attributes.is_empty() {
            line!(out, "     -> FilteredAttributes: ");
            nested_attributes(out, &e.filtered_attributes);
        }
    }
}

/// Go's `time.Time.String()` in UTC: `2006-01-02 15:04:05.999999999 +0000 UTC`.
pub(super) fn go_time(nanos: u64) -> String {
    let rfc = humantime::format_rfc3339_nanos(UNIX_EPOCH + Duration::from_nanos(nanos)).to_string();
    let (date, rest) = rfc.split_once('T').unwrap_or((&rfc, ""));
    let rest = rest.trim_end_matches('Z');
    let (hms, frac) = rest.split_once('.').unwrap_or((rest, ""));
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{date} {hms} +0000 UTC")
    } else {
        format!("{date} {hms}.{frac} +0000 UTC")
    }
}

/// `Str(v)`, `Int(1)`, `Map({...})`: the value with its type, as pdata prints it.
pub(super) fn typed(value: Option<&AnyValue>) -> String {
    format!("{}({})", kind(value), as_string(value))
}

/// [`typed`] for an attribute: `Str([REDACTED])` when its key names a credential, and
/// credentials inside a map value replaced.
fn typed_entry(kv: &KeyValue) -> String {
    if redact::is_secret(&kv.key) {
        format!("{}({REDACTED})", kind(kv.value.as_ref()))
    } else {
        typed_value(kv.value.as_ref())
    }
}

/// [`typed`] with the credentials inside a map value replaced.
fn typed_value(value: Option<&AnyValue>) -> String {
    match redact::scrubbed(value) {
        Some(clean) => typed(Some(&clean)),
        None => typed(value),
    }
}

/// [`as_string`] for an attribute, redacted as [`typed_entry`].
fn plain_entry(kv: &KeyValue) -> String {
    if redact::is_secret(&kv.key) {
        REDACTED.to_owned()
    } else {
        plain_value(kv.value.as_ref())
    }
}

/// [`as_string`] with the credentials inside a map value replaced.
fn plain_value(value: Option<&AnyValue>) -> String {
    match redact::scrubbed(value) {
        Some(clean) => as_string(Some(&clean)),
        None => as_string(value),
    }
}

/// pdata's type name of `value`.
fn kind(value: Option<&AnyValue>) -> &'static str {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(_)) => "Str",
        Some(any_value::Value::BoolValue(_)) => "Bool",
        Some(any_value::Value::IntValue(_)) => "Int",
        Some(any_value::Value::DoubleValue(_)) => "Double",
        Some(any_value::Value::ArrayValue(_)) => "Slice",
        Some(any_value::Value::KvlistValue(_)) => "Map",
        Some(any_value::Value::BytesValue(_)) => "Bytes",
        Some(any_value::Value::StringValueStrindex(_)) | None => "Empty",
    }
}
