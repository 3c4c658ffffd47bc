//! Claims (API §7.3, §7.5): the oldest claimable step a worker may run becomes `running` under
//! a new lease, in one transaction with the engine's `StepClaimed` and the rendering the caller
//! does in its callback.
//!
//! Candidates are chosen in SQL — ready worker steps whose retry delay is over, of jobs not
//! halted, whose capability the worker has and whose tags it carries — by job priority, then
//! `ready_at`, then the oldest job, then step name. On PostgreSQL the chosen job's row is
//! locked with `FOR UPDATE SKIP LOCKED`, so concurrent claimers spread over different jobs
//! instead of queueing; when every candidate's job is locked, the claim waits for the first one
//! and checks again, so a busy job never makes a claim come back empty while it has work. On
//! SQLite the claim runs inside one `BEGIN IMMEDIATE` transaction and writers take turns. On
//! both, the claims of one process take turns and look in a read transaction first.

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::Store;
use super::error::{Result, StoreError};
use super::job::{LeaseEnding, Lock};
use super::lease::{Lease, LeaseStatus};
use super::tx::{Tx, from_json, from_millis, millis, on_tx, opt_from_millis, to_json};
use super::worker::Worker;
use crate::engine::{JobState, StepStatus};
use crate::metrics::Transition;
use crate::workflow::model::TaskMode;

/// A ready worker step that has waited since `ready_at` (API §8.5 item 6: the server fails it
/// when no active worker has its capability and tags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingStep {
    pub job_id: Uuid,
    pub step_name: String,
    pub capability: String,
    pub tags: Vec<String>,
    pub ready_at: Option<DateTime<Utc>>,
    /// The worker the step's `local` job is pinned to: only it may claim the step (rule 4).
    pub pinned_worker: Option<Uuid>,
}

/// A step handed to a worker: its new lease, the job as committed, and what the callback
/// returned (typically the rendered step).
#[derive(Debug, Clone)]
pub struct Claim<T> {
    pub lease: Lease,
    pub job: JobState,
    pub value: T,
}

/// Steps come first, through the partial index of ready worker steps: left to itself SQLite
/// starts from the unfinished jobs and scans all their steps, which made every claim cost as
/// much as the steps of all running jobs (issue #3).
const CANDIDATE_SQLITE: &str = "\
    SELECT s.job_id, s.step_name FROM steps s INDEXED BY steps_claimable \
    CROSS JOIN jobs j ON j.id = s.job_id \
    WHERE s.status = 'ready' AND s.capability IS NOT NULL \
      AND (s.retry_at IS NULL OR s.retry_at <= $1) \
      AND j.status IN ('pending', 'running') \
      AND (j.pinned_worker_id IS NULL OR j.pinned_worker_id = $4) \
      AND s.capability IN (SELECT value FROM json_each($2)) \
      AND NOT EXISTS (SELECT 1 FROM json_each(s.tags) AS t \
                      WHERE t.value NOT IN (SELECT value FROM json_each($3))) \
    ORDER BY j.priority DESC, s.ready_at ASC NULLS FIRST, j.created_at ASC, j.id ASC, \
             s.step_name ASC \
    LIMIT 1";

/// The PostgreSQL candidate query followed by `$tail`.
macro_rules! candidate_postgres {
    ($tail:literal) => {
        concat!(
            "SELECT s.job_id, s.step_name FROM steps s JOIN jobs j ON j.id = s.job_id \
             WHERE s.status = 'ready' AND s.capability IS NOT NULL \
               AND (s.retry_at IS NULL OR s.retry_at <= $1) \
               AND j.status IN ('pending', 'running') \
               AND (j.pinned_worker_id IS NULL OR j.pinned_worker_id = $4) \
               AND s.capability IN (SELECT jsonb_array_elements_text($2::jsonb)) \
               AND s.tags::jsonb <@ $3::jsonb \
             ORDER BY j.priority DESC, s.ready_at ASC NULLS FIRST, j.created_at ASC, j.id ASC, \
                      s.step_name ASC \
             LIMIT 1",
            $tail
        )
    };
}

const CANDIDATE_POSTGRES: &str = candidate_postgres!("");

/// The same query, taking the candidate's job lock and passing over jobs locked by others.
const CANDIDATE_POSTGRES_SKIP_LOCKED: &str = candidate_postgres!(" FOR UPDATE OF j SKIP LOCKED");

