//! What a template may reference where it is rendered (WF §12.2): the render-site contexts
//! table turned into a [`Scope`], and the check of one reference against it (rule 30).

use std::collections::HashSet;

use super::template_name;
use crate::workflow::diagnostic::suggest;
use crate::workflow::model::{InputSchema, Map, SecretValue, Step, WorkspaceDef};
use crate::workflow::template::Reference;

use super::inputs::WEBHOOK_KEYS;

const JOB_FIELDS: [&str; 7] = [
    "id",
    "task",
    "workspace",
    "created_at",
    "source_type",
    "source_id",
    "revision",
];
const STEP_FIELDS: [&str; 2] = ["name", "attempt"];
const EACH_FIELDS: [&str; 3] = ["item", "index", "total"];
const RESULT_FIELDS: [&str; 3] = ["status", "output", "error"];
const TRIGGER_FIELDS: [&str; 3] = ["name", "type", "scheduled_at"];
const HOOK_FIELDS: [&str; 17] = [
    "event",
    "workspace",
    "task_name",
    "job_id",
    "status",
    "is_success",
    "error_message",
    "source_type",
    "source_id",
    "started_at",
    "completed_at",
    "duration_secs",
    "input",
    "output",
    "failed_steps",
    "step_name",
    "message",
];

/// The `input` variable at a render site.
pub(crate) enum InputScope<'a> {
    /// Not in the context here (input defaults, hooks, triggers, secrets).
    Unavailable,
    /// Any key: no schema declared.
    Any,
    /// Only keys the schema declares (`owner` names it: `task 'deploy'`).
    Schema {
        schema: &'a InputSchema,
        owner: String,
        webhook: bool,
    },
}

/// The flow a template of a step sees: the steps it may read are its transitive dependencies.
pub(crate) struct FlowScope<'a> {
    pub flow: &'a Map<Step>,
    pub step: &'a str,
    pub dependencies: HashSet<&'a str>,
}

/// The variables of one render site.
pub(crate) struct Scope<'a> {
    /// Where the template is, for messages: `step input`, `when`, `hook input`, …
    pub site: &'static str,
    pub input: InputScope<'a>,
    pub secret: bool,
    pub job: bool,
    pub step: bool,
    pub each: bool,
    pub hook: bool,
    pub trigger: bool,
    /// `env` and `file()`: secrets only.
    pub env: bool,
    pub flow: Option<FlowScope<'a>>,
    /// Set on the `when` of a loop step, whose `each` gets a specific explanation.
    pub loop_condition: bool,
}

impl<'a> Scope<'a> {
    pub fn new(site: &'static str) -> Self {
        Scope {
            site,
            input: InputScope::Unavailable,
            secret: true,
            job: false,
            step: false,
            each: false,
            hook: false,
            trigger: false,
            env: false,
            flow: None,
            loop_condition: false,
        }
    }
}

