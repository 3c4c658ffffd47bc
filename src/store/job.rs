//! Jobs and their steps: creation, the serialised read-modify-write every state change goes
//! through ([`Store::with_job`]), and reading one job back.
//!
//! A change loads the whole [`JobState`] under the job's lock, lets the caller apply engine
//! events to it, and writes back only the rows that differ from what was loaded. Leases follow
//! the steps in the same transaction (see [`LeaseEnding`]), so no caller can forget to fence a
//! step that moved on.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Store;
use super::error::{Result, StoreError};
use super::lease::LeaseStatus;
use super::rows::{JobRow, StepRow, bind_job, bind_step, read_job, read_step};
use super::tx::{Tx, on_tx, to_json};
use super::{notify, sql};
use crate::engine::{JobPlan, JobState, StepState, StepStatus, Steps};
use crate::metrics::Transition;

/// What a job's rows need besides its [`JobState`]: claim order and routing (API §7.5), fixed
/// when the job is created.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobRouting {
    /// Higher is claimed first (task `priority`, WF [P2]).
    pub priority: i64,
    /// The action tags of each flow step; loop instances inherit their loop step's.
    pub tags: BTreeMap<String, Vec<String>>,
}

impl JobRouting {
    pub fn from_plan(plan: &JobPlan, priority: i64) -> JobRouting {
        JobRouting {
            priority,
            tags: plan
                .steps
                .iter()
                .map(|step| (step.name.clone(), step.action.tags.clone()))
                .collect(),
        }
    }
}

/// A job as loaded inside a transaction: its row and step tags, to diff against, its state, and
/// the `version` of its row.
#[derive(Debug, Clone)]
pub(crate) struct LoadedJob {
    pub row: JobRow,
    /// The `tags` column of each step row, by step name (not part of [`JobState`]). Shared
    /// between versions: tags never change, so only inserting loop instances copies it.
    pub tags: Arc<HashMap<String, String>>,
    pub state: JobState,
    pub version: i64,
    /// What the write that produced this version changed, for the metrics once it committed
    /// ([`Store::committed`]); empty for a version read from the rows.
    pub transitions: Vec<Transition>,
}

/// How the leases of steps that stopped running end in this transaction. The lease whose
/// report caused the change ends as `state` (with the report's digest); any other live lease
/// whose step moved on was taken away by the server and is `revoked`.
#[derive(Debug, Clone, Default)]
pub(crate) struct LeaseEnding {
    pub lease_id: Option<Uuid>,
    pub state: Option<LeaseStatus>,
    pub digest: Option<String>,
}

/// Whether loading takes the job's row lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lock {
    None,
    ForUpdate,
}

