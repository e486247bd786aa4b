//! Splitting a byte stream into tokens (stanza's `split` and `trim` packages): newline
//! (default), `multiline` start/end patterns, or none (`nop` encoding); tokens trimmed of
//! `\r\n\t ` unless told to preserve whitespace.

use regex::bytes::Regex;

/// How tokens are delimited.
#[derive(Clone, Debug)]
pub enum Mode {
    /// `\n`, a trailing `\r` dropped.
    Newline,
    /// UTF-16 `\n` (two bytes), little or big endian.
    Utf16Newline {
        /// Little endian.
        little_endian: bool,
    },
    /// A token starts where the pattern matches.
    LineStart {
        /// The pattern, compiled with `(?m)`.
        re: Regex,
        /// Leave the matched text out of the token.
        omit: bool,
    },
    /// A token ends where the pattern match ends.
    LineEnd {
        /// The pattern, compiled with `(?m)`.
        re: Regex,
        /// Leave the matched text out of the token.
        omit: bool,
    },
    /// No splitting: tokens of `max` bytes, the rest at end of stream.
    None,
}

/// Which whitespace to trim from tokens.
#[derive(Clone, Copy, Debug, Default)]
pub struct Trim {
    /// Keep leading whitespace.
    pub preserve_leading: bool,
    /// Keep trailing whitespace.
    pub preserve_trailing: bool,
}

fn is_space(b: u8) -> bool {
    matches!(b, b'\r' | b'\n' | b'\t' | b' ')
}

impl Trim {
    /// The trimmed range of `token`.
    pub fn apply<'a>(&self, mut token: &'a [u8]) -> &'a [u8] {
        if !self.preserve_leading {
            while let [first, rest @ ..] = token {
                if !is_space(*first) {
                    break;
                }
                token = rest;
            }
        }
        if !self.preserve_trailing {
            while let [rest @ .., last] = token {
                if !is_space(*last) {
                    break;
                }
                token = rest;
            }
        }
        token
    }
}

/// The buffer outgrew the token size limit (bufio's `token too long`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("bufio.Scanner: token too long")]
pub struct TooLong;

/// A token found in the buffer: consume `advance` bytes, the token is `start..end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    /// Bytes to drop from the front of the buffer.
    pub advance: usize,
    /// Token start.
    pub start: usize,
    /// Token end.
    pub end: usize,
}

/// A splitter with its limit.
#[derive(Clone, Debug)]
pub struct Splitter {
    /// The mode.
    pub mode: Mode,
    /// Largest token (and buffer) in bytes.
    pub max: usize,
}

impl Splitter {
    /// The next token in `data`, `None` to read more. `scan_from` says where a newline
    /// search may start (bytes before it were already searched). At end of stream
    /// (`eof`) what is left is flushed as a final token.
    ///
    /// # Errors
    /// [`TooLong`] when no token fits in `max` bytes.
    pub fn next(&self, data: &[u8], scan_from: usize, eof: bool) -> Result<Option<Token>, TooLong> {
        if data.is_empty() {
            return Ok(None);
        }
        let found = match &self.mode {
            Mode::Newline => memchr::memchr(b'\n', &data[scan_from.min(data.len())..]).map(|i| {
                let i = i + scan_from;
                let end = if i > 0 && data[i - 1] == b'\r' {
                    i - 1
                } else {
                    i
                };
                Token {
                    advance: i + 1,
                    start: 0,
                    end,
                }
            }),
            Mode::Utf16Newline { little_endian } => {
                let pat: [u8; 2] = if *little_endian {
                    [b'\n', 0]
                } else {
                    [0, b'\n']
                };
                let cr: [u8; 2] = if *little_endian {
                    [b'\r', 0]
                } else {
                    [0, b'\r']
                };
                let from = scan_from & !1;
                (from..data.len().saturating_sub(1))
                    .step_by(2)
                    .find(|&i| data[i..i + 2] == pat)
                    .map(|i| {
                        let end = if i >= 2 && data[i - 2..i] == cr {
                            i - 2
                        } else {
                            i
                        };
                        Token {
                            advance: i + 2,
                            start: 0,
                            end,
                        }
                    })
            }
            Mode::LineStart { re, omit } => line_start(re, *omit, data, eof),
            Mode::LineEnd { re, omit } => line_end(re, *omit, data, eof),
            Mode::None => (data.len() >= self.max).then_some(Token {
                advance: self.max,
                start: 0,
                end: self.max,
            }),
        };
        if let Some(t) = found {
            if t.end - t.start > self.max {
                return Err(TooLong);
            }
            return Ok(Some(t));
        }
        if eof {
            let end = data.len().min(self.max);
            return Ok(Some(Token {
                advance: end,
                start: 0,
                end,
            }));
        }
        if data.len() >= self.max {
            return Err(TooLong);
        }
        Ok(None)
    }

