//! Plans of stored jobs: a job row names its workspace, pinned revision and task; the plan is
//! rebuilt from the revision's definition on demand and cached, since it never changes for a
//! revision.
//!
//! Each unfinished job's context — plan, pinned revision and mask set — is also cached by job id,
//! so a worker's report finds it without reading the job. Everything in a context follows from
//! fields a job never changes (workspace, revision, task, input, mask record until it is sealed
//! at the end), so an entry can never be stale,
//! even when another replica changes the job; it is dropped when the job finishes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use uuid::Uuid;

use crate::engine::{self, EvalContext, HookTarget, JobPlan, JobState, PlanError};
use crate::workflow::model::{Duration, Hook};
use crate::workspace::manager::Revision;

#[derive(Debug, thiserror::Error)]
pub enum PlanLookupError {
    #[error("revision {revision} of workspace '{workspace}' is no longer available")]
    RevisionGone { workspace: String, revision: String },
    #[error("no hook of this revision runs as '{0}'")]
    UnknownHook(String),
    #[error(transparent)]
    Plan(#[from] PlanError),
}

/// Plans by (workspace, revision, task); hook jobs also by their input keys.
pub(super) struct PlanCache {
    plans: Mutex<HashMap<(String, String, String), Arc<JobPlan>>>,
    /// `default_step_timeout`, filled into every plan's steps that set no timeout.
    default_step_timeout: Option<Duration>,
}

impl PlanCache {
    pub fn new(default_step_timeout: Option<Duration>) -> Self {
        PlanCache {
            plans: Mutex::default(),
            default_step_timeout,
        }
    }

    /// The plan of `task` at `revision`.
    pub fn task(&self, revision: &Revision, task: &str) -> Result<Arc<JobPlan>, PlanLookupError> {
        let key = (
            revision.workspace.clone(),
            revision.revision.clone(),
            task.to_owned(),
        );
        if let Some(plan) = self.lock().get(&key) {
            return Ok(Arc::clone(plan));
        }
        let mut plan = JobPlan::new(&revision.def, task)?;
        plan.default_step_timeout(self.default_step_timeout);
        let plan = Arc::new(plan);
        self.lock().insert(key, Arc::clone(&plan));
        Ok(plan)
    }

    /// The plan of a stored job: its task's, or for a single-step hook job (`_hook:<action>`)
    /// the plan of the hook entry that runs that action.
    pub fn for_job(
        &self,
        revision: &Revision,
        job: &JobState,
    ) -> Result<Arc<JobPlan>, PlanLookupError> {
        if job.source_type != "hook" || revision.def.tasks.contains_key(&job.task) {
            return self.task(revision, &job.task);
        }
        let hook = find_hook(revision, &job.task)
            .ok_or_else(|| PlanLookupError::UnknownHook(job.task.clone()))?;
        let mut plan = hook_plan(revision, hook, &job.input)?;
        plan.default_step_timeout(self.default_step_timeout);
        Ok(Arc::new(plan))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String, String), Arc<JobPlan>>> {
        // A poisoned cache only means another thread panicked mid-insert; the map is intact.
        self.plans.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What every change of one job needs and no change alters.
#[derive(Debug)]
pub(super) struct JobContext {
    pub plan: Arc<JobPlan>,
    pub revision: Arc<Revision>,
    /// The job's full mask set (WF §16.3).
    pub mask: Arc<crate::mask::Masker>,
}

impl JobContext {
    /// What the engine needs to change the job.
    pub fn eval<'a>(
        &'a self,
        templates: &'a crate::workflow::template::Templates,
    ) -> EvalContext<'a> {
        EvalContext {
            templates,
            secrets: &self.revision.secrets,
            mask: &self.mask,
        }
    }
}

/// At most this many contexts are kept; a miss only costs one job read.
const CONTEXTS: usize = 4096;

/// Contexts of unfinished jobs by job id.
#[derive(Default)]
pub(super) struct ContextCache {
    contexts: Mutex<HashMap<Uuid, Arc<JobContext>>>,
}

impl ContextCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Arc<JobContext>>> {
        // Poisoning only means a panic elsewhere; every entry is whole.
        self.contexts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn get(&self, job_id: Uuid) -> Option<Arc<JobContext>> {
        self.lock().get(&job_id).cloned()
    }

    pub fn put(&self, job_id: Uuid, context: Arc<JobContext>) {
        let mut contexts = self.lock();
        if contexts.len() >= CONTEXTS {
            let evict: Vec<Uuid> = contexts.keys().take(CONTEXTS / 8).copied().collect();
            for id in evict {
                contexts.remove(&id);
            }
        }
        contexts.insert(job_id, context);
    }

    pub fn remove(&self, job_id: Uuid) {
        self.lock().remove(&job_id);
    }
}

/// The single-step plan of `hook` with the keys of its rendered `input`.
pub(super) fn hook_plan(
    revision: &Revision,
    hook: &Hook,
    input: &serde_json::Value,
) -> Result<JobPlan, PlanLookupError> {
    let keys: Vec<String> = input
        .as_object()
        .map(|object| object.keys().cloned().collect())
        .unwrap_or_default();
    match engine::hook_target(&revision.def, hook, &keys)? {
        HookTarget::SingleStep(plan) => Ok(*plan),
        HookTarget::Task(task) => Ok(JobPlan::new(&revision.def, &task)?),
    }
}

/// The first hook entry (task hooks, then workspace hooks) whose single-step job is named
/// `job_task`. Entries naming the same action share a plan except for timeout and retry, and
/// the first one's are used.
fn find_hook<'r>(revision: &'r Revision, job_task: &str) -> Option<&'r Hook> {
    let def = &revision.def;
    let task_hooks = def.tasks.values().flat_map(|task| all_hooks(&task.hooks));
    task_hooks
        .chain(all_hooks(&def.hooks))
        .find(|hook| engine::hook_names(hook).0 == job_task)
}

fn all_hooks(hooks: &crate::workflow::model::Hooks) -> impl Iterator<Item = &Hook> {
    hooks
        .on_success
        .iter()
        .chain(&hooks.on_error)
        .chain(&hooks.on_cancel)
        .chain(&hooks.on_suspended)
}
