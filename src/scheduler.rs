//! The cron scheduler of `stroem serve` (WF §15.1): fires the ticks of every scheduler trigger
//! of every workspace's active revision.
//!
//! [`Scheduler::tick`] does one round with an injected clock, so tests step through minutes,
//! DST changes and restarts instead of sleeping; [`Scheduler::run`] is the loop `serve` starts,
//! which calls it at each due fire time (and at least every second, so a reloaded workspace's
//! new or changed triggers are picked up at once).
//!
//! *State lives in the database*, never in the scheduler: each trigger's checkpoint (the last
//! tick fired or passed over) and the lease that makes one replica the firing one. A restart or
//! a new leader reads the checkpoints, so no tick fires twice and missed ticks are handled by
//! `catch_up`. Firing itself is idempotent per tick (see [`crate::orchestrator::Fired`]): even
//! two schedulers that both believe they lead create one job per tick.
//!
//! A trigger first seen (no checkpoint) starts from when its revision was loaded: ticks after
//! that are due, earlier ones never were.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::orchestrator::{Fired, Orchestrator, OrchestratorError, Retention, RetentionReport};
use crate::store::{StoreError, TriggerTick};
use crate::workflow::model::{CatchUp, Schedule, TriggerKind};
use crate::workspace::manager::{due_ticks, next_fire_times};

/// A tick fired later than this after its time counts as missed (WF §15.1).
pub const MISSED_AFTER: TimeDelta = TimeDelta::seconds(60);

/// How long the scheduler lease lives without renewal. A crashed leader's ticks resume on
/// another replica after at most this long, still within [`MISSED_AFTER`].
pub const LEASE_TTL: TimeDelta = TimeDelta::seconds(30);

/// The leader renews its lease after this long; a follower retries taking it this often.
const LEASE_RENEW: TimeDelta = TimeDelta::seconds(10);
const LEASE_RETRY: TimeDelta = TimeDelta::seconds(5);

