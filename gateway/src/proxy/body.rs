//! Streaming bodies: the boxed body type used both ways, and the response body wrapper that
//! runs `body_filter` per chunk and `log` once the response is complete.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Frame, SizeHint};

use std::sync::Arc;

use super::balancer::InFlight;
use super::context::RequestContext;
use crate::plugins::PluginList;

/// Error type of streamed bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A streamed body, request or response.
pub type ProxyBody = BoxBody<Bytes, BoxError>;

/// An empty body.
pub fn empty() -> ProxyBody {
    Empty::new().map_err(|e| match e {}).boxed()
}

/// A body of fixed bytes.
pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into()).map_err(|e| match e {}).boxed()
}

/// Boxes any body whose error converts into [`BoxError`].
pub fn boxed<B>(body: B) -> ProxyBody
where
    B: Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed()
}

/// Fails a streamed upstream body when no frame arrives for `timeout` (the service's
/// `read_timeout`, which nginx applies between two successive reads).
pub struct ReadTimeout {
    inner: ProxyBody,
    timeout: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
    _in_flight: Option<InFlight>,
}

impl ReadTimeout {
    /// Wraps `inner`; `in_flight` keeps the peer counted as busy until the body ends.
    pub fn new(inner: ProxyBody, timeout: Duration, in_flight: Option<InFlight>) -> Self {
        Self {
            inner,
            timeout,
            sleep: Box::pin(tokio::time::sleep(timeout)),
            _in_flight: in_flight,
        }
    }
}

impl Body for ReadTimeout {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let deadline = tokio::time::Instant::now() + this.timeout;
                this.sleep.as_mut().reset(deadline);
                Poll::Ready(frame)
            }
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err("upstream read timed out".into()))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Called once with the finished context.
pub type Finisher = Box<dyn FnOnce(RequestContext) + Send + Sync>;

/// The response body sent to the client: runs plugins' `body_filter`, counts bytes, and
/// finishes the request (latencies, `log` phase) after the last chunk or when the client
/// goes away.
pub struct LoggedBody {
    inner: ProxyBody,
    ctx: Option<RequestContext>,
    plugins: PluginList,
    finish: Option<Finisher>,
}

impl LoggedBody {
    /// Wraps `inner`.
    pub fn new(
        inner: ProxyBody,
        ctx: RequestContext,
        plugins: PluginList,
        finish: Finisher,
    ) -> Self {
        Self {
            inner,
            ctx: Some(ctx),
            plugins,
            finish: Some(finish),
        }
    }

    /// Wraps `inner` for a request no plugin runs on: nothing to filter, count or log.
    pub fn passthrough(inner: ProxyBody) -> Self {
        Self {
            inner,
            ctx: None,
            plugins: Arc::new([]),
            finish: None,
        }
    }

    fn complete(&mut self) {
        if let (Some(ctx), Some(finish)) = (self.ctx.take(), self.finish.take()) {
            finish(ctx);
        }
    }
}

impl Body for LoggedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let frame = match frame.into_data() {
                    Ok(mut data) => {
                        if let Some(ctx) = this.ctx.as_mut() {
                            for plugin in this.plugins.iter() {
                                plugin.body_filter(ctx, &mut data);
                            }
                            let len = data.len() as u64;
                            ctx.response_body_bytes += len;
                            if len > 0 {
                                // "<hex len>\r\n" before and "\r\n" after a chunk.
                                ctx.response_chunk_framing +=
                                    u64::from((64 - len.leading_zeros()).div_ceil(4)) + 4;
                            }
                        }
                        Frame::data(data)
                    }
                    Err(frame) => frame,
                };
                if this.inner.is_end_stream() {
                    this.complete();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                this.complete();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                this.complete();
                Poll::Ready(Some(Err(e)))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        self.complete();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use http_body_util::BodyExt;

    use super::*;
    use crate::plugins::Plugin;

    #[derive(Default)]
    struct Recorder {
        chunks: Mutex<Vec<usize>>,
        logged: Mutex<Vec<u64>>,
    }

    impl Plugin for Recorder {
        fn name(&self) -> &'static str {
            "recorder"
        }
        fn priority(&self) -> i32 {
            1
        }
        fn body_filter(&self, _ctx: &mut RequestContext, chunk: &mut Bytes) {
            self.chunks.lock().unwrap().push(chunk.len());
            *chunk = Bytes::from(chunk.to_ascii_uppercase());
        }
        fn log(&self, ctx: &RequestContext) {
            self.logged.lock().unwrap().push(ctx.response_body_bytes);
        }
    }

    fn ctx() -> RequestContext {
        RequestContext::new("127.0.0.1:1".parse().unwrap(), 8000)
    }

    #[tokio::test]
    async fn body_filter_per_chunk_and_log_once_at_the_end() {
        let recorder = Arc::new(Recorder::default());
        let plugins: PluginList = vec![recorder.clone() as Arc<dyn Plugin>].into();
        let finish_plugins = plugins.clone();
        let body = LoggedBody::new(
            full("hello"),
            ctx(),
            plugins,
            Box::new(move |ctx| {
                for p in finish_plugins.iter() {
                    p.log(&ctx);
                }
            }),
        );
        let out = body.collect().await.unwrap().to_bytes();
        assert_eq!(out, "HELLO");
        assert_eq!(*recorder.chunks.lock().unwrap(), vec![5]);
        assert_eq!(*recorder.logged.lock().unwrap(), vec![5]);
    }

    #[test]
    fn dropped_bodies_still_log() {
        let recorder = Arc::new(Recorder::default());
        let plugins: PluginList = vec![recorder.clone() as Arc<dyn Plugin>].into();
        let finish_plugins = plugins.clone();
        drop(LoggedBody::new(
            full("unsent"),
            ctx(),
            plugins,
            Box::new(move |ctx| finish_plugins.iter().for_each(|p| p.log(&ctx))),
        ));
        assert_eq!(*recorder.logged.lock().unwrap(), vec![0]);
    }
}
