//! The sample-line grammar both formats share: `name{label="value",…} value [timestamp]`.

use super::Sample;

/// Format differences inside one sample line.
#[derive(Clone, Copy)]
pub(super) struct Dialect {
    /// OpenMetrics: exactly one space between tokens, no trailing comma in label sets,
    /// only `\\`, `\"`, `\n` escapes, float-seconds timestamps, exemplars.
    pub(super) openmetrics: bool,
}

/// A sample line split into its parts.
pub(super) struct Line {
    pub(super) sample: Sample,
    /// True when an exemplar (` # {…} v`) followed the sample.
    pub(super) exemplar: bool,
}

/// True for a valid metric name `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// True for a valid label name `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    /// Skips the separator between tokens; OpenMetrics wants exactly one space.
    fn separator(&mut self, dialect: Dialect) -> Result<(), String> {
        if dialect.openmetrics {
            if self.peek() != Some(b' ') {
                return Err("expected a single space".to_owned());
            }
            self.pos += 1;
            if matches!(self.peek(), Some(b' ' | b'\t')) {
                return Err("expected a single space, found more whitespace".to_owned());
            }
            Ok(())
        } else {
            if self.take_while(|b| b == b' ' || b == b'\t').is_empty() {
                return Err("expected whitespace".to_owned());
            }
            Ok(())
        }
    }
}

/// Parses one sample line.
pub(super) fn sample_line(line: &str, dialect: Dialect) -> Result<Line, String> {
    let mut cur = Cursor { text: line, pos: 0 };
    if !dialect.openmetrics {
        cur.take_while(|b| b == b' ' || b == b'\t');
    }
    let name = cur.take_while(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':');
    if !is_metric_name(name) {
        return Err(match cur.peek() {
            _ if name.is_empty() => format!("invalid metric name at {:?}", first_token(cur.rest())),
            _ => format!("invalid metric name {name:?}"),
        });
    }
    let labels = if cur.peek() == Some(b'{') {
        cur.pos += 1;
        label_set(&mut cur, dialect)?
    } else {
        Vec::new()
    };
    cur.separator(dialect)
        .map_err(|e| format!("{e} after metric name and labels"))?;
    let value_text = cur.take_while(|b| b != b' ' && b != b'\t');
    let value = parse_value(value_text)?;
    let mut timestamp_ms = None;
    let mut exemplar = false;
    if cur.peek().is_some() {
        cur.separator(dialect)?;
        if dialect.openmetrics && cur.peek() == Some(b'#') {
            exemplar_part(&mut cur, dialect)?;
            exemplar = true;
        } else if !dialect.openmetrics && cur.peek().is_none() {
            // Trailing whitespace after the value.
        } else {
            let ts_text = cur.take_while(|b| b != b' ' && b != b'\t');
            timestamp_ms = Some(parse_timestamp(ts_text, dialect)?);
            if cur.peek().is_some() {
                cur.separator(dialect)?;
                if dialect.openmetrics && cur.peek() == Some(b'#') {
                    exemplar_part(&mut cur, dialect)?;
                    exemplar = true;
                } else if dialect.openmetrics || !cur.rest().trim().is_empty() {
                    return Err(format!(
                        "unexpected text after the timestamp: {:?}",
                        first_token(cur.rest())
                    ));
                }
            }
        }
    }
    if cur.peek().is_some() {
        return Err(format!("unexpected text {:?}", first_token(cur.rest())));
    }
    Ok(Line {
        sample: Sample {
            name: name.to_owned(),
            labels,
            value,
            timestamp_ms,
        },
        exemplar,
    })
}

fn first_token(text: &str) -> &str {
    let end = text.char_indices().nth(20).map_or(text.len(), |(i, _)| i);
    &text[..end]
}

