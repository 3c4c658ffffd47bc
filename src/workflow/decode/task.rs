//! Tasks (WF §8; rule 20 of §18.2) and their hook lists.

use super::super::diagnostic::suggest;
use super::super::model::{Hooks, Task, TaskMode};
use super::super::yaml::Node;
use super::duration::{self, DAY};
use super::fields::{Ctx, Fields};
use super::{retry, schema, step};

const KEYS: [&str; 14] = [
    "name",
    "description",
    "folder",
    "mode",
    "input",
    "flow",
    "timeout",
    "retry",
    "concurrency",
    "priority",
    "on_success",
    "on_error",
    "on_cancel",
    "on_suspended",
];

/// Decodes one task; `file` is the defining file and `folder` the one inferred from its
/// directory (WF §1.5), used when the task sets none.
pub fn decode(cx: &mut Ctx, node: &Node, path: &str, folder: Option<String>) -> Option<Task> {
    let mut f = Fields::open(cx, node, path)?;
    let mut task = Task {
        name: f.text(cx, "name"),
        description: f.text(cx, "description"),
        folder: explicit_folder(cx, &mut f).or(folder),
        mode: mode(cx, &mut f),
        input: f
            .get("input")
            .and_then(|n| schema::input(cx, n, &f.path_of("input"))),
        flow: Default::default(),
        timeout: duration::field(cx, &mut f, "timeout", 7 * DAY, false),
        retry: None,
        concurrency: None,
        priority: None,
        hooks: Hooks::default(),
        file: cx.file.to_owned(),
    };
    match f.get("flow") {
        None => cx.error(
            "missing-field",
            "the task has no 'flow'; add a map of steps",
            f.mark,
            path,
        ),
        Some(flow) if flow.as_seq().is_some() => {
            let message = "'flow' must be a map of step name → step, not a list; drop the '-' before each step name";
            cx.error("wrong-type", message, flow.mark, &f.path_of("flow"));
        }
        Some(flow) => {
            task.flow = step::flow(cx, flow, &f.path_of("flow"));
            if flow.as_map().is_some_and(|m| m.is_empty()) {
                cx.error(
                    "empty-flow",
                    "the task's 'flow' has no steps",
                    flow.mark,
                    &f.path_of("flow"),
                );
            }
        }
    }
    if let Some(node) = f.get("retry") {
        cx.unsupported("task-level 'retry'", node.mark, &f.path_of("retry"));
        task.retry = retry::decode(cx, node, &f.path_of("retry"));
    }
    if let Some(limit) = f.int(cx, "concurrency") {
        let mark = f.value_mark("concurrency");
        cx.unsupported("task 'concurrency'", mark, &f.path_of("concurrency"));
        match u32::try_from(limit) {
            Ok(n) if n >= 1 => task.concurrency = Some(n),
            _ => cx.error(
                "out-of-range",
                format!("'concurrency' must be at least 1, found {limit}"),
                mark,
                &f.path_of("concurrency"),
            ),
        }
    }
    if let Some(priority) = f.int(cx, "priority") {
        let mark = f.value_mark("priority");
        cx.unsupported("task 'priority'", mark, &f.path_of("priority"));
        task.priority = Some(priority);
    }
    task.hooks = hooks(cx, &mut f, &Hooks::default());
    f.finish(cx, &KEYS, &|key| {
        let step_key = [
            "action",
            "type",
            "depends_on",
            "when",
            "for_each",
            "script",
            "cmd",
        ];
        step_key
            .contains(&key)
            .then(|| format!("'{key}' is not a task field; steps and their fields go under 'flow'"))
    });
    Some(task)
}

/// The hook lists of a task or of a whole file; `before` holds the
/// hooks already collected, whose entries come first in the merged lists.
pub fn hooks(cx: &mut Ctx, f: &mut Fields, before: &Hooks) -> Hooks {
    let mut hooks = Hooks::default();
    for key in ["on_success", "on_error", "on_cancel", "on_suspended"] {
        let Some(node) = f.get(key) else { continue };
        let path = f.path_of(key);
        let first = match key {
            "on_success" => before.on_success.len(),
            "on_error" => before.on_error.len(),
            "on_cancel" => before.on_cancel.len(),
            _ => before.on_suspended.len(),
        };
        let list = step::hooks(cx, node, &path, first);
        match key {
            "on_success" => hooks.on_success = list,
            "on_error" => hooks.on_error = list,
            "on_cancel" => hooks.on_cancel = list,
            _ => hooks.on_suspended = list,
        }
    }
    hooks
}

fn mode(cx: &mut Ctx, f: &mut Fields) -> TaskMode {
    let Some(text) = f.text(cx, "mode") else {
        return TaskMode::Distributed;
    };
    let mark = f.value_mark("mode");
    let path = f.path_of("mode");
    match text.as_str() {
        "distributed" => TaskMode::Distributed,
        // A pod step in a local task would be an error (WF §18.2 rule 20); pods are refused
        // in this version whatever the mode.
        "local" => TaskMode::Local,
        other => {
            let message = match suggest(other, ["distributed", "local"]) {
                Some(close) => format!("unknown mode '{other}' — did you mean '{close}'?"),
                None => format!("unknown mode '{other}'; use distributed or local"),
            };
            cx.error("unknown-value", message, mark, &path);
            TaskMode::Distributed
        }
    }
}

/// `folder: a/b`: segments non-empty, no `..`, no leading `/`.
fn explicit_folder(cx: &mut Ctx, f: &mut Fields) -> Option<String> {
    let folder = f.text(cx, "folder")?;
    let valid = !folder.starts_with('/')
        && folder
            .split('/')
            .all(|segment| !segment.trim().is_empty() && segment != ".." && segment != ".");
    if !valid {
        let mark = f.value_mark("folder");
        let message = format!(
            "invalid folder '{folder}': use non-empty segments separated by '/', without '..' or a leading '/'"
        );
        cx.error("invalid-folder", message, mark, &f.path_of("folder"));
    }
    Some(folder)
}

/// The folder of tasks defined in `path` (WF §1.5): its directory below `.workflows/` (or
/// below the root when the workspace has no `.workflows/`).
pub fn inferred_folder(path: &str) -> Option<String> {
    let inside = path.strip_prefix(".workflows/").unwrap_or(path);
    let (dir, _) = inside.rsplit_once('/')?;
    (!dir.is_empty()).then(|| dir.to_owned())
}

#[cfg(test)]
mod tests {
    use super::inferred_folder;

    #[test]
    fn folders_follow_directories() {
        assert_eq!(inferred_folder(".workflows/release.yaml"), None);
        assert_eq!(
            inferred_folder(".workflows/ops/site.yaml").as_deref(),
            Some("ops")
        );
        assert_eq!(inferred_folder("a/b/c.yml").as_deref(), Some("a/b"));
        assert_eq!(inferred_folder("top.yaml"), None);
    }
}
