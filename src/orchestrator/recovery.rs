//! The recovery loop (API §8.5): what the server does on its own as time passes — workers that
//! stopped heartbeating, leases that expired, job timeouts, task-step timeouts and retry delays.
//! Every action is one transaction through the engine; all state is in the database, so a
//! restarted server continues where it stopped.

use chrono::{DateTime, TimeDelta, Utc};
use tokio_util::sync::CancellationToken;

use super::{Orchestrator, OrchestratorError, Result};
use crate::engine::{self, Event, JobState, StepStatus};
use crate::runner::spec::{AttemptResult, Outcome};
use crate::store::{LeaseStatus, WorkerStatus};

/// The error of an attempt whose lease expired (API §8.5 item 2).
const LOST_LEASE: &str = "worker lost (lease expired)";
/// The error of an attempt whose worker deregistered while holding its lease (API §7.2).
const DEREGISTERED: &str = "worker lost (deregistered)";

/// What one sweep did, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sweep {
    pub inactive_workers: usize,
    pub expired_leases: usize,
    pub timed_out_jobs: usize,
    /// Ready steps failed because no active worker could run them (item 6).
    pub unmatched_steps: usize,
    /// `local` jobs whose pinned worker was lost: their worker steps failed (API §7.9).
    pub lost_pins: usize,
    pub events: usize,
}

impl Orchestrator {
    /// One sweep at `now`.
    pub async fn recovery_tick(&self, now: DateTime<Utc>) -> Result<Sweep> {
        let mut sweep = Sweep {
            inactive_workers: self
                .inner
                .store
                .mark_inactive_workers(now, self.inner.settings.heartbeat_timeout)
                .await?
                .len(),
            ..Sweep::default()
        };
        // Before the leases expire: a lost pinned worker's steps fail as `pinned worker lost`,
        // not as a retryable lost lease that no other worker could take anyway.
        sweep.lost_pins = self.fail_lost_pins().await?;
        for lease in self.inner.store.expired_leases(now).await? {
            if self.expire(lease.lease_id, now, LOST_LEASE).await? {
                sweep.expired_leases += 1;
                self.inner.store.metrics().leases_expired(1);
            }
        }
        for job_id in self.inner.store.unfinished_jobs().await? {
            let Some(job) = self.inner.store.get_job(job_id).await? else {
                continue;
            };
            let Ok(context) = self.context_of(&job) else {
                continue;
            };
            let plan = &context.plan;
            let mut events = Vec::new();
            if !job.is_halted() && engine::job_deadline(&job).is_some_and(|at| at <= now) {
                events.push(Event::JobTimedOut);
                sweep.timed_out_jobs += 1;
            } else {
                if job.next_retry_at().is_some_and(|at| at <= now) {
                    events.push(Event::Tick);
                }
                for step in &job.steps {
                    // Approval timeouts (item 4): counted from the suspension, no grace.
                    if step.status == StepStatus::Suspended {
                        if engine::step_deadline(&job, plan, &step.step_name)
                            .is_some_and(|at| at <= now)
                        {
                            events.push(Event::StepTimedOut {
                                step: step.step_name.clone(),
                            });
                        }
                        continue;
                    }
                    if step.status != StepStatus::Running {
                        continue;
                    }
                    // A task step times out at its deadline; a worker step is the worker's to
                    // stop, and the server steps in only `step_timeout_grace` later (item 3).
                    let grace = if step.child_job_id.is_some() {
                        TimeDelta::zero()
                    } else if step.runner != "none" {
                        self.inner.settings.step_timeout_grace
                    } else {
                        continue;
                    };
                    if engine::step_deadline(&job, plan, &step.step_name)
                        .is_some_and(|at| at + grace <= now)
                    {
                        events.push(Event::StepTimedOut {
                            step: step.step_name.clone(),
                        });
                    }
                }
            }
            for event in events {
                match self.apply(job_id, event).await {
                    Ok(_) => sweep.events += 1,
                    // Something else moved the job meanwhile; the next sweep looks again.
                    Err(OrchestratorError::Event(_)) => {}
                    Err(error) => return Err(error),
                }
            }
        }
        sweep.unmatched_steps = self.fail_unmatched(now).await?;
        if sweep != Sweep::default() {
            tracing::info!(?sweep, "recovery sweep");
        }
        Ok(sweep)
    }

    /// Item 6: a step `ready` for longer than the unmatched timeout that no *active* worker
    /// could claim — by capability and tags; a matching but busy worker counts — fails.
    async fn fail_unmatched(&self, now: DateTime<Utc>) -> Result<usize> {
        let store = &self.inner.store;
        let waiting = store
            .waiting_steps(now - self.inner.settings.unmatched_step_timeout)
            .await?;
        if waiting.is_empty() {
            return Ok(0);
        }
        // Active workers are listed first.
        let (workers, _) = store.list_workers(500, 0).await?;
        let active: Vec<_> = workers
            .into_iter()
            .filter(|worker| worker.status == WorkerStatus::Active)
            .collect();
        let mut failed = 0;
        for step in waiting {
            // Rule 4 (API §7.5): a pinned job's step is only its pinned worker's to claim.
            let matched = active.iter().any(|worker| {
                step.pinned_worker
                    .is_none_or(|pinned| pinned == worker.worker_id)
                    && worker.capabilities.contains(&step.capability)
                    && step.tags.iter().all(|tag| worker.tags.contains(tag))
            });
            if matched {
                continue;
            }
            let needs = format!(
                "needs capability '{}', tags [{}]",
                step.capability,
                step.tags.join(", ")
            );
            let error = match step.pinned_worker {
                Some(pinned) => format!(
                    "the worker this local job is pinned to ({pinned}) cannot run this step ({needs})"
                ),
                None => format!("no active worker can run this step ({needs})"),
            };
            let name = step.step_name.clone();
            let event = Event::StepRejected {
                step: step.step_name,
                error,
            };
            // A worker may have claimed it since the list was read: only a step still
            // `ready` is failed.
            let still_ready = |job: &JobState| {
                job.step(&name)
                    .is_some_and(|state| state.status == StepStatus::Ready)
            };
            if self.apply_if(step.job_id, event, still_ready).await? {
                failed += 1;
            }
        }
        Ok(failed)
    }

