//! Timestamp parsing (`timestamp:` blocks and `time_parser`): strptime, Go reference
//! layouts, epoch units; stanza's time helper.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDateTime, TimeZone};
use opentelemetry_proto::tonic::common::v1::any_value;
use serde::Deserialize;

use super::entry::Entry;
use super::field::Field;
use super::value;

/// `timestamp` config block.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeConfig {
    /// The field holding the time (required).
    pub parse_from: Option<Field>,
    /// `strptime` (default), `gotime`, `epoch`, `native`.
    pub layout_type: Option<String>,
    /// The layout (required except for `native`).
    pub layout: Option<String>,
    /// Zone for times without one: `Local` (default) or `UTC`.
    pub location: Option<String>,
}

#[derive(Clone, Debug)]
enum Layout {
    /// A chrono format; `with_zone` when it parses an offset; `has_year` false adds the
    /// current year.
    Format {
        format: String,
        with_zone: bool,
        has_year: bool,
    },
    Epoch(Epoch),
    Native,
}

#[derive(Clone, Copy, Debug)]
enum Epoch {
    S,
    Ms,
    Us,
    Ns,
    SFrac(u32),
}

/// A compiled time parser.
#[derive(Clone, Debug)]
pub struct TimeParser {
    parse_from: Field,
    layout: Layout,
    utc: bool,
}

/// strptime directive → chrono directive (stanza's ctimefmt table).
fn strptime_to_chrono(layout: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = layout.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let d = chars.next().ok_or("layout ends with '%'")?;
        out.push_str(match d {
            'Y' => "%Y",
            'y' => "%y",
            'm' => "%m",
            'o' => "%-m",
            'q' => "%-m",
            'b' | 'h' => "%b",
            'B' => "%B",
            'd' => "%d",
            'g' => "%-d",
            'e' => "%e",
            'a' => "%a",
            'A' => "%A",
            'H' => "%H",
            'I' | 'l' => "%I",
            'p' => "%p",
            'M' => "%M",
            'S' => "%S",
            'L' => "%3f",
            'f' => "%6f",
            's' => "%9f",
            'Z' => "%Z",
            'z' => "%z",
            'j' => "%j",
            'D' => "%m/%d/%y",
            'F' => "%Y-%m-%d",
            'T' => "%H:%M:%S",
            'R' => "%H:%M",
            'c' => "%a %b %e %H:%M:%S %Y",
            'x' => "%m/%d/%y",
            'X' => "%H:%M:%S",
            'n' => "\n",
            't' => "\t",
            '%' => "%%",
            other => return Err(format!("unsupported strptime directive %{other}")),
        });
    }
    Ok(out)
}

