//! `file_sd_configs`: target groups from YAML or JSON files, re-read when they change.
//!
//! Each `files` entry is a path whose last component may hold `*` wildcards. The matched
//! files are checked every second (modification time and size) and re-read on change, and
//! all of them every `refresh_interval`. A file that cannot be read or parsed is logged and
//! keeps its last good groups, as Prometheus does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{TargetGroup, Update};
use crate::receivers::prometheus::config::FileSdConfig;
use crate::receivers::prometheus::labels::Labels;

/// How often files are checked for changes.
const POLL: Duration = Duration::from_secs(1);

/// Largest file read.
const MAX_FILE_BYTES: u64 = 16 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGroup {
    targets: Vec<String>,
    #[serde(default, deserialize_with = "crate::config::decode::string_map")]
    labels: BTreeMap<String, String>,
}

/// Why a file's groups could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Reading failed.
    #[error("read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is larger than allowed.
    #[error("{0} is larger than 16 MiB")]
    TooLarge(String),
    /// The content is not a list of target groups.
    #[error("parse {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What the decoder said.
        message: String,
    },
}

/// The groups in one file (YAML, or JSON by extension), sources `<path>:<index>`.
///
/// # Errors
/// The file cannot be read or is not a list of `{targets, labels}`.
pub fn read_groups(path: &Path) -> Result<Vec<TargetGroup>, FileError> {
    let name = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|source| FileError::Read {
        path: name.clone(),
        source,
    })?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(FileError::TooLarge(name));
    }
    let text = std::fs::read_to_string(path).map_err(|source| FileError::Read {
        path: name.clone(),
        source,
    })?;
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let groups: Vec<FileGroup> = if is_json {
        serde_json::from_str(&text).map_err(|e| FileError::Parse {
            path: name.clone(),
            message: e.to_string(),
        })?
    } else {
        yaml_serde::from_str::<Option<Vec<FileGroup>>>(&text)
            .map_err(|e| FileError::Parse {
                path: name.clone(),
                message: e.to_string(),
            })?
            .unwrap_or_default()
    };
    Ok(groups
        .into_iter()
        .enumerate()
        .map(|(i, g)| {
            let mut labels =
                Labels::from_pairs(g.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            labels.set("__meta_filepath", name.clone());
            TargetGroup {
                source: format!("{name}:{i}"),
                targets: g
                    .targets
                    .iter()
                    .map(|t| Labels::from_pairs([("__address__", t.as_str())]))
                    .collect(),
                labels,
            }
        })
        .collect())
}

/// The files `pattern` matches (`*` only in the last component), sorted.
pub fn expand(pattern: &str) -> Vec<PathBuf> {
    let path = Path::new(pattern);
    let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
        return Vec::new();
    };
    if !file.contains('*') {
        return if path.is_file() {
            vec![path.to_owned()]
        } else {
            Vec::new()
        };
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().is_some_and(|n| wildcard(file, n)))
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// `*` matches any run of characters; everything else matches itself.
fn wildcard(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, rest) = parts.split_first().unwrap_or((&"", &[]));
    let Some(mut remaining) = name.strip_prefix(first) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return remaining.is_empty();
    };
    for part in middle {
        match remaining.find(part) {
            Some(i) => remaining = &remaining[i + part.len()..],
            None => return false,
        }
    }
    remaining.ends_with(last)
}

type Stamp = BTreeMap<PathBuf, (Option<SystemTime>, u64)>;

fn stamp(files: &[PathBuf]) -> Stamp {
    files
        .iter()
        .map(|f| {
            let meta = std::fs::metadata(f).ok();
            (
                f.clone(),
                (
                    meta.as_ref().and_then(|m| m.modified().ok()),
                    meta.map_or(0, |m| m.len()),
                ),
            )
        })
        .collect()
}

/// Watches the config's files and sends the groups of all of them on every change.
pub async fn run(
    index: usize,
    config: FileSdConfig,
    tx: mpsc::Sender<Update>,
    stop: CancellationToken,
) {
    let mut last_good: BTreeMap<PathBuf, Vec<TargetGroup>> = BTreeMap::new();
    let mut last_stamp: Option<Stamp> = None;
    let mut since_refresh = Duration::ZERO;
    loop {
        let files: Vec<PathBuf> = config.files.iter().flat_map(|p| expand(p)).collect();
        let now = stamp(&files);
        let refresh = since_refresh >= config.refresh_interval;
        if last_stamp.as_ref() != Some(&now) || refresh {
            since_refresh = Duration::ZERO;
            last_good.retain(|p, _| now.contains_key(p));
            for file in &files {
                match read_groups(file) {
                    Ok(groups) => {
                        last_good.insert(file.clone(), groups);
                    }
                    Err(e) => tracing::error!(error = %e, "Error reading file"),
                }
            }
            last_stamp = Some(now);
            let all: Vec<TargetGroup> = last_good.values().flatten().cloned().collect();
            if tx.send((index, all)).await.is_err() {
                return;
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(POLL) => since_refresh += POLL,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_a_glob_in_the_last_component() {
        assert!(wildcard("*.yaml", "a.yaml"));
        assert!(wildcard("targets-*.json", "targets-1.json"));
        assert!(!wildcard("targets-*.json", "targets-1.yaml"));
        assert!(wildcard("a*b*c", "aXXbYYc"));
        assert!(!wildcard("a*b*c", "aXXcYYb"));
        assert!(wildcard("exact.yml", "exact.yml"));
    }
}
