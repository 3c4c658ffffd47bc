//! Every template of the workspace, parsed and checked against the variables of the site where
//! it renders (WF §12.2, §18.2 rules 29–30). A template is parsed once; a named action's
//! fields are checked once per step or hook that uses it, since each use renders them with
//! that step's flow.

use serde_json::Value;

use super::dag::transitive_dependencies;
use super::scope::{FlowScope, InputScope, Scope, available, check_reference};
use super::{Checker, UsedAction, action_path, all_actions, hooks, steps};
use crate::workflow::diagnostic::{Diagnostic, Location};
use crate::workflow::model::{
    Action, ActionKind, FieldType, ForEach, InputSchema, ScriptCode, SecretValue, TriggerKind, When,
};
use crate::workflow::source::{index, join};
use crate::workflow::template::{TemplateError, is_template};

pub(super) fn check(c: &mut Checker<'_>) {
    let def = c.def;
    for (name, value) in &def.secrets {
        check_secret(c, value, &join("secrets", name));
    }
    for (name, trigger) in &def.triggers {
        let path = join("triggers", name);
        if let TriggerKind::Webhook(hook) = &trigger.kind
            && let Some(secret) = &hook.secret
        {
            check_text(
                c,
                secret,
                &join(&path, "secret"),
                &[Scope::new("a webhook secret")],
            );
        }
        // Rendered at each firing with `secret` and `trigger` (WF §12.2).
        let mut scope = Scope::new("trigger input");
        scope.trigger = true;
        check_tree(c, &trigger.input, &join(&path, "input"), &[scope]);
    }
    for (name, task) in &def.tasks {
        check_defaults(c, task.input.as_ref(), &join(&join("tasks", name), "input"));
    }
    for (path, action, _) in all_actions(def) {
        check_defaults(c, action.input.as_ref(), &join(&path, "input"));
    }
    check_steps(c);
    check_actions(c);
    for site in hooks(def) {
        let mut scope = Scope::new("hook input");
        scope.hook = true;
        scope.job = true;
        check_tree(c, &site.hook.input, &join(&site.path, "input"), &[scope]);
    }
}

/// Secrets render at load with `env` and `file()` only (WF §16.1).
fn check_secret(c: &mut Checker<'_>, value: &SecretValue, path: &str) {
    match value {
        SecretValue::Template(text) => {
            let mut scope = Scope::new("secrets");
            scope.secret = false;
            scope.env = true;
            check_text(c, text, path, &[scope]);
        }
        SecretValue::Map(inner) => {
            for (key, value) in inner {
                check_secret(c, value, &join(path, key));
            }
        }
    }
}

/// String defaults render at job creation or step render with `secret` and `job` (WF §3.2).
fn check_defaults(c: &mut Checker<'_>, schema: Option<&InputSchema>, path: &str) {
    for (field, definition) in schema.into_iter().flatten() {
        if let Some(Value::String(text)) = &definition.default {
            let mut scope = Scope::new("input defaults");
            scope.job = true;
            check_text(c, text, &join(&join(path, field), "default"), &[scope]);
        }
    }
}

/// `when`, `for_each` and step `input` see the job input, the step's dependencies and, in the
/// input of a loop step, `each`.
fn check_steps(c: &mut Checker<'_>) {
    let def = c.def;
    for (task_name, step_name, step, path) in steps(def) {
        let task = &def.tasks[task_name];
        let scope = |site: &'static str| {
            let mut scope = Scope::new(site);
            scope.input = task_input(def, task_name, task.input.as_ref());
            scope.job = true;
            scope.flow = Some(FlowScope {
                flow: &task.flow,
                step: step_name,
                dependencies: transitive_dependencies(&task.flow, step_name),
            });
            scope
        };
        if let Some(When::Template(text)) = &step.when {
            let mut when = scope("when");
            when.loop_condition = step.for_each.is_some();
            check_text(c, text, &join(&path, "when"), &[when]);
        }
        if let Some(ForEach::Template(text)) = &step.for_each {
            check_text(c, text, &join(&path, "for_each"), &[scope("for_each")]);
        }
        let mut input = scope("step input");
        input.step = true;
        input.each = step.for_each.is_some();
        check_tree(c, &step.input, &join(&path, "input"), &[input]);
    }
}

