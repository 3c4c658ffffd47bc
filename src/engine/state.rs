//! The mutable state of one job and its steps, shaped like the API's job and step resources
//! (API §2.4, §2.5) so the server can store it as rows and `stroem run` can keep it in memory.
//!
//! *Invariant*: `steps` is in the plan's topological order, and the instances of a loop step sit
//! right after it (`deploy`, `deploy[0]`, `deploy[1]`, …, then the next flow step).

use std::ops::{Index, IndexMut};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use uuid::Uuid;

use crate::workflow::model::TaskMode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
    /// A scheduler `concurrency: skip` placeholder; never produced by the engine.
    Skipped,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
            JobStatus::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Pending,
    Ready,
    Running,
    /// An approval step waiting for a decision (WF §6.8).
    Suspended,
    Completed,
    Failed,
    Skipped,
    Cancelled,
}

impl StepStatus {
    /// Terminal statuses never change again (WF §10.1).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            StepStatus::Completed
                | StepStatus::Failed
                | StepStatus::Skipped
                | StepStatus::Cancelled
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Ready => "ready",
            StepStatus::Running => "running",
            StepStatus::Suspended => "suspended",
            StepStatus::Completed => "completed",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
            StepStatus::Cancelled => "cancelled",
        }
    }
}

/// Who created a job and where it sits (API §2.4); everything the engine does not decide.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobMeta {
    pub id: Uuid,
    pub workspace: String,
    pub revision: String,
    pub source_type: String,
    pub source_id: Option<String>,
    pub parent_job_id: Option<Uuid>,
    pub parent_step_name: Option<String>,
    /// Nesting depth: 0 for top-level jobs, parent's + 1 for child jobs (WF §6.7).
    pub depth: u32,
    /// The input as submitted.
    pub raw_input: Value,
    /// The job a re-run or restart was made from (API §3.3 [P2]).
    pub source_job_id: Option<Uuid>,
    /// Mask values the job that led to this one hands on (WF §16.3): a child job gets its
    /// parent's, a hook job its original job's.
    pub inherited_mask: Vec<String>,
}

/// What must stay masked in a job's views that its workspace revision cannot tell (WF §16.3),
/// stored with the job, so that its views stay masked after the revision is gone, a reload or a
/// restart re-resolved the workspace secrets differently (issue #16).
///
/// While the job runs, its full mask set is its revision's (workspace secrets and the literal
/// values of `secret: true` fields) plus `values`. When it finishes it is *sealed*: `values`
/// becomes every piece of the full set that occurs in the job's stored data, so its views need
/// nothing else ever again. Every value kept here also occurs in some job's stored input or in
/// this job's data, so keeping it adds no secret to the database.
///
/// `Debug` prints how many values there are, never the values.
#[derive(Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MaskRecord {
    /// Top-level input fields marked `secret: true`: shown as `••••••` whatever their value.
    pub fields: Vec<String>,
    /// The values of those fields and those handed on by the parent or hooked job; once
    /// sealed, every mask value the job's data contains.
    pub values: Vec<String>,
    /// Set in the change that finished the job.
    pub sealed: bool,
}

impl std::fmt::Debug for MaskRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaskRecord")
            .field("fields", &self.fields)
            .field("values", &self.values.len())
            .field("sealed", &self.sealed)
            .finish()
    }
}

