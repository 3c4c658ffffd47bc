//! Job creation and event handling: the two entry points of the engine. Each applies one
//! change, then re-evaluates the job ([`Settle`]), and returns the effects the executor must
//! carry out.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::event::{Effect, Event, EventError};
use super::plan::{JobPlan, PlannedStep};
use super::render::EvalContext;
use super::rules::{Settle, mark_running};
use super::state::{JobMeta, JobState, JobStatus, RetryRecord, StepState, StepStatus};
use super::timing::{Jitter, format_delay, retry_delay};
use crate::runner::spec::{AttemptResult, Outcome};
use crate::workflow::model::Duration;

/// Creates a job of `plan` with its validated `input` (WF §3.2 already passed) and applies the
/// rules once, so steps without dependencies are ready (or the job already finished, when every
/// step is skipped). `ctx.mask` is the job's full mask set: [`super::job_masker`] of the
/// revision's and [`super::mask_record`] of this plan, input and `meta.inherited_mask`.
pub fn create(
    plan: &JobPlan,
    meta: JobMeta,
    input: Value,
    now: DateTime<Utc>,
    ctx: &EvalContext<'_>,
) -> (JobState, Vec<Effect>) {
    let steps = plan.steps.iter().map(initial_step).collect();
    let mask = super::masking::mask_record(plan, &input, &meta.inherited_mask);
    let mut job = JobState {
        id: meta.id,
        workspace: meta.workspace,
        task: plan.task_name.clone(),
        status: JobStatus::Pending,
        input,
        raw_input: meta.raw_input,
        output: Value::Null,
        error: None,
        created_at: now,
        started_at: None,
        completed_at: None,
        source_type: meta.source_type,
        source_id: meta.source_id,
        parent_job_id: meta.parent_job_id,
        parent_step_name: meta.parent_step_name,
        revision: meta.revision,
        depth: meta.depth,
        timeout_secs: plan.timeout.map(Duration::secs),
        source_job_id: meta.source_job_id,
        mode: plan.mode,
        pinned_worker: None,
        steps,
        mask: Some(mask),
    };
    let mut effects = Vec::new();
    Settle {
        plan,
        ctx,
        now,
        effects: &mut effects,
    }
    .run(&mut job);
    super::masking::protect(&mut job, plan, ctx.mask);
    (job, effects)
}

fn initial_step(planned: &PlannedStep) -> StepState {
    StepState {
        step_name: planned.name.clone(),
        action_name: planned.action_name.clone(),
        action_type: planned.action.type_name().to_owned(),
        runner: planned.runner_name().to_owned(),
        status: StepStatus::Pending,
        depends_on: planned.depends_on.clone(),
        input: None,
        output: Value::Null,
        error_message: None,
        attempt: 0,
        max_attempts: planned.max_attempts(),
        retry_at: None,
        retry_history: Vec::new(),
        ready_at: None,
        started_at: None,
        completed_at: None,
        suspended_at: None,
        approval_message: None,
        for_each: None,
        loop_source: None,
        loop_index: None,
        loop_total: None,
        child_job_id: None,
    }
}

/// Applies one event to `job`, then re-evaluates it and protects what it stores
/// ([`super::protect`]). On error nothing was changed.
pub fn apply(
    job: &mut JobState,
    plan: &JobPlan,
    event: Event,
    now: DateTime<Utc>,
    ctx: &EvalContext<'_>,
    jitter: Jitter<'_>,
) -> Result<Vec<Effect>, EventError> {
    if job.is_finished() {
        return Err(EventError::JobFinished);
    }
    let mut change = Change {
        plan,
        now,
        jitter,
        effects: Vec::new(),
    };
    change.event(job, event)?;
    let mut effects = change.effects;
    Settle {
        plan,
        ctx,
        now,
        effects: &mut effects,
    }
    .run(job);
    super::masking::protect(job, plan, ctx.mask);
    Ok(effects)
}

/// The direct consequence of one event, before re-evaluation.
struct Change<'a, 'j> {
    plan: &'a JobPlan,
    now: DateTime<Utc>,
    jitter: Jitter<'j>,
    effects: Vec<Effect>,
}

