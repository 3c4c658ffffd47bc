//! Carrying out the engine's effects after a change has committed: wake claimers, create and
//! cancel child jobs, write `_server` log lines, and finish jobs (log archive, hooks, parent
//! step, revision pin).
//!
//! A change to one job can cause changes to others (a child's end moves its parent's step);
//! each is its own transaction, queued here in order. The engine refuses stale or repeated
//! reports, so a crash between two of them is repaired by the recovery sweep, not corrupted.

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::Utc;
use uuid::Uuid;

use super::{JobSource, Orchestrator, OrchestratorError, Result};
use crate::engine::{self, Effect, Event, HookTarget, JobMeta, JobState, JobStatus, StepStatus};
use crate::runner::spec::{LogLine, Stream};

impl Orchestrator {
    /// A task step waiting out a retry delay is dispatched by a `Tick` once the delay is over
    /// (engine step 4): one is applied then, instead of at the next recovery sweep, which could
    /// be `recovery.sweep_interval_secs` late. The sweep still covers a restart in between.
    pub(super) fn tick_when_a_task_retry_is_due(&self, job: &JobState) {
        let due = job
            .steps
            .iter()
            // Task steps run on no worker; a worker step's retry is claimed, not dispatched.
            .filter(|step| step.status == StepStatus::Ready && step.runner == "none")
            .filter_map(|step| step.retry_at)
            .min();
        let Some(due) = due else {
            return;
        };
        let orchestrator = self.clone();
        let job_id = job.id;
        tokio::spawn(async move {
            tokio::time::sleep((due - Utc::now()).to_std().unwrap_or_default()).await;
            match orchestrator.apply(job_id, Event::Tick).await {
                // Finished or moved on meanwhile: nothing to dispatch.
                Ok(_) | Err(OrchestratorError::Event(_) | OrchestratorError::JobNotFound(_)) => {}
                Err(error) => tracing::warn!(%job_id, %error, "retry tick failed"),
            }
        });
    }

    /// Carries out effects (and the effects they cause) in order. Failures are logged on the
    /// job concerned and in the server log; they never undo the change that caused them.
    pub(super) async fn carry_out(&self, effects: Vec<(Uuid, Effect)>) {
        let mut queue: VecDeque<(Uuid, Effect)> = effects.into();
        while let Some((job_id, effect)) = queue.pop_front() {
            match self.effect(job_id, effect).await {
                Ok(more) => queue.extend(more),
                Err(error) => {
                    tracing::error!(%job_id, %error, "orchestration effect failed");
                    self.server_line(job_id, &format!("orchestration error: {error}"))
                        .await;
                }
            }
        }
    }

    async fn effect(&self, job_id: Uuid, effect: Effect) -> Result<Vec<(Uuid, Effect)>> {
        match effect {
            Effect::StepReady { .. } => {
                self.wake_claimers();
                Ok(Vec::new())
            }
            Effect::StartChildJob {
                step,
                task,
                input,
                depth,
            } => self.start_child(job_id, step, &task, input, depth).await,
            Effect::CancelChildJob { child_job_id, .. } => {
                let event = Event::CancelRequested {
                    by: Some(format!("parent job {job_id}")),
                };
                // The parent knows a retried child by its chain's first job (WF §13.1).
                let current = self.latest_of_chain(child_job_id).await?;
                match self.apply_only(current, event).await {
                    Ok((effects, _)) => Ok(effects),
                    // A child that already ended needs no cancelling.
                    Err(OrchestratorError::Event(_)) => Ok(Vec::new()),
                    Err(error) => Err(error),
                }
            }
            // The store turned the step's lease `cancelling` in the same transaction; the worker
            // learns it from its next heartbeat or log batch.
            Effect::StopStep { .. } => Ok(Vec::new()),
            Effect::Log { line } => {
                self.server_line(job_id, &line).await;
                Ok(Vec::new())
            }
            Effect::StepSuspended { step, message } => {
                let job = self.stored_job(job_id).await?;
                Ok(self.fire_suspended_hooks(&job, &step, &message).await)
            }
            Effect::JobFinished { status } => self.job_finished(job_id, status).await,
            Effect::JobQueued => {
                let job = self.stored_job(job_id).await?;
                self.admit(&job.workspace, &job.task).await
            }
            Effect::RetryCancelled => {
                let job = self.stored_job(job_id).await?;
                // The chain ends with this job: its hooks fire now, not when it failed.
                let mut effects = self.fire_hooks(&job).await;
                effects.extend(self.chain_finished(&job).await?);
                Ok(effects)
            }
        }
    }

