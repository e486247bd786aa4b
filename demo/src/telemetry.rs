//! Tracing set-up: one tracer provider per service (its own `service.name`), exporting over
//! OTLP/gRPC, and the W3C trace-context propagation the gateway speaks.

use http::HeaderMap;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;

/// The `service.namespace` of every demo service.
pub const NAMESPACE: &str = "demo-shop";

/// The instrumentation scope of the demo's spans.
pub const SCOPE: &str = "otelpipe-demo";

/// The OTLP exporter could not be built.
#[derive(Debug, thiserror::Error)]
#[error("OTLP exporter for {endpoint}: {source}")]
pub struct TelemetryError {
    endpoint: String,
    #[source]
    source: opentelemetry_otlp::ExporterBuildError,
}

/// A provider for `service` sending its spans, batched, to the OTLP/gRPC `endpoint`
/// (`http://host:4317`). Must be built inside a Tokio runtime.
pub fn provider(service: &str, endpoint: &str) -> Result<SdkTracerProvider, TelemetryError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|source| TelemetryError {
            endpoint: endpoint.to_owned(),
            source,
        })?;
    let resource = Resource::builder()
        .with_service_name(service.to_owned())
        .with_attribute(KeyValue::new("service.namespace", NAMESPACE))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_resource(resource)
        .with_batch_exporter(exporter)
        .build())
}

/// The tracer of a provider.
pub fn tracer(provider: &SdkTracerProvider) -> SdkTracer {
    provider.tracer(SCOPE)
}

/// The remote parent the request's `traceparent` / `tracestate` carry (an empty context when
/// they are missing or invalid).
pub fn extract(headers: &HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// Writes `traceparent` (and `tracestate`) for the span of `cx`.
pub fn inject(cx: &Context, headers: &mut HeaderMap) {
    TraceContextPropagator::new().inject_context(cx, &mut HeaderInjector(headers));
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TraceContextExt as _;

    #[test]
    fn the_gateways_traceparent_is_continued() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "traceparent",
            "00-3bde5d3ee82303571bba6e1136781fe4-2cf3ef2899aba35c-01"
                .parse()
                .unwrap(),
        );
        let cx = extract(&headers);
        let parent = cx.span().span_context().clone();
        assert!(parent.is_remote() && parent.is_sampled());
        assert_eq!(
            parent.trace_id().to_string(),
            "3bde5d3ee82303571bba6e1136781fe4"
        );
        assert_eq!(parent.span_id().to_string(), "2cf3ef2899aba35c");

        let mut out = HeaderMap::new();
        inject(&cx, &mut out);
        assert_eq!(
            out["traceparent"],
            "00-3bde5d3ee82303571bba6e1136781fe4-2cf3ef2899aba35c-01"
        );
    }

    #[test]
    fn a_malformed_traceparent_starts_a_new_trace() {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", "00-zz-2cf3ef2899aba35c-01".parse().unwrap());
        assert!(!extract(&headers).span().span_context().is_valid());
    }
}
