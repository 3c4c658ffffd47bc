//! What a finished job hands to its hooks (WF §14): which event fired, which hook entries run,
//! and the `hook` template variable — all pure functions of the job's final state, so every
//! executor fires hooks identically. Creating the hook jobs stays with the executor.

use serde_json::{Value, json};

use super::plan::{JobPlan, PlanError};
use super::render::{EvalContext, job_variable};
use super::state::{JobState, JobStatus, StepStatus};
use crate::workflow::input::{self, EnforceOptions};
use crate::workflow::model::{
    ActionKind, ActionRef, Hook, HookEvent, Hooks, Step, Task, TaskMode, WorkspaceDef,
};

/// The hook event of a finished job: `completed` → success, `failed` → error (job timeouts
/// included), `cancelled` → cancel. `None` while the job is unfinished.
pub fn hook_event(job: &JobState) -> Option<HookEvent> {
    if !job.is_finished() {
        return None;
    }
    match job.status {
        JobStatus::Completed => Some(HookEvent::Success),
        JobStatus::Failed => Some(HookEvent::Error),
        JobStatus::Cancelled => Some(HookEvent::Cancel),
        JobStatus::Pending | JobStatus::Running | JobStatus::Skipped => None,
    }
}

/// The hook entries that fire (WF §14.1): the task's own for this event when it defines any;
/// otherwise the workspace-level ones, but only for top-level jobs. Hook jobs never fire hooks.
pub fn hooks_to_fire<'d>(def: &'d WorkspaceDef, job: &JobState, event: HookEvent) -> &'d [Hook] {
    // A failed job whose task-level retry goes on is not the chain's last (WF §13.1).
    if job.source_type == "hook" || job.chain_continues() {
        return &[];
    }
    let own = def
        .tasks
        .get(&job.task)
        .map(|task| task.hooks.for_event(event))
        .unwrap_or_default();
    if !own.is_empty() {
        return own;
    }
    if job.parent_job_id.is_none() {
        def.hooks.for_event(event)
    } else {
        &[]
    }
}

/// The `hook` variable (WF §14.2) of a finished job.
pub fn hook_variable(job: &JobState, plan: &JobPlan, event: HookEvent) -> Value {
    let failed: Vec<_> = job
        .steps
        .iter()
        .filter(|state| state.status == StepStatus::Failed)
        .collect();
    let error_message = if failed.is_empty() {
        Value::Null
    } else {
        let lines: Vec<String> = failed
            .iter()
            .map(|state| {
                let message = state.error_message.as_deref().unwrap_or_default();
                format!("{}: {message}", state.step_name)
            })
            .collect();
        Value::String(lines.join("\n"))
    };
    let failed_steps: Vec<Value> = failed
        .iter()
        .map(|state| {
            let tolerated = plan
                .step(state.flow_name())
                .is_some_and(|planned| planned.step.continue_on_failure);
            json!({
                "step_name": state.step_name,
                "action_name": state.action_name,
                "error_message": state.error_message,
                "continue_on_failure": tolerated,
            })
        })
        .collect();
    let duration_secs = match (job.started_at, job.completed_at) {
        (Some(started), Some(completed)) => {
            json!((completed - started).num_milliseconds() as f64 / 1_000.0)
        }
        _ => Value::Null,
    };
    json!({
        "event": event.name(),
        "workspace": job.workspace,
        "task_name": job.task,
        "job_id": job.id,
        "status": job.status.as_str(),
        "is_success": job.status == JobStatus::Completed,
        "error_message": error_message,
        "source_type": job.source_type,
        "source_id": job.source_id,
        "started_at": job.started_at,
        "completed_at": job.completed_at,
        "duration_secs": duration_secs,
        "input": job.input,
        "output": job.output,
        "failed_steps": failed_steps,
    })
}

/// What a hook entry runs (WF §14.1): a full job of a task for `type: task` actions, otherwise a
/// single-step job named `_hook:<action>` whose one step receives the hook's input unchanged.
#[derive(Debug, Clone)]
pub enum HookTarget {
    Task(String),
    SingleStep(Box<JobPlan>),
}

/// The name of a single-step hook job and its step: `_hook:<action>` and `<action>` (inline
/// actions are called `hook`).
pub fn hook_names(hook: &Hook) -> (String, String) {
    let action = match &hook.action {
        ActionRef::Named(name) => name.clone(),
        ActionRef::Inline { .. } => "hook".to_owned(),
    };
    (format!("_hook:{action}"), action)
}

