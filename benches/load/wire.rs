//! A skip-walker over the protobuf wire format: finds where each item of an OTLP export
//! request lies, and where given fields of an item lie, without decoding anything else.
//! The sink counts ids with it (no full decode per export) and the client uses it once to
//! find the byte offsets it patches in its request templates.

use std::ops::Range;

use prost::encoding::{decode_key, decode_varint, WireType};

use crate::client::Signal;

/// The request does not follow the wire format (or not OTLP's shape where it matters).
#[derive(Debug, thiserror::Error)]
pub(crate) enum WireError {
    /// A key, varint or length could not be read.
    #[error("malformed protobuf: {0}")]
    Decode(#[from] prost::DecodeError),
    /// A length runs past the end of its message.
    #[error("field {field} runs past the end of its message")]
    Truncated {
        /// The field number.
        field: u32,
    },
    /// Groups are not used by OTLP.
    #[error("field {field} uses the deprecated group wire type")]
    Group {
        /// The field number.
        field: u32,
    },
    /// An item's id field is missing or has the wrong size.
    #[error("an item has no 8-byte id")]
    NoId,
}

/// One field of a message: its number, wire type and the byte range of its value in the
/// buffer the walk started on (for length-delimited fields, the payload without its length).
#[derive(Clone, Debug)]
pub(crate) struct Field {
    /// Field number.
    pub(crate) number: u32,
    /// Wire type.
    pub(crate) wire: WireType,
    /// Where the value lies.
    pub(crate) value: Range<usize>,
}

/// Calls `f` for every field of the message at `buf[range]`, in wire order.
pub(crate) fn fields(
    buf: &[u8],
    range: Range<usize>,
    mut f: impl FnMut(&Field) -> Result<(), WireError>,
) -> Result<(), WireError> {
    let end = range.end;
    let mut rest = &buf[range];
    while !rest.is_empty() {
        let (number, wire) = decode_key(&mut rest)?;
        let at = end - rest.len();
        let value = match wire {
            WireType::Varint => {
                decode_varint(&mut rest)?;
                at..end - rest.len()
            }
            WireType::SixtyFourBit => at..at + 8,
            WireType::ThirtyTwoBit => at..at + 4,
            WireType::LengthDelimited => {
                let len = decode_varint(&mut rest)?;
                let start = end - rest.len();
                let len =
                    usize::try_from(len).map_err(|_| WireError::Truncated { field: number })?;
                start..start.saturating_add(len)
            }
            WireType::StartGroup | WireType::EndGroup => {
                return Err(WireError::Group { field: number })
            }
        };
        if value.end > end {
            return Err(WireError::Truncated { field: number });
        }
        rest = &buf[value.end..end];
        f(&Field {
            number,
            wire,
            value,
        })?;
    }
    Ok(())
}

/// Calls `f` for the length-delimited fields numbered `path[0]` of the message at
/// `buf[range]`, then inside each of those for fields `path[1]`, and so on: `f` gets the
/// ranges of the messages at the end of the path.
fn nested(
    buf: &[u8],
    range: Range<usize>,
    path: &[u32],
    f: &mut impl FnMut(Range<usize>) -> Result<(), WireError>,
) -> Result<(), WireError> {
    let Some((&first, rest)) = path.split_first() else {
        return f(range);
    };
    fields(buf, range, |field| {
        if field.number == first && field.wire == WireType::LengthDelimited {
            nested(buf, field.value.clone(), rest, f)?;
        }
        Ok(())
    })
}

/// The field path from an export request to its items: resource_* → scope_* → items; for
/// metrics → metric → sum → data points.
fn item_path(signal: Signal) -> &'static [u32] {
    match signal {
        Signal::Traces | Signal::Logs => &[1, 2, 2],
        Signal::Metrics => &[1, 2, 2, 7, 1],
    }
}

/// Calls `f` with the byte range of every item (span, sum data point, log record) of an
/// export request of `signal`.
pub(crate) fn items(
    signal: Signal,
    buf: &[u8],
    mut f: impl FnMut(Range<usize>) -> Result<(), WireError>,
) -> Result<(), WireError> {
    nested(buf, 0..buf.len(), item_path(signal), &mut f)
}

/// The item's id field: span `span_id` (2, bytes), data point `start_time_unix_nano`
/// (2, fixed64), log record `span_id` (10, bytes).
pub(crate) fn id_field(signal: Signal) -> u32 {
    match signal {
        Signal::Traces | Signal::Metrics => 2,
        Signal::Logs => 10,
    }
}

/// Reads an id value: 8 bytes big-endian for bytes ids, little-endian for fixed64.
fn read_id(wire: WireType, value: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = value.try_into().ok()?;
    match wire {
        WireType::LengthDelimited => Some(u64::from_be_bytes(bytes)),
        WireType::SixtyFourBit => Some(u64::from_le_bytes(bytes)),
        _ => None,
    }
}

/// Calls `f` with the id of every item of an export request of `signal`.
pub(crate) fn ids(signal: Signal, buf: &[u8], mut f: impl FnMut(u64)) -> Result<(), WireError> {
    let number = id_field(signal);
    items(signal, buf, |item| {
        let mut id = None;
        fields(buf, item, |field| {
            if field.number == number {
                id = read_id(field.wire, &buf[field.value.clone()]);
            }
            Ok(())
        })?;
        // proto3 leaves a zero fixed64 out: a data point without a start time has id 0.
        if id.is_none() && signal == Signal::Metrics {
            id = Some(0);
        }
        f(id.ok_or(WireError::NoId)?);
        Ok(())
    })
}
