//! Target discovery: each provider sends the full, current set of its target groups
//! whenever it changes; the scrape manager relabels them into targets.

pub mod file;
pub mod kubernetes;
pub mod r#static;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::config::ScrapeConfig;
use super::labels::Labels;

/// A group of targets sharing labels, as Prometheus' `targetgroup.Group`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetGroup {
    /// Identifies the group within its provider (`0`, a file path + index, a pod uid).
    pub source: String,
    /// One label set per target, each with `__address__`.
    pub targets: Vec<Labels>,
    /// Labels common to every target (`__meta_*` and user labels).
    pub labels: Labels,
}

/// An update from one provider: its index among the job's providers, and every group it
/// currently knows.
pub type Update = (usize, Vec<TargetGroup>);

/// Starts every provider of `config`, each sending [`Update`]s on `tx` until `stop`.
pub fn start(
    config: &ScrapeConfig,
    tx: &mpsc::Sender<Update>,
    stop: &CancellationToken,
    tasks: &TaskTracker,
) {
    let mut index = 0;
    if !config.static_configs.is_empty() {
        let groups = r#static::groups(&config.static_configs);
        let tx = tx.clone();
        tasks.spawn(async move {
            // The receiver is only gone at shutdown.
            if tx.send((0, groups)).await.is_err() {
                tracing::debug!("Scrape manager stopped before the static targets arrived.");
            }
        });
        index += 1;
    }
    for sd in &config.file_sd_configs {
        tasks.spawn(file::run(index, sd.clone(), tx.clone(), stop.clone()));
        index += 1;
    }
    for sd in &config.kubernetes_sd_configs {
        tasks.spawn(kubernetes::run(
            index,
            config.job_name.clone(),
            sd.clone(),
            tx.clone(),
            stop.clone(),
        ));
        index += 1;
    }
}
