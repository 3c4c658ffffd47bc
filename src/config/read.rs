//! Reading typed values out of the configuration tree, collecting every problem.
//!
//! Each reader takes a [`Section`] (a map and its dotted path) and a key, returns the typed value
//! or `None`, and records a problem that names the key and points at the value when the value is
//! unusable. Callers substitute the default for `None`, so one bad value never hides the next.

use std::path::{Path, PathBuf};

use crate::workflow::decode::parse_duration;
use crate::workflow::diagnostic::suggest;
use crate::workflow::model::Duration;
use crate::workflow::yaml::Resolved;

use super::error::{Origin, Problem};
use super::keys::join;
use super::tree::{Entry, Item, Value};
use super::types::Secret;

/// One map of the tree with its dotted path (`""` at the top level).
#[derive(Debug, Clone)]
pub struct Section<'t> {
    pub entries: &'t [Entry],
    pub path: String,
    pub origin: Origin,
}

impl<'t> Section<'t> {
    pub fn of(item: &'t Item, path: String) -> Option<Section<'t>> {
        Some(Section {
            entries: item.entries()?,
            path,
            origin: item.origin.clone(),
        })
    }

    /// The map under `entry`, located at its key so that "is required" problems point at
    /// the line that opens the section; `None` when the value is not a map.
    pub fn of_entry(entry: &'t Entry, path: String) -> Option<Section<'t>> {
        Some(Section {
            entries: entry.item.entries()?,
            path,
            origin: entry.key_origin.clone(),
        })
    }

    /// A section that is not in the tree, so every key takes its default.
    pub fn empty(path: String, origin: Origin) -> Section<'static> {
        Section {
            entries: &[],
            path,
            origin,
        }
    }

    pub fn entry(&self, key: &str) -> Option<&'t Entry> {
        self.entries.iter().find(|entry| entry.key == key)
    }

    /// The value at `key`, unless absent or null (null means "take the default").
    pub fn get(&self, key: &str) -> Option<&'t Item> {
        self.entry(key)
            .map(|entry| &entry.item)
            .filter(|item| !item.is_null())
    }

    pub fn path_of(&self, key: &str) -> String {
        join(&self.path, key)
    }
}

/// The collector every reader reports to.
pub struct Cx<'a> {
    pub problems: Vec<Problem>,
    /// Warnings with their origin, sorted and rendered when loading succeeds.
    pub warnings: Vec<(Origin, String)>,
    /// Files read through `*_file` keys, canonicalised.
    pub secret_files: Vec<PathBuf>,
    /// Every 🔒 value read, with the variable it came from.
    pub credentials: super::Credentials,
    /// Base of relative `*_file` paths.
    pub cwd: &'a Path,
}

