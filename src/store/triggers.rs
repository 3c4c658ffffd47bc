//! What the cron scheduler keeps in the database (WF §15.1): the checkpoint of each scheduler
//! trigger (`trigger_ticks`) and the lease that lets one `serve` replica fire (`scheduler_lease`).
//!
//! Firing is idempotent at the row level: [`Store::fire_tick`] moves a trigger's checkpoint
//! forward with a conditional upsert (`… WHERE last_tick < new tick`) and inserts the tick's job
//! in the same transaction. Two schedulers that race for one tick both try the upsert; on
//! PostgreSQL the second waits on the row and then sees the first one's tick, on SQLite writers
//! are serialised by `BEGIN IMMEDIATE` — either way exactly one of them inserts a job. The lease
//! only keeps the other replicas from doing the work for nothing.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::Store;
use super::error::Result;
use super::job::JobRouting;
use super::tx::{from_millis, millis, on_tx, opt_from_millis};
use crate::engine::JobState;

/// The checkpoint of one scheduler trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerTick {
    pub workspace: String,
    pub trigger: String,
    /// The newest tick fired or passed over; the time the scheduler first saw the trigger
    /// while none was.
    pub last_tick: DateTime<Utc>,
    /// When the last job of this trigger was created, by the scheduler's clock.
    pub last_run_at: Option<DateTime<Utc>>,
    pub last_job_id: Option<Uuid>,
}

/// The name of the one scheduler lease row.
const SCHEDULER_LEASE: &str = "scheduler";

type TickTuple = (String, String, i64, Option<i64>, Option<Uuid>);

fn tick_of(
    (workspace, trigger, last_tick, last_run_at, last_job_id): TickTuple,
) -> Result<TriggerTick> {
    Ok(TriggerTick {
        workspace,
        trigger,
        last_tick: from_millis(last_tick)?,
        last_run_at: opt_from_millis(last_run_at)?,
        last_job_id,
    })
}

impl Store {
    /// Every checkpoint, or those of one workspace.
    pub async fn trigger_ticks(&self, workspace: Option<&str>) -> Result<Vec<TriggerTick>> {
        let mut tx = self.begin_read().await?;
        let rows: Vec<TickTuple> = on_tx!(&mut tx, conn => {
            sqlx::query_as(
                "SELECT workspace, trigger_name, last_tick, last_run_at, last_job_id \
                 FROM trigger_ticks WHERE $1 IS NULL OR workspace = $1 \
                 ORDER BY workspace, trigger_name",
            )
            .bind(workspace)
            .fetch_all(&mut **conn)
            .await?
        });
        tx.commit().await?;
        rows.into_iter().map(tick_of).collect()
    }

    /// Records that the scheduler first saw a trigger at `at`, unless a checkpoint exists;
    /// returns the checkpoint in force. Ticks at or before it never fire.
    pub async fn baseline_tick(
        &self,
        workspace: &str,
        trigger: &str,
        at: DateTime<Utc>,
    ) -> Result<TriggerTick> {
        let mut tx = self.begin_write().await?;
        let row: TickTuple = on_tx!(&mut tx, conn => {
            sqlx::query(
                "INSERT INTO trigger_ticks (workspace, trigger_name, last_tick) \
                 VALUES ($1, $2, $3) ON CONFLICT (workspace, trigger_name) DO NOTHING",
            )
            .bind(workspace)
            .bind(trigger)
            .bind(millis(at))
            .execute(&mut **conn)
            .await?;
            sqlx::query_as(
                "SELECT workspace, trigger_name, last_tick, last_run_at, last_job_id \
                 FROM trigger_ticks WHERE workspace = $1 AND trigger_name = $2",
            )
            .bind(workspace)
            .bind(trigger)
            .fetch_one(&mut **conn)
            .await?
        });
        tx.commit().await?;
        tick_of(row)
    }

