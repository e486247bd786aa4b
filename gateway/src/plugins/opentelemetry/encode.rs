//! Spans written straight to OTLP protobuf bytes (`opentelemetry.proto.trace.v1`), without
//! building `prost` structs per span and attribute. Each queued entry is one `Span` already
//! framed as a `ScopeSpans.spans` field, so a batch is the entries concatenated inside the
//! request's fixed `ResourceSpans` / `ScopeSpans` frame ([`traces_request`]).
//!
//! Fields are written in field-number order with proto3's rules, as `prost` writes them:
//! empty and zero scalars are left out, a set `oneof` value and a present message always
//! appear.

use bytes::{BufMut, Bytes, BytesMut};

const LEN: u8 = 2;
const VARINT: u8 = 0;
const FIXED64: u8 = 1;

fn varint_len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

/// `n` as a varint in a stack buffer, with its length.
fn varint_bytes(mut n: u64) -> ([u8; 10], usize) {
    let mut buf = [0u8; 10];
    let mut i = 0;
    while n >= 0x80 {
        buf[i] = (n as u8) | 0x80;
        n >>= 7;
        i += 1;
    }
    buf[i] = n as u8;
    (buf, i + 1)
}

fn varint(out: &mut BytesMut, n: u64) {
    if n < 0x80 {
        out.put_u8(n as u8);
    } else {
        let (buf, len) = varint_bytes(n);
        out.extend_from_slice(&buf[..len]);
    }
}

fn tag(out: &mut BytesMut, field: u8, wire: u8) {
    // Every field number used here is below 16: the key is one byte.
    out.put_u8((field << 3) | wire);
}

fn len_field(out: &mut BytesMut, field: u8, bytes: &[u8]) {
    tag(out, field, LEN);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Bytes of a length-delimited field of `len` content bytes (key, length, content).
fn framed_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

fn fixed64(out: &mut BytesMut, field: u8, n: u64) {
    tag(out, field, FIXED64);
    out.extend_from_slice(&n.to_le_bytes());
}

/// Writes a length-delimited field whose content `body` writes, then puts the length in
/// front of it.
fn message(out: &mut BytesMut, field: u8, body: impl FnOnce(&mut BytesMut)) {
    tag(out, field, LEN);
    let start = out.len();
    body(out);
    let len = out.len() - start;
    let (prefix, n) = varint_bytes(len as u64);
    out.extend_from_slice(&prefix[..n]);
    out[start..].rotate_right(n);
}

/// An attribute value.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    /// `string_value`.
    Str(&'a str),
    /// `string_value` of several pieces written one after the other.
    Concat(&'a [&'a str]),
    /// `int_value`.
    Int(i64),
    /// `double_value` (Kong's numbers).
    Double(f64),
}

impl Value<'_> {
    /// Bytes of the `AnyValue` message.
    fn any_len(&self) -> usize {
        match self {
            Self::Str(s) => framed_len(s.len()),
            Self::Concat(parts) => framed_len(parts.iter().map(|p| p.len()).sum()),
            Self::Int(i) => 1 + varint_len(*i as u64),
            Self::Double(_) => 9,
        }
    }

    fn write_any(&self, out: &mut BytesMut) {
        match self {
            Self::Str(s) => len_field(out, 1, s.as_bytes()),
            Self::Concat(parts) => {
                tag(out, 1, LEN);
                varint(out, parts.iter().map(|p| p.len()).sum::<usize>() as u64);
                for p in *parts {
                    out.extend_from_slice(p.as_bytes());
                }
            }
            Self::Int(i) => {
                tag(out, 3, VARINT);
                varint(out, *i as u64);
            }
            Self::Double(d) => fixed64(out, 4, d.to_bits()),
        }
    }
}

/// Writes one `KeyValue` as field `field` of the enclosing message.
pub fn attribute(out: &mut BytesMut, field: u8, key: &str, value: Value<'_>) {
    let any = value.any_len();
    let kv = framed_len(key.len()) + framed_len(any);
    tag(out, field, LEN);
    varint(out, kv as u64);
    len_field(out, 1, key.as_bytes());
    tag(out, 2, LEN);
    varint(out, any as u64);
    value.write_any(out);
}

