//! The job engine inside the server: the pure rules of [`crate::engine`] applied to jobs kept in
//! the [`Store`], one transaction per change, with their effects carried out (child jobs,
//! hooks, `_server` log lines, waking claimers).
//!
//! Every entry point that creates or changes a job — the API, the embedded and remote workers,
//! the recovery loop — goes through here, so there is one path from an event to the database.
//!
//! *Invariant*: job state changes only inside `Store::with_job`/`claim`/`with_lease`/
//! `expire_lease` callbacks that call `engine::apply`; effects run after the commit.

mod approvals;
mod chains;
mod effects;
mod plans;
mod recovery;
mod restart;
mod retention;
mod triggers;
mod workers;
pub mod workspace_token;

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::engine::{self, Effect, EvalContext, Event, EventError, JobMeta, JobState, ViewMask};
use crate::logs::LogStore;
use crate::mask::Masker;
use crate::store::{JobRouting, Store, StoreError};
use crate::workflow::input::{self, EnforceOptions, FieldError};
use crate::workflow::model::Duration;
use crate::workflow::template::Templates;
use crate::workspace::manager::{Revision, Workspaces};

pub use approvals::Decision;
pub use plans::PlanLookupError;
pub use recovery::Sweep;
pub use retention::{RETENTION_BATCH, Retention, RetentionReport};
pub use triggers::{Fired, WebhookRequest};
pub use workers::{ClaimedStep, Completion, Heartbeat, LogAck, StartOutcome};

/// Server settings the orchestrator needs (API §10.2).
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a lease lives without a heartbeat (`recovery.heartbeat_timeout_secs`).
    pub lease_ttl: TimeDelta,
    /// A worker without heartbeat for this long becomes inactive.
    pub heartbeat_timeout: TimeDelta,
    pub default_job_timeout: Option<Duration>,
    /// The timeout of a step whose step and action set none (WF §13.2).
    pub default_step_timeout: Option<Duration>,
    /// A ready step no active worker can run fails after this long (API §8.5 item 6).
    pub unmatched_step_timeout: TimeDelta,
    /// How long past a worker step's timeout the server waits for the worker to stop it before
    /// failing the attempt itself (API §8.5 item 3: `kill_grace_secs` + 30 s).
    pub step_timeout_grace: TimeDelta,
    /// The server's own credentials (`config::Credentials`), masked like secrets in every
    /// job's logs, errors and views, should a step ever get hold of one.
    pub credentials: Masker,
    /// Signs the `workspace_token` of pod-step claims (API §7.3).
    pub workspace_tokens: workspace_token::WorkspaceTokens,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            lease_ttl: TimeDelta::seconds(60),
            heartbeat_timeout: TimeDelta::seconds(60),
            default_job_timeout: None,
            default_step_timeout: None,
            unmatched_step_timeout: TimeDelta::seconds(120),
            step_timeout_grace: TimeDelta::seconds(40),
            credentials: Masker::default(),
            workspace_tokens: workspace_token::WorkspaceTokens::default(),
        }
    }
}

/// Who asked for a job (API §2.4 `source_type` / `source_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSource {
    pub source_type: String,
    pub source_id: Option<String>,
}

impl JobSource {
    /// A job created through the API with authentication off.
    pub fn api() -> Self {
        JobSource {
            source_type: "api".to_owned(),
            source_id: None,
        }
    }
}

