//! Trace-context headers: Kong's extractors and injectors (w3c, b3, b3-single, jaeger, ot,
//! datadog, aws, gcp), spec §8.5.

use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;

/// What an extractor read from the incoming headers; ids normalized to 16 / 8 bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extracted {
    /// The extractor that matched (`b3`, `w3c`, …).
    pub format: &'static str,
    /// Trace id, left-padded / truncated to 16 bytes.
    pub trace_id: Option<[u8; 16]>,
    /// Original trace-id length in bytes.
    pub trace_id_len: usize,
    /// Incoming span id (the parent of Kong's root span).
    pub span_id: Option<[u8; 8]>,
    /// Incoming sampled flag.
    pub sampled: Option<bool>,
    /// b3 debug flag.
    pub debug: bool,
    /// The b3 context came from the single-header form.
    pub single: bool,
    /// Baggage (jaeger `uberctx-`, ot `ot-baggage-`).
    pub baggage: Vec<(String, String)>,
}

/// The context written to the upstream request.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing {
    /// Trace id.
    pub trace_id: [u8; 16],
    /// Original trace-id length (16 when fresh).
    pub trace_id_len: Option<usize>,
    /// Span id (the balancer span's, or the root's).
    pub span_id: [u8; 8],
    /// Parent of that span.
    pub parent_id: Option<[u8; 8]>,
    /// Sampled flag.
    pub sampled: bool,
    /// b3 debug flag.
    pub debug: bool,
}

/// Extractor names accepted in `propagation.extract`.
pub const EXTRACTORS: &[&str] = &[
    "w3c", "b3", "jaeger", "ot", "datadog", "aws", "gcp", "instana",
];
/// Injector names accepted in `propagation.inject` (besides `preserve`).
pub const INJECTORS: &[&str] = &[
    "w3c",
    "b3",
    "b3-single",
    "jaeger",
    "ot",
    "datadog",
    "aws",
    "gcp",
    "instana",
];

fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    if !is_hex(s) {
        return None;
    }
    let padded = if s.len() % 2 == 1 {
        format!("0{s}")
    } else {
        s.to_owned()
    };
    (0..padded.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&padded[i..i + 2], 16).ok())
        .collect()
}

fn fit<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    if bytes.len() >= N {
        out.copy_from_slice(&bytes[bytes.len() - N..]);
    } else {
        out[N - bytes.len()..].copy_from_slice(bytes);
    }
    out
}

fn trace_hex(s: &str, allowed: &[usize]) -> Option<([u8; 16], usize)> {
    if !allowed.contains(&s.len()) {
        return None;
    }
    let bytes = hex_bytes(s)?;
    Some((fit::<16>(&bytes), bytes.len()))
}

fn span_hex(s: &str) -> Option<[u8; 8]> {
    if s.len() != 16 {
        return None;
    }
    hex_bytes(s).map(|b| fit::<8>(&b))
}

/// Lowercase hex of a byte slice.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// `traceparent`; an invalid one is ignored with Kong's warning naming what is wrong.
fn w3c(headers: &HeaderMap) -> Option<Extracted> {
    let value = get(headers, "traceparent").filter(|v| !v.is_empty())?;
    match parse_traceparent(value) {
        Ok(extracted) => Some(extracted),
        Err(what) => {
            tracing::warn!("invalid W3C {what}; ignoring.");
            None
        }
    }
}

/// Kong's checks in Kong's order (kong/observability/tracing/propagation/extractors/w3c.lua):
/// four hex fields, version `00`, then the trace id, parent id and flags.
fn parse_traceparent(value: &str) -> Result<Extracted, &'static str> {
    let parts: Vec<&str> = value.trim().split('-').collect();
    if parts.len() != 4 || !parts.iter().all(|p| is_hex(p)) {
        return Err("traceparent header");
    }
    let (version, trace, span, flags) = (parts[0], parts[1], parts[2], parts[3]);
    if version != "00" {
        return Err("Trace Context version");
    }
    let trace_id = match trace_hex(trace, &[32]) {
        Some((id, _)) if trace.len() == 32 && id != [0; 16] => id,
        _ => return Err("trace context trace ID"),
    };
    let span_id = match span_hex(span) {
        Some(id) if span.len() == 16 && id != [0; 8] => id,
        _ => return Err("trace context parent ID"),
    };
    let flags = match u8::from_str_radix(flags, 16) {
        Ok(f) if flags.len() == 2 => f,
        _ => return Err("trace context flags"),
    };
    Ok(Extracted {
        format: "w3c",
        trace_id: Some(trace_id),
        trace_id_len: 16,
        span_id: Some(span_id),
        sampled: Some(flags & 1 == 1),
        ..Extracted::default()
    })
}

