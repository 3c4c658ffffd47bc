//! The background re-scan loop: one named task that asks every second which workspaces are
//! due ([`Workspaces::due`]) and polls each on the blocking pool, until shutdown, logging what
//! each reload did. Workspaces poll side by side, so a slow git remote delays only its own
//! workspace; a workspace still polling is not started again.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{POLLER_TICK, ReloadOutcome, ReloadResult, Workspaces};

impl Workspaces {
    /// Polls every due workspace each second until `shutdown` fires. Loads run on the
    /// blocking pool: they copy and hash files, and fetch.
    pub async fn run_poller(self: Arc<Self>, shutdown: CancellationToken) {
        let span = tracing::info_span!("workspace_poller");
        async move {
            let mut interval = tokio::time::interval(POLLER_TICK);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut polling: HashSet<String> = HashSet::new();
            let mut running: tokio::task::JoinSet<(String, std::thread::Result<Option<ReloadOutcome>>)> =
                tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = interval.tick() => {}
                    Some(done) = running.join_next(), if !running.is_empty() => {
                        if let Ok((name, outcome)) = done {
                            polling.remove(&name);
                            match outcome {
                                Ok(outcome) => outcome.iter().for_each(log_outcome),
                                Err(_) => tracing::error!(workspace = name, "workspace re-scan panicked"),
                            }
                        }
                        continue;
                    }
                }
                for name in self.due(Utc::now(), &polling) {
                    polling.insert(name.clone());
                    let this = Arc::clone(&self);
                    running.spawn_blocking(move || {
                        // Caught here so the workspace's name comes back and it polls again.
                        let poll = AssertUnwindSafe(|| this.poll(&name, Utc::now()));
                        let outcome = std::panic::catch_unwind(poll);
                        (name, outcome)
                    });
                }
            }
            tracing::debug!("workspace poller stopped");
        }
        .instrument(span)
        .await;
    }
}

/// The server log's account of a reload (WF §18.1: errors are visible in the server log).
pub fn log_outcome(outcome: &ReloadOutcome) {
    let ws = outcome.workspace.as_str();
    match &outcome.result {
        ReloadResult::Activated { revision, previous } => {
            tracing::info!(
                workspace = ws,
                revision,
                previous,
                "workspace revision activated"
            );
        }
        ReloadResult::Unchanged { revision } => {
            tracing::debug!(
                workspace = ws,
                revision,
                "workspace files touched, content unchanged"
            );
        }
        ReloadResult::Rejected { revision, errors } => {
            for error in errors {
                tracing::warn!(
                    workspace = ws,
                    revision,
                    "{}:{}:{}: {} [{}]",
                    error.file,
                    error.line,
                    error.column,
                    error.message,
                    error.code
                );
            }
            tracing::warn!(
                workspace = ws,
                revision,
                errors = errors.len(),
                "workspace revision rejected; the last good revision keeps serving"
            );
        }
    }
}