/// One job (API §2.4 detail shape, plus `depth`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobState {
    pub id: Uuid,
    pub workspace: String,
    pub task: String,
    pub status: JobStatus,
    /// The validated input (WF §3.2 steps 2–5).
    pub input: Value,
    pub raw_input: Value,
    /// Sink step outputs keyed by step name, or null (WF §10.4).
    pub output: Value,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    /// Set when the last step became terminal, together with the final status.
    pub completed_at: Option<DateTime<Utc>>,
    pub source_type: String,
    pub source_id: Option<String>,
    pub parent_job_id: Option<Uuid>,
    pub parent_step_name: Option<String>,
    pub revision: String,
    pub depth: u32,
    pub timeout_secs: Option<u64>,
    /// The job a re-run or restart was made from (API §3.3 [P2]).
    #[serde(default)]
    pub source_job_id: Option<Uuid>,
    /// The task's `mode` when the job was created (WF §8).
    #[serde(default)]
    pub mode: TaskMode,
    /// The worker the first claim of a `local` job pinned it to (API §7.9): every other worker
    /// step of the job goes to it. Set by the claim, never by the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_worker: Option<Uuid>,
    pub steps: Steps,
    /// `None` only for jobs stored before masks were kept with jobs: their views mask with the
    /// revision while it is at hand and show nothing secret-bearing otherwise (fail closed).
    /// Never serialised with the job: it holds mask values, and only the store keeps it.
    #[serde(skip)]
    pub mask: Option<MaskRecord>,
}

impl JobState {
    /// True once a cancellation or a job timeout stopped the job: no step is promoted any more
    /// (R7). A job that merely failed is terminal only when all its steps are, so `failed` with
    /// unfinished steps always means a timeout.
    pub fn is_halted(&self) -> bool {
        matches!(self.status, JobStatus::Cancelled | JobStatus::Failed)
    }

    /// The job reached its final status and `completed_at` (hooks may fire).
    pub fn is_finished(&self) -> bool {
        self.completed_at.is_some()
    }

    pub fn step(&self, name: &str) -> Option<&StepState> {
        self.steps.iter().find(|step| step.step_name == name)
    }

    pub fn step_mut(&mut self, name: &str) -> Option<&mut StepState> {
        let position = self.position(name)?;
        Some(&mut self.steps[position])
    }

    pub(crate) fn position(&self, name: &str) -> Option<usize> {
        self.steps.iter().position(|step| step.step_name == name)
    }

    /// Records the rendered input of the latest attempt for display, already masked (WF
    /// §16.2): retries render again from the templates, never from this copy.
    pub fn record_step_input(&mut self, step: &str, masked: Value) {
        if let Some(state) = self.step_mut(step) {
            state.input = Some(masked);
        }
    }

    /// The earliest `retry_at` among ready steps: when the caller should look again.
    pub fn next_retry_at(&self) -> Option<DateTime<Utc>> {
        self.steps
            .iter()
            .filter(|step| step.status == StepStatus::Ready)
            .filter_map(|step| step.retry_at)
            .min()
    }
}

/// One attempt that failed and was retried (API §2.5 `retry_history`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryRecord {
    pub attempt: u32,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: DateTime<Utc>,
    pub error_message: Option<String>,
}

/// One step or loop instance (API §2.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepState {
    /// Flow step name; loop instances `name[i]`.
    pub step_name: String,
    pub action_name: String,
    pub action_type: String,
    pub runner: String,
    pub status: StepStatus,
    pub depends_on: Vec<String>,
    /// Rendered input of the latest attempt, masked; null before the first render.
    pub input: Option<Value>,
    pub output: Value,
    /// Failure reason; for steps skipped by R2 the failed dependency.
    pub error_message: Option<String>,
    /// The latest attempt begun, from 1; 0 before the first.
    pub attempt: u32,
    pub max_attempts: u32,
    pub retry_at: Option<DateTime<Utc>>,
    pub retry_history: Vec<RetryRecord>,
    pub ready_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Approval steps: when the step became `suspended` (the approval timeout counts from it).
    #[serde(default)]
    pub suspended_at: Option<DateTime<Utc>>,
    /// Approval steps: the rendered `message`, masked (WF §6.8).
    #[serde(default)]
    pub approval_message: Option<String>,
    /// On a loop step once expanded: the evaluated `for_each` items (`each.item` of instances).
    pub for_each: Option<Value>,
    pub loop_source: Option<String>,
    pub loop_index: Option<u32>,
    pub loop_total: Option<u32>,
    pub child_job_id: Option<Uuid>,
}