    /// Where the next newline search may start after `len` bytes were searched in vain.
    pub fn resume_at(&self, len: usize) -> usize {
        match self.mode {
            Mode::Newline | Mode::Utf16Newline { .. } => len.saturating_sub(1),
            _ => 0,
        }
    }
}

fn line_start(re: &Regex, omit: bool, data: &[u8], eof: bool) -> Option<Token> {
    let first = re.find(data)?;
    if first.start() != 0
        && !data[..first.start()]
            .iter()
            .all(|b| b.is_ascii_whitespace())
    {
        // Text before the first match is a token of its own, so nothing is lost.
        return Some(Token {
            advance: first.start(),
            start: 0,
            end: first.start(),
        });
    }
    if first.end() == data.len() {
        return None;
    }
    if eof {
        let start = if omit { first.end() } else { first.start() };
        return Some(Token {
            advance: data.len(),
            start,
            end: data.len(),
        });
    }
    let from = first.end() + 1;
    if from > data.len() {
        return None;
    }
    let second = re.find(&data[from..])?;
    let second_start = second.start() + from;
    let start = if omit { first.end() } else { first.start() };
    Some(Token {
        advance: second_start,
        start,
        end: second_start,
    })
}

fn line_end(re: &Regex, omit: bool, data: &[u8], eof: bool) -> Option<Token> {
    let m = re.find(data)?;
    if m.end() + 1 == data.len() && !eof {
        return None;
    }
    let end = if omit { m.start() } else { m.end() };
    Some(Token {
        advance: m.end().max(1),
        start: 0,
        end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(s: &Splitter, data: &[u8]) -> (Vec<String>, Result<(), TooLong>) {
        let mut out = Vec::new();
        let mut rest = data;
        let mut eof = false;
        loop {
            match s.next(rest, 0, eof) {
                Ok(Some(t)) => {
                    out.push(String::from_utf8_lossy(&rest[t.start..t.end]).into_owned());
                    rest = &rest[t.advance..];
                    if rest.is_empty() {
                        return (out, Ok(()));
                    }
                }
                Ok(None) if !eof => eof = true,
                Ok(None) => return (out, Ok(())),
                Err(e) => return (out, Err(e)),
            }
        }
    }

    #[test]
    fn newline_crlf_empty_lines_and_final_flush() {
        let s = Splitter {
            mode: Mode::Newline,
            max: 1024,
        };
        let (t, r) = tokens(&s, b"a\r\n\nb\nlast");
        assert_eq!(t, vec!["a", "", "b", "last"]);
        assert!(r.is_ok());
        assert_eq!(s.next(b"partial", 0, false), Ok(None));
        let small = Splitter {
            mode: Mode::Newline,
            max: 4,
        };
        assert_eq!(small.next(b"toolong", 0, false), Err(TooLong));
        assert_eq!(small.next(b"toolong\n", 0, false), Err(TooLong));
    }

    #[test]
    fn multiline_start_and_end() {
        let re = Regex::new("(?m)^\\d{4}").unwrap();
        let s = Splitter {
            mode: Mode::LineStart { re, omit: false },
            max: 1024,
        };
        let (t, _) = tokens(&s, b"2024 a\n  more\n2025 b\n");
        assert_eq!(t, vec!["2024 a\n  more\n", "2025 b\n"]);
        let re = Regex::new("(?m);$").unwrap();
        let s = Splitter {
            mode: Mode::LineEnd { re, omit: true },
            max: 1024,
        };
        let (t, _) = tokens(&s, b"a\nb;\nc;\n");
        assert_eq!(t, vec!["a\nb", "\nc", "\n"]);
    }

    #[test]
    fn trim_and_utf16() {
        let t = Trim::default();
        assert_eq!(t.apply(b" \tx y\r\n"), b"x y");
        let keep = Trim {
            preserve_leading: true,
            preserve_trailing: false,
        };
        assert_eq!(keep.apply(b" x "), b" x");
        let s = Splitter {
            mode: Mode::Utf16Newline {
                little_endian: true,
            },
            max: 64,
        };
        let tok = s.next(b"h\0i\0\n\0x\0", 0, false).unwrap().unwrap();
        assert_eq!((tok.end, tok.advance), (4, 6));
    }
}
