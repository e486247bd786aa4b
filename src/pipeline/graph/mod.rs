//! The graph built once from `service.pipelines`.
//!
//! Built back to front, so each node is created with its next consumers in hand:
//! exporters first (one instance per exporter id and signal), then each pipeline's
//! processors from last to first (one instance per pipeline and processor id), connectors
//! when a pipeline's exporter list names one (one instance per connector id and signal pair,
//! feeding the pipelines that list it as a receiver), and receivers last (one instance per
//! id, fanning out to every pipeline that lists it). Creation order is kept: starting in
//! that order brings every consumer up before its producers, stopping in the reverse order
//! stops producers first so buffered data flushes downstream.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use crate::component::{BoxNode, Component, ComponentError, CreateSettings, ReceiverConsumers};
use crate::config::{ComponentId, Config, PipelineId};
use crate::registry::Registry;

use super::{BoxConsumer, Fanout, Signal};

/// The kind of a component, as config sections name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `receivers:`.
    Receiver,
    /// `processors:`.
    Processor,
    /// `exporters:`.
    Exporter,
    /// `connectors:`.
    Connector,
    /// `extensions:`.
    Extension,
}

impl Kind {
    /// The config section name (`receivers`).
    pub fn section(self) -> &'static str {
        match self {
            Self::Receiver => "receivers",
            Self::Processor => "processors",
            Self::Exporter => "exporters",
            Self::Connector => "connectors",
            Self::Extension => "extensions",
        }
    }

    fn singular(self) -> &'static str {
        match self {
            Self::Receiver => "receiver",
            Self::Processor => "processor",
            Self::Exporter => "exporter",
            Self::Connector => "connector",
            Self::Extension => "extension",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.singular())
    }
}

/// Why the graph could not be built.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// A pipeline names an id that no section configures.
    #[error("service::pipelines::{pipeline}: references {kind} \"{id}\" which is not configured")]
    NotConfigured {
        /// The pipeline.
        pipeline: PipelineId,
        /// What kind of id it was looked up as.
        kind: Kind,
        /// The id.
        id: ComponentId,
    },
    /// No factory for the component's type.
    #[error("{}::{id}: unknown type \"{}\"", kind.section(), id.kind())]
    UnknownType {
        /// The kind.
        kind: Kind,
        /// The id.
        id: ComponentId,
    },
    /// The component does not support the pipeline's signal.
    #[error("{}::{id}: {signal} data type is not supported", kind.section())]
    Unsupported {
        /// The kind.
        kind: Kind,
        /// The id.
        id: ComponentId,
        /// The signal.
        signal: Signal,
    },
    /// A factory refused to build the component.
    #[error("{}::{id}: {source}", kind.section())]
    Create {
        /// The kind.
        kind: Kind,
        /// The id.
        id: ComponentId,
        /// The factory's error.
        source: ComponentError,
    },
    /// A connector is used as an exporter, but no pipeline it can feed lists it as receiver.
    #[error("connector \"{id}\" used as exporter in {signal} pipeline but not used in any supported receiver pipeline")]
    ConnectorNotReceiver {
        /// The connector.
        id: ComponentId,
        /// The exporter-side signal.
        signal: Signal,
    },
    /// A connector is used as a receiver, but no pipeline exports to it.
    #[error("connector \"{id}\" used as receiver in {signal} pipeline but not used in any supported exporter pipeline")]
    ConnectorNotExporter {
        /// The connector.
        id: ComponentId,
        /// The receiver-side signal.
        signal: Signal,
    },
    /// Pipelines feed each other in a loop through connectors.
    #[error("cycle detected: {0}")]
    Cycle(String),
}

/// A started or startable component and where it sits.
#[derive(Clone)]
pub struct GraphNode {
    /// Its kind.
    pub kind: Kind,
    /// Its id, plus the signal or pipeline it serves (`otlphttp (traces)`).
    pub name: String,
    /// Its lifecycle.
    pub component: Arc<dyn Component>,
}

/// Every component of a built collector, in creation order.
pub struct Graph {
    /// Extensions, in `service.extensions` order.
    pub extensions: Vec<GraphNode>,
    /// Exporters, connectors and processors, downstream first.
    pub nodes: Vec<GraphNode>,
    /// Receivers.
    pub receivers: Vec<GraphNode>,
}

/// Builds every component the pipelines use.
///
/// # Errors
/// The first [`GraphError`] met; the config validator reports most of them earlier, all at once.
pub fn build(config: &Config, registry: &Registry) -> Result<Graph, GraphError> {
    let mut builder = Builder {
        config,
        registry,
        exporters: HashMap::new(),
        connectors: HashMap::new(),
        entries: HashMap::new(),
        visiting: Vec::new(),
        nodes: Vec::new(),
    };
    for pid in config.service.pipelines.keys() {
        builder.pipeline_entry(pid)?;
    }
    builder.check_connectors_fed()?;
    let receivers = builder.receivers()?;
    let extensions = builder.extensions()?;
    Ok(Graph {
        extensions,
        nodes: builder.nodes,
        receivers,
    })
}