impl Store {
    /// Claims the next step `worker` may run (API §7.5), or `None` when there is none or the
    /// worker already holds `max_concurrent` live leases.
    ///
    /// For the chosen step, `decide` gets the locked job and the step name. It must either
    /// apply `StepClaimed` (and render the attempt) and return `Some(value)`: the step is then
    /// `running` with a new lease expiring at `now + ttl`, all committed together; or apply
    /// `StepRejected` (a render or input error, WF §10) and return `None`: that is committed
    /// and the claim looks for the next step. Leaving the step claimable is
    /// [`StoreError::ClaimUndecided`]; an error from `decide` rolls its transaction back.
    pub async fn claim<T, E>(
        &self,
        worker: &Worker,
        now: DateTime<Utc>,
        ttl: TimeDelta,
        mut decide: impl FnMut(&mut JobState, &str) -> Result<Option<T>, E>,
    ) -> Result<Option<Claim<T>>, E>
    where
        E: From<StoreError>,
    {
        // The lease is returned as it is stored: at millisecond precision.
        let now = from_millis(millis(now))?;
        let capabilities = to_json(&worker.capabilities)?;
        let tags = to_json(&worker.tags)?;
        // Several claimers wake for each ready step. On SQLite every write transaction queues
        // for the one write lock; on PostgreSQL the claimers that found the winner's job locked
        // waited for its row lock — either way ahead of the winner's `start` report (issue #3).
        // Claims of one process therefore take turns, and each looks for a candidate in a read
        // transaction first: the ones that come after the winner find nothing and leave without
        // queueing. Claimers of other replicas still meet at the job lock, as before.
        let _turn = self.claims.lock().await;
        loop {
            {
                let mut tx = self.read_one().await?;
                let found = candidate(&mut tx, now, worker, &capabilities, &tags, false).await?;
                tx.commit().await?;
                if found.is_none() {
                    return Ok(None);
                }
            }
            let mut tx = self.begin_write().await?;
            if !super::worker::worker_is_active(&mut tx, worker.worker_id).await? {
                return Ok(None);
            }
            if live_leases_of(&mut tx, worker.worker_id).await? >= i64::from(worker.max_concurrent)
            {
                return Ok(None);
            }
            let Some((job_id, step)) =
                candidate(&mut tx, now, worker, &capabilities, &tags, true).await?
            else {
                return Ok(None);
            };
            let Some(loaded) = self.load_job(&mut tx, job_id, Lock::ForUpdate).await? else {
                continue;
            };
            // Only possible on PostgreSQL after waiting for a locked job: another claimer may
            // have taken the step. Look again.
            if !claimable(&loaded.state, &step, now, worker.worker_id) {
                // Read under the lock, so current: back into the cache it was taken from.
                self.cache.put(loaded);
                continue;
            }
            let mut state = loaded.state.clone();
            let attempt = state.step(&step).map_or(0, |s| s.attempt);
            let ready_at = state.step(&step).and_then(|s| s.ready_at);
            let decision = decide(&mut state, &step)?;
            let after = state.step(&step);
            match decision {
                Some(value) => {
                    let Some(after) = after.filter(|after| {
                        after.status == StepStatus::Running && after.attempt == attempt + 1
                    }) else {
                        return Err(StoreError::ClaimUndecided { job_id, step }.into());
                    };
                    let attempt = after.attempt;
                    // The first claim of a `local` job pins it to this worker (API §7.9).
                    if state.mode == TaskMode::Local && state.pinned_worker.is_none() {
                        state.pinned_worker = Some(worker.worker_id);
                    }
                    let lease = Lease {
                        lease_id: Uuid::new_v4(),
                        job_id,
                        step_name: step,
                        attempt,
                        worker_id: worker.worker_id,
                        state: LeaseStatus::Active,
                        claimed_at: now,
                        started_at: None,
                        expires_at: now + ttl,
                        report_digest: None,
                    };
                    let saved = self
                        .save_job(&mut tx, loaded, &state, &LeaseEnding::default())
                        .await?;
                    insert_lease(&mut tx, &lease).await?;
                    tx.commit().await?;
                    self.committed(saved);
                    self.metrics.record(&[Transition::Claimed {
                        seconds: ready_at.map(|ready| super::job::seconds_between(ready, now)),
                    }]);
                    return Ok(Some(Claim {
                        lease,
                        job: state,
                        value,
                    }));
                }
                None => {
                    if claimable(&state, &step, now, worker.worker_id) {
                        return Err(StoreError::ClaimUndecided { job_id, step }.into());
                    }
                    let saved = self
                        .save_job(&mut tx, loaded, &state, &LeaseEnding::default())
                        .await?;
                    tx.commit().await?;
                    self.committed(saved);
                }
            }
        }
    }
}

impl Store {
    /// The earliest `retry_at` after `now` among ready worker steps of jobs not halted: when a
    /// claim that found nothing must look again, since the end of a retry delay wakes no one.
    pub async fn next_retry_at(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        let mut tx = self.read_one().await?;
        let at: Option<i64> = on_tx!(&mut tx, conn, sql = (
            "SELECT MIN(s.retry_at) FROM steps s INDEXED BY steps_claimable \
             JOIN jobs j ON j.id = s.job_id \
             WHERE s.status = 'ready' AND s.capability IS NOT NULL AND s.retry_at > $1 \
               AND j.status IN ('pending', 'running')",
            "SELECT MIN(s.retry_at) FROM steps s JOIN jobs j ON j.id = s.job_id \
             WHERE s.status = 'ready' AND s.capability IS NOT NULL AND s.retry_at > $1 \
               AND j.status IN ('pending', 'running')"
        ) => {
            sqlx::query_scalar(sql)
                .bind(millis(now))
                .fetch_one(&mut **conn)
                .await?
        });
        tx.commit().await?;
        opt_from_millis(at)
    }

