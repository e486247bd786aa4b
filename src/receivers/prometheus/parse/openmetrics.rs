//! OpenMetrics 1.0 text.
//!
//! Rules beyond the sample grammar: the body ends with `# EOF` (one optional final line
//! break, nothing after); no blank lines; the only comments are `# HELP`, `# TYPE`,
//! `# UNIT` (each at most once per family, before its samples); a family's samples are
//! contiguous and never reopened; sample names are the family name plus a suffix its type
//! allows (`_total`/`_created` for counters, `_bucket`/`_count`/`_sum`/`_created` for
//! histograms, …); `le`/`quantile` are required where they belong; exemplars only on
//! counter `_total` and histogram `_bucket` samples.

use std::collections::HashSet;

use super::lexer::{self, Dialect};
use super::{family_of, Family, MetricType, ParseError};

const DIALECT: Dialect = Dialect { openmetrics: true };

pub(super) fn parse(body: &str) -> Result<Vec<Family>, ParseError> {
    let mut families: Vec<Family> = Vec::new();
    let mut closed: HashSet<String> = HashSet::new();
    let mut typed: HashSet<String> = HashSet::new();
    let mut lines = body.split('\n').enumerate().peekable();
    let mut eof = false;
    while let Some((i, line)) = lines.next() {
        let n = i + 1;
        if eof {
            if line.is_empty() && lines.peek().is_none() {
                break;
            }
            return Err(ParseError::new(n, "unexpected data after # EOF"));
        }
        if line == "# EOF" {
            eof = true;
            continue;
        }
        if line.is_empty() && lines.peek().is_none() {
            break;
        }
        if line.is_empty() {
            return Err(ParseError::new(n, "unexpected empty line"));
        }
        if let Some(rest) = line.strip_prefix("# ") {
            metadata(rest, n, &mut families, &mut closed, &mut typed)?;
            continue;
        }
        if line.starts_with('#') {
            return Err(ParseError::new(n, format!("invalid comment line {line:?}")));
        }
        let parsed = lexer::sample_line(line, DIALECT).map_err(|m| ParseError::new(n, m))?;
        let sample = parsed.sample;
        let current = families
            .last()
            .and_then(|f| family_of(&sample.name, &f.name, f.kind).map(|_| f.kind));
        let kind = if let Some(kind) = current {
            kind
        } else {
            if closed.contains(&sample.name) {
                return Err(ParseError::new(
                    n,
                    format!("samples of {:?} are not contiguous", sample.name),
                ));
            }
            if let Some(last) = families.last() {
                closed.insert(last.name.clone());
            }
            families.push(Family {
                name: sample.name.clone(),
                kind: MetricType::Unknown,
                help: None,
                unit: None,
                samples: Vec::new(),
            });
            MetricType::Unknown
        };
        let Some(family) = families.last_mut() else {
            return Err(ParseError::new(n, "sample outside any family"));
        };
        let suffix = &sample.name[family.name.len()..];
        check_sample(kind, suffix, &sample, parsed.exemplar).map_err(|m| ParseError::new(n, m))?;
        family.samples.push(sample);
    }
    if !eof {
        return Err(ParseError::new(
            body.split('\n').count(),
            "missing # EOF at the end",
        ));
    }
    Ok(families)
}

