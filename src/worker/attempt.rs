//! One claimed attempt on a worker: report `start`, run it in a private working copy, ship its
//! log lines in batches while it runs (learning about cancellation from the replies), then
//! report `complete`.

use std::time::Duration;

use chrono::Utc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::http::HttpError;
use super::{Pinned, Running, Transport};
use crate::orchestrator::{ClaimedStep, OrchestratorError};
use crate::runner::pod::TarballAccess;
use crate::runner::spec::{AttemptResult, LogLine, Outcome, RunnerKind};
use crate::runner::{LocalRunner, WorkingCopy};
use crate::store::{LeaseKey, StoreError};
use crate::workflow::model::TaskMode;

/// Lines per log batch, and how long a partial batch may wait. Large batches keep the
/// per-batch cost (a lease check, an append) small next to a step that floods its output.
const BATCH_LINES: usize = 5_000;
/// Bytes of line text per batch, so a batch of long lines stays under the 4 MiB limit.
const BATCH_BYTES: usize = 2 * 1024 * 1024;
const BATCH_DELAY: Duration = Duration::from_millis(100);
/// The first pause between `complete` tries, and the longest.
const COMPLETE_PAUSES: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(5));
/// How often a `complete` report is tried once the worker is shutting down.
const COMPLETE_TRIES_AT_SHUTDOWN: u32 = 5;

pub(super) async fn run<T: Transport>(
    transport: &T,
    worker_id: Uuid,
    runner: &LocalRunner,
    running: &Running,
    pinned: &Pinned,
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
        if claimed.spec.runner == RunnerKind::Pod {
            // The pod fetches the revision itself, with the claim's workspace token.
            let access = claimed.workspace_token.as_ref().map(|token| TarballAccess {
                revision: claimed.revision.clone(),
                token: token.clone(),
            });
            let mut sink = |line: LogLine| {
                let _ = lines_tx.send(line);
            };
            let result = runner
                .run_pod(&claimed.spec, access.as_ref(), &mut sink, cancel.clone())
                .await;
            drop(lines_tx);
            return result;
        }
        let copy = workdir(transport, runner, pinned, &claimed).await;
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
                if let Workdir::Own(copy) = copy {
                    let _ = copy.remove();
                }
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

    report_complete(transport, &key, &result, hard_stop, COMPLETE_PAUSES).await;
}

/// Where an attempt runs (WF §6.6): its own working copy, removed when it ends; or, for a
/// `local` job, the job's directory shared by all its steps on this worker (API §7.9).
enum Workdir {
    Own(WorkingCopy),
    Shared(std::sync::Arc<WorkingCopy>),
}

impl Workdir {
    fn path(&self) -> &std::path::Path {
        match self {
            Workdir::Own(copy) => copy.path(),
            Workdir::Shared(copy) => copy.path(),
        }
    }
}

/// The attempt's working directory: a fresh copy of the job's revision, or the `local` job's
/// shared one, made from the revision at its first step here.
async fn workdir<T: Transport>(
    transport: &T,
    runner: &LocalRunner,
    pinned: &Pinned,
    claimed: &ClaimedStep,
) -> Result<Workdir, String> {
    let job_id = claimed.lease.job_id;
    if claimed.mode == TaskMode::Local
        && let Some(dir) = pinned.get(job_id)
    {
        return Ok(Workdir::Shared(dir));
    }
    let root = transport
        .revision_files(claimed)
        .await
        .map_err(|error| format!("cannot fetch the workspace revision: {error:#}"))?;
    let make = || match runner.scratch_dir() {
        Some(dir) => WorkingCopy::create_in(&root, dir),
        None => WorkingCopy::create(&root),
    };
    let made = match claimed.mode {
        TaskMode::Local => pinned.get_or_make(job_id, make).map(Workdir::Shared),
        TaskMode::Distributed => make().map(Workdir::Own),
    };
    made.map_err(|error| format!("cannot create the working copy: {error}"))
}

/// Reports the attempt's end until the server takes it or refuses it for good (issue #16 item
/// 17): a server that cannot write for a while (a full disk, a database restarting) must not
/// make a finished step wait for its lease to expire and run again. Tries are spaced out
/// exponentially from the first of `pauses` up to the second. Once this worker is shutting down, it tries at
/// most [`COMPLETE_TRIES_AT_SHUTDOWN`] times: the server then learns the rest from lease expiry.
async fn report_complete<T: Transport>(
    transport: &T,
    key: &LeaseKey,
    result: &AttemptResult,
    shutdown: &CancellationToken,
    pauses: (Duration, Duration),
) {
    let (mut pause, longest) = pauses;
    let mut tries = 0u32;
    loop {
        let error = match transport.complete(key, result.clone()).await {
            Ok(()) => return,
            Err(error) => error,
        };
        tries += 1;
        if refused(&error) {
            tracing::warn!(%error, step = %key.step_name, "the server refused the complete report");
            return;
        }
        if shutdown.is_cancelled() && tries >= COMPLETE_TRIES_AT_SHUTDOWN {
            tracing::warn!(%error, step = %key.step_name, "complete report failed; giving up at shutdown");
            return;
        }
        tracing::warn!(%error, tries, step = %key.step_name, "complete report failed; trying again in {pause:?}");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(longest);
    }
}

