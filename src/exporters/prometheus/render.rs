//! Writes a snapshot of series as the Prometheus text format 0.0.4 or OpenMetrics 1.0,
//! laid out as the Go client library does: families sorted by name, one HELP and TYPE
//! each, series sorted by labels, labels sorted by name.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use super::accumulate::{Kind, Series, Target, Value};

/// The text format's content type.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// OpenMetrics' content type.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How to render.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options<'a> {
    /// OpenMetrics instead of the text format.
    pub open_metrics: bool,
    /// Append each sample's timestamp.
    pub send_timestamps: bool,
    /// Cleaned namespace, for `target_info`.
    pub namespace: &'a str,
}

/// What a render produced besides the text.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rendered {
    /// The body.
    pub body: String,
    /// Series left out because their name already belongs to a family of another type.
    pub type_conflicts: usize,
}

struct Family<'a> {
    kind: Kind,
    help: &'a str,
    series: Vec<&'a Series>,
}

/// Renders `series` (and `target_info` for their targets).
pub fn render(series: &[Arc<Series>], options: Options<'_>) -> Rendered {
    let mut ordered: Vec<&Series> = series.iter().map(AsRef::as_ref).collect();
    ordered.sort_unstable_by_key(|s| s.seq);
    let mut families: BTreeMap<&str, Family<'_>> = BTreeMap::new();
    let mut type_conflicts = 0;
    let mut targets: BTreeMap<(&str, &str), &Target> = BTreeMap::new();
    for s in ordered {
        let family = families.entry(s.name.as_str()).or_insert_with(|| Family {
            kind: s.kind,
            help: &s.help,
            series: Vec::new(),
        });
        if family.kind != s.kind {
            type_conflicts += 1;
            continue;
        }
        family.series.push(s);
        if let Some(t) = &s.target {
            // The latest seen resource of a target wins.
            targets.insert((t.job.as_str(), t.instance.as_str()), t);
        }
    }
    let target_name = if options.namespace.is_empty() {
        "target_info".to_owned()
    } else {
        format!("{}_target_info", options.namespace)
    };
    let mut out = String::with_capacity(series.len() * 96);
    let mut target_written = targets.is_empty();
    for (name, mut family) in families {
        if !target_written && target_name.as_str() < name {
            write_targets(&mut out, &target_name, &targets, options);
            target_written = true;
        }
        family
            .series
            .sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        write_family(&mut out, name, &family, options);
    }
    if !target_written {
        write_targets(&mut out, &target_name, &targets, options);
    }
    if options.open_metrics {
        out.push_str("# EOF\n");
    }
    Rendered {
        body: out,
        type_conflicts,
    }
}

fn write_targets(
    out: &mut String,
    name: &str,
    targets: &BTreeMap<(&str, &str), &Target>,
    options: Options<'_>,
) {
    write_header(
        out,
        name,
        "Target metadata",
        Kind::Gauge,
        options.open_metrics,
    );
    let mut sorted: Vec<&Target> = targets.values().copied().collect();
    sorted.sort_by(|a, b| a.labels.cmp(&b.labels));
    for t in sorted {
        out.push_str(name);
        write_labels(out, &t.labels, None);
        out.push(' ');
        write_value(out, 1.0, options.open_metrics);
        out.push('\n');
    }
}