fn b3_single(value: &str, out: &mut Extracted) {
    out.single = true;
    let parts: Vec<&str> = value.trim().split('-').collect();
    if parts.len() == 1 {
        match parts[0] {
            "1" => out.sampled = Some(true),
            "0" => out.sampled = Some(false),
            "d" => {
                out.sampled = Some(true);
                out.debug = true;
            }
            _ => {}
        }
        return;
    }
    let Some((trace_id, len)) = trace_hex(parts[0], &[16, 32]) else {
        return;
    };
    let Some(span_id) = span_hex(parts[1]) else {
        return;
    };
    out.trace_id = Some(trace_id);
    out.trace_id_len = len;
    out.span_id = Some(span_id);
    if let Some(flag) = parts.get(2) {
        match *flag {
            "1" => out.sampled = Some(true),
            "0" => out.sampled = Some(false),
            "d" => {
                out.sampled = Some(true);
                out.debug = true;
            }
            _ => {}
        }
    }
}

fn b3(headers: &HeaderMap) -> Option<Extracted> {
    let trace = get(headers, "x-b3-traceid");
    let span = get(headers, "x-b3-spanid");
    let sampled = get(headers, "x-b3-sampled");
    let flags = get(headers, "x-b3-flags");
    let single = get(headers, "b3");
    let tracestate = get(headers, "tracestate");
    if trace.is_none()
        && span.is_none()
        && sampled.is_none()
        && flags.is_none()
        && single.is_none()
        && tracestate.is_none()
    {
        return None;
    }
    let mut out = Extracted {
        format: "b3",
        ..Extracted::default()
    };
    if let Some(s) = single {
        b3_single(s, &mut out);
        return Some(out);
    }
    if let Some(state) = tracestate {
        if let Some(v) = state.split(',').find_map(|e| e.trim().strip_prefix("b3=")) {
            b3_single(v, &mut out);
        }
        if trace.is_none() && span.is_none() {
            return Some(out);
        }
        out.single = false;
    }
    out.sampled = match sampled.map(str::trim) {
        Some("1" | "true") => Some(true),
        Some("0" | "false") => Some(false),
        _ => None,
    };
    if flags.map(str::trim) == Some("1") {
        out.sampled = Some(true);
        out.debug = true;
    }
    if let (Some((trace_id, len)), Some(span_id)) = (
        trace.and_then(|t| trace_hex(t.trim(), &[16, 32])),
        span.and_then(|s| span_hex(s.trim())),
    ) {
        out.trace_id = Some(trace_id);
        out.trace_id_len = len;
        out.span_id = Some(span_id);
    }
    Some(out)
}

fn jaeger(headers: &HeaderMap) -> Option<Extracted> {
    let value = get(headers, "uber-trace-id")?;
    let parts: Vec<&str> = value.trim().split(':').collect();
    if parts.len() != 4 {
        return None;
    }
    if parts[0].len() > 32 || parts[1].len() > 16 || parts[3].is_empty() || parts[3].len() > 2 {
        return None;
    }
    let trace = hex_bytes(parts[0])?;
    let span = hex_bytes(parts[1])?;
    let flags = u8::from_str_radix(parts[3], 16).ok()?;
    let trace_id = fit::<16>(&trace);
    let span_id = fit::<8>(&span);
    if trace_id == [0; 16] || span_id == [0; 8] {
        return None;
    }
    Some(Extracted {
        format: "jaeger",
        trace_id: Some(trace_id),
        trace_id_len: if parts[0].len() > 16 { 16 } else { 8 },
        span_id: Some(span_id),
        sampled: Some(flags & 1 == 1),
        baggage: baggage(headers, "uberctx-"),
        ..Extracted::default()
    })
}

