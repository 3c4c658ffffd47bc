//! What a finished job hands to its hooks (WF §14): which event fired, which hook entries run,
//! and the `hook` template variable — all pure functions of the job's final state, so every
//! executor fires hooks identically. Creating the hook jobs stays with the executor.

use serde_json::{Value, json};

use super::plan::JobPlan;
use super::state::{JobState, JobStatus, StepStatus};
use crate::workflow::model::{Hook, HookEvent, WorkspaceDef};

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
    if job.source_type == "hook" {
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
