//! Flow steps and hook entries (WF §7, §9, §14; rules 21, 24, 26, 27 of §18.2 as far as they
//! concern one step).
//!
//! A step whose action could not be decoded keeps `ActionRef::Named("")` so the flow keeps its
//! shape; the problem has already been reported and later checks skip the empty name.

use std::collections::HashMap;

use super::super::diagnostic::Diagnostic;
use super::super::model::{ActionRef, ForEach, Hook, Map, Step, When};
use super::super::source::{index, join};
use super::super::template::is_template;
use super::super::yaml::{Mark, Node, NodeKind, Resolved};
use super::action::{self, Shape};
use super::duration::{self, DAY};
use super::fields::{Ctx, Fields};
use super::names::{self, NameKind};
use super::retry;

const STEP_KEYS: [&str; 11] = [
    "action",
    "name",
    "description",
    "depends_on",
    "input",
    "continue_on_failure",
    "when",
    "for_each",
    "sequential",
    "timeout",
    "retry",
];
const HOOK_KEYS: [&str; 4] = ["action", "input", "timeout", "retry"];
/// Most items a literal `for_each` list may hold (WF §10.3).
pub const MAX_ITEMS: usize = 10_000;

/// A task's `flow`: step names checked, including collisions after `-` → `_`.
pub fn flow(cx: &mut Ctx, node: &Node, path: &str) -> Map<Step> {
    let mut steps = Map::new();
    let mut identifiers: HashMap<String, (String, Mark)> = HashMap::new();
    for (name, key, value) in cx.named_entries(node, path) {
        let step_path = join(path, &name);
        if let Err(message) = names::check(NameKind::Step, &name) {
            cx.error("invalid-name", message, key.mark, &step_path);
        }
        let ident = names::step_identifier(&name);
        if let Some((other, other_mark)) = identifiers.get(&ident) {
            let message = format!(
                "steps '{other}' and '{name}' are both referenced as '{ident}' in templates"
            );
            let diagnostic =
                Diagnostic::error("step-name-collision", message, &cx.at(key.mark), &step_path)
                    .with_related(
                        format!("step '{other}' is defined here"),
                        &cx.at(*other_mark),
                    );
            cx.push(diagnostic);
        } else {
            identifiers.insert(ident, (name.clone(), key.mark));
        }
        if let Some(step) = step(cx, value, &step_path) {
            steps.insert(name, step);
        }
    }
    steps
}

/// How a step or hook names its action: `action: name`, `action: { … }` or the short form.
fn action_ref(cx: &mut Ctx, f: &mut Fields, owner_keys: &[&str]) -> (ActionRef, Option<Shape>) {
    let path = f.path.clone();
    if f.has("action") && f.has("type") {
        let mark = f.key_mark("type").unwrap_or(f.mark);
        cx.error(
            "conflicting-fields",
            "'action' and 'type' cannot both be set; put the action's fields under 'action' or drop 'action'",
            mark,
            &f.path_of("type"),
        );
        f.skip("type");
    }
    if let Some(node) = f.get("action") {
        let action_path = f.path_of("action");
        return match &node.kind {
            NodeKind::Scalar(s) if s.value != Resolved::Null => {
                (ActionRef::Named(s.text.clone()), None)
            }
            NodeKind::Map(_) => match action::full(cx, node, &action_path) {
                Some(inline) => {
                    let shape = shape_of(&inline);
                    let action = ActionRef::Inline {
                        action: Box::new(inline),
                        short_form: false,
                    };
                    (action, shape)
                }
                None => (ActionRef::Named(String::new()), None),
            },
            _ => {
                cx.wrong_type(node, &action_path, "an action name or an inline action");
                (ActionRef::Named(String::new()), None)
            }
        };
    }
    if f.has("type") {
        let decoded = action::decode(cx, f, owner_keys);
        return match decoded {
            Some((inline, shape)) => (
                ActionRef::Inline {
                    action: Box::new(inline),
                    short_form: true,
                },
                Some(shape),
            ),
            None => (ActionRef::Named(String::new()), None),
        };
    }
    let what = if owner_keys.len() == HOOK_KEYS.len() {
        "hook"
    } else {
        "step"
    };
    cx.error(
        "missing-field",
        format!("the {what} has neither 'action' nor 'type'; name an action or write one inline"),
        f.mark,
        &path,
    );
    (ActionRef::Named(String::new()), None)
}

fn shape_of(action: &super::super::model::Action) -> Option<Shape> {
    use super::super::model::ActionKind;
    match &action.kind {
        ActionKind::Approval(_) => Some(Shape::Approval),
        _ => None,
    }
}

/// Leaves the keys of `f` for the short-form action, or reports them as unknown.
fn finish(cx: &mut Ctx, f: Fields, action: &ActionRef, shape: Option<Shape>, own: &[&str]) {
    match action {
        ActionRef::Inline {
            short_form: true, ..
        } => action::finish(cx, f, shape, own),
        ActionRef::Named(name) if name.is_empty() && f.has("type") => {
            action::finish(cx, f, None, own)
        }
        _ => f.finish(cx, own, &|key| {
            action::ALL.contains(&key).then(|| {
                format!("'{key}' is an action field; put it under 'action' or drop 'action' to use the short form")
            })
        }),
    }
}