fn baggage(headers: &HeaderMap, prefix: &str) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(k, v)| {
            let key = k.as_str().strip_prefix(prefix)?;
            Some((key.to_owned(), v.to_str().ok()?.to_owned()))
        })
        .collect()
}

fn ot(headers: &HeaderMap) -> Option<Extracted> {
    let trace = get(headers, "ot-tracer-traceid");
    let span = get(headers, "ot-tracer-spanid");
    let sampled = get(headers, "ot-tracer-sampled");
    let bag = baggage(headers, "ot-baggage-");
    if trace.is_none() && span.is_none() && sampled.is_none() && bag.is_empty() {
        return None;
    }
    let mut out = Extracted {
        format: "ot",
        baggage: bag,
        ..Extracted::default()
    };
    out.sampled = match sampled.map(str::trim) {
        Some("1" | "true") => Some(true),
        Some("0" | "false") => Some(false),
        _ => None,
    };
    if let Some((trace_id, len)) = trace.and_then(|t| trace_hex(t.trim(), &[16, 32])) {
        out.trace_id = Some(trace_id);
        out.trace_id_len = len;
    }
    out.span_id = span.and_then(|s| span_hex(s.trim()));
    Some(out)
}

fn datadog(headers: &HeaderMap) -> Option<Extracted> {
    let trace = get(headers, "x-datadog-trace-id");
    let parent = get(headers, "x-datadog-parent-id");
    let priority = get(headers, "x-datadog-sampling-priority");
    if trace.is_none() && parent.is_none() && priority.is_none() {
        return None;
    }
    let sampled = match priority.map(str::trim) {
        None => None,
        Some("1" | "2") => Some(true),
        Some("0" | "-1") => Some(false),
        Some(_) => return None,
    };
    let mut out = Extracted {
        format: "datadog",
        sampled,
        ..Extracted::default()
    };
    if let Some(t) = trace.and_then(|t| t.trim().parse::<u64>().ok()) {
        out.trace_id = Some(fit::<16>(&t.to_be_bytes()));
        out.trace_id_len = 8;
    }
    out.span_id = parent
        .and_then(|p| p.trim().parse::<u64>().ok())
        .map(u64::to_be_bytes);
    Some(out)
}

fn aws(headers: &HeaderMap) -> Option<Extracted> {
    let value = get(headers, "x-amzn-trace-id")?;
    let mut out = Extracted {
        format: "aws",
        ..Extracted::default()
    };
    for pair in value.split(';') {
        let Some((key, val)) = pair.split_once('=') else {
            continue;
        };
        let val = val.trim();
        match key.trim() {
            "Root" => {
                let parts: Vec<&str> = val.split('-').collect();
                if val.len() != 35
                    || parts.len() != 3
                    || parts[0] != "1"
                    || parts[1].len() != 8
                    || parts[2].len() != 24
                {
                    return None;
                }
                let (trace_id, _) = trace_hex(&format!("{}{}", parts[1], parts[2]), &[32])?;
                out.trace_id = Some(trace_id);
                out.trace_id_len = 16;
            }
            "Parent" => out.span_id = Some(span_hex(val)?),
            "Sampled" => {
                out.sampled = Some(match val {
                    "1" => true,
                    "0" => false,
                    _ => return None,
                })
            }
            _ => {}
        }
    }
    Some(out)
}

fn gcp(headers: &HeaderMap) -> Option<Extracted> {
    let value = get(headers, "x-cloud-trace-context")?;
    let (trace, rest) = value.trim().split_once('/')?;
    if trace.len() != 32
        || !trace
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    let (span, options) = match rest.split_once(';') {
        Some((s, o)) => (s, Some(o)),
        None => (rest, None),
    };
    if span.is_empty() || span.len() > 20 || !span.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let span: u64 = span.parse().ok()?;
    let (trace_id, _) = trace_hex(trace, &[32])?;
    Some(Extracted {
        format: "gcp",
        trace_id: Some(trace_id),
        trace_id_len: 16,
        span_id: Some(span.to_be_bytes()),
        sampled: Some(options.and_then(|o| o.strip_prefix("o=")) == Some("1")),
        ..Extracted::default()
    })
}

