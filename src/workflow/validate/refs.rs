//! Names that must resolve (WF §18.2 rules 10, 12, 21, 31, 32): the action of every step and
//! hook, the target of every `type: task` action and trigger, and literal `source` files.

use super::{Checker, action_path, all_actions, hooks, steps};
use crate::workflow::diagnostic::suggest;
use crate::workflow::model::{ActionKind, ActionRef, ScriptCode};
use crate::workflow::source::join;
use crate::workflow::template::is_template;

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
        match &action.kind {
            ActionKind::Task(target) => {
                check_task_name(c, &target.task, &join(&path, "task"), "task action");
            }
            ActionKind::Script(script) => {
                if let ScriptCode::Source(source) = &script.code {
                    // Legacy `type: shell` writes the file path under `script` (WF §6.2).
                    let key = if script.legacy_shell {
                        "script"
                    } else {
                        "source"
                    };
                    check_source(c, source, &join(&path, key));
                }
            }
            _ => {}
        }
    }
    for (name, trigger) in &def.triggers {
        let path = join(&join("triggers", name), "task");
        check_task_name(c, &trigger.task, &path, "trigger");
    }
}

fn check_action_name(c: &mut Checker<'_>, name: &str, definition: &str, path: &str) {
    if c.def.actions.contains_key(name) || c.was_defined(definition) {
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
    if c.def.tasks.contains_key(name) || c.was_defined(&join("tasks", name)) {
        return;
    }
    let known = c.def.tasks.keys().map(String::as_str);
    let message = match suggest(name, known) {
        Some(close) => format!("{what} targets unknown task '{name}' — did you mean '{close}'?"),
        None => format!("{what} targets unknown task '{name}'"),
    };
    c.error("unknown-task", message, path);
}

/// Rule 10: a literal `source` is a relative path that stays inside the workspace and names an
/// existing file. Templated paths are checked when rendered (WF §6.6).
fn check_source(c: &mut Checker<'_>, source: &str, path: &str) {
    if is_template(source) {
        return;
    }
    if source.starts_with('/') {
        let message =
            format!("source '{source}' is absolute; paths are relative to the workspace root");
        c.error("source-escapes", message, path);
        return;
    }
    let Some(normal) = normalize(source) else {
        c.error(
            "source-escapes",
            format!("source '{source}' escapes the workspace"),
            path,
        );
        return;
    };
    if c.files.all_files.contains(&normal) {
        return;
    }
    let known = c.files.all_files.iter().map(String::as_str);
    let message = match suggest(&normal, known) {
        Some(close) => format!("source file '{source}' does not exist — did you mean '{close}'?"),
        None => format!("source file '{source}' does not exist in the workspace"),
    };
    c.error("missing-source", message, path);
}

/// Resolves `.` and `..` segments; `None` when the path climbs above the root.
fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn normalizes_inside_the_root_and_refuses_escapes() {
        assert_eq!(normalize("./scripts/a.sh").as_deref(), Some("scripts/a.sh"));
        assert_eq!(normalize("scripts/../b.sh").as_deref(), Some("b.sh"));
        assert_eq!(normalize("../b.sh"), None);
        assert_eq!(normalize("a/../../b.sh"), None);
    }
}
