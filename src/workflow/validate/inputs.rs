//! What steps, hooks and triggers pass as input, against the schema that will receive it
//! (WF §18.2 rules 25, 31, 32): declared keys only, required fields supplied, literal values of
//! the right type and among the options. Templated values are checked when rendered.

use serde_json::Value;

use super::literal::{check as check_literal, contains_template};
use super::{Checker, hooks, input_schema, resolve, schema_owner, steps};
use crate::workflow::diagnostic::suggest;
use crate::workflow::model::{ActionKind, ActionRef, InputSchema, Map, TriggerKind};
use crate::workflow::source::join;

/// Keys every webhook job carries whatever the task declares (WF §3.2 step 1).
pub(crate) const WEBHOOK_KEYS: [&str; 4] = ["body", "headers", "method", "query"];

/// One input map to check: who receives it, and where it was written.
struct Supplied<'a> {
    schema: &'a InputSchema,
    /// `action 'greet'`, `task 'release'`.
    receiver: String,
    input: &'a Map<Value>,
    /// The step, hook or trigger path; the input is under `<owner>.input`.
    owner: String,
    /// Webhook triggers: the four request keys are always supplied.
    webhook: bool,
    /// Approval forms are filled by the approver, so `required` is not checked here (WF §6.8).
    check_required: bool,
}

pub(super) fn check(c: &mut Checker<'_>) {
    let def = c.def;
    let mut all = Vec::new();
    let users = steps(def)
        .map(|(_, _, step, path)| (&step.action, &step.input, path))
        .chain(
            hooks(def)
                .into_iter()
                .map(|site| (&site.hook.action, &site.hook.input, site.path)),
        );
    for (action_ref, input, owner) in users {
        let Some(action) = resolve(def, action_ref) else {
            continue;
        };
        let Some(schema) = input_schema(def, action) else {
            continue;
        };
        let name = match action_ref {
            ActionRef::Named(name) => Some(name.as_str()),
            ActionRef::Inline { .. } => None,
        };
        all.push(Supplied {
            schema,
            receiver: schema_owner(action, name),
            input,
            owner,
            webhook: false,
            check_required: !matches!(action.kind, ActionKind::Approval(_)),
        });
    }
    for (name, trigger) in &def.triggers {
        let Some(schema) = def.tasks.get(&trigger.task).and_then(|t| t.input.as_ref()) else {
            continue;
        };
        all.push(Supplied {
            schema,
            receiver: format!("task '{}'", trigger.task),
            input: &trigger.input,
            owner: join("triggers", name),
            webhook: matches!(trigger.kind, TriggerKind::Webhook(_)),
            check_required: true,
        });
    }
    for supplied in all {
        check_supplied(c, &supplied);
    }
}

fn check_supplied(c: &mut Checker<'_>, s: &Supplied<'_>) {
    let input_path = join(&s.owner, "input");
    for (key, value) in s.input {
        let path = join(&input_path, key);
        let Some(field) = s.schema.get(key) else {
            if s.webhook && WEBHOOK_KEYS.contains(&key.as_str()) {
                continue;
            }
            let message = match suggest(key, s.schema.keys().map(String::as_str)) {
                Some(close) => format!(
                    "input '{key}' is not declared by {} — did you mean '{close}'?",
                    s.receiver
                ),
                None => format!("input '{key}' is not declared by {}", s.receiver),
            };
            let at = c.at_key(&path);
            c.push(crate::workflow::diagnostic::Diagnostic::error(
                "unknown-input",
                message,
                &at,
                &path,
            ));
            continue;
        };
        if value.is_null() || contains_template(value) {
            continue;
        }
        if let Some(problem) = check_literal(key, field, value) {
            let message = format!("input '{key}' of {}: {problem}", s.receiver);
            c.error("invalid-input", message, &path);
        }
    }
    if !s.check_required {
        return;
    }
    for (key, field) in s.schema {
        let supplied = s.input.get(key).is_some_and(|v| !v.is_null())
            || (s.webhook && WEBHOOK_KEYS.contains(&key.as_str()));
        if field.required && field.default.is_none() && !supplied {
            let message = format!("required input '{key}' of {} is not supplied", s.receiver);
            let at_path = if s.input.is_empty() {
                &s.owner
            } else {
                &input_path
            };
            let at = c.at_key(at_path);
            c.push(crate::workflow::diagnostic::Diagnostic::error(
                "missing-input",
                message,
                &at,
                at_path,
            ));
        }
    }
}
