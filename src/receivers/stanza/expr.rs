//! The subset of expr-lang that stanza configs use in `if:`, `filter.expr`, router routes
//! and `EXPR(...)` values: `body`, `attributes`, `resource`, `timestamp` with `.key` and
//! `["key"]` access, `env("NAME")`, literals and lists, `== != < <= > >=`, `matches`,
//! `contains`, `startsWith`, `endsWith`, `in`, `not in`, `and`/`&&`, `or`/`||`,
//! `not`/`!`, parentheses. Anything else is rejected when the config is loaded.
//!
//! Written here because no crate implements expr-lang; the subset is small and every
//! construct outside it fails at config time with the position and the construct named.

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, ArrayValue};
use regex::Regex;

use super::entry::Entry;
use super::field::Root;
use super::value;

/// A compiled expression.
#[derive(Clone, Debug)]
pub struct Expr {
    node: Node,
    source: String,
}

#[derive(Clone, Debug)]
enum Node {
    Literal(AnyValue),
    List(Vec<Self>),
    Var(Var, Vec<Access>),
    Env(String),
    Not(Box<Self>),
    And(Box<Self>, Box<Self>),
    Or(Box<Self>, Box<Self>),
    Compare(Cmp, Box<Self>, Box<Self>),
    Matches(Box<Self>, Pattern),
    In(Box<Self>, Box<Self>, bool),
}

#[derive(Clone, Copy, Debug)]
enum Var {
    Root(Root),
    Timestamp,
}

#[derive(Clone, Debug)]
enum Access {
    Key(String),
    Index(i64),
}

#[derive(Clone, Debug)]
enum Pattern {
    Static(Regex),
    Dynamic(Box<Node>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    StartsWith,
    EndsWith,
}

/// Why an expression could not be evaluated for an entry.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct EvalError(String);

impl Expr {
    /// Compiles `source`.
    ///
    /// # Errors
    /// A syntax error or a construct outside the supported subset, with its position.
    pub fn compile(source: &str) -> Result<Self, String> {
        let tokens = lex(source)?;
        let mut parser = Parser { tokens, pos: 0 };
        let node = parser.or()?;
        if let Some(t) = parser.tokens.get(parser.pos) {
            return Err(format!(
                "unexpected {} at position {} in expression {source:?}",
                t.kind.describe(),
                t.at + 1
            ));
        }
        Ok(Self {
            node,
            source: source.to_owned(),
        })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates against `entry`.
    ///
    /// # Errors
    /// An operator applied to values of the wrong type.
    pub fn eval(&self, entry: &Entry) -> Result<AnyValue, EvalError> {
        eval(&self.node, entry).map(Cow::into_owned)
    }

    /// Evaluates to a boolean (`if:`, routes, filters).
    ///
    /// # Errors
    /// The result is not a boolean, or evaluation failed.
    pub fn eval_bool(&self, entry: &Entry) -> Result<bool, EvalError> {
        let v = eval(&self.node, entry)?;
        as_bool(&v).ok_or_else(|| {
            EvalError(format!(
                "expected bool, but got {} from expression {:?}",
                value::go_type(&v),
                self.source
            ))
        })
    }
}

/// A config value that is either static or `EXPR(...)`.
#[derive(Clone, Debug)]
pub enum ValueSpec {
    /// Used as is.
    Static(AnyValue),
    /// Evaluated per entry.
    Expr(Expr),
}

impl ValueSpec {
    /// Reads a YAML value; a string `EXPR(...)` compiles the expression inside.
    ///
    /// # Errors
    /// An invalid expression.
    pub fn from_yaml(v: &yaml_serde::Value) -> Result<Self, String> {
        if let Some(s) = v.as_str() {
            if let Some(inner) = s.strip_prefix("EXPR(").and_then(|r| r.strip_suffix(')')) {
                return Expr::compile(inner).map(Self::Expr);
            }
        }
        Ok(Self::Static(value::from_yaml(v)))
    }

