//! Stanza operators, shared by the `tcplog` and `udplog` receivers: the entry model, field
//! syntax, the expression subset, and the operator chain with `if` and `on_error`.
//!
//! ```yaml
//! operators:
//!   - type: json_parser
//!     timestamp: {parse_from: attributes.started_at, layout_type: epoch, layout: ms}
//!   - type: severity_parser
//!     parse_from: attributes.response.status
//!     mapping: {error: 5xx, warn: 4xx, info: [2xx, 3xx]}
//!   - type: remove
//!     field: attributes.request.headers
//!     if: 'attributes.route != nil'
//!     on_error: send_quiet
//! ```
//!
//! Entries run through the chain in the connection's task; parsers leave the body as it
//! is unless `parse_to: body` (or `body:`) says otherwise, and JSON numbers become doubles,
//! as in otelcol-contrib.

pub mod assign_keys;
mod build;
pub mod emit;
pub mod entry;
pub mod expr;
pub mod field;
pub mod input;
pub mod json_array;
pub mod net;
pub mod parse;
pub mod recombine;
pub mod route;
pub mod severity;
pub mod split;
pub mod syslog;
pub mod time;
pub mod trace;
pub mod transform;
pub mod unquote;
pub mod uri;
pub mod value;

pub use build::{build, TYPES};
pub use entry::{into_resource_logs, now_nanos, Entry};

use expr::Expr;

/// An operator that edits an entry in place.
pub trait Transform: Send + Sync + std::fmt::Debug {
    /// Applies the operator.
    ///
    /// # Errors
    /// What went wrong, for `on_error` to act on.
    fn apply(&self, entry: &mut Entry) -> Result<(), String>;
}

/// What happens to an entry an operator failed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnError {
    /// Log at error level, pass the entry on (default).
    Send,
    /// Log at debug level, pass the entry on.
    SendQuiet,
    /// Log at error level, drop the entry.
    Drop,
    /// Log at debug level, drop the entry.
    DropQuiet,
}

impl OnError {
    /// Parses the config value.
    ///
    /// # Errors
    /// Anything but `send`, `send_quiet`, `drop`, `drop_quiet`.
    pub fn parse(text: &str) -> Result<Self, String> {
        Ok(match text {
            "send" => Self::Send,
            "send_quiet" => Self::SendQuiet,
            "drop" => Self::Drop,
            "drop_quiet" => Self::DropQuiet,
            other => {
                return Err(format!(
                    "invalid value {other:?} for on_error (send, send_quiet, drop, drop_quiet)"
                ))
            }
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Send => "send",
            Self::SendQuiet => "send_quiet",
            Self::Drop => "drop",
            Self::DropQuiet => "drop_quiet",
        }
    }

    /// Logs `error` as stanza does and says whether the entry goes on.
    fn handle(self, operator: &str, error: &str) -> bool {
        match self {
            Self::Send | Self::Drop => {
                tracing::error!(
                    operator,
                    error,
                    action = self.as_str(),
                    "Failed to process entry"
                );
            }
            Self::SendQuiet | Self::DropQuiet => {
                tracing::debug!(
                    operator,
                    error,
                    action = self.as_str(),
                    "Failed to process entry"
                );
            }
        }
        matches!(self, Self::Send | Self::SendQuiet)
    }
}

/// Where an operator sends entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Another operator, by index.
    Op(usize),
    /// Out of the chain, to the receiver's batcher.
    Emit,
}

#[derive(Debug)]
enum Kind {
    Transform {
        op: Box<dyn Transform>,
        cond: Option<Expr>,
        on_error: OnError,
    },
    Filter {
        filter: route::Filter,
        cond: Option<Expr>,
        on_error: OnError,
    },
    Router(route::Router),
    Recombine {
        op: Box<recombine::Recombine>,
        cond: Option<Expr>,
        on_error: OnError,
    },
    Noop,
}

#[derive(Debug)]
struct Node {
    id: String,
    kind: Kind,
    outputs: Vec<Target>,
}

/// A compiled operator chain.
#[derive(Debug, Default)]
pub struct Pipeline {
    nodes: Vec<Node>,
}

impl Pipeline {
    /// The number of operators.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when there are no operators (entries are emitted as read).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Runs `entry` through the chain; what comes out is appended to `out`.
    pub fn process(&self, entry: Entry, out: &mut Vec<Entry>) {
        let start = if self.nodes.is_empty() {
            Target::Emit
        } else {
            Target::Op(0)
        };
        self.run(Some((start, entry)), Vec::new(), out);
    }

