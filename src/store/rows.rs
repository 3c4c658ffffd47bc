//! Row wrappers: the one place where [`JobState`] and [`StepState`] meet columns, so the engine's
//! types stay free of sqlx (the atuin habit). A row holds exactly what its table stores —
//! times as unix milliseconds, JSON as text — and comparing two rows tells whether a write is
//! needed.

use serde_json::Value;
use uuid::Uuid;

use super::error::Result;
use super::tx::{
    from_json, from_millis, millis, opt_from_millis, opt_millis, parse_status, to_i64, to_json,
    to_u32,
};
use crate::engine::{JobState, StepState, Steps};

pub(crate) const JOB_COLUMNS: &str = "id, workspace, task, status, input, raw_input, output, \
     error, created_at, started_at, completed_at, source_type, source_id, parent_job_id, \
     parent_step_name, revision, depth, timeout_secs, priority, mask, source_job_id, mode, \
     pinned_worker_id";

pub(crate) const STEP_COLUMNS: &str = "job_id, step_name, position, action_name, action_type, \
     runner, status, depends_on, input, output, error_message, attempt, max_attempts, retry_at, \
     retry_history, ready_at, started_at, completed_at, for_each, loop_source, loop_index, \
     loop_total, child_job_id, capability, tags, suspended_at, approval_message";

/// One `jobs` row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JobRow {
    pub id: Uuid,
    pub workspace: String,
    pub task: String,
    pub status: String,
    pub input: String,
    pub raw_input: String,
    pub output: String,
    pub error: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub source_type: String,
    pub source_id: Option<String>,
    pub parent_job_id: Option<Uuid>,
    pub parent_step_name: Option<String>,
    pub revision: String,
    pub depth: i64,
    pub timeout_secs: Option<i64>,
    /// Claim order (API §7.5); not part of [`JobState`], fixed at creation.
    pub priority: i64,
    /// The job's [`MaskRecord`](crate::engine::MaskRecord) as JSON; NULL for jobs stored
    /// before records were kept (migration 0006).
    pub mask: Option<String>,
    /// The job a re-run or restart was made from (API §3.3 [P2]).
    pub source_job_id: Option<Uuid>,
    /// `distributed` or `local` (WF §8).
    pub mode: String,
    /// The worker a `local` job is pinned to (API §7.9).
    pub pinned_worker_id: Option<Uuid>,
}

/// One `steps` row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StepRow {
    pub job_id: Uuid,
    pub step_name: String,
    /// Index in [`JobState::steps`], which keeps the topological order with loop instances
    /// right after their loop step.
    pub position: i64,
    pub action_name: String,
    pub action_type: String,
    pub runner: String,
    pub status: String,
    pub depends_on: String,
    pub input: Option<String>,
    pub output: String,
    pub error_message: Option<String>,
    pub attempt: i64,
    pub max_attempts: i64,
    pub retry_at: Option<i64>,
    pub retry_history: String,
    pub ready_at: Option<i64>,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub for_each: Option<String>,
    pub loop_source: Option<String>,
    pub loop_index: Option<i64>,
    pub loop_total: Option<i64>,
    pub child_job_id: Option<Uuid>,
    /// The worker capability the step needs (API §7.5 rule 2), derived from its action.
    pub capability: Option<String>,
    /// JSON array of the action's tags (API §7.5 rule 3).
    pub tags: String,
    pub suspended_at: Option<i64>,
    pub approval_message: Option<String>,
}