    /// API §7.9: the unfinished worker steps of a `local` job whose pinned worker is inactive
    /// or gone fail without retry (`pinned worker lost`). Returns how many jobs that hit.
    async fn fail_lost_pins(&self) -> Result<usize> {
        let mut failed = 0;
        for (job_id, worker_id) in self.inner.store.lost_pinned_jobs().await? {
            // A cheap look first: a job with only server steps left is not written every sweep.
            let Some(job) = self.inner.store.get_job(job_id).await? else {
                continue;
            };
            let Ok(context) = self.context_of(&job) else {
                continue;
            };
            if !engine::pinned_worker_needed(&job, &context.plan) {
                continue;
            }
            let needed = |job: &JobState| engine::pinned_worker_needed(job, &context.plan);
            if self
                .apply_if(job_id, Event::PinnedWorkerLost, needed)
                .await?
            {
                tracing::warn!(%job_id, %worker_id, "pinned worker lost: the local job's worker steps failed");
                failed += 1;
            }
        }
        Ok(failed)
    }

    /// Applies `event` in one transaction if `guard` holds for the locked job; whether it did.
    async fn apply_if(
        &self,
        job_id: uuid::Uuid,
        event: Event,
        guard: impl FnOnce(&JobState) -> bool,
    ) -> Result<bool> {
        let templates = &self.inner.templates;
        let context = match self.context_by_id(job_id).await {
            Ok(context) => context,
            Err(OrchestratorError::JobNotFound(_)) => return Ok(false),
            Err(error) => return Err(error),
        };
        let plan = &context.plan;
        let ((applied, effects), _) = self
            .inner
            .store
            .with_job(job_id, |job| {
                if !guard(job) {
                    return Ok((false, Vec::new()));
                }
                let ctx = context.eval(templates);
                let mut jitter = || rand::random::<f64>();
                let effects = engine::apply(job, plan, event, Utc::now(), &ctx, &mut jitter)
                    .map_err(OrchestratorError::from)?;
                Ok::<_, OrchestratorError>((true, effects))
            })
            .await?;
        self.carry_out(effects.into_iter().map(|e| (job_id, e)).collect())
            .await;
        Ok(applied)
    }

    /// A worker shutting down deregisters (API §7.2): it becomes `inactive` — so it is never
    /// granted a lease again, even by a long-poll claim still pending — and every lease it
    /// still holds is lost at once, exactly as an expired one (§8.5 item 2): retried while
    /// attempts remain, otherwise failed; a cancelling one cancelled. Returns how many leases
    /// were ended.
    pub async fn deregister_worker(&self, worker_id: uuid::Uuid) -> Result<usize> {
        let now = Utc::now();
        let leases = self.inner.store.deregister_worker(worker_id, now).await?;
        // The `local` jobs pinned to it cannot go on elsewhere (API §7.9).
        self.fail_lost_pins().await?;
        let mut ended = 0;
        for lease_id in leases {
            if self.expire(lease_id, now, DEREGISTERED).await? {
                ended += 1;
            }
        }
        tracing::info!(%worker_id, lost_leases = ended, "worker deregistered");
        Ok(ended)
    }

    /// Fails (or, for a cancelling lease, cancels) the attempt of an expired lease, with
    /// `reason` as its error.
    async fn expire(&self, lease_id: uuid::Uuid, now: DateTime<Utc>, reason: &str) -> Result<bool> {
        let templates = &self.inner.templates;
        let store = &self.inner.store;
        let Some(lease) = store
            .live_leases()
            .await?
            .into_iter()
            .find(|lease| lease.lease_id == lease_id)
        else {
            return Ok(false);
        };
        let context = match self.context_by_id(lease.job_id).await {
            Ok(context) => context,
            Err(OrchestratorError::JobNotFound(_)) => return Ok(false),
            Err(error) => return Err(error),
        };
        let plan = &context.plan;
        let expired = store
            .expire_lease(lease_id, now, |job, lease| {
                let ctx = context.eval(templates);
                let cancelling = lease.state == LeaseStatus::Cancelling;
                let result = AttemptResult {
                    outcome: if cancelling {
                        Outcome::Cancelled
                    } else {
                        Outcome::Failed
                    },
                    output: serde_json::Value::Null,
                    error_message: Some(reason.to_owned()),
                    started_at: now,
                    finished_at: now,
                };
                let event = Event::StepFinished {
                    step: lease.step_name.clone(),
                    result,
                };
                let mut jitter = || rand::random::<f64>();
                engine::apply(job, plan, event, now, &ctx, &mut jitter)
                    .map_err(OrchestratorError::from)
            })
            .await?;
        let Some((effects, job)) = expired else {
            return Ok(false);
        };
        let id = job.id;
        self.carry_out(effects.into_iter().map(|e| (id, e)).collect())
            .await;
        Ok(true)
    }

    /// Runs [`Orchestrator::recovery_tick`] every `interval` until `shutdown`.
    pub async fn run_recovery(self, interval: std::time::Duration, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticker.tick() => {
                    if let Err(error) = self.recovery_tick(Utc::now()).await {
                        tracing::error!(%error, "recovery sweep failed");
                    }
                }
            }
        }
    }
}