    async fn start_child(
        &self,
        parent: Uuid,
        step: String,
        task: &str,
        input: serde_json::Value,
        depth: u32,
    ) -> Result<Vec<(Uuid, Effect)>> {
        let parent_job = self.stored_job(parent).await?;
        let (parent_plan, revision) = self.plan_for(&parent_job)?;
        // The child masks what its parent does: values of the parent's input may reach it.
        let inherited_mask = engine::record_of(&parent_job, &parent_plan).values;
        let meta = JobMeta {
            source_job_id: None,
            retry_of: None,
            id: Uuid::now_v7(),
            workspace: parent_job.workspace.clone(),
            revision: parent_job.revision.clone(),
            source_type: "task".to_owned(),
            source_id: Some(format!("{parent}/{step}")),
            parent_job_id: Some(parent),
            parent_step_name: Some(step.clone()),
            depth,
            raw_input: input.clone(),
            inherited_mask,
        };
        // The child is stored in the transaction that records it on the parent: its steps are
        // claimable from then on, so a child stored first could finish before its parent knew
        // it, and its result would be refused as stale (a loop instance left `running`).
        let (event, child) = match self.prepare_job(&revision, task, meta, &input) {
            Ok(prepared) => (
                Event::ChildJobCreated {
                    step,
                    child_job_id: prepared.job.id,
                },
                Some(prepared),
            ),
            Err(OrchestratorError::InvalidInput(errors)) => (
                Event::ChildJobRejected {
                    step,
                    error: errors
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                },
                None,
            ),
            Err(OrchestratorError::Plan(error)) => (
                Event::ChildJobRejected {
                    step,
                    error: error.to_string(),
                },
                None,
            ),
            Err(other) => return Err(other),
        };
        let (new_jobs, child_effects) = match child {
            Some(prepared) => {
                self.inner
                    .workspaces
                    .retain(&prepared.job.workspace, &prepared.job.revision);
                let id = prepared.job.id;
                let effects: Vec<_> = prepared.effects.into_iter().map(|e| (id, e)).collect();
                (vec![(prepared.job, prepared.routing)], effects)
            }
            None => (Vec::new(), Vec::new()),
        };
        let child_revision = new_jobs
            .first()
            .map(|(job, _)| (job.workspace.clone(), job.revision.clone()));
        let parent_effects = match self.apply_creating(parent, event, new_jobs).await {
            Ok((effects, _)) => effects,
            Err(error) => {
                // Nothing was stored: the child's revision is not in use after all.
                if let Some((workspace, revision)) = child_revision {
                    self.inner.workspaces.release(&workspace, &revision);
                }
                return Err(error);
            }
        };
        // The parent's step must be `running` with its child before the child's own steps
        // report back.
        let mut ordered = parent_effects;
        ordered.extend(child_effects);
        Ok(ordered)
    }

    async fn job_finished(&self, job_id: Uuid, _status: JobStatus) -> Result<Vec<(Uuid, Effect)>> {
        let job = self.stored_job(job_id).await?;
        // The job's slot under its task's `concurrency` is free (WF §8).
        let limited = self
            .context_of(&job)
            .is_ok_and(|context| context.plan.concurrency.is_some());
        let retry_pending = job.retry_pending();
        // Hooks first: a refused hook leaves a line in this job's log, and a finished log tells
        // readers (the job view's `hooks_fired`, the log stream's end) that the job's hook jobs
        // all exist (issue #15). While a task-level retry is to come, the chain goes on: hooks
        // and the parent wait for its last job (WF §13.1).
        let mut effects = if retry_pending {
            Vec::new()
        } else {
            self.fire_hooks(&job).await
        };
        let logs = self.inner.logs.clone();
        // Archiving compresses the whole log: off the async threads.
        let archived = tokio::task::spawn_blocking(move || logs.finish(job_id)).await;
        if let Ok(Err(error)) = archived {
            tracing::warn!(%job_id, %error, "cannot archive the job log");
        }
        if retry_pending {
            self.retry_when_due(&job);
            self.inner.contexts.remove(job_id);
        } else {
            effects.extend(self.chain_finished(&job).await?);
        }
        if limited {
            effects.extend(self.admit(&job.workspace, &job.task).await?);
        }
        Ok(effects)
    }

    /// The last job of a chain (a job without task-level retry is a chain of one) finished,
    /// its hooks fired: report it to the parent step and release its revision.
    async fn chain_finished(&self, job: &JobState) -> Result<Vec<(Uuid, Effect)>> {
        let status = job.status;
        let mut effects = Vec::new();
        if job.source_type == "hook"
            && status != JobStatus::Completed
            && let Some(original) = hooked_job(job)
        {
            let line = format!(
                "hook job {} ({}) ended {}: {}",
                job.id,
                job.task,
                status.as_str(),
                job.error.as_deref().unwrap_or("no error message")
            );
            self.server_line(original, &line).await;
        }
        if let (Some(parent), Some(step)) = (job.parent_job_id, job.parent_step_name.clone()) {
            let event = Event::ChildJobFinished {
                step,
                child_job_id: job.chain_id(),
                status,
                output: job.output.clone(),
                error: job.error.clone(),
            };
            match self.apply_only(parent, event).await {
                Ok((more, _)) => effects.extend(more),
                // The parent moved on (cancelled, timed out): the child's result is not needed.
                Err(OrchestratorError::Event(_)) => {}
                Err(error) => return Err(error),
            }
        }
        self.inner.workspaces.release(&job.workspace, &job.revision);
        self.inner.contexts.remove(job.id);
        Ok(effects)
    }

