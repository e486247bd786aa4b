//! Chunked transfer coding, decoded in place from the connection's read buffer.

use bytes::{Buf, Bytes, BytesMut};

use super::Error;

/// Longest chunk-size line (with extensions) or trailer line accepted.
const MAX_LINE: usize = 4096;

/// Most trailer bytes accepted (they are read and dropped).
const MAX_TRAILERS: usize = 64 * 1024;

/// What one decoding step produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Body bytes.
    Data(Bytes),
    /// More input is needed.
    More,
    /// The last chunk and the trailers were read.
    End,
}

#[derive(Debug, Default)]
enum Part {
    #[default]
    Size,
    Data(u64),
    DataEnd,
    Trailers(usize),
}

/// Decoder state between reads.
#[derive(Debug, Default)]
pub struct Chunked {
    part: Part,
}

/// The line at the start of `buf` without its line ending, consuming it.
fn line(buf: &mut BytesMut) -> Result<Option<BytesMut>, Error> {
    match buf.iter().position(|&b| b == b'\n') {
        Some(end) => {
            let mut line = buf.split_to(end + 1);
            line.truncate(end);
            if line.last() == Some(&b'\r') {
                line.truncate(end - 1);
            }
            Ok(Some(line))
        }
        None if buf.len() > MAX_LINE => Err(Error::Invalid("chunk line too long".into())),
        None => Ok(None),
    }
}

fn chunk_size(line: &[u8]) -> Result<u64, Error> {
    let digits = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    if digits.is_empty() || digits.len() > 15 {
        return Err(Error::Invalid("invalid chunk size".into()));
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let d = char::from(b)
            .to_digit(16)
            .ok_or_else(|| Error::Invalid("invalid chunk size".into()))?;
        Ok(n * 16 + u64::from(d))
    })
}

impl Chunked {
    /// Decodes from `buf` until one of [`Step`] happens.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Step, Error> {
        loop {
            match &mut self.part {
                Part::Size => {
                    let Some(line) = line(buf)? else {
                        return Ok(Step::More);
                    };
                    let size = chunk_size(&line)?;
                    self.part = if size == 0 {
                        Part::Trailers(0)
                    } else {
                        Part::Data(size)
                    };
                }
                Part::Data(remaining) => {
                    if buf.is_empty() {
                        return Ok(Step::More);
                    }
                    let take = (*remaining).min(buf.len() as u64);
                    *remaining -= take;
                    if *remaining == 0 {
                        self.part = Part::DataEnd;
                    }
                    return Ok(Step::Data(buf.split_to(take as usize).freeze()));
                }
                Part::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(Step::More);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(Error::Invalid("chunk not followed by CRLF".into()));
                    }
                    buf.advance(2);
                    self.part = Part::Size;
                }
                Part::Trailers(seen) => {
                    let before = buf.len();
                    let Some(line) = line(buf)? else {
                        return Ok(Step::More);
                    };
                    if line.is_empty() {
                        return Ok(Step::End);
                    }
                    *seen += before - buf.len();
                    if *seen > MAX_TRAILERS {
                        return Err(Error::Invalid("trailers too large".into()));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8], split: usize) -> Result<(Vec<u8>, bool), Error> {
        let mut decoder = Chunked::default();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for piece in input.chunks(split) {
            buf.extend_from_slice(piece);
            loop {
                match decoder.decode(&mut buf)? {
                    Step::Data(d) => out.extend_from_slice(&d),
                    Step::More => break,
                    Step::End => return Ok((out, true)),
                }
            }
        }
        Ok((out, false))
    }

    #[test]
    fn decodes_chunks_extensions_and_trailers_in_any_split() {
        let input = b"5;ext=1\r\nhello\r\nA\r\n, chunked!\r\n0\r\nx-sum: 1\r\n\r\n";
        for split in [1, 2, 3, 7, input.len()] {
            let (out, ended) = decode_all(input, split).unwrap();
            assert_eq!(out, b"hello, chunked!", "split {split}");
            assert!(ended, "split {split}");
        }
    }

    #[test]
    fn refuses_bad_sizes_missing_crlf_and_endless_lines() {
        assert!(decode_all(b"zz\r\n", 64).is_err());
        assert!(decode_all(b"\r\n", 64).is_err());
        assert!(decode_all(b"3\r\nabcX\r\n", 64).is_err());
        assert!(decode_all(b"1234567890abcdef0\r\n", 64).is_err());
        assert!(decode_all(&[b'1'; MAX_LINE + 2], MAX_LINE + 2).is_err());
    }

    #[test]
    fn an_unfinished_body_asks_for_more() {
        let (out, ended) = decode_all(b"4\r\nab", 64).unwrap();
        assert_eq!(out, b"ab");
        assert!(!ended);
    }
}
