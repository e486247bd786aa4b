//! Prometheus relabelling (`relabel_configs`, `metric_relabel_configs`), 2.54 semantics.

use md5::{Digest, Md5};
use regex::Regex;
use serde::{Deserialize, Deserializer};

use super::labels::Labels;

/// One relabel rule as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelabelConfig {
    /// Labels whose values are joined with `separator` and matched against `regex`.
    pub source_labels: Vec<String>,
    /// Default `;`.
    #[serde(deserialize_with = "super::config::string_like")]
    pub separator: Option<String>,
    /// Fully anchored; default `(.*)`.
    #[serde(deserialize_with = "regex_field")]
    pub regex: Option<RelabelRegex>,
    /// For `hashmod`.
    pub modulus: u64,
    /// Label to write (may use `$1` in `replace`).
    pub target_label: Option<String>,
    /// Default `$1`.
    #[serde(deserialize_with = "super::config::string_like")]
    pub replacement: Option<String>,
    /// Default `replace`; case-insensitive.
    #[serde(deserialize_with = "super::config::string_like")]
    pub action: Option<String>,
}

/// An anchored regex with the text it was written as.
#[derive(Clone, Debug)]
pub struct RelabelRegex {
    /// As written.
    pub source: String,
    /// `^(?:source)$`.
    pub regex: Regex,
}

fn compile(source: &str) -> Result<RelabelRegex, String> {
    Regex::new(&format!("^(?:{source})$"))
        .map(|regex| RelabelRegex {
            source: source.to_owned(),
            regex,
        })
        .map_err(|e| format!("invalid regex {source:?}: {e}"))
}

fn regex_field<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RelabelRegex>, D::Error> {
    super::config::string_like(d)?
        .map(|s| compile(&s).map_err(serde::de::Error::custom))
        .transpose()
}

/// The relabel actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Set `target_label` to the expanded replacement when `regex` matches.
    Replace,
    /// Keep the set only when `regex` matches.
    Keep,
    /// Drop the set when `regex` matches.
    Drop,
    /// Keep only when the joined source equals `target_label`'s value.
    KeepEqual,
    /// Drop when the joined source equals `target_label`'s value.
    DropEqual,
    /// `target_label` = md5(source) mod `modulus`.
    HashMod,
    /// Copy labels whose names match to the replaced names.
    LabelMap,
    /// Remove labels whose names match.
    LabelDrop,
    /// Remove labels whose names do not match.
    LabelKeep,
    /// `target_label` = lowercased source.
    Lowercase,
    /// `target_label` = uppercased source.
    Uppercase,
}

impl Action {
    fn parse(text: &str) -> Result<Self, String> {
        Ok(match text.to_ascii_lowercase().as_str() {
            "replace" => Self::Replace,
            "keep" => Self::Keep,
            "drop" => Self::Drop,
            "keepequal" => Self::KeepEqual,
            "dropequal" => Self::DropEqual,
            "hashmod" => Self::HashMod,
            "labelmap" => Self::LabelMap,
            "labeldrop" => Self::LabelDrop,
            "labelkeep" => Self::LabelKeep,
            "lowercase" => Self::Lowercase,
            "uppercase" => Self::Uppercase,
            _ => return Err(format!("unknown relabel action {text:?}")),
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Replace => "replace",
            Self::Keep => "keep",
            Self::Drop => "drop",
            Self::KeepEqual => "keepequal",
            Self::DropEqual => "dropequal",
            Self::HashMod => "hashmod",
            Self::LabelMap => "labelmap",
            Self::LabelDrop => "labeldrop",
            Self::LabelKeep => "labelkeep",
            Self::Lowercase => "lowercase",
            Self::Uppercase => "uppercase",
        }
    }
}

/// A validated rule, ready to apply.
#[derive(Clone, Debug)]
pub struct Rule {
    source_labels: Vec<String>,
    separator: String,
    regex: Regex,
    modulus: u64,
    target_label: String,
    replacement: String,
    action: Action,
}

impl RelabelConfig {
    /// Checks the rule as Prometheus does when loading its config.
    ///
    /// # Errors
    /// Prometheus' message.
    pub fn validate(&self) -> Result<(), String> {
        self.rule().map(drop)
    }