impl JobRow {
    pub fn from_state(job: &JobState, priority: i64) -> Result<JobRow> {
        Ok(JobRow {
            id: job.id,
            workspace: job.workspace.clone(),
            task: job.task.clone(),
            status: job.status.as_str().to_owned(),
            input: to_json(&job.input)?,
            raw_input: to_json(&job.raw_input)?,
            output: to_json(&job.output)?,
            error: job.error.clone(),
            created_at: millis(job.created_at),
            started_at: opt_millis(job.started_at),
            completed_at: opt_millis(job.completed_at),
            source_type: job.source_type.clone(),
            source_id: job.source_id.clone(),
            parent_job_id: job.parent_job_id,
            parent_step_name: job.parent_step_name.clone(),
            revision: job.revision.clone(),
            depth: i64::from(job.depth),
            timeout_secs: job.timeout_secs.map(to_i64).transpose()?,
            priority,
            mask: job.mask.as_ref().map(to_json).transpose()?,
            source_job_id: job.source_job_id,
            mode: job.mode.as_str().to_owned(),
            pinned_worker_id: job.pinned_worker,
        })
    }

    pub fn to_state(&self, steps: impl Into<Steps>) -> Result<JobState> {
        Ok(JobState {
            id: self.id,
            workspace: self.workspace.clone(),
            task: self.task.clone(),
            status: parse_status(&self.status)?,
            input: from_json(&self.input)?,
            raw_input: from_json(&self.raw_input)?,
            output: from_json(&self.output)?,
            error: self.error.clone(),
            created_at: from_millis(self.created_at)?,
            started_at: opt_from_millis(self.started_at)?,
            completed_at: opt_from_millis(self.completed_at)?,
            source_type: self.source_type.clone(),
            source_id: self.source_id.clone(),
            parent_job_id: self.parent_job_id,
            parent_step_name: self.parent_step_name.clone(),
            revision: self.revision.clone(),
            depth: to_u32(self.depth)?,
            timeout_secs: self
                .timeout_secs
                .map(|secs| u64::try_from(secs).map_err(super::StoreError::invalid))
                .transpose()?,
            steps: steps.into(),
            mask: self.mask.as_deref().map(from_json).transpose()?,
            source_job_id: self.source_job_id,
            mode: crate::workflow::model::TaskMode::parse(&self.mode).ok_or_else(|| {
                super::StoreError::invalid(format!("unknown job mode '{}'", self.mode))
            })?,
            pinned_worker: self.pinned_worker_id,
        })
    }
}

impl StepRow {
    /// `tags` is the JSON array of the step's action tags.
    pub fn from_state(job_id: Uuid, position: usize, step: &StepState, tags: &str) -> Result<Self> {
        Ok(StepRow {
            job_id,
            step_name: step.step_name.clone(),
            position: to_i64(position)?,
            action_name: step.action_name.clone(),
            action_type: step.action_type.clone(),
            runner: step.runner.clone(),
            status: step.status.as_str().to_owned(),
            depends_on: to_json(&step.depends_on)?,
            input: step.input.as_ref().map(to_json).transpose()?,
            output: to_json(&step.output)?,
            error_message: step.error_message.clone(),
            attempt: i64::from(step.attempt),
            max_attempts: i64::from(step.max_attempts),
            retry_at: opt_millis(step.retry_at),
            retry_history: to_json(&step.retry_history)?,
            ready_at: opt_millis(step.ready_at),
            started_at: opt_millis(step.started_at),
            completed_at: opt_millis(step.completed_at),
            for_each: step.for_each.as_ref().map(to_json).transpose()?,
            loop_source: step.loop_source.clone(),
            loop_index: step.loop_index.map(i64::from),
            loop_total: step.loop_total.map(i64::from),
            child_job_id: step.child_job_id,
            capability: capability(&step.action_type, &step.runner).map(str::to_owned),
            tags: tags.to_owned(),
            suspended_at: opt_millis(step.suspended_at),
            approval_message: step.approval_message.clone(),
        })
    }

