//! Retention (API §8.5 item 7): finished jobs older than the limit, and workers inactive for
//! longer than theirs, are deleted — jobs in bounded batches, each its own short transaction,
//! so a large backlog never holds SQLite's write lock or a PostgreSQL transaction for long.
//!
//! What may go: a job whose last step ended (`completed_at` is set: a cancelled job whose
//! steps are still stopping is not finished) before the cut-off, unless a job of its family
//! is still unfinished — its parent (which still reports to it and links to it) or one of its
//! children (whose end the parent would be told of). Hook jobs, re-runs and trigger
//! checkpoints only name a job: their links to a deleted job lead to "not found", as a link to
//! any deleted job does. The steps and leases of a job go with it (`ON DELETE CASCADE`).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Store;
use super::error::Result;
use super::tx::{Tx, millis, on_tx, to_json};

/// The condition a job `j` must meet to be deleted, `$1` being the cut-off in milliseconds.
const DELETABLE: &str = "j.completed_at IS NOT NULL AND j.completed_at < $1 \
     AND NOT EXISTS (SELECT 1 FROM jobs c WHERE c.parent_job_id = j.id \
                     AND c.completed_at IS NULL) \
     AND (j.parent_job_id IS NULL OR NOT EXISTS (SELECT 1 FROM jobs p \
          WHERE p.id = j.parent_job_id AND p.completed_at IS NULL))";

impl Store {
    /// Up to `limit` jobs that finished before `before` and may be deleted (see the module
    /// documentation), the oldest first.
    pub async fn expired_jobs(&self, before: DateTime<Utc>, limit: u32) -> Result<Vec<Uuid>> {
        let sql = format!(
            "SELECT j.id FROM jobs j WHERE {DELETABLE} ORDER BY j.completed_at, j.id LIMIT $2"
        );
        let mut tx = self.begin_read().await?;
        let ids: Vec<Uuid> = on_tx!(&mut tx, conn => {
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(millis(before))
                .bind(i64::from(limit))
                .fetch_all(&mut **conn)
                .await?
        });
        tx.commit().await?;
        Ok(ids)
    }

    /// Deletes, in one transaction, those of `ids` that may still be deleted at cut-off
    /// `before`, with their steps and leases; returns the ids deleted.
    pub async fn delete_jobs(&self, ids: &[Uuid], before: DateTime<Utc>) -> Result<Vec<Uuid>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_write().await?;
        // The list's type differs by backend (a JSON array of hex ids for SQLite's
        // `json_each`, a `uuid[]` for PostgreSQL), so each arm binds its own.
        let deleted: Vec<Uuid> = match &mut tx {
            Tx::Sqlite(conn, _) => {
                let hex: Vec<String> = ids.iter().map(|id| id.simple().to_string()).collect();
                let sql = format!(
                    "DELETE FROM jobs AS j WHERE j.id IN (SELECT unhex(value) FROM json_each($2)) \
                     AND {DELETABLE} RETURNING id"
                );
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .bind(millis(before))
                    .bind(to_json(&hex)?)
                    .fetch_all(&mut **conn)
                    .await?
            }
            Tx::Postgres(conn) => {
                let sql = format!(
                    "DELETE FROM jobs AS j WHERE j.id = ANY($2) AND {DELETABLE} RETURNING id"
                );
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .bind(millis(before))
                    .bind(ids)
                    .fetch_all(&mut **conn)
                    .await?
            }
            Tx::PostgresStatement(conn) => {
                let sql = format!(
                    "DELETE FROM jobs AS j WHERE j.id = ANY($2) AND {DELETABLE} RETURNING id"
                );
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .bind(millis(before))
                    .bind(ids)
                    .fetch_all(&mut **conn)
                    .await?
            }
        };
        tx.commit().await?;
        Ok(deleted)
    }

    /// Deletes the workers that are `inactive` and last heard of before `before`, holding no
    /// live lease; returns how many went. A deleted worker that comes back is told to register
    /// again (404 on its heartbeat, API §7.2).
    pub async fn delete_stale_workers(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let deleted = on_tx!(&mut tx, conn => {
            sqlx::query(
                "DELETE FROM workers WHERE status = 'inactive' AND last_heartbeat < $1 \
                 AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.worker_id = workers.worker_id \
                                 AND l.state IN ('active', 'cancelling'))",
            )
            .bind(millis(before))
            .execute(&mut **conn)
            .await?
            .rows_affected()
        });
        tx.commit().await?;
        Ok(deleted)
    }
}