    /// The validated rule.
    ///
    /// # Errors
    /// Prometheus' message.
    pub fn rule(&self) -> Result<Rule, String> {
        let action = match self.action.as_deref() {
            None => Action::Replace,
            Some("") => return Err("relabel action cannot be empty".to_owned()),
            Some(a) => Action::parse(a)?,
        };
        let name = action.name();
        if action == Action::HashMod && self.modulus == 0 {
            return Err("relabel configuration for hashmod requires non-zero modulus".to_owned());
        }
        let target = self.target_label.clone().unwrap_or_default();
        let needs_target = matches!(
            action,
            Action::Replace
                | Action::HashMod
                | Action::Lowercase
                | Action::Uppercase
                | Action::KeepEqual
                | Action::DropEqual
        );
        if needs_target && target.is_empty() {
            return Err(format!(
                "relabel configuration for {name} action requires 'target_label' value"
            ));
        }
        let valid_target = if action == Action::Replace {
            is_template_label(&target)
        } else {
            super::parse::is_label_name(&target)
        };
        if matches!(
            action,
            Action::Replace | Action::Lowercase | Action::Uppercase | Action::HashMod
        ) && !valid_target
        {
            return Err(format!(
                "{target:?} is invalid 'target_label' for {name} action"
            ));
        }
        if matches!(action, Action::KeepEqual | Action::DropEqual)
            && !super::parse::is_label_name(&target)
        {
            return Err(format!(
                "{target:?} is invalid 'target_label' for {name} action"
            ));
        }
        if matches!(action, Action::KeepEqual | Action::DropEqual)
            && (self.regex.is_some()
                || self.modulus != 0
                || self.separator.is_some()
                || self.replacement.is_some())
        {
            return Err(format!(
                "{name} action requires only 'source_labels' and `target_label`, and no other fields"
            ));
        }
        if matches!(action, Action::LabelDrop | Action::LabelKeep)
            && (!self.source_labels.is_empty()
                || !target.is_empty()
                || self.modulus != 0
                || self.separator.is_some()
                || self.replacement.is_some())
        {
            return Err(format!(
                "{name} action requires only 'regex', and no other fields"
            ));
        }
        let regex = match &self.regex {
            Some(r) => r.regex.clone(),
            None => compile("(.*)")?.regex,
        };
        Ok(Rule {
            source_labels: self.source_labels.clone(),
            separator: self.separator.clone().unwrap_or_else(|| ";".to_owned()),
            regex,
            modulus: self.modulus,
            target_label: target,
            replacement: self.replacement.clone().unwrap_or_else(|| "$1".to_owned()),
            action,
        })
    }
}

/// A label name, allowing `$1`/`${name}` references (checked after expansion).
fn is_template_label(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '{' | '}'))
}

/// Applies `rules` in order; `false` when the set is dropped.
pub fn process(labels: &mut Labels, rules: &[Rule]) -> bool {
    rules.iter().all(|rule| apply(labels, rule))
}

fn apply(labels: &mut Labels, rule: &Rule) -> bool {
    let joined = || {
        rule.source_labels
            .iter()
            .map(|l| labels.get(l).unwrap_or(""))
            .collect::<Vec<_>>()
            .join(&rule.separator)
    };
    match rule.action {
        Action::Drop => {
            if rule.regex.is_match(&joined()) {
                return false;
            }
        }
        Action::Keep => {
            if !rule.regex.is_match(&joined()) {
                return false;
            }
        }
        Action::DropEqual => {
            if labels.get(&rule.target_label).unwrap_or("") == joined() {
                return false;
            }
        }
        Action::KeepEqual => {
            if labels.get(&rule.target_label).unwrap_or("") != joined() {
                return false;
            }
        }
        Action::Replace => {
            let value = joined();
            let Some(caps) = rule.regex.captures(&value) else {
                return true;
            };
            let mut target = String::new();
            caps.expand(&rule.target_label, &mut target);
            if !super::parse::is_label_name(&target) {
                return true;
            }
            let mut out = String::new();
            caps.expand(&rule.replacement, &mut out);
            if out.is_empty() {
                labels.remove(&target);
            } else {
                labels.set(&target, out);
            }
        }
        Action::Lowercase => {
            let v = joined().to_lowercase();
            labels.set(&rule.target_label, v);
        }
        Action::Uppercase => {
            let v = joined().to_uppercase();
            labels.set(&rule.target_label, v);
        }
        Action::HashMod => {
            let digest = Md5::digest(joined().as_bytes());
            let mut tail = [0u8; 8];
            tail.copy_from_slice(&digest[8..16]);
            let m = u64::from_be_bytes(tail) % rule.modulus;
            labels.set(&rule.target_label, m.to_string());
        }
        Action::LabelMap => {
            let mut add = Vec::new();
            for (name, value) in labels.iter() {
                if rule.regex.is_match(name) {
                    let new = rule.regex.replace_all(name, rule.replacement.as_str());
                    add.push((new.into_owned(), value.to_owned()));
                }
            }
            for (name, value) in add {
                labels.set(&name, value);
            }
        }
        Action::LabelDrop => labels.retain(|name| !rule.regex.is_match(name)),
        Action::LabelKeep => labels.retain(|name| rule.regex.is_match(name)),
    }
    true
}

/// Validated rules for a list of configs.
///
/// # Errors
/// The first invalid rule's message.
pub fn rules(configs: &[RelabelConfig]) -> Result<Vec<Rule>, String> {
    configs.iter().map(RelabelConfig::rule).collect()
}
