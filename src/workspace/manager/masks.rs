//! The mask set of a revision (WF §16.3): its resolved secrets, and every value written
//! literally in the workflow files for a field marked `secret: true` — a task's or an action's
//! input default, a trigger's input value, a step's or a hook's input value for its action. A
//! template is not a literal: what it renders to is a secret (in the set already), a job's input
//! (in the job's set) or not secret at all.
//!
//! Every job of the revision masks with this set, and so do the revision's task and trigger
//! views, where the literals themselves are shown.

use serde_json::Value;

use crate::mask::{Masker, string_leaves};
use crate::workflow::model::{Action, ActionRef, Hook, Hooks, InputSchema, Map, WorkspaceDef};
use crate::workflow::template::is_template;

/// The mask set of a revision with definition `def` and resolved `secrets`.
pub fn revision_mask(def: &WorkspaceDef, secrets: &Value) -> Masker {
    let mut values = Vec::new();
    string_leaves(secrets, &mut values);
    for action in def.actions.values() {
        secret_defaults(action.input.as_ref(), &mut values);
    }
    for task in def.tasks.values() {
        secret_defaults(task.input.as_ref(), &mut values);
        for step in task.flow.values() {
            given_to(def, &step.action, &step.input, &mut values);
        }
        hook_literals(def, &task.hooks, &mut values);
    }
    hook_literals(def, &def.hooks, &mut values);
    for trigger in def.triggers.values() {
        if let Some(task) = def.tasks.get(&trigger.task) {
            secret_literals(task.input.as_ref(), &trigger.input, &mut values);
        }
    }
    Masker::new(values)
}

/// The action a step or hook runs, looked up or inline.
pub fn action_of<'d>(def: &'d WorkspaceDef, action: &'d ActionRef) -> Option<&'d Action> {
    match action {
        ActionRef::Named(name) => def.actions.get(name),
        ActionRef::Inline { action, .. } => Some(action),
    }
}

/// Literal values a step or hook gives to its action's secret fields, and the literal defaults
/// of an inline action's secret fields (named actions' are collected with the actions).
fn given_to(def: &WorkspaceDef, action: &ActionRef, input: &Map<Value>, out: &mut Vec<String>) {
    if let ActionRef::Inline { action, .. } = action {
        secret_defaults(action.input.as_ref(), out);
    }
    if let Some(action) = action_of(def, action) {
        secret_literals(action.input.as_ref(), input, out);
    }
}

fn hook_literals(def: &WorkspaceDef, hooks: &Hooks, out: &mut Vec<String>) {
    let all: [&Vec<Hook>; 3] = [&hooks.on_success, &hooks.on_error, &hooks.on_cancel];
    for hook in all.into_iter().flatten() {
        given_to(def, &hook.action, &hook.input, out);
    }
}

/// Literal defaults of the secret fields of `schema`.
fn secret_defaults(schema: Option<&InputSchema>, out: &mut Vec<String>) {
    for field in schema.into_iter().flatten().map(|(_, field)| field) {
        if let (true, Some(default)) = (field.secret, &field.default) {
            literal(default, out);
        }
    }
}

/// Literal values `given` to the secret fields of `schema`.
fn secret_literals(schema: Option<&InputSchema>, given: &Map<Value>, out: &mut Vec<String>) {
    for (name, field) in schema.into_iter().flatten() {
        if let (true, Some(value)) = (field.secret, given.get(name)) {
            literal(value, out);
        }
    }
}

/// The literal text of `value`, or of each of its leaves; templates are skipped.
fn literal(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(text) if is_template(text) => {}
        Value::String(text) => out.push(text.clone()),
        Value::Array(items) => items.iter().for_each(|item| literal(item, out)),
        Value::Object(map) => map.values().for_each(|item| literal(item, out)),
        Value::Null => {}
        other => out.push(other.to_string()),
    }
}
