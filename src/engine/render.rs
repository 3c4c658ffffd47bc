//! Template contexts (WF §12.2) and the rendering of one attempt of a worker step into the
//! [`StepSpec`] a runner executes.
//!
//! One function, [`context`], builds every context the engine renders with, so `when`,
//! `for_each`, step input and action fields can never disagree about what a variable means.

use std::collections::HashSet;

use serde_json::{Map as JsonMap, Value, json};

use super::masking::{secret_field_names, secret_field_values, show_input};
use super::plan::{JobPlan, PlannedStep};
use super::state::{JobState, StepState, StepStatus};
use crate::mask::Masker;
use crate::runner::spec::{Limits, Program, RunnerKind, ScriptBody, StepSpec};
use crate::workflow::input::{EnforceOptions, FieldError, enforce};
use crate::workflow::model::{ActionKind, ApprovalAction, InputSchema, Runner, ScriptCode};
use crate::workflow::template::{Templates, is_template};

/// What rendering needs besides the job: the template environment, the workspace's resolved
/// secrets (a JSON object, the `secret` variable) and the job's full mask set
/// ([`super::job_masker`]).
#[derive(Debug, Clone, Copy)]
pub struct EvalContext<'a> {
    pub templates: &'a Templates,
    pub secrets: &'a Value,
    pub mask: &'a Masker,
}

/// Builds a §12.2 context: `input` (as given), `secret`, `job` and every flow step by its
/// template name; with `step`, also `step` and, for loop instances, `each`. Callers pass the
/// input through [`with_declared_nulls`] so absent declared fields read as `null` (WF §12.1).
pub fn context(
    job: &JobState,
    ctx: &EvalContext<'_>,
    input: &Value,
    step: Option<&StepState>,
) -> Value {
    build_context(job, ctx, input, step, None)
}

/// [`context`] for rendering `templates` only: it holds just the steps they name, so rendering
/// one step of a large job does not copy every step's output (issue #3: O(steps) per claim).
/// Renders the same as the full context — a template can only read the roots it names, and a
/// name that is no step is left out of both, so its error is the same.
pub(crate) fn context_for<'t>(
    job: &JobState,
    ctx: &EvalContext<'_>,
    input: &Value,
    step: Option<&StepState>,
    templates: impl IntoIterator<Item = &'t str>,
) -> Value {
    let roots = referenced_roots(ctx.templates, templates);
    build_context(job, ctx, input, step, roots.as_ref())
}

/// The root variables `templates` read, or `None` (meaning all) when one cannot be analysed:
/// it then fails to render with the full context too, and with the same error.
fn referenced_roots<'t>(
    templates: &Templates,
    texts: impl IntoIterator<Item = &'t str>,
) -> Option<HashSet<String>> {
    let mut roots = HashSet::new();
    for text in texts.into_iter().filter(|text| is_template(text)) {
        let analysis = templates.analyze(text).ok()?;
        roots.extend(
            analysis
                .references
                .into_iter()
                .map(|reference| reference.root),
        );
    }
    Some(roots)
}

/// Every template string at any depth of a step's `input:` tree.
fn tree_strings<'v>(value: &'v Value, out: &mut Vec<&'v str>) {
    match value {
        Value::String(text) => out.push(text),
        Value::Array(items) => items.iter().for_each(|item| tree_strings(item, out)),
        Value::Object(map) => map.values().for_each(|item| tree_strings(item, out)),
        _ => {}
    }
}

fn build_context(
    job: &JobState,
    ctx: &EvalContext<'_>,
    input: &Value,
    step: Option<&StepState>,
    roots: Option<&HashSet<String>>,
) -> Value {
    let mut root = JsonMap::new();
    root.insert("input".to_owned(), input.clone());
    root.insert("secret".to_owned(), ctx.secrets.clone());
    root.insert("job".to_owned(), job_variable(job));
    for state in job.steps.iter().filter(|state| !state.is_instance()) {
        let name = state.step_name.replace('-', "_");
        // A step named like a global function (`range`) shadows it even where the template
        // calls it, which the analysis does not list as a variable: always keep such steps.
        if roots.is_some_and(|roots| !roots.contains(&name) && !ctx.templates.is_global(&name)) {
            continue;
        }
        let output = match state.status {
            StepStatus::Completed => state.output.clone(),
            _ => Value::Null,
        };
        let error = match state.status {
            StepStatus::Failed => json!(state.error_message),
            _ => Value::Null,
        };
        root.insert(
            name,
            json!({"status": state.status.as_str(), "output": output, "error": error}),
        );
    }
    if let Some(state) = step {
        root.insert(
            "step".to_owned(),
            json!({"name": state.flow_name(), "attempt": state.attempt}),
        );
        if let (Some(index), Some(total)) = (state.loop_index, state.loop_total) {
            let item = job
                .step(state.flow_name())
                .and_then(|loop_state| loop_state.for_each.as_ref())
                .and_then(|items| items.get(index as usize))
                .cloned()
                .unwrap_or(Value::Null);
            root.insert(
                "each".to_owned(),
                json!({"item": item, "index": index, "total": total}),
            );
        }
    }
    Value::Object(root)
}