struct Builder<'a> {
    config: &'a Config,
    registry: &'a Registry,
    exporters: HashMap<(ComponentId, Signal), BoxNode>,
    connectors: HashMap<(ComponentId, Signal, Signal), BoxNode>,
    entries: HashMap<PipelineId, BoxConsumer>,
    visiting: Vec<PipelineId>,
    nodes: Vec<GraphNode>,
}

impl Builder<'_> {
    /// The first consumer of pipeline `pid`, building it and everything downstream.
    fn pipeline_entry(&mut self, pid: &PipelineId) -> Result<BoxConsumer, GraphError> {
        if let Some(entry) = self.entries.get(pid) {
            return Ok(entry.clone());
        }
        if let Some(pos) = self.visiting.iter().position(|p| p == pid) {
            let mut path: Vec<String> = self.visiting[pos..]
                .iter()
                .map(ToString::to_string)
                .collect();
            path.push(pid.to_string());
            return Err(GraphError::Cycle(path.join(" -> ")));
        }
        self.visiting.push(pid.clone());
        let pipeline = &self.config.service.pipelines[pid];
        let signal = pid.signal;

        let mut outputs = Vec::new();
        for id in &pipeline.exporters {
            if self.config.exporters.contains_key(id) {
                outputs.push(self.exporter(id, signal)?);
            } else if self.config.connectors.contains_key(id) {
                outputs.extend(self.connector_outputs(id, signal)?);
            } else {
                return Err(GraphError::NotConfigured {
                    pipeline: pid.clone(),
                    kind: Kind::Exporter,
                    id: id.clone(),
                });
            }
        }
        let mut next = Fanout::wrap(outputs);

        for id in pipeline.processors.iter().rev() {
            let raw = self
                .config
                .processors
                .get(id)
                .ok_or_else(|| GraphError::NotConfigured {
                    pipeline: pid.clone(),
                    kind: Kind::Processor,
                    id: id.clone(),
                })?;
            let factory =
                self.registry
                    .processor(id.kind())
                    .ok_or_else(|| GraphError::UnknownType {
                        kind: Kind::Processor,
                        id: id.clone(),
                    })?;
            check_signal(factory.info().supports(signal), Kind::Processor, id, signal)?;
            let settings = CreateSettings {
                id: id.clone(),
                signal,
                pipeline: pid.to_string(),
            };
            let node = factory
                .create(&settings, raw, next)
                .map_err(|source| create_error(Kind::Processor, id, source))?;
            self.push(Kind::Processor, format!("{id} ({pid})"), &node);
            next = node;
        }

        self.visiting.pop();
        self.entries.insert(pid.clone(), next.clone());
        Ok(next)
    }

    fn exporter(&mut self, id: &ComponentId, signal: Signal) -> Result<BoxConsumer, GraphError> {
        if let Some(node) = self.exporters.get(&(id.clone(), signal)) {
            return Ok(node.clone());
        }
        let factory = self
            .registry
            .exporter(id.kind())
            .ok_or_else(|| GraphError::UnknownType {
                kind: Kind::Exporter,
                id: id.clone(),
            })?;
        check_signal(factory.info().supports(signal), Kind::Exporter, id, signal)?;
        let settings = CreateSettings {
            id: id.clone(),
            signal,
            pipeline: String::new(),
        };
        let node = factory
            .create(&settings, &self.config.exporters[id])
            .map_err(|source| create_error(Kind::Exporter, id, source))?;
        self.push(Kind::Exporter, format!("{id} ({signal})"), &node);
        self.exporters.insert((id.clone(), signal), node.clone());
        Ok(node)
    }

    /// The connector nodes a `from` pipeline exporting to connector `id` feeds: one per
    /// receiver-side signal that some pipeline listing `id` as a receiver carries.
    fn connector_outputs(
        &mut self,
        id: &ComponentId,
        from: Signal,
    ) -> Result<Vec<BoxConsumer>, GraphError> {
        let factory =
            self.registry
                .connector(id.kind())
                .ok_or_else(|| GraphError::UnknownType {
                    kind: Kind::Connector,
                    id: id.clone(),
                })?;
        let mut targets: BTreeMap<Signal, Vec<PipelineId>> = BTreeMap::new();
        for (pid, p) in &self.config.service.pipelines {
            if p.receivers.contains(id) && factory.pairs().contains(&(from, pid.signal)) {
                targets.entry(pid.signal).or_default().push(pid.clone());
            }
        }
        if targets.is_empty() {
            return Err(GraphError::ConnectorNotReceiver {
                id: id.clone(),
                signal: from,
            });
        }
        let mut outputs = Vec::new();
        for (to, pids) in targets {
            let key = (id.clone(), from, to);
            if let Some(node) = self.connectors.get(&key) {
                outputs.push(node.clone() as BoxConsumer);
                continue;
            }
            let mut entries = Vec::new();
            for pid in &pids {
                entries.push(self.pipeline_entry(pid)?);
            }
            let settings = CreateSettings {
                id: id.clone(),
                signal: from,
                pipeline: String::new(),
            };
            let node = factory
                .create(
                    &settings,
                    &self.config.connectors[id],
                    from,
                    to,
                    Fanout::wrap(entries),
                )
                .map_err(|source| create_error(Kind::Connector, id, source))?;
            self.push(Kind::Connector, format!("{id} ({from} -> {to})"), &node);
            self.connectors.insert(key, node.clone());
            outputs.push(node);
        }
        Ok(outputs)
    }

    /// Every connector used as a receiver must be fed by some pipeline.
    fn check_connectors_fed(&self) -> Result<(), GraphError> {
        for (pid, p) in &self.config.service.pipelines {
            for id in &p.receivers {
                if !self.config.connectors.contains_key(id) {
                    continue;
                }
                let fed = self
                    .connectors
                    .keys()
                    .any(|(cid, _, to)| cid == id && *to == pid.signal);
                if !fed {
                    return Err(GraphError::ConnectorNotExporter {
                        id: id.clone(),
                        signal: pid.signal,
                    });
                }
            }
        }
        Ok(())
    }

    fn receivers(&self) -> Result<Vec<GraphNode>, GraphError> {
        let mut consumers: BTreeMap<ComponentId, BTreeMap<Signal, Vec<BoxConsumer>>> =
            BTreeMap::new();
        for (pid, p) in &self.config.service.pipelines {
            for id in &p.receivers {
                if self.config.connectors.contains_key(id) {
                    continue;
                }
                if !self.config.receivers.contains_key(id) {
                    return Err(GraphError::NotConfigured {
                        pipeline: pid.clone(),
                        kind: Kind::Receiver,
                        id: id.clone(),
                    });
                }
                consumers
                    .entry(id.clone())
                    .or_default()
                    .entry(pid.signal)
                    .or_default()
                    .push(self.entries[pid].clone());
            }
        }
        let mut nodes = Vec::new();
        for (id, by_signal) in consumers {
            let factory =
                self.registry
                    .receiver(id.kind())
                    .ok_or_else(|| GraphError::UnknownType {
                        kind: Kind::Receiver,
                        id: id.clone(),
                    })?;
            let mut wired = ReceiverConsumers::default();
            let first = *by_signal
                .keys()
                .next()
                .expect("a receiver in a pipeline has a signal");
            for (signal, list) in by_signal {
                check_signal(factory.info().supports(signal), Kind::Receiver, &id, signal)?;
                wired.set(signal, Fanout::wrap(list));
            }
            let settings = CreateSettings {
                id: id.clone(),
                signal: first,
                pipeline: String::new(),
            };
            let component = factory
                .create(&settings, &self.config.receivers[&id], wired)
                .map_err(|source| create_error(Kind::Receiver, &id, source))?;
            nodes.push(GraphNode {
                kind: Kind::Receiver,
                name: id.to_string(),
                component,
            });
        }
        Ok(nodes)
    }

    fn extensions(&self) -> Result<Vec<GraphNode>, GraphError> {
        let mut nodes = Vec::new();
        for id in &self.config.service.extensions {
            let raw = self
                .config
                .extensions
                .get(id)
                .ok_or_else(|| GraphError::Create {
                    kind: Kind::Extension,
                    id: id.clone(),
                    source: ComponentError::Other(format!(
                        "references extension \"{id}\" which is not configured"
                    )),
                })?;
            let factory =
                self.registry
                    .extension(id.kind())
                    .ok_or_else(|| GraphError::UnknownType {
                        kind: Kind::Extension,
                        id: id.clone(),
                    })?;
            let component = factory
                .create(id, raw)
                .map_err(|source| create_error(Kind::Extension, id, source))?;
            nodes.push(GraphNode {
                kind: Kind::Extension,
                name: id.to_string(),
                component,
            });
        }
        Ok(nodes)
    }

    fn push(&mut self, kind: Kind, name: String, node: &BoxNode) {
        self.nodes.push(GraphNode {
            kind,
            name,
            component: node.clone(),
        });
    }
}

fn check_signal(
    supported: bool,
    kind: Kind,
    id: &ComponentId,
    signal: Signal,
) -> Result<(), GraphError> {
    if supported {
        Ok(())
    } else {
        Err(GraphError::Unsupported {
            kind,
            id: id.clone(),
            signal,
        })
    }
}

fn create_error(kind: Kind, id: &ComponentId, source: ComponentError) -> GraphError {
    GraphError::Create {
        kind,
        id: id.clone(),
        source,
    }
}

#[cfg(test)]
mod tests;
