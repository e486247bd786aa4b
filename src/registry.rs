//! The one list of component factories, per kind. `otelpipe components` prints it, the
//! config loader and the graph dispatch on it. Adding a component adds one line here.

use crate::component::{
    ConnectorFactory, ExporterFactory, ExtensionFactory, ProcessorFactory, ReceiverFactory,
};

/// Every receiver type.
pub static RECEIVERS: &[&dyn ReceiverFactory] = &[
    &crate::receivers::otlp::FACTORY,
    &crate::receivers::prometheus::FACTORY,
    &crate::receivers::tcplog::FACTORY,
    &crate::receivers::udplog::FACTORY,
];

/// Every processor type.
pub static PROCESSORS: &[&dyn ProcessorFactory] = &[
    &crate::processors::attributes::FACTORY,
    &crate::processors::batch::FACTORY,
    &crate::processors::cumulativetodelta::FACTORY,
    &crate::processors::memory_limiter::FACTORY,
];

/// Every exporter type.
pub static EXPORTERS: &[&dyn ExporterFactory] = &[
    &crate::exporters::debug::FACTORY,
    &crate::exporters::otlp::FACTORY,
    &crate::exporters::otlphttp::FACTORY,
    &crate::exporters::prometheus::FACTORY,
];

/// Every connector type.
pub static CONNECTORS: &[&dyn ConnectorFactory] = &[&crate::connectors::spanmetrics::FACTORY];

/// Every extension type.
pub static EXTENSIONS: &[&dyn ExtensionFactory] = &[
    &crate::extensions::basicauth::FACTORY,
    &crate::extensions::bearertokenauth::FACTORY,
    &crate::extensions::headers_setter::FACTORY,
    &crate::extensions::file_storage::FACTORY,
    &crate::extensions::health_check::FACTORY,
];

/// A set of factories per kind. The collector uses [`BUILTIN`]; graph tests build their own
/// from mock factories.
#[derive(Clone, Copy)]
pub struct Registry {
    /// Receiver factories.
    pub receivers: &'static [&'static dyn ReceiverFactory],
    /// Processor factories.
    pub processors: &'static [&'static dyn ProcessorFactory],
    /// Exporter factories.
    pub exporters: &'static [&'static dyn ExporterFactory],
    /// Connector factories.
    pub connectors: &'static [&'static dyn ConnectorFactory],
    /// Extension factories.
    pub extensions: &'static [&'static dyn ExtensionFactory],
}

/// Every component compiled into this binary.
pub static BUILTIN: Registry = Registry {
    receivers: RECEIVERS,
    processors: PROCESSORS,
    exporters: EXPORTERS,
    connectors: CONNECTORS,
    extensions: EXTENSIONS,
};

impl Registry {
    /// The receiver factory for a type name or alias.
    pub fn receiver(&self, name: &str) -> Option<&'static dyn ReceiverFactory> {
        self.receivers
            .iter()
            .copied()
            .find(|f| f.info().answers_to(name))
    }

    /// The processor factory for a type name or alias.
    pub fn processor(&self, name: &str) -> Option<&'static dyn ProcessorFactory> {
        self.processors
            .iter()
            .copied()
            .find(|f| f.info().answers_to(name))
    }

    /// The exporter factory for a type name or alias.
    pub fn exporter(&self, name: &str) -> Option<&'static dyn ExporterFactory> {
        self.exporters
            .iter()
            .copied()
            .find(|f| f.info().answers_to(name))
    }

    /// The connector factory for a type name or alias.
    pub fn connector(&self, name: &str) -> Option<&'static dyn ConnectorFactory> {
        self.connectors
            .iter()
            .copied()
            .find(|f| f.info().answers_to(name))
    }

    /// The extension factory for a type name or alias.
    pub fn extension(&self, name: &str) -> Option<&'static dyn ExtensionFactory> {
        self.extensions
            .iter()
            .copied()
            .find(|f| f.info().answers_to(name))
    }
}

/// The built-in receiver factory for a type name or alias.
pub fn receiver(name: &str) -> Option<&'static dyn ReceiverFactory> {
    BUILTIN.receiver(name)
}

/// The built-in processor factory for a type name or alias.
pub fn processor(name: &str) -> Option<&'static dyn ProcessorFactory> {
    BUILTIN.processor(name)
}

/// The built-in exporter factory for a type name or alias.
pub fn exporter(name: &str) -> Option<&'static dyn ExporterFactory> {
    BUILTIN.exporter(name)
}

/// The built-in connector factory for a type name or alias.
pub fn connector(name: &str) -> Option<&'static dyn ConnectorFactory> {
    BUILTIN.connector(name)
}

/// The built-in extension factory for a type name or alias.
pub fn extension(name: &str) -> Option<&'static dyn ExtensionFactory> {
    BUILTIN.extension(name)
}

/// The `otelpipe components` listing: build info, then every factory per kind with its
/// stability per signal, as YAML shaped like otelcol's.
pub fn describe(registry: &Registry) -> String {
    use crate::component::FactoryInfo;
    use crate::pipeline::Signal;

    fn section<'a>(out: &mut String, title: &str, infos: impl Iterator<Item = &'a FactoryInfo>) {
        let mut infos: Vec<&FactoryInfo> = infos.collect();
        infos.sort_by_key(|i| i.name);
        out.push_str(&format!("{title}:\n"));
        for info in infos {
            out.push_str(&format!("  - name: {}\n", info.name));
            if !info.aliases.is_empty() {
                out.push_str(&format!("    aliases: [{}]\n", info.aliases.join(", ")));
            }
            out.push_str("    stability:\n");
            for signal in Signal::ALL {
                let level = info.stability[signal as usize].as_str();
                out.push_str(&format!("      {signal}: {level}\n"));
            }
        }
    }

    let mut out = format!(
        "buildinfo:\n  command: otelpipe\n  description: {}\n  version: {}\n",
        env!("CARGO_PKG_DESCRIPTION"),
        env!("CARGO_PKG_VERSION")
    );
    section(
        &mut out,
        "receivers",
        registry.receivers.iter().map(|f| f.info()),
    );
    section(
        &mut out,
        "processors",
        registry.processors.iter().map(|f| f.info()),
    );
    section(
        &mut out,
        "exporters",
        registry.exporters.iter().map(|f| f.info()),
    );
    section(
        &mut out,
        "connectors",
        registry.connectors.iter().map(|f| f.info()),
    );
    section(
        &mut out,
        "extensions",
        registry.extensions.iter().map(|f| f.info()),
    );
    out
}
