//! Leases and fencing (API §7.4): the token a claim hands to a worker, checked by every report,
//! renewed by heartbeats (API §7.2), turned `cancelling` when the job stops (API §7.8) and
//! expired by recovery when its worker goes quiet (API §8.5).

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Store;
use super::error::{Result, StoreError};
use super::job::{LeaseEnding, Lock};
use super::tx::{
    Tx, from_millis, millis, on_tx, opt_from_millis, opt_millis, parse_status, to_json, to_u32,
};
use crate::engine::{JobState, StepStatus};

/// Lease states (API §7.4): `active` → `cancelling` → `ended`, or → `expired` / `revoked`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseStatus {
    Active,
    /// The job stopped: the worker must kill the process and report `cancelled: true`.
    Cancelling,
    /// The worker's report finished the attempt.
    Ended,
    /// Recovery found it not renewed in time.
    Expired,
    /// The server took the step away (timeout backstop, rejection, …).
    Revoked,
}

impl LeaseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseStatus::Active => "active",
            LeaseStatus::Cancelling => "cancelling",
            LeaseStatus::Ended => "ended",
            LeaseStatus::Expired => "expired",
            LeaseStatus::Revoked => "revoked",
        }
    }

    /// A live lease is the current lease of a running step; reports under it are honoured.
    pub fn is_live(self) -> bool {
        matches!(self, LeaseStatus::Active | LeaseStatus::Cancelling)
    }
}

/// One attempt handed to a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    pub lease_id: Uuid,
    pub job_id: Uuid,
    pub step_name: String,
    pub attempt: u32,
    pub worker_id: Uuid,
    pub state: LeaseStatus,
    pub claimed_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
    /// What the server recorded about the `complete` report that ended the lease, so a retried
    /// identical report can be answered `duplicate` (API §7.4).
    pub report_digest: Option<String>,
}

/// What a worker's report names: every field must match the lease (API §7.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseKey {
    pub lease_id: Uuid,
    pub worker_id: Uuid,
    pub job_id: Uuid,
    pub step_name: String,
}

/// Which report [`Store::with_lease`] applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseUse {
    /// `start`: records the lease's `started_at` if the step still runs afterwards. A
    /// `cancelling` lease is accepted so the engine can cancel the step in the same
    /// transaction; the server then answers 409 (API §7.6).
    Start,
    /// `complete`: the lease ends with `digest` recorded.
    Complete { digest: Option<String> },
}

/// The answer to a heartbeat (API §7.2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HeartbeatReply {
    /// Leases whose process the worker must stop and report `cancelled: true`.
    pub cancel: Vec<Uuid>,
    /// Leases the server no longer honours: kill, do not report.
    pub unknown: Vec<Uuid>,
}

const LEASE_COLUMNS: &str = "lease_id, job_id, step_name, attempt, worker_id, state, claimed_at, \
     started_at, expires_at, report_digest";

type LeaseTuple = (
    Uuid,
    Uuid,
    String,
    i64,
    Uuid,
    String,
    i64,
    Option<i64>,
    i64,
    Option<String>,
);

fn from_tuple(tuple: LeaseTuple) -> Result<Lease> {
    let (lease_id, job_id, step_name, attempt, worker_id, state, claimed, started, expires, digest) =
        tuple;
    Ok(Lease {
        lease_id,
        job_id,
        step_name,
        attempt: to_u32(attempt)?,
        worker_id,
        state: parse_status(&state)?,
        claimed_at: from_millis(claimed)?,
        started_at: opt_from_millis(started)?,
        expires_at: from_millis(expires)?,
        report_digest: digest,
    })
}

/// The one bind of [`select_leases`]'s condition, as `$1`.
enum By {
    Id(Uuid),
    Millis(i64),
    Nothing,
}