    /// The value for `entry`.
    ///
    /// # Errors
    /// The expression failed.
    pub fn value(&self, entry: &Entry) -> Result<AnyValue, EvalError> {
        match self {
            Self::Static(v) => Ok(v.clone()),
            Self::Expr(e) => e.eval(entry),
        }
    }
}

fn as_bool(v: &AnyValue) -> Option<bool> {
    match v.value {
        Some(any_value::Value::BoolValue(b)) => Some(b),
        _ => None,
    }
}

fn boolean(b: bool) -> Cow<'static, AnyValue> {
    Cow::Owned(AnyValue {
        value: Some(any_value::Value::BoolValue(b)),
    })
}

fn number(v: &AnyValue) -> Option<f64> {
    match v.value {
        Some(any_value::Value::IntValue(i)) => Some(i as f64),
        Some(any_value::Value::DoubleValue(d)) => Some(d),
        _ => None,
    }
}

fn equal(a: &AnyValue, b: &AnyValue) -> bool {
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn eval<'a>(node: &'a Node, entry: &'a Entry) -> Result<Cow<'a, AnyValue>, EvalError> {
    Ok(match node {
        Node::Literal(v) => Cow::Borrowed(v),
        Node::List(items) => Cow::Owned(AnyValue {
            value: Some(any_value::Value::ArrayValue(ArrayValue {
                values: items
                    .iter()
                    .map(|n| eval(n, entry).map(Cow::into_owned))
                    .collect::<Result<_, _>>()?,
            })),
        }),
        Node::Var(var, path) => lookup(*var, path, entry),
        Node::Env(name) => Cow::Owned(value::string(std::env::var(name).unwrap_or_default())),
        Node::Not(inner) => {
            let v = eval(inner, entry)?;
            boolean(!as_bool(&v).ok_or_else(|| type_error("not", &v))?)
        }
        Node::And(a, b) => {
            let left = eval(a, entry)?;
            if !as_bool(&left).ok_or_else(|| type_error("and", &left))? {
                return Ok(boolean(false));
            }
            let right = eval(b, entry)?;
            boolean(as_bool(&right).ok_or_else(|| type_error("and", &right))?)
        }
        Node::Or(a, b) => {
            let left = eval(a, entry)?;
            if as_bool(&left).ok_or_else(|| type_error("or", &left))? {
                return Ok(boolean(true));
            }
            let right = eval(b, entry)?;
            boolean(as_bool(&right).ok_or_else(|| type_error("or", &right))?)
        }
        Node::Compare(op, a, b) => {
            let (l, r) = (eval(a, entry)?, eval(b, entry)?);
            boolean(compare(*op, &l, &r)?)
        }
        Node::Matches(a, pattern) => {
            let l = eval(a, entry)?;
            let text = value::as_str(&l).ok_or_else(|| type_error("matches", &l))?;
            match pattern {
                Pattern::Static(re) => boolean(re.is_match(text)),
                Pattern::Dynamic(p) => {
                    let p = eval(p, entry)?;
                    let src = value::as_str(&p).ok_or_else(|| type_error("matches", &p))?;
                    let re = regex::RegexBuilder::new(src)
                        .size_limit(1 << 20)
                        .build()
                        .map_err(|e| EvalError(e.to_string()))?;
                    boolean(re.is_match(text))
                }
            }
        }
        Node::In(a, b, negate) => {
            let (needle, hay) = (eval(a, entry)?, eval(b, entry)?);
            let found = match &hay.value {
                Some(any_value::Value::ArrayValue(list)) => {
                    list.values.iter().any(|v| equal(v, &needle))
                }
                Some(any_value::Value::KvlistValue(kv)) => {
                    let key = value::as_str(&needle).ok_or_else(|| type_error("in", &needle))?;
                    value::get(&kv.values, key).is_some()
                }
                None => false,
                _ => return Err(type_error("in", &hay)),
            };
            boolean(found != *negate)
        }
    })
}

fn type_error(op: &str, v: &AnyValue) -> EvalError {
    EvalError(format!("invalid operation: {op} ({})", value::go_type(v)))
}

fn compare(op: Cmp, l: &AnyValue, r: &AnyValue) -> Result<bool, EvalError> {
    let mismatch = || {
        EvalError(format!(
            "invalid operation: {} {op:?} {}",
            value::go_type(l),
            value::go_type(r)
        ))
    };
    match op {
        Cmp::Eq => return Ok(equal(l, r)),
        Cmp::Ne => return Ok(!equal(l, r)),
        _ => {}
    }
    if let (Some(a), Some(b)) = (number(l), number(r)) {
        return match op {
            Cmp::Lt => Ok(a < b),
            Cmp::Le => Ok(a <= b),
            Cmp::Gt => Ok(a > b),
            Cmp::Ge => Ok(a >= b),
            _ => Err(mismatch()),
        };
    }
    let (Some(a), Some(b)) = (value::as_str(l), value::as_str(r)) else {
        return Err(mismatch());
    };
    Ok(match op {
        Cmp::Lt => a < b,
        Cmp::Le => a <= b,
        Cmp::Gt => a > b,
        Cmp::Ge => a >= b,
        Cmp::Contains => a.contains(b),
        Cmp::StartsWith => a.starts_with(b),
        Cmp::EndsWith => a.ends_with(b),
        Cmp::Eq | Cmp::Ne => unreachable_eq(),
    })
}

const fn unreachable_eq() -> bool {
    false
}

fn lookup<'a>(var: Var, path: &[Access], entry: &'a Entry) -> Cow<'a, AnyValue> {
    let nil = || Cow::Owned(value::nil());
    let root: Cow<'a, AnyValue> = match var {
        Var::Timestamp => {
            return Cow::Owned(AnyValue {
                value: Some(any_value::Value::IntValue(
                    i64::try_from(entry.timestamp).unwrap_or(i64::MAX),
                )),
            })
        }
        Var::Root(Root::Body) => Cow::Borrowed(&entry.body),
        Var::Root(Root::Attributes | Root::Resource) => {
            let map = if matches!(var, Var::Root(Root::Attributes)) {
                &entry.attributes
            } else {
                &entry.resource
            };
            let Some((first, rest)) = path.split_first() else {
                return Cow::Owned(value::map(map.clone()));
            };
            let Access::Key(k) = first else {
                return nil();
            };
            let Some(v) = value::get(map, k) else {
                return nil();
            };
            return descend(v, rest).map_or_else(nil, Cow::Borrowed);
        }
    };
    match root {
        Cow::Borrowed(v) => descend(v, path).map_or_else(nil, Cow::Borrowed),
        Cow::Owned(v) => Cow::Owned(descend(&v, path).cloned().unwrap_or_else(value::nil)),
    }
}