/// `Span.kind` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `SPAN_KIND_INTERNAL`.
    Internal = 1,
    /// `SPAN_KIND_SERVER`.
    Server = 2,
    /// `SPAN_KIND_CLIENT`.
    Client = 3,
}

/// The fixed fields of one span.
#[derive(Debug, Clone, Copy)]
pub struct SpanHead<'a> {
    /// 16-byte trace id.
    pub trace_id: &'a [u8; 16],
    /// 8-byte span id.
    pub span_id: &'a [u8; 8],
    /// The parent's id; `None` for a root span.
    pub parent: Option<&'a [u8; 8]>,
    /// Span name.
    pub name: &'a str,
    /// Span kind.
    pub kind: Kind,
    /// Unix ns.
    pub start: u64,
    /// Unix ns.
    pub end: u64,
    /// `STATUS_CODE_ERROR` instead of `STATUS_CODE_UNSET`.
    pub error: bool,
}

/// What a span writes after its head fields: attributes (field 9) and events (field 11).
pub struct SpanBody<'b> {
    out: &'b mut BytesMut,
}

impl SpanBody<'_> {
    /// One attribute.
    pub fn attribute(&mut self, key: &str, value: Value<'_>) {
        attribute(self.out, 9, key, value);
    }

    /// One event with string attributes.
    pub fn event(&mut self, time: u64, name: &str, attributes: &[(&str, &str)]) {
        message(self.out, 11, |out| {
            fixed64(out, 1, time);
            len_field(out, 2, name.as_bytes());
            for (k, v) in attributes {
                attribute(out, 3, k, Value::Str(v));
            }
        });
    }
}

/// Appends one span framed as a `ScopeSpans.spans` entry (field 2).
pub fn span(out: &mut BytesMut, head: &SpanHead<'_>, body: impl FnOnce(&mut SpanBody<'_>)) {
    message(out, 2, |out| {
        len_field(out, 1, head.trace_id);
        len_field(out, 2, head.span_id);
        if let Some(parent) = head.parent {
            len_field(out, 4, parent);
        }
        len_field(out, 5, head.name.as_bytes());
        tag(out, 6, VARINT);
        varint(out, head.kind as u64);
        if head.start != 0 {
            fixed64(out, 7, head.start);
        }
        if head.end != 0 {
            fixed64(out, 8, head.end);
        }
        body(&mut SpanBody { out });
        // Status: empty (UNSET) or `code: ERROR` (2).
        if head.error {
            out.extend_from_slice(&[(15 << 3) | LEN, 2, (3 << 3) | VARINT, 2]);
        } else {
            out.extend_from_slice(&[(15 << 3) | LEN, 0]);
        }
    });
}

/// The `InstrumentationScope` `kong-internal 0.1.0`.
const SCOPE: &[u8] = b"\x0a\x0dkong-internal\x12\x050.1.0";

