//! Task `concurrency` and task-level `retry` in the server (WF §8, §13.1 [P2]).
//!
//! **Admission.** A job of a task with a `concurrency` limit is created queued
//! ([`Effect::JobQueued`]); after the commit that created it, and after the end of any job of
//! the task, one admission pass ([`Store::admit_queued`](crate::store::Store::admit_queued))
//! admits queued jobs into the task's free slots. The recovery sweep runs a pass for every task
//! with queued jobs, so a crash between a commit and its pass delays admission, never loses it.
//!
//! **Retries.** A job that ends `failed` with attempts left keeps its revision pinned and
//! stores when its retry is due (`retry_due_at`); its hooks and its parent wait. At that time
//! (a timer here, and the recovery sweep after a restart or on another server) the retry job
//! is inserted in the transaction that records it on the failed job ([`Event::RetryCreated`]),
//! so exactly one retry is made however many servers try. Cancelling the failed job during the
//! delay cancels the retry, and the chain ends with that job.

use std::collections::HashMap;

use chrono::Utc;
use uuid::Uuid;

use super::{Orchestrator, OrchestratorError, Result};
use crate::engine::{self, Effect, EvalContext, Event, JobMeta, JobState, RetryOf};
use crate::store::JobRouting;

impl Orchestrator {
    /// One admission pass for a task (see the module documentation); the effects of the jobs
    /// it admitted, for the caller to carry out.
    pub(super) async fn admit(&self, workspace: &str, task: &str) -> Result<Vec<(Uuid, Effect)>> {
        const BATCH: u32 = 100;
        let queued = self.inner.store.queued_jobs(workspace, task, BATCH).await?;
        let mut contexts = HashMap::new();
        for &id in &queued {
            match self.context_by_id(id).await {
                Ok(context) => {
                    contexts.insert(id, context);
                }
                // Its revision is gone: it cannot run, and it keeps its place in the queue.
                Err(OrchestratorError::Plan(_) | OrchestratorError::JobNotFound(_)) => break,
                Err(error) => return Err(error),
            }
        }
        // The head of the queue decides the limit: its revision's `concurrency`.
        let Some(limit) = queued
            .first()
            .and_then(|head| contexts.get(head))
            .and_then(|context| context.plan.concurrency)
        else {
            return Ok(Vec::new());
        };
        let templates = &self.inner.templates;
        let admitted = self
            .inner
            .store
            .admit_queued(
                workspace,
                task,
                limit,
                |id| contexts.contains_key(&id),
                |job| {
                    let Some(context) = contexts.get(&job.id) else {
                        return Ok(None);
                    };
                    let ctx = context.eval(templates);
                    let mut jitter = || rand::random::<f64>();
                    let event = Event::JobAdmitted;
                    // Cancelled or admitted meanwhile: passed over, nothing changed.
                    Ok::<_, OrchestratorError>(
                        engine::apply(job, &context.plan, event, Utc::now(), &ctx, &mut jitter)
                            .ok(),
                    )
                },
            )
            .await?;
        let mut effects = Vec::new();
        for (more, job) in admitted {
            tracing::debug!(job_id = %job.id, task, "job admitted");
            self.tick_when_a_task_retry_is_due(&job);
            effects.extend(more.into_iter().map(|effect| (job.id, effect)));
        }
        Ok(effects)
    }

    /// Creates the retry job of a failed job whose retry is due (WF §13.1): same input,
    /// revision and parent, `source_type: retry`, `source_id` the failed job, the chain's first
    /// job as `retry_of_job_id` and the next attempt. `None` when no retry is pending any more
    /// (made by another server, or cancelled).
    pub async fn create_retry(&self, job_id: Uuid) -> Result<Option<Uuid>> {
        let job = self.stored_job(job_id).await?;
        if !job.retry_pending() {
            return Ok(None);
        }
        let context = self.context_of(&job)?;
        let meta = JobMeta {
            source_job_id: None,
            retry_of: Some(RetryOf {
                first_job_id: job.chain_id(),
                attempt: job.retry_attempt + 1,
            }),
            id: Uuid::now_v7(),
            workspace: job.workspace.clone(),
            revision: job.revision.clone(),
            source_type: "retry".to_owned(),
            source_id: Some(job.id.to_string()),
            parent_job_id: job.parent_job_id,
            parent_step_name: job.parent_step_name.clone(),
            depth: job.depth,
            raw_input: job.raw_input.clone(),
            // The retry masks what the job it repeats does.
            inherited_mask: engine::record_of(&job, &context.plan).values,
        };
        let prepared = self.new_job(&context.revision, &context.plan, meta, job.input.clone());
        let retry_id = prepared.job.id;
        let new_jobs: Vec<(JobState, JobRouting)> = vec![(prepared.job, prepared.routing)];
        let templates = &self.inner.templates;
        let changed = self
            .inner
            .store
            .with_job_creating(job_id, |job| {
                let ctx: EvalContext<'_> = context.eval(templates);
                let mut jitter = || rand::random::<f64>();
                let event = Event::RetryCreated {
                    retry_job_id: retry_id,
                };
                engine::apply(job, &context.plan, event, Utc::now(), &ctx, &mut jitter)
                    .map(|effects| (effects, new_jobs))
                    .map_err(OrchestratorError::from)
            })
            .await;
        let effects = match changed {
            Ok((effects, _)) => effects,
            Err(OrchestratorError::Event(_)) => return Ok(None),
            Err(error) => return Err(error),
        };
        // The pin the failed job kept for its retry passes to the retry.
        self.inner.workspaces.retain(&job.workspace, &job.revision);
        self.inner.workspaces.release(&job.workspace, &job.revision);
        let mut all: Vec<(Uuid, Effect)> = effects.into_iter().map(|e| (job_id, e)).collect();
        all.extend(prepared.effects.into_iter().map(|e| (retry_id, e)));
        tracing::info!(%job_id, %retry_id, attempt = job.retry_attempt + 1, "job retried");
        self.carry_out(all).await;
        Ok(Some(retry_id))
    }

    /// Creates the retry of `job` when it is due, unless something else (the recovery sweep,
    /// another server) made it first.
    pub(super) fn retry_when_due(&self, job: &JobState) {
        let Some(due) = job.retry_due_at else {
            return;
        };
        let orchestrator = self.clone();
        let job_id = job.id;
        tokio::spawn(async move {
            tokio::time::sleep((due - Utc::now()).to_std().unwrap_or_default()).await;
            if let Err(error) = orchestrator.create_retry(job_id).await {
                tracing::warn!(%job_id, %error, "creating a task retry failed");
            }
        });
    }

    /// The job of a retry chain that runs now: the last one made. A chain's jobs are found
    /// through its first job's id, which is what a parent step knows.
    pub(super) async fn latest_of_chain(&self, first: Uuid) -> Result<Uuid> {
        let chain = self.inner.store.retry_chain(first).await?;
        Ok(chain.last().map_or(first, |link| link.job_id))
    }

    /// After a restart: the failed jobs waiting for a retry keep their revisions pinned, and
    /// their retries are made when due.
    pub(super) async fn resume_retries(&self) -> Result<()> {
        for (job_id, _) in self.inner.store.pending_retries().await? {
            if let Some(job) = self.inner.store.get_job(job_id).await? {
                self.inner.workspaces.retain(&job.workspace, &job.revision);
                self.retry_when_due(&job);
            }
        }
        Ok(())
    }
}
