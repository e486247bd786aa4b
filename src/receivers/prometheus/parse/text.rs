//! Prometheus text format 0.0.4.
//!
//! Rules beyond the sample grammar: `# HELP name text` and `# TYPE name type` (types
//! `counter`, `gauge`, `histogram`, `summary`, `untyped`) at most once per name and before
//! that name's first sample; other `#` lines are comments; blank lines are skipped.
//! Histogram and summary samples (`_bucket`, `_sum`, `_count`) join their typed family.

use std::collections::{HashMap, HashSet};

use super::lexer::{self, Dialect};
use super::{Family, MetricType, ParseError};

const DIALECT: Dialect = Dialect { openmetrics: false };

pub(super) fn parse(body: &str) -> Result<Vec<Family>, ParseError> {
    let mut families: Vec<Family> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut typed: HashSet<String> = HashSet::new();
    let mut has_samples: HashSet<usize> = HashSet::new();
    for (i, raw) in body.split('\n').enumerate() {
        let n = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = line.trim_start_matches([' ', '\t']);
        if trimmed.is_empty() {
            continue;
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            metadata(
                comment,
                n,
                &mut families,
                &mut index,
                &mut typed,
                &has_samples,
            )?;
            continue;
        }
        let parsed = lexer::sample_line(line, DIALECT).map_err(|m| ParseError::new(n, m))?;
        let sample = parsed.sample;
        let at = match find_family(&sample.name, &families, &index) {
            Some(at) => at,
            None => {
                families.push(Family {
                    name: sample.name.clone(),
                    kind: MetricType::Unknown,
                    help: None,
                    unit: None,
                    samples: Vec::new(),
                });
                index.insert(sample.name.clone(), families.len() - 1);
                families.len() - 1
            }
        };
        has_samples.insert(at);
        families[at].samples.push(sample);
    }
    Ok(families)
}

fn find_family(name: &str, families: &[Family], index: &HashMap<String, usize>) -> Option<usize> {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if let Some(&at) = index.get(base) {
                let kind = families[at].kind;
                let fits = match kind {
                    MetricType::Histogram => true,
                    MetricType::Summary => suffix != "_bucket",
                    _ => false,
                };
                if fits {
                    return Some(at);
                }
            }
        }
    }
    index.get(name).copied()
}

fn metadata(
    comment: &str,
    n: usize,
    families: &mut Vec<Family>,
    index: &mut HashMap<String, usize>,
    typed: &mut HashSet<String>,
    has_samples: &HashSet<usize>,
) -> Result<(), ParseError> {
    let rest = comment.trim_start_matches([' ', '\t']);
    if rest.len() == comment.len() {
        return Ok(());
    }
    let (keyword, rest) = match rest.split_once([' ', '\t']) {
        Some((k, r)) => (k, r.trim_start_matches([' ', '\t'])),
        None => (rest, ""),
    };
    if keyword != "HELP" && keyword != "TYPE" {
        return Ok(());
    }
    let (name, arg) = match rest.split_once([' ', '\t']) {
        Some((name, arg)) => (name, arg),
        None => (rest, ""),
    };
    if !lexer::is_metric_name(name) {
        return Err(ParseError::new(
            n,
            format!("invalid metric name {name:?} in {keyword} line"),
        ));
    }
    let at = match index.get(name) {
        Some(&at) => at,
        None => {
            families.push(Family {
                name: name.to_owned(),
                kind: MetricType::Unknown,
                help: None,
                unit: None,
                samples: Vec::new(),
            });
            index.insert(name.to_owned(), families.len() - 1);
            families.len() - 1
        }
    };
    let family = &mut families[at];
    if keyword == "HELP" {
        if family.help.is_some() {
            return Err(ParseError::new(
                n,
                format!("second HELP line for metric name {name:?}"),
            ));
        }
        family.help = Some(unescape_help(arg));
        return Ok(());
    }
    if typed.contains(name) {
        return Err(ParseError::new(
            n,
            format!("second TYPE line for metric name {name:?}"),
        ));
    }
    if has_samples.contains(&at) {
        return Err(ParseError::new(
            n,
            format!("TYPE line for metric name {name:?} after its samples"),
        ));
    }
    family.kind = match arg.trim_end_matches([' ', '\t']) {
        "counter" => MetricType::Counter,
        "gauge" => MetricType::Gauge,
        "histogram" => MetricType::Histogram,
        "summary" => MetricType::Summary,
        "untyped" => MetricType::Unknown,
        other => {
            return Err(ParseError::new(
                n,
                format!("invalid metric type {other:?} for {name:?}"),
            ))
        }
    };
    typed.insert(name.to_owned());
    Ok(())
}

/// HELP text escapes: `\\` and `\n`; any other backslash stays.
fn unescape_help(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}