impl<'a> Change<'a, '_> {
    fn event(&mut self, job: &mut JobState, event: Event) -> Result<(), EventError> {
        let plan: &'a JobPlan = self.plan;
        let find = |job: &JobState, step: &str| find(plan, job, step);
        match event {
            Event::StepClaimed { step } => {
                let (position, planned) = find(job, &step)?;
                worker_step(planned, &job.steps[position])?;
                let state = &mut job.steps[position];
                expect_status(state, StepStatus::Ready, "ready")?;
                if state.retry_at.is_some_and(|at| at > self.now) {
                    return Err(EventError::NotDue(step));
                }
                state.status = StepStatus::Running;
                state.attempt += 1;
                state.retry_at = None;
                state.started_at = None;
                state.output = Value::Null;
                state.error_message = None;
            }
            Event::StepStarted { step } => {
                let (position, planned) = find(job, &step)?;
                worker_step(planned, &job.steps[position])?;
                expect_status(&job.steps[position], StepStatus::Running, "running")?;
                // Starting under a `cancelling` lease ends it at once (API §7.6): the executor
                // runs the attempt only if the step is still `running` afterwards.
                if job.is_halted() {
                    self.cancel_step(&mut job.steps[position]);
                    return Ok(());
                }
                job.steps[position].started_at = Some(self.now);
                mark_running(job, self.now);
            }
            Event::StepFinished { step, result } => {
                let (position, planned) = find(job, &step)?;
                worker_step(planned, &job.steps[position])?;
                expect_status(&job.steps[position], StepStatus::Running, "running")?;
                // A report without a prior start is accepted (API §7.6).
                mark_running(job, self.now);
                self.finish_attempt(job, position, planned, result);
            }
            Event::StepRejected { step, error } => {
                let (position, _) = find(job, &step)?;
                let status = job.steps[position].status;
                if !matches!(
                    status,
                    StepStatus::Ready | StepStatus::Running | StepStatus::Suspended
                ) {
                    return Err(EventError::wrong_status(
                        &step,
                        status,
                        "ready, running or suspended",
                    ));
                }
                self.log(format!("step '{step}' failed: {error}"));
                self.fail_step(&mut job.steps[position], error);
            }
            Event::StepTimedOut { step } => {
                let (position, planned) = find(job, &step)?;
                if planned.approval().is_some() {
                    expect_status(&job.steps[position], StepStatus::Suspended, "suspended")?;
                    let limit = planned
                        .timeout
                        .map_or_else(String::new, |d| format!(" after {d}"));
                    let error = format!("approval timed out{limit}");
                    self.log(format!("step '{step}' failed: {error}"));
                    self.fail_step(&mut job.steps[position], error);
                    return Ok(());
                }
                expect_status(&job.steps[position], StepStatus::Running, "running")?;
                if !runs_attempts(planned, &job.steps[position]) {
                    return Err(EventError::NotWorkerStep(step));
                }
                self.stop_attempt(&job.steps[position], planned);
                let limit = planned
                    .timeout
                    .map_or_else(String::new, |d| format!(" after {d}"));
                self.fail_attempt(
                    &mut job.steps[position],
                    planned,
                    format!("timed out{limit}"),
                );
            }
            Event::ChildJobCreated { step, child_job_id } => {
                let (position, planned) = find(job, &step)?;
                task_step(planned, &job.steps[position])?;
                let halted = job.is_halted();
                let state = &mut job.steps[position];
                if state.status != StepStatus::Running || state.child_job_id.is_some() {
                    return Err(EventError::wrong_status(
                        &step,
                        state.status,
                        "starting a child",
                    ));
                }
                state.child_job_id = Some(child_job_id);
                // The job was cancelled while the child was being created: cancel it at once.
                if halted {
                    self.cancel_step(state);
                    self.effects
                        .push(Effect::CancelChildJob { step, child_job_id });
                }
            }
            Event::ChildJobRejected { step, error } => {
                let (position, planned) = find(job, &step)?;
                task_step(planned, &job.steps[position])?;
                expect_status(&job.steps[position], StepStatus::Running, "running")?;
                if job.is_halted() {
                    self.cancel_step(&mut job.steps[position]);
                } else {
                    self.log(format!("step '{step}' failed: {error}"));
                    self.fail_step(&mut job.steps[position], error);
                }
            }
            Event::ChildJobFinished {
                step,
                child_job_id,
                status,
                output,
                error,
            } => {
                let (position, planned) = find(job, &step)?;
                task_step(planned, &job.steps[position])?;
                let state = &mut job.steps[position];
                if state.status != StepStatus::Running || state.child_job_id != Some(child_job_id) {
                    return Err(EventError::StaleChild {
                        step,
                        child: child_job_id,
                    });
                }
                let error = error.unwrap_or_else(|| format!("child job {}", status.as_str()));
                match status {
                    JobStatus::Completed => {
                        state.status = StepStatus::Completed;
                        state.output = output;
                        state.completed_at = Some(self.now);
                    }
                    JobStatus::Failed => self.fail_attempt(state, planned, error),
                    // Cancellation is never retried (WF §13.1).
                    _ => self.fail_step(state, error),
                }
            }
            Event::StepApproved { step, by, input } => {
                let (position, planned) = find(job, &step)?;
                approval_step(planned, &job.steps[position])?;
                expect_status(&job.steps[position], StepStatus::Suspended, "suspended")?;
                self.log(format!("step '{step}' approved by {by}"));
                let now = self.now;
                let state = &mut job.steps[position];
                state.status = StepStatus::Completed;
                state.output = serde_json::json!({
                    "approved": true,
                    "approved_by": by,
                    "approved_at": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    "message": state.approval_message,
                    "input": input,
                });
                state.completed_at = Some(now);
            }
            Event::StepDeclined { step, by, reason } => {
                let (position, planned) = find(job, &step)?;
                approval_step(planned, &job.steps[position])?;
                expect_status(&job.steps[position], StepStatus::Suspended, "suspended")?;
                let error = match reason.as_deref().map(str::trim) {
                    Some(reason) if !reason.is_empty() => format!("rejected by {by}: {reason}"),
                    _ => format!("rejected by {by}"),
                };
                self.log(format!("step '{step}' {error}"));
                self.fail_step(&mut job.steps[position], error);
            }
            Event::Tick => {}
            Event::CancelRequested { by } => {
                if job.is_halted() {
                    return Ok(());
                }
                let error =
                    by.map_or_else(|| "cancelled".to_owned(), |by| format!("cancelled by {by}"));
                self.log(format!("job {error}"));
                job.status = JobStatus::Cancelled;
                job.error = Some(error);
                self.halt(job);
            }
            Event::PinnedWorkerLost => {
                if job.is_halted() {
                    return Ok(());
                }
                let lost: Vec<usize> = (0..job.steps.len())
                    .filter(|&position| {
                        let state = &job.steps[position];
                        plan.step(state.flow_name())
                            .is_some_and(|planned| pinned_step_unfinished(planned, state))
                    })
                    .collect();
                if lost.is_empty() {
                    return Ok(());
                }
                self.log(format!(
                    "{PINNED_WORKER_LOST}: {} unfinished worker step(s) failed",
                    lost.len()
                ));
                for position in lost {
                    self.fail_step(&mut job.steps[position], PINNED_WORKER_LOST.to_owned());
                }
            }
            Event::JobTimedOut => {
                if job.is_halted() {
                    return Ok(());
                }
                // `timeout_secs` may hold a server default where the task sets none.
                let limit = job
                    .timeout_secs
                    .map_or_else(String::new, |secs| format!(" after {}", Duration(secs)));
                let error = format!("job timed out{limit}");
                self.log(format!("{error}; cancelling unfinished steps"));
                job.status = JobStatus::Failed;
                job.error = Some(error);
                self.halt(job);
            }
        }
        Ok(())
    }

    /// The attempt of a worker step ended (API §7.6).
    fn finish_attempt(
        &mut self,
        job: &mut JobState,
        position: usize,
        planned: &PlannedStep,
        result: AttemptResult,
    ) {
        let halted = job.is_halted();
        let state = &mut job.steps[position];
        let error = result
            .error_message
            .unwrap_or_else(|| "attempt failed".to_owned());
        // The lease was `cancelling`: the step is cancelled whatever the report says.
        if halted {
            return self.cancel_step(state);
        }
        match result.outcome {
            Outcome::Succeeded => {
                state.status = StepStatus::Completed;
                state.output = result.output;
                state.completed_at = Some(self.now);
            }
            Outcome::Failed => self.fail_attempt(state, planned, error),
            Outcome::FailedPermanently => self.fail_step(state, error),
            Outcome::Cancelled => {
                state.status = StepStatus::Cancelled;
                state.error_message = Some(error);
                state.completed_at = Some(self.now);
            }
        }
    }

    /// A retryable failure: back to `ready` after the delay while attempts remain (WF §13.1).
    fn fail_attempt(&mut self, state: &mut StepState, planned: &PlannedStep, error: String) {
        let Some(retry) = planned
            .retry
            .as_ref()
            .filter(|_| state.attempt < state.max_attempts)
        else {
            return self.fail_step(state, error);
        };
        let delay = retry_delay(retry, state.attempt, self.jitter);
        let retry_at = self.now + delay;
        let first_line = error.lines().next().unwrap_or_default().to_owned();
        state.retry_history.push(RetryRecord {
            attempt: state.attempt,
            started_at: state.started_at,
            completed_at: self.now,
            error_message: Some(error),
        });
        self.log(format!(
            "step '{}' attempt {} of {} failed: {first_line}; retrying in {}",
            state.step_name,
            state.attempt,
            state.max_attempts,
            format_delay(delay),
        ));
        state.status = StepStatus::Ready;
        state.retry_at = Some(retry_at);
        state.ready_at = Some(retry_at);
        state.started_at = None;
        state.error_message = None;
        state.output = Value::Null;
        if planned.child_task().is_none() {
            self.effects.push(Effect::StepReady {
                step: state.step_name.clone(),
                not_before: Some(retry_at),
            });
        }
    }

    /// A failure without retry.
    fn fail_step(&mut self, state: &mut StepState, error: String) {
        state.status = StepStatus::Failed;
        state.error_message = Some(error);
        state.retry_at = None;
        state.completed_at = Some(self.now);
    }

    fn cancel_step(&mut self, state: &mut StepState) {
        state.status = StepStatus::Cancelled;
        state.retry_at = None;
        state.completed_at = Some(self.now);
    }

    /// Asks the executor to stop whatever runs the step's current attempt.
    fn stop_attempt(&mut self, state: &StepState, planned: &PlannedStep) {
        if planned.child_task().is_some() {
            if let Some(child_job_id) = state.child_job_id {
                self.effects.push(Effect::CancelChildJob {
                    step: state.step_name.clone(),
                    child_job_id,
                });
            }
        } else {
            self.effects.push(Effect::StopStep {
                step: state.step_name.clone(),
            });
        }
    }

    /// API §8.4 step 2–3: unfinished steps are cancelled; running worker steps are stopped and
    /// become `cancelled` when the runner reports.
    fn halt(&mut self, job: &mut JobState) {
        for position in 0..job.steps.len() {
            let state = &job.steps[position];
            let Some(planned) = self.plan.step(state.flow_name()) else {
                continue;
            };
            let worker_attempt = state.status == StepStatus::Running
                && planned.action.runs_on_worker()
                && runs_attempts(planned, state);
            if worker_attempt {
                self.effects.push(Effect::StopStep {
                    step: state.step_name.clone(),
                });
                continue;
            }
            if state.status.is_terminal() {
                continue;
            }
            if state.status == StepStatus::Running && planned.child_task().is_some() {
                // A child still being created is cancelled when its creation is reported.
                if state.child_job_id.is_none() {
                    continue;
                }
                self.stop_attempt(state, planned);
            }
            self.cancel_step(&mut job.steps[position]);
        }
    }

    fn log(&mut self, line: String) {
        self.effects.push(Effect::Log { line });
    }
}

