//! Where `${env:…}` values come from. Passed in, so tests never touch the process
//! environment (setting variables in a threaded process is unsound).

use std::collections::HashMap;

/// A source of environment variables.
pub trait Env {
    /// The value of `name`, or `None` when unset.
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Env for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        Self::get(self, name).cloned()
    }
}

/// An environment with fallbacks: `first` wins, `defaults` fill in what it lacks (an
/// OpenTelemetryCollector resource's `spec.env` literal values).
pub(crate) struct WithDefaults<'a> {
    pub(crate) first: &'a dyn Env,
    pub(crate) defaults: &'a HashMap<String, String>,
}

impl Env for WithDefaults<'_> {
    fn get(&self, name: &str) -> Option<String> {
        self.first
            .get(name)
            .or_else(|| self.defaults.get(name).cloned())
    }
}