impl Store {
    /// Stores a new job with all its steps in one transaction.
    pub async fn create_job(&self, job: &JobState, routing: &JobRouting) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let loaded = self.insert_job(&mut tx, job, routing).await?;
        tx.commit().await?;
        self.committed(Arc::new(loaded));
        Ok(())
    }

    /// The serialised read-modify-write of one job (STYLE 6): in one transaction, lock the job,
    /// load it, run `f` (which applies engine events), write back what changed and commit. If
    /// `f` or a write fails, the transaction rolls back and the database is as it was.
    ///
    /// Leases follow the steps: a live lease whose step is no longer running that attempt is
    /// revoked, and the leases of running steps of a halted job become `cancelling` (API §8.4).
    pub async fn with_job<T, E>(
        &self,
        job_id: Uuid,
        f: impl FnOnce(&mut JobState) -> Result<T, E>,
    ) -> Result<(T, JobState), E>
    where
        E: From<StoreError>,
    {
        self.with_job_creating(job_id, |job| f(job).map(|value| (value, Vec::new())))
            .await
    }

    /// [`Store::with_job`] for a change that also creates jobs: `f` returns, besides its value,
    /// new jobs to insert in the same transaction — a child job together with the parent's
    /// `ChildJobCreated`, or hook jobs together with the event that finished the job — so a
    /// crash can never leave one without the other.
    pub async fn with_job_creating<T, E>(
        &self,
        job_id: Uuid,
        f: impl FnOnce(&mut JobState) -> Result<(T, Vec<(JobState, JobRouting)>), E>,
    ) -> Result<(T, JobState), E>
    where
        E: From<StoreError>,
    {
        let mut tx = self.begin_write().await?;
        let loaded = self
            .load_job(&mut tx, job_id, Lock::ForUpdate)
            .await?
            .ok_or(StoreError::JobNotFound(job_id))?;
        let mut state = loaded.state.clone();
        let (value, new_jobs) = match f(&mut state) {
            Ok(changed) => changed,
            Err(error) => {
                self.cache.put(loaded);
                return Err(error);
            }
        };
        let saved = self
            .save_job(&mut tx, loaded, &state, &LeaseEnding::default())
            .await?;
        let mut created = Vec::with_capacity(new_jobs.len());
        for (job, routing) in &new_jobs {
            created.push(self.insert_job(&mut tx, job, routing).await?);
        }
        tx.commit().await?;
        self.committed(saved);
        for loaded in created {
            self.committed(Arc::new(loaded));
        }
        Ok((value, state))
    }

    /// One job with its steps, as last committed.
    pub async fn get_job(&self, job_id: Uuid) -> Result<Option<JobState>> {
        let mut tx = self.begin_read().await?;
        let loaded = self.load_job(&mut tx, job_id, Lock::None).await?;
        tx.commit().await?;
        Ok(loaded.map(|loaded| loaded.state.clone()))
    }

    /// Whether one job has finished (its `completed_at` is set), without reading its steps: a
    /// cheap poll. `None` when there is no such job.
    pub async fn job_finished(&self, job_id: Uuid) -> Result<Option<bool>> {
        let mut tx = self.read_one().await?;
        let finished: Option<bool> = on_tx!(&mut tx, conn => {
            sqlx::query_scalar("SELECT completed_at IS NOT NULL FROM jobs WHERE id = $1")
                .bind(job_id)
                .fetch_optional(&mut **conn)
                .await?
        });
        tx.commit().await?;
        Ok(finished)
    }

    /// A job inside `tx`, locked if asked: from the cache when its version is the row's, else
    /// from its rows (and then cached).
    pub(crate) async fn load_job(
        &self,
        tx: &mut Tx,
        job_id: Uuid,
        lock: Lock,
    ) -> Result<Option<Arc<LoadedJob>>> {
        // A locked load is the start of a change, and every committed change increments the
        // version: the increment takes the row lock and returns the version loaded, one round
        // trip for both. A change that rolls back takes its increment with it.
        let version_sql = match lock {
            Lock::ForUpdate => {
                "UPDATE jobs SET version = version + 1 WHERE id = $1 \
                               RETURNING version - 1"
            }
            Lock::None => "SELECT version FROM jobs WHERE id = $1",
        };
        let version: Option<i64> = on_tx!(&mut *tx, conn => {
            sqlx::query_scalar(version_sql)
                .bind(job_id)
                .fetch_optional(&mut **conn)
                .await?
        });
        let Some(version) = version else {
            return Ok(None);
        };
        // A locked load is a change, which puts the job back when it commits.
        let cached = match lock {
            Lock::ForUpdate => self.cache.take(job_id, version),
            Lock::None => self.cache.get(job_id, version),
        };
        if let Some(cached) = cached {
            return Ok(Some(cached));
        }
        let Some(mut loaded) = load_rows(tx, job_id).await? else {
            return Ok(None);
        };
        // A locked load has incremented the row's version in this transaction, and the row
        // read back shows it; the steps read are those of the version before.
        loaded.version = version;
        let loaded = Arc::new(loaded);
        if lock == Lock::None {
            self.cache.put(Arc::clone(&loaded));
        }
        Ok(Some(loaded))
    }
}

