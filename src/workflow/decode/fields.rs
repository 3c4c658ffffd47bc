//! A small typed reader over one mapping node.
//!
//! Every object of the format is a mapping with a closed set of keys (WF §2.2). [`Fields`]
//! hands out the values the decoder asks for, checking their kind, records where each key and
//! value sits in the [`SourceMap`], and at the end reports every key nobody asked for — with a
//! suggestion, a specific message for keys that belong to another kind of object, or the list
//! of valid keys.

use serde_json::Value;

use super::super::diagnostic::{Diagnostic, Location, suggest};
use super::super::source::{SourceMap, index, join};
use super::super::yaml::{Mark, Node, NodeKind, Resolved};

/// Where diagnostics and locations of the file being decoded go.
pub struct Ctx<'a> {
    pub file: &'a str,
    /// Every regular file of the workspace, for `source` checks.
    pub all_files: &'a std::collections::BTreeSet<String>,
    pub sources: &'a mut SourceMap,
    pub diagnostics: &'a mut Vec<Diagnostic>,
}

impl Ctx<'_> {
    pub fn at(&self, mark: Mark) -> Location {
        mark.at(self.file)
    }

    pub fn error(&mut self, code: &str, message: impl Into<String>, mark: Mark, path: &str) {
        let diagnostic = Diagnostic::error(code, message, &self.at(mark), path);
        self.diagnostics.push(diagnostic);
    }

    pub fn warning(&mut self, code: &str, message: impl Into<String>, mark: Mark, path: &str) {
        let diagnostic = Diagnostic::warning(code, message, &self.at(mark), path);
        self.diagnostics.push(diagnostic);
    }

    /// A construct of a later phase (WF §0): decoded, but rejected.
    pub fn unsupported(&mut self, what: &str, mark: Mark, path: &str) {
        let message = format!("{what} is not supported in this version");
        self.error("unsupported", message, mark, path);
    }

    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    /// `'timeout' must be a string, found a list`.
    pub fn wrong_type(&mut self, node: &Node, path: &str, expected: &str) {
        let message = format!(
            "{} must be {expected}, found {}",
            describe_path(path),
            node.kind().describe()
        );
        self.error("wrong-type", message, node.mark, path);
    }

    /// Records the value location of `node` and, for maps and lists, of everything below it,
    /// so checks of value-typed fields (step input templates) can point inside them.
    pub fn record_tree(&mut self, path: &str, node: &Node) {
        self.sources.record_value(path, self.at(node.mark));
        match &node.kind {
            NodeKind::Map(entries) => {
                for (key, value) in entries {
                    let child = join(path, &super::super::yaml::key_text(key));
                    self.sources.record_key(&child, self.at(key.mark));
                    self.record_tree(&child, value);
                }
            }
            NodeKind::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.record_tree(&index(path, i), item);
                }
            }
            NodeKind::Scalar(_) => {}
        }
    }

    /// A map of name → value: the entries with string keys, recorded; other keys are errors.
    pub fn named_entries<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
    ) -> Vec<(String, &'n Node, &'n Node)> {
        let entries = self.entries(node, path);
        for (name, key, value) in &entries {
            self.record_entry(path, name, key, value);
        }
        entries
    }

    /// Records where the key and the value of one entry of the map at `path` are.
    pub fn record_entry(&mut self, path: &str, name: &str, key: &Node, value: &Node) {
        let child = join(path, name);
        self.sources.record_key(&child, self.at(key.mark));
        self.sources.record_value(&child, self.at(value.mark));
    }

    /// Like [`Ctx::named_entries`], without recording locations.
    pub fn entries<'n>(&mut self, node: &'n Node, path: &str) -> Vec<(String, &'n Node, &'n Node)> {
        let Some(entries) = node.as_map() else {
            self.wrong_type(node, path, "a map");
            return Vec::new();
        };
        let mut out = Vec::new();
        for (key, value) in entries {
            let Some(name) = key.scalar_text() else {
                self.error(
                    "wrong-type",
                    format!("keys must be strings, found {}", key.kind().describe()),
                    key.mark,
                    path,
                );
                continue;
            };
            out.push((name.to_owned(), key, value));
        }
        out
    }

    /// A value-typed map (step `input`, trigger `input`) as JSON, recorded leaf by leaf.
    pub fn value_map(&mut self, node: &Node, path: &str) -> indexmap::IndexMap<String, Value> {
        let mut out = indexmap::IndexMap::new();
        for (name, _, value) in self.named_entries(node, path) {
            self.record_tree(&join(path, &name), value);
            out.insert(name, value.to_json());
        }
        out
    }
}

/// `'timeout'` for a path ending in a key, else the whole path.
pub fn describe_path(path: &str) -> String {
    let last = path.rsplit('.').next().unwrap_or(path);
    if last.is_empty() {
        "the value".to_owned()
    } else {
        format!("'{last}'")
    }
}

/// The keys of one mapping being decoded.
pub struct Fields<'n> {
    pub path: String,
    pub mark: Mark,
    entries: Vec<Entry<'n>>,
}

struct Entry<'n> {
    name: String,
    key: &'n Node,
    value: &'n Node,
    used: bool,
}

