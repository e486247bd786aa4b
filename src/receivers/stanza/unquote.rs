//! `unquote`: replaces a quoted string field with its content, with Go's `strconv.Unquote`
//! rules (what stanza applies): `"…"` with Go escapes, `` `…` `` raw (carriage returns
//! dropped), `'c'` for exactly one character.
//!
//! ```yaml
//! - type: unquote
//!   field: attributes.foo
//! ```
//!
//! Written here rather than taken from a crate because the accepted escapes (`\xNN`, octal
//! `\NNN`, `\u`, `\U`, `\'` only in single quotes) are Go's, which no JSON or Rust string
//! unescaper matches.

use super::build::{common, required, Empty, Section};
use super::entry::Entry;
use super::field::Field;
use super::{value, Kind, Transform};
use crate::config::FieldError;

/// The operator.
#[derive(Debug)]
pub struct Unquote {
    /// The string field to unquote.
    pub field: Field,
}

/// Reads `field` and the common keys.
pub(super) fn build(mut s: Section) -> Result<Kind, FieldError> {
    let (cond, on_error) = common(&mut s)?;
    let field = required(s.take_field("field")?, "field")?;
    s.rest::<Empty>()?;
    Ok(Kind::Transform {
        op: Box::new(Unquote { field }),
        cond,
        on_error,
    })
}

impl Transform for Unquote {
    fn apply(&self, entry: &mut Entry) -> Result<(), String> {
        // A missing field is no error for stanza's unquote: the entry passes unchanged.
        let Some(current) = self.field.get(entry) else {
            return Ok(());
        };
        let Some(text) = value::as_str(&current) else {
            return Err(format!(
                "type {} cannot be unquoted",
                value::go_type(&current)
            ));
        };
        let unquoted = unquote(text).ok_or_else(|| "invalid syntax".to_owned())?;
        self.field
            .set(entry, value::string(unquoted))
            .map_err(|e| e.to_string())
    }
}

/// Go's `strconv.Unquote`; `None` is its `ErrSyntax`.
pub fn unquote(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    if bytes.len() < 2 {
        return None;
    }
    let quote = bytes[0];
    if quote != bytes[bytes.len() - 1] {
        return None;
    }
    let inner = &text[1..text.len() - 1];
    match quote {
        b'`' => {
            if inner.contains('`') {
                return None;
            }
            Some(inner.replace('\r', ""))
        }
        b'"' | b'\'' => unescape(inner, quote),
        _ => None,
    }
}

fn hex_digits(chars: &mut std::str::Chars<'_>, count: usize) -> Option<u32> {
    let mut v = 0u32;
    for _ in 0..count {
        v = v * 16 + chars.next()?.to_digit(16)?;
    }
    Some(v)
}

/// The body of a `"…"` or `'…'` literal. Bytes from `\x` and octal escapes may form
/// invalid UTF-8, which becomes U+FFFD (an OTLP string must be UTF-8).
fn unescape(inner: &str, quote: u8) -> Option<String> {
    let mut out: Vec<u8> = Vec::with_capacity(inner.len());
    let mut chars = inner.chars();
    let mut count = 0usize;
    while let Some(c) = chars.next() {
        count += 1;
        match c {
            '\n' => return None,
            '\\' => {}
            c if c as u32 == u32::from(quote) => return None,
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                continue;
            }
        }
        let escaped = chars.next()?;
        let simple = match escaped {
            'a' => Some(0x07u8),
            'b' => Some(0x08),
            'f' => Some(0x0c),
            'n' => Some(b'\n'),
            'r' => Some(b'\r'),
            't' => Some(b'\t'),
            'v' => Some(0x0b),
            '\\' => Some(b'\\'),
            '\'' | '"' if escaped as u32 == u32::from(quote) => Some(quote),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            continue;
        }
        match escaped {
            'x' => out.push(u8::try_from(hex_digits(&mut chars, 2)?).ok()?),
            '0'..='7' => {
                let mut v = escaped.to_digit(8)?;
                for _ in 0..2 {
                    v = v * 8 + chars.next()?.to_digit(8)?;
                }
                out.push(u8::try_from(v).ok()?);
            }
            'u' | 'U' => {
                let n = if escaped == 'u' { 4 } else { 8 };
                let c = char::from_u32(hex_digits(&mut chars, n)?)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            _ => return None,
        }
    }
    if quote == b'\'' && count == 0 {
        return None;
    }
    let text = match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    if quote == b'\'' && text.chars().count() != 1 {
        return None;
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::unquote;

    #[test]
    fn go_unquote_rules() {
        for (input, want) in [
            (r#""hello""#, Some("hello")),
            ("`bar`", Some("bar")),
            ("'v'", Some("v")),
            (
                r#""a\tb\n\"q\" \x41\101\u263a\U0001F600""#,
                Some("a\tb\n\"q\" AA☺😀"),
            ),
            ("`a\r\nb`", Some("a\nb")),
            ("'\\''", Some("'")),
            ("'☺'", Some("☺")),
            (r#""\u00e9""#, Some("é")),
            ("hello", None),
            (r#""unterminated"#, None),
            ("\"", None),
            ("''", None),
            ("'ab'", None),
            (r#""a"b""#, None),
            (r#""\'""#, None),
            (r#""\q""#, None),
            (r#""\400""#, None),
            (r#""\uD800""#, None),
            ("\"a\nb\"", None),
            ("`a`b`", None),
            ("'\"'", Some("\"")),
            (r#""'""#, Some("'")),
        ] {
            assert_eq!(unquote(input).as_deref(), want, "{input:?}");
        }
    }
}
