//! The job engine's rules (WF §10, §13; API §8): readiness, skipping, convergence, `when`,
//! `for_each`, retries, timeouts, cancellation and job outcome — as pure functions of a job's
//! state and an event.
//!
//! *Invariant*: no I/O, no clock, no randomness of its own. Callers pass `now` and a jitter
//! source, so `stroem run`, the server and the tests all drive the same code deterministically.
//!
//! How an executor drives a job:
//! 1. [`JobPlan::new`] once per job, [`create`] to get the initial state and effects.
//! 2. For every thing that happens, [`apply`] an [`Event`] and carry out the returned
//!    [`Effect`]s in order (after storing the state, in the same transaction on a server).
//! 3. A worker step goes `StepClaimed` → [`prepare_attempt`] (on error: `StepRejected`) →
//!    `StepStarted` → `StepFinished`. A task step answers `StartChildJob` with
//!    `ChildJobCreated`/`ChildJobRejected` and later `ChildJobFinished`.
//! 4. `Tick` at [`JobState::next_retry_at`] dispatches task steps whose retry delay is over;
//!    `JobTimedOut` at [`job_deadline`]; `StepTimedOut` at [`step_deadline`] for task steps.
//! 5. On `JobFinished`, fire [`hooks_to_fire`] for [`hook_event`] with [`hook_variable`], and
//!    report the job's outcome to its parent step (`ChildJobFinished`).

mod event;
mod hooks;
mod job;
mod masking;
mod plan;
mod render;
mod rules;
mod state;
mod timing;

pub use event::{Effect, Event, EventError};
pub use hooks::{
    HookTarget, PreparedHook, RefusedHook, hook_event, hook_names, hook_target, hook_variable,
    hooks_to_fire, prepare_hooks, prepare_suspended_hooks,
};
pub use job::{PINNED_WORKER_LOST, apply, create, pinned_worker_needed};
pub use masking::{
    ViewMask, job_masker, mask_record, protect, record_of, secret_field_names, secret_field_values,
    show_input,
};
pub use plan::{JobPlan, PlanError, PlannedStep};
pub use render::{
    EvalContext, approval_input, context, job_variable, prepare_attempt, record_attempt_input,
    render_step_input, with_declared_nulls,
};
pub use rules::{MAX_DEPTH, MAX_LOOP_ITEMS};
pub use state::{
    JobMeta, JobState, JobStatus, MaskRecord, RetryRecord, StepState, StepStatus, Steps,
};
pub use timing::{Jitter, job_deadline, retry_delay, step_deadline};

#[cfg(test)]
mod tests;