    /// Ready worker steps of running or pending jobs that became ready at or before
    /// `ready_before`, oldest first.
    pub async fn waiting_steps(&self, ready_before: DateTime<Utc>) -> Result<Vec<WaitingStep>> {
        type Tuple = (Uuid, String, String, String, Option<i64>, Option<Uuid>);
        let mut tx = self.begin_read().await?;
        let tuples: Vec<Tuple> = on_tx!(&mut tx, conn => {
            sqlx::query_as(
                "SELECT s.job_id, s.step_name, s.capability, s.tags, s.ready_at, \
                 j.pinned_worker_id FROM steps s JOIN jobs j ON j.id = s.job_id \
                 WHERE s.status = 'ready' AND s.capability IS NOT NULL \
                 AND s.ready_at <= $1 AND j.status IN ('pending', 'running') \
                 ORDER BY s.ready_at, s.job_id, s.step_name",
            )
            .bind(millis(ready_before))
            .fetch_all(&mut **conn)
            .await?
        });
        tx.commit().await?;
        tuples
            .into_iter()
            .map(
                |(job_id, step_name, capability, tags, ready_at, pinned_worker)| {
                    Ok(WaitingStep {
                        job_id,
                        step_name,
                        capability,
                        tags: from_json(&tags)?,
                        ready_at: opt_from_millis(ready_at)?,
                        pinned_worker,
                    })
                },
            )
            .collect()
    }
}

/// Whether `step` of `job` can be claimed by `worker_id` at `now` (the SQL filter, checked
/// again on the locked state).
fn claimable(job: &JobState, step: &str, now: DateTime<Utc>, worker_id: Uuid) -> bool {
    !job.is_halted()
        && !job.is_finished()
        && job.pinned_worker.is_none_or(|pinned| pinned == worker_id)
        && job.step(step).is_some_and(|state| {
            state.status == StepStatus::Ready && state.retry_at.is_none_or(|at| at <= now)
        })
}

async fn live_leases_of(tx: &mut Tx, worker_id: Uuid) -> Result<i64> {
    // Through the partial index of the worker's live leases (a few per slot): SQLite's planner
    // otherwise takes `leases_worker` and counts over every lease the worker ever held, so
    // each claim got slower as the server aged (issue #3).
    let sql = if tx.is_postgres() {
        "SELECT COUNT(*) FROM leases WHERE worker_id = $1 AND state IN ('active', 'cancelling')"
    } else {
        "SELECT COUNT(*) FROM leases INDEXED BY leases_live_worker \
         WHERE worker_id = $1 AND state IN ('active', 'cancelling')"
    };
    Ok(on_tx!(tx, conn => {
        sqlx::query_scalar(sql)
        .bind(worker_id)
        .fetch_one(&mut **conn)
        .await?
    }))
}

async fn candidate(
    tx: &mut Tx,
    now: DateTime<Utc>,
    worker: &Worker,
    capabilities: &str,
    tags: &str,
    lock: bool,
) -> Result<Option<(Uuid, String)>> {
    let now = millis(now);
    let attempts: &[&'static str] = if tx.is_postgres() && lock {
        &[CANDIDATE_POSTGRES_SKIP_LOCKED, CANDIDATE_POSTGRES]
    } else if tx.is_postgres() {
        // A read-only transaction cannot lock rows.
        &[CANDIDATE_POSTGRES]
    } else {
        &[CANDIDATE_SQLITE]
    };
    for &sql in attempts {
        let found: Option<(Uuid, String)> = on_tx!(&mut *tx, conn => {
            sqlx::query_as(sql)
                .bind(now)
                .bind(capabilities)
                .bind(tags)
                .bind(worker.worker_id)
                .fetch_optional(&mut **conn)
                .await?
        });
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

async fn insert_lease(tx: &mut Tx, lease: &Lease) -> Result<()> {
    on_tx!(tx, conn => {
        sqlx::query(
            "INSERT INTO leases (lease_id, job_id, step_name, attempt, worker_id, state, \
             claimed_at, started_at, expires_at, report_digest) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(lease.lease_id)
        .bind(lease.job_id)
        .bind(lease.step_name.as_str())
        .bind(i64::from(lease.attempt))
        .bind(lease.worker_id)
        .bind(lease.state.as_str())
        .bind(millis(lease.claimed_at))
        .bind(lease.started_at.map(millis))
        .bind(millis(lease.expires_at))
        .bind(lease.report_digest.as_deref())
        .execute(&mut **conn)
        .await?;
    });
    Ok(())
}
