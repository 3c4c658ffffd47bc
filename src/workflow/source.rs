//! Where every field of a decoded workspace came from.
//!
//! The decoder records the location of each key and value it visits under its field path, so
//! checks that run on the typed model can still point at the YAML that caused a problem.

use std::collections::HashMap;

use super::diagnostic::Location;

/// Locations by field path (`tasks.deploy.flow.build.depends_on[0]`).
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    keys: HashMap<String, Location>,
    values: HashMap<String, Location>,
}

impl SourceMap {
    pub fn record_key(&mut self, path: &str, at: Location) {
        self.keys.insert(path.to_owned(), at);
    }

    pub fn record_value(&mut self, path: &str, at: Location) {
        self.values.insert(path.to_owned(), at);
    }

    /// Location of the key that introduced `path` (for mapping entries).
    pub fn key(&self, path: &str) -> Option<&Location> {
        self.keys.get(path)
    }

    /// Location of the value at `path`, falling back to its key, then to the nearest recorded
    /// ancestor, so a diagnostic always has somewhere to point.
    pub fn value(&self, path: &str) -> Location {
        let mut current = path;
        loop {
            if let Some(at) = self.values.get(current).or_else(|| self.keys.get(current)) {
                return at.clone();
            }
            match parent_path(current) {
                Some(parent) => current = parent,
                None => {
                    return Location {
                        file: String::new(),
                        line: 1,
                        column: 1,
                    };
                }
            }
        }
    }

    /// Location of the key at `path` when recorded, else of its value.
    pub fn key_or_value(&self, path: &str) -> Location {
        self.keys
            .get(path)
            .cloned()
            .unwrap_or_else(|| self.value(path))
    }
}

/// `a.b[2].c` → `a.b[2]` → `a.b` → `a` → none.
fn parent_path(path: &str) -> Option<&str> {
    let cut = path.rfind(['.', '['])?;
    Some(&path[..cut])
}

/// Joins a field path and a mapping key, quoting keys that are not plain identifiers.
pub fn join(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_owned(),
        (true, false) => format!("[{key:?}]"),
        (false, true) => format!("{parent}.{key}"),
        (false, false) => format!("{parent}[{key:?}]"),
    }
}

/// Joins a field path and a sequence index.
pub fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}