fn has_field(e: &Extracted) -> bool {
    e.trace_id.is_some()
        || e.span_id.is_some()
        || e.sampled.is_some()
        || !e.baggage.is_empty()
        || e.format == "b3"
}

/// Runs the extractors in order; the first that finds a context wins.
pub fn extract(headers: &HeaderMap, order: &[String]) -> Option<Extracted> {
    if !headers.keys().any(|k| read_by_extractors(k.as_str())) {
        return None;
    }
    order.iter().find_map(|name| {
        let found = match name.as_str() {
            "w3c" => w3c(headers),
            "b3" => b3(headers),
            "jaeger" => jaeger(headers),
            "ot" => ot(headers),
            "datadog" => datadog(headers),
            "aws" => aws(headers),
            "gcp" => gcp(headers),
            _ => None,
        };
        found.filter(has_field)
    })
}

/// Whether an extractor reads the header `name`: a request without any of them carries no
/// context, and its headers need not be looked up one by one.
fn read_by_extractors(name: &str) -> bool {
    matches!(
        name,
        "traceparent"
            | "tracestate"
            | "b3"
            | "x-b3-traceid"
            | "x-b3-spanid"
            | "x-b3-sampled"
            | "x-b3-flags"
            | "uber-trace-id"
            | "ot-tracer-traceid"
            | "ot-tracer-spanid"
            | "ot-tracer-sampled"
            | "x-datadog-trace-id"
            | "x-datadog-parent-id"
            | "x-datadog-sampling-priority"
            | "x-amzn-trace-id"
            | "x-cloud-trace-context"
    ) || name.starts_with("uberctx-")
        || name.starts_with("ot-baggage-")
}

/// The injected header names, parsed at compile time.
static INJECTED: [HeaderName; 19] = [
    HeaderName::from_static("traceparent"),
    HeaderName::from_static("x-b3-traceid"),
    HeaderName::from_static("x-b3-spanid"),
    HeaderName::from_static("x-b3-parentspanid"),
    HeaderName::from_static("x-b3-flags"),
    HeaderName::from_static("x-b3-sampled"),
    HeaderName::from_static("b3"),
    HeaderName::from_static("uber-trace-id"),
    HeaderName::from_static("ot-tracer-traceid"),
    HeaderName::from_static("ot-tracer-spanid"),
    HeaderName::from_static("ot-tracer-sampled"),
    HeaderName::from_static("x-datadog-trace-id"),
    HeaderName::from_static("x-datadog-parent-id"),
    HeaderName::from_static("x-datadog-sampling-priority"),
    HeaderName::from_static("x-amzn-trace-id"),
    HeaderName::from_static("x-cloud-trace-context"),
    HeaderName::from_static("x-instana-t"),
    HeaderName::from_static("x-instana-s"),
    HeaderName::from_static("x-instana-l"),
];

fn set(headers: &mut HeaderMap, name: &str, value: String) {
    let name = match INJECTED.iter().find(|n| n.as_str() == name) {
        Some(known) => known.clone(),
        None => match HeaderName::from_bytes(name.as_bytes()) {
            Ok(n) => n,
            Err(_) => return,
        },
    };
    if let Ok(v) = HeaderValue::try_from(value) {
        headers.insert(name, v);
    }
}

fn sized_trace(ctx: &Outgoing, allowed: &[usize]) -> String {
    let size = ctx
        .trace_id_len
        .filter(|l| allowed.contains(l))
        .unwrap_or(allowed[0]);
    hex(&ctx.trace_id[16 - size..])
}

fn low64(id: &[u8; 16]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&id[8..]);
    u64::from_be_bytes(b)
}