/// A problem with one reference: a diagnostic code and its message.
pub(crate) type Problem = (&'static str, String);

/// Checks one reference found in `text` against the variables of its site.
pub(crate) fn check_reference(
    def: &WorkspaceDef,
    scope: &Scope<'_>,
    r: &Reference,
    text: &str,
) -> Option<Problem> {
    let first = r.path.first().map(String::as_str);
    let allowed = match r.root.as_str() {
        "input" => !matches!(scope.input, InputScope::Unavailable),
        "secret" => scope.secret,
        "job" => scope.job,
        "step" => scope.step,
        "each" => scope.each,
        "hook" => scope.hook,
        "trigger" => scope.trigger,
        "env" | "file" => scope.env,
        _ => return check_other_root(scope, &r.root, first, text),
    };
    if !allowed {
        return Some(("misplaced-variable", misplaced(scope, &r.root)));
    }
    let first = first?;
    match r.root.as_str() {
        "input" => check_input(&scope.input, first),
        "secret" => check_secret(def, &r.path),
        "job" => check_field("'job'", first, &JOB_FIELDS),
        "step" => check_field("'step'", first, &STEP_FIELDS),
        "each" => check_field("'each'", first, &EACH_FIELDS),
        "hook" => check_field("'hook'", first, &HOOK_FIELDS),
        "trigger" => check_field("'trigger'", first, &TRIGGER_FIELDS),
        _ => None,
    }
}

fn misplaced(scope: &Scope<'_>, root: &str) -> String {
    match root {
        "each" if scope.loop_condition => {
            "'each' is not available in the when of a for_each step: it is evaluated once for the whole loop".to_owned()
        }
        "each" => "'each' is only available in the instances of a for_each step".to_owned(),
        "hook" => "'hook' is only available in hook input".to_owned(),
        "trigger" => "'trigger' is only available in trigger input".to_owned(),
        "env" => "'env' is only available in secrets".to_owned(),
        "file" => "'file()' is only available in secrets".to_owned(),
        "input" if scope.hook => "'input' is not available in hook input — did you mean 'hook.input'?".to_owned(),
        other => format!("'{other}' is not available in {}", scope.site),
    }
}

/// A root that is not a context variable: a step result, or a mistake.
fn check_other_root(
    scope: &Scope<'_>,
    root: &str,
    first: Option<&str>,
    text: &str,
) -> Option<Problem> {
    // `say-hello.output` parses as `say - hello.output`: name the step, not its pieces.
    if let Some(flow) = &scope.flow
        && let Some(step) = flow.flow.keys().find(|name| {
            name.contains('-')
                && name.split('-').any(|part| part == root)
                && text.contains(name.as_str())
        })
    {
        let message = format!(
            "step '{step}' is written '{}' in templates ('-' would subtract)",
            template_name(step)
        );
        return Some(("unknown-step", message));
    }
    if let Some(flow) = &scope.flow
        && let Some(step) = flow.flow.keys().find(|name| template_name(name) == root)
    {
        if step == flow.step {
            let message = format!("step '{step}' cannot reference its own result");
            return Some(("not-a-dependency", message));
        }
        if !flow.dependencies.contains(step.as_str()) {
            let message = format!(
                "step '{}' references step '{step}', which is not among its dependencies; add it to depends_on",
                flow.step
            );
            return Some(("not-a-dependency", message));
        }
        return check_field(&format!("step '{step}'"), first?, &RESULT_FIELDS);
    }
    let roots = known_roots(scope);
    let steps: Vec<String> = scope
        .flow
        .iter()
        .flat_map(|f| {
            f.flow
                .keys()
                .filter(|s| s.as_str() != f.step)
                .map(|s| template_name(s))
        })
        .collect();
    let candidates = roots
        .iter()
        .copied()
        .chain(steps.iter().map(String::as_str));
    let close = suggest(root, candidates);
    let looks_like_step = first.is_some_and(|f| RESULT_FIELDS.contains(&f))
        || close.is_some_and(|c| steps.iter().any(|s| s == c));
    if scope.hook && close.is_none() {
        let message =
            format!("unknown variable '{root}'; in hooks the job's output is 'hook.output'");
        return Some(("unknown-variable", message));
    }
    let (code, what) = if looks_like_step {
        ("unknown-step", "step")
    } else {
        ("unknown-variable", "variable")
    };
    let message = match close {
        Some(close) => format!("unknown {what} '{root}' — did you mean '{close}'?"),
        None => format!("unknown {what} '{root}'"),
    };
    Some((code, message))
}

/// What a template at this site can read, for the help line of an unknown reference.
pub(crate) fn available(scope: &Scope<'_>) -> String {
    let mut names: Vec<String> = known_roots(scope).iter().map(|r| (*r).to_owned()).collect();
    if let Some(flow) = &scope.flow {
        let mut steps: Vec<String> = flow.dependencies.iter().map(|s| template_name(s)).collect();
        steps.sort();
        names.extend(steps);
    }
    if scope.env {
        names.push("file()".to_owned());
    }
    format!("{} can read {}", scope.site, names.join(", "))
}

/// The context variables a site offers, for suggestions.
fn known_roots(scope: &Scope<'_>) -> Vec<&'static str> {
    let flags = [
        ("input", !matches!(scope.input, InputScope::Unavailable)),
        ("secret", scope.secret),
        ("job", scope.job),
        ("step", scope.step),
        ("each", scope.each),
        ("hook", scope.hook),
        ("trigger", scope.trigger),
        ("env", scope.env),
    ];
    flags
        .iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| *name)
        .collect()
}

fn check_input(input: &InputScope<'_>, key: &str) -> Option<Problem> {
    let InputScope::Schema {
        schema,
        owner,
        webhook,
    } = input
    else {
        return None;
    };
    if schema.contains_key(key) || (*webhook && WEBHOOK_KEYS.contains(&key)) {
        return None;
    }
    let message = match suggest(key, schema.keys().map(String::as_str)) {
        Some(close) => format!("{owner} declares no input '{key}' — did you mean '{close}'?"),
        None => format!("{owner} declares no input '{key}'"),
    };
    Some(("unknown-input", message))
}

/// `secret.NAME` (and `secret.group.NAME` for nested maps) must be defined (WF §16.1).
fn check_secret(def: &WorkspaceDef, path: &[String]) -> Option<Problem> {
    let mut level = &def.secrets;
    let mut written = String::from("secret");
    for key in path {
        let Some(value) = level.get(key) else {
            let message = match suggest(key, level.keys().map(String::as_str)) {
                Some(close) => {
                    format!("unknown secret '{written}.{key}' — did you mean '{close}'?")
                }
                None => format!("unknown secret '{written}.{key}'"),
            };
            return Some(("unknown-secret", message));
        };
        written = format!("{written}.{key}");
        match value {
            SecretValue::Map(inner) => level = inner,
            SecretValue::Template(_) => return None,
        }
    }
    None
}

fn check_field(owner: &str, field: &str, known: &[&str]) -> Option<Problem> {
    if known.contains(&field) {
        return None;
    }
    let message = match suggest(field, known.iter().copied()) {
        Some(close) => format!("unknown field '{field}' of {owner} — did you mean '{close}'?"),
        None => format!(
            "unknown field '{field}' of {owner}; known fields: {}",
            known.join(", ")
        ),
    };
    Some(("unknown-field", message))
}