/// Go reference layout → chrono format (the tokens of Go's `time` package).
fn gotime_to_chrono(layout: &str) -> String {
    const TOKENS: [(&str, &str); 30] = [
        ("January", "%B"),
        ("Monday", "%A"),
        ("2006", "%Y"),
        ("-07:00:00", "%::z"),
        ("-07:00", "%:z"),
        ("-0700", "%z"),
        ("Z07:00", "%:z"),
        ("Z0700", "%z"),
        (".000000000", "%.9f"),
        (".999999999", "%.f"),
        (".000000", "%.6f"),
        (".999999", "%.f"),
        (".000", "%.3f"),
        (".999", "%.f"),
        ("Jan", "%b"),
        ("Mon", "%a"),
        ("MST", "%Z"),
        ("002", "%j"),
        ("_2", "%e"),
        ("06", "%y"),
        ("01", "%m"),
        ("02", "%d"),
        ("15", "%H"),
        ("03", "%I"),
        ("04", "%M"),
        ("05", "%S"),
        ("PM", "%p"),
        ("pm", "%P"),
        ("1", "%-m"),
        ("2", "%-d"),
    ];
    let mut out = String::new();
    let mut rest = layout;
    'outer: while !rest.is_empty() {
        for (go, chrono) in TOKENS {
            if let Some(tail) = rest.strip_prefix(go) {
                out.push_str(chrono);
                rest = tail;
                continue 'outer;
            }
        }
        let c = rest.chars().next().unwrap_or(' ');
        if c == '%' {
            out.push_str("%%");
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn format_layout(format: String) -> Layout {
    let with_zone = format.contains("%z") || format.contains("%:z") || format.contains("%::z");
    let has_year = format.contains("%Y") || format.contains("%y");
    Layout::Format {
        format,
        with_zone,
        has_year,
    }
}

impl TimeParser {
    /// Compiles a timestamp block.
    ///
    /// # Errors
    /// Missing `parse_from` or `layout`, an unknown layout type, epoch unit or location.
    pub fn build(config: TimeConfig) -> Result<Self, String> {
        let parse_from = config
            .parse_from
            .ok_or("missing required field 'parse_from'")?;
        let kind = config.layout_type.as_deref().unwrap_or("strptime");
        let layout_text = || {
            config
                .layout
                .clone()
                .filter(|l| !l.is_empty())
                .ok_or_else(|| "missing required configuration parameter `layout`".to_owned())
        };
        let layout = match kind {
            "strptime" => format_layout(strptime_to_chrono(&layout_text()?)?),
            "gotime" => format_layout(gotime_to_chrono(&layout_text()?)),
            "epoch" => Layout::Epoch(match layout_text()?.as_str() {
                "s" => Epoch::S,
                "ms" => Epoch::Ms,
                "us" => Epoch::Us,
                "ns" => Epoch::Ns,
                "s.ms" => Epoch::SFrac(3),
                "s.us" => Epoch::SFrac(6),
                "s.ns" => Epoch::SFrac(9),
                other => {
                    return Err(format!(
                        "invalid epoch layout {other:?} (s, ms, us, ns, s.ms, s.us, s.ns)"
                    ))
                }
            }),
            "native" => Layout::Native,
            other => {
                return Err(format!(
                    "unsupported layout_type {other:?} (strptime, gotime, epoch, native)"
                ))
            }
        };
        let utc = match config.location.as_deref() {
            None | Some("" | "Local") => false,
            Some("UTC" | "Etc/UTC") => true,
            Some(other) => {
                return Err(format!(
                    "location {other:?} is not supported yet (Local or UTC)"
                ))
            }
        };
        Ok(Self {
            parse_from,
            layout,
            utc,
        })
    }

    /// Sets the entry's timestamp from its field (the field stays in place).
    ///
    /// # Errors
    /// The field is missing or does not match the layout.
    pub fn parse(&self, entry: &mut Entry) -> Result<(), String> {
        let v = self
            .parse_from
            .get(entry)
            .ok_or_else(|| format!("time field does not exist: {}", self.parse_from))?;
        let nanos = match &self.layout {
            Layout::Epoch(unit) => epoch(*unit, &v.value)?,
            Layout::Native => match v.value {
                Some(any_value::Value::IntValue(i)) => i,
                _ => {
                    return Err(format!(
                        "native time.Time field required, got {}",
                        value::go_type(&v)
                    ))
                }
            },
            Layout::Format {
                format,
                with_zone,
                has_year,
            } => {
                let text = match &v.value {
                    Some(any_value::Value::StringValue(s)) => s.clone(),
                    Some(any_value::Value::BytesValue(b)) => {
                        String::from_utf8_lossy(b).into_owned()
                    }
                    _ => {
                        return Err(format!(
                            "type {} cannot be parsed as a time",
                            value::go_type(&v)
                        ))
                    }
                };
                self.parse_text(&text, format, *with_zone, *has_year)?
            }
        };
        entry.timestamp = u64::try_from(nanos).unwrap_or(0);
        Ok(())
    }

    fn parse_text(
        &self,
        text: &str,
        format: &str,
        with_zone: bool,
        has_year: bool,
    ) -> Result<i64, String> {
        let (text, format) = if has_year {
            (text.to_owned(), format.to_owned())
        } else {
            let year = chrono::Local::now().year();
            (format!("{year} {text}"), format!("%Y {format}"))
        };
        let err = |e: chrono::ParseError| format!("parsing time {text:?} as {format:?}: {e}");
        let dt: DateTime<FixedOffset> = if with_zone {
            DateTime::parse_from_str(&text, &format).map_err(err)?
        } else {
            let naive = NaiveDateTime::parse_from_str(&text, &format)
                .or_else(|_| {
                    chrono::NaiveDate::parse_from_str(&text, &format)
                        .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default())
                })
                .map_err(err)?;
            if self.utc {
                naive.and_utc().fixed_offset()
            } else {
                chrono::Local
                    .from_local_datetime(&naive)
                    .earliest()
                    .ok_or_else(|| format!("time {text:?} does not exist in the local zone"))?
                    .fixed_offset()
            }
        };
        dt.timestamp_nanos_opt()
            .ok_or_else(|| format!("time {text:?} is out of range"))
    }
}

fn epoch(unit: Epoch, v: &Option<any_value::Value>) -> Result<i64, String> {
    enum Num {
        I(i64),
        F(f64),
    }
    let n = match v {
        Some(any_value::Value::IntValue(i)) => Num::I(*i),
        Some(any_value::Value::DoubleValue(d)) if d.fract() == 0.0 && d.abs() < 9.0e18 => {
            Num::I(*d as i64)
        }
        Some(any_value::Value::DoubleValue(d)) => Num::F(*d),
        Some(any_value::Value::StringValue(s)) => match s.parse::<i64>() {
            Ok(i) => Num::I(i),
            Err(_) => Num::F(
                s.parse::<f64>()
                    .map_err(|_| format!("invalid value {s:?} for epoch layout"))?,
            ),
        },
        _ => return Err("invalid value type for epoch layout".to_owned()),
    };
    let mul: i64 = match unit {
        Epoch::S | Epoch::SFrac(_) => 1_000_000_000,
        Epoch::Ms => 1_000_000,
        Epoch::Us => 1_000,
        Epoch::Ns => 1,
    };
    match n {
        Num::I(i) => i
            .checked_mul(mul)
            .ok_or_else(|| "epoch value out of range".to_owned()),
        Num::F(f) => {
            let whole = f.trunc();
            let frac = f - whole;
            let frac_ns = match unit {
                Epoch::SFrac(digits) => {
                    let scale = 10f64.powi(i32::try_from(digits).unwrap_or(9));
                    ((frac * scale).round() / scale * 1e9).round()
                }
                _ => (frac * mul as f64).round(),
            };
            Ok((whole as i64)
                .saturating_mul(mul)
                .saturating_add(frac_ns as i64))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};

    fn run(yaml: &str, v: AnyValue) -> Result<u64, String> {
        let p = TimeParser::build(yaml_serde::from_str(yaml).unwrap())?;
        let mut e = Entry::default();
        e.attributes.push(KeyValue {
            key_strindex: 0,
            key: "t".into(),
            value: Some(v),
        });
        p.parse(&mut e)?;
        Ok(e.timestamp)
    }

    #[test]
    fn epoch_units_from_numbers_and_strings() {
        let d = |x: f64| AnyValue {
            value: Some(any_value::Value::DoubleValue(x)),
        };
        let base = "parse_from: attributes.t\nlayout_type: epoch\n";
        assert_eq!(
            run(&format!("{base}layout: ms"), d(1_738_765_016_123.0)).unwrap(),
            1_738_765_016_123_000_000
        );
        assert_eq!(
            run(&format!("{base}layout: s"), value::string("1738765016")).unwrap(),
            1_738_765_016_000_000_000
        );
        assert_eq!(
            run(&format!("{base}layout: s.ms"), d(1_738_765_016.123)).unwrap(),
            1_738_765_016_123_000_000
        );
        assert!(run(&format!("{base}layout: ms"), value::string("soon")).is_err());
        assert!(run(&format!("{base}layout: days"), d(1.0))
            .unwrap_err()
            .contains("invalid epoch layout"));
    }

    #[test]
    fn strptime_and_gotime_layouts() {
        let s = "parse_from: attributes.t\nlayout: '%Y-%m-%dT%H:%M:%S.%L%z'";
        assert_eq!(
            run(s, value::string("2025-02-05T14:16:56.123+0000")).unwrap(),
            1_738_765_016_123_000_000
        );
        let s = "parse_from: attributes.t\nlayout: '%d/%b/%Y:%H:%M:%S %z'";
        assert_eq!(
            run(s, value::string("05/Feb/2025:14:16:56 +0100")).unwrap(),
            1_738_761_416_000_000_000
        );
        let g = "parse_from: attributes.t\nlayout_type: gotime\nlayout: '2006-01-02T15:04:05Z07:00'\nlocation: UTC";
        assert_eq!(
            run(g, value::string("2025-02-05T14:16:56+00:00")).unwrap(),
            1_738_765_016_000_000_000
        );
        let u = "parse_from: attributes.t\nlayout: '%Y-%m-%d %H:%M:%S'\nlocation: UTC";
        assert_eq!(
            run(u, value::string("2025-02-05 14:16:56")).unwrap(),
            1_738_765_016_000_000_000
        );
        let no_year = "parse_from: attributes.t\nlayout: '%b %d %H:%M:%S'\nlocation: UTC";
        let ts = run(no_year, value::string("Feb 05 14:16:56")).unwrap();
        let year = chrono::DateTime::from_timestamp_nanos(i64::try_from(ts).unwrap()).year();
        assert_eq!(year, chrono::Local::now().year());
        assert!(run(u, value::string("yesterday")).is_err());
        assert!(
            TimeParser::build(yaml_serde::from_str("parse_from: body").unwrap())
                .unwrap_err()
                .contains("layout")
        );
        assert!(
            TimeParser::build(yaml_serde::from_str("parse_from: body\nlayout: '%Q'").unwrap())
                .is_err()
        );
    }
}
