//! The worker side of the orchestrator (API §7): registration, heartbeats, long-poll claims,
//! and the start / log / complete reports, each fenced by its lease. The embedded worker calls
//! these directly; the HTTP routes of `/worker` call the same functions.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Utc;
use uuid::Uuid;

use super::{Orchestrator, OrchestratorError, Result};
use crate::engine::{self, Event, StepStatus};
use crate::logs::BatchKey;
use crate::runner::spec::{AttemptResult, LogLine, RunnerKind, StepSpec};
use crate::store::{Lease, LeaseKey, LeaseStatus, LeaseUse, Worker, WorkerRegistration};
use crate::workflow::model::TaskMode;

/// A step handed to a worker: its lease and what to run.
#[derive(Debug, Clone)]
pub struct ClaimedStep {
    pub lease: Lease,
    pub spec: StepSpec,
    /// The job's pinned workspace revision: the embedded worker copies the server's snapshot
    /// of it, remote workers download its tarball (API §7.7).
    pub revision: String,
    /// For pod steps: the credential their pod fetches the revision's tarball with (API
    /// §7.3), valid for that revision while the lease lives.
    pub workspace_token: Option<String>,
    /// `local`: the job is pinned to this worker, and its steps share one working directory
    /// that the worker keeps until a heartbeat releases the job (API §7.9).
    pub mode: TaskMode,
}

/// The answer to a heartbeat (API §7.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Heartbeat {
    /// Leases whose process the worker must stop and report `cancelled: true`.
    pub cancel: Vec<Uuid>,
    /// Leases the server no longer honours: kill, do not report.
    pub unknown: Vec<Uuid>,
    /// Of the `pinned_jobs` listed, those whose working directory may go (API §7.9).
    pub release_jobs: Vec<Uuid>,
}

/// What a `complete` report led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    Applied,
    /// The same report was already applied under this lease; nothing changed (API §7.4).
    Duplicate,
}

/// The answer to a log batch: whether the worker must stop the step (API §7.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogAck {
    pub cancel: bool,
}

/// What a worker's `start` report led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOutcome {
    Started,
    /// The job was cancelled between claim and start: do not run the step (API §7.6, 409).
    Cancelled,
}

impl Orchestrator {
    pub async fn register_worker(&self, registration: &WorkerRegistration) -> Result<Worker> {
        Ok(self
            .inner
            .store
            .register_worker(registration, Utc::now())
            .await?)
    }

    /// Renews the worker's leases; answers which to cancel and which are unknown, and which of
    /// the `local` jobs whose directories it keeps it may release (API §7.2, §7.9).
    pub async fn heartbeat(
        &self,
        worker_id: Uuid,
        leases: &[Uuid],
        pinned_jobs: &[Uuid],
    ) -> Result<Heartbeat> {
        let store = &self.inner.store;
        let reply = store
            .heartbeat(worker_id, leases, Utc::now(), self.inner.settings.lease_ttl)
            .await?;
        let release_jobs = store.released_jobs(worker_id, pinned_jobs).await?;
        Ok(Heartbeat {
            cancel: reply.cancel,
            unknown: reply.unknown,
            release_jobs,
        })
    }

