//! `syslog_parser`: RFC 3164 and RFC 5424 messages into `hostname`, `appname`, `proc_id`,
//! `msg_id`, `message`, `structured_data`, `version`, `priority`, `facility` (absent parts
//! left out); the syslog severity sets the entry's severity, the message time its
//! timestamp, as stanza does.
//!
//! ```yaml
//! - type: syslog_parser
//!   protocol: rfc5424          # or rfc3164 (required)
//!   location: UTC              # time zone of RFC 3164 stamps: UTC (default) or Local
//!   allow_skip_pri_header: false
//!   enable_octet_counting: false
//!   non_transparent_framing_trailer: LF   # or NUL; rfc5424 only
//! ```
//!
//! Both grammars are written here, after the strict (not best-effort) machines of
//! go-syslog that stanza uses; the Rust syslog crates are lenient where those are strict,
//! which would turn stanza's parse errors into half-parsed records.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use serde::Deserialize;

use super::build::{common, parser, Section};
use super::entry::Entry;
use super::field::Root;
use super::parse::{Parser, Unused};
use super::{value, Kind, Transform};
use crate::config::FieldError;

/// The operator's own keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct SyslogConfig {
    protocol: Option<String>,
    location: Option<String>,
    enable_octet_counting: bool,
    allow_skip_pri_header: bool,
    non_transparent_framing_trailer: Option<String>,
}

/// Which grammar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// BSD syslog.
    Rfc3164,
    /// IETF syslog.
    Rfc5424,
}

/// How RFC 5424 messages are framed inside the field (RFC 6587).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// The field is one message.
    None,
    /// `LEN SP MSG`.
    OctetCounting,
    /// The message ends at the first trailer byte.
    Trailer(u8),
}

/// The operator.
#[derive(Debug)]
pub struct SyslogParser {
    /// The common parser keys (its `format` is unused).
    pub common: Parser,
    /// The grammar.
    pub protocol: Protocol,
    /// RFC 3164 stamps are in UTC (else local time).
    pub utc: bool,
    /// Framing of RFC 5424 input.
    pub framing: Framing,
    /// A missing `<PRI>` is no error; priority, facility and severity are then left out.
    pub allow_skip_pri_header: bool,
    /// The user gave a `timestamp:` block: the message time is left to it.
    pub own_time: bool,
}

/// Reads the syslog keys, the parser keys and the common keys.
pub(super) fn build(mut s: Section) -> Result<Kind, FieldError> {
    let (cond, on_error) = common(&mut s)?;
    let p = parser(&mut s, Box::new(Unused))?;
    let c: SyslogConfig = s.rest()?;
    let proto = c.protocol.unwrap_or_default().to_ascii_lowercase();
    let trailer = c.non_transparent_framing_trailer;
    if proto.is_empty() {
        return Err(FieldError::at(&["protocol"], "missing field 'protocol'"));
    }
    if proto != "rfc5424" && (trailer.is_some() || c.enable_octet_counting) {
        return Err(FieldError::new(
            "octet_counting and non_transparent_framing are only compatible with protocol rfc5424",
        ));
    }
    let protocol = match proto.as_str() {
        "rfc3164" => Protocol::Rfc3164,
        "rfc5424" => Protocol::Rfc5424,
        other => {
            return Err(FieldError::at(
                &["protocol"],
                format!("unsupported protocol version: {other}"),
            ))
        }
    };
    let framing = match (c.enable_octet_counting, trailer.as_deref()) {
        (true, Some(_)) => {
            return Err(FieldError::new(
                "only one of octet_counting or non_transparent_framing can be enabled",
            ))
        }
        (true, None) => Framing::OctetCounting,
        (false, Some("LF")) => Framing::Trailer(b'\n'),
        (false, Some("NUL")) => Framing::Trailer(0),
        (false, Some(other)) => {
            return Err(FieldError::at(
                &["non_transparent_framing_trailer"],
                format!(
                "invalid non_transparent_framing_trailer '{other}'. Must be either 'LF' or 'NUL'"
            ),
            ))
        }
        (false, None) => Framing::None,
    };
    let utc = match c.location.as_deref() {
        None | Some("" | "UTC" | "Etc/UTC") => true,
        Some("Local") => false,
        Some(other) => {
            return Err(FieldError::at(
                &["location"],
                format!("failed to load location {other}: only UTC and Local are supported"),
            ))
        }
    };
    let own_time = p.time.is_some();
    Ok(Kind::Transform {
        op: Box::new(SyslogParser {
            common: p,
            protocol,
            utc,
            framing,
            allow_skip_pri_header: c.allow_skip_pri_header,
            own_time,
        }),
        cond,
        on_error,
    })
}

