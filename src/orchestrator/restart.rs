//! Restart from the failed step (docs/restart.md): a new job pinned to the source job's
//! revision, with its validated input, whose steps that completed in the source are reused
//! ([`engine::create_restart`]) and whose others run again.

use chrono::Utc;
use uuid::Uuid;

use super::{JobSource, Orchestrator, OrchestratorError, PreparedJob, Result};
use crate::engine::{self, EvalContext, JobMeta, JobState, JobStatus};
use crate::store::JobRouting;
use crate::workflow::model::Duration;
use crate::workspace::manager::Revision;

impl Orchestrator {
    /// Restarts `source`, a finished job that did not complete, as a new job recorded with
    /// `source_type: restart` and `source_job_id`. Nothing is written when it is refused: not
    /// finished yet (`NotTerminal`), completed or no task's job (`NothingToRestart`), or its
    /// revision is no longer retained (`RevisionGone`).
    pub async fn restart_job(&self, source: &JobState, by: JobSource) -> Result<JobState> {
        // A cancelled job is finished once its running steps have stopped: only then are its
        // steps' outcomes known.
        if !source.is_finished() {
            return Err(OrchestratorError::NotTerminal {
                id: source.id,
                status: source.status.as_str(),
            });
        }
        if source.status == JobStatus::Completed {
            return Err(OrchestratorError::NothingToRestart(format!(
                "job {} completed: there is nothing to restart",
                source.id
            )));
        }
        let revision = self
            .inner
            .workspaces
            .retain(&source.workspace, &source.revision)
            .ok_or_else(|| OrchestratorError::RevisionGone {
                workspace: source.workspace.clone(),
                revision: source.revision.clone(),
            })?;
        let created = match self.prepare_restart(&revision, source, by) {
            Ok(prepared) => self.store_prepared(prepared).await,
            Err(error) => Err(error),
        };
        match created {
            Ok((job, effects)) => {
                self.carry_out(effects).await;
                Ok(job)
            }
            Err(error) => {
                self.inner
                    .workspaces
                    .release(&source.workspace, &source.revision);
                Err(error)
            }
        }
    }

    fn prepare_restart(
        &self,
        revision: &Revision,
        source: &JobState,
        by: JobSource,
    ) -> Result<PreparedJob> {
        if !revision.def.tasks.contains_key(&source.task) {
            return Err(OrchestratorError::NothingToRestart(format!(
                "job {} runs the hook action '{}', not a task: restart the job that fired it",
                source.id, source.task
            )));
        }
        let plan = self.inner.plans.task(revision, &source.task)?;
        self.refuse_missing_secrets(revision, &source.task)?;
        let meta = JobMeta {
            id: Uuid::now_v7(),
            workspace: source.workspace.clone(),
            revision: source.revision.clone(),
            source_type: "restart".to_owned(),
            source_id: by.source_id,
            parent_job_id: None,
            parent_step_name: None,
            depth: 0,
            raw_input: source.raw_input.clone(),
            source_job_id: Some(source.id),
            retry_of: None,
            // What the source kept masked (a sealed record holds every mask value its data
            // contains, its parent's included) stays masked in the restart that reuses it.
            inherited_mask: source
                .mask
                .as_ref()
                .map(|record| record.values.clone())
                .unwrap_or_default(),
        };
        let input = source.input.clone();
        let record = engine::mask_record(&plan, &input, &meta.inherited_mask);
        let mask = self.job_masker(revision, &record);
        let ctx = EvalContext {
            templates: &self.inner.templates,
            secrets: &revision.secrets,
            mask: &mask,
        };
        let (mut job, effects) =
            engine::create_restart(&plan, meta, input, source, Utc::now(), &ctx);
        if job.timeout_secs.is_none() {
            job.timeout_secs = self.inner.settings.default_job_timeout.map(Duration::secs);
        }
        Ok(PreparedJob {
            routing: JobRouting::from_plan(&plan, 0),
            job,
            effects,
        })
    }
}
