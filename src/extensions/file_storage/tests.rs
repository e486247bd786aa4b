use super::*;

fn config(yaml: &str) -> Result<Config, FieldError> {
    let config: Config = decode(&yaml_serde::from_str(yaml).unwrap())?;
    config.validate().map(|()| config)
}

#[test]
fn defaults_as_otelcol() {
    let c = Config::default();
    assert_eq!(
        c.directory,
        std::path::PathBuf::from("/var/lib/otelcol/file_storage")
    );
    assert_eq!(c.timeout, Duration::from_secs(1));
    assert!(!c.fsync);
    assert_eq!(c.compaction.max_transaction_size, 65536);
    assert_eq!(c.compaction.check_interval, Duration::from_secs(5));
}

#[test]
fn the_directory_must_exist_unless_created() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let err = config(&format!("directory: {}", missing.display())).unwrap_err();
    assert_eq!(err.path, ["directory"]);
    assert!(err.message.starts_with("directory must exist"), "{err}");
    config(&format!(
        "directory: {}\ncreate_directory: true",
        missing.display()
    ))
    .unwrap();
    let err = config(&format!(
        "directory: {}\ncompaction:\n  directory: {}\n  on_start: true",
        dir.path().display(),
        missing.display()
    ))
    .unwrap_err();
    assert_eq!(err.path, ["compaction", "directory"]);
    // The compaction directory matters only when compaction is on.
    config(&format!(
        "directory: {}\ncompaction:\n  directory: {}",
        dir.path().display(),
        missing.display()
    ))
    .unwrap();
    let err = config(&format!(
        "directory: {}\ncompaction:\n  on_rebound: true\n  check_interval: 0s",
        dir.path().display()
    ))
    .unwrap_err();
    assert_eq!(err.path, ["compaction", "check_interval"]);
    let err = config(&format!(
        "directory: {}\ndirectory_permissions: rwx",
        dir.path().display()
    ))
    .unwrap_err();
    assert_eq!(err.path, ["directory_permissions"]);
    assert!(config(&format!("directory: {}\nbogus: 1", dir.path().display())).is_err());
}

#[tokio::test]
async fn start_creates_the_directory_with_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("a/b");
    let c = config(&format!(
        "directory: {}\ncreate_directory: true\ndirectory_permissions: \"0700\"",
        target.display()
    ))
    .unwrap();
    let storage = FileStorage::new("file_storage".into(), c);
    let (_tx, ready) = tokio::sync::watch::channel(true);
    let host = Host {
        ready,
        shutdown: tokio_util::sync::CancellationToken::new(),
        extensions: Default::default(),
    };
    storage.start(&host).await.unwrap();
    let mode = std::fs::metadata(&target).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    assert!(storage.storage().is_some());
}

#[test]
fn one_client_per_directory_and_lock() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(&format!(
        "directory: {}\ntimeout: 50ms",
        dir.path().display()
    ))
    .unwrap();
    let storage = FileStorage::new("file_storage".into(), c);
    let mut client = storage.open("exporter_otlphttp__traces").unwrap();
    assert!(dir.path().join("exporter_otlphttp__traces").is_dir());
    client.log.append(b"one").unwrap();
    // A second open of the same client waits `timeout` for the lock, then fails.
    let err = storage.open("exporter_otlphttp__traces").err().unwrap();
    assert!(matches!(err, StorageError::Locked(_)), "{err}");
    // Another client is independent.
    storage.open("exporter_otlphttp__logs").unwrap();
    drop(client);
    let again = storage.open("exporter_otlphttp__traces").unwrap();
    assert_eq!(again.recovered.pending.len(), 1);
}