    /// Claims the next step the worker may run, waiting up to `wait` for one to become ready
    /// (long poll, API §7.3). Steps whose templates or input fail at claim are failed and the
    /// search goes on (WF §10).
    pub async fn claim(&self, worker_id: Uuid, wait: StdDuration) -> Result<Option<ClaimedStep>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.inner.ready.notified();
            tokio::pin!(notified);
            // Register interest before looking, so a step made ready meanwhile wakes us.
            notified.as_mut().enable();
            let looked_at = Utc::now();
            if let Some(claimed) = self.try_claim(worker_id).await? {
                return Ok(Some(claimed));
            }
            // Nothing wakes claimers when a retry delay ends: look again when the earliest one
            // does, or a retry would wait for the next claim. Delays that ended since the look
            // above count too, so none is missed in between.
            let wake_at = match self.next_retry_at(looked_at).await? {
                Some(at) => {
                    let delay = (at - Utc::now()).to_std().unwrap_or_default();
                    deadline.min(tokio::time::Instant::now() + delay)
                }
                None => deadline,
            };
            if tokio::time::timeout_at(wake_at, notified).await.is_err() && wake_at >= deadline {
                return Ok(None);
            }
        }
    }

    /// The earliest end of a retry delay after `after`, from what the claims already learnt
    /// when nothing woke them since, else from the database.
    async fn next_retry_at(
        &self,
        after: chrono::DateTime<Utc>,
    ) -> Result<Option<chrono::DateTime<Utc>>> {
        let lock = || {
            self.inner
                .retry_hint
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        let hint = *lock();
        match hint.next {
            Some(None) => return Ok(None),
            Some(Some(at)) if at > after => return Ok(Some(at)),
            _ => {}
        }
        let next = self.inner.store.next_retry_at(after).await?;
        let mut current = lock();
        if current.generation == hint.generation {
            current.next = Some(next);
        }
        Ok(next)
    }

    async fn try_claim(&self, worker_id: Uuid) -> Result<Option<ClaimedStep>> {
        let worker =
            self.inner
                .store
                .get_worker(worker_id)
                .await?
                .ok_or(OrchestratorError::Store(
                    crate::store::StoreError::WorkerNotFound(worker_id),
                ))?;
        let mut effects = Vec::new();
        let templates = &self.inner.templates;
        let now = Utc::now();
        let claim = self
            .inner
            .store
            .claim(&worker, now, self.inner.settings.lease_ttl, |job, step| {
                let context = self.context_of(job)?;
                let (plan, revision) = (&context.plan, &context.revision);
                let ctx = context.eval(templates);
                let mut jitter = || rand::random::<f64>();
                let claimed = Event::StepClaimed {
                    step: step.to_owned(),
                };
                let mut applied = engine::apply(job, plan, claimed, now, &ctx, &mut jitter)?;
                match engine::prepare_attempt(job, plan, step, &ctx) {
                    Ok(spec) => {
                        engine::record_attempt_input(job, plan, &spec);
                        effects.extend(applied.drain(..).map(|e| (job.id, e)));
                        Ok(Some((spec, Arc::clone(revision))))
                    }
                    Err(error) => {
                        let rejected = Event::StepRejected {
                            step: step.to_owned(),
                            error,
                        };
                        applied.extend(engine::apply(job, plan, rejected, now, &ctx, &mut jitter)?);
                        effects.extend(applied.drain(..).map(|e| (job.id, e)));
                        Ok::<_, OrchestratorError>(None)
                    }
                }
            })
            .await?;
        self.carry_out(effects).await;
        Ok(claim.map(|claim| {
            let (spec, revision) = claim.value;
            let workspace_token = (spec.runner == RunnerKind::Pod).then(|| {
                self.inner.settings.workspace_tokens.mint(
                    &claim.lease,
                    &spec.workspace,
                    &revision.revision,
                )
            });
            ClaimedStep {
                lease: claim.lease,
                spec,
                revision: revision.revision.clone(),
                workspace_token,
                mode: claim.job.mode,
            }
        }))
    }

    /// Whether `token` grants the tarball of `revision` of `workspace` now (API §7.3): signed
    /// by this server's key, naming that workspace and revision, and its lease still the
    /// step's current one, `active` or `cancelling`. The reason when not, for the 401.
    pub async fn check_workspace_token(
        &self,
        token: &str,
        workspace: &str,
        revision: Option<&str>,
    ) -> std::result::Result<(), &'static str> {
        let grant = self
            .inner
            .settings
            .workspace_tokens
            .verify(token)
            .ok_or("invalid workspace token")?;
        if grant.workspace != workspace || revision != Some(grant.revision.as_str()) {
            return Err("the workspace token is for another revision");
        }
        match self.inner.store.check_lease(&grant.lease_key()).await {
            Ok(_) => Ok(()),
            Err(_) => Err("the workspace token's lease has ended"),
        }
    }

    /// The worker began running a claimed step.
    pub async fn start_step(&self, key: &LeaseKey) -> Result<StartOutcome> {
        let templates = &self.inner.templates;
        let context = self.context_by_id(key.job_id).await?;
        let plan = &context.plan;
        let (effects, job, lease) = self
            .inner
            .store
            .with_lease(key, LeaseUse::Start, |job, lease| {
                let ctx = context.eval(templates);
                let mut jitter = || rand::random::<f64>();
                let event = Event::StepStarted {
                    step: lease.step_name.clone(),
                };
                engine::apply(job, plan, event, Utc::now(), &ctx, &mut jitter)
                    .map_err(OrchestratorError::from)
            })
            .await?;
        let id = job.id;
        self.carry_out(effects.into_iter().map(|e| (id, e)).collect())
            .await;
        let running = job
            .step(&key.step_name)
            .is_some_and(|step| step.status == StepStatus::Running);
        if lease.state == LeaseStatus::Cancelling || !running {
            Ok(StartOutcome::Cancelled)
        } else {
            Ok(StartOutcome::Started)
        }
    }

    /// Stores a batch of log lines of a running attempt (API §7.6); a retried batch is stored
    /// once. The answer says whether the step is being cancelled. Lines are attributed to the
    /// lease's step and attempt whatever the worker wrote in them.
    pub async fn append_logs(
        &self,
        key: &LeaseKey,
        offset: u64,
        mut lines: Vec<LogLine>,
    ) -> Result<LogAck> {
        let lease = self.inner.store.check_lease(key).await?;
        for line in &mut lines {
            line.step.clone_from(&lease.step_name);
            line.attempt = Some(lease.attempt);
        }
        let mask = Arc::clone(&self.context_by_id(key.job_id).await?.mask);
        let batch = BatchKey {
            step: lease.step_name.clone(),
            attempt: lease.attempt,
            offset,
        };
        let logs = self.inner.logs.clone();
        let job_id = key.job_id;
        let bytes = lines.iter().map(|line| line.line.len()).sum();
        let count = lines.len();
        tokio::task::spawn_blocking(move || logs.append_batch(job_id, &batch, &lines, &mask))
            .await
            .map_err(|error| OrchestratorError::Logs(crate::logs::LogError::Task(error)))??;
        // A batch sent again after a lost answer counts again: these count what arrived.
        self.inner.store.metrics().log_lines(count, bytes);
        Ok(LogAck {
            cancel: lease.state == LeaseStatus::Cancelling,
        })
    }

    /// The attempt ended (API §7.6): the engine decides what follows, fenced by the lease. A
    /// retried report identical to the one that ended the lease is a [`Completion::Duplicate`].
    pub async fn complete_step(&self, key: &LeaseKey, result: AttemptResult) -> Result<Completion> {
        let templates = &self.inner.templates;
        let context = self.context_by_id(key.job_id).await?;
        let plan = &context.plan;
        // The digest is of the report as sent, so a retried identical report still matches.
        let digest = digest_of(&result);
        let result = result.within_output_limit();
        let applied = self
            .inner
            .store
            .with_lease(
                key,
                LeaseUse::Complete {
                    digest: Some(digest.clone()),
                },
                |job, lease| {
                    let ctx = context.eval(templates);
                    let mut jitter = || rand::random::<f64>();
                    let event = Event::StepFinished {
                        step: lease.step_name.clone(),
                        result,
                    };
                    engine::apply(job, plan, event, Utc::now(), &ctx, &mut jitter)
                        .map_err(OrchestratorError::from)
                },
            )
            .await;
        let (effects, job, _) = match applied {
            Ok(applied) => applied,
            Err(OrchestratorError::StaleLease {
                state: Some(LeaseStatus::Ended),
                report_digest: Some(recorded),
            }) if recorded == digest => return Ok(Completion::Duplicate),
            Err(error) => return Err(error),
        };
        let id = job.id;
        self.carry_out(effects.into_iter().map(|e| (id, e)).collect())
            .await;
        Ok(Completion::Applied)
    }
}

/// Identifies a `complete` report so a retried identical one is answered `duplicate`.
fn digest_of(result: &AttemptResult) -> String {
    use sha2::{Digest, Sha256};
    let text = serde_json::to_string(result).unwrap_or_default();
    hex::encode(Sha256::digest(text.as_bytes()))
}
