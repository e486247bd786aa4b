//! The series a route's requests count into, resolved once per worker thread: the label
//! values are joined and looked up in the node-wide [`Metrics`] only the first time, then a
//! request costs the atomic adds alone.
//!
//! Entries are keyed by the route's `Arc` allocation and hold a `Weak` to it (an address is
//! not reused while its entry exists) and to the service whose name is in the labels.

use std::cell::RefCell;
use std::sync::{Arc, Weak};

use super::registry::{Counter, Histogram, Metrics};
use crate::declarative::model::{Route, Service};

/// Routes remembered per thread before dead entries are pruned (all dropped if none is).
const MAX_ROUTES: usize = 1024;

/// The `workspace` label.
const WORKSPACE: &str = "default";
/// The `consumer` label: no authenticated consumer exists without auth plugins.
const CONSUMER: &str = "";

/// One route's series, each created the first time it is counted.
#[derive(Default)]
pub struct RouteSeries {
    service: Option<Weak<Service>>,
    service_label: String,
    route_label: String,
    /// `kong_http_requests_total` per (status, source).
    requests: Vec<(u16, &'static str, Arc<Counter>)>,
    kong_latency: Option<Arc<Histogram>>,
    upstream_latency: Option<Arc<Histogram>>,
    request_latency: Option<Arc<Histogram>>,
    ingress: Option<Arc<Counter>>,
    egress: Option<Arc<Counter>>,
}

type Entries = RefCell<Vec<(Weak<Route>, RouteSeries)>>;

thread_local! {
    static ROUTES: Entries = const { RefCell::new(Vec::new()) };
}

fn same_service(known: Option<&Weak<Service>>, current: Option<&Arc<Service>>) -> bool {
    match (known, current) {
        (None, None) => true,
        (Some(w), Some(s)) => std::ptr::eq(w.as_ptr(), Arc::as_ptr(s)),
        _ => false,
    }
}

fn new_series(route: &Route, service: Option<&Arc<Service>>) -> RouteSeries {
    RouteSeries {
        service: service.map(Arc::downgrade),
        service_label: service
            .map(|s| s.name.clone().unwrap_or_else(|| s.host.clone()))
            .unwrap_or_default(),
        route_label: route.name.clone().unwrap_or_else(|| route.id.clone()),
        ..RouteSeries::default()
    }
}

/// Runs `f` with the calling thread's series of `route` (served by `service`).
pub fn with<R>(
    route: &Arc<Route>,
    service: Option<&Arc<Service>>,
    f: impl FnOnce(&mut RouteSeries) -> R,
) -> R {
    ROUTES.with(|cell| {
        let Ok(mut entries) = cell.try_borrow_mut() else {
            return f(&mut new_series(route, service));
        };
        let ptr = Arc::as_ptr(route);
        let found = entries
            .iter()
            .position(|(w, _)| std::ptr::eq(w.as_ptr(), ptr));
        let index = match found {
            Some(i) if same_service(entries[i].1.service.as_ref(), service) => i,
            Some(i) => {
                entries[i].1 = new_series(route, service);
                i
            }
            None => {
                if entries.len() >= MAX_ROUTES {
                    entries.retain(|(w, _)| w.strong_count() > 0);
                    if entries.len() >= MAX_ROUTES {
                        entries.clear();
                    }
                }
                entries.push((Arc::downgrade(route), new_series(route, service)));
                entries.len() - 1
            }
        };
        f(&mut entries[index].1)
    })
}

fn resolved<T>(
    slot: &mut Option<Arc<T>>,
    make: impl FnOnce() -> Option<Arc<T>>,
) -> Option<&Arc<T>> {
    if slot.is_none() {
        *slot = make();
    }
    slot.as_ref()
}

impl RouteSeries {
    /// Counts one request in `kong_http_requests_total`.
    pub fn request(&mut self, m: &Metrics, status: u16, source: &'static str) {
        if let Some((_, _, c)) = self
            .requests
            .iter()
            .find(|(code, src, _)| *code == status && *src == source)
        {
            c.add(1);
            return;
        }
        let code = status.to_string();
        let labels = [
            self.service_label.as_str(),
            &self.route_label,
            &code,
            source,
            WORKSPACE,
            CONSUMER,
        ];
        if let Some(c) = Metrics::counter(&m.requests, &labels) {
            c.add(1);
            self.requests.push((status, source, c));
        }
    }

    /// Observes the three latencies (`proxy` only when the request was proxied).
    pub fn latencies(&mut self, m: &Metrics, kong: u64, proxy: Option<u64>, request: u64) {
        use super::registry::{KONG_BUCKETS, UPSTREAM_BUCKETS};
        let labels = [
            self.service_label.as_str(),
            self.route_label.as_str(),
            WORKSPACE,
        ];
        if let Some(h) = resolved(&mut self.kong_latency, || {
            Metrics::histogram(&m.kong_latency, KONG_BUCKETS, &labels)
        }) {
            h.observe(kong);
        }
        if let Some(proxy) = proxy {
            if let Some(h) = resolved(&mut self.upstream_latency, || {
                Metrics::histogram(&m.upstream_latency, UPSTREAM_BUCKETS, &labels)
            }) {
                h.observe(proxy);
            }
        }
        if let Some(h) = resolved(&mut self.request_latency, || {
            Metrics::histogram(&m.request_latency, UPSTREAM_BUCKETS, &labels)
        }) {
            h.observe(request);
        }
    }

    /// Adds the request's and response's bytes to `kong_bandwidth_bytes`; a direction is
    /// counted only when its size is not 0.
    pub fn bandwidth(&mut self, m: &Metrics, ingress: u64, egress: u64) {
        for (direction, size, slot) in [
            ("ingress", ingress, &mut self.ingress),
            ("egress", egress, &mut self.egress),
        ] {
            if size == 0 {
                continue;
            }
            let labels = [
                self.service_label.as_str(),
                self.route_label.as_str(),
                direction,
                WORKSPACE,
                CONSUMER,
            ];
            if let Some(c) = resolved(slot, || Metrics::counter(&m.bandwidth, &labels)) {
                c.add(size);
            }
        }
    }
}
