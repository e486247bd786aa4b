//! A compact JSON writer over one output buffer, escaping strings as the wire line needs:
//! `"`, `\` and control characters as JSON requires (`\b \f \n \r \t`, others `\u00XX`),
//! and `/` as `\/` (lua-cjson). Written by hand because serde_json's string writer scans each
//! byte against its table and hands the safe runs to a formatter that scans them again for
//! `/`; here one pass checks eight bytes at a time.

/// What follows the backslash for each byte: 0 for bytes written as they are, `u` for
/// `\u00XX`.
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table[b'/' as usize] = b'/';
    table
};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether one of the eight bytes of `word` is a control character, `"`, `\` or `/`.
#[inline]
fn word_needs_escape(word: u64) -> bool {
    // A byte below 0x20: subtracting 0x20 borrows into its high bit, which was clear.
    let control = word.wrapping_sub(ONES * 0x20) & !word;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x;
    let quote = zero(word ^ (ONES * u64::from(b'"')));
    let backslash = zero(word ^ (ONES * u64::from(b'\\')));
    let slash = zero(word ^ (ONES * u64::from(b'/')));
    (control | quote | backslash | slash) & HIGHS != 0
}

fn write_escape(out: &mut Vec<u8>, byte: u8, code: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    if code == b'u' {
        out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[usize::from(byte >> 4)],
            HEX[usize::from(byte & 0x0f)],
        ]);
    } else {
        out.extend_from_slice(&[b'\\', code]);
    }
}

/// Appends `bytes` escaped, without quotes.
pub fn escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut start = 0;
    let mut i = 0;
    while i + 8 <= bytes.len() {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[i..i + 8]);
        if !word_needs_escape(u64::from_le_bytes(word)) {
            i += 8;
            continue;
        }
        for (j, &b) in word.iter().enumerate() {
            let code = ESCAPE[usize::from(b)];
            if code != 0 {
                out.extend_from_slice(&bytes[start..i + j]);
                write_escape(out, b, code);
                start = i + j + 1;
            }
        }
        i += 8;
    }
    for (j, &b) in bytes[i..].iter().enumerate() {
        let code = ESCAPE[usize::from(b)];
        if code != 0 {
            out.extend_from_slice(&bytes[start..i + j]);
            write_escape(out, b, code);
            start = i + j + 1;
        }
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Appends `s` as a quoted, escaped JSON string.
pub fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    escaped(out, s.as_bytes());
    out.push(b'"');
}

/// Appends an unsigned integer.
pub fn unsigned(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends a signed integer.
pub fn signed(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends a float as serde_json writes it (`null` when not finite).
pub fn float(out: &mut Vec<u8>, f: f64) {
    if serde_json::to_writer(&mut *out, &f).is_err() {
        out.extend_from_slice(b"null");
    }
}

/// One JSON object being written: keys go in the order they are given.
pub struct Object<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Object<'a> {
    /// Opens an object.
    pub fn open(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, first: true }
    }

    /// Writes a key that needs no escaping (the serializer's own key names) and returns the
    /// buffer for its value.
    pub fn key(&mut self, key: &'static str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    /// Writes a key from the request (escaped) and returns the buffer for its value.
    pub fn dynamic_key(&mut self, key: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        string(self.out, key);
        self.out.push(b':');
        self.out
    }

    /// Closes the object.
    pub fn close(self) {
        self.out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn via_serde(s: &str) -> String {
        super::super::wire::to_line(s, 64).trim_end().to_owned()
    }

    #[test]
    fn strings_escape_as_the_serde_path_does() {
        let mut cases: Vec<String> = vec![
            String::new(),
            "plain ascii text of some length".into(),
            "/a/b/c?x=1&y=/z".into(),
            "quote \" backslash \\ slash / done".into(),
            "\u{7f} del and é ü 中文 🎉 mixed / in".into(),
            "12345678\"".into(),
            "1234567/".into(),
        ];
        // Every byte value below 0x80 at every offset of an eight-byte word.
        for b in 0u8..0x80 {
            for offset in 0..9 {
                let mut s = "x".repeat(offset);
                s.push(char::from(b));
                s.push_str("tail-of-text");
                cases.push(s);
            }
        }
        for case in cases {
            let mut out = Vec::new();
            string(&mut out, &case);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                via_serde(&case),
                "{case:?}"
            );
        }
    }

    #[test]
    fn numbers_are_written_as_serde_json_writes_them() {
        for f in [0.0, 1.5, 1.738765016123e18, -2.25, f64::NAN] {
            let mut out = Vec::new();
            float(&mut out, f);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&f).unwrap()
            );
        }
        let mut out = Vec::new();
        signed(&mut out, -1);
        out.push(b' ');
        unsigned(&mut out, u64::MAX);
        assert_eq!(out, b"-1 18446744073709551615");
    }

    #[test]
    fn objects_separate_their_entries() {
        let mut out = Vec::new();
        let mut o = Object::open(&mut out);
        unsigned(o.key("a"), 1);
        string(o.dynamic_key("b/\""), "c");
        o.close();
        assert_eq!(out, br#"{"a":1,"b\/\"":"c"}"#);
    }
}