fn descend<'a>(mut v: &'a AnyValue, path: &[Access]) -> Option<&'a AnyValue> {
    for access in path {
        v = match (access, &v.value) {
            (Access::Key(k), Some(any_value::Value::KvlistValue(kv))) => value::get(&kv.values, k)?,
            (Access::Index(i), Some(any_value::Value::ArrayValue(a))) => {
                let len = i64::try_from(a.values.len()).ok()?;
                let i = if *i < 0 { len + i } else { *i };
                a.values.get(usize::try_from(i).ok()?)?
            }
            _ => return None,
        };
    }
    Some(v)
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    Op(&'static str),
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Self::Ident(s) => format!("identifier {s:?}"),
            Self::Str(s) => format!("string {s:?}"),
            Self::Int(i) => format!("number {i}"),
            Self::Float(f) => format!("number {f}"),
            Self::Op(o) => format!("{o:?}"),
        }
    }
}

#[derive(Clone, Debug)]
struct Token {
    kind: Tok,
    at: usize,
}

const OPERATORS: [&str; 19] = [
    "==", "!=", "<=", ">=", "&&", "||", "?.", "<", ">", "!", "(", ")", "[", "]", ",", ".", "+",
    "-", "*",
];

fn lex(src: &str) -> Result<Vec<Token>, String> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let at = i;
        if c == b'"' || c == b'\'' || c == b'`' {
            let mut s = String::new();
            let mut chars = src[i + 1..].char_indices();
            loop {
                match chars.next() {
                    None => return Err(format!("unterminated string at position {}", at + 1)),
                    Some((j, ch)) if ch as u32 == u32::from(c) => {
                        i += 1 + j + 1;
                        break;
                    }
                    Some((_, '\\')) if c != b'`' => match chars.next() {
                        Some((_, 'n')) => s.push('\n'),
                        Some((_, 't')) => s.push('\t'),
                        Some((_, 'r')) => s.push('\r'),
                        Some((_, ch)) => s.push(ch),
                        None => return Err(format!("unterminated string at position {}", at + 1)),
                    },
                    Some((_, ch)) => s.push(ch),
                }
            }
            out.push(Token {
                kind: Tok::Str(s),
                at,
            });
            continue;
        }
        if c.is_ascii_digit() {
            let start = i;
            while i < bytes.len()
                && (bytes[i].is_ascii_digit() || bytes[i] == b'.' || bytes[i] == b'_')
            {
                i += 1;
            }
            let text = src[start..i].replace('_', "");
            let kind = if text.contains('.') {
                Tok::Float(text.parse().map_err(|_| format!("bad number {text:?}"))?)
            } else {
                Tok::Int(text.parse().map_err(|_| format!("bad number {text:?}"))?)
            };
            out.push(Token { kind, at });
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' || c == b'$' {
            let start = i;
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'$')
            {
                i += 1;
            }
            out.push(Token {
                kind: Tok::Ident(src[start..i].to_owned()),
                at,
            });
            continue;
        }
        let Some(op) = OPERATORS.iter().find(|op| src[i..].starts_with(**op)) else {
            let ch = src[i..].chars().next().unwrap_or('?');
            return Err(format!(
                "unsupported character {ch:?} at position {}",
                at + 1
            ));
        };
        i += op.len();
        out.push(Token {
            kind: Tok::Op(op),
            at,
        });
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|t| &t.kind)
    }

    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.tokens.get(self.pos + n).map(|t| &t.kind)
    }

    fn position(&self) -> usize {
        self.tokens
            .get(self.pos)
            .or(self.tokens.last())
            .map_or(0, |t| t.at)
            + 1
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Some(Tok::Op(o)) if *o == op)
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(w)) if w == word)
    }

    fn expect_op(&mut self, op: &str) -> Result<(), String> {
        if self.is_op(op) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(&format!("expected {op:?}")))
        }
    }

    fn unexpected(&self, what: &str) -> String {
        match self.peek() {
            Some(t) => format!(
                "{what}, found {} at position {}",
                t.describe(),
                self.position()
            ),
            None => format!("{what}, found end of expression"),
        }
    }

    fn or(&mut self) -> Result<Node, String> {
        let mut left = self.and()?;
        while self.is_op("||") || self.is_word("or") {
            self.pos += 1;
            left = Node::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Node, String> {
        let mut left = self.not()?;
        while self.is_op("&&") || self.is_word("and") {
            self.pos += 1;
            left = Node::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Node, String> {
        if self.is_op("!")
            || (self.is_word("not") && !matches!(self.peek_at(1), Some(Tok::Ident(w)) if w == "in"))
        {
            self.pos += 1;
            return Ok(Node::Not(Box::new(self.not()?)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Node, String> {
        let left = self.primary()?;
        let cmp = match self.peek() {
            Some(Tok::Op("==")) => Some(Cmp::Eq),
            Some(Tok::Op("!=")) => Some(Cmp::Ne),
            Some(Tok::Op("<")) => Some(Cmp::Lt),
            Some(Tok::Op("<=")) => Some(Cmp::Le),
            Some(Tok::Op(">")) => Some(Cmp::Gt),
            Some(Tok::Op(">=")) => Some(Cmp::Ge),
            Some(Tok::Ident(w)) if w == "contains" => Some(Cmp::Contains),
            Some(Tok::Ident(w)) if w == "startsWith" => Some(Cmp::StartsWith),
            Some(Tok::Ident(w)) if w == "endsWith" => Some(Cmp::EndsWith),
            _ => None,
        };
        if let Some(cmp) = cmp {
            self.pos += 1;
            let right = self.primary()?;
            return Ok(Node::Compare(cmp, Box::new(left), Box::new(right)));
        }
        if self.is_word("matches") {
            self.pos += 1;
            let right = self.primary()?;
            let pattern = match right {
                Node::Literal(v) => {
                    let src = value::as_str(&v).ok_or("matches needs a string pattern")?;
                    Pattern::Static(
                        Regex::new(src).map_err(|e| format!("invalid regex in matches: {e}"))?,
                    )
                }
                other => Pattern::Dynamic(Box::new(other)),
            };
            return Ok(Node::Matches(Box::new(left), pattern));
        }
        let negate =
            self.is_word("not") && matches!(self.peek_at(1), Some(Tok::Ident(w)) if w == "in");
        if negate {
            self.pos += 1;
        }
        if self.is_word("in") {
            self.pos += 1;
            let right = self.primary()?;
            return Ok(Node::In(Box::new(left), Box::new(right), negate));
        }
        if let Some(Tok::Op(op @ ("+" | "-" | "*"))) = self.peek() {
            return Err(format!(
                "arithmetic ({op:?} at position {}) is not supported in expressions",
                self.position()
            ));
        }
        Ok(left)
    }

    fn primary(&mut self) -> Result<Node, String> {
        let at = self.position();
        let Some(tok) = self.peek().cloned() else {
            return Err(self.unexpected("expected a value"));
        };
        self.pos += 1;
        match tok {
            Tok::Str(s) => Ok(Node::Literal(value::string(s))),
            Tok::Int(i) => Ok(Node::Literal(AnyValue {
                value: Some(any_value::Value::IntValue(i)),
            })),
            Tok::Float(f) => Ok(Node::Literal(AnyValue {
                value: Some(any_value::Value::DoubleValue(f)),
            })),
            Tok::Op("-") => match self.peek().cloned() {
                Some(Tok::Int(i)) => {
                    self.pos += 1;
                    Ok(Node::Literal(AnyValue {
                        value: Some(any_value::Value::IntValue(-i)),
                    }))
                }
                Some(Tok::Float(f)) => {
                    self.pos += 1;
                    Ok(Node::Literal(AnyValue {
                        value: Some(any_value::Value::DoubleValue(-f)),
                    }))
                }
                _ => Err(format!(
                    "arithmetic (\"-\" at position {at}) is not supported in expressions"
                )),
            },
            Tok::Op("(") => {
                let inner = self.or()?;
                self.expect_op(")")?;
                Ok(inner)
            }
            Tok::Op("[") => {
                let mut items = Vec::new();
                while !self.is_op("]") {
                    items.push(self.or()?);
                    if !self.is_op("]") {
                        self.expect_op(",")?;
                    }
                }
                self.pos += 1;
                Ok(Node::List(items))
            }
            Tok::Ident(name) => self.ident(&name, at),
            Tok::Op(op) => Err(format!("unexpected {op:?} at position {at}")),
        }
    }

    fn ident(&mut self, name: &str, at: usize) -> Result<Node, String> {
        let var = match name {
            "true" => return Ok(Node::Literal(AnyValue { value: Some(any_value::Value::BoolValue(true)) })),
            "false" => return Ok(Node::Literal(AnyValue { value: Some(any_value::Value::BoolValue(false)) })),
            "nil" => return Ok(Node::Literal(value::nil())),
            "env" => {
                self.expect_op("(")?;
                let Some(Tok::Str(var)) = self.peek().cloned() else {
                    return Err(self.unexpected("env() takes one string literal"));
                };
                self.pos += 1;
                self.expect_op(")")?;
                return Ok(Node::Env(var));
            }
            "body" | "$body" | "$record" => Var::Root(Root::Body),
            "attributes" | "$attributes" => Var::Root(Root::Attributes),
            "resource" | "$resource" => Var::Root(Root::Resource),
            "timestamp" | "$timestamp" => Var::Timestamp,
            other if self.is_op("(") => {
                return Err(format!("function {other:?} (position {at}) is not supported in expressions"))
            }
            other => return Err(format!("unknown name {other:?} at position {at} (use body, attributes, resource, timestamp or env(\"NAME\"))")),
        };
        let mut path = Vec::new();
        loop {
            if self.is_op(".") || self.is_op("?.") {
                self.pos += 1;
                match self.peek().cloned() {
                    Some(Tok::Ident(key)) => {
                        self.pos += 1;
                        path.push(Access::Key(key));
                    }
                    _ => return Err(self.unexpected("expected a key after '.'")),
                }
            } else if self.is_op("[") {
                self.pos += 1;
                match self.peek().cloned() {
                    Some(Tok::Str(key)) => path.push(Access::Key(key)),
                    Some(Tok::Int(i)) => path.push(Access::Index(i)),
                    _ => {
                        return Err(
                            self.unexpected("expected a string or integer literal inside []")
                        )
                    }
                }
                self.pos += 1;
                self.expect_op("]")?;
            } else {
                break;
            }
        }
        if self.is_op("(") {
            return Err(format!(
                "method calls (position {}) are not supported in expressions",
                self.position()
            ));
        }
        Ok(Node::Var(var, path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::KeyValue;

    fn entry() -> Entry {
        let mut e = Entry::new(
            value::map(vec![KeyValue {
                key_strindex: 0,
                key: "status".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::DoubleValue(404.0)),
                }),
            }]),
            0,
        );
        e.attributes.push(KeyValue {
            key_strindex: 0,
            key: "http.method".into(),
            value: Some(value::string("GET")),
        });
        e
    }

    fn run(src: &str) -> Result<bool, EvalError> {
        Expr::compile(src).unwrap().eval_bool(&entry())
    }

    #[test]
    fn evaluates_the_supported_subset() {
        assert!(run("body.status == 404").unwrap());
        assert!(run("body.status >= 400 and body.status < 500").unwrap());
        assert!(run(r#"attributes["http.method"] in ["GET", "HEAD"]"#).unwrap());
        assert!(run(r#"attributes["http.method"] not in ["POST"]"#).unwrap());
        assert!(run(r#"attributes["http.method"] matches "^G"  && !(body.status == 1)"#).unwrap());
        assert!(run(r#"not (body.missing == "x") || false"#).unwrap());
        assert!(run(r#""status" in body"#).unwrap());
        assert!(run(r#"attributes["http.method"] startsWith "GE""#).unwrap());
        assert!(run("body.missing == nil").unwrap());
        assert!(run(r#"body.status > "a""#).is_err());
        assert!(run("body.status").is_err());
    }

    #[test]
    fn rejects_what_is_outside_the_subset() {
        for (src, needle) in [
            ("len(body) > 1", "function \"len\""),
            ("body.a + 1 == 2", "arithmetic"),
            ("foo == 1", "unknown name \"foo\""),
            ("body.a ==", "expected a value"),
            ("body.a == 1 ? 2 : 3", "unsupported character"),
            ("body.trim()", "method calls"),
        ] {
            let err = Expr::compile(src).unwrap_err();
            assert!(err.contains(needle), "{src}: {err}");
        }
    }

    #[test]
    fn expr_values_and_env() {
        let v = ValueSpec::from_yaml(&yaml_serde::Value::String(r#"EXPR(body.status)"#.into()))
            .unwrap();
        assert_eq!(
            v.value(&entry()).unwrap().value,
            Some(any_value::Value::DoubleValue(404.0))
        );
        let v = ValueSpec::from_yaml(&yaml_serde::Value::String("plain".into())).unwrap();
        assert_eq!(v.value(&entry()).unwrap(), value::string("plain"));
    }
}