fn write_header(out: &mut String, name: &str, help: &str, kind: Kind, open_metrics: bool) {
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if open_metrics => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out.push_str("\n# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(kind.as_str());
    out.push('\n');
}

fn write_family(out: &mut String, name: &str, family: &Family<'_>, options: Options<'_>) {
    let om = options.open_metrics;
    // OpenMetrics names the counter family without `_total` and adds it to the sample.
    let family_name = match family.kind {
        Kind::Counter if om => name.strip_suffix("_total").unwrap_or(name),
        _ => name,
    };
    write_header(out, family_name, family.help, family.kind, om);
    let total = format!("{family_name}_total");
    let created = format!("{family_name}_created");
    let bucket = format!("{name}_bucket");
    let sum_name = format!("{name}_sum");
    let count_name = format!("{name}_count");
    let counter_om = family.kind == Kind::Counter && om;
    for s in &family.series {
        let ts = options.send_timestamps.then_some(s.time);
        match &s.value {
            Value::Number(n) => {
                let sample = if counter_om { total.as_str() } else { name };
                sample_line(out, sample, &s.labels, None, n.as_f64(), ts, om);
                if counter_om && s.start > 0 {
                    sample_line(out, &created, &s.labels, None, s.start as f64 / 1e9, ts, om);
                }
            }
            Value::Histogram {
                count,
                sum,
                bounds,
                buckets,
            } => {
                for (le, cumulative) in cumulative_buckets(bounds, buckets) {
                    sample_count(
                        out,
                        &bucket,
                        &s.labels,
                        Some(("le", le)),
                        cumulative,
                        ts,
                        om,
                    );
                }
                sample_count(
                    out,
                    &bucket,
                    &s.labels,
                    Some(("le", f64::INFINITY)),
                    *count,
                    ts,
                    om,
                );
                sample_line(out, &sum_name, &s.labels, None, *sum, ts, om);
                sample_count(out, &count_name, &s.labels, None, *count, ts, om);
            }
            Value::Summary {
                count,
                sum,
                quantiles,
            } => {
                for (q, v) in quantiles {
                    sample_line(out, name, &s.labels, Some(("quantile", *q)), *v, ts, om);
                }
                sample_line(out, &sum_name, &s.labels, None, *sum, ts, om);
                sample_count(out, &count_name, &s.labels, None, *count, ts, om);
            }
        }
    }
}

/// OTel per-bucket counts as cumulative counts over the sorted, de-duplicated bounds (the
/// first occurrence of a repeated bound gives its count).
pub fn cumulative_buckets(bounds: &[f64], buckets: &[u64]) -> Vec<(f64, u64)> {
    let mut firsts: Vec<(f64, usize)> = Vec::with_capacity(bounds.len());
    for (i, b) in bounds.iter().enumerate() {
        if !firsts.iter().any(|(seen, _)| seen == b) {
            firsts.push((*b, i));
        }
    }
    firsts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut total = 0u64;
    firsts
        .into_iter()
        .map(|(bound, i)| {
            total = total.saturating_add(buckets.get(i).copied().unwrap_or(0));
            (bound, total)
        })
        .collect()
}

fn write_labels(out: &mut String, labels: &[(String, String)], extra: Option<(&str, f64)>) {
    write_labels_as(out, labels, extra, false);
}

fn write_labels_as(
    out: &mut String,
    labels: &[(String, String)],
    extra: Option<(&str, f64)>,
    om: bool,
) {
    if labels.is_empty() && extra.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (k, v) in labels {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(k);
        out.push_str("=\"");
        if v.contains(['\\', '"', '\n']) {
            for c in v.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    c => out.push(c),
                }
            }
        } else {
            out.push_str(v);
        }
        out.push('"');
    }
    if let Some((k, v)) = extra {
        if !first {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        write_value(out, v, om);
        out.push('"');
    }
    out.push('}');
}

fn write_timestamp(out: &mut String, ts: Option<u64>, om: bool) {
    if let Some(ns) = ts {
        let ms = ns / 1_000_000;
        out.push(' ');
        if om {
            write_value(out, ms as f64 / 1000.0, true);
        } else {
            write!(out, "{ms}").unwrap_or(());
        }
    }
}

fn sample_line(
    out: &mut String,
    name: &str,
    labels: &[(String, String)],
    extra: Option<(&str, f64)>,
    value: f64,
    ts: Option<u64>,
    om: bool,
) {
    out.push_str(name);
    write_labels_as(out, labels, extra, om);
    out.push(' ');
    write_value(out, value, om);
    write_timestamp(out, ts, om);
    out.push('\n');
}

fn sample_count(
    out: &mut String,
    name: &str,
    labels: &[(String, String)],
    extra: Option<(&str, f64)>,
    count: u64,
    ts: Option<u64>,
    om: bool,
) {
    if om {
        out.push_str(name);
        write_labels_as(out, labels, extra, om);
        write!(out, " {count}").unwrap_or(());
        write_timestamp(out, ts, om);
        out.push('\n');
    } else {
        sample_line(out, name, labels, extra, count as f64, ts, om);
    }
}

/// A float as the Go client writes it: Go's `%g` shortest form, `+Inf`, `-Inf`, `NaN`;
/// OpenMetrics adds `.0` to integral values.
pub fn write_value(out: &mut String, f: f64, om: bool) {
    if f.is_nan() {
        out.push_str("NaN");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    if f.fract() == 0.0 && f.abs() < 1e6 && !(f == 0.0 && f.is_sign_negative()) {
        // Integral values below Go's exponent threshold print as integers.
        write!(out, "{}", f as i64).unwrap_or(());
        if om {
            out.push_str(".0");
        }
        return;
    }
    let start = out.len();
    go_float(out, f);
    if om && !out[start..].contains(['e', '.']) {
        out.push_str(".0");
    }
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)` for finite `f`.
fn go_float(out: &mut String, f: f64) {
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    // Shortest digits; the exponent form below 1e-4 and from 1e6 up.
    if f != 0.0 && !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        write!(out, "{mantissa}e{sign}{:02}", exp.abs()).unwrap_or(());
    } else {
        write!(out, "{f}").unwrap_or(());
    }
}
