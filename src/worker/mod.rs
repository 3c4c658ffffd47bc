//! A worker: claims steps, runs them with the local runner, streams their logs and reports
//! their results, renewing its leases with heartbeats (API §7).
//!
//! The loop is written once against [`Transport`]; the embedded worker of `stroem serve` uses
//! the in-process transport ([`InProcess`]), so it takes exactly the path a remote worker takes
//! — claim, lease, heartbeat, fenced reports — with no shortcut around the store.

mod attempt;
mod http;
mod in_process;
mod revisions;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use http::{HttpSettings, HttpTransport};
pub use in_process::InProcess;
pub use revisions::{RevisionCache, RevisionError, RevisionLimits};

use crate::orchestrator::{ClaimedStep, Heartbeat};
use crate::runner::spec::{AttemptResult, LogLine};
use crate::runner::{LocalRunner, WorkingCopy};
use crate::store::LeaseKey;

/// How a worker talks to the server.
pub trait Transport: Send + Sync + 'static {
    /// Registers and returns the worker id.
    fn register(&self) -> impl Future<Output = anyhow::Result<Uuid>> + Send;
    /// Renews leases and lists the `local` jobs whose working directories the worker keeps;
    /// returns the leases to cancel and those unknown, and the jobs to release (API §7.2).
    fn heartbeat(
        &self,
        worker_id: Uuid,
        leases: &[Uuid],
        pinned_jobs: &[Uuid],
    ) -> impl Future<Output = anyhow::Result<Heartbeat>> + Send;
    fn claim(
        &self,
        worker_id: Uuid,
        wait: Duration,
    ) -> impl Future<Output = anyhow::Result<Option<ClaimedStep>>> + Send;
    /// The directory holding the files of the claimed step's workspace revision; each attempt
    /// runs in a private copy of it.
    fn revision_files(
        &self,
        claimed: &ClaimedStep,
    ) -> impl Future<Output = anyhow::Result<std::path::PathBuf>> + Send;
    /// `false` when the step must not run (cancelled before start).
    fn start(&self, key: &LeaseKey) -> impl Future<Output = anyhow::Result<bool>> + Send;
    /// Returns whether the step is being cancelled.
    fn logs(
        &self,
        key: &LeaseKey,
        offset: u64,
        lines: Vec<LogLine>,
    ) -> impl Future<Output = anyhow::Result<bool>> + Send;
    fn complete(
        &self,
        key: &LeaseKey,
        result: AttemptResult,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// Says goodbye (API §7.2): the worker becomes `inactive`, any lease it still holds is lost
    /// at once, and a claim of it still pending is never granted.
    fn deregister(&self, worker_id: Uuid) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// How long the final deregistration may take; a server that does not answer by then lets the
/// worker's leases expire instead.
const DEREGISTER_TIMEOUT: Duration = Duration::from_secs(10);

/// Worker settings (API §10.2).
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub max_concurrent: usize,
    pub heartbeat_interval: Duration,
    /// How long one claim waits for work (long poll).
    pub claim_wait: Duration,
    /// Pause after a failed request; it doubles while requests keep failing, up to
    /// [`MAX_RETRY_PAUSE`] (API §10.2 `poll_interval_secs`).
    pub retry_pause: Duration,
    /// On shutdown, how long running attempts may go on before they are stopped and reported
    /// as retryable failures (API §7.2 `shutdown_grace_secs`).
    pub shutdown_grace: Duration,
}

/// The longest pause between failing requests.
pub const MAX_RETRY_PAUSE: Duration = Duration::from_secs(30);

/// The pause before the next try: `base` after a success, doubling after each failure.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    base: Duration,
    next: Duration,
}

impl Backoff {
    fn new(base: Duration) -> Self {
        Backoff { base, next: base }
    }

    /// The pause to take now; the following one is twice as long, capped.
    fn failed(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(MAX_RETRY_PAUSE.max(self.base));
        pause
    }

    fn succeeded(&mut self) {
        self.next = self.base;
    }
}