/// The job input as the task's templates see it: undeclared keys are errors when the task
/// declares `input`, except the request keys of tasks a webhook triggers.
fn task_input<'a>(
    def: &'a super::WorkspaceDef,
    task: &str,
    schema: Option<&'a InputSchema>,
) -> InputScope<'a> {
    match schema {
        None => InputScope::Any,
        Some(schema) => InputScope::Schema {
            schema,
            owner: format!("task '{task}'"),
            webhook: def
                .triggers
                .values()
                .any(|t| t.task == task && matches!(t.kind, TriggerKind::Webhook(_))),
        },
    }
}

/// One step or hook that renders an action's fields.
struct Use<'a> {
    /// `(task, step)` for steps; `None` for hooks, which have no flow.
    step: Option<(&'a str, &'a str)>,
    looped: bool,
}

/// Action fields render per attempt with the step's validated input, `step`, `each` and the
/// step's dependencies (WF §12.2).
fn check_actions(c: &mut Checker<'_>) {
    let def = c.def;
    let mut uses: Vec<(String, Use<'_>)> = Vec::new();
    for (task, name, step, path) in steps(def) {
        let used = Use {
            step: Some((task, name)),
            looped: step.for_each.is_some(),
        };
        uses.push((action_path(&path, &step.action), used));
    }
    for site in hooks(def) {
        let used = Use {
            step: None,
            looped: false,
        };
        uses.push((action_path(&site.path, &site.hook.action), used));
    }
    for (path, action, name) in all_actions(def) {
        let used = UsedAction { action, name };
        let mine: Vec<&Use<'_>> = uses
            .iter()
            .filter(|(p, _)| *p == path)
            .map(|(_, u)| u)
            .collect();
        let scopes: Vec<Scope<'_>> = if mine.is_empty() {
            // An action no step uses: check what can be checked without a flow.
            vec![action_scope(c, used, None)]
        } else {
            mine.into_iter()
                .map(|u| action_scope(c, used, Some(u)))
                .collect()
        };
        for (text, field) in action_fields(action, &path) {
            check_text(c, text, &field, &scopes);
        }
        check_shell_code(c, action, &path);
    }
}

/// A shell script that writes a value into its own code with `{{ … }}` runs whatever the value
/// holds: a quote or `;` changes the script (issue #15; actionlint's script-injection check).
/// Values the action's input declares as numbers or booleans are safe; everything else is a
/// warning whose help line shows the two safe ways.
fn check_shell_code(c: &mut Checker<'_>, action: &Action, path: &str) {
    let ActionKind::Script(script) = &action.kind else {
        return;
    };
    let (ScriptCode::Inline(text), crate::workflow::model::Language::Shell) =
        (&script.code, script.language)
    else {
        return;
    };
    if !is_template(text) {
        return;
    }
    let Ok(analysis) = c.templates.analyze(text) else {
        return;
    };
    let field = join(path, if script.legacy_shell { "cmd" } else { "script" });
    for reference in &analysis.unquoted {
        let typed = reference.root == "input"
            && reference.path.len() == 1
            && action
                .input
                .as_ref()
                .and_then(|schema| schema.get(&reference.path[0]))
                .is_some_and(|field| {
                    matches!(
                        field.field_type,
                        FieldType::Integer | FieldType::Number | FieldType::Boolean
                    )
                });
        if typed {
            continue;
        }
        let written = std::iter::once(reference.root.as_str())
            .chain(reference.path.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(".");
        let message = format!(
            "'{{{{ {written} }}}}' puts a value into the shell script as code: a quote, `;` or `$(…)` in it changes what the script runs"
        );
        let env_hint = match (reference.root.as_str(), reference.path.as_slice()) {
            ("input", [name]) => format!(
                "\"$INPUT_{}\" (every input field is an environment variable)",
                name.to_ascii_uppercase()
                    .replace(|ch: char| !ch.is_ascii_alphanumeric(), "_")
            ),
            _ => format!(
                "an environment variable (`env: {{ VALUE: \"{{{{ {written} }}}}\" }}`, then \"$VALUE\")"
            ),
        };
        let help = format!("write {{{{ {written} | shell_quote }}}}, or use {env_hint}");
        let at = c.at(&field);
        c.push(Diagnostic::warning("script-injection", message, &at, &field).with_help(help));
    }
}

fn action_scope<'a>(c: &Checker<'a>, used: UsedAction<'a>, by: Option<&Use<'a>>) -> Scope<'a> {
    let mut scope = Scope::new("action fields");
    scope.job = true;
    scope.step = true;
    scope.each = by.is_none_or(|u| u.looped);
    scope.input = match &used.action.input {
        Some(schema) => InputScope::Schema {
            schema,
            owner: super::schema_owner(used.action, used.name),
            webhook: false,
        },
        None => InputScope::Any,
    };
    if let Some((task, step)) = by.and_then(|u| u.step) {
        let flow = &c.def.tasks[task].flow;
        scope.flow = Some(FlowScope {
            flow,
            step,
            dependencies: transitive_dependencies(flow, step),
        });
    }
    scope
}

