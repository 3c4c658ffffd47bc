//! Job and worker views the routes answer with, completed from what only the server knows: a
//! step's worker comes from its leases, `when`/`for_each`/image from the job's plan (API §2.5),
//! and workers are shown in the API's shape and time format (API §2.6, §1.2) rather than the
//! store's.

use crate::api::job::{JobDetail, JobView};
use crate::api::{Capability, WorkerStatus, WorkerView};
use crate::engine::{JobState, StepStatus};
use crate::orchestrator::Orchestrator;
use crate::store::{StoreError, Worker};

/// The API detail of a stored job: masked, with its plan's fields and each worker step's
/// `worker_id` (and that of each earlier attempt) from the attempt's lease.
pub(super) async fn job_detail(
    orchestrator: &Orchestrator,
    job: &JobState,
) -> Result<JobDetail, StoreError> {
    let mask = orchestrator.view_mask(job);
    let plan = orchestrator.plan_of(job);
    let leases = orchestrator.store().job_leases(job.id).await?;
    let mut view = JobView::new(&mask);
    if let Some(plan) = &plan {
        view = view.with_plan(plan);
    }
    let mut detail = JobDetail::from_state(job, &view);
    let store = orchestrator.store();
    detail.summary.queue_position = store.queue_position(job).await?;
    // WF §13.1: the whole chain, from any job of it.
    if job.retry_of_job_id.is_some() || job.chain_continues() {
        detail.retry_chain = store
            .retry_chain(job.chain_id())
            .await?
            .into_iter()
            .map(|link| crate::api::ChainJob {
                job_id: link.job_id,
                retry_attempt: link.retry_attempt,
                status: link.status,
                created_at: link.created_at,
                completed_at: link.completed_at,
            })
            .collect();
    }
    // The orchestrator archives a finished job's log once its hooks are fired.
    detail.hooks_fired = job.is_finished() && orchestrator.logs().is_finished(job.id);
    let hooks = crate::store::JobFilter {
        hook_of: Some(job.id),
        limit: 100,
        ..crate::store::JobFilter::default()
    };
    let (mut hook_jobs, _) = orchestrator.store().list_jobs(&hooks).await?;
    hook_jobs.reverse();
    detail.hook_jobs = hook_jobs
        .into_iter()
        .map(|hook| crate::api::job::HookJob {
            job_id: hook.job_id,
            event: hook
                .source_id
                .as_deref()
                .and_then(|source| source.split_once('/'))
                .map(|(_, event)| event.to_owned())
                .unwrap_or_default(),
            task_name: hook.task_name,
            status: hook.status,
            completed_at: hook.completed_at,
        })
        .collect();
    for (shown, state) in detail.steps.iter_mut().zip(&job.steps) {
        let worker_of = |attempt: u32| {
            leases
                .iter()
                .find(|lease| lease.step_name == state.step_name && lease.attempt == attempt)
                .map(|lease| lease.worker_id)
        };
        // Null until claimed: a step waiting for its next attempt has no worker yet.
        let claimed = !matches!(state.status, StepStatus::Pending | StepStatus::Ready);
        if let Some(worker_id) = shown.worker_id.as_mut()
            && claimed
        {
            *worker_id = worker_of(state.attempt);
        }
        for record in &mut shown.retry_history {
            record.worker_id = worker_of(record.attempt);
        }
    }
    Ok(detail)
}

/// A step a worker ran, as the worker detail shows it.
pub(super) fn worker_step(step: crate::store::WorkerStep) -> crate::api::WorkerStep {
    crate::api::WorkerStep {
        job_id: step.job_id,
        workspace: step.workspace,
        task_name: step.task_name,
        step_name: step.step_name,
        action_type: step.action_type,
        status: step.status,
        started_at: step.started_at,
        completed_at: step.completed_at,
        error_message: stored_error(step.error_message, step.masked),
    }
}

/// An error message as stored, for lists that show it without the job: masked when it was
/// stored, unless the job is older than that, when nothing of it can be shown (WF §16.3).
pub(super) fn stored_error(error: Option<String>, masked: bool) -> Option<String> {
    if masked {
        error
    } else {
        crate::mask::redact_text(error.as_deref())
    }
}

/// A stored worker as the API shows it.
pub(super) fn worker_view(worker: Worker) -> WorkerView {
    WorkerView {
        worker_id: worker.worker_id,
        name: worker.name,
        status: match worker.status {
            crate::store::WorkerStatus::Active => WorkerStatus::Active,
            crate::store::WorkerStatus::Inactive => WorkerStatus::Inactive,
        },
        version: worker.version,
        // Registration normalised these words; anything else was refused then.
        capabilities: worker
            .capabilities
            .iter()
            .filter_map(|word| Capability::from_word(word))
            .collect(),
        tags: worker.tags,
        max_concurrent: worker.max_concurrent,
        running_steps: worker.running_steps,
        last_heartbeat: Some(worker.last_heartbeat),
        registered_at: worker.registered_at,
    }
}
