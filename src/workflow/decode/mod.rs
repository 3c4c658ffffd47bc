//! Decoding: the YAML trees of every workflow file → one merged
//! [`WorkspaceDef`](super::model::WorkspaceDef) (WF §1–§9, §13–§16).
//!
//! The decoder checks everything that concerns one object (rules 1–20, 26, 27 of WF §18.2 and
//! the field rules of triggers and secrets) and never stops at the first problem. It records
//! the key and value location of every field it visits in [`Loaded::sources`], so validation —
//! which checks references between objects on the typed model — can point at the YAML too.
//! Constructs of later phases are decoded as far as possible and reported as `unsupported`.
//!
//! Conventions later checks rely on:
//! - An object that could not be decoded is left out of the model, but its name's location is
//!   in the source map (`actions.build`), so a reference to it is not reported as unknown.
//! - A step or hook whose action could not be decoded has `ActionRef::Named("")`; a task
//!   action or trigger without `task` has an empty task name. Both are already reported.
//! - Of a name defined twice, the first definition is kept (model and source map).
//! - Paths follow [`source::join`](super::source::join) / [`source::index`](super::source::index);
//!   workspace-level hooks are numbered in the merged list (`on_error[3]`).

mod action;
mod duration;
mod fields;
mod names;
mod retry;
mod schema;
mod script;
mod step;
mod task;
mod trigger;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use super::diagnostic::{Diagnostic, Location};
use super::model::{Map, SecretValue, WorkspaceDef};
use super::source::{SourceMap, join};
use super::yaml::{self, Node, NodeKind};
use super::{Loaded, WorkspaceFiles};
use fields::{Ctx, Fields};
use names::NameKind;

pub use duration::parse as parse_duration;
pub use names::{input_variable, step_identifier};
pub use schema::coerce;

const TOP_LEVEL: [&str; 10] = [
    "actions",
    "tasks",
    "triggers",
    "secrets",
    "on_success",
    "on_error",
    "on_cancel",
    "on_suspended",
    "connection_types",
    "connections",
];

/// Decodes and merges every workflow file, in the order given (byte order of paths).
pub fn decode(files: &WorkspaceFiles) -> Loaded {
    let mut decoder = Decoder::default();
    for file in &files.workflow_files {
        decoder.file(files, &file.path, &file.text);
    }
    Loaded {
        def: decoder.def,
        sources: decoder.sources,
        diagnostics: decoder.diagnostics,
    }
}

#[derive(Default)]
struct Decoder {
    def: WorkspaceDef,
    sources: SourceMap,
    diagnostics: Vec<Diagnostic>,
    /// First definition of each (kind, name), for duplicate reporting across files.
    defined: HashMap<(NameKind, String), Location>,
}

impl Decoder {
    fn file(&mut self, files: &WorkspaceFiles, path: &str, text: &str) {
        let start = Location {
            file: path.to_owned(),
            line: 1,
            column: 1,
        };
        if path.ends_with(".sops.yaml") || path.ends_with(".sops.yml") {
            let message = "SOPS-encrypted workflow files are not supported in this version";
            self.diagnostics
                .push(Diagnostic::error("unsupported", message, &start, ""));
            return;
        }
        let document = yaml::parse(path, text);
        self.diagnostics.extend(document.diagnostics);
        let Some(root) = document.root else { return };
        if root.is_null() {
            return;
        }
        if root.as_map().is_none() {
            let message = format!(
                "the top level of a workflow file must be a mapping (actions, tasks, triggers, …), found {}",
                root.kind().describe()
            );
            let at = root.at(path);
            self.diagnostics
                .push(Diagnostic::error("not-a-mapping", message, &at, ""));
            return;
        }
        let mut sources = std::mem::take(&mut self.sources);
        let mut diagnostics = std::mem::take(&mut self.diagnostics);
        let mut cx = Ctx {
            file: path,
            all_files: &files.all_files,
            sources: &mut sources,
            diagnostics: &mut diagnostics,
        };
        self.top_level(&mut cx, &root);
        self.sources = sources;
        self.diagnostics = diagnostics;
    }

