//! Graph tests with mock components: wiring, isolation between pipelines, connectors,
//! cycles, start/stop order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use serde::Deserialize;

use super::*;
use crate::component::{
    Component, ConnectorFactory, ExporterFactory, FactoryInfo, Host, ProcessorFactory, RawConfig,
    ReceiverFactory, Stability,
};
use crate::config::{decode, FieldError, Pipeline};
use crate::pipeline::{Batch, Capture, ClientInfo, ConsumeError, Consumer};
use crate::processors::{Processor, ProcessorNode};
use crate::service::Collector;

const ALL: [Stability; 3] = [Stability::Alpha; 3];

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct KeyConfig {
    key: String,
}

/// Test-wide state: receivers' consumers, exporters' captures, lifecycle events.
#[derive(Default)]
struct World {
    receivers: HashMap<String, ReceiverConsumers>,
    exporters: HashMap<String, Arc<Capture>>,
    events: Vec<String>,
}

fn world() -> &'static Mutex<World> {
    static WORLD: OnceLock<Mutex<World>> = OnceLock::new();
    WORLD.get_or_init(Mutex::default)
}

fn event(text: String) {
    world().lock().unwrap().events.push(text);
}

fn events_for(prefix: &str) -> Vec<String> {
    let w = world().lock().unwrap();
    w.events
        .iter()
        .filter(|e| e.contains(prefix))
        .cloned()
        .collect()
}

struct Lifecycle(String);

#[async_trait]
impl Component for Lifecycle {
    async fn start(&self, _host: &Host) -> Result<(), ComponentError> {
        event(format!("start {}", self.0));
        Ok(())
    }
    async fn shutdown(&self) -> Result<(), ComponentError> {
        event(format!("stop {}", self.0));
        Ok(())
    }
}

struct MockReceiver;
static MOCK_RECEIVER_INFO: FactoryInfo = FactoryInfo {
    name: "mockrcv",
    aliases: &[],
    stability: ALL,
};
impl ReceiverFactory for MockReceiver {
    fn info(&self) -> &FactoryInfo {
        &MOCK_RECEIVER_INFO
    }
    fn validate(&self, config: &RawConfig) -> Result<(), FieldError> {
        decode::<KeyConfig>(config).map(drop)
    }
    fn create(
        &self,
        _settings: &CreateSettings,
        config: &RawConfig,
        consumers: ReceiverConsumers,
    ) -> Result<Arc<dyn Component>, ComponentError> {
        let key = decode::<KeyConfig>(config)?.key;
        world()
            .lock()
            .unwrap()
            .receivers
            .insert(key.clone(), consumers);
        Ok(Arc::new(Lifecycle(format!("receiver {key}"))))
    }
}

/// Adds attribute `pipeline` = its pipeline name to every span.
struct Tag(String);
impl Processor for Tag {
    fn process(&self, mut batch: Batch, _client: &ClientInfo) -> Result<Batch, ConsumeError> {
        if let Batch::Traces(rs) = &mut batch {
            for span in rs
                .iter_mut()
                .flat_map(|r| &mut r.scope_spans)
                .flat_map(|s| &mut s.spans)
            {
                span.attributes.push(string_kv("pipeline", &self.0));
            }
        }
        Ok(batch)
    }
}

struct MockProcessor;
static MOCK_PROCESSOR_INFO: FactoryInfo = FactoryInfo {
    name: "mocktag",
    aliases: &[],
    stability: ALL,
};
impl ProcessorFactory for MockProcessor {
    fn info(&self) -> &FactoryInfo {
        &MOCK_PROCESSOR_INFO
    }
    fn validate(&self, _config: &RawConfig) -> Result<(), FieldError> {
        Ok(())
    }
    fn create(
        &self,
        settings: &CreateSettings,
        _config: &RawConfig,
        next: BoxConsumer,
    ) -> Result<BoxNode, ComponentError> {
        Ok(Arc::new(ProcessorNode::new(
            Tag(settings.pipeline.clone()),
            settings.id.to_string(),
            settings.signal,
            next,
        )))
    }
}

/// A capture that also records its lifecycle.
struct RecordingExporter {
    name: String,
    capture: Arc<Capture>,
}
#[async_trait]
impl Consumer for RecordingExporter {
    async fn consume(&self, batch: Batch, client: &ClientInfo) -> Result<(), ConsumeError> {
        self.capture.consume(batch, client).await
    }
}
#[async_trait]
impl Component for RecordingExporter {
    async fn start(&self, host: &Host) -> Result<(), ComponentError> {
        Lifecycle(self.name.clone()).start(host).await
    }
    async fn shutdown(&self) -> Result<(), ComponentError> {
        Lifecycle(self.name.clone()).shutdown().await
    }
}

