//! `recombine`: joins consecutive entries of one source into one, by an `is_first_entry`
//! or `is_last_entry` expression. Batches are flushed when complete, when they reach
//! `max_batch_size` / `max_unmatched_batch_size` / `max_log_size`, when more than
//! `max_sources` sources are open, after `force_flush_period`, and at shutdown.
//!
//! ```yaml
//! - type: recombine
//!   combine_field: body
//!   is_first_entry: body matches "^[^\\s]"
//!   combine_with: "\n"                 # default
//!   source_identifier: attributes["log.file.path"]   # default
//!   overwrite_with: newest             # or oldest
//!   max_batch_size: 1000
//!   max_unmatched_batch_size: 100
//!   max_sources: 1000
//!   max_log_size: 0                    # bytes of the combined field; 0 = no limit
//!   force_flush_period: 5s
//! ```
//!
//! The state is shared by all connections of a receiver, as stanza's single operator
//! instance is: without a source identifier every entry joins one source.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;

use super::build::{common, Section};
use super::entry::Entry;
use super::expr::Expr;
use super::field::Field;
use super::input::ByteSize;
use super::{value, Kind};
use crate::config::FieldError;

/// Source name of entries without a (string) source identifier.
const DEFAULT_SOURCE: &str = "DefaultSourceIdentifier";

/// The operator's own keys, with stanza's defaults.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RecombineConfig {
    is_first_entry: Option<String>,
    is_last_entry: Option<String>,
    combine_field: Option<Field>,
    combine_with: String,
    source_identifier: Field,
    overwrite_with: String,
    max_batch_size: usize,
    max_unmatched_batch_size: usize,
    max_sources: usize,
    max_log_size: ByteSize,
    #[serde(with = "crate::config::duration")]
    force_flush_period: Duration,
}

impl Default for RecombineConfig {
    fn default() -> Self {
        Self {
            is_first_entry: None,
            is_last_entry: None,
            combine_field: None,
            combine_with: "\n".to_owned(),
            source_identifier: Field {
                root: super::field::Root::Attributes,
                keys: vec!["log.file.path".to_owned()],
            },
            overwrite_with: "newest".to_owned(),
            max_batch_size: 1000,
            max_unmatched_batch_size: 100,
            max_sources: 1000,
            max_log_size: ByteSize(0),
            force_flush_period: Duration::from_secs(5),
        }
    }
}

/// The operator.
#[derive(Debug)]
pub struct Recombine {
    /// A match starts a batch (`is_first_entry`), else it ends one (`is_last_entry`).
    first: bool,
    matcher: Expr,
    combine_field: Field,
    combine_with: String,
    source: Field,
    newest: bool,
    max_batch_size: usize,
    max_unmatched_batch_size: usize,
    max_sources: usize,
    max_log_size: u64,
    force_flush_ns: u64,
    batches: Mutex<HashMap<String, Batch>>,
}

#[derive(Debug)]
struct Batch {
    base: Entry,
    entries: usize,
    combined: String,
    first_observed: u64,
    matched: bool,
}

/// Reads the recombine keys and the common keys.
pub(super) fn build(mut s: Section) -> Result<Kind, FieldError> {
    let (cond, on_error) = common(&mut s)?;
    let c: RecombineConfig = s.rest()?;
    let (first, key, source) = match (c.is_first_entry, c.is_last_entry) {
        (Some(_), Some(_)) => {
            return Err(FieldError::new(
                "only one of is_first_entry and is_last_entry can be set",
            ))
        }
        (None, None) => {
            return Err(FieldError::new(
                "one of is_first_entry and is_last_entry must be set",
            ))
        }
        (Some(src), None) => (true, "is_first_entry", src),
        (None, Some(src)) => (false, "is_last_entry", src),
    };
    let matcher = Expr::compile(&source)
        .map_err(|e| FieldError::at(&[key], format!("failed to compile {key}: {e}")))?;
    let combine_field = c.combine_field.ok_or_else(|| {
        FieldError::at(
            &["combine_field"],
            "missing required argument 'combine_field'",
        )
    })?;
    let newest = match c.overwrite_with.as_str() {
        "newest" => true,
        "oldest" | "" => false,
        other => {
            return Err(FieldError::at(
                &["overwrite_with"],
                format!("invalid value '{other}' for parameter 'overwrite_with'"),
            ))
        }
    };
    if c.force_flush_period.is_zero() {
        return Err(FieldError::at(
            &["force_flush_period"],
            "force_flush_period must be greater than 0",
        ));
    }
    let op = Recombine {
        first,
        matcher,
        combine_field,
        combine_with: c.combine_with,
        source: c.source_identifier,
        newest,
        max_batch_size: c.max_batch_size,
        max_unmatched_batch_size: c.max_unmatched_batch_size,
        max_sources: c.max_sources.max(1),
        max_log_size: c.max_log_size.0,
        force_flush_ns: u64::try_from(c.force_flush_period.as_nanos()).unwrap_or(u64::MAX),
        batches: Mutex::new(HashMap::new()),
    };
    Ok(Kind::Recombine {
        op: Box::new(op),
        cond,
        on_error,
    })
}