/// STRUCTURED-DATA: element id → its params, both in order.
pub type StructuredData = Vec<(String, Vec<(String, String)>)>;

/// One parsed message; `None` parts are left out of the map.
#[derive(Debug, Default, PartialEq)]
pub struct Message {
    /// PRI.
    pub priority: Option<u8>,
    /// VERSION (RFC 5424).
    pub version: Option<u16>,
    /// Unix ns.
    pub timestamp: Option<i64>,
    /// HOSTNAME.
    pub hostname: Option<String>,
    /// APP-NAME / TAG.
    pub appname: Option<String>,
    /// PROCID.
    pub proc_id: Option<String>,
    /// MSGID.
    pub msg_id: Option<String>,
    /// STRUCTURED-DATA: element id → params, in order.
    pub structured_data: Option<StructuredData>,
    /// MSG.
    pub message: Option<String>,
}

/// Stanza's syslog severity → OTLP severity number and text.
const SEVERITIES: [(i32, &str); 8] = [
    (21, "emerg"),
    (19, "alert"),
    (18, "crit"),
    (17, "err"),
    (13, "warning"),
    (10, "notice"),
    (9, "info"),
    (5, "debug"),
];

impl SyslogParser {
    /// Parses one message.
    ///
    /// # Errors
    /// What does not follow the grammar.
    pub fn parse_message(&self, input: &str) -> Result<Message, String> {
        let framed = match (self.protocol, self.framing) {
            (Protocol::Rfc5424, Framing::OctetCounting) => octet_frame(input)?,
            (Protocol::Rfc5424, Framing::Trailer(t)) => input
                .as_bytes()
                .iter()
                .position(|&b| b == t)
                .map_or(input, |end| &input[..end]),
            _ => input,
        };
        let padded;
        let text = if self.allow_skip_pri_header
            && self.framing != Framing::OctetCounting
            && !has_pri_anywhere(framed)
        {
            padded = format!("<0>{framed}");
            padded.as_str()
        } else {
            framed
        };
        let skip = self.allow_skip_pri_header
            && self.framing != Framing::OctetCounting
            && framed.len() > 1
            && !framed.starts_with('<');
        let mut m = match self.protocol {
            Protocol::Rfc5424 => parse_5424(text)?,
            Protocol::Rfc3164 => parse_3164(text, self.utc)?,
        };
        if skip {
            m.priority = None;
        }
        Ok(m)
    }
}

impl Transform for SyslogParser {
    fn apply(&self, entry: &mut Entry) -> Result<(), String> {
        let c = &self.common;
        let message = {
            let input = c.input(entry)?;
            let Some(text) = value::as_str(&input) else {
                return Err(format!(
                    "unable to convert type '{}' to bytes",
                    value::go_type(&input)
                ));
            };
            self.parse_message(text)?
        };
        let time = message.timestamp;
        let severity = message.priority.map(|p| usize::from(p % 8));
        c.store(entry, value::map(to_map(message)))?;
        if !self.own_time {
            if let Some(ns) = time {
                entry.timestamp = u64::try_from(ns).unwrap_or(0);
            }
        }
        c.blocks(entry)?;
        // Stanza's implicit time parser reads the parsed stamp back; a nil one (`-`) is
        // missing there, which fails the entry after the fields were written.
        if time.is_none() && !self.own_time {
            return Err(
                "time parser: entry is missing the expected parse_from field: attributes.timestamp"
                    .to_owned(),
            );
        }
        // Stanza reads the syslog severity back from `attributes.severity`, whatever
        // `parse_to` was; elsewhere it is missing, which is an error there too.
        if let Some(sev) = severity {
            if c.parse_to.root != Root::Attributes || !c.parse_to.keys.is_empty() {
                return Err("severity field does not exist".to_owned());
            }
            let (number, text) = SEVERITIES[sev];
            entry.severity = number;
            entry.severity_text = text.to_owned();
        }
        Ok(())
    }
}

fn int(i: i64) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::IntValue(i)),
    }
}

