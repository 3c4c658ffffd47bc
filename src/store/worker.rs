//! Workers (API §2.6, §7.2): registration, liveness, and what they ran.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Store;
use super::error::{Result, StoreError};
use super::tx::{
    from_json, from_millis, millis, on_tx, opt_from_millis, parse_status, to_json, to_u32,
};
use crate::engine::StepStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerStatus {
    Active,
    Inactive,
}

/// What a worker declares when it registers (API §7.2), already validated by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerRegistration {
    pub name: String,
    pub version: String,
    pub capabilities: Vec<String>,
    pub tags: Vec<String>,
    pub max_concurrent: u32,
}

/// A registered worker (API §2.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Worker {
    pub worker_id: Uuid,
    pub name: String,
    pub status: WorkerStatus,
    pub version: String,
    pub capabilities: Vec<String>,
    pub tags: Vec<String>,
    pub max_concurrent: u32,
    /// Live leases it holds.
    pub running_steps: u32,
    pub last_heartbeat: DateTime<Utc>,
    pub registered_at: DateTime<Utc>,
}

/// A step a worker ran (API §3.5 worker detail), as the step is now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerStep {
    pub job_id: Uuid,
    pub workspace: String,
    pub task_name: String,
    pub step_name: String,
    pub action_type: String,
    pub status: StepStatus,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub error_message: Option<String>,
    /// Whether the step's job keeps its mask record, so `error_message` was masked when it was
    /// stored; false only for jobs stored before records were kept (migration 0006).
    pub masked: bool,
}

/// `running_steps` counts through the partial index of live leases by worker: by `leases_worker`
/// it walked every lease the worker ever held, 3 ms per read after a few thousand steps — and
/// every claim reads its worker (issue #3).
macro_rules! worker_select {
    ($leases:literal) => {
        concat!(
            "SELECT w.worker_id, w.name, w.status, w.version, w.capabilities, w.tags, \
             w.max_concurrent, \
             (SELECT COUNT(*) FROM ",
            $leases,
            " WHERE l.worker_id = w.worker_id AND l.state IN ('active', 'cancelling')) \
             AS running_steps, w.last_heartbeat, w.registered_at FROM workers w"
        )
    };
}
const WORKER_SELECT_SQLITE: &str = worker_select!("leases l INDEXED BY leases_live_worker");
const WORKER_SELECT_POSTGRES: &str = worker_select!("leases l");

fn worker_select(tx: &super::tx::Tx) -> &'static str {
    if tx.is_postgres() {
        WORKER_SELECT_POSTGRES
    } else {
        WORKER_SELECT_SQLITE
    }
}

type WorkerTuple = (
    Uuid,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    i64,
);

fn from_tuple(tuple: WorkerTuple) -> Result<Worker> {
    let (worker_id, name, status, version, capabilities, tags, max, running, heartbeat, registered) =
        tuple;
    Ok(Worker {
        worker_id,
        name,
        status: parse_status(&status)?,
        version,
        capabilities: from_json(&capabilities)?,
        tags: from_json(&tags)?,
        max_concurrent: to_u32(max)?,
        running_steps: to_u32(running)?,
        last_heartbeat: from_millis(heartbeat)?,
        registered_at: from_millis(registered)?,
    })
}

impl Store {
    /// Registers a worker under a new id (each registration is a new worker, API §7.2).
    pub async fn register_worker(
        &self,
        registration: &WorkerRegistration,
        now: DateTime<Utc>,
    ) -> Result<Worker> {
        let worker_id = Uuid::new_v4();
        let mut tx = self.begin_write().await?;
        on_tx!(&mut tx, conn => {
            sqlx::query(
                "INSERT INTO workers (worker_id, name, version, status, capabilities, tags, \
                 max_concurrent, last_heartbeat, registered_at) \
                 VALUES ($1, $2, $3, 'active', $4, $5, $6, $7, $7)",
            )
            .bind(worker_id)
            .bind(registration.name.as_str())
            .bind(registration.version.as_str())
            .bind(to_json(&registration.capabilities)?)
            .bind(to_json(&registration.tags)?)
            .bind(i64::from(registration.max_concurrent))
            .bind(millis(now))
            .execute(&mut **conn)
            .await?;
        });
        tx.commit().await?;
        self.get_worker(worker_id)
            .await?
            .ok_or(StoreError::WorkerNotFound(worker_id))
    }

