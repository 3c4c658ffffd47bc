//! The background re-scan loop: one named task that calls [`Workspaces::tick`] every second
//! until shutdown, and logs what each reload did.

use std::sync::Arc;

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{POLLER_TICK, ReloadOutcome, ReloadResult, Workspaces};

impl Workspaces {
    /// Calls [`tick`](Self::tick) every second until `shutdown` fires. Loads run on the
    /// blocking pool: they copy and hash files.
    pub async fn run_poller(self: Arc<Self>, shutdown: CancellationToken) {
        let span = tracing::info_span!("workspace_poller");
        async move {
            let mut interval = tokio::time::interval(POLLER_TICK);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = interval.tick() => {}
                }
                let this = Arc::clone(&self);
                match tokio::task::spawn_blocking(move || this.tick(Utc::now())).await {
                    Ok(outcomes) => outcomes.iter().for_each(log_outcome),
                    Err(error) => tracing::error!(%error, "workspace re-scan panicked"),
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