/// The record stanza writes: strings, Int numbers, a map of maps for structured data.
fn to_map(m: Message) -> Vec<KeyValue> {
    let mut out = Vec::with_capacity(10);
    let mut put = |key: &str, v: AnyValue| {
        out.push(KeyValue {
            key_strindex: 0,
            key: key.to_owned(),
            value: Some(v),
        });
    };
    for (key, text) in [
        ("hostname", m.hostname),
        ("appname", m.appname),
        ("proc_id", m.proc_id),
        ("msg_id", m.msg_id),
        ("message", m.message),
    ] {
        if let Some(t) = text {
            put(key, value::string(t));
        }
    }
    if let Some(sd) = m.structured_data {
        let elements = sd
            .into_iter()
            .map(|(id, params)| KeyValue {
                key_strindex: 0,
                key: id,
                value: Some(value::map(
                    params
                        .into_iter()
                        .map(|(k, v)| KeyValue {
                            key_strindex: 0,
                            key: k,
                            value: Some(value::string(v)),
                        })
                        .collect(),
                )),
            })
            .collect();
        put("structured_data", value::map(elements));
    }
    if let Some(v) = m.version {
        put("version", int(i64::from(v)));
    }
    if let Some(p) = m.priority {
        put("priority", int(i64::from(p)));
        put("facility", int(i64::from(p / 8)));
    }
    out
}

fn has_pri_anywhere(text: &str) -> bool {
    let b = text.as_bytes();
    b.iter().enumerate().any(|(i, &c)| {
        if c != b'<' {
            return false;
        }
        let digits = b[i + 1..]
            .iter()
            .take(4)
            .take_while(|d| d.is_ascii_digit())
            .count();
        (1..=3).contains(&digits) && b.get(i + 1 + digits) == Some(&b'>')
    })
}

/// `LEN SP MSG` (RFC 6587 octet counting): the message, cut to `LEN` bytes.
fn octet_frame(input: &str) -> Result<&str, String> {
    let digits = input.bytes().take_while(u8::is_ascii_digit).count();
    let len: usize = input[..digits]
        .parse()
        .map_err(|_| "found no MSGLEN: expecting a MSGLEN".to_owned())?;
    let rest = input[digits..]
        .strip_prefix(' ')
        .ok_or_else(|| "expecting a space after MSGLEN".to_owned())?;
    let mut end = len.min(rest.len());
    while !rest.is_char_boundary(end) {
        end -= 1;
    }
    Ok(&rest[..end])
}

/// A cursor over the message text.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.text.as_bytes().get(self.pos) == Some(&c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_space(&mut self, what: &str) -> Result<(), String> {
        if self.eat(b' ') {
            Ok(())
        } else {
            Err(format!("expecting a space after {what} [col {}]", self.pos))
        }
    }

    /// Printable US-ASCII (33–126) up to the next space, 1..=max long.
    fn token(&mut self, what: &str, max: usize) -> Result<&'a str, String> {
        let rest = self.rest();
        let len = rest.bytes().take_while(|b| (33..=126).contains(b)).count();
        if len == 0 || len > max {
            return Err(format!(
                "expecting a {what} (from 1 to max {max} US-ASCII characters) [col {}]",
                self.pos
            ));
        }
        self.pos += len;
        Ok(&rest[..len])
    }

    /// `-` (nil) or a token.
    fn nil_or_token(&mut self, what: &str, max: usize) -> Result<Option<String>, String> {
        let t = self.token(what, max)?;
        Ok((t != "-").then(|| t.to_owned()))
    }

    /// `<PRI>`: 0, or 1–191 without leading zeros.
    fn pri(&mut self) -> Result<u8, String> {
        let bad =
            || "expecting a priority value within the range 1-191 or equal to 0 [col 1]".to_owned();
        if !self.eat(b'<') {
            return Err(
                "expecting a priority value in the range 1-191 or equal to 0 [col 0]".to_owned(),
            );
        }
        let rest = self.rest();
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let text = &rest[..digits];
        if digits == 0 || digits > 3 || (digits > 1 && text.starts_with('0')) {
            return Err(bad());
        }
        let p: u16 = text.parse().map_err(|_| bad())?;
        if p > 191 {
            return Err(bad());
        }
        self.pos += digits;
        if !self.eat(b'>') {
            return Err(bad());
        }
        u8::try_from(p).map_err(|_| bad())
    }
}

