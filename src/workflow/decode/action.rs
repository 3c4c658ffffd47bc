//! Actions (WF §5–§7; rules 6–14 of §18.2): the type, the fields every type shares, and which
//! keys each type allows — with a specific message for a key that belongs to another type.
//!
//! The same decoder reads named actions, inline actions (`action: { … }`) and the short form,
//! where the action's fields sit on a step or hook next to its own keys.

use super::super::diagnostic::suggest;
use super::super::model::{Action, ActionKind, ApprovalAction, Map, Resources, Runner, TaskAction};
use super::super::template::is_template;
use super::super::yaml::Node;
use super::duration::{self, DAY};
use super::fields::{Ctx, Fields};
use super::{names, retry, schema, script};

/// Keys every worker action type shares.
const COMMON: [&str; 11] = [
    "type",
    "name",
    "description",
    "input",
    "output",
    "env",
    "tags",
    "timeout",
    "retry",
    "resources",
    "workdir",
];
/// Keys that belong to some action type.
pub const ALL: [&str; 24] = [
    "type",
    "name",
    "description",
    "input",
    "output",
    "env",
    "tags",
    "timeout",
    "retry",
    "resources",
    "workdir",
    "script",
    "source",
    "cmd",
    "language",
    "interpreter",
    "args",
    "runner",
    "image",
    "manifest",
    "entrypoint",
    "command",
    "task",
    "message",
];
const TYPES: [&str; 6] = ["script", "shell", "task", "docker", "pod", "approval"];
const SCRIPT_ONLY: [&str; 6] = [
    "script",
    "source",
    "language",
    "interpreter",
    "args",
    "runner",
];

/// What an action is, which decides the keys it allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Script { legacy: bool, runner: Runner },
    Docker,
    Pod,
    Task,
    Approval,
}

impl Shape {
    fn label(self) -> &'static str {
        match self {
            Shape::Script { legacy: false, .. } => "a script",
            Shape::Script { legacy: true, .. } => "a shell",
            Shape::Docker => "a docker",
            Shape::Pod => "a pod",
            Shape::Task => "a task",
            Shape::Approval => "an approval",
        }
    }

    pub fn allowed(self) -> Vec<&'static str> {
        let mut keys: Vec<&'static str> = match self {
            Shape::Task => vec!["type", "name", "description", "timeout", "retry", "task"],
            Shape::Approval => {
                vec!["type", "name", "description", "message", "input", "timeout"]
            }
            _ => COMMON.to_vec(),
        };
        match self {
            Shape::Script { legacy, runner } => {
                keys.extend([
                    if legacy { "cmd" } else { "source" },
                    "script",
                    "language",
                    "interpreter",
                    "args",
                    "runner",
                ]);
                if runner != Runner::Local {
                    keys.push("image");
                }
                if runner == Runner::Pod {
                    keys.push("manifest");
                }
            }
            Shape::Docker => keys.extend(["image", "entrypoint", "command", "cmd"]),
            Shape::Pod => keys.extend(["image", "entrypoint", "command", "cmd", "manifest"]),
            Shape::Task | Shape::Approval => {}
        }
        keys
    }

    /// The specific message for an action key this shape does not allow (WF §2.2).
    pub fn misplaced(self, key: &str) -> Option<String> {
        if !ALL.contains(&key) || self.allowed().contains(&key) {
            return None;
        }
        let label = self.label();
        let message = match (self, key) {
            (Shape::Script { runner, .. }, "image") => format!(
                "'image' is not allowed on {label} action with runner: {}; set runner: docker",
                runner_name(runner)
            ),
            (Shape::Script { .. }, "manifest") => {
                format!("'manifest' is not allowed on {label} action unless runner: pod")
            }
            (Shape::Script { legacy: false, .. }, "cmd") => {
                "'cmd' is not allowed on a script action; use 'script' for inline code".to_owned()
            }
            (Shape::Script { legacy: true, .. }, "source") => {
                "'source' is not allowed on a shell action, where 'script' is the file path; use 'script' or switch to type: script".to_owned()
            }
            (Shape::Script { .. }, "entrypoint" | "command") => {
                format!("'{key}' is not allowed on {label} action; it belongs to docker actions")
            }
            (Shape::Docker | Shape::Pod, _) if SCRIPT_ONLY.contains(&key) => {
                format!("'{key}' is not allowed on {label} action; it applies to script actions only")
            }
            (Shape::Docker, "manifest") => {
                "'manifest' is not allowed on a docker action; only pod actions take one".to_owned()
            }
            (Shape::Task, _) => format!(
                "'{key}' is not allowed on a task action, which takes only type, task, name, description, timeout and retry"
            ),
            (Shape::Approval, _) => format!(
                "'{key}' is not allowed on an approval action, which takes only type, name, description, message, input and timeout"
            ),
            _ => format!("'{key}' is not allowed on {label} action"),
        };
        Some(message)
    }
}