impl Recombine {
    /// Runs the `is_first_entry` / `is_last_entry` expression.
    ///
    /// # Errors
    /// The expression failed on this entry, for `on_error`.
    pub fn matches(&self, entry: &Entry) -> Result<bool, String> {
        self.matcher.eval_bool(entry).map_err(|e| e.to_string())
    }

    /// Takes `entry` (with what [`Recombine::matches`] said) into its source's batch;
    /// completed batches go to `emitted`.
    pub fn take(&self, entry: Entry, matches: bool, emitted: &mut Vec<Entry>) {
        let source = self
            .source
            .get(&entry)
            .and_then(|v| value::as_str(&v).map(str::to_owned))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_SOURCE.to_owned());
        let Ok(mut batches) = self.batches.lock() else {
            // Only a panic elsewhere poisons the lock; the entry then passes through.
            emitted.push(entry);
            return;
        };
        if matches && self.first {
            self.flush_source(&mut batches, &source, emitted);
        }
        self.add(&mut batches, entry, &source, matches, emitted);
        if matches && !self.first {
            self.flush_source(&mut batches, &source, emitted);
        }
    }

    fn add(
        &self,
        batches: &mut HashMap<String, Batch>,
        entry: Entry,
        source: &str,
        matches: bool,
        emitted: &mut Vec<Entry>,
    ) {
        let piece = self
            .combine_field
            .get(&entry)
            .and_then(|v| value::as_str(&v).map(str::to_owned));
        if !batches.contains_key(source) && batches.len() >= self.max_sources {
            tracing::error!("Too many sources. Flushing all batched logs. Consider increasing max_sources parameter");
            self.flush_all(batches, emitted);
        }
        let batch = match batches.entry(source.to_owned()) {
            std::collections::hash_map::Entry::Occupied(slot) => {
                let batch = slot.into_mut();
                batch.entries += 1;
                if self.newest {
                    batch.base = entry;
                }
                batch
            }
            std::collections::hash_map::Entry::Vacant(slot) => slot.insert(Batch {
                first_observed: entry.observed_timestamp,
                base: entry,
                entries: 1,
                combined: String::new(),
                matched: false,
            }),
        };
        batch.matched |= matches;
        let Some(piece) = piece else {
            tracing::error!("entry does not contain the combine_field");
            return;
        };
        if !batch.combined.is_empty() {
            batch.combined.push_str(&self.combine_with);
        }
        batch.combined.push_str(&piece);
        let full = (self.max_log_size > 0 && batch.combined.len() as u64 > self.max_log_size)
            || (self.max_batch_size > 0 && batch.entries >= self.max_batch_size)
            || (!batch.matched
                && self.max_unmatched_batch_size > 0
                && batch.entries >= self.max_unmatched_batch_size);
        if full {
            self.flush_source(batches, source, emitted);
        }
    }

    /// Writes the combined field on the batch's base entry and emits it.
    fn flush_source(
        &self,
        batches: &mut HashMap<String, Batch>,
        source: &str,
        emitted: &mut Vec<Entry>,
    ) {
        let Some(mut batch) = batches.remove(source) else {
            return;
        };
        match self
            .combine_field
            .set(&mut batch.base, value::string(batch.combined))
        {
            Ok(()) => emitted.push(batch.base),
            Err(e) => tracing::error!(error = %e, "there was error flushing combined logs"),
        }
    }

    fn flush_all(&self, batches: &mut HashMap<String, Batch>, emitted: &mut Vec<Entry>) {
        let mut sources: Vec<(u64, String)> = batches
            .iter()
            .map(|(s, b)| (b.first_observed, s.clone()))
            .collect();
        sources.sort_unstable();
        for (_, s) in sources {
            self.flush_source(batches, &s, emitted);
        }
    }

    /// Emits the batches whose first entry is older than `force_flush_period` at `now`
    /// (Unix ns), or all of them with `force` (shutdown).
    pub fn flush(&self, now: u64, force: bool, emitted: &mut Vec<Entry>) {
        let Ok(mut batches) = self.batches.lock() else {
            return;
        };
        if force {
            self.flush_all(&mut batches, emitted);
            return;
        }
        let mut due: Vec<(u64, String)> = batches
            .iter()
            .filter(|(_, b)| now.saturating_sub(b.first_observed) >= self.force_flush_ns)
            .map(|(s, b)| (b.first_observed, s.clone()))
            .collect();
        due.sort_unstable();
        for (_, s) in due {
            self.flush_source(&mut batches, &s, emitted);
        }
    }
}