/// Writes one injector's headers; returns the `trace_id` value for the log serializer.
pub fn inject(
    headers: &mut HeaderMap,
    format: &str,
    ctx: &Outgoing,
    baggage: &[(String, String)],
) -> Option<String> {
    let flag = if ctx.sampled { "1" } else { "0" };
    let span = hex(&ctx.span_id);
    match format {
        "w3c" => {
            let flags = if ctx.sampled { "01" } else { "00" };
            let trace = hex(&ctx.trace_id);
            let mut value = String::with_capacity(55);
            for part in ["00-", &trace, "-", &span, "-", flags] {
                value.push_str(part);
            }
            set(headers, "traceparent", value);
            Some(trace)
        }
        "b3" => {
            let trace = sized_trace(ctx, &[16, 8]);
            set(headers, "x-b3-traceid", trace.clone());
            set(headers, "x-b3-spanid", span);
            if let Some(p) = ctx.parent_id {
                set(headers, "x-b3-parentspanid", hex(&p));
            }
            if ctx.debug {
                set(headers, "x-b3-flags", "1".to_owned());
            } else {
                set(headers, "x-b3-sampled", flag.to_owned());
            }
            Some(trace)
        }
        "b3-single" => {
            let trace = sized_trace(ctx, &[16, 8]);
            let sampled = if ctx.debug { "d" } else { flag };
            let mut value = format!("{trace}-{span}-{sampled}");
            if let Some(p) = ctx.parent_id {
                value.push('-');
                value.push_str(&hex(&p));
            }
            set(headers, "b3", value);
            Some(trace)
        }
        "jaeger" => {
            let trace = sized_trace(ctx, &[16, 8]);
            let parent = ctx.parent_id.map_or_else(|| "0".to_owned(), |p| hex(&p));
            let flags = if ctx.sampled { "01" } else { "00" };
            set(
                headers,
                "uber-trace-id",
                format!("{trace}:{span}:{parent}:{flags}"),
            );
            for (k, v) in baggage {
                set(headers, &format!("uberctx-{k}"), v.clone());
            }
            Some(trace)
        }
        "ot" => {
            let trace = sized_trace(ctx, &[8, 16]);
            set(headers, "ot-tracer-traceid", trace.clone());
            set(headers, "ot-tracer-spanid", span);
            set(headers, "ot-tracer-sampled", flag.to_owned());
            for (k, v) in baggage {
                set(headers, &format!("ot-baggage-{k}"), v.clone());
            }
            Some(trace)
        }
        "datadog" => {
            let trace = low64(&ctx.trace_id).to_string();
            set(headers, "x-datadog-trace-id", trace.clone());
            set(
                headers,
                "x-datadog-parent-id",
                u64::from_be_bytes(ctx.span_id).to_string(),
            );
            set(headers, "x-datadog-sampling-priority", flag.to_owned());
            Some(trace)
        }
        "aws" => {
            let trace = hex(&ctx.trace_id);
            set(
                headers,
                "x-amzn-trace-id",
                format!(
                    "Root=1-{}-{};Parent={span};Sampled={flag}",
                    &trace[..8],
                    &trace[8..]
                ),
            );
            Some(trace)
        }
        "gcp" => {
            let trace = hex(&ctx.trace_id);
            set(
                headers,
                "x-cloud-trace-context",
                format!("{trace}/{};o={flag}", u64::from_be_bytes(ctx.span_id)),
            );
            Some(trace)
        }
        "instana" => {
            let trace = sized_trace(ctx, &[16, 8]);
            set(headers, "x-instana-t", trace.clone());
            set(headers, "x-instana-s", span);
            set(headers, "x-instana-l", flag.to_owned());
            Some(trace)
        }
        _ => None,
    }
}

/// The log-serializer key an injector reports under (`b3-single` reports as `b3`).
pub fn log_key(format: &str) -> &'static str {
    match format {
        "w3c" => "w3c",
        "b3" | "b3-single" => "b3",
        "jaeger" => "jaeger",
        "ot" => "ot",
        "datadog" => "datadog",
        "aws" => "aws",
        "gcp" => "gcp",
        _ => "instana",
    }
}
