//! What a task reaches: the tasks it starts (`type: task` steps and hook tasks, transitively),
//! the named actions its steps and hooks use, and the workspace hooks every job fires — and so
//! which secrets the templates of all of those name (WF §16.1: an unset secret refuses only the
//! jobs that use it, "directly or through a hook or child task").
//!
//! The walk is conservative: every template string anywhere in those definitions counts, so a
//! secret named in a description or in an unused default counts as used.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use super::model::{ActionKind, ActionRef, Hooks, Runner, WorkspaceDef};
use super::template::{Templates, is_template};

/// The `secret` paths a task's templates read, each the constant part of its access path
/// (`secret.aws.key_id` → `["aws", "key_id"]`). An empty path means the whole `secret` object
/// (a dynamic subscript, `secret | tojson`): every secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretUse {
    paths: BTreeSet<Vec<String>>,
}

impl SecretUse {
    /// Whether the secret with the dotted name `name` (`aws.key_id`) may be read.
    pub fn uses(&self, name: &str) -> bool {
        let wanted: Vec<&str> = name.split('.').collect();
        self.paths
            .iter()
            .any(|path| path.iter().zip(&wanted).all(|(have, want)| have == want))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Item {
    Task(String),
    Action(String),
}

/// The secrets that jobs of `task` may read (see [`SecretUse`]).
pub fn secrets_used(def: &WorkspaceDef, task: &str, templates: &Templates) -> SecretUse {
    let mut walk = Walk::default();
    walk.hooks(&def.hooks);
    walk.pending.push(Item::Task(task.to_owned()));
    while let Some(item) = walk.pending.pop() {
        if !walk.seen.insert(item.clone()) {
            continue;
        }
        match item {
            Item::Task(name) => {
                let Some(task) = def.tasks.get(&name) else {
                    continue;
                };
                walk.strings(&task.input);
                for step in task.flow.values() {
                    walk.strings(&step.input);
                    walk.strings(&step.when);
                    walk.strings(&step.for_each);
                    walk.action(&step.action);
                }
                walk.hooks(&task.hooks);
            }
            Item::Action(name) => {
                if let Some(action) = def.actions.get(&name) {
                    walk.strings(action);
                    if let ActionKind::Task(target) = &action.kind {
                        walk.pending.push(Item::Task(target.task.clone()));
                    }
                }
            }
        }
    }
    let mut paths = BTreeSet::new();
    for text in walk.texts.iter().filter(|text| is_template(text)) {
        let Ok(analysis) = templates.analyze(text) else {
            continue;
        };
        paths.extend(
            analysis
                .references
                .into_iter()
                .filter(|reference| reference.root == "secret")
                .map(|reference| reference.path),
        );
    }
    SecretUse { paths }
}

/// The steps and hooks that jobs of `task` may run in a Kubernetes pod (`type: pod` or
/// `runner: pod`), described for a message: `step 'deploy' of task 'release'`, `an on_error
/// hook of task 'release'`, `a workspace on_error hook`. `stroem run` refuses such tasks before
/// anything runs (API §9.2).
pub fn pod_steps(def: &WorkspaceDef, task: &str) -> Vec<String> {
    let is_pod = |action: &ActionRef| {
        let action = match action {
            ActionRef::Named(name) => def.actions.get(name),
            ActionRef::Inline { action, .. } => Some(action.as_ref()),
        };
        action.is_some_and(|action| match &action.kind {
            ActionKind::Pod(_) => true,
            ActionKind::Script(script) => script.runner == Runner::Pod,
            _ => false,
        })
    };
    let child = |action: &ActionRef| {
        let action = match action {
            ActionRef::Named(name) => def.actions.get(name),
            ActionRef::Inline { action, .. } => Some(action.as_ref()),
        };
        action.and_then(|action| match &action.kind {
            ActionKind::Task(target) => Some(target.task.clone()),
            _ => None,
        })
    };
    let mut found = Vec::new();
    let mut pending = Vec::new();
    let hooks = |hooks: &Hooks, owner: &str, found: &mut Vec<String>, pending: &mut Vec<String>| {
        let all = [
            ("on_success", &hooks.on_success),
            ("on_error", &hooks.on_error),
            ("on_cancel", &hooks.on_cancel),
            ("on_suspended", &hooks.on_suspended),
        ];
        for (event, list) in all {
            for hook in list {
                if is_pod(&hook.action) {
                    found.push(format!("an {event} hook of {owner}"));
                }
                pending.extend(child(&hook.action));
            }
        }
    };
    hooks(&def.hooks, "the workspace", &mut found, &mut pending);
    pending.push(task.to_owned());
    let mut seen = BTreeSet::new();
    while let Some(name) = pending.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let Some(task) = def.tasks.get(&name) else {
            continue;
        };
        for (step_name, step) in &task.flow {
            if is_pod(&step.action) {
                found.push(format!("step '{step_name}' of task '{name}'"));
            }
            pending.extend(child(&step.action));
        }
        hooks(
            &task.hooks,
            &format!("task '{name}'"),
            &mut found,
            &mut pending,
        );
    }
    found
}

#[derive(Default)]
struct Walk {
    pending: Vec<Item>,
    seen: BTreeSet<Item>,
    texts: Vec<String>,
}

impl Walk {
    fn hooks(&mut self, hooks: &Hooks) {
        let all = [
            &hooks.on_success,
            &hooks.on_error,
            &hooks.on_cancel,
            &hooks.on_suspended,
        ];
        for hook in all.into_iter().flatten() {
            self.strings(&hook.input);
            self.action(&hook.action);
        }
    }

