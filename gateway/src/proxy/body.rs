//! Streaming bodies: the boxed body type used both ways, and the response body wrapper that
//! runs `body_filter` per chunk and `log` once the response is complete.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Frame, SizeHint};

use super::context::RequestContext;
use crate::plugins::Plugin;

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

/// Called once with the finished context.
pub type Finisher = Box<dyn FnOnce(RequestContext) + Send + Sync>;

/// The response body sent to the client: runs plugins' `body_filter`, counts bytes, and
/// finishes the request (latencies, `log` phase) after the last chunk or when the client
/// goes away.
pub struct LoggedBody {
    inner: ProxyBody,
    ctx: Option<RequestContext>,
    plugins: Arc<[Arc<dyn Plugin>]>,
    finish: Option<Finisher>,
}

impl LoggedBody {
    /// Wraps `inner`.
    pub fn new(
        inner: ProxyBody,
        ctx: RequestContext,
        plugins: Arc<[Arc<dyn Plugin>]>,
        finish: Finisher,
    ) -> Self {
        Self {
            inner,
            ctx: Some(ctx),
            plugins,
            finish: Some(finish),
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
                            ctx.response_body_bytes += data.len() as u64;
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