    pub fn to_state(&self) -> Result<StepState> {
        Ok(StepState {
            step_name: self.step_name.clone(),
            action_name: self.action_name.clone(),
            action_type: self.action_type.clone(),
            runner: self.runner.clone(),
            status: parse_status(&self.status)?,
            depends_on: from_json(&self.depends_on)?,
            input: self.input.as_deref().map(from_json::<Value>).transpose()?,
            output: from_json(&self.output)?,
            error_message: self.error_message.clone(),
            attempt: to_u32(self.attempt)?,
            max_attempts: to_u32(self.max_attempts)?,
            retry_at: opt_from_millis(self.retry_at)?,
            retry_history: from_json(&self.retry_history)?,
            ready_at: opt_from_millis(self.ready_at)?,
            started_at: opt_from_millis(self.started_at)?,
            completed_at: opt_from_millis(self.completed_at)?,
            suspended_at: opt_from_millis(self.suspended_at)?,
            approval_message: self.approval_message.clone(),
            for_each: self
                .for_each
                .as_deref()
                .map(from_json::<Value>)
                .transpose()?,
            loop_source: self.loop_source.clone(),
            loop_index: self.loop_index.map(to_u32).transpose()?,
            loop_total: self.loop_total.map(to_u32).transpose()?,
            child_job_id: self.child_job_id,
        })
    }
}

/// The capability a worker needs for a step (API §7.5 rule 2); `None` for steps the server runs
/// itself (`task`, `approval`), which are never claimable.
pub(crate) fn capability(action_type: &str, runner: &str) -> Option<&'static str> {
    match (action_type, runner) {
        ("docker", _) | (_, "docker") => Some("docker"),
        ("pod", _) | (_, "pod") => Some("kubernetes"),
        ("script", "local") => Some("script"),
        _ => None,
    }
}

/// Reads a [`JobRow`] from a row of either backend (selected with [`JOB_COLUMNS`]).
macro_rules! read_job {
    ($row:expr) => {{
        let row = $row;
        $crate::store::rows::JobRow {
            id: sqlx::Row::try_get(row, "id")?,
            workspace: sqlx::Row::try_get(row, "workspace")?,
            task: sqlx::Row::try_get(row, "task")?,
            status: sqlx::Row::try_get(row, "status")?,
            input: sqlx::Row::try_get(row, "input")?,
            raw_input: sqlx::Row::try_get(row, "raw_input")?,
            output: sqlx::Row::try_get(row, "output")?,
            error: sqlx::Row::try_get(row, "error")?,
            created_at: sqlx::Row::try_get(row, "created_at")?,
            started_at: sqlx::Row::try_get(row, "started_at")?,
            completed_at: sqlx::Row::try_get(row, "completed_at")?,
            source_type: sqlx::Row::try_get(row, "source_type")?,
            source_id: sqlx::Row::try_get(row, "source_id")?,
            parent_job_id: sqlx::Row::try_get(row, "parent_job_id")?,
            parent_step_name: sqlx::Row::try_get(row, "parent_step_name")?,
            revision: sqlx::Row::try_get(row, "revision")?,
            depth: sqlx::Row::try_get(row, "depth")?,
            timeout_secs: sqlx::Row::try_get(row, "timeout_secs")?,
            priority: sqlx::Row::try_get(row, "priority")?,
            mask: sqlx::Row::try_get(row, "mask")?,
            source_job_id: sqlx::Row::try_get(row, "source_job_id")?,
            mode: sqlx::Row::try_get(row, "mode")?,
            pinned_worker_id: sqlx::Row::try_get(row, "pinned_worker_id")?,
        }
    }};
}
pub(crate) use read_job;

