//! `health_check`: answers liveness/readiness probes over HTTP.
//!
//! ```yaml
//! extensions:
//!   health_check:
//!     endpoint: 0.0.0.0:13133
//! service:
//!   extensions: [health_check]
//! ```
//!
//! 200 with `{"status":"Server available",…}` once every pipeline started; 503 with
//! `{"status":"Server not available",…}` while starting or once shutdown began. Exporter
//! failures never make it unhealthy (as otelcol's `health_check`).

mod config;

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use async_trait::async_trait;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{Config, ResponseBody};

use crate::component::{
    Component, ComponentError, ExtensionFactory, FactoryInfo, Host, RawConfig, Stability,
};
use crate::config::{decode, ComponentId, FieldError};

/// The `health_check` factory.
pub struct Factory;

/// The registry entry.
pub static FACTORY: Factory = Factory;

static INFO: FactoryInfo = FactoryInfo {
    name: "health_check",
    aliases: &["healthcheck"],
    stability: [Stability::Beta; 3],
};

impl ExtensionFactory for Factory {
    fn info(&self) -> &FactoryInfo {
        &INFO
    }

    fn validate(&self, config: &RawConfig) -> Result<(), FieldError> {
        decode::<Config>(config)?.validate()
    }

    fn endpoints(&self, config: &RawConfig) -> Vec<String> {
        decode::<Config>(config)
            .map(|c| vec![c.endpoint])
            .unwrap_or_default()
    }

    fn create(
        &self,
        _id: &ComponentId,
        config: &RawConfig,
    ) -> Result<Arc<dyn Component>, ComponentError> {
        let config = decode::<Config>(config)?;
        config.validate()?;
        Ok(Arc::new(HealthCheck {
            config: Arc::new(config),
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
            bound: Mutex::new(None),
        }))
    }
}

/// A running `health_check` extension.
pub struct HealthCheck {
    config: Arc<Config>,
    stop: CancellationToken,
    tasks: TaskTracker,
    bound: Mutex<Option<std::net::SocketAddr>>,
}

impl HealthCheck {
    /// The address the server bound, once started.
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        *self.bound.lock().expect("health_check lock")
    }
}

#[derive(Clone)]
struct Probe {
    config: Arc<Config>,
    ready: watch::Receiver<bool>,
    /// When readiness last turned on, as wall-clock and monotonic time.
    since: Arc<Mutex<Option<(SystemTime, Instant)>>>,
}

#[async_trait]
impl Component for HealthCheck {
    async fn start(&self, host: &Host) -> Result<(), ComponentError> {
        let listener = crate::tls::listener::bind(
            &self.config.endpoint,
            self.config.tls.as_ref(),
            crate::tls::listener::ALPN_HTTP,
        )
        .await?;
        *self.bound.lock().expect("health_check lock") = listener.local_addr().ok();
        tracing::info!(endpoint = %self.config.endpoint, "Starting health_check extension.");
        let probe = Probe {
            config: self.config.clone(),
            ready: host.ready.clone(),
            since: Arc::new(Mutex::new(None)),
        };
        let watcher = probe.clone();
        let stop = self.stop.clone();
        // Track the moment readiness turns on, for `upSince`/`uptime`.
        self.tasks.spawn(async move {
            let mut ready = watcher.ready.clone();
            loop {
                let now_ready = *ready.borrow_and_update();
                *watcher.since.lock().expect("health_check lock") =
                    now_ready.then(|| (SystemTime::now(), Instant::now()));
                tokio::select! {
                    changed = ready.changed() => if changed.is_err() { break },
                    () = stop.cancelled() => break,
                }
            }
        });
        let app = axum::Router::new().fallback(handle).with_state(probe);
        self.tasks.spawn(crate::tls::serve::serve(
            listener,
            app,
            self.config.timeouts(),
            self.stop.clone(),
        ));
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), ComponentError> {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        Ok(())
    }
}

async fn handle(State(probe): State<Probe>, uri: axum::http::Uri) -> Response {
    let path = &probe.config.path;
    // Go's ServeMux: "/" matches every path; any other pattern matches exactly.
    if path != "/" && uri.path() != path {
        return (StatusCode::NOT_FOUND, "404 page not found\n").into_response();
    }
    let since = *probe.since.lock().expect("health_check lock");
    let ready = *probe.ready.borrow() && since.is_some();
    let (status, custom, json) = match since.filter(|_| ready) {
        Some((wall, mono)) => (
            StatusCode::OK,
            probe
                .config
                .response_body
                .as_ref()
                .map(|b| b.healthy.clone()),
            format!(
                r#"{{"status":"Server available","upSince":"{}","uptime":"{}"}}"#,
                humantime::format_rfc3339_nanos(wall),
                crate::config::duration::format(mono.elapsed())
            ),
        ),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            probe
                .config
                .response_body
                .as_ref()
                .map(|b| b.unhealthy.clone()),
            r#"{"status":"Server not available","upSince":"0001-01-01T00:00:00Z","uptime":""}"#
                .to_owned(),
        ),
    };
    match custom {
        Some(body) => (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response(),
        None => (status, [(header::CONTENT_TYPE, "application/json")], json).into_response(),
    }
}

#[cfg(test)]
mod tests;
