//! Jobs and steps on the wire (API §2.4, §2.5), converted from the engine's [`JobState`].
//!
//! The engine's state already has the API's fields; the conversion renames them (`id` →
//! `job_id`, `task` → `task_name`), formats times (see [`super::time`]), omits fields that do not
//! apply to a step's kind (`worker_id` only on worker steps, `child_job_id` only on task steps,
//! loop fields only on loops), and masks every secret value (WF §16.3) with the job's
//! [`ViewMask`]: inputs, outputs and error messages can all contain one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::engine::{JobPlan, JobState, JobStatus, RetryRecord, StepState, StepStatus, ViewMask};
use crate::workflow::model::{ActionKind, TaskMode};

/// A task's `mode` (WF §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobMode {
    Distributed,
    /// [P2] pinned to one worker (API §7.9).
    Local,
}

impl From<JobMode> for TaskMode {
    fn from(mode: JobMode) -> Self {
        match mode {
            JobMode::Distributed => TaskMode::Distributed,
            JobMode::Local => TaskMode::Local,
        }
    }
}

impl From<TaskMode> for JobMode {
    fn from(mode: TaskMode) -> Self {
        match mode {
            TaskMode::Distributed => JobMode::Distributed,
            TaskMode::Local => JobMode::Local,
        }
    }
}

/// What the conversion needs besides the job state: how the job is masked and the fields the
/// engine does not track.
#[derive(Debug, Clone, Copy)]
pub struct JobView<'a> {
    /// How the job's values are masked (the orchestrator's `view_mask`).
    pub mask: &'a ViewMask,
    /// [P2] job priority; 0 until then.
    pub priority: i64,
    /// [P2] task-level retries.
    pub retry_of_job_id: Option<Uuid>,
    pub retry_attempt: u32,
    /// The job's plan, when at hand, adds what only the workflow knows: each step's `when`,
    /// its written `for_each` and its `action_image`.
    pub plan: Option<&'a JobPlan>,
}

impl<'a> JobView<'a> {
    /// A first-attempt job of priority 0, without a plan.
    pub fn new(mask: &'a ViewMask) -> Self {
        JobView {
            mask,
            priority: 0,
            retry_of_job_id: None,
            retry_attempt: 1,
            plan: None,
        }
    }

    pub fn with_plan(self, plan: &'a JobPlan) -> Self {
        JobView {
            plan: Some(plan),
            ..self
        }
    }

    fn text(&self, text: &Option<String>) -> Option<String> {
        self.mask.text(text.as_deref())
    }
}

/// A job in lists (API §2.4 summary).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSummary {
    pub job_id: Uuid,
    pub workspace: String,
    pub task_name: String,
    pub mode: JobMode,
    pub status: JobStatus,
    pub source_type: String,
    pub source_id: Option<String>,
    pub revision: String,
    pub priority: i64,
    pub parent_job_id: Option<Uuid>,
    pub retry_of_job_id: Option<Uuid>,
    pub retry_attempt: u32,
    #[serde(with = "super::time")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "super::time::option")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(with = "super::time::option")]
    pub completed_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

impl JobSummary {
    pub fn from_state(job: &JobState, view: &JobView<'_>) -> Self {
        JobSummary {
            job_id: job.id,
            workspace: job.workspace.clone(),
            task_name: job.task.clone(),
            mode: job.mode.into(),
            status: job.status,
            source_type: job.source_type.clone(),
            source_id: job.source_id.clone(),
            revision: job.revision.clone(),
            priority: view.priority,
            parent_job_id: job.parent_job_id,
            retry_of_job_id: view.retry_of_job_id,
            retry_attempt: view.retry_attempt,
            created_at: job.created_at,
            started_at: job.started_at,
            completed_at: job.completed_at,
            error: view.text(&job.error),
        }
    }
}

/// One job with its steps (API §2.4 detail).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobDetail {
    #[serde(flatten)]
    pub summary: JobSummary,
    /// The validated input, masked.
    pub input: Value,
    /// The input as submitted, masked.
    pub raw_input: Value,
    pub output: Value,
    pub parent_step_name: Option<String>,
    pub timeout_secs: Option<u64>,
    /// [P2] the job this one re-runs; omitted for other jobs (docs/deviations.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_job_id: Option<Uuid>,
    /// Topological order; loop instances right after their loop step.
    pub steps: Vec<StepView>,
    /// The hook jobs this job fired, oldest first (issue #15).
    #[serde(default)]
    pub hook_jobs: Vec<HookJob>,
    /// For a hook job: the job whose end fired it.
    #[serde(default)]
    pub hook_of_job_id: Option<Uuid>,
}

/// One hook job, as the job that fired it lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookJob {
    pub job_id: Uuid,
    /// `on_success`, `on_error`, …
    pub event: String,
    pub task_name: String,
    pub status: JobStatus,
    #[serde(with = "crate::api::time::option", default)]
    pub completed_at: Option<DateTime<Utc>>,
}

impl JobDetail {
    pub fn from_state(job: &JobState, view: &JobView<'_>) -> Self {
        JobDetail {
            summary: JobSummary::from_state(job, view),
            input: view.mask.input(&job.input),
            raw_input: view.mask.input(&job.raw_input),
            output: view.mask.value(&job.output),
            parent_step_name: job.parent_step_name.clone(),
            timeout_secs: job.timeout_secs,
            source_job_id: job.source_job_id,
            hook_jobs: Vec::new(),
            hook_of_job_id: (job.source_type == "hook")
                .then_some(job.source_id.as_deref())
                .flatten()
                .and_then(|source| source.split('/').next())
                .and_then(|id| Uuid::parse_str(id).ok()),
            steps: job
                .steps
                .iter()
                .map(|step| StepView::from_state(step, view))
                .collect(),
        }
    }
}

