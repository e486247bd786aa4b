//! `static_configs`: fixed targets.

use super::TargetGroup;
use crate::receivers::prometheus::config::StaticConfig;
use crate::receivers::prometheus::labels::Labels;

/// One group per `static_configs` entry, sources `0`, `1`, …
pub fn groups(configs: &[StaticConfig]) -> Vec<TargetGroup> {
    configs
        .iter()
        .enumerate()
        .map(|(i, c)| TargetGroup {
            source: i.to_string(),
            targets: c
                .targets
                .iter()
                .map(|t| Labels::from_pairs([("__address__", t.as_str())]))
                .collect(),
            labels: Labels::from_pairs(c.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        })
        .collect()
}
