//! Where each key of a YAML document was written, so errors can say file:line:col.
//!
//! `yaml_serde` gives values without positions; this walks the same text with
//! `saphyr-parser`'s event stream and records the position of every mapping key and
//! sequence item by its key path.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser};

/// A position in a source: 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// Key path → position of the key, for one document.
#[derive(Clone, Debug, Default)]
pub struct Locations {
    positions: HashMap<Vec<String>, Position>,
}

impl Locations {
    /// Indexes `text`. A text that does not parse yields an empty index (the YAML error itself
    /// is reported by the value parser, with its own location).
    pub fn index(text: &str) -> Self {
        let mut walker = Walker {
            events: Parser::new_from_str(text),
            positions: HashMap::new(),
        };
        walker.document();
        Self {
            positions: walker.positions,
        }
    }

    /// The position of the deepest key of `path` that was written in this document.
    pub fn find(&self, path: &[String]) -> Option<Position> {
        (1..=path.len())
            .rev()
            .find_map(|n| self.positions.get(&path[..n]).copied())
    }

    /// The position of exactly `path`, if it was written in this document.
    pub fn exact(&self, path: &[String]) -> Option<Position> {
        self.positions.get(path).copied()
    }

    /// Re-roots the index: keeps only paths under `prefix`, with the prefix removed, and
    /// shifts positions by `line_offset` (for a config embedded as a string).
    pub fn subtree(&self, prefix: &[&str], line_offset: usize, column_offset: usize) -> Self {
        let positions = self
            .positions
            .iter()
            .filter(|(path, _)| {
                path.len() > prefix.len() && path.iter().zip(prefix).all(|(a, b)| a == b)
            })
            .map(|(path, pos)| {
                (
                    path[prefix.len()..].to_vec(),
                    Position {
                        line: pos.line + line_offset,
                        column: pos.column + column_offset,
                    },
                )
            })
            .collect();
        Self { positions }
    }

    /// Re-roots under `prefix` (the `yaml:a::b: v` and `--set` forms nest their key).
    pub fn nested(&self, prefix: &[String]) -> Self {
        let positions = self
            .positions
            .iter()
            .map(|(path, pos)| ([prefix, path.as_slice()].concat(), *pos))
            .collect();
        Self { positions }
    }

    /// Adds `other`'s positions, which win where both have a path (later sources win).
    pub fn overlay(&mut self, other: &Self) {
        self.positions
            .extend(other.positions.iter().map(|(k, v)| (k.clone(), *v)));
    }

    /// The position of a scalar written at exactly `path` (for a config embedded as text).
    pub fn get(&self, path: &[&str]) -> Option<Position> {
        let key: Vec<String> = path.iter().map(|s| (*s).to_owned()).collect();
        self.positions.get(&key).copied()
    }
}

struct Walker<'a> {
    events: Parser<'a, saphyr_parser::StrInput<'a>>,
    positions: HashMap<Vec<String>, Position>,
}

impl<'a> Walker<'a> {
    fn next(&mut self) -> Option<(Event<'a>, Position)> {
        match self.events.next_event()? {
            Ok((event, span)) => Some((
                event,
                Position {
                    line: span.start.line(),
                    column: span.start.col() + 1,
                },
            )),
            Err(_) => None,
        }
    }

    fn document(&mut self) {
        let mut path = Vec::new();
        while let Some((event, _)) = self.next() {
            match event {
                Event::MappingStart(..) => {
                    self.mapping(&mut path);
                    return;
                }
                Event::SequenceStart(..) => {
                    self.sequence(&mut path);
                    return;
                }
                Event::StreamEnd => return,
                _ => {}
            }
        }
    }

    /// Consumes a mapping's events up to its end; `path` is restored on return.
    fn mapping(&mut self, path: &mut Vec<String>) {
        loop {
            let Some((event, pos)) = self.next() else {
                return;
            };
            let key = match event {
                Event::MappingEnd => return,
                Event::Scalar(text, ..) => text.into_owned(),
                // Complex keys: skip the key node, record nothing.
                Event::MappingStart(..) => {
                    self.mapping(&mut Vec::new());
                    String::new()
                }
                Event::SequenceStart(..) => {
                    self.sequence(&mut Vec::new());
                    String::new()
                }
                _ => String::new(),
            };
            path.push(key);
            self.positions.insert(path.clone(), pos);
            self.value(path);
            path.pop();
        }
    }

    fn sequence(&mut self, path: &mut Vec<String>) {
        let mut index = 0usize;
        loop {
            let Some((event, pos)) = self.next() else {
                return;
            };
            if matches!(event, Event::SequenceEnd) {
                return;
            }
            path.push(index.to_string());
            self.positions.insert(path.clone(), pos);
            match event {
                Event::MappingStart(..) => self.mapping(path),
                Event::SequenceStart(..) => self.sequence(path),
                _ => {}
            }
            path.pop();
            index += 1;
        }
    }

    /// Consumes one value node.
    fn value(&mut self, path: &mut Vec<String>) {
        let Some((event, _)) = self.next() else {
            return;
        };
        match event {
            Event::MappingStart(..) => self.mapping(path),
            Event::SequenceStart(..) => self.sequence(path),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn indexes_nested_keys_and_items() {
        let text = "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: x\nservice:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters:\n        - debug\n";
        let loc = Locations::index(text);
        assert_eq!(
            loc.find(&p(&["receivers", "otlp"])),
            Some(Position { line: 2, column: 3 })
        );
        assert_eq!(
            loc.find(&p(&["receivers", "otlp", "protocols", "grpc", "endpoint"])),
            Some(Position { line: 5, column: 9 })
        );
        assert_eq!(
            loc.find(&p(&["service", "pipelines", "traces", "exporters", "0"])),
            Some(Position {
                line: 11,
                column: 11
            })
        );
        // A path below what was written falls back to its deepest written ancestor.
        assert_eq!(
            loc.find(&p(&["receivers", "otlp", "protocols", "http", "x"])),
            Some(Position { line: 3, column: 5 })
        );
    }

    #[test]
    fn subtree_reroots() {
        let text = "spec:\n  config:\n    receivers:\n      otlp: {}\n";
        let loc = Locations::index(text).subtree(&["spec", "config"], 0, 0);
        assert_eq!(
            loc.find(&p(&["receivers", "otlp"])),
            Some(Position { line: 4, column: 7 })
        );
    }
}
