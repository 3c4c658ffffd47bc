//! The database side of `GET /metrics`: what is unfinished, queued, leased and registered right
//! now, read at scrape time in one read transaction. Every statement goes through an index
//! (`jobs_status`, the steps' primary key, the partial `steps_claimable` and
//! `leases_live_expiry`) or reads the small `workers` table, so a scrape costs a few
//! milliseconds however much history the database holds — and a server nobody scrapes runs none
//! of them.

use chrono::{DateTime, Utc};

use super::Store;
use super::error::Result;
use super::tx::{millis, on_tx};
use crate::metrics::Gauges;

type ByTask = Vec<(String, String, String, i64)>;
type ByOne = Vec<(String, i64)>;

impl Store {
    /// The gauges of [`Gauges`] at `now`.
    pub async fn gauges(&self, now: DateTime<Utc>) -> Result<Gauges> {
        let mut tx = self.begin_read().await?;
        let jobs: ByTask = on_tx!(&mut tx, conn => {
            sqlx::query_as(
                "SELECT workspace, task, status, COUNT(*) FROM jobs \
                 WHERE status IN ('pending', 'running') \
                 GROUP BY workspace, task, status ORDER BY workspace, task, status",
            )
            .fetch_all(&mut **conn)
            .await?
        });
        let steps: ByTask = on_tx!(&mut tx, conn => {
            sqlx::query_as(
                "SELECT j.workspace, j.task, s.status, COUNT(*) \
                 FROM jobs j JOIN steps s ON s.job_id = j.id \
                 WHERE j.status IN ('pending', 'running') AND s.status IN ('ready', 'running') \
                 GROUP BY j.workspace, j.task, s.status ORDER BY j.workspace, j.task, s.status",
            )
            .fetch_all(&mut **conn)
            .await?
        });
        // Claimable now: ready worker steps of jobs not halted, past any retry delay.
        let (queue_depth, oldest): (i64, Option<i64>) = on_tx!(&mut tx, conn, sql = (
            "SELECT COUNT(*), MIN(s.ready_at) FROM steps s INDEXED BY steps_claimable \
             JOIN jobs j ON j.id = s.job_id \
             WHERE s.status = 'ready' AND s.capability IS NOT NULL \
               AND (s.retry_at IS NULL OR s.retry_at <= $1) \
               AND j.status IN ('pending', 'running')",
            "SELECT COUNT(*), MIN(s.ready_at) FROM steps s JOIN jobs j ON j.id = s.job_id \
             WHERE s.status = 'ready' AND s.capability IS NOT NULL \
               AND (s.retry_at IS NULL OR s.retry_at <= $1) \
               AND j.status IN ('pending', 'running')"
        ) => {
            sqlx::query_as(sql)
                .bind(millis(now))
                .fetch_one(&mut **conn)
                .await?
        });
        let leases: ByOne = on_tx!(&mut tx, conn => {
            sqlx::query_as(
                "SELECT state, COUNT(*) FROM leases WHERE state IN ('active', 'cancelling') \
                 GROUP BY state ORDER BY state",
            )
            .fetch_all(&mut **conn)
            .await?
        });
        let workers: ByOne = on_tx!(&mut tx, conn => {
            sqlx::query_as("SELECT status, COUNT(*) FROM workers GROUP BY status ORDER BY status")
                .fetch_all(&mut **conn)
                .await?
        });
        tx.commit().await?;
        let count = |value: i64| u64::try_from(value).unwrap_or(0);
        let by_task = |rows: ByTask| {
            rows.into_iter()
                .map(|(workspace, task, status, n)| (workspace, task, status, count(n)))
                .collect()
        };
        let by_one = |rows: ByOne| {
            rows.into_iter()
                .map(|(label, n)| (label, count(n)))
                .collect()
        };
        Ok(Gauges {
            jobs: by_task(jobs),
            steps: by_task(steps),
            queue_depth: count(queue_depth),
            oldest_ready_seconds: oldest.map_or(0.0, |ready_at| {
                (millis(now) - ready_at).max(0) as f64 / 1000.0
            }),
            leases: by_one(leases),
            workers: by_one(workers),
        })
    }
}
