//! A YAML tree that remembers where every node came from.
//!
//! serde_yaml keeps no positions of values, and the language's diagnostics need file, line and
//! column for every key and value. This module builds its own tree from yaml-rust2's marked
//! events: anchors and aliases expanded (within a node budget, so an alias bomb is an error and
//! not an out-of-memory), `<<` merge keys applied, duplicate keys reported with both places.
//! Plain scalars are typed by the YAML 1.2 core schema (WF §2), quoted and block scalars are
//! always strings.

mod build;
mod scalar;

use serde_json::Value;

use super::diagnostic::{Diagnostic, Location};

pub use scalar::resolve_plain;

/// A 1-based line and column inside one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mark {
    pub line: u32,
    pub column: u32,
}

impl Mark {
    pub fn at(self, file: &str) -> Location {
        Location {
            file: file.to_owned(),
            line: self.line,
            column: self.column,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    /// Where the node starts (for a mapping or sequence, its first token).
    pub mark: Mark,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// Entries in document order, merge keys already applied, duplicates removed.
    Map(Vec<(Node, Node)>),
    Seq(Vec<Node>),
    Scalar(Scalar),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    /// The scalar's text as written (after unescaping and folding).
    pub text: String,
    pub style: ScalarStyle,
    /// The core-schema type; always `String` for quoted and block scalars.
    pub value: Resolved,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarStyle {
    Plain,
    Quoted,
    Block,
}

/// A scalar's type under the YAML 1.2 core schema.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Resolved {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String,
}

/// The kind of a node as users read it in messages (`expected a list, found a string`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Map,
    List,
    String,
    Integer,
    Number,
    Boolean,
    Null,
}

impl Kind {
    /// The noun with its article: `a map`, `an integer`.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Map => "a map",
            Kind::List => "a list",
            Kind::String => "a string",
            Kind::Integer => "an integer",
            Kind::Number => "a number",
            Kind::Boolean => "a boolean",
            Kind::Null => "null",
        }
    }
}

impl Node {
    pub fn kind(&self) -> Kind {
        match &self.kind {
            NodeKind::Map(_) => Kind::Map,
            NodeKind::Seq(_) => Kind::List,
            NodeKind::Scalar(s) => match s.value {
                Resolved::Null => Kind::Null,
                Resolved::Bool(_) => Kind::Boolean,
                Resolved::Int(_) => Kind::Integer,
                Resolved::Float(_) => Kind::Number,
                Resolved::String => Kind::String,
            },
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            NodeKind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Seq(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_scalar(&self) -> Option<&Scalar> {
        match &self.kind {
            NodeKind::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// The text of a string scalar (quoted, block, or plain that resolved to a string).
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar(s) if s.value == Resolved::String => Some(&s.text),
            _ => None,
        }
    }

    /// The text of any scalar except null, for fields where YAML's typing of `1.0` or `true`
    /// must not matter (mapping keys, names, secret values).
    pub fn scalar_text(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar(s) if s.value != Resolved::Null => Some(&s.text),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        self.kind() == Kind::Null
    }

    pub fn at(&self, file: &str) -> Location {
        self.mark.at(file)
    }

    /// The JSON value of the node, for value-typed fields (`default`, step `input`, …).
    /// Non-string mapping keys use their text; `.nan` and `.inf`, which JSON cannot hold, stay
    /// as their text.
    pub fn to_json(&self) -> Value {
        match &self.kind {
            NodeKind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(key, value)| (key_text(key), value.to_json()))
                    .collect(),
            ),
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Scalar(s) => match s.value {
                Resolved::Null => Value::Null,
                Resolved::Bool(b) => Value::Bool(b),
                Resolved::Int(i) => Value::from(i),
                Resolved::Float(f) => serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .unwrap_or_else(|| Value::String(s.text.clone())),
                Resolved::String => Value::String(s.text.clone()),
            },
        }
    }
}

/// A mapping key as a string: a scalar's text, else the key's compact JSON.
pub fn key_text(key: &Node) -> String {
    match &key.kind {
        NodeKind::Scalar(s) => s.text.clone(),
        _ => key.to_json().to_string(),
    }
}

/// One parsed file: its root node (none for an empty file or a fatal error) and the problems
/// found while building it.
#[derive(Debug, Default)]
pub struct Document {
    pub root: Option<Node>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Parses one workflow file. Never panics; every problem becomes a diagnostic.
pub fn parse(file: &str, text: &str) -> Document {
    build::Builder::new(file).run(text)
}

#[cfg(test)]
mod tests;
