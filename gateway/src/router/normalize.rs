//! Request path normalization and escaping (Kong/kong:kong/tools/uri.lua).

/// Characters that stay percent-encoded when normalizing.
const RESERVED: &[u8] = b"!*'();:@&=+$,/?%#[]";

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Normalizes a request path as Kong does before matching: percent-encoded characters other
/// than reserved ones decoded (hex of the rest uppercased), dot segments resolved, duplicate
/// slashes merged.
pub fn normalize_path(path: &str) -> String {
    // Nothing to decode, merge or resolve: the path is already normal.
    if path.starts_with('/') && !path.contains('%') && !path.contains("//") && !path.contains("/.")
    {
        return path.to_owned();
    }
    normalize_general(path)
}

fn normalize_general(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut decoded = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                let c = h * 16 + l;
                if c.is_ascii() && !c.is_ascii_control() && !RESERVED.contains(&c) && c != b' ' {
                    decoded.push(c as char);
                } else {
                    decoded.push('%');
                    decoded.push(bytes[i + 1].to_ascii_uppercase() as char);
                    decoded.push(bytes[i + 2].to_ascii_uppercase() as char);
                }
                i += 3;
                continue;
            }
        }
        // Multi-byte UTF-8 sequences are copied whole.
        let len = utf8_len(b);
        let end = (i + len).min(bytes.len());
        decoded.push_str(path.get(i..end).unwrap_or("?"));
        i = end;
    }
    let merged = merge_slashes(&decoded);
    remove_dot_segments(&merged)
}

fn utf8_len(b: u8) -> usize {
    match b {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

fn merge_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut last_slash = false;
    for c in path.chars() {
        if c == '/' {
            if !last_slash {
                out.push(c);
            }
            last_slash = true;
        } else {
            out.push(c);
            last_slash = false;
        }
    }
    out
}

/// RFC 3986 section 5.2.4.
fn remove_dot_segments(path: &str) -> String {
    let mut input = path;
    let mut output: Vec<&str> = Vec::new();
    while !input.is_empty() {
        if let Some(rest) = input.strip_prefix("../") {
            input = rest;
        } else if let Some(rest) = input.strip_prefix("./") {
            input = rest;
        } else if input.starts_with("/./") {
            input = &input[2..];
        } else if input == "/." {
            input = "/";
        } else if input.starts_with("/../") {
            input = &input[3..];
            output.pop();
        } else if input == "/.." {
            input = "/";
            output.pop();
        } else if input == "." || input == ".." {
            input = "";
        } else {
            let start = usize::from(input.starts_with('/'));
            let end = input[start..].find('/').map_or(input.len(), |i| i + start);
            output.push(&input[..end]);
            input = &input[end..];
            continue;
        }
    }
    let joined: String = output.concat();
    if joined.is_empty() && path.starts_with('/') {
        "/".to_owned()
    } else {
        joined
    }
}

/// Characters sent upstream unescaped.
fn keep(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$&'()*+,/:;=?@[]-_.~%".contains(&c)
}

/// Percent-escapes characters outside Kong's allowed set for the upstream path.
pub fn escape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for &b in path.as_bytes() {
        if keep(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_paths_take_the_short_way_with_the_same_result() {
        for path in ["/", "/bench", "/a/b/", "/a.b/c-d_e~f", "/é/x", "/a;b=c"] {
            assert_eq!(normalize_path(path), normalize_general(path), "{path}");
            assert_eq!(normalize_path(path), path);
        }
        assert_eq!(normalize_path("/a//b/./c/../d"), "/a/b/d");
    }

    #[test]
    fn decodes_unreserved_keeps_reserved_uppercased() {
        assert_eq!(normalize_path("/a%2Eb"), "/a.b");
        assert_eq!(normalize_path("/%7euser"), "/~user");
        assert_eq!(normalize_path("/a%2fb"), "/a%2Fb");
        assert_eq!(normalize_path("/a%3f"), "/a%3F");
    }

    #[test]
    fn resolves_dots_and_slashes() {
        assert_eq!(normalize_path("/a/./b/../c"), "/a/c");
        assert_eq!(normalize_path("//a///b"), "/a/b");
        assert_eq!(normalize_path("/a/.."), "/");
        assert_eq!(normalize_path("/../a"), "/a");
        assert_eq!(normalize_path("/a/b/"), "/a/b/");
        assert_eq!(normalize_path("/route./req"), "/route./req");
        assert_eq!(normalize_path("/"), "/");
    }

    #[test]
    fn escapes_outside_allowed_set() {
        assert_eq!(escape("/a b"), "/a%20b");
        assert_eq!(escape("/ü"), "/%C3%BC");
        assert_eq!(escape("/a%2Fb"), "/a%2Fb");
    }
}
