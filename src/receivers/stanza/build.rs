//! Operator configs → a compiled [`Pipeline`]: `type`, `id`, `output` and the common keys
//! are read here, each operator's own keys are decoded into its typed config (unknown keys
//! are errors), and outputs are resolved and checked for cycles.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use yaml_serde::{Mapping, Value};

use super::expr::{Expr, ValueSpec};
use super::field::{Field, Root};
use super::parse::{self, CsvFormat, CsvParser, Format, Parser};
use super::route::{Filter, Route, Router};
use super::severity::{SeverityConfig, SeverityParser};
use super::time::{TimeConfig, TimeParser};
use super::trace::{ScopeNameConfig, ScopeNameParser, TraceConfig, TraceParser};
use super::transform;
use super::{Kind, Node, OnError, Pipeline, Target, Transform};
use crate::config::{decode, FieldError};

/// Every operator type this build knows.
pub const TYPES: &[&str] = &[
    "json_parser",
    "regex_parser",
    "key_value_parser",
    "csv_parser",
    "move",
    "copy",
    "add",
    "remove",
    "retain",
    "flatten",
    "severity_parser",
    "time_parser",
    "trace_parser",
    "scope_name_parser",
    "router",
    "filter",
    "noop",
    "unquote",
    "assign_keys",
    "uri_parser",
    "json_array_parser",
    "syslog_parser",
    "recombine",
];

/// `output` / `default`: one id or a list.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(untagged)]
enum Outputs {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl Outputs {
    fn ids(&self) -> Vec<String> {
        match self {
            Self::None => Vec::new(),
            Self::One(s) => vec![s.clone()],
            Self::Many(v) => v.clone(),
        }
    }
}

/// One operator's map with keys taken out as they are read; what is left is decoded into
/// the operator's own config.
pub(super) struct Section {
    map: Mapping,
}

impl Section {
    pub(super) fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key)
    }

    pub(super) fn take_as<T: serde::de::DeserializeOwned + Default>(
        &mut self,
        key: &str,
    ) -> Result<Option<T>, FieldError> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => decode::<T>(&v).map(Some).map_err(|e| e.under(key)),
        }
    }

    pub(super) fn take_string(&mut self, key: &str) -> Result<Option<String>, FieldError> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(FieldError::at(&[key], "must be a string")),
        }
    }

    pub(super) fn take_field(&mut self, key: &str) -> Result<Option<Field>, FieldError> {
        self.take_string(key)?
            .map(|s| Field::parse(&s).map_err(|e| FieldError::at(&[key], e)))
            .transpose()
    }

    pub(super) fn rest<T: serde::de::DeserializeOwned + Default>(self) -> Result<T, FieldError> {
        decode(&Value::Mapping(self.map))
    }
}

pub(super) fn required<T>(v: Option<T>, key: &str) -> Result<T, FieldError> {
    v.ok_or_else(|| FieldError::at(&[key], format!("missing required field '{key}'")))
}

/// The keys every transformer and parser takes: `if`, `on_error`.
pub(super) fn common(s: &mut Section) -> Result<(Option<Expr>, OnError), FieldError> {
    let cond = s
        .take_string("if")?
        .map(|src| Expr::compile(&src).map_err(|e| FieldError::at(&["if"], e)))
        .transpose()?;
    let on_error = s
        .take_string("on_error")?
        .map(|t| OnError::parse(&t).map_err(|e| FieldError::at(&["on_error"], e)))
        .transpose()?
        .unwrap_or(OnError::Send);
    Ok((cond, on_error))
}

pub(super) fn block<C: serde::de::DeserializeOwned + Default, P>(
    s: &mut Section,
    key: &str,
    build: impl FnOnce(C) -> Result<P, String>,
) -> Result<Option<P>, FieldError> {
    s.take_as::<C>(key)?
        .map(|c| build(c).map_err(|e| FieldError::at(&[key], e)))
        .transpose()
}

