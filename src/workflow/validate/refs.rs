//! Names that must resolve (WF §18.2 rules 12, 21, 31, 32): the action of every step and hook,
//! and the target of every `type: task` action and trigger. (Literal `source` files, rule 10,
//! are checked by the decoder, which sees the file list too.)

use super::{Checker, action_path, all_actions, hooks, steps};
use crate::workflow::diagnostic::suggest;
use crate::workflow::model::{ActionKind, ActionRef};
use crate::workflow::source::join;

pub(super) fn check(c: &mut Checker<'_>) {
    let def = c.def;
    let owners: Vec<(&ActionRef, String)> = steps(def)
        .map(|(_, _, step, path)| (&step.action, path))
        .chain(
            hooks(def)
                .into_iter()
                .map(|site| (&site.hook.action, site.path)),
        )
        .collect();
    for (action, owner) in owners {
        if let ActionRef::Named(name) = action {
            check_action_name(
                c,
                name,
                &action_path(&owner, action),
                &join(&owner, "action"),
            );
        }
    }
    for (path, action, _) in all_actions(def) {
        if let ActionKind::Task(target) = &action.kind {
            check_task_name(c, &target.task, &join(&path, "task"), "task action");
        }
    }
    for (name, trigger) in &def.triggers {
        let path = join(&join("triggers", name), "task");
        check_task_name(c, &trigger.task, &path, "trigger");
    }
}

fn check_action_name(c: &mut Checker<'_>, name: &str, definition: &str, path: &str) {
    // An empty name stands for a step the decoder already reported (neither action nor type).
    if name.is_empty() || c.def.actions.contains_key(name) || c.was_defined(definition) {
        return;
    }
    let known = c.def.actions.keys().map(String::as_str);
    let message = match suggest(name, known) {
        Some(close) => format!("unknown action '{name}' — did you mean '{close}'?"),
        None => format!("unknown action '{name}'"),
    };
    c.error("unknown-action", message, path);
}

fn check_task_name(c: &mut Checker<'_>, name: &str, path: &str, what: &str) {
    if name.is_empty() || c.def.tasks.contains_key(name) || c.was_defined(&join("tasks", name)) {
        return;
    }
    let known = c.def.tasks.keys().map(String::as_str);
    let message = match suggest(name, known) {
        Some(close) => format!("{what} targets unknown task '{name}' — did you mean '{close}'?"),
        None => format!("{what} targets unknown task '{name}'"),
    };
    c.error("unknown-task", message, path);
}