/// Leases matching a condition on the `leases` table.
async fn select_leases(
    tx: &mut Tx,
    where_sql: &'static str,
    lock: Lock,
    by: By,
) -> Result<Vec<Lease>> {
    let lock_sql = if lock == Lock::ForUpdate && tx.is_postgres() {
        " FOR UPDATE"
    } else {
        ""
    };
    let sql = format!("SELECT {LEASE_COLUMNS} FROM leases WHERE {where_sql}{lock_sql}");
    let tuples: Vec<LeaseTuple> = on_tx!(tx, conn => {
        let query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        let query = match by {
            By::Id(id) => query.bind(id),
            By::Millis(time) => query.bind(time),
            By::Nothing => query,
        };
        query.fetch_all(&mut **conn).await?
    });
    tuples.into_iter().map(from_tuple).collect()
}

/// The lease named by `key` if it is live and matches; otherwise [`StoreError::StaleLease`].
fn verify(lease: Option<Lease>, key: &LeaseKey) -> Result<Lease> {
    match lease {
        Some(lease)
            if lease.state.is_live()
                && lease.worker_id == key.worker_id
                && lease.job_id == key.job_id
                && lease.step_name == key.step_name =>
        {
            Ok(lease)
        }
        other => Err(StoreError::StaleLease {
            lease_id: key.lease_id,
            state: other.as_ref().map(|lease| lease.state),
            report_digest: other.and_then(|lease| lease.report_digest),
        }),
    }
}

impl Store {
    /// The lease of a report that changes no job state (a log batch): current and matching, or
    /// [`StoreError::StaleLease`]. `state` tells a log response whether to answer `cancel`.
    pub async fn check_lease(&self, key: &LeaseKey) -> Result<Lease> {
        let mut tx = self.read_one().await?;
        let lease = select_leases(&mut tx, "lease_id = $1", Lock::None, By::Id(key.lease_id))
            .await?
            .pop();
        tx.commit().await?;
        verify(lease, key)
    }

    /// Applies a worker's `start` or `complete` report: in one transaction, lock the job, check
    /// the lease is current and the worker's (else [`StoreError::StaleLease`] and nothing
    /// changes), run `f` (which applies `StepStarted` or `StepFinished`), write back what
    /// changed and end the lease if its step moved on. Returns the lease as it was before.
    pub async fn with_lease<T, E>(
        &self,
        key: &LeaseKey,
        usage: LeaseUse,
        f: impl FnOnce(&mut JobState, &Lease) -> Result<T, E>,
    ) -> Result<(T, JobState, Lease), E>
    where
        E: From<StoreError>,
    {
        let mut tx = self.begin_write().await?;
        let Some(loaded) = self.load_job(&mut tx, key.job_id, Lock::ForUpdate).await? else {
            // No job, so no lease of it can be current.
            return Err(StoreError::StaleLease {
                lease_id: key.lease_id,
                state: None,
                report_digest: None,
            }
            .into());
        };
        // The job's lock already serialises every change of its leases' state (heartbeats only
        // move `expires_at`), so the lease row itself is read without a lock; locking it here
        // would take lease locks out of lease-id order.
        let lease = select_leases(&mut tx, "lease_id = $1", Lock::None, By::Id(key.lease_id))
            .await?
            .pop();
        let lease = verify(lease, key)?;
        let mut state = loaded.state.clone();
        let value = f(&mut state, &lease)?;
        let digest = match &usage {
            LeaseUse::Start => None,
            LeaseUse::Complete { digest } => digest.clone(),
        };
        let ending = LeaseEnding {
            lease_id: Some(lease.lease_id),
            state: Some(LeaseStatus::Ended),
            digest,
        };
        let saved = self.save_job(&mut tx, loaded, &state, &ending).await?;
        if usage == LeaseUse::Start
            && let Some(step) = state.step(&lease.step_name)
            && step.status == StepStatus::Running
            && step.attempt == lease.attempt
        {
            let started = opt_millis(step.started_at);
            on_tx!(&mut tx, conn => {
                sqlx::query("UPDATE leases SET started_at = $2 WHERE lease_id = $1")
                    .bind(lease.lease_id)
                    .bind(started)
                    .execute(&mut **conn)
                    .await
                    .map_err(StoreError::from)?;
            });
        }
        tx.commit().await?;
        self.committed(saved);
        Ok((value, state, lease))
    }

