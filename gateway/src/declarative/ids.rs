//! Entity ids as Kong DB-less derives them: RFC 4122 UUIDv5 per schema name and key
//! (Kong/kong:kong/db/schema/others/declarative_config.lua `generate_uuid`).

use sha1::{Digest, Sha1};

/// Namespace of the per-schema namespaces.
const ROOT_NAMESPACE: &str = "fd02801f-0957-4a15-a55a-c8d9606f30b5";

/// Id of the default workspace in DB-less mode.
pub const DEFAULT_WORKSPACE_ID: &str = "0dc6f45b-8f8d-40d2-a504-473544ee190b";

fn parse(uuid: &str) -> Option<[u8; 16]> {
    let hex: String = uuid.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

fn format(bytes: &[u8; 16]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn uuid5(namespace: &[u8; 16], name: &str) -> [u8; 16] {
    let mut hasher = Sha1::new();
    hasher.update(namespace);
    hasher.update(name.as_bytes());
    let digest = hasher.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out[6] = (out[6] & 0x0f) | 0x50;
    out[8] = (out[8] & 0x3f) | 0x80;
    out
}

/// The deterministic id of the entity of `schema` (e.g. `services`) identified by `key`.
pub fn entity_id(schema: &str, key: &str) -> String {
    let root = parse(ROOT_NAMESPACE).unwrap_or_default();
    let namespace = uuid5(&root, schema);
    format(&uuid5(&namespace, key))
}

/// A random (v4) UUID, for entities without a natural key.
pub fn random_id() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    format(&bytes)
}

/// Whether `s` is a UUID in its textual form.
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_4122_vector() {
        // Python's uuid.uuid5(uuid.NAMESPACE_DNS, "python.org").
        let dns = parse("6ba7b810-9dad-11d1-80b4-00c04fd430c8").unwrap();
        assert_eq!(
            format(&uuid5(&dns, "python.org")),
            "886313e1-3b8a-5372-9b90-0c9aee199e5d"
        );
    }

    #[test]
    fn kong_ids_of_named_entities() {
        assert_eq!(
            entity_id("services", "ecommerce_coupon_service"),
            "7a68f69e-9561-5beb-a1d2-44ba1d9fb83a"
        );
        assert_eq!(
            entity_id("routes", "ecommerce_coupon_route"),
            "2a2e03ff-18f9-5463-97aa-eec924957e82"
        );
    }

    #[test]
    fn random_ids_are_v4() {
        let id = random_id();
        assert!(is_uuid(&id));
        assert_eq!(&id[14..15], "4");
    }
}