/// Reads a [`StepRow`] from a row of either backend (selected with [`STEP_COLUMNS`]).
macro_rules! read_step {
    ($row:expr) => {{
        let row = $row;
        $crate::store::rows::StepRow {
            job_id: sqlx::Row::try_get(row, "job_id")?,
            step_name: sqlx::Row::try_get(row, "step_name")?,
            position: sqlx::Row::try_get(row, "position")?,
            action_name: sqlx::Row::try_get(row, "action_name")?,
            action_type: sqlx::Row::try_get(row, "action_type")?,
            runner: sqlx::Row::try_get(row, "runner")?,
            status: sqlx::Row::try_get(row, "status")?,
            depends_on: sqlx::Row::try_get(row, "depends_on")?,
            input: sqlx::Row::try_get(row, "input")?,
            output: sqlx::Row::try_get(row, "output")?,
            error_message: sqlx::Row::try_get(row, "error_message")?,
            attempt: sqlx::Row::try_get(row, "attempt")?,
            max_attempts: sqlx::Row::try_get(row, "max_attempts")?,
            retry_at: sqlx::Row::try_get(row, "retry_at")?,
            retry_history: sqlx::Row::try_get(row, "retry_history")?,
            ready_at: sqlx::Row::try_get(row, "ready_at")?,
            started_at: sqlx::Row::try_get(row, "started_at")?,
            completed_at: sqlx::Row::try_get(row, "completed_at")?,
            for_each: sqlx::Row::try_get(row, "for_each")?,
            loop_source: sqlx::Row::try_get(row, "loop_source")?,
            loop_index: sqlx::Row::try_get(row, "loop_index")?,
            loop_total: sqlx::Row::try_get(row, "loop_total")?,
            child_job_id: sqlx::Row::try_get(row, "child_job_id")?,
            capability: sqlx::Row::try_get(row, "capability")?,
            tags: sqlx::Row::try_get(row, "tags")?,
            suspended_at: sqlx::Row::try_get(row, "suspended_at")?,
            approval_message: sqlx::Row::try_get(row, "approval_message")?,
        }
    }};
}
pub(crate) use read_step;

/// Binds a [`JobRow`] in [`JOB_COLUMNS`] order: `$1` is the id.
macro_rules! bind_job {
    ($query:expr, $row:expr) => {{
        let row = $row;
        $query
            .bind(row.id)
            .bind(row.workspace.as_str())
            .bind(row.task.as_str())
            .bind(row.status.as_str())
            .bind(row.input.as_str())
            .bind(row.raw_input.as_str())
            .bind(row.output.as_str())
            .bind(row.error.as_deref())
            .bind(row.created_at)
            .bind(row.started_at)
            .bind(row.completed_at)
            .bind(row.source_type.as_str())
            .bind(row.source_id.as_deref())
            .bind(row.parent_job_id)
            .bind(row.parent_step_name.as_deref())
            .bind(row.revision.as_str())
            .bind(row.depth)
            .bind(row.timeout_secs)
            .bind(row.priority)
            .bind(row.mask.as_deref())
            .bind(row.source_job_id)
            .bind(row.mode.as_str())
            .bind(row.pinned_worker_id)
    }};
}
pub(crate) use bind_job;

/// Binds a [`StepRow`] in [`STEP_COLUMNS`] order: `$1, $2` are the key.
macro_rules! bind_step {
    ($query:expr, $row:expr) => {{
        let row = $row;
        $query
            .bind(row.job_id)
            .bind(row.step_name.as_str())
            .bind(row.position)
            .bind(row.action_name.as_str())
            .bind(row.action_type.as_str())
            .bind(row.runner.as_str())
            .bind(row.status.as_str())
            .bind(row.depends_on.as_str())
            .bind(row.input.as_deref())
            .bind(row.output.as_str())
            .bind(row.error_message.as_deref())
            .bind(row.attempt)
            .bind(row.max_attempts)
            .bind(row.retry_at)
            .bind(row.retry_history.as_str())
            .bind(row.ready_at)
            .bind(row.started_at)
            .bind(row.completed_at)
            .bind(row.for_each.as_deref())
            .bind(row.loop_source.as_deref())
            .bind(row.loop_index)
            .bind(row.loop_total)
            .bind(row.child_job_id)
            .bind(row.capability.as_deref())
            .bind(row.tags.as_str())
            .bind(row.suspended_at)
            .bind(row.approval_message.as_deref())
    }};
}
pub(crate) use bind_step;
