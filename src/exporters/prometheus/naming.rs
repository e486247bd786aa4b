//! OTel → Prometheus names: metric names with unit and type suffixes, label names
//! (contrib `pkg/translator/prometheus`, `NormalizeName` gate on).

/// The metric shape naming depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A gauge (or a non-monotonic sum).
    Gauge,
    /// A monotonic sum.
    Counter,
    /// A histogram or summary.
    Other,
}

/// Letter-or-digit runs of `s` joined with `_` (`CleanUpString`).
pub fn clean(s: &str) -> String {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

fn unit_word(unit: &str) -> &str {
    match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        other => other,
    }
}

fn per_unit_word(unit: &str) -> &str {
    match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => other,
    }
}

/// The Prometheus metric name for an OTel metric. `namespace` is already cleaned.
pub fn metric_name(
    name: &str,
    unit: &str,
    shape: Shape,
    namespace: &str,
    suffixes: bool,
) -> String {
    let out = if suffixes {
        normalized(name, unit, shape, namespace)
    } else {
        let base: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if namespace.is_empty() {
            base
        } else {
            format!("{namespace}_{base}")
        }
    };
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{out}")
    } else {
        out
    }
}

fn normalized(name: &str, unit: &str, shape: Shape, namespace: &str) -> String {
    let mut tokens: Vec<String> = name
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    let mut units = unit.splitn(2, '/');
    let main = units.next().unwrap_or("").trim();
    if !main.is_empty() && !main.contains(['{', '}']) {
        let word = clean(unit_word(main));
        if !word.is_empty() && !tokens.contains(&word) {
            tokens.push(word);
        }
    }
    if let Some(per) = units.next().map(str::trim) {
        if !per.is_empty() && !per.contains(['{', '}']) {
            let word = clean(per_unit_word(per));
            if !word.is_empty() && !tokens.contains(&word) {
                tokens.push("per".to_owned());
                tokens.push(word);
            }
        }
    }
    match shape {
        Shape::Counter => {
            tokens.retain(|t| t != "total");
            tokens.push("total".to_owned());
        }
        Shape::Gauge if unit == "1" => {
            tokens.retain(|t| t != "ratio");
            tokens.push("ratio".to_owned());
        }
        Shape::Gauge | Shape::Other => {}
    }
    if !namespace.is_empty() {
        tokens.insert(0, namespace.to_owned());
    }
    tokens.join("_")
}

/// A Prometheus label name for an attribute key (`NormalizeLabel`): every character
/// outside `[A-Za-z0-9_]` becomes `_`; a leading digit or a single leading `_` gets `key`
/// in front.
pub fn label_name(key: &str) -> String {
    if key.is_empty() {
        return String::new();
    }
    let out: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        format!("key_{out}")
    } else if out.starts_with('_') && !out.starts_with("__") {
        format!("key{out}")
    } else {
        out
    }
}

/// True for a valid Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
