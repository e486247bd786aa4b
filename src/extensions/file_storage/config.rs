//! `file_storage` settings, as otelcol-contrib's `filestorage` extension.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::config::FieldError;

/// `extensions::file_storage`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the clients' files live. Default `/var/lib/otelcol/file_storage`; must exist
    /// unless `create_directory` is true.
    pub directory: PathBuf,
    /// How long to wait for another process's lock on a client's files. Default 1s.
    #[serde(with = "crate::config::duration")]
    pub timeout: Duration,
    /// Flush every write to the device (survives power loss, not only a crash). Default
    /// false.
    pub fsync: bool,
    /// Create `directory` (and parents) at start. Default false.
    pub create_directory: bool,
    /// Octal mode of a created directory. Default `0750`.
    pub directory_permissions: String,
    /// Compaction settings.
    pub compaction: Compaction,
}

/// `compaction`: the log deletes fully acknowledged segments as it goes; `on_start` also
/// rewrites the acknowledgement file at start (which opening always does). The other keys
/// are bbolt tuning in otelcol and are accepted for compatibility.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Compaction {
    /// Compact when a client opens. Default false.
    pub on_start: bool,
    /// Compact while running when space can be reclaimed. Default false.
    pub on_rebound: bool,
    /// Scratch directory for compaction. Default: `directory`.
    pub directory: Option<PathBuf>,
    /// Accepted for compatibility. Default 65536.
    pub max_transaction_size: u64,
    /// Accepted for compatibility. Default 100.
    pub rebound_needed_threshold_mib: u64,
    /// Accepted for compatibility. Default 10.
    pub rebound_trigger_threshold_mib: u64,
    /// Accepted for compatibility. Default 5s.
    #[serde(with = "crate::config::duration")]
    pub check_interval: Duration,
    /// Remove leftover compaction files at start. Default false.
    pub cleanup_on_start: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            directory: PathBuf::from("/var/lib/otelcol/file_storage"),
            timeout: Duration::from_secs(1),
            fsync: false,
            create_directory: false,
            directory_permissions: "0750".to_owned(),
            compaction: Compaction::default(),
        }
    }
}

impl Default for Compaction {
    fn default() -> Self {
        Self {
            on_start: false,
            on_rebound: false,
            directory: None,
            max_transaction_size: 65536,
            rebound_needed_threshold_mib: 100,
            rebound_trigger_threshold_mib: 10,
            check_interval: Duration::from_secs(5),
            cleanup_on_start: false,
        }
    }
}

impl Config {
    /// The created directory's mode.
    ///
    /// # Errors
    /// When `directory_permissions` is not an octal mode.
    pub fn mode(&self) -> Result<u32, FieldError> {
        u32::from_str_radix(self.directory_permissions.trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o7777)
            .ok_or_else(|| {
                FieldError::at(
                    &["directory_permissions"],
                    format!(
                        "invalid value {:?}: must be an octal mode such as 0750",
                        self.directory_permissions
                    ),
                )
            })
    }

    /// otelcol's rules: the directories (the compaction one only when compaction is on)
    /// must exist and be directories unless created; rebound compaction needs a positive
    /// `check_interval`.
    ///
    /// # Errors
    /// The first rule broken, at its key.
    pub fn validate(&self) -> Result<(), FieldError> {
        self.mode()?;
        let compacting = self.compaction.on_start || self.compaction.on_rebound;
        let dirs = [
            (vec!["directory"], Some(&self.directory)),
            (
                vec!["compaction", "directory"],
                self.compaction.directory.as_ref().filter(|_| compacting),
            ),
        ];
        for (path, dir) in dirs {
            let Some(dir) = dir else { continue };
            match std::fs::metadata(dir) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(FieldError::at(
                        &path,
                        format!("{} is not a directory", dir.display()),
                    ))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.create_directory => {}
                Err(e) => {
                    return Err(FieldError::at(
                        &path,
                        format!(
                            "directory must exist: {}: {e}. You can enable the create_directory option to automatically create it",
                            dir.display()
                        ),
                    ))
                }
            }
        }
        if self.compaction.on_rebound && self.compaction.check_interval.is_zero() {
            return Err(FieldError::at(
                &["compaction", "check_interval"],
                "compaction check interval must be positive when rebound compaction is set",
            ));
        }
        Ok(())
    }
}
