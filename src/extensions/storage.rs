//! What a storage extension offers the components that persist data (a persistent
//! sending queue): a log of records per client, found by the extension's id.

use crate::extensions::file_storage::log::{Log, LogError, Recovered};

/// Why a storage client could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// No extension with that id is running, or it is not a storage extension.
    #[error("storage extension \"{0}\" not found")]
    NotFound(String),
    /// Another process holds the client's files.
    #[error("timeout waiting for the lock on {0}")]
    Locked(String),
    /// The files could not be opened or read.
    #[error(transparent)]
    Log(#[from] LogError),
}

/// One client's open log, with what was pending when it was opened. The client's lock is
/// held until this is dropped.
pub struct Client {
    /// The log.
    pub log: Log,
    /// What the previous run left.
    pub recovered: Recovered,
    /// Held for the lifetime of the client: one process per client's files.
    pub lock: std::fs::File,
}

/// A storage extension.
pub trait Storage: Send + Sync {
    /// Opens the log of `client` (a name such as `exporter_otlphttp__traces`).
    ///
    /// # Errors
    /// [`StorageError`].
    fn open(&self, client: &str) -> Result<Client, StorageError>;
}

/// The file-system-safe form of a client name component, as otelcol's `file_storage`
/// escapes it: every character outside `[A-Za-z0-9._-]` becomes `~` and four hex digits.
pub fn sanitize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            out.push(c);
        } else {
            out.push_str(&format!("~{:04X}", c as u32));
        }
    }
    out
}

/// The client name otelcol uses: `<kind>_<type>_<name>_<signal>` (`exporter_otlphttp__traces`
/// for an unnamed `otlphttp`), each part escaped with [`sanitize`].
pub fn client_name(kind: &str, id: &crate::config::ComponentId, signal: &str) -> String {
    format!(
        "{}_{}_{}_{}",
        sanitize(kind),
        sanitize(id.kind()),
        sanitize(id.name().unwrap_or("")),
        sanitize(signal)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ComponentId;

    #[test]
    fn client_names_as_otelcol() {
        let id = ComponentId::parse("otlphttp").unwrap();
        assert_eq!(
            client_name("exporter", &id, "traces"),
            "exporter_otlphttp__traces"
        );
        let id = ComponentId::parse("otlp/jaeger:east").unwrap();
        assert_eq!(
            client_name("exporter", &id, "logs"),
            "exporter_otlp_jaeger~003Aeast_logs"
        );
    }
}
