//! The configuration as a tree of values that remember their origin.
//!
//! The file is parsed by the workflow language's span-aware YAML reader
//! ([`crate::workflow::yaml`]), so every key and value keeps its `file:line:column`;
//! `STROEM__` variables are then merged into the same tree with their variable name as origin.
//! Typed decoding reads this merged tree, so a bad value is reported where it was written,
//! whichever of the two layers it came from.

use crate::workflow::yaml::{self, Kind, Node, NodeKind, Resolved, Scalar, ScalarStyle};

use super::error::{Origin, Problem};

/// One value of the configuration and where it was written.
#[derive(Debug, Clone)]
pub struct Item {
    pub value: Value,
    pub origin: Origin,
}

#[derive(Debug, Clone)]
pub enum Value {
    Map(Vec<Entry>),
    Seq(Vec<Item>),
    Scalar(Scalar),
}

/// A mapping entry: the key's text, where the key was written, and its value.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: String,
    pub key_origin: Origin,
    pub item: Item,
}

impl Item {
    pub fn empty_map(origin: Origin) -> Item {
        Item {
            value: Value::Map(Vec::new()),
            origin,
        }
    }

    /// Converts a parsed YAML node; `origin` gives the origin of a mark (the file position, or
    /// the same variable name for every node of an environment value).
    pub fn from_node(node: &Node, origin: &dyn Fn(yaml::Mark) -> Origin) -> Item {
        let value = match &node.kind {
            NodeKind::Map(entries) => Value::Map(
                entries
                    .iter()
                    .map(|(key, value)| Entry {
                        key: yaml::key_text(key),
                        key_origin: origin(key.mark),
                        item: Item::from_node(value, origin),
                    })
                    .collect(),
            ),
            NodeKind::Seq(items) => Value::Seq(
                items
                    .iter()
                    .map(|item| Item::from_node(item, origin))
                    .collect(),
            ),
            NodeKind::Scalar(scalar) => Value::Scalar(scalar.clone()),
        };
        Item {
            value,
            origin: origin(node.mark),
        }
    }

    /// The kind of the value as messages name it (`a map`, `an integer`).
    pub fn kind(&self) -> Kind {
        match &self.value {
            Value::Map(_) => Kind::Map,
            Value::Seq(_) => Kind::List,
            Value::Scalar(scalar) => match scalar.value {
                Resolved::Null => Kind::Null,
                Resolved::Bool(_) => Kind::Boolean,
                Resolved::Int(_) => Kind::Integer,
                Resolved::Float(_) => Kind::Number,
                Resolved::String => Kind::String,
            },
        }
    }

    pub fn is_null(&self) -> bool {
        self.kind() == Kind::Null
    }

    /// The text of any non-null scalar: string-typed keys take `2024` or `true` as written.
    pub fn scalar_text(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(scalar) if scalar.value != Resolved::Null => Some(&scalar.text),
            _ => None,
        }
    }

    pub fn entries(&self) -> Option<&[Entry]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn entries_mut(&mut self) -> Option<&mut Vec<Entry>> {
        match &mut self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }
}

/// Parses the configuration file into a tree. An empty file is an empty map; YAML errors
/// become problems.
pub fn parse_file(file: &str, text: &str, problems: &mut Vec<Problem>) -> Item {
    let document = yaml::parse(file, text);
    for diagnostic in &document.diagnostics {
        problems.push(Problem {
            origin: Origin::File {
                file: file.to_owned(),
                line: diagnostic.line,
                column: diagnostic.column,
            },
            key: diagnostic.path.clone(),
            message: diagnostic.message.clone(),
        });
    }
    let at = |mark: yaml::Mark| Origin::File {
        file: file.to_owned(),
        line: mark.line,
        column: mark.column,
    };
    match &document.root {
        Some(root) if !root.is_null() => Item::from_node(root, &at),
        _ => Item::empty_map(at(yaml::Mark { line: 1, column: 1 })),
    }
}

/// Parses an environment variable's value (API §10.1: "YAML scalars or flow sequences").
///
/// A value that opens a flow collection (`[a, b]`, `{}`) or a quoted scalar is read as YAML.
/// Anything else is one plain scalar typed by the YAML core schema *without* YAML's syntax, so a
/// secret holding `#`, `*` or `: ` is taken whole instead of being cut at a comment or read as
/// an alias. An empty value is null, which unsets the key.
pub fn parse_env_value(name: &str, text: &str) -> Result<Item, String> {
    let origin = Origin::Env(name.to_owned());
    if !text.starts_with(['[', '{', '"', '\'']) {
        return Ok(Item {
            value: Value::Scalar(Scalar {
                text: text.to_owned(),
                style: ScalarStyle::Plain,
                value: yaml::resolve_plain(text),
            }),
            origin,
        });
    }
    let document = yaml::parse(name, text);
    if let Some(diagnostic) = document.diagnostics.first() {
        return Err(diagnostic.message.clone());
    }
    let root = document
        .root
        .ok_or_else(|| "the value is empty".to_owned())?;
    Ok(Item::from_node(&root, &|_| origin.clone()))
}
