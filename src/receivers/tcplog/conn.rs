//! One TCP connection: read, split into tokens within `max_log_size`, run each through
//! the operators, hand the entries to the batcher.

use std::sync::Arc;

use bytes::BufMut;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::receivers::stanza::emit::Emitter;
use crate::receivers::stanza::input::Input;
use crate::receivers::stanza::{now_nanos, Entry};

/// Bytes read per call at most.
const READ_CHUNK: usize = 64 << 10;
/// Longest the close of a connection may take (a TLS `close_notify` to a client that
/// stopped reading).
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);
/// Initial buffer per connection.
const INITIAL_BUFFER: usize = 4 << 10;

/// What a connection handler needs.
pub(crate) struct Connection {
    pub(crate) input: Arc<Input>,
    pub(crate) emitter: Emitter,
    pub(crate) extra: Vec<KeyValue>,
    pub(crate) one_log_per_packet: bool,
    pub(crate) too_long: metrics::Counter,
    pub(crate) receiver: Arc<str>,
    pub(crate) idle_timeout: Option<std::time::Duration>,
}

/// Waits for `idle` (forever when `None`).
async fn idle(timeout: Option<std::time::Duration>) {
    match timeout {
        Some(t) => tokio::time::sleep(t).await,
        None => std::future::pending().await,
    }
}

impl Connection {
    /// Serves `stream` (plain TCP or TLS) until EOF, a read error, an over-long token, or
    /// `stop`, then closes it (over TLS with `close_notify`, as Go's `tls.Conn.Close`).
    pub(crate) async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
        self,
        mut stream: S,
        stop: CancellationToken,
    ) {
        if self.one_log_per_packet {
            self.whole(&mut stream, &stop).await;
        } else {
            self.lines(&mut stream, &stop).await;
        }
        if tokio::time::timeout(CLOSE_TIMEOUT, stream.shutdown())
            .await
            .is_err()
        {
            tracing::debug!(receiver = %self.receiver, "connection close timed out");
        }
    }

    async fn whole<S: AsyncRead + Unpin>(&self, stream: &mut S, stop: &CancellationToken) {
        let max = self.input.splitter.max;
        let mut buf = Vec::with_capacity(INITIAL_BUFFER);
        let mut chunk = vec![0u8; READ_CHUNK.min(max)];
        loop {
            let n = tokio::select! {
                r = stream.read(&mut chunk) => r.unwrap_or(0),
                () = idle(self.idle_timeout) => 0,
                () = stop.cancelled() => return,
            };
            if n == 0 {
                break;
            }
            let room = max.saturating_sub(buf.len());
            buf.extend_from_slice(&chunk[..n.min(room)]);
        }
        let mut out = Vec::with_capacity(1);
        self.input
            .handle_raw(&buf, now_nanos(), &self.extra, &mut out);
        self.emitter.send(out).await;
    }

    async fn lines<S: AsyncRead + Unpin>(&self, stream: &mut S, stop: &CancellationToken) {
        let splitter = &self.input.splitter;
        let max = splitter.max;
        let mut buf: Vec<u8> = Vec::with_capacity(INITIAL_BUFFER.min(max));
        let mut scan_from = 0usize;
        loop {
            let pending = buf.len();
            let want = READ_CHUNK.min(max.saturating_sub(pending)).max(1);
            buf.reserve(want);
            let mut limited = (&mut buf).limit(want);
            let read = tokio::select! {
                r = stream.read_buf(&mut limited) => r,
                () = idle(self.idle_timeout) => {
                    tracing::debug!(receiver = %self.receiver, "closing idle connection");
                    Ok(0)
                }
                () = stop.cancelled() => return,
            };
            let eof = match read {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => {
                    tracing::debug!(receiver = %self.receiver, error = %e, "connection read failed");
                    true
                }
            };
            let mut out: Vec<Entry> = Vec::new();
            let observed = now_nanos();
            let mut start = 0usize;
            let mut failed = false;
            while start < buf.len() {
                match splitter.next(&buf[start..], scan_from.saturating_sub(start), eof) {
                    Ok(Some(t)) => {
                        self.input.handle(
                            &buf[start + t.start..start + t.end],
                            observed,
                            &self.extra,
                            &mut out,
                        );
                        start += t.advance;
                        scan_from = start;
                        if t.advance == 0 {
                            break;
                        }
                    }
                    Ok(None) => {
                        scan_from = start + splitter.resume_at(buf.len() - start);
                        break;
                    }
                    Err(e) => {
                        self.too_long.increment(1);
                        tracing::error!(receiver = %self.receiver, error = %e, max_log_size = max, "Scanner error");
                        failed = true;
                        break;
                    }
                }
            }
            buf.drain(..start);
            scan_from = scan_from.saturating_sub(start);
            if !self.emitter.send(out).await || eof || failed {
                return;
            }
        }
    }
}
