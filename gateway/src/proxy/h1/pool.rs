//! Idle upstream connections, per peer address, reused last-in first-out.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::net::TcpStream;

/// Idle connections kept per peer (the previous client's `pool_max_idle_per_host`).
pub const MAX_IDLE_PER_PEER: usize = 512;

/// How long an idle connection may wait for its next request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// One upstream connection and the bytes read from it but not consumed yet.
#[derive(Debug)]
pub struct Conn {
    /// The socket.
    pub stream: TcpStream,
    /// Read buffer.
    pub buf: BytesMut,
}

impl Conn {
    /// A fresh connection with an empty read buffer.
    pub fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: BytesMut::with_capacity(super::READ_CHUNK),
        }
    }
}

#[derive(Debug)]
struct Idle {
    conn: Conn,
    since: Instant,
}

/// The idle connections of every peer.
#[derive(Debug, Default)]
pub struct Pool {
    idle: Mutex<HashMap<SocketAddr, Vec<Idle>>>,
}

impl Pool {
    /// The most recently returned idle connection to `addr` that has not timed out.
    pub fn checkout(&self, addr: SocketAddr) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.get_mut(&addr)?;
        while let Some(entry) = list.pop() {
            if entry.since.elapsed() < IDLE_TIMEOUT {
                return Some(entry.conn);
            }
            // The rest is older still.
            list.clear();
        }
        None
    }

    /// Keeps `conn` for the next request to `addr` (closed instead when the peer already has
    /// [`MAX_IDLE_PER_PEER`] idle connections).
    pub fn checkin(&self, addr: SocketAddr, conn: Conn) {
        let since = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.entry(addr).or_default();
        if list.len() < MAX_IDLE_PER_PEER {
            list.push(Idle { conn, since });
        }
    }

    /// Idle connections kept for `addr`.
    pub fn idle_count(&self, addr: SocketAddr) -> usize {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.get(&addr).map_or(0, Vec::len)
    }
}