impl<'n> Fields<'n> {
    /// Opens `node` as an object at `path`; a non-mapping is a `wrong-type` error and `None`.
    pub fn open(cx: &mut Ctx, node: &'n Node, path: &str) -> Option<Self> {
        if node.as_map().is_none() {
            cx.wrong_type(node, path, "a map");
            return None;
        }
        let entries = cx
            .named_entries(node, path)
            .into_iter()
            .map(|(name, key, value)| Entry {
                name,
                key,
                value,
                used: false,
            })
            .collect();
        Some(Fields {
            path: path.to_owned(),
            mark: node.mark,
            entries,
        })
    }

    pub fn path_of(&self, key: &str) -> String {
        join(&self.path, key)
    }

    pub fn has(&self, key: &str) -> bool {
        self.entries
            .iter()
            .any(|e| e.name == key && !e.value.is_null())
    }

    /// Where `key` was written, if it was.
    pub fn key_mark(&self, key: &str) -> Option<Mark> {
        self.entries
            .iter()
            .find(|e| e.name == key)
            .map(|e| e.key.mark)
    }

    /// The value of `key`, marking it as known. Null counts as absent.
    pub fn get(&mut self, key: &str) -> Option<&'n Node> {
        let entry = self.entries.iter_mut().find(|e| e.name == key)?;
        entry.used = true;
        (!entry.value.is_null()).then_some(entry.value)
    }

    /// Where the value of `key` is, or the object itself when the key is absent.
    pub fn value_mark(&self, key: &str) -> Mark {
        self.entries
            .iter()
            .find(|e| e.name == key)
            .map_or(self.mark, |e| e.value.mark)
    }

    /// Marks `key` as known without reading it (it is reported elsewhere).
    pub fn skip(&mut self, key: &str) {
        let _ = self.get(key);
    }

    /// Any scalar but null, as text; lists and maps are `wrong-type`.
    pub fn text(&mut self, cx: &mut Ctx, key: &str) -> Option<String> {
        let node = self.get(key)?;
        match node.scalar_text() {
            Some(text) => Some(text.to_owned()),
            None => {
                cx.wrong_type(node, &self.path_of(key), "a string");
                None
            }
        }
    }

    pub fn bool(&mut self, cx: &mut Ctx, key: &str) -> Option<bool> {
        let node = self.get(key)?;
        match node.as_scalar().map(|s| s.value) {
            Some(Resolved::Bool(b)) => Some(b),
            _ => {
                cx.wrong_type(node, &self.path_of(key), "true or false");
                None
            }
        }
    }

    pub fn int(&mut self, cx: &mut Ctx, key: &str) -> Option<i64> {
        let node = self.get(key)?;
        match node.as_scalar().map(|s| s.value) {
            Some(Resolved::Int(i)) => Some(i),
            _ => {
                cx.wrong_type(node, &self.path_of(key), "an integer");
                None
            }
        }
    }

    /// A mapping value (returned as its node).
    pub fn map(&mut self, cx: &mut Ctx, key: &str) -> Option<&'n Node> {
        let node = self.get(key)?;
        if node.as_map().is_some() {
            Some(node)
        } else {
            cx.wrong_type(node, &self.path_of(key), "a map");
            None
        }
    }

    /// A list of scalars as text; each element's location is recorded.
    pub fn text_list(&mut self, cx: &mut Ctx, key: &str) -> Option<Vec<String>> {
        let node = self.get(key)?;
        let path = self.path_of(key);
        text_list(cx, node, &path)
    }

    /// Reports every key nobody read. `misplaced` gives a specific message for keys that are
    /// valid on another kind of object (WF §2.2); other keys get a suggestion among `valid`, or
    /// the list of valid keys.
    pub fn finish(self, cx: &mut Ctx, valid: &[&str], misplaced: &dyn Fn(&str) -> Option<String>) {
        for entry in self.entries.iter().filter(|e| !e.used) {
            let path = join(&self.path, &entry.name);
            if let Some(message) = misplaced(&entry.name) {
                cx.error("key-not-allowed", message, entry.key.mark, &path);
                continue;
            }
            let place = if self.path.is_empty() {
                "at the top level".to_owned()
            } else {
                format!("in {}", self.path)
            };
            let message = match suggest(&entry.name, valid.iter().copied()) {
                Some(close) => format!(
                    "unknown key '{}' {place} — did you mean '{close}'?",
                    entry.name
                ),
                None => format!(
                    "unknown key '{}' {place}; valid keys are {}",
                    entry.name,
                    valid.join(", ")
                ),
            };
            cx.error("unknown-key", message, entry.key.mark, &path);
        }
    }
}

/// A list of scalars as text (`depends_on`, `tags`, `args`).
pub fn text_list(cx: &mut Ctx, node: &Node, path: &str) -> Option<Vec<String>> {
    let Some(items) = node.as_seq() else {
        cx.wrong_type(node, path, "a list");
        return None;
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let item_path = index(path, i);
        cx.sources.record_value(&item_path, cx.at(item.mark));
        match item.scalar_text() {
            Some(text) => out.push(text.to_owned()),
            None => cx.wrong_type(item, &item_path, "a string"),
        }
    }
    Some(out)
}