    /// Moves a trigger's checkpoint to `tick` and inserts `job` (the tick's job, or its
    /// `skipped`/`failed` record) in one transaction — only if the checkpoint is older than
    /// `tick`. Returns false, writing nothing, when the tick was already fired or passed over
    /// (by this scheduler before a restart, or by another replica).
    pub async fn fire_tick(
        &self,
        workspace: &str,
        trigger: &str,
        tick: DateTime<Utc>,
        fired_at: DateTime<Utc>,
        job: Option<(&JobState, &JobRouting)>,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let (run_at, job_id) = match job {
            Some((job, _)) => (Some(millis(fired_at)), Some(job.id)),
            None => (None, None),
        };
        // Passing over a tick keeps the last run; firing one replaces it.
        let changed = on_tx!(&mut tx, conn => {
            sqlx::query(
                "INSERT INTO trigger_ticks \
                 (workspace, trigger_name, last_tick, last_run_at, last_job_id) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (workspace, trigger_name) DO UPDATE SET \
                 last_tick = excluded.last_tick, \
                 last_run_at = COALESCE(excluded.last_run_at, trigger_ticks.last_run_at), \
                 last_job_id = COALESCE(excluded.last_job_id, trigger_ticks.last_job_id) \
                 WHERE trigger_ticks.last_tick < excluded.last_tick",
            )
            .bind(workspace)
            .bind(trigger)
            .bind(millis(tick))
            .bind(run_at)
            .bind(job_id)
            .execute(&mut **conn)
            .await?
            .rows_affected()
        });
        if changed == 0 {
            // Dropping the transaction rolls it back: nothing was written.
            return Ok(false);
        }
        let inserted = match job {
            Some((job, routing)) => Some(self.insert_job(&mut tx, job, routing).await?),
            None => None,
        };
        tx.commit().await?;
        if let Some(loaded) = inserted {
            self.committed(Arc::new(loaded));
        }
        Ok(true)
    }

    /// The unfinished (`pending` or `running`) jobs with this source, oldest first: the jobs
    /// `concurrency: skip | cancel_previous` look at.
    pub async fn active_jobs_of_source(
        &self,
        source_type: &str,
        source_id: &str,
    ) -> Result<Vec<Uuid>> {
        let mut tx = self.begin_read().await?;
        let ids = on_tx!(&mut tx, conn => {
            sqlx::query_scalar(
                "SELECT id FROM jobs WHERE source_type = $1 AND source_id = $2 \
                 AND status IN ('pending', 'running') ORDER BY created_at, id",
            )
            .bind(source_type)
            .bind(source_id)
            .fetch_all(&mut **conn)
            .await?
        });
        tx.commit().await?;
        Ok(ids)
    }

    /// Takes or renews the scheduler lease for `holder` until `now + ttl`. True when `holder`
    /// holds it: it was free, expired, or already `holder`'s. A replica that crashed stops
    /// renewing, so another takes over once `ttl` has passed.
    pub async fn acquire_scheduler_lease(
        &self,
        holder: &str,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let changed = on_tx!(&mut tx, conn => {
            sqlx::query(
                "INSERT INTO scheduler_lease (name, holder, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET \
                 holder = excluded.holder, expires_at = excluded.expires_at \
                 WHERE scheduler_lease.holder = excluded.holder \
                 OR scheduler_lease.expires_at <= $4",
            )
            .bind(SCHEDULER_LEASE)
            .bind(holder)
            .bind(millis(now + ttl))
            .bind(millis(now))
            .execute(&mut **conn)
            .await?
            .rows_affected()
        });
        tx.commit().await?;
        Ok(changed == 1)
    }

    /// Gives the scheduler lease up (at shutdown), so another replica need not wait for it to
    /// expire. Does nothing when `holder` does not hold it.
    pub async fn release_scheduler_lease(&self, holder: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        on_tx!(&mut tx, conn => {
            sqlx::query("DELETE FROM scheduler_lease WHERE name = $1 AND holder = $2")
                .bind(SCHEDULER_LEASE)
                .bind(holder)
                .execute(&mut **conn)
                .await?;
        });
        tx.commit().await
    }
}
