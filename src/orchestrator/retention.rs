//! Retention (API §8.5 item 7, `retention` in API §10.2): finished jobs older than
//! `job_days` are deleted with their steps, leases and log files, and workers inactive for
//! longer than `worker_hours` with them. The scheduler's leader runs it, so one replica does
//! (see `scheduler.rs`); what may be deleted, and why, is in `store::retention`.

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::{Orchestrator, Result};

/// How many jobs one batch deletes: one short transaction each.
pub const RETENTION_BATCH: u32 = 200;

/// The `retention` settings (API §10.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Finished jobs older than this are deleted.
    pub job_age: TimeDelta,
    /// Inactive workers not heard of for this long are deleted.
    pub worker_age: TimeDelta,
    /// How often the leader sweeps.
    pub interval: std::time::Duration,
    /// Jobs per batch.
    pub batch: u32,
}

impl Retention {
    pub fn new(job_days: u64, worker_hours: u64, interval_secs: u64) -> Retention {
        let days = i64::try_from(job_days).unwrap_or(i64::MAX / 86_400_000);
        let hours = i64::try_from(worker_hours).unwrap_or(i64::MAX / 3_600_000);
        Retention {
            job_age: TimeDelta::try_days(days).unwrap_or(TimeDelta::MAX),
            worker_age: TimeDelta::try_hours(hours).unwrap_or(TimeDelta::MAX),
            interval: std::time::Duration::from_secs(interval_secs.max(1)),
            batch: RETENTION_BATCH,
        }
    }
}

/// What one retention sweep deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub jobs: usize,
    pub workers: u64,
    /// Jobs whose log files could not all be removed (their rows went all the same).
    pub log_errors: usize,
}

impl Orchestrator {
    /// One retention sweep at `now`: batch after batch of expired jobs until none is left,
    /// then the stale workers.
    ///
    /// A batch removes its jobs' log files first, then their rows in one transaction: a crash
    /// in between leaves rows without logs, which the next sweep deletes, never log files
    /// nobody would ever delete.
    pub async fn sweep_retention(
        &self,
        now: DateTime<Utc>,
        retention: &Retention,
    ) -> Result<RetentionReport> {
        let store = &self.inner.store;
        let mut report = RetentionReport::default();
        let before = now.checked_sub_signed(retention.job_age);
        if let Some(before) = before {
            loop {
                let batch = store.expired_jobs(before, retention.batch).await?;
                if batch.is_empty() {
                    break;
                }
                report.log_errors += self.delete_logs(&batch).await;
                let deleted = store.delete_jobs(&batch, before).await?;
                report.jobs += deleted.len();
                store
                    .metrics()
                    .retention_deleted("jobs", deleted.len() as u64);
                if batch.len() < retention.batch as usize || deleted.is_empty() {
                    break;
                }
                // Let the server's own work in between batches.
                tokio::task::yield_now().await;
            }
        }
        if let Some(before) = now.checked_sub_signed(retention.worker_age) {
            report.workers = store.delete_stale_workers(before).await?;
            store.metrics().retention_deleted("workers", report.workers);
        }
        if report != RetentionReport::default() {
            tracing::info!(
                jobs = report.jobs,
                workers = report.workers,
                "retention deleted old jobs and workers"
            );
        }
        Ok(report)
    }

    /// Removes the log files of `jobs`; returns how many could not be removed entirely.
    async fn delete_logs(&self, jobs: &[Uuid]) -> usize {
        let logs = self.inner.logs.clone();
        let jobs = jobs.to_vec();
        let deleted = tokio::task::spawn_blocking(move || {
            let mut failed = 0;
            for job_id in jobs {
                if let Err(error) = logs.delete(job_id) {
                    tracing::warn!(%job_id, %error, "retention: cannot remove the job's log");
                    failed += 1;
                }
            }
            failed
        })
        .await;
        deleted.unwrap_or_else(|error| {
            tracing::warn!(%error, "retention: the log removal task failed");
            1
        })
    }
}
