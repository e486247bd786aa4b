//! A gRPC codec for requests encoded before the call: the exporter encodes a batch straight
//! from the queued structs, without building (and so deep-copying the batch into) an
//! `Export*ServiceRequest`. Responses are decoded with prost as usual.

use std::marker::PhantomData;

use bytes::{BufMut, Bytes};
use tonic::codec::{BufferSettings, Codec, EncodeBuf, Encoder};
use tonic::Status;
use tonic_prost::ProstDecoder;

/// Sends [`Bytes`] as the message, decodes `R`.
pub(super) struct EncodedCodec<R>(PhantomData<R>);

impl<R> Default for EncodedCodec<R> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

/// Writes the already encoded message.
pub(super) struct BytesEncoder;

impl Encoder for BytesEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.reserve(item.len());
        dst.put(item);
        Ok(())
    }
}

impl<R: prost::Message + Default + Send + 'static> Codec for EncodedCodec<R> {
    type Encode = Bytes;
    type Decode = R;
    type Encoder = BytesEncoder;
    type Decoder = ProstDecoder<R>;

    fn encoder(&mut self) -> BytesEncoder {
        BytesEncoder
    }

    fn decoder(&mut self) -> ProstDecoder<R> {
        ProstDecoder::new(BufferSettings::default())
    }
}
