//! The Status API (`status_listen`): `/status`, `/status/ready`, `/metrics`.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use serde_json::{json, Value};

use crate::state::Shared;

/// A JSON response with Kong's content type.
pub fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let text = serde_json::to_vec(body).unwrap_or_default();
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .header("server", format!("kong/{}", crate::KONG_VERSION))
        .body(Full::new(Bytes::from(text)))
        .unwrap_or_default()
}

fn resident_mib() -> f64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<f64>().ok())
        })
        .unwrap_or(0.0);
    pages * 4096.0 / (1024.0 * 1024.0)
}

/// The `GET /status` body (DB-less form: `configuration_hash`, no `database`).
pub fn status_body(shared: &Shared) -> Value {
    let c = &shared.counters;
    let active = c.active.load(Ordering::Relaxed);
    json!({
        "configuration_hash": shared.runtime.load().hash,
        "memory": {
            "lua_shared_dicts": {},
            "workers_lua_vms": [
                {"http_allocated_gc": format!("{:.2} MiB", resident_mib()), "pid": std::process::id()}
            ]
        },
        "server": {
            "connections_accepted": c.accepted.load(Ordering::Relaxed),
            "connections_active": active,
            "connections_handled": c.handled.load(Ordering::Relaxed),
            "connections_reading": 0,
            "connections_waiting": 0,
            "connections_writing": active,
            "total_requests": c.requests.load(Ordering::Relaxed)
        }
    })
}

/// `GET /metrics`: Prometheus text (the prometheus plugin's families and node gauges).
pub fn metrics_response(shared: &Shared) -> Response<Full<Bytes>> {
    Response::builder()
        .header("content-type", "text/plain; charset=UTF-8")
        .body(Full::new(Bytes::from(crate::plugins::prometheus::render(
            shared,
        ))))
        .unwrap_or_default()
}

/// Answers one Status API request.
pub fn handle<B>(shared: &Shared, req: &Request<B>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({"message": "Method not allowed"}),
        );
    }
    match req.uri().path().trim_end_matches('/') {
        "/status" => json_response(StatusCode::OK, &status_body(shared)),
        "/status/ready" => {
            if shared.runtime.load().config.is_empty() {
                json_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &json!({"message": "no configuration available (empty configuration present)"}),
                )
            } else {
                json_response(StatusCode::OK, &json!({"message": "ready"}))
            }
        }
        "/metrics" => metrics_response(shared),
        _ => json_response(StatusCode::NOT_FOUND, &json!({"message": "Not found"})),
    }
}
