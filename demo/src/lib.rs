//! The otelpipe demo: a small e-commerce API whose services trace every request with the
//! OpenTelemetry SDK, and a traffic generator that sends a mix of requests through the
//! gateway.
//!
//! `demo-shop` runs four HTTP services, each on its own address, so that the gateway routes
//! to them as to four upstreams:
//!
//! | service   | default address  | answers |
//! |-----------|------------------|---------|
//! | orders    | 127.0.0.1:9101   | places an order: calls inventory, then pricing |
//! | inventory | 127.0.0.1:9102   | the stock of an item |
//! | pricing   | 127.0.0.1:9103   | the price of an item |
//! | coupon    | 127.0.0.1:9104   | whether a coupon code is valid |
//!
//! Each service continues the W3C trace context the gateway sends (`traceparent`), so a trace
//! holds Kong's spans, the service's SERVER span and, for orders, its CLIENT spans and the
//! inventory and pricing SERVER spans below them. Spans go over OTLP/gRPC to the collector.
//! Latency and failures are configurable; failures are spread evenly (a rate of 0.1 fails
//! exactly every tenth request of that service), so a test or a dashboard sees the rate that
//! was asked for.
//!
//! `demo-traffic` sends requests at a fixed rate for a duration (or a number of requests),
//! over a weighted mix of routes, and prints what it got per route and status as JSON.

pub mod client;
pub mod failures;
pub mod mix;
pub mod shop;
pub mod telemetry;
pub mod traffic;
