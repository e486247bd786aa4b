//! The shop's services: request handling, spans, latency and failures.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode, Uri};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::SdkTracer;
use rand::Rng as _;
use serde_json::{json, Value};

use crate::failures::Schedule;
use crate::telemetry;

/// The shop's services, in the order their addresses are given.
pub const SERVICES: [&str; 4] = ["orders", "inventory", "pricing", "coupon"];

/// How long a service takes to answer: `latency` plus a uniform random `jitter`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Latency {
    /// The least time an answer takes.
    pub base: Duration,
    /// The most time added at random to `base`.
    pub jitter: Duration,
}

impl Latency {
    async fn pause(&self) {
        let jitter = if self.jitter.is_zero() {
            Duration::ZERO
        } else {
            rand::rng().random_range(Duration::ZERO..=self.jitter)
        };
        let wait = self.base + jitter;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// Where orders finds the services it calls.
#[derive(Clone, Debug)]
pub struct Dependencies {
    /// The client for the calls (timeouts set by the caller).
    pub client: reqwest::Client,
    /// Base URL of inventory, e.g. `http://127.0.0.1:9102`.
    pub inventory: String,
    /// Base URL of pricing, e.g. `http://127.0.0.1:9103`.
    pub pricing: String,
}

/// One running service.
pub struct Service {
    name: &'static str,
    tracer: SdkTracer,
    latency: Latency,
    failures: Schedule,
    dependencies: Option<Dependencies>,
}

impl Service {
    /// A service named `name` (one of [`SERVICES`]); orders needs `dependencies`.
    pub fn new(
        name: &'static str,
        tracer: SdkTracer,
        latency: Latency,
        failures: Schedule,
        dependencies: Option<Dependencies>,
    ) -> Self {
        Self {
            name,
            tracer,
            latency,
            failures,
            dependencies,
        }
    }

    /// The routes of the service: every path answers.
    pub fn router(self: Arc<Self>) -> axum::Router {
        axum::Router::new().fallback(handle).with_state(self)
    }

    async fn answer(&self, cx: &Context, item: &str) -> (StatusCode, Value) {
        let fails = self.failures.next_fails();
        self.latency.pause().await;
        let body = match self.name {
            "orders" => match self.place_order(cx, item).await {
                Ok(body) => body,
                Err(error) => return (StatusCode::BAD_GATEWAY, json!({ "error": error })),
            },
            "inventory" => json!({ "sku": item, "in_stock": stock(item) }),
            "pricing" => json!({ "sku": item, "price": price(item), "currency": "EUR" }),
            _ => json!({ "code": item, "valid": !item.ends_with('0') }),
        };
        if fails {
            let error = format!("{} failed (injected error)", self.name);
            return (StatusCode::INTERNAL_SERVER_ERROR, json!({ "error": error }));
        }
        (StatusCode::OK, body)
    }

    async fn place_order(&self, cx: &Context, item: &str) -> Result<Value, String> {
        let Some(deps) = &self.dependencies else {
            return Err("orders has no inventory and pricing addresses".to_owned());
        };
        let stock = self
            .call(cx, deps, "inventory", format!("{}/{item}", deps.inventory))
            .await?;
        let price = self
            .call(cx, deps, "pricing", format!("{}/{item}", deps.pricing))
            .await?;
        Ok(json!({
            "order": format!("{:016x}", rand::rng().random::<u64>()),
            "sku": item,
            "reserved": stock["in_stock"].as_u64().unwrap_or(0) > 0,
            "total": price["price"],
        }))
    }

    /// GET `url` in a CLIENT span, sending the span's `traceparent`.
    async fn call(
        &self,
        cx: &Context,
        deps: &Dependencies,
        peer: &str,
        url: String,
    ) -> Result<Value, String> {
        let span = self
            .tracer
            .span_builder(format!("GET {peer}"))
            .with_kind(SpanKind::Client)
            .with_attributes([
                KeyValue::new("http.method", "GET"),
                KeyValue::new("http.url", url.clone()),
                KeyValue::new("peer.service", peer.to_owned()),
            ])
            .start_with_context(&self.tracer, cx);
        let cx = cx.with_span(span);
        let mut headers = HeaderMap::new();
        telemetry::inject(&cx, &mut headers);
        let result = async {
            let response = deps
                .client
                .get(&url)
                .headers(headers)
                .send()
                .await
                .map_err(|e| format!("{peer}: {e}"))?;
            let status = response.status();
            cx.span().set_attribute(KeyValue::new(
                "http.status_code",
                i64::from(status.as_u16()),
            ));
            if !status.is_success() {
                return Err(format!("{peer} answered {status}"));
            }
            let body = response.bytes().await.map_err(|e| format!("{peer}: {e}"))?;
            serde_json::from_slice(&body).map_err(|e| format!("{peer}: {e}"))
        }
        .await;
        if let Err(error) = &result {
            cx.span().set_status(Status::error(error.clone()));
        }
        cx.span().end();
        result
    }
}

/// Every request: a SERVER span continuing the caller's trace, the answer, the status.
async fn handle(
    State(service): State<Arc<Service>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let parent = telemetry::extract(&headers);
    let (route, item) = route_and_item(uri.path());
    let span = service
        .tracer
        .span_builder(format!("{method} {route}"))
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new("http.method", method.to_string()),
            KeyValue::new("http.route", route),
            KeyValue::new("url.path", uri.path().to_owned()),
        ])
        .start_with_context(&service.tracer, &parent);
    let cx = parent.with_span(span);
    let (status, body) = service.answer(&cx, item).await;
    let span = cx.span();
    span.set_attribute(KeyValue::new(
        "http.status_code",
        i64::from(status.as_u16()),
    ));
    if status.is_server_error() {
        let message = body["error"].as_str().unwrap_or_default().to_owned();
        span.set_status(Status::error(message));
    }
    span.end();
    (
        status,
        [(http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The route template and the item of a path: `/` → (`/`, `sku-1`), `/sku-7` →
/// (`/{sku}`, `sku-7`); deeper paths are their own route.
fn route_and_item(path: &str) -> (&'static str, &str) {
    match path.trim_matches('/') {
        "" => ("/", "sku-1"),
        item if !item.contains('/') => ("/{sku}", item),
        _ => ("/*", "sku-1"),
    }
}

fn digest(item: &str) -> u64 {
    item.bytes()
        .fold(17u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
}

fn stock(item: &str) -> u64 {
    digest(item) % 50
}

fn price(item: &str) -> f64 {
    (digest(item) % 10_000) as f64 / 100.0 + 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_low_cardinality_routes() {
        assert_eq!(route_and_item("/"), ("/", "sku-1"));
        assert_eq!(route_and_item(""), ("/", "sku-1"));
        assert_eq!(route_and_item("/sku-7"), ("/{sku}", "sku-7"));
        assert_eq!(route_and_item("/a/b"), ("/*", "sku-1"));
    }

    #[test]
    fn an_item_keeps_its_stock_and_price() {
        assert_eq!(stock("sku-3"), stock("sku-3"));
        assert_eq!(price("sku-3"), price("sku-3"));
        assert!(price("sku-3") >= 1.0);
    }
}
