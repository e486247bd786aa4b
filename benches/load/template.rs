//! Request templates: one request per signal encoded once, plus the byte offsets of every
//! value that depends on the item's id. Writing a request for ids `first..` is then a copy
//! of the template with those values replaced on the way, not an encode.

use bytes::BufMut;
use prost::encoding::WireType;
use prost::Message;

use crate::client::Signal;
use crate::generate::{self, EPOCH_NS, REQUEST_ID, SPAN_DURATION_NS, SPAN_STEP_NS};
use crate::wire::{self, Field, WireError};

/// What is written at a patched offset for id `id`.
#[derive(Clone, Copy, Debug)]
enum Patch {
    /// `id`, 8 bytes big-endian (span ids, the first half of trace ids).
    IdBe,
    /// `base + id * step`, fixed64 little-endian (times, data point values).
    Fixed64 { base: u64, step: u64 },
    /// `id` as 16 lowercase hex digits (the `request.id` attribute).
    Hex,
}

impl Patch {
    fn len(self) -> usize {
        match self {
            Self::IdBe | Self::Fixed64 { .. } => 8,
            Self::Hex => 16,
        }
    }
}

/// One patched value: where, for which item of the request, what.
#[derive(Clone, Copy, Debug)]
struct Spot {
    at: usize,
    item: u64,
    patch: Patch,
}

/// An encoded request of `items` items and the offsets of its id-dependent values.
#[derive(Debug)]
pub(crate) struct Template {
    bytes: Vec<u8>,
    spots: Vec<Spot>,
    items: usize,
}

/// The patches of an item's fields: (field number, patch); attributes are handled apart.
fn field_patches(signal: Signal) -> &'static [(u32, Patch)] {
    const SPAN_START: Patch = Patch::Fixed64 {
        base: EPOCH_NS,
        step: SPAN_STEP_NS,
    };
    const SPAN_END: Patch = Patch::Fixed64 {
        base: EPOCH_NS + SPAN_DURATION_NS,
        step: SPAN_STEP_NS,
    };
    const PLAIN: Patch = Patch::Fixed64 { base: 0, step: 1 };
    const LOG_TIME: Patch = Patch::Fixed64 {
        base: EPOCH_NS,
        step: 1,
    };
    match signal {
        // trace_id, span_id, start_time_unix_nano, end_time_unix_nano
        Signal::Traces => &[
            (1, Patch::IdBe),
            (2, Patch::IdBe),
            (7, SPAN_START),
            (8, SPAN_END),
        ],
        // start_time_unix_nano, as_int
        Signal::Metrics => &[(2, PLAIN), (6, PLAIN)],
        // time_unix_nano, span_id
        Signal::Logs => &[(1, LOG_TIME), (10, Patch::IdBe)],
    }
}

/// The item's attributes field number.
fn attributes_field(signal: Signal) -> u32 {
    match signal {
        Signal::Traces => 9,
        Signal::Metrics => 7,
        Signal::Logs => 6,
    }
}

/// Where the `request.id` string value lies inside a `KeyValue` at `buf[kv]`, if it is one.
fn request_id_value(buf: &[u8], kv: std::ops::Range<usize>) -> Result<Option<usize>, WireError> {
    let mut key = false;
    let mut any = None;
    wire::fields(buf, kv, |f| {
        match f.number {
            1 => key = &buf[f.value.clone()] == REQUEST_ID.as_bytes(),
            2 => any = Some(f.value.clone()),
            _ => {}
        }
        Ok(())
    })?;
    let (true, Some(any)) = (key, any) else {
        return Ok(None);
    };
    let mut at = None;
    wire::fields(buf, any, |f| {
        if f.number == 1 && f.value.len() == 16 {
            at = Some(f.value.start);
        }
        Ok(())
    })?;
    Ok(at)
}

/// The encoded request for ids `first..first + items`.
fn encode(signal: Signal, first: u64, items: usize) -> Vec<u8> {
    match signal {
        Signal::Traces => generate::traces(first, items).encode_to_vec(),
        Signal::Metrics => generate::metrics(first, items).encode_to_vec(),
        Signal::Logs => generate::logs(first, items).encode_to_vec(),
    }
}

impl Template {
    /// Encodes the `signal` request of `items` items once and finds its patch offsets.
    /// Panics if writing the template for other ids does not give exactly what encoding
    /// those ids gives (a check made once, at start).
    pub(crate) fn new(signal: Signal, items: usize) -> Self {
        // Not from id 0: a zero start time would be a default value, left out of the encoding.
        let bytes = encode(signal, 1, items);
        let spots = Self::find_spots(signal, &bytes).expect("walk the generated request");
        let template = Self {
            bytes,
            spots,
            items,
        };
        // Ids with every byte and hex digit set, so a missed or misplaced spot shows.
        let first = 0x0012_3456_789a_bcde;
        let mut written = Vec::new();
        template.write(first, &mut written);
        assert!(
            written == encode(signal, first, items),
            "the {signal:?} template does not reproduce the generated request"
        );
        template
    }

    fn find_spots(signal: Signal, buf: &[u8]) -> Result<Vec<Spot>, WireError> {
        let patches = field_patches(signal);
        let attributes = attributes_field(signal);
        let mut spots = Vec::new();
        let mut item = 0u64;
        wire::items(signal, buf, |range| {
            wire::fields(buf, range, |f: &Field| {
                if let Some(&(_, patch)) = patches.iter().find(|(n, _)| *n == f.number) {
                    spots.push(Spot {
                        at: f.value.start,
                        item,
                        patch,
                    });
                } else if f.number == attributes && f.wire == WireType::LengthDelimited {
                    if let Some(at) = request_id_value(buf, f.value.clone())? {
                        spots.push(Spot {
                            at,
                            item,
                            patch: Patch::Hex,
                        });
                    }
                }
                Ok(())
            })?;
            item += 1;
            Ok(())
        })?;
        spots.sort_by_key(|s| s.at);
        Ok(spots)
    }

    /// The encoded size of one request.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Items per request.
    pub(crate) fn items(&self) -> usize {
        self.items
    }

    /// Appends the request for ids `first..first + items` to `dst`.
    pub(crate) fn write(&self, first: u64, dst: &mut impl BufMut) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut pos = 0;
        for spot in &self.spots {
            dst.put_slice(&self.bytes[pos..spot.at]);
            let id = first + spot.item;
            match spot.patch {
                Patch::IdBe => dst.put_u64(id),
                Patch::Fixed64 { base, step } => {
                    dst.put_u64_le(base.wrapping_add(id.wrapping_mul(step)))
                }
                Patch::Hex => {
                    let mut hex = [0u8; 16];
                    for (i, digit) in hex.iter_mut().enumerate() {
                        *digit = HEX[((id >> (60 - 4 * i)) & 0xf) as usize];
                    }
                    dst.put_slice(&hex);
                }
            }
            pos = spot.at + spot.patch.len();
        }
        dst.put_slice(&self.bytes[pos..]);
    }
}
