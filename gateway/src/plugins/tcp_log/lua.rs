//! `custom_fields_by_lua` without a Lua VM: a small evaluator for the snippet forms Kong's
//! documentation and the seeds use, checked when the config loads.
//!
//! Accepted chunks: `local <name> = <expr>` statements followed by `return <expr>`, where
//! `<expr>` is a string / number / boolean / `nil` literal, a local, or one of the calls
//! `kong.log.serialize()`, `kong.request.get_header("<name>")`, `kong.request.get_headers()`,
//! `kong.request.get_method()`, `kong.request.get_path()`, `kong.response.get_status()`,
//! `kong.response.get_header("<name>")`, `kong.response.get_headers()`, each optionally
//! indexed with `["key"]`, `['key']`, `[n]` or `.key`. Anything else is rejected with a
//! config error. Indexing a nil value fails at run time as it does in Lua.

use serde_json::Value;

use crate::proxy::context::RequestContext;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    Str(String),
    Num(f64),
    Sym(char),
}

fn tokenize(src: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() || c == ';' {
            i += 1;
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Tok::Name(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            out.push(Tok::Num(
                text.parse().map_err(|_| format!("bad number {text}"))?,
            ));
        } else if c == '"' || c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("unfinished string".into()),
                    Some(q) if *q == c => break,
                    Some('\\') => {
                        i += 1;
                        match chars.get(i) {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some(other) => s.push(*other),
                            None => return Err("unfinished string".into()),
                        }
                    }
                    Some(other) => s.push(*other),
                }
                i += 1;
            }
            i += 1;
            out.push(Tok::Str(s));
        } else if "()[]=.,".contains(c) {
            out.push(Tok::Sym(c));
            i += 1;
        } else {
            return Err(format!("unexpected symbol near '{c}'"));
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq)]
enum Base {
    Literal(Value),
    Nil,
    Local(String),
    Call(&'static str, Option<String>),
}

#[derive(Debug, Clone, PartialEq)]
enum Key {
    Str(String),
    Index(usize),
}

#[derive(Debug, Clone, PartialEq)]
struct Expr {
    base: Base,
    path: Vec<Key>,
}

/// A checked snippet.
#[derive(Debug, Clone, PartialEq)]
pub struct Snippet {
    locals: Vec<(String, Expr)>,
    result: Option<Expr>,
}

const CALLS: &[(&str, bool)] = &[
    ("kong.log.serialize", false),
    ("kong.request.get_header", true),
    ("kong.request.get_headers", false),
    ("kong.request.get_method", false),
    ("kong.request.get_path", false),
    ("kong.response.get_status", false),
    ("kong.response.get_header", true),
    ("kong.response.get_headers", false),
];

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        match self.next() {
            Some(Tok::Sym(s)) if s == c => Ok(()),
            other => Err(format!("'{c}' expected near {other:?}")),
        }
    }

    fn expr(&mut self) -> Result<Expr, String> {
        let base = match self.next() {
            Some(Tok::Str(s)) => Base::Literal(Value::from(s)),
            Some(Tok::Num(n)) => Base::Literal(Value::from(n)),
            Some(Tok::Name(n)) if n == "nil" => Base::Nil,
            Some(Tok::Name(n)) if n == "true" || n == "false" => {
                Base::Literal(Value::Bool(n == "true"))
            }
            Some(Tok::Name(n)) if n == "kong" => {
                let mut name = n;
                while self.peek() == Some(&Tok::Sym('.')) {
                    self.pos += 1;
                    match self.next() {
                        Some(Tok::Name(part)) => {
                            name.push('.');
                            name.push_str(&part);
                        }
                        other => return Err(format!("name expected near {other:?}")),
                    }
                }
                let Some((call, takes_arg)) = CALLS.iter().find(|(c, _)| *c == name) else {
                    return Err(format!("unsupported function {name}"));
                };
                self.expect('(')?;
                let arg = if *takes_arg {
                    match self.next() {
                        Some(Tok::Str(s)) => Some(s),
                        other => return Err(format!("string argument expected near {other:?}")),
                    }
                } else {
                    None
                };
                self.expect(')')?;
                Base::Call(call, arg)
            }
            Some(Tok::Name(n)) if !is_keyword(&n) => Base::Local(n),
            other => return Err(format!("unexpected symbol near {other:?}")),
        };
        let mut path = Vec::new();
        loop {
            match self.peek() {
                Some(Tok::Sym('[')) => {
                    self.pos += 1;
                    match self.next() {
                        Some(Tok::Str(s)) => path.push(Key::Str(s)),
                        Some(Tok::Num(n)) if n >= 0.0 && n.fract() == 0.0 => {
                            path.push(Key::Index(n as usize));
                        }
                        other => return Err(format!("unsupported index near {other:?}")),
                    }
                    self.expect(']')?;
                }
                Some(Tok::Sym('.')) => {
                    self.pos += 1;
                    match self.next() {
                        Some(Tok::Name(n)) => path.push(Key::Str(n)),
                        other => return Err(format!("name expected near {other:?}")),
                    }
                }
                _ => break,
            }
        }
        Ok(Expr { base, path })
    }
}

