//! Task `concurrency` (WF §8 [P2]) and task-level retries (WF §13.1 [P2]) in the database.
//!
//! Admission is one transaction per task: it counts the task's admitted unfinished jobs and
//! admits queued ones into the free slots, highest `priority` first, then oldest. Two servers
//! on one PostgreSQL must never both see the same free slot, and row locks cannot stop that (a
//! job inserted meanwhile is no row either could lock), so the transaction first takes a
//! transaction-scoped advisory lock named after the task; under READ COMMITTED every statement
//! after it sees what the previous holder committed. On SQLite `BEGIN IMMEDIATE` admits one
//! writer at a time, which serialises admissions by itself.
//!
//! A job counts against its task's limit from admission until it *finished* (`completed_at`),
//! not merely until its status became terminal: a cancelled job whose processes are still
//! being stopped holds its slot.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Store;
use super::error::{Result, StoreError};
use super::job::{LeaseEnding, Lock};
use super::tx::{Tx, from_millis, millis, on_tx, opt_from_millis, parse_status};
use crate::engine::{JobState, JobStatus};

/// One job of a task-level retry chain (API §2.4 `retry_chain`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainLink {
    pub job_id: Uuid,
    pub retry_attempt: u32,
    pub status: JobStatus,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// The key of a task's admission lock among PostgreSQL advisory locks: FNV-1a over the