fn expect_status(
    state: &StepState,
    expected: StepStatus,
    name: &'static str,
) -> Result<(), EventError> {
    if state.status == expected {
        Ok(())
    } else {
        Err(EventError::wrong_status(
            &state.step_name,
            state.status,
            name,
        ))
    }
}

/// The step's state and its plan entry.
fn find<'p>(
    plan: &'p JobPlan,
    job: &JobState,
    step: &str,
) -> Result<(usize, &'p PlannedStep), EventError> {
    let position = job
        .position(step)
        .ok_or_else(|| EventError::UnknownStep(step.to_owned()))?;
    let planned = plan
        .step(job.steps[position].flow_name())
        .ok_or_else(|| EventError::UnknownStep(step.to_owned()))?;
    Ok((position, planned))
}

/// The error of the worker steps of a `local` job whose pinned worker is gone (API §7.9).
pub const PINNED_WORKER_LOST: &str = "pinned worker lost";

/// Whether [`Event::PinnedWorkerLost`] fails this step: an unfinished worker step, or a loop
/// of worker steps not expanded yet (an expanded one follows its instances).
fn pinned_step_unfinished(planned: &PlannedStep, state: &StepState) -> bool {
    planned.action.runs_on_worker()
        && !state.status.is_terminal()
        && state.status != StepStatus::Suspended
        && (runs_attempts(planned, state) || state.status == StepStatus::Pending)
}