fn step(cx: &mut Ctx, node: &Node, path: &str) -> Option<Step> {
    let mut f = Fields::open(cx, node, path)?;
    let (action, shape) = action_ref(cx, &mut f, &STEP_KEYS);
    let approval = shape == Some(Shape::Approval);
    let mut step = Step {
        action,
        name: f.text(cx, "name"),
        description: f.text(cx, "description"),
        depends_on: f.text_list(cx, "depends_on").unwrap_or_default(),
        input: f
            .map(cx, "input")
            .map(|n| cx.value_map(n, &f.path_of("input")))
            .unwrap_or_default(),
        continue_on_failure: f.bool(cx, "continue_on_failure").unwrap_or(false),
        when: when(cx, &mut f),
        for_each: for_each(cx, &mut f),
        sequential: f.bool(cx, "sequential").unwrap_or(false),
        timeout: duration::field(
            cx,
            &mut f,
            "timeout",
            if approval { 7 * DAY } else { DAY },
            false,
        ),
        retry: None,
    };
    if let Some(node) = f.get("retry") {
        let retry_path = f.path_of("retry");
        if approval {
            cx.error(
                "key-not-allowed",
                "'retry' is not allowed on an approval step",
                node.mark,
                &retry_path,
            );
        }
        step.retry = retry::decode(cx, node, &retry_path);
    }
    if step.sequential && step.for_each.is_none() {
        let mark = f.key_mark("sequential").unwrap_or(f.mark);
        cx.warning(
            "sequential-without-for-each",
            "'sequential' has no effect without 'for_each'",
            mark,
            &f.path_of("sequential"),
        );
    }
    let action = step.action.clone();
    finish(cx, f, &action, shape, &STEP_KEYS);
    Some(step)
}

fn when(cx: &mut Ctx, f: &mut Fields) -> Option<When> {
    let node = f.get("when")?;
    let path = f.path_of("when");
    match node.as_scalar().map(|s| s.value) {
        Some(Resolved::Bool(b)) => Some(When::Constant(b)),
        Some(Resolved::String) => {
            let text = node.scalar_text().unwrap_or_default().to_owned();
            if !is_template(&text) {
                let message = format!(
                    "'when' is a string without a template expression; write \"{{{{ {text} }}}}\" or true/false"
                );
                cx.error("invalid-when", message, node.mark, &path);
            }
            Some(When::Template(text))
        }
        _ => {
            cx.wrong_type(node, &path, "true, false or a template");
            None
        }
    }
}

fn for_each(cx: &mut Ctx, f: &mut Fields) -> Option<ForEach> {
    let node = f.get("for_each")?;
    let path = f.path_of("for_each");
    if let Some(items) = node.as_seq() {
        if items.len() > MAX_ITEMS {
            let message = format!(
                "'for_each' lists {} items, more than the maximum of {MAX_ITEMS}",
                items.len()
            );
            cx.error("too-many-items", message, node.mark, &path);
        }
        for (i, item) in items.iter().enumerate().take(MAX_ITEMS) {
            cx.record_tree(&index(&path, i), item);
        }
        return Some(ForEach::Items(items.iter().map(Node::to_json).collect()));
    }
    match node.as_str() {
        Some(text) if is_template(text) => Some(ForEach::Template(text.to_owned())),
        Some(_) => {
            cx.error(
                "invalid-for-each",
                "'for_each' is a string without a template expression; write a list or \"{{ … }}\"",
                node.mark,
                &path,
            );
            None
        }
        None => {
            cx.wrong_type(node, &path, "a list or a template");
            None
        }
    }
}

/// A hook list (`on_error: [ … ]`). Entries are numbered from `first`, their index in the
/// merged list: workspace-level lists of several files are concatenated (WF §1.3).
pub fn hooks(cx: &mut Ctx, node: &Node, path: &str, first: usize) -> Vec<Hook> {
    let Some(items) = node.as_seq() else {
        cx.wrong_type(node, path, "a list of hooks");
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let hook_path = index(path, first + i);
        cx.sources.record_value(&hook_path, cx.at(item.mark));
        let Some(mut f) = Fields::open(cx, item, &hook_path) else {
            continue;
        };
        let (action, shape) = action_ref(cx, &mut f, &HOOK_KEYS);
        let hook = Hook {
            action,
            input: f
                .map(cx, "input")
                .map(|n| cx.value_map(n, &f.path_of("input")))
                .unwrap_or_default(),
            timeout: duration::field(cx, &mut f, "timeout", DAY, false),
            retry: f
                .get("retry")
                .and_then(|n| retry::decode(cx, n, &f.path_of("retry"))),
        };
        let action = hook.action.clone();
        finish(cx, f, &action, shape, &HOOK_KEYS);
        out.push(hook);
    }
    out
}