/// Why an orchestrator call failed. The server maps each kind to a status.
#[derive(Debug, thiserror::Error)]
pub enum OrchestratorError {
    #[error("workspace '{0}' not found")]
    UnknownWorkspace(String),
    #[error("task '{task}' not found in workspace '{workspace}'")]
    UnknownTask { workspace: String, task: String },
    #[error("job {0} not found")]
    JobNotFound(Uuid),
    #[error("trigger '{trigger}' not found in workspace '{workspace}'")]
    UnknownTrigger { workspace: String, trigger: String },
    /// A webhook's `secret` template failed to render: a server-side problem, never the
    /// caller's.
    #[error("the secret of webhook trigger {trigger} cannot be rendered: {message}")]
    WebhookSecret { trigger: String, message: String },
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    InvalidInput(Vec<FieldError>),
    #[error("job {0} has already finished")]
    AlreadyTerminal(Uuid),
    /// Restarting a job that has not finished (API `not_terminal`, docs/restart.md).
    #[error("job {id} is {status}: only a finished job can be restarted")]
    NotTerminal { id: Uuid, status: &'static str },
    /// Restarting a job with nothing to restart: it completed, or it is no task's job.
    #[error("{0}")]
    NothingToRestart(String),
    /// The revision a job was pinned to is no longer retained (API `gone`).
    #[error("revision {revision} of workspace '{workspace}' is no longer retained")]
    RevisionGone { workspace: String, revision: String },
    #[error("step '{step}' not found in job {job}")]
    UnknownStep { job: Uuid, step: String },
    /// Deciding an approval step that is not waiting for one (API §3.4 `not_suspended`).
    #[error("step '{step}' is {status}, not suspended")]
    NotSuspended { step: String, status: &'static str },
    /// The report's lease is not the step's current one (API §7.4); `state` and
    /// `report_digest` describe the lease if it exists, so a retried `complete` can be told
    /// apart from a stale one.
    #[error("lease is not current")]
    StaleLease {
        state: Option<crate::store::LeaseStatus>,
        report_digest: Option<String>,
    },
    #[error(transparent)]
    Plan(#[from] PlanLookupError),
    #[error("event refused: {0}")]
    Event(#[from] EventError),
    #[error(transparent)]
    Store(StoreError),
    #[error("log storage: {0}")]
    Logs(#[from] crate::logs::LogError),
}

impl From<StoreError> for OrchestratorError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::JobNotFound(id) => OrchestratorError::JobNotFound(id),
            StoreError::StaleLease {
                state,
                report_digest,
                ..
            } => OrchestratorError::StaleLease {
                state,
                report_digest,
            },
            other => OrchestratorError::Store(other),
        }
    }
}

pub type Result<T, E = OrchestratorError> = std::result::Result<T, E>;

/// A job built and validated but not yet stored, with the effects its creation causes.
struct PreparedJob {
    job: JobState,
    routing: JobRouting,
    effects: Vec<Effect>,
}

/// The earliest end of a retry delay among ready worker steps, as the claims last learnt it, so
/// a claim that comes back empty asks the database only when something may have changed: every
/// wake-up (a step made ready here or, on PostgreSQL, on another server) starts a new
/// `generation` and forgets the answer, and an answer is kept only if no wake-up came while it
/// was asked.
#[derive(Debug, Clone, Copy, Default)]
struct RetryHint {
    generation: u64,
    /// `None`: unknown; `Some(None)`: no retry is waiting; `Some(Some(at))`: the earliest ends at.
    next: Option<Option<chrono::DateTime<Utc>>>,
}

/// Cheap to clone; every clone shares the same store, logs and wake-up signal.
#[derive(Clone)]
pub struct Orchestrator {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    logs: LogStore,
    workspaces: Arc<Workspaces>,
    templates: Templates,
    settings: Settings,
    /// Woken whenever a step may have become claimable, so long-polling claims return at once.
    ready: Notify,
    /// What claims know of the earliest retry delay to end; see [`RetryHint`].
    retry_hint: std::sync::Mutex<RetryHint>,
    plans: plans::PlanCache,
    contexts: plans::ContextCache,
}

impl std::fmt::Debug for Orchestrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Orchestrator").finish_non_exhaustive()
    }
}