impl StepState {
    /// The flow step this state belongs to: the loop step for instances.
    pub fn flow_name(&self) -> &str {
        self.loop_source.as_deref().unwrap_or(&self.step_name)
    }

    pub fn is_instance(&self) -> bool {
        self.loop_source.is_some()
    }
}

/// The steps of a job, shared copy-on-write: cloning a job copies one pointer per step, and a
/// step is copied only when it is changed through [`IndexMut`] or [`Steps::iter_mut`]. Every
/// change of a job starts from a copy of the version it loaded, so without sharing each change
/// cost a copy of every step — O(steps) per event, O(n²) per chain (issue #3).
#[derive(Clone, Default)]
pub struct Steps(Vec<Arc<StepState>>);

impl Steps {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &StepState> + ExactSizeIterator {
        self.0.iter().map(|step| &**step)
    }

    pub fn get(&self, position: usize) -> Option<&StepState> {
        self.0.get(position).map(|step| &**step)
    }

    /// Every step for changing, each copied first if shared: for changes to all steps.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut StepState> {
        self.0.iter_mut().map(Arc::make_mut)
    }

    pub fn first(&self) -> Option<&StepState> {
        self.get(0)
    }

    pub fn push(&mut self, step: StepState) {
        self.0.push(Arc::new(step));
    }

    /// Inserts `steps` before `position` (loop instances after their loop step).
    pub fn insert_all(&mut self, position: usize, steps: impl IntoIterator<Item = StepState>) {
        self.0
            .splice(position..position, steps.into_iter().map(Arc::new));
    }

    /// Whether the step at `position` is the very same value as `other`'s at `other_position`:
    /// unchanged since one was copied from the other. A cheap test before comparing.
    pub fn shares(&self, position: usize, other: &Steps, other_position: usize) -> bool {
        match (self.0.get(position), other.0.get(other_position)) {
            (Some(mine), Some(theirs)) => Arc::ptr_eq(mine, theirs),
            _ => false,
        }
    }

    /// The step at `position` as a shared value, for putting an unchanged step into another
    /// version of the job without copying it.
    pub(crate) fn share(&self, position: usize) -> Option<Arc<StepState>> {
        self.0.get(position).cloned()
    }

    pub(crate) fn push_shared(&mut self, step: Arc<StepState>) {
        self.0.push(step);
    }

    pub fn with_capacity(capacity: usize) -> Steps {
        Steps(Vec::with_capacity(capacity))
    }
}

impl Index<usize> for Steps {
    type Output = StepState;

    fn index(&self, position: usize) -> &StepState {
        &self.0[position]
    }
}

impl IndexMut<usize> for Steps {
    fn index_mut(&mut self, position: usize) -> &mut StepState {
        Arc::make_mut(&mut self.0[position])
    }
}

impl PartialEq for Steps {
    fn eq(&self, other: &Steps) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(&other.0)
                .all(|(mine, theirs)| Arc::ptr_eq(mine, theirs) || mine == theirs)
    }
}

impl std::fmt::Debug for Steps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl From<Vec<StepState>> for Steps {
    fn from(steps: Vec<StepState>) -> Steps {
        steps.into_iter().collect()
    }
}

impl FromIterator<StepState> for Steps {
    fn from_iter<I: IntoIterator<Item = StepState>>(steps: I) -> Steps {
        Steps(steps.into_iter().map(Arc::new).collect())
    }
}

impl<'a> IntoIterator for &'a Steps {
    type Item = &'a StepState;
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, Arc<StepState>>,
        fn(&'a Arc<StepState>) -> &'a StepState,
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|step| &**step)
    }
}

impl IntoIterator for Steps {
    type Item = StepState;
    type IntoIter =
        std::iter::Map<std::vec::IntoIter<Arc<StepState>>, fn(Arc<StepState>) -> StepState>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter().map(Arc::unwrap_or_clone)
    }
}

impl Serialize for Steps {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Steps {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Steps, D::Error> {
        Vec::<StepState>::deserialize(deserializer).map(Steps::from)
    }
}