impl Cx<'_> {
    pub fn error(&mut self, origin: &Origin, key: String, message: String) {
        self.problems.push(Problem {
            origin: origin.clone(),
            key,
            message,
        });
    }

    pub fn warn(&mut self, origin: &Origin, message: String) {
        self.warnings.push((origin.clone(), message));
    }

    fn wrong_type(&mut self, item: &Item, path: String, expected: &str) {
        let message = format!(
            "'{path}' must be {expected}, found {}",
            item.kind().describe()
        );
        self.error(&item.origin, path, message);
    }

    /// A required key that is missing: reported at the section that lacks it.
    pub fn missing(&mut self, section: &Section, key: &str, why: &str) {
        let path = section.path_of(key);
        let message = format!("'{path}' is required {why}");
        self.error(&section.origin, path, message);
    }

    /// A map at `key`; a null value (`docker:`) counts as an empty map that is present.
    pub fn section<'t>(&mut self, section: &Section<'t>, key: &str) -> Option<Section<'t>> {
        let entry = section.entry(key)?;
        let path = section.path_of(key);
        if entry.item.is_null() {
            return Some(Section::empty(path, entry.key_origin.clone()));
        }
        let found = Section::of_entry(entry, path.clone());
        if found.is_none() {
            self.wrong_type(&entry.item, path, "a map");
        }
        found
    }

    pub fn string(&mut self, section: &Section, key: &str) -> Option<String> {
        let item = section.get(key)?;
        match item.scalar_text() {
            Some(text) => Some(text.to_owned()),
            None => {
                self.wrong_type(item, section.path_of(key), "a string");
                None
            }
        }
    }

    pub fn path(&mut self, section: &Section, key: &str) -> Option<PathBuf> {
        self.string(section, key).map(PathBuf::from)
    }

    pub fn boolean(&mut self, section: &Section, key: &str) -> Option<bool> {
        let item = section.get(key)?;
        match &item.value {
            Value::Scalar(scalar) => match scalar.value {
                Resolved::Bool(value) => Some(value),
                _ => {
                    self.wrong_type(item, section.path_of(key), "true or false");
                    None
                }
            },
            _ => {
                self.wrong_type(item, section.path_of(key), "true or false");
                None
            }
        }
    }

    /// A whole number of at least `min`.
    pub fn uint(&mut self, section: &Section, key: &str, min: u64) -> Option<u64> {
        let item = section.get(key)?;
        let path = section.path_of(key);
        let Value::Scalar(scalar) = &item.value else {
            self.wrong_type(item, path, "a whole number");
            return None;
        };
        let Resolved::Int(number) = scalar.value else {
            self.wrong_type(item, path, "a whole number");
            return None;
        };
        match u64::try_from(number) {
            Ok(number) if number >= min => Some(number),
            _ => {
                let message = format!("'{path}' must be at least {min}, found {number}");
                self.error(&item.origin, path, message);
                None
            }
        }
    }

    /// A duration of the workflow syntax (WF §2.4: `90`, `30s`, `1h30m`, `2d`), `1 ≤ d ≤ max`.
    pub fn duration(&mut self, section: &Section, key: &str, max: Duration) -> Option<Duration> {
        let item = section.get(key)?;
        let path = section.path_of(key);
        let text = match &item.value {
            Value::Scalar(scalar) => match scalar.value {
                Resolved::Int(number) if number >= 0 => number.to_string(),
                Resolved::String => scalar.text.clone(),
                _ => String::new(),
            },
            _ => String::new(),
        };
        if text.is_empty() {
            self.wrong_type(item, path, "a duration such as 30s, 15m or 1h30m");
            return None;
        }
        let message = match parse_duration(&text) {
            Ok(0) => format!("'{path}' must be longer than zero"),
            Ok(secs) if secs > max.secs() => format!(
                "'{path}' of {} is longer than the maximum of {max}",
                Duration(secs)
            ),
            Ok(secs) => return Some(Duration(secs)),
            Err(why) => format!(
                "invalid duration '{text}' for '{path}': {why}; write e.g. 90, 30s, 15m or 1h30m"
            ),
        };
        self.error(&item.origin, path, message);
        None
    }

    /// A list of strings; a lone scalar counts as a list of one (`STROEM__TAGS=deploy`).
    pub fn strings(&mut self, section: &Section, key: &str) -> Option<Vec<String>> {
        let item = section.get(key)?;
        let path = section.path_of(key);
        let items: Vec<&Item> = match &item.value {
            Value::Seq(items) => items.iter().collect(),
            Value::Scalar(_) => vec![item],
            Value::Map(_) => {
                self.wrong_type(item, path, "a list of strings");
                return None;
            }
        };
        let mut strings = Vec::with_capacity(items.len());
        for (index, element) in items.into_iter().enumerate() {
            match element.scalar_text() {
                Some(text) => strings.push(text.to_owned()),
                None => {
                    self.wrong_type(element, format!("{path}[{index}]"), "a string");
                    return None;
                }
            }
        }
        Some(strings)
    }

    /// One of a fixed set of words; a near miss gets a suggestion.
    pub fn choice<T: Copy>(
        &mut self,
        section: &Section,
        key: &str,
        options: &[(&str, T)],
    ) -> Option<T> {
        let item = section.get(key)?;
        let text = self.string(section, key)?;
        self.word(&item.origin, section.path_of(key), &text, options)
    }

    /// Looks `text` up among `options`, reporting an unknown word at `origin`.
    pub fn word<T: Copy>(
        &mut self,
        origin: &Origin,
        path: String,
        text: &str,
        options: &[(&str, T)],
    ) -> Option<T> {
        if let Some((_, value)) = options.iter().find(|(name, _)| *name == text) {
            return Some(*value);
        }
        let names: Vec<&str> = options.iter().map(|(name, _)| *name).collect();
        let mut message = format!(
            "'{path}' must be one of {}, found '{text}'",
            names.join(", ")
        );
        if let Some(near) = suggest(text, names.iter().copied()) {
            message.push_str(&format!("; did you mean '{near}'?"));
        }
        self.error(origin, path, message);
        None
    }

    /// The key, of several spellings of one value, that is set; setting two is an error.
    pub fn one_of<'t>(
        &mut self,
        section: &Section<'t>,
        keys: &[&'t str],
    ) -> Option<(&'t str, &'t Item)> {
        let set: Vec<(&str, &Item)> = keys
            .iter()
            .filter_map(|key| section.get(key).map(|item| (*key, item)))
            .collect();
        if let [_, (second, item), ..] = set.as_slice() {
            let spelled: Vec<String> = set
                .iter()
                .map(|(key, _)| format!("'{}'", section.path_of(key)))
                .collect();
            let message = format!("set only one of {}", spelled.join(" and "));
            self.error(&item.origin, section.path_of(second), message);
            return None;
        }
        set.first().copied()
    }

    /// A 🔒 value: `key` itself, or the content of the file named by `key_file` with one
    /// trailing newline dropped.
    pub fn secret(&mut self, section: &Section, key: &str) -> Option<Secret> {
        let file_key = format!("{key}_file");
        let (spelling, item) = self.one_of(section, &[key, file_key.as_str()])?;
        let path = section.path_of(spelling);
        let Some(text) = item.scalar_text() else {
            self.wrong_type(item, path, "a string");
            return None;
        };
        let value = if spelling == key {
            text.to_owned()
        } else {
            self.read_secret_file(item, &path, text)?
        };
        if value.is_empty() {
            self.error(&item.origin, path.clone(), format!("'{path}' is empty"));
            return None;
        }
        let variable = match &item.origin {
            Origin::Env(name) => Some(name.as_str()),
            _ => None,
        };
        self.credentials.add(&value, variable);
        Some(Secret::new(value))
    }

    /// A 🔒 value that must be set; `why` completes "is required …".
    pub fn required_secret(&mut self, section: &Section, key: &str, why: &str) -> Option<Secret> {
        let file_key = format!("{key}_file");
        let secret = self.secret(section, key);
        if section.get(key).is_none() && section.get(&file_key).is_none() {
            self.missing(section, key, &format!("(or '{file_key}') {why}"));
        }
        secret
    }

    fn read_secret_file(&mut self, item: &Item, path: &str, file: &str) -> Option<String> {
        let full = self.cwd.join(file);
        match std::fs::read_to_string(&full) {
            Ok(mut content) => {
                if content.ends_with('\n') {
                    content.pop();
                    if content.ends_with('\r') {
                        content.pop();
                    }
                }
                // Refusal in `file()` compares after resolving links (WF §16.1), so keep the
                // canonical path.
                self.secret_files
                    .push(std::fs::canonicalize(&full).unwrap_or(full));
                Some(content)
            }
            Err(error) => {
                let message = format!("cannot read the file '{file}' named by '{path}': {error}");
                self.error(&item.origin, path.to_owned(), message);
                None
            }
        }
    }
}
