//! The embedded worker's transport: the same calls the `/worker` routes make, without HTTP.

use std::path::PathBuf;
use std::time::Duration;

use uuid::Uuid;

use super::Transport;
use crate::orchestrator::{ClaimedStep, Heartbeat, Orchestrator, StartOutcome};
use crate::runner::spec::{AttemptResult, LogLine};
use crate::store::{LeaseKey, WorkerRegistration};

#[derive(Debug, Clone)]
pub struct InProcess {
    orchestrator: Orchestrator,
    registration: WorkerRegistration,
}

impl InProcess {
    pub fn new(orchestrator: Orchestrator, registration: WorkerRegistration) -> Self {
        InProcess {
            orchestrator,
            registration,
        }
    }
}

impl Transport for InProcess {
    async fn register(&self) -> anyhow::Result<Uuid> {
        Ok(self
            .orchestrator
            .register_worker(&self.registration)
            .await?
            .worker_id)
    }

    async fn heartbeat(
        &self,
        worker_id: Uuid,
        leases: &[Uuid],
        pinned_jobs: &[Uuid],
    ) -> anyhow::Result<Heartbeat> {
        Ok(self
            .orchestrator
            .heartbeat(worker_id, leases, pinned_jobs)
            .await?)
    }

    async fn claim(&self, worker_id: Uuid, wait: Duration) -> anyhow::Result<Option<ClaimedStep>> {
        Ok(self.orchestrator.claim(worker_id, wait).await?)
    }

    /// The server's own snapshot of the revision, which the job's pin keeps on disk.
    async fn revision_files(&self, claimed: &ClaimedStep) -> anyhow::Result<PathBuf> {
        let revision = self
            .orchestrator
            .workspaces()
            .revision(&claimed.spec.workspace, &claimed.revision)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "revision {} of workspace '{}' is no longer retained",
                    claimed.revision,
                    claimed.spec.workspace
                )
            })?;
        Ok(revision.root.clone())
    }

    async fn start(&self, key: &LeaseKey) -> anyhow::Result<bool> {
        Ok(self.orchestrator.start_step(key).await? == StartOutcome::Started)
    }

    async fn logs(&self, key: &LeaseKey, offset: u64, lines: Vec<LogLine>) -> anyhow::Result<bool> {
        Ok(self
            .orchestrator
            .append_logs(key, offset, lines)
            .await?
            .cancel)
    }

    async fn complete(&self, key: &LeaseKey, result: AttemptResult) -> anyhow::Result<()> {
        self.orchestrator.complete_step(key, result).await?;
        Ok(())
    }

    async fn deregister(&self, worker_id: Uuid) -> anyhow::Result<()> {
        self.orchestrator.deregister_worker(worker_id).await?;
        Ok(())
    }
}
