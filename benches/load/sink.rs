//! The load tool's sink: an OTLP/gRPC server behind the collector that counts what arrives
//! and checks every item's id, so losses and duplicates show. It does not decode the
//! exports: [`wire::ids`] walks the wire format to the id fields and skips everything else.

use std::convert::Infallible;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::codec::CompressionEncoding::Gzip;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{http, Body as HttpBody, BoxFuture, Service, StdError};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status};

use crate::client::Signal;
use crate::wire;

/// What the sink saw.
#[derive(Default)]
pub(crate) struct Tally {
    /// Items received, duplicates included.
    pub(crate) received: AtomicU64,
    /// Items whose id had been seen before.
    pub(crate) duplicates: AtomicU64,
    /// Exports the sink could not walk (their items count as missing).
    pub(crate) malformed: AtomicU64,
    seen: Mutex<Vec<u64>>,
}

impl Tally {
    /// Marks the ids of one export seen; one lock per export, not per item.
    fn record(&self, signal: Signal, export: &[u8]) -> Result<(), wire::WireError> {
        let mut seen = self.seen.lock().expect("tally lock");
        let mut received = 0;
        let mut duplicates = 0;
        let walked = wire::ids(signal, export, |id| {
            received += 1;
            let (word, bit) = ((id / 64) as usize, id % 64);
            if word >= seen.len() {
                seen.resize(word + 1 + word / 2, 0);
            }
            if seen[word] & (1 << bit) != 0 {
                duplicates += 1;
            }
            seen[word] |= 1 << bit;
        });
        self.received.fetch_add(received, Ordering::Relaxed);
        self.duplicates.fetch_add(duplicates, Ordering::Relaxed);
        if walked.is_err() {
            self.malformed.fetch_add(1, Ordering::Relaxed);
        }
        walked
    }

    /// How many distinct ids below `sent` never arrived.
    pub(crate) fn missing(&self, sent: u64) -> u64 {
        let seen = self.seen.lock().expect("tally lock");
        (0..sent)
            .filter(|id| {
                let word = (id / 64) as usize;
                seen.get(word).is_none_or(|w| w & (1 << (id % 64)) == 0)
            })
            .count() as u64
    }
}

/// Receives an export as its (decompressed) bytes and answers an empty response.
#[derive(Clone, Copy, Default)]
struct RawCodec;

/// Writes the empty export response (every field at its default).
struct EmptyEncoder;

impl Encoder for EmptyEncoder {
    type Item = ();
    type Error = Status;

    fn encode(&mut self, (): (), _dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        Ok(())
    }
}

/// Takes the message bytes as they are.
struct BytesDecoder;

impl Decoder for BytesDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

impl Codec for RawCodec {
    type Encode = ();
    type Decode = Bytes;
    type Encoder = EmptyEncoder;
    type Decoder = BytesDecoder;

    fn encoder(&mut self) -> EmptyEncoder {
        EmptyEncoder
    }

    fn decoder(&mut self) -> BytesDecoder {
        BytesDecoder
    }
}

/// The gRPC service name and signal of one of the three export services.
trait Export: Send + Sync + 'static {
    const NAME: &'static str;
    const SIGNAL: Signal;
}

struct Traces;
impl Export for Traces {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    const SIGNAL: Signal = Signal::Traces;
}

struct Metrics;
impl Export for Metrics {
    const NAME: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
    const SIGNAL: Signal = Signal::Metrics;
}

struct Logs;
impl Export for Logs {
    const NAME: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    const SIGNAL: Signal = Signal::Logs;
}

/// One export service of the sink.
struct Sink<E> {
    tally: Arc<Tally>,
    gzip: bool,
    export: PhantomData<E>,
}

impl<E> Clone for Sink<E> {
    fn clone(&self) -> Self {
        Self {
            tally: self.tally.clone(),
            gzip: self.gzip,
            export: PhantomData,
        }
    }
}

impl<E: Export> NamedService for Sink<E> {
    const NAME: &'static str = E::NAME;
}

/// Counts one export's ids.
struct Count<E>(Arc<Tally>, PhantomData<E>);

impl<E: Export> UnaryService<Bytes> for Count<E> {
    type Response = ();
    type Future = std::future::Ready<Result<Response<()>, Status>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        std::future::ready(match self.0.record(E::SIGNAL, request.get_ref()) {
            Ok(()) => Ok(Response::new(())),
            Err(e) => Err(Status::invalid_argument(e.to_string())),
        })
    }
}

impl<E: Export, B> Service<http::Request<B>> for Sink<E>
where
    B: HttpBody + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let tally = self.tally.clone();
        let gzip = self.gzip;
        Box::pin(async move {
            if !request.uri().path().ends_with("/Export") {
                return Ok(Status::unimplemented("only Export").into_http());
            }
            let mut grpc = Grpc::new(RawCodec).max_decoding_message_size(64 << 20);
            if gzip {
                grpc = grpc.accept_compressed(Gzip);
            }
            Ok(grpc.unary(Count::<E>(tally, PhantomData), request).await)
        })
    }
}

/// Starts the sink on 127.0.0.1:0; it runs until `stop` is cancelled. With `gzip` it accepts
/// gzip-compressed exports; without, it refuses them (UNIMPLEMENTED), so a collector told
/// not to compress shows when it does.
pub(crate) async fn start(
    stop: CancellationToken,
    gzip: bool,
) -> std::io::Result<(SocketAddr, Arc<Tally>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let tally = Arc::new(Tally::default());
    fn service<E>(tally: &Arc<Tally>, gzip: bool) -> Sink<E> {
        Sink {
            tally: tally.clone(),
            gzip,
            export: PhantomData,
        }
    }
    let server = tonic::transport::Server::builder()
        .add_service(service::<Traces>(&tally, gzip))
        .add_service(service::<Metrics>(&tally, gzip))
        .add_service(service::<Logs>(&tally, gzip))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            stop.cancelled_owned(),
        );
    tokio::spawn(async move {
        if let Err(e) = server.await {
            eprintln!("sink failed: {e}");
        }
    });
    Ok((addr, tally))
}
