//! One claimed attempt on a worker: report `start`, run it in a private working copy, ship its
//! log lines in batches while it runs (learning about cancellation from the replies), then
//! report `complete`.

use std::time::Duration;

use chrono::Utc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Running, Transport};
use crate::orchestrator::ClaimedStep;
use crate::runner::spec::{AttemptResult, LogLine, Outcome};
use crate::runner::{LocalRunner, WorkingCopy};
use crate::store::LeaseKey;

/// Lines per log batch, and how long a partial batch may wait. Large batches keep the
/// per-batch cost (a lease check, an append) small next to a step that floods its output.
const BATCH_LINES: usize = 5_000;
/// Bytes of line text per batch, so a batch of long lines stays under the 4 MiB limit.
const BATCH_BYTES: usize = 2 * 1024 * 1024;
const BATCH_DELAY: Duration = Duration::from_millis(100);
/// How often a `complete` report is tried before the attempt is left to lease expiry.
const COMPLETE_TRIES: u32 = 5;

pub(super) async fn run<T: Transport>(
    transport: &T,
    worker_id: Uuid,
    runner: &LocalRunner,
    running: &Running,
    claimed: ClaimedStep,
    hard_stop: &CancellationToken,
) {
    let key = LeaseKey {
        lease_id: claimed.lease.lease_id,
        worker_id,
        job_id: claimed.lease.job_id,
        step_name: claimed.lease.step_name.clone(),
    };
    match transport.start(&key).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(error) => {
            // Without a start the server still accepts the complete report (API §7.6).
            tracing::warn!(%error, step = %key.step_name, "start report failed");
        }
    }
    let cancel = hard_stop.child_token();
    running.insert(key.lease_id, cancel.clone());

    let (lines_tx, lines_rx) = mpsc::unbounded_channel::<LogLine>();
    let execute = async {
        let copy = match transport.revision_files(&claimed).await {
            Ok(root) => match runner.scratch_dir() {
                Some(dir) => WorkingCopy::create_in(&root, dir),
                None => WorkingCopy::create(&root),
            }
            .map_err(|error| format!("cannot create the working copy: {error}")),
            Err(error) => Err(format!("cannot fetch the workspace revision: {error:#}")),
        };
        let result = match copy {
            Ok(copy) => {
                let mut sink = |line: LogLine| {
                    // The forwarder lives as long as this attempt; a send can only fail after
                    // it stopped, when the lines have nowhere to go anyway.
                    let _ = lines_tx.send(line);
                };
                let result = runner
                    .run(&claimed.spec, copy.path(), &mut sink, cancel.clone())
                    .await;
                let _ = copy.remove();
                result
            }
            Err(error) => AttemptResult {
                outcome: Outcome::Failed,
                output: serde_json::Value::Null,
                error_message: Some(error),
                started_at: Utc::now(),
                finished_at: Utc::now(),
            },
        };
        drop(lines_tx);
        result
    };
    let (result, ()) = tokio::join!(execute, forward_logs(transport, &key, lines_rx, &cancel));
    running.remove(key.lease_id);
    if running.was_forgotten(key.lease_id) {
        // Expired or revoked: the server has already decided the attempt (API §7.2).
        tracing::info!(step = %key.step_name, "lease no longer honoured; attempt not reported");
        return;
    }
    let result = shutdown_failure(result, hard_stop);

    for attempt in 1..=COMPLETE_TRIES {
        match transport.complete(&key, result.clone()).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, attempt, step = %key.step_name, "complete report failed");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
        }
    }
}

/// A step stopped because this worker shuts down (its shutdown grace ran out) was cancelled by
/// no one: it is reported as a
/// retryable failure (API §7.2), so it runs again after a restart or on another worker instead
/// of ending `cancelled` in a job nobody cancelled. If its job was cancelled meanwhile, the lease
/// is `cancelling` and the server ends the step `cancelled` whatever this report says.
fn shutdown_failure(result: AttemptResult, shutdown: &CancellationToken) -> AttemptResult {
    if shutdown.is_cancelled() && result.outcome == Outcome::Cancelled {
        AttemptResult {
            outcome: Outcome::Failed,
            error_message: Some("worker shutting down".to_owned()),
            ..result
        }
    } else {
        result
    }
}

/// Sends captured lines in batches with their offset, so a retried batch is stored once.
async fn forward_logs<T: Transport>(
    transport: &T,
    key: &LeaseKey,
    mut lines: mpsc::UnboundedReceiver<LogLine>,
    cancel: &CancellationToken,
) {
    let mut offset = 0u64;
    let mut batch = Vec::new();
    loop {
        let closed = match tokio::time::timeout(BATCH_DELAY, lines.recv()).await {
            Ok(Some(line)) => {
                batch.push(line);
                let mut bytes: usize = batch.iter().map(|line: &LogLine| line.line.len()).sum();
                while batch.len() < BATCH_LINES && bytes < BATCH_BYTES {
                    match lines.try_recv() {
                        Ok(line) => {
                            bytes += line.line.len();
                            batch.push(line);
                        }
                        Err(_) => break,
                    }
                }
                false
            }
            Ok(None) => true,
            Err(_) => false,
        };
        if !batch.is_empty() {
            let sent = std::mem::take(&mut batch);
            let count = sent.len() as u64;
            match transport.logs(key, offset, sent).await {
                Ok(stop) => {
                    if stop {
                        cancel.cancel();
                    }
                }
                Err(error) => tracing::warn!(%error, step = %key.step_name, "log batch failed"),
            }
            offset += count;
        }
        if closed {
            return;
        }
    }
}