impl Store {
    /// Inserts a job and its steps; returns it as [`load_job`](Store::load_job) would read it back.
    pub(super) async fn insert_job(
        &self,
        tx: &mut Tx,
        job: &JobState,
        routing: &JobRouting,
    ) -> Result<LoadedJob> {
        let row = JobRow {
            priority: routing.priority,
            ..JobRow::from_state(job)?
        };
        let inserted = on_tx!(&mut *tx, conn => {
            bind_job!(sqlx::query(sql::INSERT_JOB.as_str()), &row)
                .execute(&mut **conn)
                .await
                .map(|_| ())
        });
        match inserted {
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                return Err(StoreError::DuplicateJob(job.id));
            }
            other => other?,
        }
        let mut tags = HashMap::with_capacity(job.steps.len());
        let mut steps = Vec::with_capacity(job.steps.len());
        for (position, step) in job.steps.iter().enumerate() {
            let step_tags = routing
                .tags
                .get(step.flow_name())
                .cloned()
                .unwrap_or_default();
            let step_row = StepRow::from_state(job.id, position, step, &to_json(&step_tags)?)?;
            insert_step(tx, &step_row).await?;
            steps.push(step_row.to_state()?);
            tags.insert(step_row.step_name, step_row.tags);
        }
        if job
            .steps
            .iter()
            .any(|step| step.status == StepStatus::Ready)
        {
            notify::step_ready(tx, &self.id).await?;
        }
        // The state as stored: times at millisecond precision, like a load from the rows.
        let state = row.to_state(steps)?;
        let mut transitions = vec![Transition::JobCreated {
            workspace: state.workspace.clone(),
            task: state.task.clone(),
            source_type: state.source_type.clone(),
        }];
        for step in state.steps.iter() {
            step_transition(&state, None, step, &mut transitions);
        }
        job_transition(&state, &mut transitions);
        Ok(LoadedJob {
            row,
            tags: Arc::new(tags),
            state,
            version: 0,
            transitions,
        })
    }
}

/// A job from its rows.
async fn load_rows(tx: &mut Tx, job_id: Uuid) -> Result<Option<LoadedJob>> {
    let row = on_tx!(&mut *tx, conn => {
        match sqlx::query(sql::SELECT_JOB.as_str()).bind(job_id).fetch_optional(&mut **conn).await? {
            Some(row) => Some((read_job!(&row), sqlx::Row::try_get::<i64, _>(&row, "version")?)),
            None => None,
        }
    });
    let Some((row, version)) = row else {
        return Ok(None);
    };
    let steps: Vec<StepRow> = on_tx!(&mut *tx, conn => {
        let rows = sqlx::query(sql::SELECT_STEPS.as_str())
            .bind(job_id)
            .fetch_all(&mut **conn)
            .await?;
        let mut steps = Vec::with_capacity(rows.len());
        for row in &rows {
            steps.push(read_step!(row));
        }
        steps
    });
    let states = steps
        .iter()
        .map(StepRow::to_state)
        .collect::<Result<Vec<_>>>()?;
    let state = row.to_state(states)?;
    let tags = Arc::new(
        steps
            .into_iter()
            .map(|step| (step.step_name, step.tags))
            .collect(),
    );
    Ok(Some(LoadedJob {
        row,
        tags,
        state,
        version,
        transitions: Vec::new(),
    }))
}

