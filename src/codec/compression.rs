//! Body compression as OTLP speaks it (`Content-Encoding` / `grpc-encoding`).
//!
//! Decompression is always bounded: the output may not grow past a caller-given limit,
//! so a small compressed body cannot expand into gigabytes (a decompression bomb).

use std::io::{Read, Write};

/// A compression algorithm otelcol accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// No compression (`""`, `none`, `identity`).
    None,
    /// gzip (RFC 1952).
    Gzip,
    /// zlib (RFC 1950); otelcol's `zlib` and HTTP's `deflate` both mean this.
    Zlib,
    /// Raw deflate (RFC 1951), accepted when a `deflate` body has no zlib header.
    Deflate,
    /// Zstandard.
    Zstd,
}

/// Why a body could not be decompressed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecompressError {
    /// The encoding is not one this collector accepts.
    #[error("unsupported Content-Encoding: {0}")]
    Unsupported(String),
    /// The body is not valid data for its encoding.
    #[error("invalid {encoding} body: {reason}")]
    Corrupt {
        /// The encoding named by the client.
        encoding: &'static str,
        /// What the decoder said.
        reason: String,
    },
    /// The decompressed body is larger than allowed.
    #[error("decompressed body larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

impl Compression {
    /// Parses a `Content-Encoding` value or a config `compression` value.
    ///
    /// # Errors
    /// [`DecompressError::Unsupported`] naming the value.
    pub fn parse(name: &str) -> Result<Self, DecompressError> {
        match name.trim().to_ascii_lowercase().as_str() {
            "" | "none" | "identity" => Ok(Self::None),
            "gzip" | "x-gzip" => Ok(Self::Gzip),
            "zlib" | "deflate" => Ok(Self::Zlib),
            "zstd" => Ok(Self::Zstd),
            _ => Err(DecompressError::Unsupported(name.to_owned())),
        }
    }

    /// The `Content-Encoding` header value, or `None` for no compression.
    pub fn header_value(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::Gzip => Some("gzip"),
            Self::Zlib | Self::Deflate => Some("deflate"),
            Self::Zstd => Some("zstd"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::None => "identity",
            Self::Gzip => "gzip",
            Self::Zlib => "zlib",
            Self::Deflate => "deflate",
            Self::Zstd => "zstd",
        }
    }

    /// Compresses `body` with the algorithm's default level.
    pub fn compress(self, body: &[u8]) -> Vec<u8> {
        let out = Vec::with_capacity(body.len() / 4 + 64);
        match self {
            Self::None => body.to_vec(),
            Self::Gzip => finish(
                flate2::write::GzEncoder::new(out, flate2::Compression::default()),
                body,
            ),
            Self::Zlib => finish(
                flate2::write::ZlibEncoder::new(out, flate2::Compression::default()),
                body,
            ),
            Self::Deflate => finish(
                flate2::write::DeflateEncoder::new(out, flate2::Compression::default()),
                body,
            ),
            Self::Zstd => zstd::bulk::compress(body, 0).unwrap_or_else(|_| body.to_vec()),
        }
    }

    /// Decompresses `body`, refusing output larger than `limit` bytes.
    ///
    /// # Errors
    /// [`DecompressError::Corrupt`] or [`DecompressError::TooLarge`].
    pub fn decompress(self, body: &[u8], limit: usize) -> Result<Vec<u8>, DecompressError> {
        match self {
            Self::None => {
                if body.len() > limit {
                    return Err(DecompressError::TooLarge { limit });
                }
                Ok(body.to_vec())
            }
            Self::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(body), self, limit),
            Self::Zlib => {
                // HTTP `deflate` is zlib by the RFC, but some clients send raw deflate.
                let zlib_header = body.len() >= 2
                    && body[0] & 0x0f == 8
                    && (u16::from(body[0]) << 8 | u16::from(body[1])) % 31 == 0;
                if zlib_header {
                    read_bounded(flate2::read::ZlibDecoder::new(body), self, limit)
                } else {
                    read_bounded(
                        flate2::read::DeflateDecoder::new(body),
                        Self::Deflate,
                        limit,
                    )
                }
            }
            Self::Deflate => read_bounded(flate2::read::DeflateDecoder::new(body), self, limit),
            Self::Zstd => match zstd::stream::read::Decoder::new(body) {
                Ok(decoder) => read_bounded(decoder, self, limit),
                Err(e) => Err(DecompressError::Corrupt {
                    encoding: self.name(),
                    reason: e.to_string(),
                }),
            },
        }
    }
}

fn finish<W: Write + Finish>(mut encoder: W, body: &[u8]) -> Vec<u8> {
    // Writing into a Vec cannot fail.
    encoder.write_all(body).expect("write to Vec");
    encoder.finish_vec()
}

/// The flate2 encoders' `finish`, behind one trait.
trait Finish {
    fn finish_vec(self) -> Vec<u8>;
}

macro_rules! impl_finish {
    ($($t:ty),*) => {$(
        impl Finish for $t {
            fn finish_vec(self) -> Vec<u8> {
                self.finish().expect("finish into Vec")
            }
        }
    )*};
}
impl_finish!(
    flate2::write::GzEncoder<Vec<u8>>,
    flate2::write::ZlibEncoder<Vec<u8>>,
    flate2::write::DeflateEncoder<Vec<u8>>
);

fn read_bounded<R: Read>(
    reader: R,
    encoding: Compression,
    limit: usize,
) -> Result<Vec<u8>, DecompressError> {
    let mut out = Vec::new();
    let mut limited = reader.take(limit as u64 + 1);
    limited
        .read_to_end(&mut out)
        .map_err(|e| DecompressError::Corrupt {
            encoding: encoding.name(),
            reason: e.to_string(),
        })?;
    if out.len() > limit {
        return Err(DecompressError::TooLarge { limit });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_algorithm() {
        let body = b"hello hello hello hello".repeat(50);
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Zlib,
            Compression::Deflate,
            Compression::Zstd,
        ] {
            let packed = c.compress(&body);
            assert_eq!(c.decompress(&packed, 1 << 20).unwrap(), body, "{c:?}");
        }
    }

    #[test]
    fn raw_deflate_is_accepted_as_http_deflate() {
        let body = b"raw deflate body".repeat(10);
        let packed = Compression::Deflate.compress(&body);
        assert_eq!(
            Compression::Zlib.decompress(&packed, 1 << 20).unwrap(),
            body
        );
    }

    #[test]
    fn bomb_is_refused() {
        let body = vec![0u8; 10 << 20];
        let packed = Compression::Gzip.compress(&body);
        assert!(packed.len() < 64 << 10);
        assert_eq!(
            Compression::Gzip.decompress(&packed, 1 << 20),
            Err(DecompressError::TooLarge { limit: 1 << 20 })
        );
    }

    #[test]
    fn corrupt_and_unknown_are_errors() {
        assert!(matches!(
            Compression::Gzip.decompress(b"not gzip", 100),
            Err(DecompressError::Corrupt { .. })
        ));
        assert_eq!(
            Compression::parse("br"),
            Err(DecompressError::Unsupported("br".into()))
        );
    }
}
