//! What happens to a job (events, reported by the executor) and what the executor must do
//! about it (effects, returned by the engine). The executor owns I/O: processes, child jobs,
//! storage, log files; the engine only decides.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::state::{JobStatus, StepStatus};
use crate::runner::spec::AttemptResult;

/// Something that happened to one job. Every event names steps by their state name (`deploy`,
/// `deploy[2]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A worker claimed a `ready` worker step (retry delay past): `running`, attempt + 1. The
    /// executor then calls [`prepare_attempt`](super::render::prepare_attempt).
    StepClaimed { step: String },
    /// The worker started the claimed attempt: the step's `started_at`; the job becomes
    /// `running` if it was `pending`. If the job was cancelled since the claim, the step becomes
    /// `cancelled` instead and the attempt must not run.
    StepStarted { step: String },
    /// The attempt of a `running` worker step ended.
    StepFinished { step: String, result: AttemptResult },
    /// A `ready` or `running` step cannot run at all: its templates or input failed at claim, or
    /// no active worker can run it (API §8.5 item 6); a `suspended` approval step that nobody
    /// can decide (`stroem run` without a terminal). Fails without retry.
    StepRejected { step: String, error: String },
    /// The server-side backstop for a step's timeout (API §8.5 item 3), or the timeout of a task
    /// step (from child creation): stops the attempt and fails it, retryable. For a `suspended`
    /// approval step, the approval timeout (API §8.5 item 4): the step fails.
    StepTimedOut { step: String },
    /// The executor created the child job requested by [`Effect::StartChildJob`].
    ChildJobCreated { step: String, child_job_id: Uuid },
    /// The child job of [`Effect::StartChildJob`] could not be created (its input failed the
    /// target task's schema, …): the step fails without retry.
    ChildJobRejected { step: String, error: String },
    /// A child job reached its final status. Reports for a child that is no longer the step's
    /// current one (a timed-out attempt's) are rejected as stale.
    ChildJobFinished {
        step: String,
        child_job_id: Uuid,
        status: JobStatus,
        output: Value,
        error: Option<String>,
    },
    /// A person approved a `suspended` approval step (WF §6.8): `input` is the approver's form
    /// already merged over the step's input and validated ([`approval_input`]); `by` is the
    /// approver's e-mail (`anonymous` without auth).
    ///
    /// [`approval_input`]: super::render::approval_input
    StepApproved {
        step: String,
        by: String,
        input: Value,
    },
    /// A person rejected a `suspended` approval step: it fails with `rejected by <by>: <reason>`.
    StepDeclined {
        step: String,
        by: String,
        reason: Option<String>,
    },
    /// Time passed: ready task steps whose retry delay is over are dispatched again. Send it at
    /// [`JobState::next_retry_at`](super::state::JobState::next_retry_at).
    Tick,
    /// Someone cancelled the job (API §8.4): `by` is who (`alice@example.com`, `parent job …`).
    CancelRequested { by: Option<String> },
    /// The job ran past its task `timeout` (WF §13.2).
    JobTimedOut,
    /// The worker a `local` job is pinned to became inactive or is gone (API §7.9): every
    /// unfinished worker step fails with `pinned worker lost`, without retry. A halted job is
    /// left to its cancellation.
    PinnedWorkerLost,
}

/// Something the executor must do, in the order given, after storing the new state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// A worker step became claimable; `not_before` is its retry delay.
    StepReady {
        step: String,
        not_before: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Create a child job of `task` (same workspace and revision, `source_type: task`,
    /// `source_id: <job id>/<step>`, `parent_job_id`), after validating `input` against the
    /// target task's schema (WF §3.2). Answer with [`Event::ChildJobCreated`] or
    /// [`Event::ChildJobRejected`].
    StartChildJob {
        step: String,
        task: String,
        input: Value,
        depth: u32,
    },
    /// Cancel a child job recursively; its eventual report is no longer needed.
    CancelChildJob { step: String, child_job_id: Uuid },
    /// Stop the running attempt of a worker step (lease `cancelling`: SIGTERM, grace, SIGKILL).
    /// The runner's report then arrives as [`Event::StepFinished`] and the step becomes
    /// `cancelled` whatever it says.
    StopStep { step: String },
    /// An approval step became `suspended` with its rendered (masked) `message`: fire the
    /// task's `on_suspended` hooks (WF §14) with [`suspended_hook_variable`] and tell whoever
    /// decides.
    ///
    /// [`suspended_hook_variable`]: super::hooks::hook_variable
    StepSuspended { step: String, message: String },
    /// A `_server` log line (stream `stderr`, attempt null, timestamped now).
    Log { line: String },
    /// Every step is terminal: the job has its final status, output and error. Fire hooks,
    /// update the parent step, finalise the log.
    JobFinished { status: JobStatus },
}

/// An event that does not fit the job's state. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("unknown step '{0}'")]
    UnknownStep(String),
    #[error("step '{step}' is {status}, not {expected}")]
    WrongStatus {
        step: String,
        status: &'static str,
        expected: &'static str,
    },
    #[error("step '{0}' is not due before its retry delay is over")]
    NotDue(String),
    #[error("step '{0}' does not run on a worker")]
    NotWorkerStep(String),
    #[error("step '{0}' is not an approval step")]
    NotApprovalStep(String),
    #[error("step '{0}' does not run a child job")]
    NotTaskStep(String),
    #[error("child job {child} is not the current child of step '{step}'")]
    StaleChild { step: String, child: Uuid },
    #[error("the job has already finished")]
    JobFinished,
}

impl EventError {
    pub(crate) fn wrong_status(step: &str, status: StepStatus, expected: &'static str) -> Self {
        EventError::WrongStatus {
            step: step.to_owned(),
            status: status.as_str(),
            expected,
        }
    }
}