fn check_sample(
    kind: MetricType,
    suffix: &str,
    sample: &super::Sample,
    exemplar: bool,
) -> Result<(), String> {
    let name = &sample.name;
    match (kind, suffix) {
        (MetricType::Counter, "") => {
            return Err(format!(
                "counter sample {name:?} must end in _total or _created"
            ))
        }
        (MetricType::Histogram | MetricType::Gaugehistogram, "_bucket") => {
            let Some(le) = sample.label("le") else {
                return Err(format!("histogram bucket {name:?} without le label"));
            };
            if lexer::parse_value(le).is_err() {
                return Err(format!("invalid le value {le:?}"));
            }
        }
        (MetricType::Histogram | MetricType::Gaugehistogram, "") => {
            return Err(format!("histogram sample {name:?} needs a suffix"))
        }
        (MetricType::Summary, "") => {
            let Some(q) = sample.label("quantile") else {
                return Err(format!("summary sample {name:?} without quantile label"));
            };
            if lexer::parse_value(q).is_err() {
                return Err(format!("invalid quantile value {q:?}"));
            }
        }
        (MetricType::Stateset, "") if sample.label(&sample.name).is_none() => {
            return Err(format!("stateset sample {name:?} without its state label"));
        }
        _ => {}
    }
    let exemplar_ok = matches!(
        (kind, suffix),
        (MetricType::Counter, "_total")
            | (
                MetricType::Histogram | MetricType::Gaugehistogram,
                "_bucket"
            )
    );
    if exemplar && !exemplar_ok {
        return Err(format!("exemplar on {name:?}, which cannot carry one"));
    }
    Ok(())
}

fn metadata(
    rest: &str,
    n: usize,
    families: &mut Vec<Family>,
    closed: &mut HashSet<String>,
    typed: &mut HashSet<String>,
) -> Result<(), ParseError> {
    let (keyword, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    if !matches!(keyword, "HELP" | "TYPE" | "UNIT") {
        return Err(ParseError::new(
            n,
            format!("invalid comment keyword {keyword:?}"),
        ));
    }
    let (name, arg) = rest.split_once(' ').unwrap_or((rest, ""));
    if !lexer::is_metric_name(name) {
        return Err(ParseError::new(
            n,
            format!("invalid metric name {name:?} in {keyword} line"),
        ));
    }
    let same = families.last().is_some_and(|f| f.name == name);
    if !same {
        if closed.contains(name) {
            return Err(ParseError::new(
                n,
                format!("metric family {name:?} appears twice"),
            ));
        }
        if let Some(last) = families.last() {
            closed.insert(last.name.clone());
        }
        families.push(Family {
            name: name.to_owned(),
            kind: MetricType::Unknown,
            help: None,
            unit: None,
            samples: Vec::new(),
        });
    }
    let Some(family) = families.last_mut() else {
        return Err(ParseError::new(n, "metadata outside any family"));
    };
    if !family.samples.is_empty() {
        return Err(ParseError::new(
            n,
            format!("{keyword} for {name:?} after its samples"),
        ));
    }
    match keyword {
        "HELP" => {
            if family.help.is_some() {
                return Err(ParseError::new(n, format!("second HELP for {name:?}")));
            }
            family.help = Some(unescape(arg).map_err(|m| ParseError::new(n, m))?);
        }
        "UNIT" => {
            if family.unit.is_some() {
                return Err(ParseError::new(n, format!("second UNIT for {name:?}")));
            }
            if !arg.is_empty() && !name.ends_with(&format!("_{arg}")) {
                return Err(ParseError::new(
                    n,
                    format!("unit {arg:?} is not a suffix of the metric name {name:?}"),
                ));
            }
            family.unit = Some(arg.to_owned());
        }
        _ => {
            if !typed.insert(name.to_owned()) {
                return Err(ParseError::new(n, format!("second TYPE for {name:?}")));
            }
            family.kind = match arg {
                "counter" => MetricType::Counter,
                "gauge" => MetricType::Gauge,
                "histogram" => MetricType::Histogram,
                "gaugehistogram" => MetricType::Gaugehistogram,
                "summary" => MetricType::Summary,
                "info" => MetricType::Info,
                "stateset" => MetricType::Stateset,
                "unknown" => MetricType::Unknown,
                other => {
                    return Err(ParseError::new(
                        n,
                        format!("invalid metric type {other:?} for {name:?}"),
                    ))
                }
            };
        }
    }
    Ok(())
}

fn unescape(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some('n') => out.push('\n'),
                Some(other) => return Err(format!("invalid escape sequence \\{other}")),
                None => return Err("unterminated escape sequence".to_owned()),
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}