struct MockExporter;
static MOCK_EXPORTER_INFO: FactoryInfo = FactoryInfo {
    name: "mockexp",
    aliases: &["mock_exp"],
    stability: ALL,
};
impl ExporterFactory for MockExporter {
    fn info(&self) -> &FactoryInfo {
        &MOCK_EXPORTER_INFO
    }
    fn validate(&self, config: &RawConfig) -> Result<(), FieldError> {
        decode::<KeyConfig>(config).map(drop)
    }
    fn create(
        &self,
        settings: &CreateSettings,
        config: &RawConfig,
    ) -> Result<BoxNode, ComponentError> {
        let key = format!("{}/{}", decode::<KeyConfig>(config)?.key, settings.signal);
        let capture = Arc::new(Capture::new());
        world()
            .lock()
            .unwrap()
            .exporters
            .insert(key.clone(), capture.clone());
        Ok(Arc::new(RecordingExporter {
            name: format!("exporter {key}"),
            capture,
        }))
    }
}

/// traces → metrics: one gauge point per batch whose value is the span count.
struct CountSpans(BoxConsumer);
#[async_trait]
impl Consumer for CountSpans {
    async fn consume(&self, batch: Batch, client: &ClientInfo) -> Result<(), ConsumeError> {
        let point = NumberDataPoint {
            value: Some(number_data_point::Value::AsInt(batch.item_count() as i64)),
            ..Default::default()
        };
        let metric = Metric {
            name: "spans".into(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: vec![point],
            })),
            ..Default::default()
        };
        let out = Batch::Metrics(vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![metric],
                ..Default::default()
            }],
            ..Default::default()
        }]);
        self.0.consume(out, client).await
    }
}
impl Component for CountSpans {}

struct MockConnector;
static MOCK_CONNECTOR_INFO: FactoryInfo = FactoryInfo {
    name: "mockcount",
    aliases: &[],
    stability: ALL,
};
impl ConnectorFactory for MockConnector {
    fn info(&self) -> &FactoryInfo {
        &MOCK_CONNECTOR_INFO
    }
    fn pairs(&self) -> &'static [(Signal, Signal)] {
        &[(Signal::Traces, Signal::Metrics)]
    }
    fn validate(&self, _config: &RawConfig) -> Result<(), FieldError> {
        Ok(())
    }
    fn create(
        &self,
        _settings: &CreateSettings,
        _config: &RawConfig,
        _from: Signal,
        _to: Signal,
        next: BoxConsumer,
    ) -> Result<BoxNode, ComponentError> {
        Ok(Arc::new(CountSpans(next)))
    }
}

static REGISTRY: Registry = Registry {
    receivers: &[&MockReceiver],
    processors: &[&MockProcessor],
    exporters: &[&MockExporter],
    connectors: &[&MockConnector],
    extensions: &[],
};

fn id(text: &str) -> ComponentId {
    ComponentId::parse(text).unwrap()
}

fn ids(list: &[&str]) -> Vec<ComponentId> {
    list.iter().map(|s| id(s)).collect()
}

fn key(k: &str) -> RawConfig {
    yaml_serde::from_str(&format!("key: {k}")).unwrap()
}

fn pipeline_id(text: &str) -> PipelineId {
    let (signal, name) = match text.split_once('/') {
        Some((s, n)) => (s, Some(n.to_owned())),
        None => (text, None),
    };
    PipelineId {
        signal: Signal::parse(signal).unwrap(),
        name,
    }
}

fn pipeline(receivers: &[&str], processors: &[&str], exporters: &[&str]) -> Pipeline {
    Pipeline {
        receivers: ids(receivers),
        processors: ids(processors),
        exporters: ids(exporters),
    }
}

fn string_kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