/// RFC 5424: `<PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP
/// STRUCTURED-DATA [SP MSG]`.
fn parse_5424(text: &str) -> Result<Message, String> {
    let mut c = Cursor { text, pos: 0 };
    let priority = c.pri()?;
    let rest = c.rest();
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 2 || rest.starts_with('0') {
        return Err(format!(
            "expecting a version value in the range 1-999 [col {}]",
            c.pos
        ));
    }
    let version: u16 = rest[..digits]
        .parse()
        .map_err(|_| "expecting a version value".to_owned())?;
    c.pos += digits;
    c.expect_space("version")?;
    let stamp = c.token("timestamp", 64)?;
    let timestamp = if stamp == "-" {
        None
    } else {
        Some(rfc3339(stamp).ok_or_else(|| {
            format!(
                "expecting a RFC3339MICRO timestamp or a nil value [col {}]",
                c.pos
            )
        })?)
    };
    c.expect_space("timestamp")?;
    let hostname = c.nil_or_token("hostname", 255)?;
    c.expect_space("hostname")?;
    let appname = c.nil_or_token("app-name", 48)?;
    c.expect_space("app-name")?;
    let proc_id = c.nil_or_token("procid", 128)?;
    c.expect_space("procid")?;
    let msg_id = c.nil_or_token("msgid", 32)?;
    c.expect_space("msgid")?;
    let structured_data = structured_data(&mut c)?;
    let message = if c.rest().is_empty() {
        None
    } else {
        c.expect_space("structured data")?;
        let m = c.rest();
        (!m.is_empty()).then(|| m.to_owned())
    };
    Ok(Message {
        priority: Some(priority),
        version: Some(version),
        timestamp,
        hostname,
        appname,
        proc_id,
        msg_id,
        structured_data,
        message,
    })
}

/// `YYYY-MM-DDThh:mm:ss[.f{1,6}](Z|±hh:mm)` → Unix ns.
fn rfc3339(stamp: &str) -> Option<i64> {
    let b = stamp.as_bytes();
    if b.len() < 20 || b[10] != b'T' {
        return None;
    }
    if let Some(frac) = stamp[19..].strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if !(1..=6).contains(&digits) {
            return None;
        }
    }
    DateTime::parse_from_rfc3339(stamp)
        .ok()?
        .timestamp_nanos_opt()
}