    /// Creates the hook jobs of a finished job (WF §14); refused hooks leave a `_server` line.
    async fn fire_hooks(&self, job: &engine::JobState) -> Vec<(Uuid, Effect)> {
        let Ok(context) = self.context_of(job) else {
            return Vec::new();
        };
        let prepared = engine::prepare_hooks(
            &context.revision.def,
            job,
            &context.plan,
            &context.eval(&self.inner.templates),
        );
        self.create_hook_jobs(job, &context, prepared).await
    }

    /// Creates the `on_suspended` hook jobs of a job whose `step` became `suspended` (WF §14).
    async fn fire_suspended_hooks(
        &self,
        job: &engine::JobState,
        step: &str,
        message: &str,
    ) -> Vec<(Uuid, Effect)> {
        let Ok(context) = self.context_of(job) else {
            return Vec::new();
        };
        let prepared = engine::prepare_suspended_hooks(
            &context.revision.def,
            job,
            &context.plan,
            &context.eval(&self.inner.templates),
            step,
            message,
        );
        self.create_hook_jobs(job, &context, prepared).await
    }

    async fn create_hook_jobs(
        &self,
        job: &engine::JobState,
        context: &super::plans::JobContext,
        prepared: Vec<Result<engine::PreparedHook, engine::RefusedHook>>,
    ) -> Vec<(Uuid, Effect)> {
        let (plan, revision) = (&context.plan, &context.revision);
        // A hook job masks what the job it reports on does (`hook.input`, `hook.output`).
        let inherited_mask = engine::record_of(job, plan).values;
        let mut effects = Vec::new();
        for hook in prepared {
            let hook = match hook {
                Ok(hook) => hook,
                Err(refused) => {
                    let line =
                        format!("hook {} was not created: {}", refused.label, refused.reason);
                    self.server_line(job.id, &line).await;
                    continue;
                }
            };
            let meta = JobMeta {
                source_job_id: None,
                retry_of: None,
                id: Uuid::now_v7(),
                workspace: job.workspace.clone(),
                revision: job.revision.clone(),
                source_type: "hook".to_owned(),
                source_id: Some(format!("{}/{}", job.id, hook.event_key)),
                parent_job_id: None,
                parent_step_name: None,
                depth: job.depth,
                raw_input: hook.input.clone(),
                inherited_mask: inherited_mask.clone(),
            };
            let created = match hook.target {
                HookTarget::Task(task) => self.insert_job(revision, &task, meta, &hook.input).await,
                HookTarget::SingleStep(plan) => {
                    self.store_new_job(revision, &plan, meta, hook.input.clone())
                        .await
                }
            };
            match created {
                Ok((hook_job, more)) => {
                    self.inner
                        .workspaces
                        .retain(&hook_job.workspace, &hook_job.revision);
                    effects.extend(more);
                }
                Err(error) => {
                    let line = format!("hook {} was not created: {error}", hook.label);
                    self.server_line(job.id, &line).await;
                }
            }
        }
        effects
    }

    /// Appends a `_server` line (stream `stderr`, attempt null) to a job's log, masked with the
    /// job's full mask set.
    pub(super) async fn server_line(&self, job_id: Uuid, line: &str) {
        let (mask, text) = match self.context_by_id(job_id).await {
            Ok(context) => (Arc::clone(&context.mask), line.to_owned()),
            // Without its revision a job's secrets cannot be known: the line says that there
            // was something to say, and nothing more (fail closed).
            Err(_) => (Arc::default(), crate::mask::MASK.to_owned()),
        };
        let line = LogLine {
            ts: Utc::now(),
            stream: Stream::Stderr,
            step: crate::logs::SERVER_STEP.to_owned(),
            attempt: None,
            line: text,
        };
        let logs = self.inner.logs.clone();
        let written =
            tokio::task::spawn_blocking(move || logs.append(job_id, &[line], &mask)).await;
        if let Ok(Err(error)) = written {
            tracing::warn!(%job_id, %error, "cannot write a server log line");
        }
    }

    pub(super) fn wake_claimers(&self) {
        {
            let mut hint = self
                .inner
                .retry_hint
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            hint.generation += 1;
            hint.next = None;
        }
        self.inner.ready.notify_waiters();
    }

    /// Wakes this server's long-polling claims when another server on the same database made a
    /// step ready (PostgreSQL `LISTEN`), until `shutdown`; returns at once on SQLite.
    pub async fn run_wakeups(self, shutdown: tokio_util::sync::CancellationToken) {
        let store = self.inner.store.clone();
        store.watch_ready(|| self.wake_claimers(), shutdown).await;
    }
}

/// The original job of a hook job, from its `source_id` (`<job id>/<event key>`).
fn hooked_job(job: &engine::JobState) -> Option<Uuid> {
    let source = job.source_id.as_deref()?;
    let (id, _) = source.split_once('/')?;
    id.parse().ok()
}

impl JobSource {
    /// A job started by a signed-in user (API §2.4 `user`).
    pub fn user(email: &str) -> Self {
        JobSource {
            source_type: "user".to_owned(),
            source_id: Some(email.to_owned()),
        }
    }
}
