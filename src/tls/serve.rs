//! The HTTP server behind the collector's HTTP listeners (otlp receiver, prometheus
//! exporter, health_check): an accept loop on an [`Incoming`] that serves an axum `Router`
//! over HTTP/1.1 and h2 (one task per connection), applying Go `net/http`'s server timeouts
//! as confighttp exposes them:
//!
//! - `read_header_timeout` (zero: `read_timeout`): an HTTP/1 request head not complete by
//!   then closes the connection. As in hyper, the clock also runs while a keep-alive
//!   connection waits for its next request.
//! - `read_timeout`: a request body not read completely within it, counted from the end of
//!   the head, fails to read (the otlp receiver answers 400).
//! - `write_timeout`: a response not ready within it, counted from the end of the head,
//!   closes the HTTP/1 connection (resets the h2 stream) as Go's write deadline does; the
//!   handler still runs to its end.
//! - `idle_timeout` (zero: `read_timeout`): a connection without a request in flight for
//!   that long is closed (h2: GOAWAY).
//!
//! Stopping closes the listener, lets in-flight requests finish and closes idle
//! connections, then returns.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use hyper::body::{Frame, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::listener::{Incoming, Stream};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Go `http.Server` timeouts (confighttp's `read_timeout`, `read_header_timeout`,
/// `write_timeout`, `idle_timeout`); zero means none, as in Go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timeouts {
    /// The whole request; also the fallback of `read_header` and `idle`.
    pub read: Duration,
    /// The request head (HTTP/1).
    pub read_header: Duration,
    /// From the end of the request head until the response is ready.
    pub write: Duration,
    /// A connection without a request in flight.
    pub idle: Duration,
}

impl Timeouts {
    /// confighttp's `NewDefaultServerConfig`, used by the prometheus exporter and
    /// health_check: read none, read header 1m, write 30s, idle 1m. (The otlp receiver's
    /// defaults are all zero.)
    pub const SERVER_DEFAULTS: Self = Self {
        read: Duration::ZERO,
        read_header: Duration::from_secs(60),
        write: Duration::from_secs(30),
        idle: Duration::from_secs(60),
    };

    fn nonzero(d: Duration) -> Option<Duration> {
        (!d.is_zero()).then_some(d)
    }

    /// The effective head timeout: `read_header`, else `read`.
    fn header(&self) -> Option<Duration> {
        Self::nonzero(self.read_header).or(Self::nonzero(self.read))
    }

    /// The effective idle timeout: `idle`, else `read`.
    fn idle(&self) -> Option<Duration> {
        Self::nonzero(self.idle).or(Self::nonzero(self.read))
    }
}

/// Serves `router` on `incoming` until `stop`, then drains: the listener closes at once,
/// in-flight requests finish, idle connections close. Handlers see the peer address as
/// `ConnectInfo<SocketAddr>`.
pub async fn serve(
    mut incoming: Incoming,
    router: axum::Router,
    timeouts: Timeouts,
    stop: CancellationToken,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header());
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let connections = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = incoming.next() => accepted,
        };
        connections.spawn(connection(
            builder.clone(),
            stream,
            peer,
            router.clone(),
            timeouts,
            stop.clone(),
        ));
    }
    drop(incoming);
    connections.close();
    connections.wait().await;
}

/// Serves one connection until it ends, closing it gracefully on `stop` or when idle.
async fn connection(
    builder: Arc<auto::Builder<TokioExecutor>>,
    stream: Stream,
    peer: SocketAddr,
    router: axum::Router,
    timeouts: Timeouts,
    stop: CancellationToken,
) {
    let idle = timeouts.idle();
    let activity = idle.map(|_| Arc::new(Activity::new()));
    let service = Handler {
        router,
        peer,
        activity: activity.clone(),
        read: Timeouts::nonzero(timeouts.read),
        write: Timeouts::nonzero(timeouts.write),
    };
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        let idle_expired = async {
            match (&activity, idle) {
                (Some(activity), Some(idle)) => activity.idle_for(idle).await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "HTTP connection ended with an error.");
                }
                return;
            }
            () = stop.cancelled(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            () = idle_expired, if !closing => {
                tracing::debug!(%peer, "Closing an idle HTTP connection.");
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

/// Requests in flight on one connection and when the last one ended.
struct Activity {
    start: Instant,
    busy: AtomicUsize,
    /// Nanoseconds from `start` to the end of the last request.
    idle_since: AtomicU64,
    changed: Notify,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            busy: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            changed: Notify::new(),
        }
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
    }

    /// Returns once no request has been in flight for `timeout`.
    async fn idle_for(&self, timeout: Duration) {
        loop {
            if self.busy.load(Ordering::Acquire) > 0 {
                self.changed.notified().await;
                continue;
            }
            let since = self.start + Duration::from_nanos(self.idle_since.load(Ordering::Acquire));
            let deadline = since + timeout;
            if Instant::now() >= deadline {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                () = self.changed.notified() => {}
            }
        }
    }
}

/// One request in flight; its end restarts the idle clock.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let activity = &self.0;
        let nanos = u64::try_from(activity.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        activity.idle_since.store(nanos, Ordering::Release);
        activity.busy.fetch_sub(1, Ordering::AcqRel);
        activity.changed.notify_one();
    }
}

/// The per-connection hyper service: the router with the peer address, the body read
/// deadline and the response deadline.
#[derive(Clone)]
struct Handler {
    router: axum::Router,
    peer: SocketAddr,
    activity: Option<Arc<Activity>>,
    read: Option<Duration>,
    write: Option<Duration>,
}

/// Why a response was not sent.
#[derive(Debug, thiserror::Error)]
enum ResponseError {
    /// The handler did not answer within `write_timeout`.
    #[error("response not ready within write_timeout")]
    WriteTimeout,
    /// The handler task ended without an answer.
    #[error("request handler failed: {0}")]
    Handler(#[from] tokio::task::JoinError),
}

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<Body>, ResponseError>> + Send + 'static>>;

impl hyper::service::Service<Request<hyper::body::Incoming>> for Handler {
    type Response = Response<Body>;
    type Error = ResponseError;
    type Future = ResponseFuture;

    fn call(&self, request: Request<hyper::body::Incoming>) -> Self::Future {
        let busy = self.activity.as_ref().map(Activity::begin);
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(ConnectInfo(self.peer));
        let body = match self.read {
            Some(read) => Body::new(ReadDeadline {
                body,
                deadline: Box::pin(tokio::time::sleep(read)),
            }),
            None => Body::new(body),
        };
        let answer = self
            .router
            .clone()
            .oneshot(Request::from_parts(parts, body));
        let write = self.write;
        Box::pin(async move {
            let _busy = busy;
            let Some(write) = write else {
                return Ok(answer.await.unwrap_or_else(|never| match never {}));
            };
            // The handler runs to its end even when the answer comes too late (as Go's).
            let handler = tokio::spawn(answer);
            match tokio::time::timeout(write, handler).await {
                Ok(Ok(answer)) => Ok(answer.unwrap_or_else(|never| match never {})),
                Ok(Err(failed)) => Err(ResponseError::Handler(failed)),
                Err(_) => Err(ResponseError::WriteTimeout),
            }
        })
    }
}

/// A request body that fails to read once `read_timeout` has passed.
struct ReadDeadline {
    body: hyper::body::Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

/// The body read error after `read_timeout` (Go's net error text).
#[derive(Debug, thiserror::Error)]
#[error("i/o timeout")]
struct ReadTimedOut;

impl hyper::body::Body for ReadDeadline {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(ReadTimedOut))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
