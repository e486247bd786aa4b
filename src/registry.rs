//! The one list of component factories, per kind. `otelpipe components` prints it, the
//! config loader dispatches on it. Adding a component adds one line here.

use crate::component::{
    ConnectorFactory, ExporterFactory, ExtensionFactory, ProcessorFactory, ReceiverFactory,
};

/// Every receiver type.
pub static RECEIVERS: &[&dyn ReceiverFactory] = &[];

/// Every processor type.
pub static PROCESSORS: &[&dyn ProcessorFactory] = &[];

/// Every exporter type.
pub static EXPORTERS: &[&dyn ExporterFactory] = &[];

/// Every connector type.
pub static CONNECTORS: &[&dyn ConnectorFactory] = &[];

/// Every extension type.
pub static EXTENSIONS: &[&dyn ExtensionFactory] = &[];

/// The receiver factory for a type name or alias.
pub fn receiver(name: &str) -> Option<&'static dyn ReceiverFactory> {
    RECEIVERS
        .iter()
        .copied()
        .find(|f| f.info().answers_to(name))
}

/// The processor factory for a type name or alias.
pub fn processor(name: &str) -> Option<&'static dyn ProcessorFactory> {
    PROCESSORS
        .iter()
        .copied()
        .find(|f| f.info().answers_to(name))
}

/// The exporter factory for a type name or alias.
pub fn exporter(name: &str) -> Option<&'static dyn ExporterFactory> {
    EXPORTERS
        .iter()
        .copied()
        .find(|f| f.info().answers_to(name))
}

/// The connector factory for a type name or alias.
pub fn connector(name: &str) -> Option<&'static dyn ConnectorFactory> {
    CONNECTORS
        .iter()
        .copied()
        .find(|f| f.info().answers_to(name))
}

/// The extension factory for a type name or alias.
pub fn extension(name: &str) -> Option<&'static dyn ExtensionFactory> {
    EXTENSIONS
        .iter()
        .copied()
        .find(|f| f.info().answers_to(name))
}