/// Whether the server said no for good, rather than could not answer now: trying the same
/// report again would get the same answer.
fn refused(error: &anyhow::Error) -> bool {
    if let Some(error) = error.downcast_ref::<OrchestratorError>() {
        // What a remote worker would see as a 5xx: the database or the log files failing.
        return !matches!(
            error,
            OrchestratorError::Store(StoreError::Database(_) | StoreError::WriterBusy(_))
                | OrchestratorError::Logs(_)
        );
    }
    if let Some(error) = error.downcast_ref::<HttpError>() {
        return match error {
            HttpError::Status { status, .. } => {
                (400..500).contains(status) && *status != 408 && *status != 429
            }
            HttpError::Decode(_) => true,
            HttpError::Unreachable(_) | HttpError::Revision(_) | HttpError::Task(_) => false,
        };
    }
    false
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::orchestrator::Heartbeat;

    /// A transport whose `complete` fails with the queued errors, then succeeds.
    struct Flaky {
        errors: Mutex<Vec<anyhow::Error>>,
        tries: Mutex<u32>,
    }

    impl Flaky {
        fn new(errors: Vec<anyhow::Error>) -> Self {
            Flaky {
                errors: Mutex::new(errors),
                tries: Mutex::new(0),
            }
        }

        fn tries(&self) -> u32 {
            *self.tries.lock().expect("tries")
        }
    }

    impl Transport for Flaky {
        async fn register(&self) -> anyhow::Result<Uuid> {
            Ok(Uuid::nil())
        }
        async fn heartbeat(&self, _: Uuid, _: &[Uuid], _: &[Uuid]) -> anyhow::Result<Heartbeat> {
            Ok(Heartbeat::default())
        }
        async fn claim(&self, _: Uuid, _: Duration) -> anyhow::Result<Option<ClaimedStep>> {
            Ok(None)
        }
        async fn revision_files(&self, _: &ClaimedStep) -> anyhow::Result<std::path::PathBuf> {
            anyhow::bail!("unused")
        }
        async fn start(&self, _: &LeaseKey) -> anyhow::Result<bool> {
            Ok(true)
        }
        async fn logs(&self, _: &LeaseKey, _: u64, _: Vec<LogLine>) -> anyhow::Result<bool> {
            Ok(false)
        }
        async fn complete(&self, _: &LeaseKey, _: AttemptResult) -> anyhow::Result<()> {
            *self.tries.lock().expect("tries") += 1;
            match self.errors.lock().expect("errors").pop() {
                Some(error) => Err(error),
                None => Ok(()),
            }
        }
        async fn deregister(&self, _: Uuid) -> anyhow::Result<()> {
            Ok(())
        }
    }

    fn key() -> LeaseKey {
        LeaseKey {
            lease_id: Uuid::nil(),
            worker_id: Uuid::nil(),
            job_id: Uuid::nil(),
            step_name: "s".to_owned(),
        }
    }

    fn result() -> AttemptResult {
        AttemptResult {
            outcome: Outcome::Succeeded,
            output: serde_json::Value::Null,
            error_message: None,
            started_at: Utc::now(),
            finished_at: Utc::now(),
        }
    }

    fn unavailable() -> anyhow::Error {
        OrchestratorError::Store(StoreError::WriterBusy(Duration::from_secs(5))).into()
    }

    const FAST: (Duration, Duration) = (Duration::from_millis(1), Duration::from_millis(4));

    #[tokio::test]
    async fn a_complete_report_is_retried_until_the_server_takes_it() {
        // Far past the 5 tries in 3 s of before: with the real pauses, 25 failures take
        // about 1m45s (0.2 s doubling to the 5 s cap).
        let transport = Flaky::new((0..25).map(|_| unavailable()).collect());
        report_complete(
            &transport,
            &key(),
            &result(),
            &CancellationToken::new(),
            FAST,
        )
        .await;
        assert_eq!(transport.tries(), 26);
    }

    #[tokio::test]
    async fn a_refusal_or_a_shutdown_ends_the_tries() {
        let refused: anyhow::Error = OrchestratorError::StaleLease {
            state: None,
            report_digest: None,
        }
        .into();
        let transport = Flaky::new(vec![refused, unavailable()]);
        report_complete(
            &transport,
            &key(),
            &result(),
            &CancellationToken::new(),
            FAST,
        )
        .await;
        assert_eq!(transport.tries(), 2, "one retry, then the refusal ends it");

        let stopped = CancellationToken::new();
        stopped.cancel();
        let transport = Flaky::new((0..50).map(|_| unavailable()).collect());
        report_complete(&transport, &key(), &result(), &stopped, FAST).await;
        assert_eq!(transport.tries(), COMPLETE_TRIES_AT_SHUTDOWN);
    }
}
