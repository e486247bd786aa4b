//! Serves the collector's own metrics in Prometheus text format (default
//! `localhost:8888/metrics`), under otelcol's names and labels so existing dashboards work.
//!
//! Every series carries `service_name`, `service_instance_id` and `service_version`, as
//! otelcol's do. Process metrics (uptime, CPU, RSS) are read from `/proc` when scraped.

use std::sync::OnceLock;
use std::time::Instant;

use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::component::ComponentError;

use super::names;

/// The service name own metrics carry, as otelcol-contrib's do.
pub const SERVICE_NAME: &str = "otelpipe";

struct Installed {
    handle: PrometheusHandle,
    started: Instant,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

/// Installs the process-wide metrics recorder (once; later calls are no-ops) and returns
/// the handle that renders it.
pub fn install() -> &'static PrometheusHandle {
    &INSTALLED
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .add_global_label("service_name", SERVICE_NAME)
                .add_global_label("service_instance_id", instance_id())
                .add_global_label("service_version", env!("CARGO_PKG_VERSION"))
                .build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed already (e.g. in a test binary);
            // rendering then shows only what this handle saw.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::debug!("A metrics recorder was already installed.");
            }
            Installed {
                handle,
                started: Instant::now(),
            }
        })
        .handle
}

/// Renders the current metrics, refreshing the process gauges first.
pub fn render() -> String {
    let handle = install();
    if let Some(installed) = INSTALLED.get() {
        metrics::gauge!(names::PROCESS_UPTIME).set(installed.started.elapsed().as_secs_f64());
    }
    if let Some((cpu, rss)) = process_usage() {
        metrics::gauge!(names::PROCESS_CPU_SECONDS).set(cpu);
        metrics::gauge!(names::PROCESS_MEMORY_RSS).set(rss);
    }
    handle.render()
}

/// Serves `/metrics` on `endpoint` until `stop` is cancelled.
///
/// # Errors
/// When the endpoint cannot be bound.
pub async fn serve(
    endpoint: &str,
    stop: CancellationToken,
    tasks: &TaskTracker,
) -> Result<std::net::SocketAddr, ComponentError> {
    install();
    let listener = crate::net::bind(endpoint).await?;
    let addr = listener
        .local_addr()
        .map_err(|e| ComponentError::Other(e.to_string()))?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            (
                [(
                    header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )],
                render(),
            )
                .into_response()
        }),
    );
    tasks.spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "Own metrics server failed.");
        }
    });
    Ok(addr)
}

/// A random UUID (v4 layout) identifying this process, as otelcol's `service_instance_id`.
fn instance_id() -> String {
    let b: [u8; 16] = rand::random();
    format!(
        "{}-{}-4{}-{:x}{}-{}",
        hex::encode(&b[0..4]),
        hex::encode(&b[4..6]),
        &hex::encode(&b[6..8])[1..],
        8 | (b[8] & 0x3),
        &hex::encode(&b[8..10])[1..],
        hex::encode(&b[10..16])
    )
}

/// CPU seconds (user + system) and resident bytes of this process, from `/proc`.
fn process_usage() -> Option<(f64, f64)> {
    // Linux reports CPU times in clock ticks; USER_HZ is 100 on every supported platform.
    const TICKS_PER_SECOND: f64 = 100.0;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let rss_kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(((utime + stime) / TICKS_PER_SECOND, rss_kib * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_id_is_a_v4_uuid() {
        let id = instance_id();
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert!(matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
    }

    #[test]
    fn reads_process_usage() {
        let (cpu, rss) = process_usage().unwrap();
        assert!(cpu >= 0.0);
        assert!(rss > 1_000_000.0, "rss {rss}");
    }
}
