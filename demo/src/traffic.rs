//! The traffic generator: requests at a fixed rate over a route mix, counted per route and
//! status.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use crate::mix::Mix;

/// The outcome key of a request that got no HTTP answer (refused, reset, timed out).
pub const NO_ANSWER: &str = "error";

/// What to send.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The gateway's proxy URL, e.g. `http://127.0.0.1:8000`.
    pub target: String,
    /// Requests per second; 0 sends as fast as `concurrency` allows.
    pub rate: f64,
    /// Stop after this long (None: until the stop future resolves or `requests` are sent).
    pub duration: Option<Duration>,
    /// Stop after this many requests.
    pub requests: Option<u64>,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// The routes and their weights.
    pub mix: Mix,
    /// Items requested in turn below each route (`/orders/sku-1` …); 0 requests the route itself.
    pub items: u32,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// What was sent and answered: per route, per status (or [`NO_ANSWER`]), the count.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Route → status → requests.
    pub routes: BTreeMap<String, BTreeMap<String, u64>>,
}

impl Report {
    /// Every request counted.
    pub fn sent(&self) -> u64 {
        self.routes.values().flat_map(BTreeMap::values).sum()
    }

    /// The report as JSON: `{"sent": n, "routes": {"/orders": {"200": 9, "500": 1}}}`.
    pub fn to_json(&self) -> serde_json::Value {
        json!({ "sent": self.sent(), "routes": self.routes })
    }

    fn count(&mut self, route: String, outcome: String) {
        *self
            .routes
            .entry(route)
            .or_default()
            .entry(outcome)
            .or_default() += 1;
    }
}

/// A client or plan that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum TrafficError {
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// A rate that is negative or not a number.
    #[error("rate {0}: expected requests per second, 0 or more")]
    Rate(f64),
}

/// Sends the plan's requests until its duration or request count is reached or `stop`
/// resolves, then waits for the requests in flight and reports.
pub async fn run(mut plan: Plan, stop: impl Future<Output = ()>) -> Result<Report, TrafficError> {
    if !(plan.rate >= 0.0 && plan.rate.is_finite()) {
        return Err(TrafficError::Rate(plan.rate));
    }
    let client = crate::client::http_client(plan.timeout)?;
    let permits = Arc::new(Semaphore::new(plan.concurrency.max(1)));
    let mut ticker = (plan.rate > 0.0).then(|| {
        let mut t = tokio::time::interval(Duration::from_secs_f64(1.0 / plan.rate));
        t.set_missed_tick_behavior(MissedTickBehavior::Burst);
        t
    });
    let deadline = plan.duration.map(|d| Instant::now() + d);
    let target = plan.target.trim_end_matches('/').to_owned();
    let mut report = Report::default();
    let mut in_flight = JoinSet::new();
    let mut sent = 0u64;
    tokio::pin!(stop);
    loop {
        if plan.requests.is_some_and(|n| sent >= n) {
            break;
        }
        let next = async {
            if let Some(t) = ticker.as_mut() {
                t.tick().await;
            }
            Arc::clone(&permits).acquire_owned().await
        };
        let permit = tokio::select! {
            biased;
            () = &mut stop => break,
            () = sleep_until(deadline) => break,
            permit = next => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let route = plan.mix.next_path().to_owned();
        let url = match plan.items {
            0 => format!("{target}{route}"),
            n => format!("{target}{route}/sku-{}", sent % u64::from(n) + 1),
        };
        sent += 1;
        let client = client.clone();
        in_flight.spawn(async move {
            let outcome = match client.get(&url).send().await {
                Ok(response) => {
                    let status = response.status().as_u16().to_string();
                    // Read the body so the connection can be reused.
                    drop(response.bytes().await);
                    status
                }
                Err(_) => NO_ANSWER.to_owned(),
            };
            drop(permit);
            (route, outcome)
        });
        while let Some(done) = in_flight.try_join_next() {
            if let Ok((route, outcome)) = done {
                report.count(route, outcome);
            }
        }
    }
    while let Some(done) = in_flight.join_next().await {
        if let Ok((route, outcome)) = done {
            report.count(route, outcome);
        }
    }
    Ok(report)
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A server on 127.0.0.1:0 answering every third request 503; returns its URL.
    async fn server() -> String {
        let seen = Arc::new(AtomicU64::new(0));
        let app = axum::Router::new().fallback(move || {
            let seen = Arc::clone(&seen);
            async move {
                if seen.fetch_add(1, Ordering::Relaxed) % 3 == 2 {
                    http::StatusCode::SERVICE_UNAVAILABLE
                } else {
                    http::StatusCode::OK
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    fn plan(target: String, mix: &str) -> Plan {
        Plan {
            target,
            rate: 0.0,
            duration: None,
            requests: Some(12),
            concurrency: 1,
            mix: Mix::parse(mix).unwrap(),
            items: 0,
            timeout: Duration::from_secs(10),
        }
    }

    #[tokio::test]
    async fn counts_every_answer_per_route_and_status() {
        let target = server().await;
        let report = run(plan(target, "/a=2,/b"), std::future::pending())
            .await
            .unwrap();
        assert_eq!(report.sent(), 12);
        // The mix sends /a, /b, /a in turn; the server fails every third request: the /a ones.
        let a = &report.routes["/a"];
        let b = &report.routes["/b"];
        assert_eq!((a.get("200"), a.get("503")), (Some(&4), Some(&4)));
        assert_eq!((b.get("200"), b.get("503")), (Some(&4), None));
        assert_eq!(
            report.to_json()["routes"]["/a"]["503"],
            serde_json::json!(4)
        );
    }

    #[tokio::test]
    async fn a_target_that_does_not_answer_is_counted_not_fatal() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let target = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let report = run(plan(target, "/x"), std::future::pending())
            .await
            .unwrap();
        assert_eq!(report.routes["/x"][NO_ANSWER], 12);
    }

    #[tokio::test]
    async fn stops_when_told() {
        let target = server().await;
        let mut plan = plan(target, "/a");
        plan.requests = None;
        let report = run(plan, async {}).await.unwrap();
        assert_eq!(report.sent(), 0);
    }

    #[tokio::test]
    async fn a_negative_rate_is_refused() {
        let mut plan = plan("http://127.0.0.1:1".into(), "/a");
        plan.rate = -1.0;
        assert!(matches!(
            run(plan, std::future::pending()).await,
            Err(TrafficError::Rate(_))
        ));
    }
}