/// The templated fields of a script action with their keys (`script`, `args[0]`, `env.TOKEN`).
/// Other action types are not built in this version and are rejected by the decoder.
fn action_fields<'a>(action: &'a Action, path: &str) -> Vec<(&'a str, String)> {
    let ActionKind::Script(script) = &action.kind else {
        return Vec::new();
    };
    let mut fields = Vec::new();
    match (&script.code, script.legacy_shell) {
        (ScriptCode::Inline(text), false) => fields.push((text.as_str(), join(path, "script"))),
        (ScriptCode::Inline(text), true) => fields.push((text.as_str(), join(path, "cmd"))),
        (ScriptCode::Source(text), false) => fields.push((text.as_str(), join(path, "source"))),
        (ScriptCode::Source(text), true) => fields.push((text.as_str(), join(path, "script"))),
    }
    for (i, arg) in script.args.iter().enumerate() {
        fields.push((arg.as_str(), index(&join(path, "args"), i)));
    }
    for (key, value) in &action.env {
        fields.push((value.as_str(), join(&join(path, "env"), key)));
    }
    if let Some(workdir) = &action.workdir {
        fields.push((workdir.as_str(), join(path, "workdir")));
    }
    if let Some(image) = &script.image {
        fields.push((image.as_str(), join(path, "image")));
    }
    fields
}

/// Checks every string leaf of an input tree.
fn check_tree(
    c: &mut Checker<'_>,
    input: &crate::workflow::model::Map<Value>,
    path: &str,
    scopes: &[Scope<'_>],
) {
    for (key, value) in input {
        check_value(c, value, &join(path, key), scopes);
    }
}

fn check_value(c: &mut Checker<'_>, value: &Value, path: &str, scopes: &[Scope<'_>]) {
    match value {
        Value::String(text) => check_text(c, text, path, scopes),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_value(c, item, &index(path, i), scopes);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                check_value(c, item, &join(path, key), scopes);
            }
        }
        _ => {}
    }
}

/// Parses one template and checks what it references in each scope it renders in.
fn check_text(c: &mut Checker<'_>, text: &str, path: &str, scopes: &[Scope<'_>]) {
    if !is_template(text) {
        return;
    }
    let analysis = match c.templates.analyze(text) {
        Ok(analysis) => analysis,
        Err(error) => {
            let at = locate(c, path, &error);
            // minijinja's own messages already start with "syntax error: ".
            let reason = error
                .message
                .strip_prefix("syntax error: ")
                .unwrap_or(&error.message);
            let message = format!("template syntax error: {reason}");
            c.push(Diagnostic::error("template-syntax", message, &at, path));
            return;
        }
    };
    let at = c.at(path);
    for scope in scopes {
        for reference in &analysis.references {
            if let Some((code, message)) = check_reference(c.def, scope, reference, text) {
                let diagnostic = Diagnostic::error(code, message, &at, path);
                c.push(match code {
                    "unknown-variable" | "unknown-step" => diagnostic.with_help(available(scope)),
                    "not-a-dependency" => diagnostic.with_help(
                        "a template may read only steps its step depends on, directly or through other steps",
                    ),
                    _ => diagnostic,
                });
            }
        }
        for function in &analysis.unknown_functions {
            let (code, message) = match function.as_str() {
                "file" if scope.env => continue,
                "file" => (
                    "misplaced-variable",
                    "'file()' is only available in secrets".to_owned(),
                ),
                other => ("unknown-function", format!("unknown function '{other}'")),
            };
            c.push(Diagnostic::error(code, message, &at, path));
        }
    }
    for (parent, last) in &analysis.unguarded_defaults {
        let message = format!(
            "default() guards only the last lookup: when '{parent}' is missing, the template fails before default() runs"
        );
        let help = format!(
            "guard the parent too: ({parent} | default({{}})).{last} | default(…), or test it with `{parent} is defined`"
        );
        c.push(Diagnostic::warning("default-chain", message, &at, path).with_help(help));
    }
    for filter in &analysis.unknown_filters {
        c.push(Diagnostic::error(
            "unknown-filter",
            format!("unknown filter '{filter}'"),
            &at,
            path,
        ));
    }
}