/// `input` with every field `schema` declares but the value lacks set to `null`: stored inputs
/// omit such fields, yet templates must read them as `null`, not undefined (WF §12.1).
pub fn with_declared_nulls(input: &Value, schema: Option<&InputSchema>) -> Value {
    let (Value::Object(map), Some(schema)) = (input, schema) else {
        return input.clone();
    };
    let mut filled = map.clone();
    for name in schema.keys() {
        filled.entry(name.clone()).or_insert(Value::Null);
    }
    Value::Object(filled)
}

/// The job input as templates see it.
pub(crate) fn job_input(job: &JobState, plan: &JobPlan) -> Value {
    with_declared_nulls(&job.input, plan.task_input.as_ref())
}

/// The `job` variable.
/// The `job` template variable (WF §12.2).
pub fn job_variable(job: &JobState) -> Value {
    json!({
        "id": job.id,
        "task": job.task,
        "workspace": job.workspace,
        "created_at": job.created_at,
        "source_type": job.source_type,
        "source_id": job.source_id,
        "revision": job.revision,
    })
}

/// Renders a step's `input:` values with the job input as `input` (each attempt, WF §12.2).
pub fn render_step_input(
    job: &JobState,
    plan: &JobPlan,
    state: &StepState,
    ctx: &EvalContext<'_>,
) -> Result<Value, String> {
    let planned = planned_step(plan, state)?;
    let written = Value::Object(planned.step.input.clone().into_iter().collect());
    let mut templates = Vec::new();
    tree_strings(&written, &mut templates);
    let scope = context_for(job, ctx, &job_input(job, plan), Some(state), templates);
    ctx.templates
        .render_tree(&written, &scope)
        .map_err(|error| format!("input: {error}"))
}

/// An approval step's rendered input (the form's pre-filled values) and `message`, which sees
/// that input as `input` (WF §6.8, §12.2).
pub(crate) fn render_approval(
    job: &JobState,
    plan: &JobPlan,
    state: &StepState,
    approval: &ApprovalAction,
    ctx: &EvalContext<'_>,
) -> Result<(Value, String), String> {
    let planned = planned_step(plan, state)?;
    let input = render_step_input(job, plan, state, ctx)?;
    let seen = with_declared_nulls(&input, planned.action.input.as_ref());
    let scope = context_for(job, ctx, &seen, Some(state), [approval.message.as_str()]);
    let message = ctx
        .templates
        .render_string(&approval.message, &scope)
        .map_err(|error| format!("message: {error}"))?;
    Ok((input, message))
}

/// The output input of an approval (WF §6.8): the approver's `values` merged over the step's
/// rendered input, validated against the action's `input` schema (`required` included). Every
/// problem comes back at once, with fields named `input.<name>`.
pub fn approval_input(
    job: &JobState,
    plan: &JobPlan,
    step_name: &str,
    values: &Value,
    ctx: &EvalContext<'_>,
) -> Result<Value, Vec<FieldError>> {
    let general = |message: String| {
        vec![FieldError {
            field: "input".to_owned(),
            message,
        }]
    };
    let state = job
        .step(step_name)
        .ok_or_else(|| general(format!("unknown step '{step_name}'")))?;
    let planned = planned_step(plan, state).map_err(general)?;
    let given = match values {
        Value::Null => JsonMap::new(),
        Value::Object(map) => map.clone(),
        _ => return Err(general("expected an object".to_owned())),
    };
    let mut merged = match render_step_input(job, plan, state, ctx).map_err(general)? {
        Value::Object(map) => map,
        _ => JsonMap::new(),
    };
    merged.extend(given);
    let default_scope = json!({"secret": ctx.secrets, "job": job_variable(job)});
    let render_default = |template: &str| {
        ctx.templates
            .render(template, &default_scope)
            .map_err(|error| error.to_string())
    };
    let validated = enforce(
        planned.action.input.as_ref(),
        &Value::Object(merged),
        EnforceOptions::default(),
        &render_default,
    )?;
    Ok(Value::Object(validated.into_iter().collect()))
}

