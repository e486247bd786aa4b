//! Flow operators: `router` (first matching route wins, optional `default`) and `filter`
//! (drops matching entries, `drop_ratio` of them).

use super::entry::Entry;
use super::expr::{Expr, ValueSpec};
use super::field::Field;

/// One compiled route.
#[derive(Debug)]
pub struct Route {
    /// The condition.
    pub expr: Expr,
    /// Attributes added when the route matches.
    pub attributes: Vec<(String, ValueSpec)>,
    /// Operator ids the entry goes to.
    pub outputs: Vec<super::Target>,
}

/// `router`.
#[derive(Debug)]
pub struct Router {
    /// Routes in order.
    pub routes: Vec<Route>,
    /// Where unmatched entries go; empty = dropped.
    pub default: Vec<super::Target>,
}

impl Router {
    /// The outputs for `entry` (after adding the matched route's attributes); an
    /// expression error is logged and treated as no match.
    pub fn route(&self, entry: &mut Entry) -> &[super::Target] {
        for route in &self.routes {
            match route.expr.eval_bool(entry) {
                Ok(true) => {
                    for (key, spec) in &route.attributes {
                        match spec.value(entry) {
                            Ok(v) => {
                                let field = Field {
                                    root: super::field::Root::Attributes,
                                    keys: vec![key.clone()],
                                };
                                if field.set(entry, v).is_err() {
                                    tracing::debug!(key = %key, "router attribute not set");
                                }
                            }
                            Err(e) => {
                                tracing::error!(error = %e, "Failed to apply route attributes")
                            }
                        }
                    }
                    return &route.outputs;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "Running expression returned an error"),
            }
        }
        &self.default
    }
}

/// `filter`.
#[derive(Debug)]
pub struct Filter {
    /// Entries for which this is true are dropped.
    pub expr: Expr,
    /// Share of matching entries dropped, 0..=1.
    pub drop_ratio: f64,
}

impl Filter {
    /// True when `entry` is to be dropped.
    ///
    /// # Errors
    /// The expression failed.
    pub fn drops(&self, entry: &Entry) -> Result<bool, String> {
        let matched = self.expr.eval_bool(entry).map_err(|e| e.to_string())?;
        if !matched {
            return Ok(false);
        }
        if self.drop_ratio >= 1.0 {
            return Ok(true);
        }
        Ok(rand::random::<f64>() < self.drop_ratio)
    }
}