pub(super) fn parser(s: &mut Section, format: Box<dyn Format>) -> Result<Parser, FieldError> {
    let parse_from = s.take_field("parse_from")?.unwrap_or_else(Field::body);
    let parse_to = s.take_field("parse_to")?.unwrap_or_else(Field::attributes);
    let body = s.take_field("body")?;
    if body.is_some() && parse_to == Field::body() {
        return Err(FieldError::at(
            &["body"],
            "`body` cannot be combined with `parse_to: body`",
        ));
    }
    Ok(Parser {
        parse_from,
        parse_to,
        body,
        time: block(s, "timestamp", TimeParser::build)?,
        severity: block(s, "severity", SeverityParser::build)?,
        trace: block(s, "trace", |c| Ok(TraceParser::build(c)))?,
        scope_name: block(s, "scope_name", ScopeNameParser::build)?,
        format,
    })
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct JsonConfig {
    parse_ints: bool,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RegexConfig {
    regex: Option<String>,
    cache: RegexCache,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RegexCache {
    size: usize,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct KeyValueConfig {
    delimiter: Option<String>,
    pair_delimiter: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct CsvConfig {
    header: Option<String>,
    header_delimiter: Option<String>,
    header_attribute: Option<String>,
    delimiter: Option<String>,
    lazy_quotes: bool,
    ignore_quotes: bool,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FilterConfig {
    expr: Option<String>,
    drop_ratio: Option<f64>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RouterConfig {
    routes: Vec<RouteConfig>,
    default: Outputs,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RouteConfig {
    expr: Option<String>,
    output: Outputs,
    attributes: BTreeMap<String, Value>,
}

/// An operator without keys of its own.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct Empty {}

fn one_byte(text: Option<String>, key: &str, default: u8) -> Result<u8, FieldError> {
    match text {
        None => Ok(default),
        Some(t) if t.len() == 1 => Ok(t.as_bytes()[0]),
        Some(t) if t == "\\t" => Ok(b'\t'),
        Some(_) => Err(FieldError::at(&[key], "must be a single character")),
    }
}

/// A route before its outputs are resolved: condition, attributes, output ids.
type PendingRoute = (Expr, Vec<(String, ValueSpec)>, Vec<String>);

/// What [`build`] makes of one operator before outputs are resolved.
enum Built {
    Node(Kind),
    Router(Vec<PendingRoute>, Vec<String>),
}

fn build_kind(kind: &str, mut s: Section) -> Result<Built, FieldError> {
    let transform = |op: Box<dyn Transform>, cond, on_error| {
        Built::Node(Kind::Transform { op, cond, on_error })
    };
    Ok(match kind {
        "noop" => {
            s.rest::<Empty>()?;
            Built::Node(Kind::Noop)
        }
        "router" => {
            let config: RouterConfig = s.rest()?;
            let mut routes = Vec::new();
            for (i, r) in config.routes.into_iter().enumerate() {
                let at = |e: FieldError| e.under(i.to_string()).under("routes");
                let src = required(r.expr, "expr").map_err(at)?;
                let expr = Expr::compile(&src).map_err(|e| at(FieldError::at(&["expr"], e)))?;
                let mut attributes = Vec::new();
                for (k, v) in r.attributes {
                    let spec = ValueSpec::from_yaml(&v)
                        .map_err(|e| at(FieldError::at(&["attributes", &k], e)))?;
                    attributes.push((k, spec));
                }
                let outputs = r.output.ids();
                if outputs.is_empty() {
                    return Err(at(FieldError::at(
                        &["output"],
                        "missing required field 'output'",
                    )));
                }
                routes.push((expr, attributes, outputs));
            }
            Built::Router(routes, config.default.ids())
        }
        "filter" => {
            let (cond, on_error) = common(&mut s)?;
            let config: FilterConfig = s.rest()?;
            let src = required(config.expr, "expr")?;
            let expr = Expr::compile(&src).map_err(|e| FieldError::at(&["expr"], e))?;
            let drop_ratio = config.drop_ratio.unwrap_or(1.0);
            if !(0.0..=1.0).contains(&drop_ratio) {
                return Err(FieldError::at(
                    &["drop_ratio"],
                    "drop_ratio must be a number between 0 and 1",
                ));
            }
            Built::Node(Kind::Filter {
                filter: Filter { expr, drop_ratio },
                cond,
                on_error,
            })
        }
        "json_parser" | "regex_parser" | "key_value_parser" | "csv_parser" => {
            let (cond, on_error) = common(&mut s)?;
            let mut p = parser(&mut s, Box::new(parse::Unused))?;
            let op: Box<dyn Transform> = match kind {
                "json_parser" => {
                    let c: JsonConfig = s.rest()?;
                    p.format = Box::new(parse::Json {
                        parse_ints: c.parse_ints,
                    });
                    Box::new(p)
                }
                "regex_parser" => {
                    let c: RegexConfig = s.rest()?;
                    let pattern = required(c.regex, "regex")?;
                    p.format = Box::new(
                        parse::RegexFormat::new(&pattern, c.cache.size)
                            .map_err(|e| FieldError::at(&["regex"], e))?,
                    );
                    Box::new(p)
                }
                "key_value_parser" => {
                    let c: KeyValueConfig = s.rest()?;
                    let delimiter = c.delimiter.unwrap_or_else(|| "=".to_owned());
                    if delimiter.is_empty() {
                        return Err(FieldError::at(
                            &["delimiter"],
                            "delimiter is a required parameter",
                        ));
                    }
                    if c.pair_delimiter.as_deref() == Some(delimiter.as_str()) {
                        return Err(FieldError::at(
                            &["pair_delimiter"],
                            "delimiter and pair_delimiter cannot be the same value",
                        ));
                    }
                    p.format = Box::new(parse::KeyValueFormat {
                        delimiter,
                        pair_delimiter: c.pair_delimiter.filter(|d| !d.is_empty()),
                    });
                    Box::new(p)
                }
                _ => {
                    let c: CsvConfig = s.rest()?;
                    let delimiter = one_byte(c.delimiter, "delimiter", b',')?;
                    let header_delimiter =
                        one_byte(c.header_delimiter, "header_delimiter", delimiter)?;
                    let header = match (&c.header, &c.header_attribute) {
                        (Some(_), Some(_)) => return Err(FieldError::new(
                            "only one header parameter can be set: 'header' or 'header_attribute'",
                        )),
                        (None, None) => {
                            return Err(FieldError::new(
                                "missing header: set 'header' or 'header_attribute'",
                            ))
                        }
                        (Some(h), None) => Some(
                            parse::csv_fields(h, header_delimiter, true)
                                .map_err(|e| FieldError::at(&["header"], e))?,
                        ),
                        (None, Some(_)) => None,
                    };
                    if c.lazy_quotes && c.ignore_quotes {
                        return Err(FieldError::new(
                            "only one of 'ignore_quotes' or 'lazy_quotes' can be true",
                        ));
                    }
                    Box::new(CsvParser {
                        common: p,
                        csv: CsvFormat {
                            header,
                            header_attribute: c.header_attribute,
                            delimiter,
                            header_delimiter,
                            ignore_quotes: c.ignore_quotes,
                        },
                    })
                }
            };
            transform(op, cond, on_error)
        }
        "move" | "copy" => {
            let (cond, on_error) = common(&mut s)?;
            let from = required(s.take_field("from")?, "from")?;
            let to = required(s.take_field("to")?, "to")?;
            s.rest::<Empty>()?;
            let op: Box<dyn Transform> = if kind == "move" {
                Box::new(transform::Move { from, to })
            } else {
                Box::new(transform::Copy { from, to })
            };
            transform(op, cond, on_error)
        }
        "add" => {
            let (cond, on_error) = common(&mut s)?;
            let field = required(s.take_field("field")?, "field")?;
            let raw = required(s.take("value"), "value")?;
            let value = ValueSpec::from_yaml(&raw).map_err(|e| FieldError::at(&["value"], e))?;
            s.rest::<Empty>()?;
            transform(Box::new(transform::Add { field, value }), cond, on_error)
        }
        "remove" => {
            let (cond, on_error) = common(&mut s)?;
            let field = required(s.take_field("field")?, "field")?;
            s.rest::<Empty>()?;
            transform(Box::new(transform::Remove { field }), cond, on_error)
        }
        "retain" => {
            let (cond, on_error) = common(&mut s)?;
            let fields: Vec<Field> = s.take_as("fields")?.unwrap_or_default();
            if fields.is_empty() {
                return Err(FieldError::at(&["fields"], "retain: 'fields' is empty"));
            }
            s.rest::<Empty>()?;
            transform(Box::new(transform::Retain { fields }), cond, on_error)
        }
        "flatten" => {
            let (cond, on_error) = common(&mut s)?;
            let field = required(s.take_field("field")?, "field")?;
            if field.root != Root::Body || field.keys.is_empty() {
                return Err(FieldError::at(
                    &["field"],
                    "flatten: field must be a body field below the root",
                ));
            }
            s.rest::<Empty>()?;
            transform(Box::new(transform::Flatten { field }), cond, on_error)
        }
        "severity_parser" => {
            let (cond, on_error) = common(&mut s)?;
            let c: SeverityConfig = s.rest()?;
            let p = SeverityParser::build(c).map_err(FieldError::new)?;
            transform(Box::new(Standalone::Severity(p)), cond, on_error)
        }
        "time_parser" => {
            let (cond, on_error) = common(&mut s)?;
            let c: TimeConfig = s.rest()?;
            let p = TimeParser::build(c).map_err(FieldError::new)?;
            transform(Box::new(Standalone::Time(p)), cond, on_error)
        }
        "trace_parser" => {
            let (cond, on_error) = common(&mut s)?;
            let c: TraceConfig = s.rest()?;
            transform(
                Box::new(Standalone::Trace(TraceParser::build(c))),
                cond,
                on_error,
            )
        }
        "scope_name_parser" => {
            let (cond, on_error) = common(&mut s)?;
            let c: ScopeNameConfig = s.rest()?;
            let p = ScopeNameParser::build(c).map_err(FieldError::new)?;
            transform(Box::new(Standalone::Scope(p)), cond, on_error)
        }
        "unquote" => Built::Node(super::unquote::build(s)?),
        "assign_keys" => Built::Node(super::assign_keys::build(s)?),
        "uri_parser" => Built::Node(super::uri::build(s)?),
        "json_array_parser" => Built::Node(super::json_array::build(s)?),
        "syslog_parser" => Built::Node(super::syslog::build(s)?),
        "recombine" => Built::Node(super::recombine::build(s)?),
        other => {
            return Err(FieldError::at(
                &["type"],
                format!(
                    "unsupported type '{other}' (supported: {})",
                    TYPES.join(", ")
                ),
            ))
        }
    })
}

/// The four sub-parsers used as operators of their own.
#[derive(Debug)]
enum Standalone {
    Severity(SeverityParser),
    Time(TimeParser),
    Trace(TraceParser),
    Scope(ScopeNameParser),
}

impl Transform for Standalone {
    fn apply(&self, entry: &mut super::Entry) -> Result<(), String> {
        match self {
            Self::Severity(p) => p.parse(entry),
            Self::Time(p) => p.parse(entry),
            Self::Trace(p) => p.parse(entry),
            Self::Scope(p) => p.parse(entry),
        }
    }
}

/// Compiles an `operators:` list. Errors carry the path below `operators` (`0::regex`).
///
/// # Errors
/// The first problem: a missing or unknown `type`, a bad key, a duplicate id, an output
/// that names no operator, a cycle.
pub fn build(operators: &[Value]) -> Result<Pipeline, FieldError> {
    struct Pending {
        id: String,
        built: Built,
        outputs: Vec<String>,
    }
    let mut pending: Vec<Pending> = Vec::new();
    let mut ids: HashMap<String, usize> = HashMap::new();
    for (i, raw) in operators.iter().enumerate() {
        let at = |e: FieldError| e.under(i.to_string());
        let Value::Mapping(map) = raw else {
            return Err(at(FieldError::new(
                "an operator must be a map with a 'type'",
            )));
        };
        let mut s = Section { map: map.clone() };
        let kind = s
            .take_string("type")
            .map_err(at)?
            .ok_or_else(|| at(FieldError::at(&["type"], "missing required field 'type'")))?;
        let id = s
            .take_string("id")
            .map_err(at)?
            .unwrap_or_else(|| kind.clone());
        let outputs = s
            .take_as::<Outputs>("output")
            .map_err(at)?
            .unwrap_or_default()
            .ids();
        if kind == "router" && !outputs.is_empty() {
            return Err(at(FieldError::at(
                &["output"],
                "router sends entries by its routes, not 'output'",
            )));
        }
        let built = build_kind(&kind, s).map_err(at)?;
        if ids.insert(id.clone(), i).is_some() {
            return Err(at(FieldError::at(
                &["id"],
                format!("duplicate operator id \"{id}\" (give each operator its own 'id')"),
            )));
        }
        pending.push(Pending { id, built, outputs });
    }
    let count = pending.len();
    let resolve = |i: usize, names: &[String], key: &str| -> Result<Vec<Target>, FieldError> {
        names
            .iter()
            .map(|n| {
                ids.get(n).map(|&j| Target::Op(j)).ok_or_else(|| {
                    FieldError::at(
                        &[&i.to_string(), key],
                        format!("operator \"{n}\" does not exist"),
                    )
                })
            })
            .collect()
    };
    let mut nodes = Vec::with_capacity(count);
    for (i, p) in pending.into_iter().enumerate() {
        let default_next = if i + 1 < count {
            Target::Op(i + 1)
        } else {
            Target::Emit
        };
        let (kind, outputs) = match p.built {
            Built::Node(kind) => {
                let outputs = if p.outputs.is_empty() {
                    vec![default_next]
                } else {
                    resolve(i, &p.outputs, "output")?
                };
                (kind, outputs)
            }
            Built::Router(routes, default) => {
                let mut compiled = Vec::new();
                for (expr, attributes, outs) in routes {
                    compiled.push(Route {
                        expr,
                        attributes,
                        outputs: resolve(i, &outs, "routes")?,
                    });
                }
                let default = resolve(i, &default, "default")?;
                (
                    Kind::Router(Router {
                        routes: compiled,
                        default,
                    }),
                    Vec::new(),
                )
            }
        };
        nodes.push(Node {
            id: p.id,
            kind,
            outputs,
        });
    }
    let pipeline = Pipeline { nodes };
    check_cycles(&pipeline)?;
    Ok(pipeline)
}

fn successors(node: &Node) -> Vec<usize> {
    let targets: Vec<Target> = match &node.kind {
        Kind::Router(r) => r
            .routes
            .iter()
            .flat_map(|r| r.outputs.iter().copied())
            .chain(r.default.iter().copied())
            .collect(),
        _ => node.outputs.clone(),
    };
    targets
        .into_iter()
        .filter_map(|t| match t {
            Target::Op(i) => Some(i),
            Target::Emit => None,
        })
        .collect()
}

fn check_cycles(p: &Pipeline) -> Result<(), FieldError> {
    // 0 = unvisited, 1 = on the current path, 2 = done.
    fn visit(p: &Pipeline, i: usize, state: &mut [u8]) -> Result<(), String> {
        match state[i] {
            1 => return Err(p.nodes[i].id.clone()),
            2 => return Ok(()),
            _ => {}
        }
        state[i] = 1;
        for j in successors(&p.nodes[i]) {
            visit(p, j, state)?;
        }
        state[i] = 2;
        Ok(())
    }
    let mut state = vec![0u8; p.nodes.len()];
    for i in 0..p.nodes.len() {
        visit(p, i, &mut state).map_err(|id| {
            FieldError::new(format!("operator pipeline has a cycle through \"{id}\""))
        })?;
    }
    Ok(())
}