    fn action(&mut self, action: &ActionRef) {
        match action {
            ActionRef::Named(name) => self.pending.push(Item::Action(name.clone())),
            ActionRef::Inline { action, .. } => {
                self.strings(action);
                if let ActionKind::Task(target) = &action.kind {
                    self.pending.push(Item::Task(target.task.clone()));
                }
            }
        }
    }

    /// Every string leaf of a definition, as its serialized form shows it.
    fn strings(&mut self, value: &impl Serialize) {
        if let Ok(value) = serde_json::to_value(value) {
            collect(&value, &mut self.texts);
        }
    }
}

fn collect(value: &Value, texts: &mut Vec<String>) {
    match value {
        Value::String(text) => texts.push(text.clone()),
        Value::Array(items) => items.iter().for_each(|item| collect(item, texts)),
        Value::Object(fields) => fields.values().for_each(|item| collect(item, texts)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::{WorkflowFile, WorkspaceFiles, load};

    fn def(yaml: &str) -> WorkspaceDef {
        let loaded = load(&WorkspaceFiles {
            workflow_files: vec![WorkflowFile {
                path: ".workflows/main.yaml".to_owned(),
                text: yaml.to_owned(),
            }],
            all_files: Default::default(),
        });
        assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
        loaded.def
    }

    #[test]
    fn secrets_are_found_through_steps_children_actions_and_hooks() {
        let def = def(r#"
secrets:
  A: aaaa-value
  B: bbbb-value
  C: cccc-value
  D: dddd-value
  grp: { key: eeee-value, other: ffff-value }
actions:
  uses-c:
    type: script
    env: { C: "{{ secret.C }}" }
    script: echo
  start-child:
    type: task
    task: child
tasks:
  child:
    flow:
      s: { type: script, script: "echo {{ secret.B }}" }
  parent:
    flow:
      direct: { type: script, input: { a: "{{ secret.A }}" }, script: echo }
      named: { action: uses-c }
      nested: { type: task, task: child }
  hooked:
    flow:
      s: { type: script, script: echo }
    on_error:
      - action: start-child
  plain:
    flow:
      s: { type: script, script: "echo {{ secret.grp.key }}" }
"#);
        let templates = Templates::new();
        let used = |task: &str| {
            let used = secrets_used(&def, task, &templates);
            ["A", "B", "C", "D", "grp.key", "grp.other"]
                .into_iter()
                .filter(|name| used.uses(name))
                .collect::<Vec<_>>()
        };
        assert_eq!(used("parent"), ["A", "B", "C"]);
        assert_eq!(used("hooked"), ["B"]);
        assert_eq!(used("plain"), ["grp.key"]);
        assert_eq!(used("child"), ["B"]);
    }

    #[test]
    fn a_dynamic_lookup_uses_every_secret() {
        let def = def(r#"
secrets:
  A: aaaa-value
  grp: { key: eeee-value }
tasks:
  any:
    flow:
      s: { type: script, input: { k: "{{ input.k }}" }, script: "echo {{ secret[input.k] }}" }
    input:
      k: { type: string }
  plain:
    flow:
      s: { type: script, script: echo }
"#);
        let templates = Templates::new();
        assert!(secrets_used(&def, "any", &templates).uses("grp.key"));
        assert!(!secrets_used(&def, "plain", &templates).uses("A"));
    }
}