/// Resolves a hook entry. `input_keys` are the keys of the hook's rendered input: the single
/// step forwards each as `{{ input['key'] }}`, which keeps its JSON type and never renders the
/// value again (WF §12.1).
pub fn hook_target(
    def: &WorkspaceDef,
    hook: &Hook,
    input_keys: &[String],
) -> Result<HookTarget, PlanError> {
    let action = match &hook.action {
        ActionRef::Named(name) => {
            def.actions
                .get(name)
                .ok_or_else(|| PlanError::UnknownAction {
                    step: "hook".to_owned(),
                    action: name.clone(),
                })?
        }
        ActionRef::Inline { action, .. } => action,
    };
    if let ActionKind::Task(task) = &action.kind {
        return Ok(HookTarget::Task(task.task.clone()));
    }
    let (task_name, step_name) = hook_names(hook);
    let input = input_keys
        .iter()
        .map(|key| (key.clone(), json!(format!("{{{{ input[{key:?}] }}}}"))))
        .collect();
    let step = Step {
        action: hook.action.clone(),
        name: None,
        description: None,
        depends_on: Vec::new(),
        input,
        continue_on_failure: false,
        when: None,
        for_each: None,
        sequential: false,
        timeout: hook.timeout,
        retry: hook.retry.clone(),
    };
    let task = Task {
        name: None,
        description: None,
        folder: None,
        mode: TaskMode::Distributed,
        input: None,
        flow: [(step_name, step)].into_iter().collect(),
        timeout: None,
        retry: None,
        concurrency: None,
        priority: None,
        hooks: Hooks::default(),
        file: String::new(),
    };
    let mut scoped = WorkspaceDef {
        actions: def.actions.clone(),
        ..WorkspaceDef::default()
    };
    scoped.tasks.insert(task_name.clone(), task);
    Ok(HookTarget::SingleStep(Box::new(JobPlan::new(
        &scoped, &task_name,
    )?)))
}

/// A hook entry ready to become a job: what it runs and its rendered input.
#[derive(Debug, Clone)]
pub struct PreparedHook {
    /// `on_error[0]`: the event key and the entry's place, for log lines.
    pub label: String,
    /// The event key (`on_error`), the suffix of the hook job's `source_id`.
    pub event_key: &'static str,
    pub target: HookTarget,
    pub input: Value,
}

/// A hook entry that cannot become a job (WF §14.1: it is not created, and the reason goes to a
/// `_server` line of the original job).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedHook {
    pub label: String,
    pub reason: String,
}

/// Renders and checks every hook entry that fires for the finished `job` (WF §14): input
/// rendered with `hook`, `secret` and `job`; single-step hooks' input validated against their
/// action's schema up front, so a bad hook is refused rather than failing later. Task-action
/// hooks are validated against the task's schema when the job is created.
pub fn prepare_hooks(
    def: &WorkspaceDef,
    job: &JobState,
    plan: &JobPlan,
    ctx: &EvalContext<'_>,
) -> Vec<Result<PreparedHook, RefusedHook>> {
    let Some(event) = hook_event(job) else {
        return Vec::new();
    };
    prepare_for(def, job, event, hook_variable(job, plan, event), ctx)
}

/// [`prepare_hooks`] for `on_suspended` (WF §14): the hooks that fire because `step` became
/// `suspended` with the rendered `message`; the `hook` variable adds `step_name` and `message`.
pub fn prepare_suspended_hooks(
    def: &WorkspaceDef,
    job: &JobState,
    plan: &JobPlan,
    ctx: &EvalContext<'_>,
    step: &str,
    message: &str,
) -> Vec<Result<PreparedHook, RefusedHook>> {
    let mut variable = hook_variable(job, plan, HookEvent::Suspended);
    if let Value::Object(map) = &mut variable {
        map.insert("step_name".to_owned(), json!(step));
        map.insert("message".to_owned(), json!(message));
    }
    prepare_for(def, job, HookEvent::Suspended, variable, ctx)
}

fn prepare_for(
    def: &WorkspaceDef,
    job: &JobState,
    event: HookEvent,
    variable: Value,
    ctx: &EvalContext<'_>,
) -> Vec<Result<PreparedHook, RefusedHook>> {
    let hooks = hooks_to_fire(def, job, event);
    if hooks.is_empty() {
        return Vec::new();
    }
    let scope = json!({
        "hook": variable,
        "secret": ctx.secrets,
        "job": job_variable(job),
    });
    hooks
        .iter()
        .enumerate()
        .map(|(index, hook)| {
            let label = format!("{}[{index}]", event.key());
            prepare_hook(def, hook, &scope, ctx)
                .map_err(|reason| RefusedHook {
                    label: label.clone(),
                    reason,
                })
                .map(|(target, input)| PreparedHook {
                    label,
                    event_key: event.key(),
                    target,
                    input,
                })
        })
        .collect()
}

fn prepare_hook(
    def: &WorkspaceDef,
    hook: &Hook,
    scope: &Value,
    ctx: &EvalContext<'_>,
) -> Result<(HookTarget, Value), String> {
    let template: serde_json::Map<String, Value> = hook.input.clone().into_iter().collect();
    let input = ctx
        .templates
        .render_tree(&Value::Object(template), scope)
        .map_err(|error| format!("input: {error}"))?;
    let keys: Vec<String> = input
        .as_object()
        .map(|object| object.keys().cloned().collect())
        .unwrap_or_default();
    let target = hook_target(def, hook, &keys).map_err(|error| error.to_string())?;
    if matches!(target, HookTarget::SingleStep(_)) {
        let action = match &hook.action {
            ActionRef::Named(name) => def.actions.get(name),
            ActionRef::Inline { action, .. } => Some(&**action),
        };
        if let Some(action) = action {
            let default_scope = json!({"secret": ctx.secrets});
            let render_default = |template: &str| {
                ctx.templates
                    .render(template, &default_scope)
                    .map_err(|error| error.to_string())
            };
            input::enforce(
                action.input.as_ref(),
                &input,
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
        }
    }
    Ok((target, input))
}