/// The cancellation tokens of the attempts this worker runs, by lease id.
#[derive(Debug, Clone, Default)]
struct Running {
    attempts: Arc<Mutex<HashMap<Uuid, CancellationToken>>>,
    /// Leases the server no longer honours (heartbeat `unknown`): stopped and never reported
    /// (API §7.2).
    forgotten: Arc<Mutex<HashSet<Uuid>>>,
}

impl Running {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, CancellationToken>> {
        self.attempts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn insert(&self, lease: Uuid, token: CancellationToken) {
        self.lock().insert(lease, token);
    }

    fn remove(&self, lease: Uuid) {
        self.lock().remove(&lease);
    }

    fn leases(&self) -> Vec<Uuid> {
        self.lock().keys().copied().collect()
    }

    fn cancel(&self, lease: Uuid) {
        if let Some(token) = self.lock().get(&lease) {
            token.cancel();
        }
    }

    fn forgotten(&self) -> std::sync::MutexGuard<'_, HashSet<Uuid>> {
        self.forgotten
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops the attempt of a lease the server no longer honours; it must not be reported.
    fn forget(&self, lease: Uuid) {
        if let Some(token) = self.lock().get(&lease) {
            token.cancel();
            self.forgotten().insert(lease);
        }
    }

    /// Whether the lease was forgotten; clears the mark.
    fn was_forgotten(&self, lease: Uuid) -> bool {
        self.forgotten().remove(&lease)
    }
}

/// The working directories of the `local` jobs pinned to this worker (API §7.9), by job id:
/// made at the job's first step here, shared by all its steps, deleted when a heartbeat
/// releases the job (or when the worker stops). An attempt holds its own reference, so a
/// directory released under a running step goes only when that step ends.
#[derive(Debug, Clone, Default)]
struct Pinned {
    dirs: Arc<Mutex<HashMap<Uuid, Arc<WorkingCopy>>>>,
}

impl Pinned {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Arc<WorkingCopy>>> {
        self.dirs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, job_id: Uuid) -> Option<Arc<WorkingCopy>> {
        self.lock().get(&job_id).cloned()
    }

    /// The job's directory: the one already made, else `make()`'s (made under the lock, so two
    /// steps of the job starting together share one).
    fn get_or_make(
        &self,
        job_id: Uuid,
        make: impl FnOnce() -> std::io::Result<WorkingCopy>,
    ) -> std::io::Result<Arc<WorkingCopy>> {
        let mut dirs = self.lock();
        if let Some(dir) = dirs.get(&job_id) {
            return Ok(Arc::clone(dir));
        }
        let dir = Arc::new(make()?);
        dirs.insert(job_id, Arc::clone(&dir));
        Ok(dir)
    }

    fn jobs(&self) -> Vec<Uuid> {
        let mut jobs: Vec<Uuid> = self.lock().keys().copied().collect();
        jobs.sort_unstable();
        jobs
    }