    fn top_level(&mut self, cx: &mut Ctx, root: &Node) {
        let Some(mut f) = Fields::open(cx, root, "") else {
            return;
        };
        if let Some(node) = f.get("actions") {
            self.named(
                cx,
                node,
                "actions",
                NameKind::Action,
                |def, name, cx, node, path| {
                    if let Some(action) = action::full(cx, node, path) {
                        def.actions.insert(name, action);
                    }
                },
            );
        }
        if let Some(node) = f.get("tasks") {
            let folder = task::inferred_folder(cx.file);
            self.named(
                cx,
                node,
                "tasks",
                NameKind::Task,
                |def, name, cx, node, path| {
                    if let Some(task) = task::decode(cx, node, path, folder.clone()) {
                        def.tasks.insert(name, task);
                    }
                },
            );
        }
        if let Some(node) = f.get("triggers") {
            self.named(
                cx,
                node,
                "triggers",
                NameKind::Trigger,
                |def, name, cx, node, path| {
                    if let Some(trigger) = trigger::decode(cx, node, path, &name) {
                        def.triggers.insert(name, trigger);
                    }
                },
            );
        }
        if let Some(node) = f.get("secrets") {
            self.named(
                cx,
                node,
                "secrets",
                NameKind::Secret,
                |def, name, cx, node, path| {
                    if let Some(value) = secret(cx, node, path) {
                        def.secrets.insert(name, value);
                    }
                },
            );
        }
        let hooks = task::hooks(cx, &mut f, &self.def.hooks);
        self.def.hooks.on_success.extend(hooks.on_success);
        self.def.hooks.on_error.extend(hooks.on_error);
        self.def.hooks.on_cancel.extend(hooks.on_cancel);
        self.def.hooks.on_suspended.extend(hooks.on_suspended);
        for key in ["connection_types", "connections"] {
            if let Some(node) = f.get(key) {
                cx.unsupported(&format!("'{key}'"), node.mark, key);
                let kind = NameKind::Connection;
                for (name, name_key, _) in cx.named_entries(node, key) {
                    if let Err(message) = names::check(kind, &name) {
                        cx.error("invalid-name", message, name_key.mark, &join(key, &name));
                    }
                }
            }
        }
        f.finish(cx, &TOP_LEVEL, &|_| None);
    }

    /// Decodes a map of named definitions, checking each name and reporting a name already
    /// defined by an earlier file. A duplicate is still decoded, to report its own problems,
    /// but into a scratch source map, and it is not added to the model.
    fn named(
        &mut self,
        cx: &mut Ctx,
        node: &Node,
        section: &str,
        kind: NameKind,
        mut add: impl FnMut(&mut WorkspaceDef, String, &mut Ctx, &Node, &str),
    ) {
        for (name, key, value) in cx.entries(node, section) {
            let path = join(section, &name);
            if let Err(message) = names::check(kind, &name) {
                cx.error("invalid-name", message, key.mark, &path);
            }
            let here = cx.at(key.mark);
            match self.defined.get(&(kind, name.clone())) {
                Some(first) => {
                    let message = format!("{} '{name}' is defined twice", kind.noun());
                    let diagnostic = Diagnostic::error("duplicate-name", message, &here, &path)
                        .with_related("first defined here", first);
                    cx.push(diagnostic);
                    let mut scratch = SourceMap::default();
                    let mut scratch_cx = Ctx {
                        file: cx.file,
                        all_files: cx.all_files,
                        sources: &mut scratch,
                        diagnostics: &mut *cx.diagnostics,
                    };
                    let mut discard = WorkspaceDef::default();
                    add(&mut discard, name, &mut scratch_cx, value, &path);
                }
                None => {
                    cx.record_entry(section, &name, key, value);
                    self.defined.insert((kind, name.clone()), here);
                    add(&mut self.def, name, cx, value, &path);
                }
            }
        }
    }
}

/// A secret value: a template string (scalars converted) or a nested map (WF §16.1).
fn secret(cx: &mut Ctx, node: &Node, path: &str) -> Option<SecretValue> {
    match &node.kind {
        NodeKind::Scalar(_) => match node.scalar_text() {
            Some(text) if !text.is_empty() => Some(SecretValue::Template(text.to_owned())),
            _ => {
                cx.error(
                    "empty-value",
                    "the secret's value is empty",
                    node.mark,
                    path,
                );
                None
            }
        },
        NodeKind::Map(_) => {
            let mut map = Map::new();
            for (name, key, value) in cx.named_entries(node, path) {
                let child = join(path, &name);
                if let Err(message) = names::check(NameKind::Secret, &name) {
                    cx.error("invalid-name", message, key.mark, &child);
                }
                if let Some(value) = secret(cx, value, &child) {
                    map.insert(name, value);
                }
            }
            Some(SecretValue::Map(map))
        }
        NodeKind::Seq(_) => {
            cx.wrong_type(node, path, "a string or a map of strings");
            None
        }
    }
}