/// An `ExportTraceServiceRequest` of one `ResourceSpans` with the encoded `resource` (when
/// known) and one `ScopeSpans` holding the framed `spans`.
pub fn traces_request(resource: Option<&[u8]>, spans: &[Bytes]) -> Bytes {
    let spans_len: usize = spans.iter().map(Bytes::len).sum();
    let scope_spans = framed_len(SCOPE.len()) + spans_len;
    let resource_spans = resource.map_or(0, |r| framed_len(r.len())) + framed_len(scope_spans);
    let mut out = BytesMut::with_capacity(framed_len(resource_spans));
    tag(&mut out, 1, LEN);
    varint(&mut out, resource_spans as u64);
    if let Some(r) = resource {
        len_field(&mut out, 1, r);
    }
    tag(&mut out, 2, LEN);
    varint(&mut out, scope_spans as u64);
    len_field(&mut out, 1, SCOPE);
    for s in spans {
        out.extend_from_slice(s);
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{
        any_value, AnyValue, InstrumentationScope, KeyValue,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::span::Event;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
    use prost::Message;

    use super::*;

    fn kv(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue { value: Some(value) }),
            ..KeyValue::default()
        }
    }

    fn text(s: &str) -> any_value::Value {
        any_value::Value::StringValue(s.to_owned())
    }

    /// Two spans written by hand, and the `prost` structs they stand for.
    fn spans() -> (Vec<Bytes>, Vec<Span>) {
        let trace_id = [7u8; 16];
        let (root_id, child_id) = ([1u8; 8], [2u8; 8]);
        let long = "x".repeat(300);
        let mut out = BytesMut::new();
        let root = SpanHead {
            trace_id: &trace_id,
            span_id: &root_id,
            parent: None,
            name: "kong",
            kind: Kind::Server,
            start: 1_738_765_016_123_000_000,
            end: 1_738_765_016_124_102_144,
            error: false,
        };
        span(&mut out, &root, |b| {
            b.attribute("http.method", Value::Str("GET"));
            b.attribute("http.url", Value::Concat(&["http", "://", "h", "/p?q"]));
            b.attribute("http.status_code", Value::Int(-3));
            b.attribute("try_count", Value::Double(0.0));
            b.attribute("long", Value::Str(&long));
        });
        let first = out.split().freeze();
        let child = SpanHead {
            trace_id: &trace_id,
            span_id: &child_id,
            parent: Some(&root_id),
            name: "kong.dns",
            kind: Kind::Client,
            start: 5,
            end: 0,
            error: true,
        };
        span(&mut out, &child, |b| {
            b.event(9, "exception", &[("exception.message", "no such host")]);
        });
        let second = out.freeze();
        let expected = vec![
            Span {
                trace_id: trace_id.to_vec(),
                span_id: root_id.to_vec(),
                name: "kong".to_owned(),
                kind: 2,
                start_time_unix_nano: root.start,
                end_time_unix_nano: root.end,
                attributes: vec![
                    kv("http.method", text("GET")),
                    kv("http.url", text("http://h/p?q")),
                    kv("http.status_code", any_value::Value::IntValue(-3)),
                    kv("try_count", any_value::Value::DoubleValue(0.0)),
                    kv("long", text(&long)),
                ],
                status: Some(Status::default()),
                ..Span::default()
            },
            Span {
                trace_id: trace_id.to_vec(),
                span_id: child_id.to_vec(),
                parent_span_id: root_id.to_vec(),
                name: "kong.dns".to_owned(),
                kind: 3,
                start_time_unix_nano: 5,
                events: vec![Event {
                    time_unix_nano: 9,
                    name: "exception".to_owned(),
                    attributes: vec![kv("exception.message", text("no such host"))],
                    ..Event::default()
                }],
                status: Some(Status {
                    code: 2,
                    ..Status::default()
                }),
                ..Span::default()
            },
        ];
        (vec![first, second], expected)
    }

    #[test]
    fn a_batch_is_the_bytes_prost_writes_for_the_same_request() {
        let (entries, expected) = spans();
        let resource = Resource {
            attributes: vec![
                kv("service.name", text("kong")),
                kv("service.version", text("3.9.0")),
            ],
            ..Resource::default()
        };
        let scope = InstrumentationScope {
            name: "kong-internal".to_owned(),
            version: "0.1.0".to_owned(),
            ..InstrumentationScope::default()
        };
        for with_resource in [true, false] {
            let request = ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    resource: with_resource.then(|| resource.clone()),
                    scope_spans: vec![ScopeSpans {
                        scope: Some(scope.clone()),
                        spans: expected.clone(),
                        schema_url: String::new(),
                    }],
                    schema_url: String::new(),
                }],
            };
            let written = resource.encode_to_vec();
            let body = traces_request(with_resource.then_some(&written[..]), &entries);
            assert_eq!(
                ExportTraceServiceRequest::decode(body.clone()).unwrap(),
                request
            );
            assert_eq!(&body[..], &request.encode_to_vec()[..]);
        }
    }
}