fn spans(n: usize) -> Batch {
    Batch::Traces(vec![ResourceSpans {
        scope_spans: vec![ScopeSpans {
            spans: (0..n)
                .map(|i| Span {
                    name: format!("span-{i}"),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }])
}

fn receiver_consumer(key: &str, signal: Signal) -> BoxConsumer {
    world().lock().unwrap().receivers[key]
        .get(signal)
        .unwrap()
        .clone()
}

fn exporter_capture(key: &str) -> Arc<Capture> {
    world().lock().unwrap().exporters[key].clone()
}

fn pipeline_tags(batch: &Batch) -> Vec<String> {
    let Batch::Traces(rs) = batch else {
        return Vec::new();
    };
    rs.iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .flat_map(|s| &s.attributes)
        .filter(|kv| kv.key == "pipeline")
        .map(|kv| match &kv.value.as_ref().unwrap().value {
            Some(any_value::Value::StringValue(s)) => s.clone(),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn receiver_fans_out_and_pipelines_do_not_see_each_others_edits() {
    let mut config = Config::default();
    config.receivers.insert(id("mockrcv"), key("fan-r"));
    config.processors.insert(id("mocktag"), RawConfig::Null);
    config.exporters.insert(id("mockexp/a"), key("fan-a"));
    config
        .exporters
        .insert(id("mockexp/shared"), key("fan-shared"));
    let p = &mut config.service.pipelines;
    p.insert(
        pipeline_id("traces/one"),
        pipeline(&["mockrcv"], &["mocktag"], &["mockexp/a", "mockexp/shared"]),
    );
    p.insert(
        pipeline_id("traces/two"),
        pipeline(&["mockrcv"], &["mocktag"], &["mockexp/shared"]),
    );

    let graph = build(&config, &REGISTRY).unwrap();
    // One receiver; two processor instances (one per pipeline); two exporters.
    assert_eq!(graph.receivers.len(), 1);
    assert_eq!(
        graph
            .nodes
            .iter()
            .filter(|n| n.kind == Kind::Processor)
            .count(),
        2
    );
    assert_eq!(
        graph
            .nodes
            .iter()
            .filter(|n| n.kind == Kind::Exporter)
            .count(),
        2
    );

    let input = receiver_consumer("fan-r", Signal::Traces);
    input
        .consume(spans(3), &ClientInfo::default())
        .await
        .unwrap();

    let a = exporter_capture("fan-a/traces").batches();
    assert_eq!(a.len(), 1);
    assert_eq!(pipeline_tags(&a[0]), vec!["traces/one"; 3]);

    // The shared exporter gets one batch from each pipeline, each tagged once, by its own.
    let mut shared: Vec<Vec<String>> = exporter_capture("fan-shared/traces")
        .batches()
        .iter()
        .map(pipeline_tags)
        .collect();
    shared.sort();
    assert_eq!(shared, vec![vec!["traces/one"; 3], vec!["traces/two"; 3]]);
}

#[tokio::test]
async fn fanout_joins_errors_and_still_delivers_to_the_others() {
    let mut config = Config::default();
    config.receivers.insert(id("mockrcv"), key("err-r"));
    config.exporters.insert(id("mockexp/a"), key("err-a"));
    config.exporters.insert(id("mockexp/b"), key("err-b"));
    config.service.pipelines.insert(
        pipeline_id("traces"),
        pipeline(&["mockrcv"], &[], &["mockexp/a", "mockexp/b"]),
    );
    build(&config, &REGISTRY).unwrap();

    exporter_capture("err-a/traces").refuse_next(vec![ConsumeError::retryable("queue full")]);
    let input = receiver_consumer("err-r", Signal::Traces);
    let err = input
        .consume(spans(2), &ClientInfo::default())
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(err.message, "queue full");
    assert_eq!(exporter_capture("err-a/traces").item_count(), 0);
    assert_eq!(exporter_capture("err-b/traces").item_count(), 2);
}

#[tokio::test]
async fn connector_turns_traces_into_metrics_for_its_receiver_pipelines() {
    let mut config = Config::default();
    config.receivers.insert(id("mockrcv"), key("conn-r"));
    config.connectors.insert(id("mockcount"), RawConfig::Null);
    config.exporters.insert(id("mockexp"), key("conn-e"));
    let p = &mut config.service.pipelines;
    p.insert(
        pipeline_id("traces"),
        pipeline(&["mockrcv"], &[], &["mockcount", "mockexp"]),
    );
    p.insert(
        pipeline_id("metrics"),
        pipeline(&["mockcount"], &[], &["mockexp"]),
    );
    let graph = build(&config, &REGISTRY).unwrap();
    assert_eq!(
        graph
            .nodes
            .iter()
            .filter(|n| n.kind == Kind::Connector)
            .count(),
        1
    );

    let input = receiver_consumer("conn-r", Signal::Traces);
    input
        .consume(spans(4), &ClientInfo::default())
        .await
        .unwrap();
    assert_eq!(exporter_capture("conn-e/traces").item_count(), 4);
    let metrics = exporter_capture("conn-e/metrics").batches();
    assert_eq!(metrics.len(), 1);
    let Batch::Metrics(rm) = &metrics[0] else {
        panic!("expected metrics")
    };
    let metric = &rm[0].scope_metrics[0].metrics[0];
    let Some(metric::Data::Gauge(g)) = &metric.data else {
        panic!("expected a gauge")
    };
    assert_eq!(
        g.data_points[0].value,
        Some(number_data_point::Value::AsInt(4))
    );
}

#[test]
fn connector_used_on_one_side_only_is_an_error() {
    let mut config = Config::default();
    config.receivers.insert(id("mockrcv"), key("one-side"));
    config.connectors.insert(id("mockcount"), RawConfig::Null);
    config.exporters.insert(id("mockexp"), key("one-side-e"));
    config.service.pipelines.insert(
        pipeline_id("traces"),
        pipeline(&["mockrcv"], &[], &["mockcount"]),
    );
    let err = build(&config, &REGISTRY).err().unwrap();
    assert_eq!(
        err.to_string(),
        "connector \"mockcount\" used as exporter in traces pipeline but not used in any supported receiver pipeline"
    );
}

#[test]
fn cycle_through_connectors_is_named() {
    struct Loop;
    static LOOP_INFO: FactoryInfo = FactoryInfo {
        name: "loop",
        aliases: &[],
        stability: ALL,
    };
    impl ConnectorFactory for Loop {
        fn info(&self) -> &FactoryInfo {
            &LOOP_INFO
        }
        fn pairs(&self) -> &'static [(Signal, Signal)] {
            &[(Signal::Traces, Signal::Traces)]
        }
        fn validate(&self, _config: &RawConfig) -> Result<(), FieldError> {
            Ok(())
        }
        fn create(
            &self,
            _s: &CreateSettings,
            _c: &RawConfig,
            _from: Signal,
            _to: Signal,
            next: BoxConsumer,
        ) -> Result<BoxNode, ComponentError> {
            Ok(Arc::new(CountSpans(next)))
        }
    }
    static LOOP_REGISTRY: Registry = Registry {
        receivers: &[&MockReceiver],
        processors: &[],
        exporters: &[&MockExporter],
        connectors: &[&Loop],
        extensions: &[],
    };
    let mut config = Config::default();
    config.receivers.insert(id("mockrcv"), key("cycle"));
    config.connectors.insert(id("loop/x"), RawConfig::Null);
    config.connectors.insert(id("loop/y"), RawConfig::Null);
    let p = &mut config.service.pipelines;
    p.insert(
        pipeline_id("traces/a"),
        pipeline(&["mockrcv", "loop/y"], &[], &["loop/x"]),
    );
    p.insert(
        pipeline_id("traces/b"),
        pipeline(&["loop/x"], &[], &["loop/y"]),
    );
    let err = build(&config, &LOOP_REGISTRY).err().unwrap().to_string();
    assert!(
        err.starts_with("cycle detected: traces/a -> traces/b -> traces/a"),
        "{err}"
    );
}

#[test]
fn unknown_ids_and_types_are_errors() {
    let mut config = Config::default();
    config.receivers.insert(id("mockrcv"), key("unknown"));
    config.service.pipelines.insert(
        pipeline_id("traces"),
        pipeline(&["mockrcv"], &[], &["nope"]),
    );
    let err = build(&config, &REGISTRY).err().unwrap();
    assert_eq!(
        err.to_string(),
        "service::pipelines::traces: references exporter \"nope\" which is not configured"
    );

    config.exporters.insert(id("nope"), RawConfig::Null);
    let err = build(&config, &REGISTRY).err().unwrap();
    assert_eq!(err.to_string(), "exporters::nope: unknown type \"nope\"");
}

#[tokio::test]
async fn starts_consumers_before_producers_and_stops_in_reverse() {
    let mut config = Config::default();
    config.receivers.insert(id("mockrcv"), key("order-r"));
    config.exporters.insert(id("mock_exp"), key("order-e"));
    config.service.pipelines.insert(
        pipeline_id("logs"),
        pipeline(&["mockrcv"], &[], &["mock_exp"]),
    );
    let collector = Collector::build(&config, &REGISTRY).unwrap();
    assert!(!*collector.host().ready.borrow());
    collector.start().await.unwrap();
    assert!(*collector.host().ready.borrow());
    collector.shutdown(std::time::Duration::from_secs(5)).await;
    assert!(!*collector.host().ready.borrow());
    assert!(collector.host().shutdown.is_cancelled());
    assert_eq!(
        events_for("order-"),
        vec![
            "start exporter order-e/logs",
            "start receiver order-r",
            "stop receiver order-r",
            "stop exporter order-e/logs",
        ]
    );
}
