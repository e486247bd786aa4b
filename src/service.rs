//! Running a built graph: start in dependency order, report readiness, stop gracefully.
//!
//! Start: extensions, then exporters, connectors and processors (downstream first), then
//! receivers, so no receiver sees traffic before everything behind it is up. Stop: readiness
//! off, receivers first (no new data), then processors, connectors and exporters in reverse
//! creation order (each flushes into the next, still running), extensions last. Each stop is
//! bounded by what is left of the shutdown deadline.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::component::{ComponentError, Extensions, Host};
use crate::config::Config;
use crate::pipeline::graph::{self, Graph, GraphError, GraphNode};
use crate::registry::Registry;

/// Why the collector could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The graph could not be built.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// A component failed to start.
    #[error("failed to start {kind} \"{name}\": {source}")]
    Component {
        /// Its kind.
        kind: graph::Kind,
        /// Its name.
        name: String,
        /// Why.
        source: ComponentError,
    },
}

/// A collector built from a config: every component, not yet started.
pub struct Collector {
    graph: Graph,
    ready: watch::Sender<bool>,
    host: Host,
}

impl Collector {
    /// Builds every component the config's pipelines use.
    ///
    /// # Errors
    /// A [`GraphError`] when a component cannot be built.
    pub fn build(config: &Config, registry: &Registry) -> Result<Self, StartError> {
        let graph = graph::build(config, registry)?;
        let (ready, ready_rx) = watch::channel(false);
        let extensions = Extensions::new(
            graph
                .extensions
                .iter()
                .map(|n| (n.name.clone(), n.component.clone()))
                .collect(),
        );
        Ok(Self {
            graph,
            ready,
            host: Host {
                ready: ready_rx,
                shutdown: CancellationToken::new(),
                extensions,
            },
        })
    }

    /// What components may read while running (readiness, shutdown token).
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Starts every component; on failure, stops those already started.
    ///
    /// # Errors
    /// The first component that failed to start.
    pub async fn start(&self) -> Result<(), StartError> {
        let order = self.start_order();
        for (i, node) in order.iter().enumerate() {
            if let Err(source) = node.component.start(&self.host).await {
                for started in order[..i].iter().rev() {
                    if let Err(e) = started.component.shutdown().await {
                        tracing::warn!(component = %started.name, error = %e, "Failed to stop component.");
                    }
                }
                return Err(StartError::Component {
                    kind: node.kind,
                    name: node.name.clone(),
                    source,
                });
            }
        }
        self.ready.send_replace(true);
        tracing::info!("Everything is ready. Begin running and processing data.");
        Ok(())
    }

    /// Stops every component, producers first, within `deadline`. Errors are logged, not
    /// returned: shutdown always runs to the end.
    pub async fn shutdown(&self, deadline: Duration) {
        self.ready.send_replace(false);
        self.host.shutdown.cancel();
        let until = Instant::now() + deadline;
        let mut order = self.start_order();
        order.reverse();
        for node in order {
            let left = until.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, node.component.shutdown()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(component = %node.name, error = %e, "Component failed to shut down cleanly.");
                }
                Err(_) => {
                    tracing::warn!(component = %node.name, "Component did not shut down before the deadline.");
                }
            }
        }
    }

    fn start_order(&self) -> Vec<GraphNode> {
        self.graph
            .extensions
            .iter()
            .chain(&self.graph.nodes)
            .chain(&self.graph.receivers)
            .cloned()
            .collect()
    }
}

/// Builds, starts, waits for `stop`, then shuts down within `shutdown_timeout`.
///
/// # Errors
/// When the collector cannot be built or started.
pub async fn run(
    config: &Config,
    registry: &Registry,
    stop: impl std::future::Future<Output = ()>,
    shutdown_timeout: Duration,
) -> Result<(), StartError> {
    let collector = Collector::build(config, registry)?;
    collector.start().await?;
    stop.await;
    collector.shutdown(shutdown_timeout).await;
    tracing::info!("Shutdown complete.");
    Ok(())
}
