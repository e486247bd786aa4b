//! `otelpipe`: an OpenTelemetry-Collector-compatible telemetry pipeline.
//!
//! Users run the YAML they already run with otelcol-contrib; receivers decode OTLP (and
//! other formats) into the OTLP protobuf structs, processors edit them in place, exporters
//! encode them once.
//!
//! # Layout
//!
//! - [`config`]: otelcol's config language, loaded in stages, validated before any port opens.
//! - [`pipeline`]: batches, the [`pipeline::Consumer`] edge, fan-out, the graph.
//! - [`codec`]: wire formats shared by receivers and exporters (compression, OTLP/JSON).
//! - [`component`]: the component lifecycle and the factory traits.
//! - [`registry`]: the one list of factories.
//! - [`service`]: starting and stopping a built graph.
//! - [`receivers`], [`processors`], [`exporters`], [`connectors`], [`extensions`]: one
//!   module per component type.
//! - [`telemetry`]: the collector's own metrics and logs.

pub mod codec;
pub mod component;
pub mod config;
pub mod connectors;
pub mod exporters;
pub mod extensions;
pub mod net;
pub mod pipeline;
pub mod processors;
pub mod receivers;
pub mod registry;
pub mod service;
pub mod telemetry;
pub mod tls;
