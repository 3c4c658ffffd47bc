//! Cross-reference validation on the decoded model (WF §18.2).
//!
//! The decoder checks every object on its own (keys, kinds, names, durations). What is left needs
//! the whole workspace at once: names that must resolve (actions, tasks, steps, secrets, files),
//! graphs that must be acyclic (flows, task actions), templates whose variables must exist where
//! they are rendered, and trigger schedules. Each check lives in its own submodule and appends to
//! one [`Checker`], which locates diagnostics through the [`SourceMap`] by field path.

mod dag;
mod inputs;
mod literal;
mod nesting;
mod refs;
mod scope;
mod secrets;
mod templates;
mod triggers;

use std::collections::HashSet;

use super::diagnostic::{Diagnostic, Location};
use super::model::{
    Action, ActionKind, ActionRef, Hook, HookEvent, InputSchema, Step, WorkspaceDef,
};
use super::source::{SourceMap, index, join};
use super::template::Templates;
use super::{Loaded, WorkspaceFiles};

/// Adds every cross-reference diagnostic of WF §18.2 to `loaded.diagnostics`.
pub fn validate(loaded: &mut Loaded, files: &WorkspaceFiles) {
    let mut checker = Checker::new(&loaded.def, &loaded.sources, files);
    // A file that could not be parsed (its errors carry no field path) defines names nobody
    // can see; reporting them as unknown elsewhere would only bury the real error.
    checker.incomplete = loaded
        .diagnostics
        .iter()
        .any(|d| d.is_error() && d.path.is_empty());
    refs::check(&mut checker);
    dag::check(&mut checker);
    nesting::check(&mut checker);
    inputs::check(&mut checker);
    templates::check(&mut checker);
    triggers::check(&mut checker);
    secrets::check(&mut checker);
    let found = checker.finish();
    loaded.diagnostics.extend(found);
}

/// Shared state of one validation pass: the model, where it came from, and what was found.
pub(crate) struct Checker<'a> {
    pub def: &'a WorkspaceDef,
    pub sources: &'a SourceMap,
    pub files: &'a WorkspaceFiles,
    pub templates: Templates,
    /// Some workflow file could not be read or parsed, so names may be missing from the model.
    pub incomplete: bool,
    found: Vec<Diagnostic>,
}

/// Diagnostics about names that may be defined in a file that failed to parse.
const UNRESOLVED: [&str; 3] = ["unknown-action", "unknown-task", "unknown-secret"];

impl<'a> Checker<'a> {
    pub fn new(def: &'a WorkspaceDef, sources: &'a SourceMap, files: &'a WorkspaceFiles) -> Self {
        Checker {
            def,
            sources,
            files,
            templates: Templates::new(),
            incomplete: false,
            found: Vec::new(),
        }
    }

    /// Location of the value at `path` (or its nearest recorded ancestor).
    pub fn at(&self, path: &str) -> Location {
        self.sources.value(path)
    }

    /// Location of the key at `path`, for problems with a name rather than a value.
    pub fn at_key(&self, path: &str) -> Location {
        self.sources.key_or_value(path)
    }

    pub fn error(&mut self, code: &str, message: impl Into<String>, path: &str) {
        let at = self.at(path);
        self.push(Diagnostic::error(code, message, &at, path));
    }

    pub fn warning(&mut self, code: &str, message: impl Into<String>, path: &str) {
        let at = self.at(path);
        self.push(Diagnostic::warning(code, message, &at, path));
    }

    pub fn push(&mut self, diagnostic: Diagnostic) {
        if self.incomplete && UNRESOLVED.contains(&diagnostic.code.as_str()) {
            return;
        }
        self.found.push(diagnostic);
    }

    /// Whether the decoder saw a definition at `path` even though the model lacks it: an object
    /// with its own errors is left out of the model, and must not also be reported as unknown.
    pub fn was_defined(&self, path: &str) -> bool {
        self.sources.key(path).is_some()
    }

    /// The diagnostics found, without repeats: a named action used by several steps is checked
    /// once per use, and each use may find the same problem in the action's templates.
    fn finish(self) -> Vec<Diagnostic> {
        let mut seen = HashSet::new();
        self.found
            .into_iter()
            .filter(|d| {
                seen.insert((
                    d.code.clone(),
                    d.message.clone(),
                    d.file.clone(),
                    d.line,
                    d.column,
                ))
            })
            .collect()
    }
}

