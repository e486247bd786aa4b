//! `attributes` processor: inserts, updates, deletes, hashes, extracts and converts
//! attributes of spans, log records and metric data points (never resource or scope).
//!
//! ```yaml
//! processors:
//!   attributes:
//!     actions:
//!       - key: kong.deployment.name
//!         value: "${KONG_DEPLOYMENT_NAME}"
//!         action: insert
//! ```
//!
//! Actions and include/exclude patterns are compiled once, at creation.

mod actions;
mod config;
mod matching;
#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use config::{ActionConfig, AttributeMatch, Config, LibraryMatch, MatchConfig, SeverityMatch};

use actions::Action;
use matching::{Matcher, Subject};
use opentelemetry_proto::tonic::metrics::v1::metric;

use crate::component::{
    BoxNode, ComponentError, CreateSettings, FactoryInfo, ProcessorFactory, RawConfig, Stability,
};
use crate::config::{decode, FieldError};
use crate::pipeline::{Batch, BoxConsumer, ClientInfo, ConsumeError, Signal};
use crate::processors::{Processor, ProcessorNode};

/// The `attributes` factory.
pub struct Factory;

/// The registry entry.
pub static FACTORY: Factory = Factory;

static INFO: FactoryInfo = FactoryInfo {
    name: "attributes",
    aliases: &[],
    stability: [Stability::Beta; 3],
};

/// The compiled processor for one signal.
pub struct Attributes {
    actions: Vec<Action>,
    include: Option<Matcher>,
    exclude: Option<Matcher>,
}

impl Attributes {
    /// Compiles `config` for `signal`.
    ///
    /// # Errors
    /// otelcol's validation messages, with the key path.
    pub fn new(config: &Config, signal: Signal) -> Result<Self, FieldError> {
        let actions = actions::compile(&config.actions)?;
        let include = config
            .include
            .as_ref()
            .map(|m| Matcher::compile(m, signal).map_err(|e| e.under("include")))
            .transpose()?;
        let exclude = config
            .exclude
            .as_ref()
            .map(|m| Matcher::compile(m, signal).map_err(|e| e.under("exclude")))
            .transpose()?;
        Ok(Self {
            actions,
            include,
            exclude,
        })
    }

    fn selected(&self, subject: &Subject<'_>) -> bool {
        self.include.as_ref().is_none_or(|m| m.matches(subject))
            && !self.exclude.as_ref().is_some_and(|m| m.matches(subject))
    }
}

impl Processor for Attributes {
    fn process(&self, mut batch: Batch, client: &ClientInfo) -> Result<Batch, ConsumeError> {
        match &mut batch {
            Batch::Traces(rs) => {
                for r in rs {
                    for s in &mut r.scope_spans {
                        for span in &mut s.spans {
                            let subject = Subject {
                                resource: r.resource.as_ref(),
                                scope: s.scope.as_ref(),
                                span: Some(span),
                                log: None,
                                metric_name: None,
                            };
                            if self.selected(&subject) {
                                actions::apply(&self.actions, &mut span.attributes, client);
                            }
                        }
                    }
                }
            }
            Batch::Logs(rl) => {
                for r in rl {
                    for s in &mut r.scope_logs {
                        for record in &mut s.log_records {
                            let subject = Subject {
                                resource: r.resource.as_ref(),
                                scope: s.scope.as_ref(),
                                span: None,
                                log: Some(record),
                                metric_name: None,
                            };
                            if self.selected(&subject) {
                                actions::apply(&self.actions, &mut record.attributes, client);
                            }
                        }
                    }
                }
            }
            Batch::Metrics(rm) => {
                for r in rm {
                    for s in &mut r.scope_metrics {
                        for m in &mut s.metrics {
                            let subject = Subject {
                                resource: r.resource.as_ref(),
                                scope: s.scope.as_ref(),
                                span: None,
                                log: None,
                                metric_name: Some(&m.name),
                            };
                            if !self.selected(&subject) {
                                continue;
                            }
                            let apply =
                                |attrs: &mut Vec<_>| actions::apply(&self.actions, attrs, client);
                            match &mut m.data {
                                Some(metric::Data::Gauge(g)) => g
                                    .data_points
                                    .iter_mut()
                                    .for_each(|p| apply(&mut p.attributes)),
                                Some(metric::Data::Sum(x)) => x
                                    .data_points
                                    .iter_mut()
                                    .for_each(|p| apply(&mut p.attributes)),
                                Some(metric::Data::Histogram(h)) => h
                                    .data_points
                                    .iter_mut()
                                    .for_each(|p| apply(&mut p.attributes)),
                                Some(metric::Data::ExponentialHistogram(h)) => h
                                    .data_points
                                    .iter_mut()
                                    .for_each(|p| apply(&mut p.attributes)),
                                Some(metric::Data::Summary(x)) => x
                                    .data_points
                                    .iter_mut()
                                    .for_each(|p| apply(&mut p.attributes)),
                                None => {}
                            }
                        }
                    }
                }
            }
        }
        Ok(batch)
    }
}

impl ProcessorFactory for Factory {
    fn info(&self) -> &FactoryInfo {
        &INFO
    }

    fn validate(&self, config: &RawConfig) -> Result<(), FieldError> {
        let config = decode::<Config>(config)?;
        // The pipeline decides the signal; here the config must be valid for at least one.
        let mut first = None;
        for signal in Signal::ALL {
            match Attributes::new(&config, signal) {
                Ok(_) => return Ok(()),
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        Err(first.unwrap_or_else(|| FieldError::new("invalid attributes processor")))
    }

    fn create(
        &self,
        settings: &CreateSettings,
        config: &RawConfig,
        next: BoxConsumer,
    ) -> Result<BoxNode, ComponentError> {
        let config = decode::<Config>(config)?;
        let processor = Attributes::new(&config, settings.signal)?;
        Ok(Arc::new(ProcessorNode::new(
            processor,
            settings.id.to_string(),
            settings.signal,
            next,
        )))
    }
}