/// workspace and task names, so every server derives the same key.
fn admission_key(workspace: &str, task: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in b"stroem-admission\0"
        .iter()
        .chain(workspace.as_bytes())
        .chain(b"\0")
        .chain(task.as_bytes())
    {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

impl Store {
    /// Queued unfinished jobs of a task in admission order (highest priority, then oldest),
    /// at most `limit` of them.
    pub async fn queued_jobs(&self, workspace: &str, task: &str, limit: u32) -> Result<Vec<Uuid>> {
        let mut tx = self.read_one().await?;
        let ids = on_tx!(&mut tx, conn => {
            sqlx::query_scalar(
                "SELECT id FROM jobs WHERE workspace = $1 AND task = $2 \
                 AND completed_at IS NULL AND queued = TRUE \
                 ORDER BY priority DESC, created_at ASC, id ASC LIMIT $3",
            )
            .bind(workspace)
            .bind(task)
            .bind(i64::from(limit))
            .fetch_all(&mut **conn)
            .await?
        });
        tx.commit().await?;
        Ok(ids)
    }

    /// The tasks (workspace, task) that have queued jobs, for the recovery sweep.
    pub async fn tasks_with_queued_jobs(&self) -> Result<Vec<(String, String)>> {
        let mut tx = self.read_one().await?;
        let tasks = on_tx!(&mut tx, conn => {
            sqlx::query_as(
                "SELECT DISTINCT workspace, task FROM jobs \
                 WHERE completed_at IS NULL AND queued = TRUE ORDER BY workspace, task",
            )
            .fetch_all(&mut **conn)
            .await?
        });
        tx.commit().await?;
        Ok(tasks)
    }

    /// Admits queued jobs of one task while fewer than `limit` of its jobs are admitted and
    /// unfinished, in one transaction (see the module documentation). `known` tells whether
    /// the caller can admit a job (it has its plan): admission stops at the first it cannot,
    /// so the order is kept. `admit` applies the admission to a locked job and returns its
    /// value, or `None` when the job is no longer queued (cancelled meanwhile): it is passed
    /// over. If `admit` or a write fails, nothing is admitted.
    pub async fn admit_queued<T, E>(
        &self,
        workspace: &str,
        task: &str,
        limit: u32,
        known: impl Fn(Uuid) -> bool,
        mut admit: impl FnMut(&mut JobState) -> Result<Option<T>, E>,
    ) -> Result<Vec<(T, JobState)>, E>
    where
        E: From<StoreError>,
    {
        let mut tx = self.begin_write().await?;
        if let Tx::Postgres(conn) = &mut tx {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(admission_key(workspace, task))
                .execute(&mut **conn)
                .await
                .map_err(StoreError::from)?;
        }
        let admitted: i64 = on_tx!(&mut tx, conn => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM jobs WHERE workspace = $1 AND task = $2 \
                 AND completed_at IS NULL AND queued = FALSE",
            )
            .bind(workspace)
            .bind(task)
            .fetch_one(&mut **conn)
            .await
            .map_err(StoreError::from)?
        });
        let free = i64::from(limit) - admitted;
        if free <= 0 {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let candidates: Vec<Uuid> = on_tx!(&mut tx, conn => {
            sqlx::query_scalar(
                "SELECT id FROM jobs WHERE workspace = $1 AND task = $2 \
                 AND completed_at IS NULL AND queued = TRUE \
                 ORDER BY priority DESC, created_at ASC, id ASC LIMIT $3",
            )
            .bind(workspace)
            .bind(task)
            .bind(free)
            .fetch_all(&mut **conn)
            .await
            .map_err(StoreError::from)?
        });
        let mut saved = Vec::new();
        let mut values = Vec::new();
        for id in candidates {
            if !known(id) {
                break;
            }
            let Some(loaded) = self.load_job(&mut tx, id, Lock::ForUpdate).await? else {
                continue;
            };
            let mut state = loaded.state.clone();
            let value = match admit(&mut state) {
                Ok(Some(value)) => value,
                Ok(None) => {
                    // Unchanged: its version moved on, which only costs a cache miss.
                    continue;
                }
                Err(error) => {
                    self.cache.put(loaded);
                    return Err(error);
                }
            };
            saved.push(
                self.save_job(&mut tx, loaded, &state, &LeaseEnding::default())
                    .await?,
            );
            values.push((value, state));
        }
        tx.commit().await?;
        for loaded in saved {
            self.committed(loaded);
        }
        Ok(values)
    }

    /// The 1-based place of a queued job in its task's queue (WF §8 [P2]); `None` when the
    /// job is not queued.
    pub async fn queue_position(&self, job: &JobState) -> Result<Option<u32>> {
        if !job.queued || job.is_finished() {
            return Ok(None);
        }
        let mut tx = self.read_one().await?;
        let ahead: i64 = on_tx!(&mut tx, conn => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM jobs WHERE workspace = $1 AND task = $2 \
                 AND completed_at IS NULL AND queued = TRUE AND id <> $3 \
                 AND (priority > $4 OR (priority = $4 AND (created_at < $5 \
                      OR (created_at = $5 AND id < $3))))",
            )
            .bind(&job.workspace)
            .bind(&job.task)
            .bind(job.id)
            .bind(job.priority)
            .bind(millis(job.created_at))
            .fetch_one(&mut **conn)
            .await?
        });
        tx.commit().await?;
        Ok(Some(u32::try_from(ahead + 1).unwrap_or(u32::MAX)))
    }

    /// Failed jobs whose task-level retry is due at `now`, earliest first.
    pub async fn due_retries(&self, now: DateTime<Utc>) -> Result<Vec<Uuid>> {
        let mut tx = self.read_one().await?;
        let ids = on_tx!(&mut tx, conn => {
            sqlx::query_scalar(
                "SELECT id FROM jobs WHERE retry_due_at IS NOT NULL AND retry_due_at <= $1 \
                 ORDER BY retry_due_at, id LIMIT 500",
            )
            .bind(millis(now))
            .fetch_all(&mut **conn)
            .await?
        });
        tx.commit().await?;
        Ok(ids)
    }

    /// Failed jobs waiting for their task-level retry, with when it is due.
    pub async fn pending_retries(&self) -> Result<Vec<(Uuid, DateTime<Utc>)>> {
        let mut tx = self.read_one().await?;
        let rows: Vec<(Uuid, i64)> = on_tx!(&mut tx, conn => {
            sqlx::query_as(
                "SELECT id, retry_due_at FROM jobs WHERE retry_due_at IS NOT NULL \
                 ORDER BY retry_due_at, id",
            )
            .fetch_all(&mut **conn)
            .await?
        });
        tx.commit().await?;
        rows.into_iter()
            .map(|(id, due)| Ok((id, from_millis(due)?)))
            .collect()
    }

    /// Every job of the task-level retry chain whose first job is `first`, in attempt order.
    pub async fn retry_chain(&self, first: Uuid) -> Result<Vec<ChainLink>> {
        let mut tx = self.read_one().await?;
        let rows: Vec<(Uuid, i64, String, i64, Option<i64>)> = on_tx!(&mut tx, conn => {
            sqlx::query_as(
                "SELECT id, retry_attempt, status, created_at, completed_at FROM jobs \
                 WHERE id = $1 OR retry_of_job_id = $1 ORDER BY retry_attempt, created_at",
            )
            .bind(first)
            .fetch_all(&mut **conn)
            .await?
        });
        tx.commit().await?;
        rows.into_iter()
            .map(|(job_id, attempt, status, created_at, completed_at)| {
                Ok(ChainLink {
                    job_id,
                    retry_attempt: u32::try_from(attempt).map_err(StoreError::invalid)?,
                    status: parse_status(&status)?,
                    created_at: from_millis(created_at)?,
                    completed_at: opt_from_millis(completed_at)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn admission_keys_differ_by_task_and_workspace() {
        let a = super::admission_key("default", "deploy");
        assert_eq!(a, super::admission_key("default", "deploy"));
        assert_ne!(a, super::admission_key("default", "deplo"));
        assert_ne!(
            super::admission_key("a", "bc"),
            super::admission_key("ab", "c")
        );
    }
}