pub fn runner_name(runner: Runner) -> &'static str {
    match runner {
        Runner::Local => "local",
        Runner::Docker => "docker",
        Runner::Pod => "pod",
    }
}

/// A named or full-form inline action: its own mapping.
pub fn full(cx: &mut Ctx, node: &Node, path: &str) -> Option<Action> {
    let mut f = Fields::open(cx, node, path)?;
    if !f.has("type") {
        let mark = f.mark;
        cx.error(
            "missing-field",
            "the action has no 'type'; set type: script, shell or task",
            mark,
            path,
        );
    }
    let decoded = decode(cx, &mut f, &[]);
    finish(cx, f, decoded.as_ref().map(|d| d.1), &[]);
    decoded.map(|d| d.0)
}

/// Reports the keys left on `f`: `extra` are the owner's keys (a step's, in the short form).
pub fn finish(cx: &mut Ctx, mut f: Fields, shape: Option<Shape>, extra: &[&str]) {
    let Some(shape) = shape else {
        // Without a known type every action key might have been right; say nothing more.
        for key in ALL {
            f.skip(key);
        }
        f.finish(cx, extra, &|_| None);
        return;
    };
    let mut valid: Vec<&str> = extra.to_vec();
    valid.extend(shape.allowed().into_iter().filter(|k| !extra.contains(k)));
    let short_form = !extra.is_empty();
    f.finish(cx, &valid, &|key| {
        if short_form && key == "output" {
            return Some(
                "'output' cannot be declared in the short form; use action: { type: …, output: … }"
                    .to_owned(),
            );
        }
        if !short_form && STEP_ONLY.contains(&key) {
            return Some(format!(
                "'{key}' is a step field, not an action field; set it on the step that uses the action"
            ));
        }
        shape.misplaced(key)
    });
}

/// Keys of a flow step that no action has, for the message when one is written on an action.
const STEP_ONLY: [&str; 5] = [
    "depends_on",
    "continue_on_failure",
    "when",
    "for_each",
    "sequential",
];

/// Reads the action's keys from `f`. In the short form the owner's keys (`owned`: a step's
/// `name`, `input`, `timeout`, …) are left alone. `None` when `type` is missing or unknown
/// (already reported).
pub fn decode(cx: &mut Ctx, f: &mut Fields, owned: &[&str]) -> Option<(Action, Shape)> {
    let type_node = f.get("type")?;
    let type_path = f.path_of("type");
    let Some(type_name) = type_node.scalar_text() else {
        cx.wrong_type(type_node, &type_path, "a string");
        return None;
    };
    let shape = match type_name {
        "script" | "shell" => Shape::Script {
            legacy: type_name == "shell",
            runner: script::runner(cx, f),
        },
        "docker" => Shape::Docker,
        "pod" => Shape::Pod,
        "task" => Shape::Task,
        "approval" => Shape::Approval,
        "agent" => {
            cx.unsupported("action type 'agent'", type_node.mark, &type_path);
            return None;
        }
        other => {
            let message = match suggest(other, TYPES) {
                Some(close) => format!("unknown action type '{other}' — did you mean '{close}'?"),
                None => {
                    format!("unknown action type '{other}'; valid types are script, shell and task")
                }
            };
            cx.error("unknown-action-type", message, type_node.mark, &type_path);
            return None;
        }
    };
    let allowed = shape.allowed();
    // The short form has no schemas: `input` is the step's and `output` is reported.
    let short_form = !owned.is_empty();
    let read = |key: &str| {
        allowed.contains(&key) && !owned.contains(&key) && !(short_form && key == "output")
    };
    let path = f.path.clone();
    let kind = match shape {
        Shape::Script { legacy, runner } => {
            ActionKind::Script(script::script(cx, f, legacy, runner))
        }
        Shape::Docker => ActionKind::Docker(script::container(cx, f, false)),
        Shape::Pod => ActionKind::Pod(script::container(cx, f, true)),
        Shape::Task => ActionKind::Task(TaskAction {
            task: required_text(
                cx,
                f,
                "task",
                &path,
                "a task action needs 'task', the name of the task to run",
            ),
        }),
        Shape::Approval => ActionKind::Approval(ApprovalAction {
            message: required_text(
                cx,
                f,
                "message",
                &path,
                "an approval action needs a 'message'",
            ),
        }),
    };
    let mut action = Action {
        name: read("name").then(|| f.text(cx, "name")).flatten(),
        description: read("description")
            .then(|| f.text(cx, "description"))
            .flatten(),
        kind,
        input: None,
        output: None,
        env: Map::new(),
        tags: Vec::new(),
        timeout: None,
        retry: None,
        resources: None,
        workdir: None,
    };
    if read("input")
        && let Some(node) = f.get("input")
    {
        action.input = schema::input(cx, node, &f.path_of("input"));
    }
    if read("output")
        && let Some(node) = f.get("output")
    {
        action.output = schema::output(cx, node, &f.path_of("output"));
    }
    if read("timeout") {
        let max = if shape == Shape::Approval {
            7 * DAY
        } else {
            DAY
        };
        action.timeout = duration::field(cx, f, "timeout", max, false);
    }
    if read("retry")
        && let Some(node) = f.get("retry")
    {
        action.retry = retry::decode(cx, node, &f.path_of("retry"));
    }
    if read("env")
        && let Some(node) = f.get("env")
    {
        action.env = env(cx, node, &f.path_of("env"));
    }
    if read("tags") {
        action.tags = f.text_list(cx, "tags").unwrap_or_default();
    }
    if read("resources") {
        action.resources = resources(cx, f, shape);
    }
    if read("workdir") {
        action.workdir = workdir(cx, f, shape);
    }
    Some((action, shape))
}