fn is_keyword(n: &str) -> bool {
    matches!(
        n,
        "local" | "return" | "function" | "end" | "if" | "then" | "else" | "for" | "while" | "do"
    )
}

/// Checks a snippet; the error names what is not supported.
pub fn compile(src: &str) -> Result<Snippet, String> {
    let mut p = Parser {
        toks: tokenize(src)?,
        pos: 0,
    };
    let mut locals = Vec::new();
    let mut result = None;
    while let Some(tok) = p.next() {
        match tok {
            Tok::Name(n) if n == "local" => {
                let Some(Tok::Name(name)) = p.next() else {
                    return Err("name expected after 'local'".into());
                };
                p.expect('=')?;
                locals.push((name, p.expr()?));
            }
            Tok::Name(n) if n == "return" => {
                if p.peek().is_some() {
                    result = Some(p.expr()?);
                }
                if let Some(extra) = p.peek() {
                    return Err(format!("'<eof>' expected near {extra:?}"));
                }
                break;
            }
            other => return Err(format!("unsupported statement near {other:?}")),
        }
    }
    Ok(Snippet { locals, result })
}

fn header_value(map: &http::HeaderMap, name: &str) -> Value {
    map.get(name)
        .and_then(|v| v.to_str().ok())
        .map_or(Value::Null, |v| Value::from(v.to_owned()))
}

fn headers_value(map: &http::HeaderMap) -> Value {
    let mut out = serde_json::Map::new();
    for (k, v) in map {
        out.insert(
            k.as_str().to_owned(),
            Value::from(String::from_utf8_lossy(v.as_bytes()).into_owned()),
        );
    }
    Value::Object(out)
}

impl Snippet {
    /// Runs the snippet: `Ok(None)` for `nil`, `Err` for a Lua runtime error.
    pub fn run(&self, ctx: &RequestContext, serialized: &Value) -> Result<Option<Value>, String> {
        let mut env: Vec<(&str, Value)> = Vec::new();
        for (name, expr) in &self.locals {
            let v = eval(expr, &env, ctx, serialized)?;
            env.push((name, v));
        }
        match &self.result {
            None => Ok(None),
            Some(e) => {
                let v = eval(e, &env, ctx, serialized)?;
                Ok((!v.is_null()).then_some(v))
            }
        }
    }
}

fn eval(
    expr: &Expr,
    env: &[(&str, Value)],
    ctx: &RequestContext,
    serialized: &Value,
) -> Result<Value, String> {
    let mut v = match &expr.base {
        Base::Literal(l) => l.clone(),
        Base::Nil => Value::Null,
        Base::Local(name) => env
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map_or(Value::Null, |(_, v)| v.clone()),
        Base::Call(call, arg) => {
            let arg = arg.as_deref().unwrap_or_default().to_ascii_lowercase();
            match *call {
                "kong.log.serialize" => serialized.clone(),
                "kong.request.get_header" => header_value(&ctx.request_headers, &arg),
                "kong.request.get_headers" => headers_value(&ctx.request_headers),
                "kong.request.get_method" => Value::from(ctx.method.clone()),
                "kong.request.get_path" => {
                    Value::from(ctx.uri.split('?').next().unwrap_or_default().to_owned())
                }
                "kong.response.get_status" => Value::from(ctx.status),
                "kong.response.get_header" => header_value(&ctx.response_headers, &arg),
                _ => headers_value(&ctx.response_headers),
            }
        }
    };
    for key in &expr.path {
        v = match (&v, key) {
            (Value::Null, _) | (Value::Bool(_) | Value::Number(_), _) => {
                return Err("attempt to index a nil value".into())
            }
            (Value::Object(m), Key::Str(k)) => m.get(k).cloned().unwrap_or(Value::Null),
            (Value::Array(a), Key::Index(i)) => i
                .checked_sub(1)
                .and_then(|i| a.get(i))
                .cloned()
                .unwrap_or(Value::Null),
            _ => Value::Null,
        };
    }
    Ok(v)
}