/// Writes the rows of `new` that differ from `loaded` (a locked load, which incremented the
/// job's version), then brings the job's leases in line. Returns the job as now stored, to cache once committed.
///
/// Steps are compared as states, not rows: a row is a function of the step's state, position and
/// tags, and tags never change, so only changed steps are encoded — a change to one step of a
/// large job costs one row, not all of them.
impl Store {
    pub(crate) async fn save_job(
        &self,
        tx: &mut Tx,
        loaded: Arc<LoadedJob>,
        new: &JobState,
        ending: &LeaseEnding,
    ) -> Result<Arc<LoadedJob>> {
        // Owned unless a reader holds it too: unchanged steps then move into the new version.
        let LoadedJob {
            row: old_row,
            mut tags,
            state: old_state,
            version: old_version,
            transitions: _,
        } = Arc::try_unwrap(loaded).unwrap_or_else(|shared| LoadedJob::clone(&shared));
        let job_row = JobRow::from_state(new)?;
        let version = old_version + 1;
        if job_row != old_row {
            on_tx!(&mut *tx, conn => {
                bind_job!(sqlx::query(sql::UPDATE_JOB.as_str()), &job_row)
                    .execute(&mut **conn)
                    .await?;
            });
        }
        // The row is at `version` already: the locked load incremented it.
        // Steps keep their positions unless loop instances were inserted before them; the index by
        // name is built only then. Every old step must be matched by a new one.
        let old_completed_at = old_state.completed_at;
        let old = old_state.steps;
        let mut transitions = Vec::new();
        let mut matched = vec![false; old.len()];
        let mut by_name: Option<HashMap<&str, usize>> = None;
        let mut stored = Steps::with_capacity(new.steps.len());
        let mut made_ready = false;
        let mut stopped_running = false;
        for (position, step) in new.steps.iter().enumerate() {
            // A step the change did not touch is still the loaded version's value: one pointer
            // comparison, no copy (see `Steps`).
            if new.steps.shares(position, &old, position) {
                matched[position] = true;
                stored.push_shared(old.share(position).expect("a shared step exists"));
                continue;
            }
            let previous = match old.get(position) {
                Some(same) if same.step_name == step.step_name => Some(position),
                _ => by_name
                    .get_or_insert_with(|| {
                        old.iter()
                            .enumerate()
                            .map(|(index, step)| (step.step_name.as_str(), index))
                            .collect()
                    })
                    .get(step.step_name.as_str())
                    .copied(),
            };
            let before = previous.map(|index| {
                matched[index] = true;
                &old[index]
            });
            if previous == Some(position) && before == Some(step) {
                stored.push_shared(old.share(position).expect("the step was found"));
                continue;
            }
            // New rows are loop instances: they route like their loop step.
            let step_tags = tags
                .get(step.step_name.as_str())
                .or_else(|| tags.get(step.flow_name()))
                .map_or("[]", String::as_str);
            let row = StepRow::from_state(new.id, position, step, step_tags)?;
            step_transition(new, before, step, &mut transitions);
            made_ready |= step.status == StepStatus::Ready
                && before.is_none_or(|before| before.status != StepStatus::Ready);
            stopped_running |= before.is_some_and(|before| {
                before.status == StepStatus::Running
                    && (step.status != StepStatus::Running || step.attempt != before.attempt)
            });
            if previous.is_some() {
                on_tx!(&mut *tx, conn => {
                    bind_step!(sqlx::query(sql::UPDATE_STEP.as_str()), &row)
                        .execute(&mut **conn)
                        .await?;
                });
            } else {
                insert_step(tx, &row).await?;
            }
            stored.push(row.to_state()?);
            if previous.is_none() {
                Arc::make_mut(&mut tags).insert(row.step_name, row.tags);
            }
        }
        if let Some((missing, _)) = old.iter().zip(&matched).find(|(_, matched)| !**matched) {
            return Err(StoreError::StepRemoved {
                job_id: new.id,
                step: missing.step_name.clone(),
            });
        }
        // Leases change only when a step stops running its attempt or the job's status changes
        // (a halt makes them `cancelling`); a claim or a `start` spares the lookup.
        if stopped_running || job_row.status != old_row.status {
            reconcile_leases(tx, new, ending).await?;
        }
        if made_ready {
            notify::step_ready(tx, &self.id).await?;
        }
        // The state as stored: times at millisecond precision, like a load from the rows.
        let state = job_row.to_state(stored)?;
        if old_completed_at.is_none() {
            job_transition(&state, &mut transitions);
        }
        Ok(Arc::new(LoadedJob {
            row: job_row,
            tags,
            state,
            version,
            transitions,
        }))
    }
}