/// A required, non-empty text field; missing or empty is reported with `missing`.
pub fn required_text(cx: &mut Ctx, f: &mut Fields, key: &str, path: &str, missing: &str) -> String {
    match f.text(cx, key) {
        Some(text) if !text.is_empty() => text,
        Some(_) => {
            let mark = f.value_mark(key);
            cx.error(
                "empty-field",
                format!("'{key}' is empty"),
                mark,
                &f.path_of(key),
            );
            String::new()
        }
        None => {
            if !f.has(key) {
                cx.error(
                    "missing-field",
                    missing,
                    f.key_mark(key).unwrap_or(f.mark),
                    path,
                );
            }
            String::new()
        }
    }
}

/// `env`: names per WF §5, scalar values as strings.
fn env(cx: &mut Ctx, node: &Node, path: &str) -> Map<String> {
    let mut out = Map::new();
    for (name, key, value) in cx.named_entries(node, path) {
        let var_path = super::super::source::join(path, &name);
        if let Err(message) = names::check_env(&name) {
            cx.error("invalid-name", message, key.mark, &var_path);
        }
        match value.scalar_text() {
            Some(text) => {
                out.insert(name, text.to_owned());
            }
            None if value.is_null() => {
                out.insert(name, String::new());
            }
            None => cx.wrong_type(value, &var_path, "a string"),
        }
    }
    out
}

fn resources(cx: &mut Ctx, f: &mut Fields, shape: Shape) -> Option<Resources> {
    let node = f.get("resources")?;
    let path = f.path_of("resources");
    let mut r = Fields::open(cx, node, &path)?;
    let mut out = Resources {
        cpu: None,
        memory: None,
    };
    for key in ["cpu", "memory"] {
        let Some(value) = r.get(key) else { continue };
        let text = duration::quantity_text(value).map(str::to_owned);
        let ok = text.as_deref().is_some_and(|t| {
            if key == "cpu" {
                duration::is_cpu(t)
            } else {
                duration::is_memory(t)
            }
        });
        if !ok {
            let example = if key == "cpu" {
                "\"2\", \"0.5\" or \"500m\""
            } else {
                "\"512Mi\", \"2Gi\" or \"1G\""
            };
            let shown = text.unwrap_or_else(|| value.to_json().to_string());
            let message = format!("invalid {key} quantity '{shown}'; write e.g. {example}");
            cx.error("invalid-quantity", message, value.mark, &r.path_of(key));
        } else if key == "cpu" {
            out.cpu = text;
        } else {
            out.memory = text;
        }
    }
    r.finish(cx, &["cpu", "memory"], &|_| None);
    if matches!(
        shape,
        Shape::Script {
            runner: Runner::Local,
            ..
        }
    ) {
        cx.warning(
            "resources-ignored",
            "'resources' cannot be enforced by the local runner and is ignored",
            node.mark,
            &path,
        );
    }
    Some(out)
}

fn workdir(cx: &mut Ctx, f: &mut Fields, shape: Shape) -> Option<String> {
    let text = f.text(cx, "workdir")?;
    let mark = f.value_mark("workdir");
    let path = f.path_of("workdir");
    if is_template(&text) {
        return Some(text);
    }
    match shape {
        Shape::Script { .. } => {
            if let Err(why) = script::relative_path(&text) {
                cx.error("invalid-path", format!("'workdir' {why}"), mark, &path);
            }
        }
        _ if !text.starts_with('/') => {
            cx.error(
                "invalid-path",
                "'workdir' of a container action must be an absolute path",
                mark,
                &path,
            );
        }
        _ => {}
    }
    Some(text)
}
