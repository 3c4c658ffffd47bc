//! A worker: claims steps, runs them with the local runner, streams their logs and reports
//! their results, renewing its leases with heartbeats (API §7).
//!
//! The loop is written once against [`Transport`]; the embedded worker of `stroem serve` uses
//! the in-process transport ([`InProcess`]), so it takes exactly the path a remote worker takes
//! — claim, lease, heartbeat, fenced reports — with no shortcut around the store.

mod attempt;
mod in_process;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use in_process::InProcess;

use crate::orchestrator::ClaimedStep;
use crate::runner::LocalRunner;
use crate::runner::spec::{AttemptResult, LogLine};
use crate::store::LeaseKey;

/// How a worker talks to the server.
pub trait Transport: Send + Sync + 'static {
    /// Registers and returns the worker id.
    fn register(&self) -> impl Future<Output = anyhow::Result<Uuid>> + Send;
    /// Renews leases; returns (cancel, unknown) lease ids.
    fn heartbeat(
        &self,
        worker_id: Uuid,
        leases: &[Uuid],
    ) -> impl Future<Output = anyhow::Result<(Vec<Uuid>, Vec<Uuid>)>> + Send;
    fn claim(
        &self,
        worker_id: Uuid,
        wait: Duration,
    ) -> impl Future<Output = anyhow::Result<Option<ClaimedStep>>> + Send;
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
}

/// Worker settings (API §10.2).
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub max_concurrent: usize,
    pub heartbeat_interval: Duration,
    /// How long one claim waits for work (long poll).
    pub claim_wait: Duration,
    /// Pause after a failed request.
    pub retry_pause: Duration,
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

/// Runs a worker until `shutdown`: `max_concurrent` claim loops and one heartbeat loop. On
/// shutdown no new step is claimed; running attempts are stopped (their steps are cancelled or
/// recovered by lease expiry, never left running).
pub async fn run<T: Transport>(
    transport: Arc<T>,
    runner: LocalRunner,
    settings: WorkerSettings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let worker_id = loop {
        match transport.register().await {
            Ok(id) => break id,
            Err(error) => {
                tracing::warn!(%error, "worker registration failed; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    () = tokio::time::sleep(settings.retry_pause) => {}
                }
            }
        }
    };
    tracing::info!(%worker_id, slots = settings.max_concurrent, "worker registered");
    let running = Running::default();
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(heartbeats(
        Arc::clone(&transport),
        worker_id,
        running.clone(),
        settings.heartbeat_interval,
        shutdown.clone(),
    ));
    for _ in 0..settings.max_concurrent.max(1) {
        tasks.spawn(slot(
            Arc::clone(&transport),
            worker_id,
            runner.clone(),
            running.clone(),
            settings.clone(),
            shutdown.clone(),
        ));
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

async fn heartbeats<T: Transport>(
    transport: Arc<T>,
    worker_id: Uuid,
    running: Running,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(interval);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        match transport.heartbeat(worker_id, &running.leases()).await {
            Ok((cancel, unknown)) => {
                for lease in cancel {
                    running.cancel(lease);
                }
                for lease in unknown {
                    running.forget(lease);
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
    settings: WorkerSettings,
    shutdown: CancellationToken,
) {
    loop {
        let claimed = tokio::select! {
            () = shutdown.cancelled() => return,
            claimed = transport.claim(worker_id, settings.claim_wait) => claimed,
        };
        match claimed {
            Ok(Some(claimed)) => {
                attempt::run(
                    transport.as_ref(),
                    worker_id,
                    &runner,
                    &running,
                    claimed,
                    &shutdown,
                )
                .await;
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, "claim failed");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(settings.retry_pause) => {}
                }
            }
        }
    }
}