/// A step that became terminal in this write, for the metrics.
fn step_transition(
    job: &JobState,
    before: Option<&StepState>,
    step: &StepState,
    out: &mut Vec<Transition>,
) {
    if !step.status.is_terminal() || before.is_some_and(|before| before.status.is_terminal()) {
        return;
    }
    let seconds = match (step.started_at, step.completed_at) {
        (Some(started), Some(completed)) => Some(seconds_between(started, completed)),
        _ => None,
    };
    out.push(Transition::StepFinished {
        workspace: job.workspace.clone(),
        task: job.task.clone(),
        status: step.status.as_str(),
        seconds,
    });
}

/// The job's end, when `job` (as stored) has one; the caller knows the version before had none.
fn job_transition(job: &JobState, out: &mut Vec<Transition>) {
    if let Some(completed) = job.completed_at {
        out.push(Transition::JobFinished {
            workspace: job.workspace.clone(),
            task: job.task.clone(),
            status: job.status.as_str(),
            seconds: seconds_between(job.created_at, completed),
        });
    }
}

pub(super) fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds().max(0) as f64 / 1000.0
}

async fn insert_step(tx: &mut Tx, row: &StepRow) -> Result<()> {
    on_tx!(tx, conn => {
        bind_step!(sqlx::query(sql::INSERT_STEP.as_str()), row)
            .execute(&mut **conn)
            .await?;
    });
    Ok(())
}

/// Live leases must belong to steps still running their attempt; a halted job's are
/// `cancelling` (API §7.8).
async fn reconcile_leases(tx: &mut Tx, job: &JobState, ending: &LeaseEnding) -> Result<()> {
    // Through the partial index of live leases: SQLite's planner otherwise takes `leases_job`
    // and reads every lease the job ever had, one per finished step (issue #3: O(steps) per
    // event). PostgreSQL picks the partial index from its statistics.
    let sql = if tx.is_postgres() {
        "SELECT lease_id, step_name, attempt, state FROM leases \
         WHERE job_id = $1 AND state IN ('active', 'cancelling') ORDER BY lease_id"
    } else {
        "SELECT lease_id, step_name, attempt, state FROM leases INDEXED BY leases_live_step \
         WHERE job_id = $1 AND state IN ('active', 'cancelling') ORDER BY lease_id"
    };
    let live: Vec<(Uuid, String, i64, String)> = on_tx!(&mut *tx, conn => {
        sqlx::query_as(sql)
        .bind(job.id)
        .fetch_all(&mut **conn)
        .await?
    });
    for (lease_id, step_name, attempt, state) in live {
        let current = job.step(&step_name).is_some_and(|step| {
            step.status == StepStatus::Running && i64::from(step.attempt) == attempt
        });
        let (new_state, digest) = if current {
            if !(job.is_halted() && state == LeaseStatus::Active.as_str()) {
                continue;
            }
            (LeaseStatus::Cancelling, None)
        } else if ending.lease_id == Some(lease_id) {
            (
                ending.state.unwrap_or(LeaseStatus::Ended),
                ending.digest.clone(),
            )
        } else {
            (LeaseStatus::Revoked, None)
        };
        on_tx!(&mut *tx, conn => {
            sqlx::query("UPDATE leases SET state = $2, report_digest = $3 WHERE lease_id = $1")
                .bind(lease_id)
                .bind(new_state.as_str())
                .bind(digest.as_deref())
                .execute(&mut **conn)
                .await?;
        });
    }
    Ok(())
}