/// An action as a step or hook uses it.
#[derive(Clone, Copy)]
pub(crate) struct UsedAction<'a> {
    pub action: &'a Action,
    /// The workspace name of a referenced action; `None` for inline actions.
    pub name: Option<&'a str>,
}

/// Path under which the fields of an action used at `owner` (a step or hook path) were written.
pub(crate) fn action_path(owner: &str, action: &ActionRef) -> String {
    match action {
        ActionRef::Named(name) => join("actions", name),
        ActionRef::Inline {
            short_form: true, ..
        } => owner.to_owned(),
        ActionRef::Inline { .. } => join(owner, "action"),
    }
}

/// Resolves a step's or hook's action; `None` when it names an action that does not exist.
pub(crate) fn resolve<'a>(def: &'a WorkspaceDef, action: &'a ActionRef) -> Option<&'a Action> {
    match action {
        ActionRef::Named(name) => def.actions.get(name),
        ActionRef::Inline { action, .. } => Some(action),
    }
}

/// The input schema that applies to what a step or hook passes to `action`: the action's own, or
/// for `type: task` the target task's (WF §6.7). `None` accepts any keys.
pub(crate) fn input_schema<'a>(
    def: &'a WorkspaceDef,
    action: &'a Action,
) -> Option<&'a InputSchema> {
    match &action.kind {
        ActionKind::Task(target) => def.tasks.get(&target.task)?.input.as_ref(),
        _ => action.input.as_ref(),
    }
}

/// How a diagnostic names what a step's input is checked against: `action 'greet'`,
/// `task 'cleanup'`, or `the inline action`.
pub(crate) fn schema_owner(action: &Action, name: Option<&str>) -> String {
    match (&action.kind, name) {
        (ActionKind::Task(target), _) => format!("task '{}'", target.task),
        (_, Some(name)) => format!("action '{name}'"),
        (_, None) => "the inline action".to_owned(),
    }
}

/// Every step of every task with its field path, in YAML order.
pub(crate) fn steps(def: &WorkspaceDef) -> impl Iterator<Item = (&str, &str, &Step, String)> {
    def.tasks.iter().flat_map(|(task, t)| {
        t.flow.iter().map(move |(name, step)| {
            let path = join(&join(&join("tasks", task), "flow"), name);
            (task.as_str(), name.as_str(), step, path)
        })
    })
}

/// The name a template uses for a step: every `-` replaced by `_` (WF §2.3).
pub(crate) fn template_name(step: &str) -> String {
    step.replace('-', "_")
}

/// A hook entry with where it was written: `tasks.t.on_error[0]` or `on_error[0]`.
pub(crate) struct HookSite<'a> {
    /// The task whose hook this is; `None` for workspace-level hooks.
    pub task: Option<&'a str>,
    pub hook: &'a Hook,
    pub path: String,
}

/// Every hook of every task, then the workspace-level hooks.
pub(crate) fn hooks(def: &WorkspaceDef) -> Vec<HookSite<'_>> {
    let mut sites = Vec::new();
    let owners = def
        .tasks
        .iter()
        .map(|(name, task)| (Some(name.as_str()), &task.hooks, join("tasks", name)))
        .chain(std::iter::once((None, &def.hooks, String::new())));
    for (task, list, prefix) in owners {
        for event in HOOK_EVENTS {
            for (i, hook) in list.for_event(event).iter().enumerate() {
                sites.push(HookSite {
                    task,
                    hook,
                    path: index(&join(&prefix, event.key()), i),
                });
            }
        }
    }
    sites
}

const HOOK_EVENTS: [HookEvent; 4] = [
    HookEvent::Success,
    HookEvent::Error,
    HookEvent::Cancel,
    HookEvent::Suspended,
];

/// Every action definition with the path of its fields and its workspace name: the `actions:`
/// map, then inline actions of steps and hooks.
pub(crate) fn all_actions(def: &WorkspaceDef) -> Vec<(String, &Action, Option<&str>)> {
    let mut all: Vec<_> = def
        .actions
        .iter()
        .map(|(name, action)| (join("actions", name), action, Some(name.as_str())))
        .collect();
    let owners = steps(def)
        .map(|(_, _, step, path)| (&step.action, path))
        .chain(
            hooks(def)
                .into_iter()
                .map(|site| (&site.hook.action, site.path)),
        );
    for (action_ref, owner) in owners {
        if let ActionRef::Inline { action, .. } = action_ref {
            all.push((action_path(&owner, action_ref), action.as_ref(), None));
        }
    }
    all
}

#[cfg(test)]
mod tests;