    /// True when an operator holds entries between calls (`recombine`): the receiver
    /// must then call [`Pipeline::flush`] on a timer and once at the end.
    pub fn has_state(&self) -> bool {
        self.nodes
            .iter()
            .any(|n| matches!(n.kind, Kind::Recombine { .. }))
    }

    /// Emits what stateful operators hold past their flush period (all of it with
    /// `force`), through the rest of the chain into `out`.
    pub fn flush(&self, force: bool, out: &mut Vec<Entry>) {
        let now = now_nanos();
        for node in &self.nodes {
            if let Kind::Recombine { op, .. } = &node.kind {
                let mut emitted = Vec::new();
                op.flush(now, force, &mut emitted);
                let mut work = Vec::new();
                push_all(&mut work, &node.outputs, emitted);
                self.run(None, work, out);
            }
        }
    }

    fn run(
        &self,
        mut next: Option<(Target, Entry)>,
        mut work: Vec<(Target, Entry)>,
        out: &mut Vec<Entry>,
    ) {
        // The common chain has one output per operator: the entry moves along in `next`,
        // and the stack (no allocation until used) only holds the other branches of a fan-out.
        while let Some((target, mut entry)) = next.take().or_else(|| work.pop()) {
            let Target::Op(index) = target else {
                out.push(entry);
                continue;
            };
            let node = &self.nodes[index];
            let outputs: &[Target] = match &node.kind {
                Kind::Noop => &node.outputs,
                Kind::Router(router) => router.route(&mut entry),
                Kind::Recombine { op, cond, on_error } => {
                    let applies = match run_if(cond.as_ref(), &entry) {
                        Ok(applies) => applies,
                        Err(e) => {
                            if !on_error.handle(&node.id, &e) {
                                continue;
                            }
                            false
                        }
                    };
                    if !applies {
                        next = push_outputs(&mut work, &node.outputs, entry);
                        continue;
                    }
                    let mut emitted = Vec::new();
                    match op.matches(&entry) {
                        Ok(matches) => op.take(entry, matches, &mut emitted),
                        Err(e) => {
                            if on_error.handle(&node.id, &e) {
                                emitted.push(entry);
                            }
                        }
                    }
                    push_all(&mut work, &node.outputs, emitted);
                    continue;
                }
                Kind::Transform { op, cond, on_error } => {
                    match run_if(cond.as_ref(), &entry) {
                        Ok(false) => {}
                        Ok(true) => {
                            if let Err(e) = op.apply(&mut entry) {
                                if !on_error.handle(&node.id, &e) {
                                    continue;
                                }
                            }
                        }
                        Err(e) => {
                            if !on_error.handle(&node.id, &e) {
                                continue;
                            }
                        }
                    }
                    &node.outputs
                }
                Kind::Filter {
                    filter,
                    cond,
                    on_error,
                } => {
                    let drops = run_if(cond.as_ref(), &entry).and_then(|run| {
                        if run {
                            filter.drops(&entry)
                        } else {
                            Ok(false)
                        }
                    });
                    match drops {
                        Ok(true) => continue,
                        Ok(false) => {}
                        Err(e) => {
                            if !on_error.handle(&node.id, &e) {
                                continue;
                            }
                        }
                    }
                    &node.outputs
                }
            };
            next = push_outputs(&mut work, outputs, entry);
        }
    }
}

fn run_if(cond: Option<&Expr>, entry: &Entry) -> Result<bool, String> {
    match cond {
        None => Ok(true),
        Some(c) => c
            .eval_bool(entry)
            .map_err(|e| format!("running if expr: {e}")),
    }
}

/// Queues `entries`, in order, for all of `outputs`.
fn push_all(work: &mut Vec<(Target, Entry)>, outputs: &[Target], entries: Vec<Entry>) {
    for entry in entries.into_iter().rev() {
        if let Some(first) = push_outputs(work, outputs, entry) {
            work.push(first);
        }
    }
}

/// Queues copies of `entry` for all outputs but the first (in reverse, so they are
/// processed in order after it) and returns the first, to be processed next.
fn push_outputs(
    work: &mut Vec<(Target, Entry)>,
    outputs: &[Target],
    entry: Entry,
) -> Option<(Target, Entry)> {
    let (first, rest) = outputs.split_first()?;
    for t in rest.iter().rev() {
        work.push((*t, entry.clone()));
    }
    Some((*first, entry))
}

#[cfg(test)]
mod ops_tests;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