    pub async fn get_worker(&self, worker_id: Uuid) -> Result<Option<Worker>> {
        let mut tx = self.read_one().await?;
        let sql = format!("{} WHERE w.worker_id = $1", worker_select(&tx));
        let tuple: Option<WorkerTuple> = on_tx!(&mut tx, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(worker_id)
                .fetch_optional(&mut **conn)
                .await?
        });
        tx.commit().await?;
        tuple.map(from_tuple).transpose()
    }

    /// Workers, active first, then the most recently registered (API §3.1), and how many
    /// there are in all.
    pub async fn list_workers(&self, limit: u32, offset: u64) -> Result<(Vec<Worker>, u64)> {
        let mut tx = self.begin_read().await?;
        let sql = format!(
            "{} ORDER BY CASE WHEN w.status = 'active' THEN 0 ELSE 1 END, \
             w.registered_at DESC, w.worker_id LIMIT $1 OFFSET $2",
            worker_select(&tx)
        );
        let offset = super::tx::to_i64(offset)?;
        let (tuples, total): (Vec<WorkerTuple>, i64) = on_tx!(&mut tx, conn => {
            let tuples = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(i64::from(limit))
                .bind(offset)
                .fetch_all(&mut **conn)
                .await?;
            let total = sqlx::query_scalar("SELECT COUNT(*) FROM workers")
                .fetch_one(&mut **conn)
                .await?;
            (tuples, total)
        });
        tx.commit().await?;
        let workers = tuples
            .into_iter()
            .map(from_tuple)
            .collect::<Result<Vec<_>>>()?;
        Ok((workers, u64::try_from(total).unwrap_or_default()))
    }

    /// Marks workers without a heartbeat for `timeout` inactive (API §8.5 item 1) and returns
    /// their ids. Their leases expire on their own schedule.
    pub async fn mark_inactive_workers(
        &self,
        now: DateTime<Utc>,
        timeout: TimeDelta,
    ) -> Result<Vec<Uuid>> {
        let mut tx = self.begin_write().await?;
        let ids: Vec<Uuid> = on_tx!(&mut tx, conn => {
            sqlx::query_scalar(
                "UPDATE workers SET status = 'inactive' \
                 WHERE status = 'active' AND last_heartbeat < $1 RETURNING worker_id",
            )
            .bind(millis(now - timeout))
            .fetch_all(&mut **conn)
            .await?
        });
        tx.commit().await?;
        Ok(ids)
    }

    /// Deregisters a worker (API §7.2): it becomes `inactive` and every live lease it holds
    /// is made due at `now`, so [`Store::expire_lease`] takes it at once — and the recovery
    /// sweep does if the caller stops before that. Returns those leases' ids.
    /// [`StoreError::WorkerNotFound`] for an unknown worker.
    pub async fn deregister_worker(
        &self,
        worker_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<Uuid>> {
        let mut tx = self.begin_write().await?;
        let (updated, leases): (u64, Vec<Uuid>) = on_tx!(&mut tx, conn => {
            // The worker row first, as a heartbeat does: a claim holding it (see
            // `worker_is_active`) commits before this goes on, so its lease is seen below.
            let updated = sqlx::query("UPDATE workers SET status = 'inactive' WHERE worker_id = $1")
                .bind(worker_id)
                .execute(&mut **conn)
                .await?
                .rows_affected();
            let leases = sqlx::query_scalar(
                "UPDATE leases SET expires_at = $2 \
                 WHERE worker_id = $1 AND state IN ('active', 'cancelling') RETURNING lease_id",
            )
            .bind(worker_id)
            .bind(millis(now))
            .fetch_all(&mut **conn)
            .await?;
            (updated, leases)
        });
        if updated == 0 {
            return Err(StoreError::WorkerNotFound(worker_id));
        }
        tx.commit().await?;
        let mut leases = leases;
        leases.sort_unstable();
        Ok(leases)
    }

    /// Of the `local` jobs a worker keeps a working directory for (heartbeat `pinned_jobs`,
    /// API §7.2), those it may delete now (`release_jobs`): finished ones, ones that no longer
    /// exist, and ones not pinned to this worker (it registered again under a new id).
    pub async fn released_jobs(&self, worker_id: Uuid, pinned: &[Uuid]) -> Result<Vec<Uuid>> {
        if pinned.is_empty() {
            return Ok(Vec::new());
        }
        let mut ordered = pinned.to_vec();
        ordered.sort_unstable();
        ordered.dedup();
        let mut tx = self.begin_read().await?;
        let mut released = Vec::new();
        for job_id in ordered {
            let row: Option<(bool, Option<Uuid>)> = on_tx!(&mut tx, conn => {
                sqlx::query_as(
                    "SELECT completed_at IS NOT NULL, pinned_worker_id FROM jobs WHERE id = $1",
                )
                .bind(job_id)
                .fetch_optional(&mut **conn)
                .await?
            });
            let keep =
                row.is_some_and(|(finished, pinned_to)| !finished && pinned_to == Some(worker_id));
            if !keep {
                released.push(job_id);
            }
        }
        tx.commit().await?;
        Ok(released)
    }

    /// Unfinished jobs pinned to a worker that is no longer active, or no longer registered
    /// (API §7.9), with that worker's id.
    pub async fn lost_pinned_jobs(&self) -> Result<Vec<(Uuid, Uuid)>> {
        let mut tx = self.begin_read().await?;
        let lost: Vec<(Uuid, Uuid)> = on_tx!(&mut tx, conn => {
            sqlx::query_as(
                "SELECT j.id, j.pinned_worker_id FROM jobs j \
                 LEFT JOIN workers w ON w.worker_id = j.pinned_worker_id \
                 WHERE j.pinned_worker_id IS NOT NULL AND j.completed_at IS NULL \
                 AND (w.worker_id IS NULL OR w.status <> 'active') \
                 ORDER BY j.created_at, j.id",
            )
            .fetch_all(&mut **conn)
            .await?
        });
        tx.commit().await?;
        Ok(lost)
    }

    /// The `limit` steps a worker most recently claimed, newest first (API §3.5), of the jobs
    /// `visibility` lets through.
    pub async fn worker_steps(
        &self,
        worker_id: Uuid,
        limit: u32,
        visibility: Option<&super::Visibility>,
    ) -> Result<Vec<WorkerStep>> {
        use super::query::{Param, bind_all, visibility_condition};
        type Tuple = (
            Uuid,
            String,
            String,
            String,
            String,
            String,
            Option<i64>,
            Option<i64>,
            Option<String>,
            bool,
        );
        let mut tx = self.begin_read().await?;
        let mut params: Vec<Param> = vec![Param::Id(worker_id)];
        let visible = visibility
            .and_then(|visibility| visibility_condition(visibility, tx.is_postgres(), &mut params))
            .map_or_else(String::new, |condition| format!("WHERE {condition} "));
        let sql = format!(
            "SELECT s.job_id, j.workspace, j.task, s.step_name, s.action_type, s.status, \
             s.started_at, s.completed_at, s.error_message, j.mask IS NOT NULL \
             FROM (SELECT job_id, step_name, MAX(claimed_at) AS last_claim FROM leases \
                   WHERE worker_id = $1 GROUP BY job_id, step_name) AS l \
             JOIN steps s ON s.job_id = l.job_id AND s.step_name = l.step_name \
             JOIN jobs j ON j.id = s.job_id {visible}\
             ORDER BY l.last_claim DESC, s.job_id, s.step_name LIMIT ${}",
            params.len() + 1
        );
        let tuples: Vec<Tuple> = on_tx!(&mut tx, conn => {
            bind_all!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), &params)
                .bind(i64::from(limit))
                .fetch_all(&mut **conn)
                .await?
        });
        tx.commit().await?;
        tuples
            .into_iter()
            .map(
                |(
                    job_id,
                    workspace,
                    task_name,
                    step_name,
                    action_type,
                    status,
                    started,
                    completed,
                    error_message,
                    masked,
                )| {
                    Ok(WorkerStep {
                        job_id,
                        workspace,
                        task_name,
                        step_name,
                        action_type,
                        status: parse_status(&status)?,
                        started_at: opt_from_millis(started)?,
                        completed_at: opt_from_millis(completed)?,
                        error_message,
                        masked,
                    })
                },
            )
            .collect()
    }
}

/// Whether the worker may be granted a lease now: it exists and is `active` (an inactive or
/// deregistered worker never is, API §7.2). On PostgreSQL the row is share-locked until the
/// claim commits, so a concurrent deregistration waits and then sees the new lease.
pub(super) async fn worker_is_active(tx: &mut super::tx::Tx, worker_id: Uuid) -> Result<bool> {
    let status: Option<String> = on_tx!(tx, conn, sql = (
        "SELECT status FROM workers WHERE worker_id = $1",
        "SELECT status FROM workers WHERE worker_id = $1 FOR SHARE"
    ) => {
        sqlx::query_scalar(sql)
            .bind(worker_id)
            .fetch_optional(&mut **conn)
            .await?
    });
    Ok(status.as_deref() == Some("active"))
}