/// The longest the loop sleeps between rounds.
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// What one round did, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Whether this scheduler held the lease; a follower does nothing else.
    pub leader: bool,
    /// Ticks handled, in order.
    pub ticks: Vec<TickOutcome>,
    /// The earliest next fire time of any enabled scheduler trigger.
    pub next_due: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TickOutcome {
    pub workspace: String,
    pub trigger: String,
    pub tick: DateTime<Utc>,
    pub action: TickAction,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TickAction {
    Fired(Fired),
    /// Passed over without a job: the trigger is disabled, or the tick was missed and
    /// `catch_up` is `none`.
    PassedOver,
}

#[derive(Debug, Default)]
struct LeaseState {
    held: bool,
    checked_at: Option<DateTime<Utc>>,
}

/// One scheduler; `serve` runs one per process.
pub struct Scheduler {
    orchestrator: Orchestrator,
    /// Names this scheduler in the lease row.
    holder: String,
    lease: Mutex<LeaseState>,
    /// `retention` (API §8.5 item 7): the leader also deletes old jobs and workers, so one
    /// replica does.
    retention: Option<Retention>,
    /// When the next retention sweep is due; `None` before the first.
    retention_due: Mutex<Option<DateTime<Utc>>>,
}

impl Scheduler {
    pub fn new(orchestrator: Orchestrator) -> Scheduler {
        Scheduler {
            orchestrator,
            holder: Uuid::new_v4().to_string(),
            lease: Mutex::new(LeaseState::default()),
            retention: None,
            retention_due: Mutex::new(None),
        }
    }

    /// Makes the leader run retention sweeps (none without this).
    pub fn with_retention(mut self, retention: Option<Retention>) -> Scheduler {
        self.retention = retention;
        self
    }

    /// A retention sweep at `now` if retention is configured, this scheduler leads, and the
    /// interval since the last sweep it ran has passed; `None` when it did not sweep.
    pub async fn retention_round(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Option<RetentionReport>, OrchestratorError> {
        let Some(retention) = self.retention else {
            return Ok(None);
        };
        {
            let due = self
                .retention_due
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if due.is_some_and(|due| now < due) {
                return Ok(None);
            }
        }
        if !self.lead(now).await? {
            return Ok(None);
        }
        let interval = TimeDelta::from_std(retention.interval).unwrap_or(TimeDelta::MAX);
        *self
            .retention_due
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(now + interval);
        Ok(Some(
            self.orchestrator.sweep_retention(now, &retention).await?,
        ))
    }

    /// Fires every tick due at `now`, if this scheduler holds (or can take) the lease.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<TickReport, StoreError> {
        let mut report = TickReport::default();
        if !self.lead(now).await? {
            return Ok(report);
        }
        report.leader = true;
        let workspaces = self.orchestrator.workspaces();
        let mut schedules = Vec::new();
        for ws in workspaces.names() {
            let Some(revision) = workspaces.get(&ws) else {
                continue;
            };
            for (name, trigger) in &revision.def.triggers {
                if let TriggerKind::Scheduler(schedule) = &trigger.kind {
                    schedules.push(Due {
                        workspace: ws.clone(),
                        trigger: name.clone(),
                        enabled: trigger.enabled,
                        schedule: schedule.clone(),
                        loaded_at: revision.loaded_at,
                    });
                }
            }
        }
        if schedules.is_empty() {
            return Ok(report);
        }
        let store = self.orchestrator.store();
        let checkpoints: HashMap<(String, String), TriggerTick> = store
            .trigger_ticks(None)
            .await?
            .into_iter()
            .map(|tick| ((tick.workspace.clone(), tick.trigger.clone()), tick))
            .collect();
        for due in &schedules {
            let key = (due.workspace.clone(), due.trigger.clone());
            let last = match checkpoints.get(&key) {
                Some(checkpoint) => checkpoint.last_tick,
                None => {
                    store
                        .baseline_tick(&due.workspace, &due.trigger, due.loaded_at.min(now))
                        .await?
                        .last_tick
                }
            };
            if let Err(error) = self.tick_trigger(due, last, now, &mut report).await {
                tracing::error!(
                    workspace = %due.workspace, trigger = %due.trigger, %error,
                    "scheduler trigger failed"
                );
            }
            if due.enabled {
                let next = next_fire_times(&due.schedule, now, 1).first().copied();
                report.next_due = match (report.next_due, next) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        Ok(report)
    }

    /// The ticks of one trigger after its checkpoint `last`.
    async fn tick_trigger(
        &self,
        due: &Due,
        last: DateTime<Utc>,
        now: DateTime<Utc>,
        report: &mut TickReport,
    ) -> Result<(), OrchestratorError> {
        let ticks = due_ticks(&due.schedule, last, now, MISSED_AFTER);
        let newest = ticks.on_time.last().copied().or(ticks.latest_missed);
        let Some(newest) = newest else {
            return Ok(());
        };
        let outcome = |tick, action| TickOutcome {
            workspace: due.workspace.clone(),
            trigger: due.trigger.clone(),
            tick,
            action,
        };
        if !due.enabled {
            if self
                .orchestrator
                .pass_over_tick(&due.workspace, &due.trigger, newest, now)
                .await?
            {
                self.orchestrator
                    .store()
                    .metrics()
                    .scheduler_tick("passed_over");
                report.ticks.push(outcome(newest, TickAction::PassedOver));
            }
            return Ok(());
        }
        let mut fire = ticks.on_time;
        if let Some(missed) = ticks.latest_missed {
            self.orchestrator.store().metrics().scheduler_missed();
            tracing::warn!(
                workspace = %due.workspace, trigger = %due.trigger, tick = %missed,
                "scheduler tick missed (no scheduler ran within {}s of it)",
                MISSED_AFTER.num_seconds()
            );
            if fire.is_empty() {
                match due.schedule.catch_up {
                    CatchUp::Latest => fire.push(missed),
                    CatchUp::None => {
                        if self
                            .orchestrator
                            .pass_over_tick(&due.workspace, &due.trigger, missed, now)
                            .await?
                        {
                            self.orchestrator
                                .store()
                                .metrics()
                                .scheduler_tick("passed_over");
                            report.ticks.push(outcome(missed, TickAction::PassedOver));
                        }
                    }
                }
            }
        }
        for tick in fire {
            let fired = self
                .orchestrator
                .fire_schedule(&due.workspace, &due.trigger, tick, now)
                .await?;
            match &fired {
                Fired::Created { job_id, .. } => {
                    tracing::info!(workspace = %due.workspace, trigger = %due.trigger, %tick, %job_id, "trigger fired");
                }
                Fired::Skipped { job_id } => {
                    tracing::info!(workspace = %due.workspace, trigger = %due.trigger, %tick, %job_id, "trigger skipped: a previous job is still running");
                }
                Fired::Rejected { .. } | Fired::AlreadyFired => {}
            }
            let metrics = self.orchestrator.store().metrics();
            match &fired {
                Fired::Created { .. } => metrics.scheduler_tick("fired"),
                Fired::Skipped { .. } => metrics.scheduler_tick("skipped"),
                Fired::Rejected { .. } => metrics.scheduler_tick("rejected"),
                Fired::AlreadyFired => {}
            }
            report.ticks.push(outcome(tick, TickAction::Fired(fired)));
        }
        Ok(())
    }

    /// Whether this scheduler leads at `now`, renewing or taking the lease when it is time.
    async fn lead(&self, now: DateTime<Utc>) -> Result<bool, StoreError> {
        {
            let state = self.lease.lock().unwrap_or_else(PoisonError::into_inner);
            let wait = if state.held { LEASE_RENEW } else { LEASE_RETRY };
            if let Some(checked) = state.checked_at
                && now >= checked
                && now < checked + wait
            {
                return Ok(state.held);
            }
        }
        let held = self
            .orchestrator
            .store()
            .acquire_scheduler_lease(&self.holder, now, LEASE_TTL)
            .await?;
        let mut state = self.lease.lock().unwrap_or_else(PoisonError::into_inner);
        if held && !state.held {
            tracing::info!(holder = %self.holder, "this server now fires scheduled triggers");
        }
        state.held = held;
        state.checked_at = Some(now);
        Ok(held)
    }

    /// The loop `serve` runs until `shutdown`: a round at each due fire time, at least every
    /// second. The lease is given up on the way out so another replica takes over at once.
    pub async fn run(self, shutdown: CancellationToken) {
        let this = std::sync::Arc::new(self);
        // Retention runs beside the rounds, so a long sweep never delays a tick; one at a time.
        let mut retention: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            let now = Utc::now();
            if this.retention.is_some() && retention.as_ref().is_none_or(|task| task.is_finished())
            {
                let scheduler = std::sync::Arc::clone(&this);
                retention = Some(tokio::spawn(async move {
                    if let Err(error) = scheduler.retention_round(now).await {
                        tracing::error!(%error, "retention sweep failed");
                    }
                }));
            }
            let sleep = match this.tick(now).await {
                Ok(report) => report
                    .next_due
                    // A little past the tick, so the round sees it due.
                    .and_then(|due| {
                        (due - Utc::now() + TimeDelta::milliseconds(5))
                            .to_std()
                            .ok()
                    })
                    .map_or(MAX_SLEEP, |wait| wait.min(MAX_SLEEP)),
                Err(error) => {
                    tracing::error!(%error, "scheduler round failed");
                    MAX_SLEEP
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(sleep) => {}
            }
        }
        if let Some(task) = retention {
            task.abort();
        }
        if let Err(error) = this.release().await {
            tracing::warn!(%error, "cannot release the scheduler lease");
        }
    }

    /// Gives up the lease (a graceful stop), so another replica leads at its next round
    /// instead of after [`LEASE_TTL`].
    pub async fn release(&self) -> Result<(), StoreError> {
        self.orchestrator
            .store()
            .release_scheduler_lease(&self.holder)
            .await?;
        let mut state = self.lease.lock().unwrap_or_else(PoisonError::into_inner);
        *state = LeaseState::default();
        Ok(())
    }
}

/// One scheduler trigger of an active revision.
struct Due {
    workspace: String,
    trigger: String,
    enabled: bool,
    schedule: Schedule,
    loaded_at: DateTime<Utc>,
}
