//! The upstream response body read from the connection: exact length, chunked or until
//! close, failing when no bytes arrive for the service's `read_timeout`; the connection goes
//! back to the pool once the body ended cleanly.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use super::chunked::{Chunked, Step};
use super::pool::{Conn, Pool};
use super::response::BodyLength;
use super::{Error, READ_CHUNK};
use crate::proxy::balancer::InFlight;
use crate::proxy::body::BoxError;

#[derive(Debug)]
enum State {
    Exact(u64),
    Chunked(Chunked),
    UntilClose,
    Done,
}

/// A connection switched to another protocol by a `101` response, with the bytes the
/// upstream sent after the head.
#[derive(Debug)]
pub struct Upgraded {
    /// The socket.
    pub stream: tokio::net::TcpStream,
    /// Bytes already read past the 101 head.
    pub read_ahead: Bytes,
}

/// The body of one upstream response.
pub struct UpstreamBody {
    conn: Option<Conn>,
    /// Body bytes read with the head, sent before anything read later.
    pending: Bytes,
    state: State,
    keep_alive: bool,
    pool: Arc<Pool>,
    addr: SocketAddr,
    read_timeout: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    read_since_wait: bool,
    _in_flight: Option<InFlight>,
}

impl UpstreamBody {
    /// The body delimited by `length` on `conn`, starting with `pending`; `keep_alive` when
    /// the connection may be reused after it.
    pub(super) fn new(
        mut conn: Conn,
        mut pending: Bytes,
        length: BodyLength,
        keep_alive: bool,
        pool: Arc<Pool>,
        addr: SocketAddr,
        read_timeout: Duration,
    ) -> Self {
        let state = match length {
            BodyLength::Empty => State::Done,
            BodyLength::Exact(n) => State::Exact(n),
            BodyLength::Chunked => State::Chunked(Chunked::default()),
            BodyLength::UntilClose => State::UntilClose,
        };
        if matches!(state, State::Chunked(_)) {
            // The chunked decoder works on the read buffer.
            conn.buf.extend_from_slice(&pending);
            pending = Bytes::new();
        }
        let mut body = Self {
            conn: Some(conn),
            pending,
            state,
            keep_alive,
            pool,
            addr,
            read_timeout,
            sleep: None,
            read_since_wait: false,
            _in_flight: None,
        };
        if matches!(body.state, State::Done) {
            body.release();
        }
        body
    }

    /// An empty body without a connection (the one of a `101` response is spliced).
    pub(super) fn empty(pool: Arc<Pool>, addr: SocketAddr) -> Self {
        Self {
            conn: None,
            pending: Bytes::new(),
            state: State::Done,
            keep_alive: false,
            pool,
            addr,
            read_timeout: Duration::ZERO,
            sleep: None,
            read_since_wait: false,
            _in_flight: None,
        }
    }

    /// Keeps `guard` (the balancer's in-flight count) until the body is dropped.
    pub fn hold(&mut self, guard: Option<InFlight>) {
        self._in_flight = guard;
    }

    /// Ends the body; the connection returns to the pool when reusable and nothing was sent
    /// past the response.
    fn release(&mut self) {
        self.state = State::Done;
        if let Some(conn) = self.conn.take() {
            if self.keep_alive && conn.buf.is_empty() && self.pending.is_empty() {
                self.pool.checkin(self.addr, conn);
            }
        }
    }

    /// Reads more bytes into the buffer: `Ok(0)` at end of stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<Result<usize, Error>> {
        let Some(conn) = self.conn.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        conn.buf.reserve(READ_CHUNK);
        match tokio_util::io::poll_read_buf(Pin::new(&mut conn.stream), cx, &mut conn.buf) {
            Poll::Ready(Ok(n)) => {
                self.read_since_wait = true;
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(Error::Read(e))),
            Poll::Pending => {
                let deadline = tokio::time::Instant::now() + self.read_timeout;
                let sleep = match self.sleep.as_mut() {
                    Some(sleep) => {
                        if self.read_since_wait {
                            sleep.as_mut().reset(deadline);
                        }
                        sleep
                    }
                    None => self
                        .sleep
                        .insert(Box::pin(tokio::time::sleep_until(deadline))),
                };
                self.read_since_wait = false;
                ready!(sleep.as_mut().poll(cx));
                Poll::Ready(Err(Error::ReadTimeout))
            }
        }
    }

    fn fail(&mut self, error: Error) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.state = State::Done;
        self.conn = None;
        Poll::Ready(Some(Err(Box::new(error))))
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if !this.pending.is_empty() {
                match &mut this.state {
                    State::Exact(remaining) => {
                        let take = (*remaining).min(this.pending.len() as u64);
                        *remaining -= take;
                        let data = this.pending.split_to(take as usize);
                        if *remaining == 0 {
                            this.release();
                        }
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    State::UntilClose => {
                        let data = std::mem::take(&mut this.pending);
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    _ => {}
                }
            }
            let buffered = this.conn.as_ref().map_or(0, |c| c.buf.len());
            match &mut this.state {
                State::Done => return Poll::Ready(None),
                State::Exact(remaining) if buffered > 0 => {
                    let take = (*remaining).min(buffered as u64);
                    *remaining -= take;
                    let finished = *remaining == 0;
                    let data = match this.conn.as_mut() {
                        Some(conn) => conn.buf.split_to(take as usize).freeze(),
                        None => Bytes::new(),
                    };
                    if finished {
                        this.release();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                State::Chunked(chunked) if buffered > 0 => {
                    let Some(conn) = this.conn.as_mut() else {
                        return Poll::Ready(None);
                    };
                    match chunked.decode(&mut conn.buf) {
                        Ok(Step::Data(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                        Ok(Step::End) => {
                            this.release();
                            return Poll::Ready(None);
                        }
                        Ok(Step::More) => {}
                        Err(e) => return this.fail(e),
                    }
                }
                State::UntilClose if buffered > 0 => {
                    let data = match this.conn.as_mut() {
                        Some(conn) => conn.buf.split().freeze(),
                        None => Bytes::new(),
                    };
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                _ => {}
            }
            match ready!(this.poll_fill(cx)) {
                Ok(0) => {
                    if matches!(this.state, State::UntilClose) {
                        this.state = State::Done;
                        this.conn = None;
                        return Poll::Ready(None);
                    }
                    return this.fail(Error::Closed);
                }
                Ok(_) => {}
                Err(e) => return this.fail(e),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Done => SizeHint::with_exact(0),
            State::Exact(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}