    /// Expires one lease (API §8.5 item 2) if it is still live and past `expires_at` at `now`
    /// — a heartbeat may have renewed it since [`Store::expired_leases`] listed it; then
    /// nothing happens and the answer is `None`. Otherwise, in one transaction, `f` applies the
    /// lost attempt to the job (`StepFinished` failed, or cancelled for a `cancelling` lease)
    /// and the lease becomes `expired`.
    pub async fn expire_lease<T, E>(
        &self,
        lease_id: Uuid,
        now: DateTime<Utc>,
        f: impl FnOnce(&mut JobState, &Lease) -> Result<T, E>,
    ) -> Result<Option<(T, JobState)>, E>
    where
        E: From<StoreError>,
    {
        let mut tx = self.begin_write().await?;
        let Some(found) = select_leases(&mut tx, "lease_id = $1", Lock::None, By::Id(lease_id))
            .await?
            .pop()
        else {
            return Ok(None);
        };
        let Some(loaded) = self
            .load_job(&mut tx, found.job_id, Lock::ForUpdate)
            .await?
        else {
            return Ok(None);
        };
        // Re-read under the job's lock: the lease may have been renewed or ended meanwhile.
        let lease = select_leases(&mut tx, "lease_id = $1", Lock::ForUpdate, By::Id(lease_id))
            .await?
            .pop();
        let Some(lease) = lease.filter(|lease| lease.state.is_live() && lease.expires_at <= now)
        else {
            return Ok(None);
        };
        let mut state = loaded.state.clone();
        let value = f(&mut state, &lease)?;
        let ending = LeaseEnding {
            lease_id: Some(lease_id),
            state: Some(LeaseStatus::Expired),
            digest: None,
        };
        let saved = self.save_job(&mut tx, loaded, &state, &ending).await?;
        // The attempt is lost whatever `f` did: the lease is never honoured again.
        on_tx!(&mut tx, conn => {
            sqlx::query(
                "UPDATE leases SET state = 'expired' \
                 WHERE lease_id = $1 AND state IN ('active', 'cancelling')",
            )
            .bind(lease_id)
            .execute(&mut **conn)
            .await
            .map_err(StoreError::from)?;
        });
        tx.commit().await?;
        self.committed(saved);
        Ok(Some((value, state)))
    }

    /// Live leases past their expiry at `now`, oldest first: the recovery loop expires each
    /// with [`Store::expire_lease`].
    pub async fn expired_leases(&self, now: DateTime<Utc>) -> Result<Vec<Lease>> {
        let mut tx = self.begin_read().await?;
        let leases = select_leases(
            &mut tx,
            "state IN ('active', 'cancelling') AND expires_at <= $1 ORDER BY expires_at, lease_id",
            Lock::None,
            By::Millis(millis(now)),
        )
        .await?;
        tx.commit().await?;
        Ok(leases)
    }

    /// Every live lease, for the step-timeout backstop (API §8.5 item 3).
    pub async fn live_leases(&self) -> Result<Vec<Lease>> {
        let mut tx = self.begin_read().await?;
        let leases = select_leases(
            &mut tx,
            "state IN ('active', 'cancelling') ORDER BY claimed_at, lease_id",
            Lock::None,
            By::Nothing,
        )
        .await?;
        tx.commit().await?;
        Ok(leases)
    }

    /// Every lease a job's steps ever had, in claim order: which worker ran which attempt.
    pub async fn job_leases(&self, job_id: Uuid) -> Result<Vec<Lease>> {
        let mut tx = self.begin_read().await?;
        let leases = select_leases(
            &mut tx,
            "job_id = $1 ORDER BY claimed_at, attempt, lease_id",
            Lock::None,
            By::Id(job_id),
        )
        .await?;
        tx.commit().await?;
        Ok(leases)
    }