/// Whether a `local` job whose pinned worker is gone has worker steps that
/// [`Event::PinnedWorkerLost`] would fail: the recovery sweep sends it only then.
pub fn pinned_worker_needed(job: &JobState, plan: &JobPlan) -> bool {
    !job.is_halted()
        && !job.is_finished()
        && job.steps.iter().any(|state| {
            plan.step(state.flow_name())
                .is_some_and(|planned| pinned_step_unfinished(planned, state))
        })
}

/// Whether the state runs attempts itself: a loop step never does, its instances do.
fn runs_attempts(planned: &PlannedStep, state: &StepState) -> bool {
    state.is_instance() || !planned.is_loop()
}

fn worker_step(planned: &PlannedStep, state: &StepState) -> Result<(), EventError> {
    if planned.action.runs_on_worker() && runs_attempts(planned, state) {
        Ok(())
    } else {
        Err(EventError::NotWorkerStep(state.step_name.clone()))
    }
}

fn approval_step(planned: &PlannedStep, state: &StepState) -> Result<(), EventError> {
    if planned.approval().is_some() && runs_attempts(planned, state) {
        Ok(())
    } else {
        Err(EventError::NotApprovalStep(state.step_name.clone()))
    }
}

fn task_step(planned: &PlannedStep, state: &StepState) -> Result<(), EventError> {
    if planned.child_task().is_some() && runs_attempts(planned, state) {
        Ok(())
    } else {
        Err(EventError::NotTaskStep(state.step_name.clone()))
    }
}