/// `-` or one or more `[SD-ID *(SP PARAM-NAME="VALUE")]`; `\"`, `\\` and `\]` unescape.
fn structured_data(c: &mut Cursor<'_>) -> Result<Option<StructuredData>, String> {
    if c.eat(b'-') {
        return Ok(None);
    }
    let mut elements: StructuredData = Vec::new();
    let name = |c: &mut Cursor<'_>, what: &str| -> Result<String, String> {
        let rest = c.rest();
        let len = rest
            .bytes()
            .take_while(|b| (33..=126).contains(b) && !matches!(b, b'=' | b']' | b'"'))
            .count();
        if len == 0 || len > 32 {
            return Err(format!("expecting a {what} [col {}]", c.pos));
        }
        c.pos += len;
        Ok(rest[..len].to_owned())
    };
    while c.eat(b'[') {
        let id = name(c, "structured data element id")?;
        if elements.iter().any(|(existing, _)| *existing == id) {
            return Err(format!(
                "duplicate structured data element id [col {}]",
                c.pos
            ));
        }
        let mut params = Vec::new();
        while c.eat(b' ') {
            let key = name(c, "structured data parameter name")?;
            if !c.eat(b'=') || !c.eat(b'"') {
                return Err(format!(
                    "expecting a structured data parameter value [col {}]",
                    c.pos
                ));
            }
            let mut val = String::new();
            let mut chars = c.rest().char_indices();
            let mut closed = None;
            while let Some((i, ch)) = chars.next() {
                match ch {
                    '"' => {
                        closed = Some(i + 1);
                        break;
                    }
                    '\\' => match chars.next() {
                        Some((_, e @ ('"' | '\\' | ']'))) => val.push(e),
                        Some((_, other)) => {
                            val.push('\\');
                            val.push(other);
                        }
                        None => break,
                    },
                    ch => val.push(ch),
                }
            }
            let consumed = closed.ok_or_else(|| {
                format!(
                    "unterminated structured data parameter value [col {}]",
                    c.pos
                )
            })?;
            c.pos += consumed;
            params.push((key, val));
        }
        if !c.eat(b']') {
            return Err(format!(
                "expecting a structured data element closing ']' [col {}]",
                c.pos
            ));
        }
        elements.push((id, params));
    }
    if elements.is_empty() {
        return Err(format!(
            "expecting a structured data section containing one or more elements (`[id( key=\"value\")*]+`) or a nil value [col {}]",
            c.pos
        ));
    }
    Ok(Some(elements))
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// RFC 3164: `<PRI>Mmm dd hh:mm:ss SP HOSTNAME SP [TAG[\[PID\]]: ]MSG`; the stamp gets the
/// current year.
fn parse_3164(text: &str, utc: bool) -> Result<Message, String> {
    let mut c = Cursor { text, pos: 0 };
    let priority = c.pri()?;
    let timestamp = stamp_3164(&mut c, utc)?;
    c.expect_space("timestamp")?;
    let hostname = c.token("hostname", 255)?.to_owned();
    let mut appname = None;
    let mut proc_id = None;
    let message = if c.eat(b' ') {
        let rest = c.rest();
        let tag_len = rest
            .bytes()
            .take(33)
            .take_while(|b| (33..=126).contains(b) && !matches!(b, b':' | b'['))
            .count();
        let after = &rest[tag_len..];
        let (pid, after_pid) = match after.strip_prefix('[') {
            Some(p) => match p.split_once(']') {
                Some((pid, tail)) if !pid.is_empty() => (Some(pid), tail),
                _ => (None, after),
            },
            None => (None, after),
        };
        match after_pid.strip_prefix(':') {
            Some(msg)
                if (1..=32).contains(&tag_len) && (pid.is_some() || after.starts_with(':')) =>
            {
                appname = Some(rest[..tag_len].to_owned());
                proc_id = pid.map(str::to_owned);
                Some(msg.strip_prefix(' ').unwrap_or(msg))
            }
            _ => Some(rest),
        }
    } else {
        None
    };
    Ok(Message {
        priority: Some(priority),
        version: None,
        timestamp: Some(timestamp),
        hostname: Some(hostname),
        appname,
        proc_id,
        msg_id: None,
        structured_data: None,
        message: message.filter(|m| !m.is_empty()).map(str::to_owned),
    })
}

/// `Mmm dd hh:mm:ss` (day as `dd`, ` d` or `d`) in UTC or local time → Unix ns.
fn stamp_3164(c: &mut Cursor<'_>, utc: bool) -> Result<i64, String> {
    let bad = |pos: usize| format!("expecting a Stamp timestamp [col {pos}]");
    let rest = c.rest();
    let month = MONTHS
        .iter()
        .position(|m| rest.starts_with(m))
        .ok_or_else(|| bad(c.pos))?;
    let mut i = 3;
    let b = rest.as_bytes();
    if b.get(i) != Some(&b' ') {
        return Err(bad(c.pos + i));
    }
    i += 1;
    if b.get(i) == Some(&b' ') {
        i += 1;
    }
    let day_len = b[i..]
        .iter()
        .take(2)
        .take_while(|d| d.is_ascii_digit())
        .count();
    let day: u32 = rest[i..i + day_len].parse().map_err(|_| bad(c.pos + i))?;
    i += day_len;
    let clock = rest
        .get(i..i + 9)
        .filter(|t| t.starts_with(' '))
        .ok_or_else(|| bad(c.pos + i))?;
    let time =
        chrono::NaiveTime::parse_from_str(&clock[1..], "%H:%M:%S").map_err(|_| bad(c.pos + i))?;
    i += 9;
    let now = chrono::Utc::now();
    let year = if utc {
        now.year()
    } else {
        now.with_timezone(&chrono::Local).year()
    };
    let month = u32::try_from(month + 1).map_err(|_| bad(c.pos))?;
    let naive = NaiveDate::from_ymd_opt(year, month, day)
        .ok_or_else(|| bad(c.pos))?
        .and_time(time);
    let dt = if utc {
        naive.and_utc().fixed_offset()
    } else {
        chrono::Local
            .from_local_datetime(&naive)
            .earliest()
            .ok_or_else(|| bad(c.pos))?
            .fixed_offset()
    };
    c.pos += i;
    dt.timestamp_nanos_opt().ok_or_else(|| bad(c.pos))
}