    fn release(&self, job_id: Uuid) {
        let released = self.lock().remove(&job_id);
        if released.is_some() {
            tracing::debug!(%job_id, "local job released: its working directory goes");
        }
    }
}

/// Runs a worker until `shutdown`: `max_concurrent` claim loops and one heartbeat loop. On
/// shutdown no new step is claimed and running attempts get `shutdown_grace` to finish (with
/// heartbeats going on); attempts still running then are stopped and reported as retryable
/// failures (`worker shutting down`, API §7.2), or recovered by lease expiry — never left running.
/// Last, the worker deregisters, so a claim abandoned in flight (a lease the server granted
/// as the worker stopped listening) is re-queued at once instead of after lease expiry.
pub async fn run<T: Transport>(
    transport: Arc<T>,
    runner: LocalRunner,
    settings: WorkerSettings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut backoff = Backoff::new(settings.retry_pause);
    let worker_id = loop {
        match transport.register().await {
            Ok(id) => break id,
            Err(error) => {
                tracing::warn!("worker registration failed; retrying: {error:#}");
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    () = tokio::time::sleep(backoff.failed()) => {}
                }
            }
        }
    };
    tracing::info!(%worker_id, slots = settings.max_concurrent, "worker registered");
    let running = Running::default();
    let pinned = Pinned::default();
    let hard_stop = CancellationToken::new();
    let heartbeats_stop = CancellationToken::new();
    let heartbeat_task = tokio::spawn(heartbeats(
        Arc::clone(&transport),
        worker_id,
        running.clone(),
        pinned.clone(),
        settings.heartbeat_interval,
        heartbeats_stop.clone(),
    ));
    let mut slots = tokio::task::JoinSet::new();
    for _ in 0..settings.max_concurrent.max(1) {
        slots.spawn(slot(
            Arc::clone(&transport),
            worker_id,
            runner.clone(),
            running.clone(),
            pinned.clone(),
            settings.clone(),
            Stops {
                claiming: shutdown.clone(),
                attempts: hard_stop.clone(),
            },
        ));
    }
    let grace_over = async {
        shutdown.cancelled().await;
        tokio::time::sleep(settings.shutdown_grace).await;
    };
    tokio::pin!(grace_over);
    loop {
        tokio::select! {
            next = slots.join_next() => {
                if next.is_none() {
                    break;
                }
            }
            () = &mut grace_over, if !hard_stop.is_cancelled() => {
                tracing::warn!("shutdown grace over: stopping running steps");
                hard_stop.cancel();
            }
        }
    }
    heartbeats_stop.cancel();
    let _ = heartbeat_task.await;
    match tokio::time::timeout(DEREGISTER_TIMEOUT, transport.deregister(worker_id)).await {
        Ok(Ok(())) => tracing::info!(%worker_id, "worker deregistered"),
        Ok(Err(error)) => {
            tracing::warn!("deregistration failed; the server expires the leases: {error:#}");
        }
        Err(_) => tracing::warn!("deregistration timed out; the server expires the leases"),
    }
    Ok(())
}

/// When a slot stops claiming, and when its attempts are stopped outright.
#[derive(Debug, Clone)]
struct Stops {
    claiming: CancellationToken,
    attempts: CancellationToken,
}

async fn heartbeats<T: Transport>(
    transport: Arc<T>,
    worker_id: Uuid,
    running: Running,
    pinned: Pinned,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(interval);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        match transport
            .heartbeat(worker_id, &running.leases(), &pinned.jobs())
            .await
        {
            Ok(reply) => {
                for lease in reply.cancel {
                    running.cancel(lease);
                }
                for lease in reply.unknown {
                    running.forget(lease);
                }
                for job_id in reply.release_jobs {
                    pinned.release(job_id);
                }
            }
            Err(error) => tracing::warn!(%error, "heartbeat failed"),
        }
    }
}

async fn slot<T: Transport>(
    transport: Arc<T>,
    worker_id: Uuid,
    runner: LocalRunner,
    running: Running,
    pinned: Pinned,
    settings: WorkerSettings,
    stops: Stops,
) {
    let mut backoff = Backoff::new(settings.retry_pause);
    loop {
        // Biased: once shutdown has begun no claim is even started. Unbiased, the claim could
        // win the race and its step would run (and at once be stopped) past the shutdown,
        // spending an attempt nobody meant to spend.
        let claimed = tokio::select! {
            biased;
            () = stops.claiming.cancelled() => return,
            claimed = transport.claim(worker_id, settings.claim_wait) => claimed,
        };
        if claimed.is_ok() {
            backoff.succeeded();
        }
        match claimed {
            Ok(Some(claimed)) => {
                attempt::run(
                    transport.as_ref(),
                    worker_id,
                    &runner,
                    &running,
                    &pinned,
                    claimed,
                    &stops.attempts,
                )
                .await;
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!("claim failed: {error:#}");
                tokio::select! {
                    () = stops.claiming.cancelled() => return,
                    () = tokio::time::sleep(backoff.failed()) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_pauses_double_up_to_the_cap_and_reset_after_a_success() {
        let mut backoff = Backoff::new(Duration::from_secs(2));
        let pauses: Vec<u64> = (0..6).map(|_| backoff.failed().as_secs()).collect();
        assert_eq!(pauses, [2, 4, 8, 16, 30, 30]);
        backoff.succeeded();
        assert_eq!(backoff.failed(), Duration::from_secs(2));
    }
}
