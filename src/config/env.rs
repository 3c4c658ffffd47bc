//! `STROEM__` environment overrides (API §10.1), merged into the configuration tree.
//!
//! `STROEM__AUTH__JWT_SECRET` names the key path `auth.jwt_secret`: segments separated by `__`,
//! matched against the key table case-insensitively; under a map of user-chosen names
//! (`workspaces`, `auth.providers`) a segment matches an existing name with `_` standing for `-`
//! (`DATA_TEAM` → `data-team`), else it creates the name in lower case. Setting a secret or an
//! aliased key drops the other spelling when the file wrote it, so the environment wins over the
//! file instead of clashing with it. Variables are applied in name order, so the result does not
//! depend on the order the environment was captured in.

use std::collections::BTreeMap;

use super::error::{Origin, Problem};
use super::keys::{self, Key, Shape};
use super::tree::{Entry, Item, parse_env_value};

pub const PREFIX: &str = "STROEM__";

/// Where in the key table a variable's next segment is looked up.
#[derive(Clone, Copy)]
enum Level {
    Keys(&'static [Key]),
    Named(&'static [Key]),
}

/// Applies every `STROEM__` variable of `env` to `root`; bad variables become problems.
pub fn overlay(root: &mut Item, env: &BTreeMap<String, String>, problems: &mut Vec<Problem>) {
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let segments: Vec<&str> = rest.split("__").collect();
        if segments.iter().any(|segment| segment.is_empty()) {
            problems.push(Problem {
                origin: Origin::Env(name.clone()),
                key: String::new(),
                message: format!(
                    "'{name}' is not a key path: write the keys upper-case, separated by '__', \
                     e.g. STROEM__DB__URL"
                ),
            });
            continue;
        }
        let var = Var { name, value };
        set(root, Level::Keys(keys::ROOT), &segments, "", &var, problems);
    }
}

struct Var<'a> {
    name: &'a str,
    value: &'a str,
}

impl Var<'_> {
    fn problem(&self, key: String, message: String) -> Problem {
        Problem {
            origin: Origin::Env(self.name.to_owned()),
            key,
            message,
        }
    }
}

fn set(
    node: &mut Item,
    level: Level,
    segments: &[&str],
    prefix: &str,
    var: &Var,
    problems: &mut Vec<Problem>,
) {
    let Some((segment, rest)) = segments.split_first() else {
        return;
    };
    if node.is_null() {
        *node = Item::empty_map(Origin::Env(var.name.to_owned()));
    }
    let kind = node.kind();
    let Some(entries) = node.entries_mut() else {
        let message = format!(
            "'{prefix}' is {}, not a map, so {} cannot set a key under it",
            kind.describe(),
            var.name
        );
        problems.push(var.problem(prefix.to_owned(), message));
        return;
    };
    let (name, next, key) = match level {
        Level::Keys(keys) => {
            let Some((key, spelling)) = keys::find(keys, segment, true) else {
                let message = keys::unknown_message(keys, prefix, &segment.to_ascii_lowercase());
                let path = keys::join(prefix, &segment.to_ascii_lowercase());
                problems.push(var.problem(path, message));
                return;
            };
            let next = match &key.shape {
                Shape::Leaf => None,
                Shape::Section(sub) => Some(Level::Keys(sub)),
                Shape::Named(sub) => Some(Level::Named(sub)),
            };
            (spelling, next, Some(key))
        }
        Level::Named(sub) => {
            let wanted = normalize(segment);
            let name = entries
                .iter()
                .find(|entry| normalize(&entry.key) == wanted)
                .map_or_else(|| segment.to_ascii_lowercase(), |entry| entry.key.clone());
            (name, Some(Level::Keys(sub)), None)
        }
    };
    let path = keys::join(prefix, &name);
    if rest.is_empty() {
        let item = match parse_env_value(var.name, var.value) {
            Ok(item) => item,
            Err(why) => {
                let message = format!("invalid value for '{path}': {why}");
                problems.push(var.problem(path, message));
                return;
            }
        };
        if let Some(key) = key {
            // The environment outranks the file: a file's `jwt_secret_file` must not clash with
            // `STROEM__AUTH__JWT_SECRET`, so the file's other spellings of the key give way.
            entries.retain(|entry| {
                entry.key == name
                    || !matches!(entry.key_origin, Origin::File { .. })
                    || !key.spellings().contains(&entry.key)
            });
        }
        match entries.iter_mut().find(|entry| entry.key == name) {
            Some(entry) => {
                entry.key_origin = item.origin.clone();
                entry.item = item;
            }
            None => entries.push(Entry {
                key: name,
                key_origin: item.origin.clone(),
                item,
            }),
        }
        return;
    }
    let Some(next) = next else {
        let message = format!(
            "'{path}' has no keys under it, so {} sets nothing",
            var.name
        );
        problems.push(var.problem(path, message));
        return;
    };
    let index = match entries.iter().position(|entry| entry.key == name) {
        Some(index) => index,
        None => {
            let origin = Origin::Env(var.name.to_owned());
            entries.push(Entry {
                key: name,
                key_origin: origin.clone(),
                item: Item::empty_map(origin),
            });
            entries.len() - 1
        }
    };
    set(&mut entries[index].item, next, rest, &path, var, problems);
}

/// Map names compare case-insensitively with `_` and `-` the same.
fn normalize(name: &str) -> String {
    name.to_ascii_lowercase().replace('-', "_")
}