/// Points inside the template when the error knows its line and column: the YAML value may be
/// quoted (text starts one column later) or a block scalar (text starts on the next line).
fn locate(c: &Checker<'_>, path: &str, error: &TemplateError) -> Location {
    let base = c.at(path);
    let Some(line) = error.line else {
        return base;
    };
    let column = error.column.unwrap_or(1);
    let source_line = |n: u32| {
        c.files
            .workflow_files
            .iter()
            .find(|f| f.path == base.file)
            .and_then(|f| f.text.lines().nth(n.saturating_sub(1) as usize))
    };
    let first = source_line(base.line)
        .and_then(|l| l.chars().nth(base.column.saturating_sub(1) as usize))
        .unwrap_or(' ');
    match first {
        '|' | '>' => {
            let target = base.line + line;
            let indent = source_line(target).map_or(0, |l| l.len() - l.trim_start().len());
            Location {
                file: base.file,
                line: target,
                column: indent as u32 + column,
            }
        }
        // Quoted: the text starts after the quote; later lines cannot be mapped exactly
        // (escapes, folding), so they keep the template's own column.
        '"' | '\'' if line > 1 => Location {
            file: base.file,
            line: base.line + line - 1,
            column,
        },
        '"' | '\'' => Location {
            column: base.column + column,
            ..base
        },
        // Plain scalars, and block scalars whose position is that of their first content line:
        // every line of the text starts at the same column.
        _ => Location {
            file: base.file,
            line: base.line + line - 1,
            column: base.column + column - 1,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::model::WorkspaceDef;
    use crate::workflow::source::SourceMap;
    use crate::workflow::{WorkflowFile, WorkspaceFiles};

    const TEXT: &str = "a: \"{{ x }\"\nb: {{ y\nc: |\n  ok\n  {{ z }\n";

    fn at(line: u32, column: u32) -> Location {
        Location {
            file: "f.yaml".to_owned(),
            line,
            column,
        }
    }

    fn located(path: &str, value_at: Location, line: u32, column: u32) -> Location {
        let files = WorkspaceFiles {
            workflow_files: vec![WorkflowFile {
                path: "f.yaml".to_owned(),
                text: TEXT.to_owned(),
            }],
            all_files: Default::default(),
        };
        let mut sources = SourceMap::default();
        sources.record_value(path, value_at);
        let def = WorkspaceDef::default();
        let checker = Checker::new(&def, &sources, &files);
        let error = TemplateError {
            message: "syntax error".to_owned(),
            line: Some(line),
            column: Some(column),
        };
        locate(&checker, path, &error)
    }

    #[test]
    fn errors_point_inside_quoted_plain_and_block_values() {
        // `"{{ x }"`: the `}` is column 6 of the template, one past the quote.
        assert_eq!(located("a", at(1, 4), 1, 6), at(1, 10));
        assert_eq!(located("b", at(2, 4), 1, 6), at(2, 9));
        // A block scalar positioned at its first content line.
        assert_eq!(located("c", at(4, 3), 2, 5), at(5, 7));
        // A block scalar positioned at its `|` indicator.
        assert_eq!(located("c", at(3, 4), 2, 5), at(5, 7));
    }
}
