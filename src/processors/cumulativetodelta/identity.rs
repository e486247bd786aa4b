//! Series identity as bytes: resource + scope + metric + start time + point attributes.
//!
//! Attribute sets are written sorted by key, so two points whose attributes differ only in
//! order are one series (as pdata's map hash treats them).

use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use prost::Message;

/// Appends `attrs`, sorted by key, to `out`.
pub(super) fn write_attributes(attrs: &[KeyValue], out: &mut Vec<u8>) {
    let mut sorted: Vec<&KeyValue> = attrs.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    out.extend_from_slice(&(sorted.len() as u32).to_le_bytes());
    for kv in sorted {
        write_str(&kv.key, out);
        match &kv.value {
            Some(v) => {
                // Length-delimited, so one value cannot run into the next key.
                let len = v.encoded_len();
                out.extend_from_slice(&(len as u32).to_le_bytes());
                v.encode_raw(out);
            }
            None => out.extend_from_slice(&u32::MAX.to_le_bytes()),
        }
    }
}

/// Appends a length-prefixed string.
pub(super) fn write_str(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Appends the scope's name, version and attributes.
pub(super) fn write_scope(scope: Option<&InstrumentationScope>, out: &mut Vec<u8>) {
    let (name, version, attrs) = scope.map_or(("", "", &[][..]), |s| {
        (s.name.as_str(), s.version.as_str(), s.attributes.as_slice())
    });
    write_str(name, out);
    write_str(version, out);
    write_attributes(attrs, out);
}