impl Orchestrator {
    pub fn new(
        store: Store,
        logs: LogStore,
        workspaces: Arc<Workspaces>,
        settings: Settings,
    ) -> Self {
        let plans = plans::PlanCache::new(settings.default_step_timeout);
        Orchestrator {
            inner: Arc::new(Inner {
                store,
                logs,
                workspaces,
                templates: Templates::new(),
                settings,
                ready: Notify::new(),
                retry_hint: std::sync::Mutex::new(RetryHint::default()),
                plans,
                contexts: plans::ContextCache::default(),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn logs(&self) -> &LogStore {
        &self.inner.logs
    }

    pub fn workspaces(&self) -> &Arc<Workspaces> {
        &self.inner.workspaces
    }

    /// Re-pins the revisions of unfinished jobs after a restart, then lets the workspace
    /// registry drop snapshots nobody uses.
    pub async fn resume(&self) -> Result<()> {
        for job_id in self.inner.store.unfinished_jobs().await? {
            if let Some(job) = self.inner.store.get_job(job_id).await? {
                self.inner.workspaces.retain(&job.workspace, &job.revision);
            }
        }
        self.resume_retries().await?;
        self.inner.workspaces.prune();
        self.wake_claimers();
        Ok(())
    }

    /// Creates a job of `task` in `workspace` from `raw_input` (WF §3.2 enforced first), pinned
    /// to the workspace's active revision. Nothing is written when the input is rejected.
    pub async fn create_job(
        &self,
        workspace: &str,
        task: &str,
        raw_input: Value,
        source: JobSource,
    ) -> Result<JobState> {
        self.create_job_from(workspace, task, raw_input, source, None)
            .await
    }

    /// [`Orchestrator::create_job`] as a re-run of `source_job` (API §3.3 [P2]), which must be a
    /// job of the same workspace and task: a secret field given as `••••••` takes the source
    /// job's value, and the job records `source_job_id` with `source_type: rerun`.
    pub async fn create_job_from(
        &self,
        workspace: &str,
        task: &str,
        mut raw_input: Value,
        mut source: JobSource,
        source_job: Option<&JobState>,
    ) -> Result<JobState> {
        if let Some(original) = source_job {
            if original.workspace != workspace || original.task != task {
                return Err(OrchestratorError::InvalidInput(vec![FieldError {
                    field: "source_job_id".to_owned(),
                    message: format!(
                        "job {} is a job of task '{}' in workspace '{}', not of this task",
                        original.id, original.task, original.workspace
                    ),
                }]));
            }
            let secret_fields = self
                .inner
                .workspaces
                .revision(workspace, &original.revision)
                .and_then(|revision| {
                    revision
                        .def
                        .tasks
                        .get(task)
                        .map(|def| engine::secret_field_names(def.input.as_ref()))
                })
                .unwrap_or_default();
            if let Value::Object(given) = &mut raw_input {
                for field in secret_fields {
                    let masked = given
                        .get(&field)
                        .is_some_and(|value| value.as_str() == Some(crate::mask::MASK));
                    if masked {
                        match original.input.get(&field) {
                            Some(value) => given.insert(field, value.clone()),
                            None => given.remove(&field),
                        };
                    }
                }
            }
            source.source_type = "rerun".to_owned();
        }
        let source_job_id = source_job.map(|job| job.id);
        let Some(revision) = self.inner.workspaces.retain_active(workspace) else {
            // A workspace whose every revision failed validation exists but serves no tasks
            // (API §3.2): the task is what is not found.
            return Err(match self.inner.workspaces.view(workspace) {
                Some(_) => OrchestratorError::UnknownTask {
                    workspace: workspace.to_owned(),
                    task: task.to_owned(),
                },
                None => OrchestratorError::UnknownWorkspace(workspace.to_owned()),
            });
        };
        if !revision.def.tasks.contains_key(task) {
            self.inner.workspaces.release(workspace, &revision.revision);
            return Err(OrchestratorError::UnknownTask {
                workspace: workspace.to_owned(),
                task: task.to_owned(),
            });
        }
        let meta = JobMeta {
            source_job_id: None,
            retry_of: None,
            id: Uuid::now_v7(),
            workspace: workspace.to_owned(),
            revision: revision.revision.clone(),
            source_type: source.source_type,
            source_id: source.source_id,
            parent_job_id: None,
            parent_step_name: None,
            depth: 0,
            raw_input: raw_input.clone(),
            inherited_mask: Vec::new(),
        };
        let meta = JobMeta {
            source_job_id,
            ..meta
        };
        let created = self.insert_job(&revision, task, meta, &raw_input).await;
        match created {
            Ok((job, effects)) => {
                self.carry_out(effects).await;
                // A queued job may have been admitted at once: answer with what is stored.
                if job.queued
                    && let Some(now) = self.inner.store.get_job(job.id).await?
                {
                    return Ok(now);
                }
                Ok(job)
            }
            Err(error) => {
                self.inner.workspaces.release(workspace, &revision.revision);
                Err(error)
            }
        }
    }

    /// Validates the input and stores a new job; the caller carries out the returned effects.
    async fn insert_job(
        &self,
        revision: &Revision,
        task: &str,
        meta: JobMeta,
        raw_input: &Value,
    ) -> Result<(JobState, Vec<(Uuid, Effect)>)> {
        let prepared = self.prepare_job(revision, task, meta, raw_input)?;
        self.store_prepared(prepared).await
    }

    /// Validates the input (WF §3.2) and builds a new job, without storing it.
    fn prepare_job(
        &self,
        revision: &Revision,
        task: &str,
        meta: JobMeta,
        raw_input: &Value,
    ) -> Result<PreparedJob> {
        let plan = self.inner.plans.task(revision, task)?;
        self.refuse_missing_secrets(revision, task)?;
        let default_scope = json!({
            "secret": revision.secrets,
            "job": {"id": meta.id, "task": task, "workspace": meta.workspace,
                    "source_type": meta.source_type, "source_id": meta.source_id,
                    "revision": meta.revision},
        });
        let render_default = |template: &str| {
            self.inner
                .templates
                .render(template, &default_scope)
                .map_err(|error| error.to_string())
        };
        let validated = input::enforce(
            plan.task_input.as_ref(),
            raw_input,
            EnforceOptions {
                webhook: meta.source_type == "webhook",
            },
            &render_default,
        )
        .map_err(|errors| {
            // A message may quote a value: a rendered default, or a value handed on.
            let record = engine::mask_record(&plan, raw_input, &meta.inherited_mask);
            let mask = self.job_masker(revision, &record);
            OrchestratorError::InvalidInput(
                errors
                    .into_iter()
                    .map(|error| FieldError {
                        message: mask.mask(&error.message).into_owned(),
                        ..error
                    })
                    .collect(),
            )
        })?;
        Ok(self.new_job(
            revision,
            &plan,
            meta,
            Value::Object(validated.into_iter().collect()),
        ))
    }

    /// WF §16.1: a secret that could not be resolved refuses the jobs that use it.
    fn refuse_missing_secrets(&self, revision: &Revision, task: &str) -> Result<()> {
        let missing = crate::workspace::secrets::missing_for_task(
            &revision.def,
            task,
            &revision.missing_secrets,
            &self.inner.templates,
        );
        if missing.is_empty() {
            return Ok(());
        }
        Err(OrchestratorError::InvalidInput(
            missing
                .into_iter()
                .map(|error| FieldError {
                    field: format!("secret.{}", error.name),
                    message: format!(
                        "cannot be resolved ({}); jobs that use this secret are refused until it is set",
                        error.message
                    ),
                })
                .collect(),
        ))
    }

    async fn store_new_job(
        &self,
        revision: &Revision,
        plan: &engine::JobPlan,
        meta: JobMeta,
        input: Value,
    ) -> Result<(JobState, Vec<(Uuid, Effect)>)> {
        self.store_prepared(self.new_job(revision, plan, meta, input))
            .await
    }

    /// A new job of `plan` with validated `input`, as the engine creates it.
    fn new_job(
        &self,
        revision: &Revision,
        plan: &engine::JobPlan,
        meta: JobMeta,
        input: Value,
    ) -> PreparedJob {
        let record = engine::mask_record(plan, &input, &meta.inherited_mask);
        let mask = self.job_masker(revision, &record);
        let ctx = EvalContext {
            templates: &self.inner.templates,
            secrets: &revision.secrets,
            mask: &mask,
        };
        let (mut job, effects) = engine::create(plan, meta, input, Utc::now(), &ctx);
        if job.timeout_secs.is_none() {
            job.timeout_secs = self.inner.settings.default_job_timeout.map(Duration::secs);
        }
        PreparedJob {
            routing: JobRouting::from_plan(plan, plan.priority),
            job,
            effects,
        }
    }

    async fn store_prepared(
        &self,
        prepared: PreparedJob,
    ) -> Result<(JobState, Vec<(Uuid, Effect)>)> {
        let PreparedJob {
            job,
            routing,
            effects,
        } = prepared;
        self.inner.store.create_job(&job, &routing).await?;
        let id = job.id;
        Ok((
            job,
            effects.into_iter().map(|effect| (id, effect)).collect(),
        ))
    }

    /// The stored job, or [`OrchestratorError::JobNotFound`].
    async fn stored_job(&self, job_id: Uuid) -> Result<JobState> {
        self.inner
            .store
            .get_job(job_id)
            .await?
            .ok_or(OrchestratorError::JobNotFound(job_id))
    }

    /// Cancels a job (API §8.4). Cancelling a finished job is `AlreadyTerminal`, except a
    /// failed job waiting for its task-level retry: the retry is cancelled (WF §13.1).
    pub async fn cancel_job(&self, job_id: Uuid, by: Option<String>) -> Result<JobState> {
        let job = self.stored_job(job_id).await?;
        if job.retry_pending() {
            return self.apply(job_id, Event::CancelRequested { by }).await;
        }
        if job.is_finished() || job.is_halted() {
            return Err(OrchestratorError::AlreadyTerminal(job_id));
        }
        self.apply(job_id, Event::CancelRequested { by }).await
    }

    /// Applies one event to a stored job in one transaction, then carries out its effects.
    pub async fn apply(&self, job_id: Uuid, event: Event) -> Result<JobState> {
        let (effects, job) = self.apply_only(job_id, event).await?;
        self.carry_out(effects).await;
        Ok(job)
    }

    async fn apply_only(
        &self,
        job_id: Uuid,
        event: Event,
    ) -> Result<(Vec<(Uuid, Effect)>, JobState)> {
        self.apply_creating(job_id, event, Vec::new()).await
    }

    /// [`Orchestrator::apply_only`] that also inserts `new_jobs` in the same transaction, so
    /// they exist exactly when the event is recorded.
    async fn apply_creating(
        &self,
        job_id: Uuid,
        event: Event,
        new_jobs: Vec<(JobState, JobRouting)>,
    ) -> Result<(Vec<(Uuid, Effect)>, JobState)> {
        let context = self.context_by_id(job_id).await?;
        let templates = &self.inner.templates;
        let (effects, job) = self
            .inner
            .store
            .with_job_creating(job_id, |job| {
                let ctx = context.eval(templates);
                let mut jitter = || rand::random::<f64>();
                engine::apply(job, &context.plan, event, Utc::now(), &ctx, &mut jitter)
                    .map(|effects| (effects, new_jobs))
                    .map_err(OrchestratorError::from)
            })
            .await?;
        self.tick_when_a_task_retry_is_due(&job);
        Ok((effects.into_iter().map(|e| (job_id, e)).collect(), job))
    }

    /// The plan and pinned revision of a stored job.
    fn plan_for(&self, job: &JobState) -> Result<(Arc<engine::JobPlan>, Arc<Revision>)> {
        let revision = self
            .inner
            .workspaces
            .revision(&job.workspace, &job.revision)
            .ok_or_else(|| PlanLookupError::RevisionGone {
                workspace: job.workspace.clone(),
                revision: job.revision.clone(),
            })?;
        let plan = self.inner.plans.for_job(&revision, job)?;
        Ok((plan, revision))
    }

    /// The plan of a stored job while its revision is retained, for the API's job views
    /// (each step's `when`, written `for_each` and image).
    pub fn plan_of(&self, job: &JobState) -> Option<Arc<engine::JobPlan>> {
        self.plan_for(job).ok().map(|(plan, _)| plan)
    }

    /// A job's full mask set: its revision's, its record's and the server's credentials.
    fn job_masker(&self, revision: &Revision, record: &engine::MaskRecord) -> Masker {
        let mask = engine::job_masker(&revision.mask, record);
        if self.inner.settings.credentials.is_empty() {
            mask
        } else {
            mask.union(&self.inner.settings.credentials)
        }
    }

    /// How a job's API views are masked (WF §16.3): a sealed job by what it keeps itself;
    /// any other by its full mask set while its revision is at hand; and when that is gone too
    /// (only a job stored before masks were kept with jobs), with nothing shown at all.
    pub fn view_mask(&self, job: &JobState) -> ViewMask {
        if let Some(record) = job.mask.as_ref().filter(|record| record.sealed) {
            return ViewMask::sealed(record);
        }
        match self.context_of(job) {
            Ok(context) => ViewMask::Known {
                mask: Arc::clone(&context.mask),
                fields: engine::record_of(job, &context.plan).fields,
            },
            Err(_) => ViewMask::Unknown,
        }
    }

    /// The plan, revision and mask of a job, cached while it is unfinished (see `plans`).
    fn context_of(&self, job: &JobState) -> Result<Arc<plans::JobContext>> {
        if let Some(context) = self.inner.contexts.get(job.id) {
            return Ok(context);
        }
        let (plan, revision) = self.plan_for(job)?;
        let record = engine::record_of(job, &plan);
        let mask = Arc::new(self.job_masker(&revision, &record));
        let context = Arc::new(plans::JobContext {
            plan,
            revision,
            mask,
        });
        if !job.is_finished() {
            self.inner.contexts.put(job.id, Arc::clone(&context));
        }
        Ok(context)
    }

    /// [`Orchestrator::context_of`] by id: reads the job only when its context is not cached.
    async fn context_by_id(&self, job_id: Uuid) -> Result<Arc<plans::JobContext>> {
        if let Some(context) = self.inner.contexts.get(job_id) {
            return Ok(context);
        }
        let job = self.stored_job(job_id).await?;
        self.context_of(&job)
    }
}