/// Renders and validates one attempt of a claimed worker step (its `attempt` already counts
/// this attempt). An error fails the step without retry.
pub fn prepare_attempt(
    job: &JobState,
    plan: &JobPlan,
    step_name: &str,
    ctx: &EvalContext<'_>,
) -> Result<StepSpec, String> {
    let state = job
        .step(step_name)
        .ok_or_else(|| format!("unknown step '{step_name}'"))?;
    let planned = planned_step(plan, state)?;
    if !planned.action.runs_on_worker() {
        return Err(format!(
            "{} actions do not run on a worker",
            planned.action.type_name()
        ));
    }
    let rendered = render_step_input(job, plan, state, ctx)?;
    let default_scope = json!({"secret": ctx.secrets, "job": job_variable(job)});
    let render_default = |template: &str| {
        ctx.templates
            .render(template, &default_scope)
            .map_err(|error| error.to_string())
    };
    let validated = enforce(
        planned.action.input.as_ref(),
        &rendered,
        EnforceOptions::default(),
        &render_default,
    )
    .map_err(|errors| {
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    let input: JsonMap<String, Value> = validated.into_iter().collect();
    let input_value =
        with_declared_nulls(&Value::Object(input.clone()), planned.action.input.as_ref());

    // Action fields see the step's validated input as `input`.
    let fields = ActionFields::of(&planned.action.kind);
    let templates = fields
        .templates()
        .chain(planned.action.env.values().map(String::as_str))
        .chain(planned.action.workdir.as_deref());
    let scope = context_for(job, ctx, &input_value, Some(state), templates);
    let text = |field: &str, template: &str| {
        ctx.templates
            .render_string(template, &scope)
            .map_err(|error| format!("{field}: {error}"))
    };
    let list = |field: &str, templates: &[String]| {
        templates
            .iter()
            .enumerate()
            .map(|(index, item)| text(&format!("{field}[{index}]"), item))
            .collect::<Result<Vec<_>, String>>()
    };
    let (program, runner, image, manifest) = match &planned.action.kind {
        ActionKind::Script(script) => {
            let code = match &script.code {
                ScriptCode::Inline(code) => ScriptBody::Inline(text("script", code)?),
                ScriptCode::Source(path) => {
                    let path = text("source", path)?;
                    check_relative(&path, "source")?;
                    ScriptBody::Source(path)
                }
            };
            let program = Program::Script {
                code,
                interpreter: script.interpreter.clone(),
                default_interpreter: script
                    .language
                    .default_interpreter()
                    .iter()
                    .map(|part| (*part).to_owned())
                    .collect(),
                args: list("args", &script.args)?,
            };
            let runner = match script.runner {
                Runner::Local => RunnerKind::Local,
                Runner::Docker => RunnerKind::Docker,
                Runner::Pod => RunnerKind::Pod,
            };
            let image = script
                .image
                .as_deref()
                .map(|image| text("image", image))
                .transpose()?;
            (program, runner, image, script.manifest.clone())
        }
        ActionKind::Docker(container) | ActionKind::Pod(container) => {
            let program = Program::Container {
                entrypoint: container
                    .entrypoint
                    .as_deref()
                    .map(|items| list("entrypoint", items))
                    .transpose()?,
                command: container
                    .command
                    .as_deref()
                    .map(|items| list("command", items))
                    .transpose()?,
                cmd: container
                    .cmd
                    .as_deref()
                    .map(|cmd| text("cmd", cmd))
                    .transpose()?,
            };
            let runner = if matches!(planned.action.kind, ActionKind::Pod(_)) {
                RunnerKind::Pod
            } else {
                RunnerKind::Docker
            };
            let image = text("image", &container.image)?;
            if image.trim().is_empty() {
                return Err("image: the rendered image name is empty".to_owned());
            }
            (program, runner, Some(image), container.manifest.clone())
        }
        ActionKind::Task(_) | ActionKind::Approval(_) => {
            return Err(format!(
                "{} actions do not run on a worker",
                planned.action.type_name()
            ));
        }
    };
    let env = planned
        .action
        .env
        .iter()
        .map(|(key, value)| Ok((key.clone(), text(&format!("env.{key}"), value)?)))
        .collect::<Result<Vec<_>, String>>()?;
    let container_program = matches!(program, Program::Container { .. });
    let workdir = match &planned.action.workdir {
        Some(template) => {
            let dir = text("workdir", template)?;
            if container_program {
                // A path inside the image (WF §6.3).
                if !dir.starts_with('/') {
                    return Err(format!(
                        "workdir: '{dir}' must be an absolute path in the container"
                    ));
                }
            } else {
                check_relative(&dir, "workdir")?;
            }
            Some(dir)
        }
        None => None,
    };
    let resources = planned.action.resources.as_ref().map(|limits| Limits {
        cpu: limits.cpu.clone(),
        memory: limits.memory.clone(),
    });

    let mut spec = StepSpec {
        job_id: job.id,
        workspace: job.workspace.clone(),
        task: job.task.clone(),
        step: state.step_name.clone(),
        attempt: state.attempt,
        action_name: planned.action_name.clone(),
        program,
        env,
        input,
        workdir,
        timeout_secs: planned.timeout.map(|timeout| timeout.secs()),
        mask: Vec::new(),
        output_schema: planned.action.output.clone(),
        runner,
        image,
        resources,
        manifest,
    };
    spec.mask = step_mask(ctx.mask, planned.action.input.as_ref(), &spec);
    Ok(spec)
}

/// The template fields of a worker action besides `env` and `workdir`.
struct ActionFields<'a>(Vec<&'a str>);

impl<'a> ActionFields<'a> {
    fn of(kind: &'a ActionKind) -> Self {
        let mut fields = Vec::new();
        match kind {
            ActionKind::Script(script) => {
                fields.push(match &script.code {
                    ScriptCode::Inline(code) => code.as_str(),
                    ScriptCode::Source(path) => path.as_str(),
                });
                fields.extend(script.args.iter().map(String::as_str));
                fields.extend(script.image.as_deref());
            }
            ActionKind::Docker(container) | ActionKind::Pod(container) => {
                fields.push(container.image.as_str());
                for list in [&container.entrypoint, &container.command] {
                    fields.extend(list.iter().flatten().map(String::as_str));
                }
                fields.extend(container.cmd.as_deref());
            }
            ActionKind::Task(_) | ActionKind::Approval(_) => {}
        }
        ActionFields(fields)
    }

    fn templates(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.0.iter().copied()
    }
}

/// The mask values that occur in this attempt's rendered spec (API §7.3): pieces of the job's
/// full set plus the step's own `secret: true` input values, so no other secret travels to the
/// worker.
fn step_mask(
    job_mask: &Masker,
    action_input: Option<&InputSchema>,
    spec: &StepSpec,
) -> Vec<String> {
    let own = secret_field_values(action_input, &Value::Object(spec.input.clone()));
    let combined;
    let mask = if own.is_empty() {
        job_mask
    } else {
        combined = job_mask.union(&Masker::new(&own));
        &combined
    };
    let rendered = serde_json::to_value((
        &spec.program,
        &spec.env,
        &spec.input,
        &spec.workdir,
        &spec.image,
    ))
    .unwrap_or(Value::Null);
    let mut found = std::collections::BTreeSet::new();
    mask.collect_found_in_value(&rendered, &mut found);
    found.into_iter().collect()
}

/// Records the rendered input of an attempt for display (WF §16.2): the action's secret fields
/// read `••••••` and every value of the attempt's mask set is masked.
pub fn record_attempt_input(job: &mut JobState, plan: &JobPlan, spec: &StepSpec) {
    let Some(state) = job.step(&spec.step) else {
        return;
    };
    let fields = planned_step(plan, state)
        .map(|planned| secret_field_names(planned.action.input.as_ref()))
        .unwrap_or_default();
    let shown = show_input(
        &Value::Object(spec.input.clone()),
        &fields,
        &Masker::new(&spec.mask),
    );
    job.record_step_input(&spec.step, shown);
}

/// The server's textual check of a rendered `source` or `workdir` (WF §6.6); the worker checks
/// the resolved path again.
fn check_relative(path: &str, field: &str) -> Result<(), String> {
    let escapes = path.trim().is_empty()
        || path.starts_with('/')
        || path.split(['/', '\\']).any(|segment| segment == "..");
    if escapes {
        Err(format!("{field} escapes the workspace"))
    } else {
        Ok(())
    }
}

pub(crate) fn planned_step<'p>(
    plan: &'p JobPlan,
    state: &StepState,
) -> Result<&'p PlannedStep, String> {
    plan.step(state.flow_name())
        .ok_or_else(|| format!("step '{}' is not in the task's flow", state.flow_name()))
}