/// One step or loop instance (API §2.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepView {
    pub step_name: String,
    pub action_name: String,
    pub action_type: String,
    /// Container actions only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_image: Option<String>,
    pub runner: String,
    pub status: StepStatus,
    pub depends_on: Vec<String>,
    /// Rendered input of the latest attempt, masked; null before the first render.
    pub input: Option<Value>,
    pub output: Value,
    pub error_message: Option<String>,
    /// Worker steps only (`runner` other than `none`); null until claimed. The server fills it
    /// from the step's lease.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub worker_id: Option<Option<Uuid>>,
    pub attempt: u32,
    pub max_attempts: u32,
    #[serde(with = "super::time::option")]
    pub retry_at: Option<DateTime<Utc>>,
    pub retry_history: Vec<RetryView>,
    #[serde(with = "super::time::option")]
    pub ready_at: Option<DateTime<Utc>>,
    #[serde(with = "super::time::option")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(with = "super::time::option")]
    pub completed_at: Option<DateTime<Utc>>,
    /// The `when` condition as written (a template or a boolean), null without one.
    pub when: Value,
    /// On a loop step: the evaluated items once expanded, else the `for_each` as written.
    pub for_each: Value,
    /// Loop instances only: the loop step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loop_source: Option<String>,
    /// Loop instances only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loop_index: Option<u32>,
    /// Loop instances, and the loop step once expanded: the number of instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loop_total: Option<u32>,
    /// Task steps only; null until the child job exists.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub child_job_id: Option<Option<Uuid>>,
    /// Approval steps only [P2]: when the step became `suspended`; null before.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_present_time",
        deserialize_with = "present_time"
    )]
    pub suspended_at: Option<Option<DateTime<Utc>>>,
    /// Approval steps only: the rendered message; null before the step is suspended.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub approval_message: Option<Option<String>>,
    /// Approval steps only: the approver's form (the action's `input` schema), or null.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub approval_fields: Option<Option<Value>>,
}

impl StepView {
    pub fn from_state(step: &StepState, view: &JobView<'_>) -> Self {
        let planned = view.plan.and_then(|plan| plan.step(step.flow_name()));
        let action_image = planned.and_then(|planned| match &planned.action.kind {
            ActionKind::Script(script) => script.image.clone(),
            ActionKind::Docker(container) | ActionKind::Pod(container) => {
                Some(container.image.clone())
            }
            ActionKind::Task(_) | ActionKind::Approval(_) => None,
        });
        // Instances inherit the loop step's `when` only through it, so they show none.
        let when = planned
            .filter(|_| !step.is_instance())
            .and_then(|planned| planned.step.when.as_ref())
            .and_then(|when| serde_json::to_value(when).ok())
            .unwrap_or(Value::Null);
        let for_each = match &step.for_each {
            Some(items) => view.mask.value(items),
            None => planned
                .filter(|_| !step.is_instance())
                .and_then(|planned| planned.step.for_each.as_ref())
                .and_then(|for_each| serde_json::to_value(for_each).ok())
                .unwrap_or(Value::Null),
        };
        let approval = step.action_type == "approval";
        StepView {
            step_name: step.step_name.clone(),
            action_name: step.action_name.clone(),
            action_type: step.action_type.clone(),
            action_image,
            runner: step.runner.clone(),
            status: step.status,
            depends_on: step.depends_on.clone(),
            input: step.input.as_ref().map(|input| view.mask.value(input)),
            output: view.mask.value(&step.output),
            error_message: view.text(&step.error_message),
            worker_id: (step.runner != "none").then_some(None),
            attempt: step.attempt,
            max_attempts: step.max_attempts,
            retry_at: step.retry_at,
            retry_history: step
                .retry_history
                .iter()
                .map(|record| RetryView::from_record(record, view))
                .collect(),
            ready_at: step.ready_at,
            started_at: step.started_at,
            completed_at: step.completed_at,
            when,
            for_each,
            loop_source: step.loop_source.clone(),
            loop_index: step.loop_index,
            loop_total: step.loop_total,
            child_job_id: (step.action_type == "task").then_some(step.child_job_id),
            suspended_at: approval.then_some(step.suspended_at),
            approval_message: approval.then(|| view.text(&step.approval_message)),
            approval_fields: approval.then(|| {
                planned
                    .and_then(|planned| planned.action.input.as_ref())
                    .and_then(|schema| serde_json::to_value(schema).ok())
            }),
        }
    }
}

/// One failed and retried attempt (API §2.5 `retry_history`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryView {
    pub attempt: u32,
    /// The worker that ran the attempt; filled by the server from the attempt's lease.
    pub worker_id: Option<Uuid>,
    #[serde(with = "super::time::option")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(with = "super::time")]
    pub completed_at: DateTime<Utc>,
    pub error_message: Option<String>,
}

impl RetryView {
    pub fn from_record(record: &RetryRecord, view: &JobView<'_>) -> Self {
        RetryView {
            attempt: record.attempt,
            worker_id: None,
            started_at: record.started_at,
            completed_at: record.completed_at,
            error_message: view.text(&record.error_message),
        }
    }
}

/// [`present`] for a time in the wire format (API §1.2).
fn present_time<'de, D>(deserializer: D) -> Result<Option<Option<DateTime<Utc>>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    super::time::option::deserialize(deserializer).map(Some)
}

fn serialize_present_time<S: serde::Serializer>(
    value: &Option<Option<DateTime<Utc>>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(time) => super::time::option::serialize(time, serializer),
        None => serializer.serialize_none(),
    }
}

/// Reads a field that may be omitted (outer `None`, via `default`) or present and null
/// (`Some(None)`), so a parsed step keeps the difference between "does not apply" and "no
/// value yet".
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}