/// `label="value",…}` after the opening brace.
fn label_set(cur: &mut Cursor<'_>, dialect: Dialect) -> Result<Vec<(String, String)>, String> {
    let mut labels: Vec<(String, String)> = Vec::new();
    loop {
        if !dialect.openmetrics {
            cur.take_while(|b| b == b' ' || b == b'\t');
        }
        if cur.peek() == Some(b'}') {
            if dialect.openmetrics && !labels.is_empty() {
                return Err("trailing comma in label set".to_owned());
            }
            cur.pos += 1;
            return Ok(labels);
        }
        let name = cur.take_while(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !is_label_name(name) {
            return Err(format!(
                "invalid label name at {:?}",
                first_token(&cur.text[cur.pos - name.len()..])
            ));
        }
        if !dialect.openmetrics {
            cur.take_while(|b| b == b' ' || b == b'\t');
        }
        if cur.peek() != Some(b'=') {
            return Err(format!("expected '=' after label name {name:?}"));
        }
        cur.pos += 1;
        if !dialect.openmetrics {
            cur.take_while(|b| b == b' ' || b == b'\t');
        }
        if cur.peek() != Some(b'"') {
            return Err(format!("expected '\"' to open the value of label {name:?}"));
        }
        cur.pos += 1;
        let value = label_value(cur, dialect)?;
        if labels.iter().any(|(k, _)| k == name) {
            return Err(format!("duplicate label name {name:?}"));
        }
        labels.push((name.to_owned(), value));
        if !dialect.openmetrics {
            cur.take_while(|b| b == b' ' || b == b'\t');
        }
        match cur.peek() {
            Some(b',') => {
                cur.pos += 1;
                if dialect.openmetrics && cur.peek() == Some(b'}') {
                    return Err("trailing comma in label set".to_owned());
                }
            }
            Some(b'}') => {
                cur.pos += 1;
                return Ok(labels);
            }
            _ => return Err("expected ',' or '}' after a label value".to_owned()),
        }
    }
}

fn label_value(cur: &mut Cursor<'_>, dialect: Dialect) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = cur.rest().char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                cur.pos += i + 1;
                return Ok(out);
            }
            '\\' => match chars.next() {
                Some((_, '\\')) => out.push('\\'),
                Some((_, '"')) => out.push('"'),
                Some((_, 'n')) => out.push('\n'),
                Some((_, other)) if !dialect.openmetrics => {
                    out.push('\\');
                    out.push(other);
                }
                Some((_, other)) => return Err(format!("invalid escape sequence \\{other}")),
                None => break,
            },
            '\n' => return Err("line break inside a label value".to_owned()),
            c => out.push(c),
        }
    }
    Err("unterminated label value".to_owned())
}

/// Parses a sample value: a float, `NaN`, `+Inf`, `-Inf` (Go's `ParseFloat` set).
pub(super) fn parse_value(text: &str) -> Result<f64, String> {
    if text.is_empty() {
        return Err("missing value".to_owned());
    }
    let valid_chars = text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-'));
    match text.parse::<f64>() {
        Ok(v) if valid_chars => Ok(v),
        _ => Err(format!("invalid value {:?}", first_token(text))),
    }
}

/// Parses a timestamp to milliseconds: integer ms (text), float seconds (OpenMetrics).
fn parse_timestamp(text: &str, dialect: Dialect) -> Result<i64, String> {
    let bad = || format!("invalid timestamp {:?}", first_token(text));
    if dialect.openmetrics {
        let seconds = parse_value(text).map_err(|_| bad())?;
        if !seconds.is_finite() {
            return Err(bad());
        }
        Ok((seconds * 1000.0).round() as i64)
    } else {
        let digits = text.strip_prefix('-').unwrap_or(text);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        text.parse::<i64>().map_err(|_| bad())
    }
}

/// `# {labels} value [timestamp]` after a sample (OpenMetrics); validated, then discarded.
fn exemplar_part(cur: &mut Cursor<'_>, dialect: Dialect) -> Result<(), String> {
    cur.pos += 1;
    cur.separator(dialect)?;
    if cur.peek() != Some(b'{') {
        return Err("expected '{' to open the exemplar's labels".to_owned());
    }
    cur.pos += 1;
    let labels = label_set(cur, dialect)?;
    let runes: usize = labels
        .iter()
        .map(|(k, v)| k.chars().count() + v.chars().count())
        .sum();
    if runes > 128 {
        return Err("exemplar labels longer than 128 characters".to_owned());
    }
    cur.separator(dialect)?;
    parse_value(cur.take_while(|b| b != b' '))?;
    if cur.peek().is_some() {
        cur.separator(dialect)?;
        parse_timestamp(cur.take_while(|b| b != b' '), dialect)?;
    }
    Ok(())
}
