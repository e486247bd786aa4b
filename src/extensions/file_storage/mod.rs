//! `file_storage` extension: local files for persistent sending queues.
//!
//! ```yaml
//! extensions:
//!   file_storage/queue:
//!     directory: /var/lib/otelcol/file_storage
//!     create_directory: true
//!     fsync: false
//! exporters:
//!   otlphttp:
//!     endpoint: https://example.com/api/v2/otlp
//!     sending_queue:
//!       storage: file_storage/queue
//! service:
//!   extensions: [file_storage/queue]
//! ```
//!
//! Each client (one per exporter and signal) gets a subdirectory named as otelcol names its
//! bbolt file (`exporter_otlphttp__traces`), holding a segmented append-only log with
//! checksums ([`log`], where the format and what survives `kill -9` are described). A lock
//! file keeps two processes off one client's files; a second process waits `timeout` for
//! it, then fails to start.
//!
//! Why a log and not an embedded database: a queue only appends at one end and removes at
//! the other, which a log does with one `write` per call and no read-modify-write; and a
//! write that has returned is in the page cache, so a `kill -9` loses nothing without paying
//! for an `fsync` per request, which the embedded stores' commit protocols need to be
//! crash-safe. The format is private: otelcol's bbolt files are not read.

mod config;
pub mod log;
#[cfg(test)]
mod tests;

use std::fs::{File, OpenOptions};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

pub use config::{Compaction, Config};

use crate::component::{
    Component, ComponentError, ExtensionFactory, FactoryInfo, Host, RawConfig, Stability,
};
use crate::config::{decode, ComponentId, FieldError};
use crate::extensions::storage::{sanitize, Client, Storage, StorageError};

/// The `file_storage` factory.
pub struct Factory;

/// The registry entry.
pub static FACTORY: Factory = Factory;

static INFO: FactoryInfo = FactoryInfo {
    name: "file_storage",
    aliases: &[],
    stability: [Stability::Beta; 3],
};

impl ExtensionFactory for Factory {
    fn info(&self) -> &FactoryInfo {
        &INFO
    }

    fn validate(&self, config: &RawConfig) -> Result<(), FieldError> {
        decode::<Config>(config)?.validate()
    }

    fn create(
        &self,
        id: &ComponentId,
        config: &RawConfig,
    ) -> Result<Arc<dyn Component>, ComponentError> {
        let config = decode::<Config>(config)?;
        config.validate()?;
        Ok(Arc::new(FileStorage::new(id.to_string(), config)))
    }
}

/// A `file_storage` extension.
pub struct FileStorage {
    id: String,
    config: Config,
    segment_size: u64,
}

impl FileStorage {
    /// The extension `id` with `config`.
    pub fn new(id: String, config: Config) -> Self {
        Self {
            id,
            config,
            segment_size: log::SEGMENT_SIZE,
        }
    }

    /// Uses segments of `bytes` (tests use small ones).
    pub fn with_segment_size(mut self, bytes: u64) -> Self {
        self.segment_size = bytes;
        self
    }

    fn lock(&self, path: &std::path::Path) -> Result<File, StorageError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|source| log::LogError::Io {
                what: "open",
                path: path.to_owned(),
                source,
            })?;
        let deadline = Instant::now() + self.config.timeout;
        loop {
            // flock: released by the kernel when the process dies, `kill -9` included.
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(file),
                Err(rustix::io::Errno::WOULDBLOCK) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    return Err(StorageError::Locked(path.display().to_string()))
                }
                Err(errno) => {
                    return Err(log::LogError::Io {
                        what: "lock",
                        path: path.to_owned(),
                        source: errno.into(),
                    }
                    .into())
                }
            }
        }
    }
}

impl Storage for FileStorage {
    fn open(&self, client: &str) -> Result<Client, StorageError> {
        let dir = self.config.directory.join(sanitize(client));
        std::fs::create_dir_all(&dir).map_err(|source| log::LogError::Io {
            what: "create",
            path: dir.clone(),
            source,
        })?;
        let lock = self.lock(&dir.join("lock"))?;
        let (log, recovered) = log::Log::open(&dir, self.config.fsync, self.segment_size)?;
        if recovered.corrupt > 0 {
            metrics::counter!(
                crate::telemetry::names::STORAGE_CORRUPT_RECORDS,
                "extension" => self.id.clone()
            )
            .increment(recovered.corrupt as u64);
        }
        tracing::info!(
            extension = %self.id,
            client,
            pending = recovered.pending.len(),
            corrupt = recovered.corrupt,
            "Opened persistent storage."
        );
        Ok(Client {
            log,
            recovered,
            lock,
        })
    }
}

#[async_trait]
impl Component for FileStorage {
    async fn start(&self, _host: &Host) -> Result<(), ComponentError> {
        if self.config.create_directory {
            let mode = self.config.mode()?;
            let mut builder = std::fs::DirBuilder::new();
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, mode);
            builder
                .recursive(true)
                .create(&self.config.directory)
                .map_err(|e| {
                    ComponentError::Other(format!(
                        "cannot create directory {}: {e}",
                        self.config.directory.display()
                    ))
                })?;
        }
        Ok(())
    }

    fn storage(&self) -> Option<&dyn Storage> {
        Some(self)
    }
}