    /// A worker's heartbeat (API §7.2): marks it active, renews every listed lease that is
    /// live and its own to `now + ttl`, and reports which of them to cancel and which are no
    /// longer honoured. [`StoreError::WorkerNotFound`] makes the worker register again.
    pub async fn heartbeat(
        &self,
        worker_id: Uuid,
        lease_ids: &[Uuid],
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Result<HeartbeatReply> {
        let mut tx = self.begin_write().await?;
        let updated = on_tx!(&mut tx, conn => {
            sqlx::query(
                "UPDATE workers SET status = 'active', last_heartbeat = $2 WHERE worker_id = $1",
            )
            .bind(worker_id)
            .bind(millis(now))
            .execute(&mut **conn)
            .await?
            .rows_affected()
        });
        if updated == 0 {
            return Err(StoreError::WorkerNotFound(worker_id));
        }
        let expires_at = millis(now + ttl);
        let mut ordered = lease_ids.to_vec();
        ordered.sort_unstable();
        ordered.dedup();
        // One statement renews them all, however many there are (the server caps the list at
        // 400). On PostgreSQL the rows are locked in lease-id order first, the order job
        // changes update leases in, so a heartbeat and a cancellation of the same job cannot
        // deadlock; SQLite has one writer at a time.
        let renewed: Vec<(Uuid, String)> = if ordered.is_empty() {
            Vec::new()
        } else {
            let hex: Vec<String> = ordered.iter().map(|id| id.simple().to_string()).collect();
            // The list's type differs by backend (a JSON array of hex ids for SQLite's
            // `json_each`, a `uuid[]` for PostgreSQL), so each arm binds its own.
            match &mut tx {
                Tx::Sqlite(conn, _) => {
                    sqlx::query_as(RENEW_SQLITE)
                        .bind(worker_id)
                        .bind(expires_at)
                        .bind(to_json(&hex)?)
                        .fetch_all(&mut **conn)
                        .await?
                }
                Tx::Postgres(conn) => {
                    sqlx::query_as(RENEW_POSTGRES)
                        .bind(worker_id)
                        .bind(expires_at)
                        .bind(&ordered)
                        .fetch_all(&mut **conn)
                        .await?
                }
                Tx::PostgresStatement(conn) => {
                    sqlx::query_as(RENEW_POSTGRES)
                        .bind(worker_id)
                        .bind(expires_at)
                        .bind(&ordered)
                        .fetch_all(&mut **conn)
                        .await?
                }
            }
        };
        let mut reply = HeartbeatReply::default();
        for lease_id in ordered {
            match renewed.iter().find(|(id, _)| *id == lease_id) {
                Some((_, state)) if state == "cancelling" => reply.cancel.push(lease_id),
                Some(_) => {}
                None => reply.unknown.push(lease_id),
            }
        }
        tx.commit().await?;
        Ok(reply)
    }
}

/// Renews the listed leases of a worker that are still live; `$3` is a JSON array of the ids
/// in hex (SQLite stores UUIDs as 16-byte blobs).
const RENEW_SQLITE: &str = "UPDATE leases SET expires_at = $2 \
     WHERE worker_id = $1 AND state IN ('active', 'cancelling') \
     AND lease_id IN (SELECT unhex(value) FROM json_each($3)) \
     RETURNING lease_id, state";

/// The same for PostgreSQL, locking the rows in lease-id order before updating them.
const RENEW_POSTGRES: &str = "WITH live AS (\
     SELECT lease_id FROM leases \
     WHERE worker_id = $1 AND state IN ('active', 'cancelling') AND lease_id = ANY($3) \
     ORDER BY lease_id FOR UPDATE) \
     UPDATE leases SET expires_at = $2 FROM live WHERE leases.lease_id = live.lease_id \
     RETURNING leases.lease_id, leases.state";
