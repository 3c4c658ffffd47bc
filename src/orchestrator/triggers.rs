//! Jobs that triggers create (WF §15): one tick of a scheduler trigger, and a webhook call.
//!
//! A tick's job is inserted in the same transaction that moves the trigger's checkpoint
//! ([`Store::fire_tick`](crate::store::Store::fire_tick)), so a tick fires at most once however
//! many schedulers try it, and a crash never leaves a recorded tick without its job or a job
//! without its tick. What `concurrency` asks for happens around that transaction: `skip`
//! stores a `skipped` record instead of a job; `cancel_previous` cancels the earlier unfinished
//! jobs right *after* the new job committed, so a scheduler that loses the race for a tick
//! cancels nothing.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{JobSource, Orchestrator, OrchestratorError, Result};
use crate::engine::{self, Effect, JobMeta, JobState, JobStatus, Steps};
use crate::store::JobRouting;
use crate::workflow::input::FieldError;
use crate::workflow::model::{ScheduleConcurrency, Trigger, TriggerKind, Webhook, WebhookMode};
use crate::workspace::manager::Revision;

/// What firing one scheduler tick did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fired {
    /// The tick's job was created; `cancelled` are the earlier jobs `cancel_previous` stopped.
    Created { job_id: Uuid, cancelled: Vec<Uuid> },
    /// `concurrency: skip` with an unfinished job of the trigger: a `skipped` record.
    Skipped { job_id: Uuid },
    /// The trigger's input failed WF §3.2: a `failed` record with the error, no steps.
    Rejected { job_id: Uuid, error: String },
    /// The tick was not newer than the checkpoint: fired or passed over before (by this
    /// scheduler before a restart, or by another replica). Nothing was written.
    AlreadyFired,
}

/// A webhook trigger found by its name (WF §15.2), with its secret rendered.
#[derive(Debug, Clone)]
pub struct WebhookRequest {
    pub workspace: String,
    /// The trigger's key.
    pub trigger: String,
    pub task: String,
    pub enabled: bool,
    /// `None` for an open hook.
    pub secret: Option<String>,
    /// The trigger's own `input`, rendered for this call (WF §12.2), merged under the request
    /// keys; the fields that failed to render otherwise.
    pub input: std::result::Result<Map<String, Value>, Vec<FieldError>>,
    /// `sync` [P2] waits up to `timeout_secs` for the job to end before answering.
    pub mode: WebhookMode,
    pub timeout_secs: u64,
}

/// The keys a webhook job's input always has (WF §15.2).
const REQUEST_KEYS: [&str; 4] = ["body", "headers", "method", "query"];

impl Orchestrator {
    /// Fires the tick `tick` of the scheduler trigger `trigger` of `workspace` (WF §15.1).
    /// `fired_at` is the scheduler's clock, recorded as the trigger's `last_run_at`.
    pub async fn fire_schedule(
        &self,
        workspace: &str,
        trigger: &str,
        tick: DateTime<Utc>,
        fired_at: DateTime<Utc>,
    ) -> Result<Fired> {
        let workspaces = &self.inner.workspaces;
        let Some(revision) = workspaces.retain_active(workspace) else {
            return Err(OrchestratorError::UnknownWorkspace(workspace.to_owned()));
        };
        let fired = self.fire_pinned(&revision, trigger, tick, fired_at).await;
        // Only a created job keeps its pin (released when it ends); a `failed` record releases
        // it through its `JobFinished` effect.
        if !matches!(fired, Ok(Fired::Created { .. } | Fired::Rejected { .. })) {
            workspaces.release(workspace, &revision.revision);
        }
        fired
    }

    async fn fire_pinned(
        &self,
        revision: &Revision,
        trigger_name: &str,
        tick: DateTime<Utc>,
        fired_at: DateTime<Utc>,
    ) -> Result<Fired> {
        let workspace = revision.workspace.as_str();
        let found =
            revision
                .def
                .triggers
                .get(trigger_name)
                .and_then(|trigger| match &trigger.kind {
                    TriggerKind::Scheduler(schedule) => Some((trigger, schedule)),
                    TriggerKind::Webhook(_) => None,
                });
        let Some((trigger, schedule)) = found else {
            return Err(OrchestratorError::UnknownTrigger {
                workspace: workspace.to_owned(),
                trigger: trigger_name.to_owned(),
            });
        };
        let source = JobSource {
            source_type: "trigger".to_owned(),
            source_id: Some(format!("{workspace}/{trigger_name}")),
        };
        let source_id = source.source_id.clone().unwrap_or_default();
        let previous = self
            .inner
            .store
            .active_jobs_of_source(&source.source_type, &source_id)
            .await?;
        let fired_by = FiredBy {
            trigger: trigger_name,
            kind: "scheduler",
            scheduled_at: Some(tick),
        };
        let rendered = self.trigger_input(revision, trigger, &fired_by);
        let raw_input = match &rendered {
            Ok(input) => Value::Object(input.clone()),
            // Recorded as written, so the failed record shows what did not render.
            Err(_) => Value::Object(trigger.input.clone().into_iter().collect()),
        };
        let meta = top_level_meta(revision, source, raw_input.clone());

        if schedule.concurrency == ScheduleConcurrency::Skip && !previous.is_empty() {
            let record = self.sealed(
                revision,
                record(meta, &trigger.task, JobStatus::Skipped, None),
            );
            let job_id = record.id;
            return Ok(
                if self
                    .store_tick(revision, trigger_name, tick, fired_at, &record)
                    .await?
                {
                    Fired::Skipped { job_id }
                } else {
                    Fired::AlreadyFired
                },
            );
        }

        let prepared = match rendered
            .and_then(|_| self.prepare_job(revision, &trigger.task, meta.clone(), &raw_input))
        {
            Ok(prepared) => prepared,
            Err(OrchestratorError::InvalidInput(errors)) => {
                let error = errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                let record = self.sealed(
                    revision,
                    record(meta, &trigger.task, JobStatus::Failed, Some(error.clone())),
                );
                let job_id = record.id;
                if !self
                    .store_tick(revision, trigger_name, tick, fired_at, &record)
                    .await?
                {
                    return Ok(Fired::AlreadyFired);
                }
                tracing::warn!(%job_id, trigger = %source_id, %error, "trigger input rejected");
                // Ends like any failed job: log archived, `on_error` hooks, pin released.
                self.carry_out(vec![(
                    job_id,
                    Effect::JobFinished {
                        status: JobStatus::Failed,
                    },
                )])
                .await;
                return Ok(Fired::Rejected { job_id, error });
            }
            Err(other) => return Err(other),
        };
        let fired = self
            .inner
            .store
            .fire_tick(
                workspace,
                trigger_name,
                tick,
                fired_at,
                Some((&prepared.job, &prepared.routing)),
            )
            .await?;
        if !fired {
            return Ok(Fired::AlreadyFired);
        }
        let job_id = prepared.job.id;
        self.carry_out(
            prepared
                .effects
                .into_iter()
                .map(|effect| (job_id, effect))
                .collect(),
        )
        .await;
        let mut cancelled = Vec::new();
        if schedule.concurrency == ScheduleConcurrency::CancelPrevious {
            for id in previous {
                match self
                    .cancel_job(id, Some(format!("trigger {source_id}")))
                    .await
                {
                    Ok(_) => cancelled.push(id),
                    // It ended on its own meanwhile.
                    Err(OrchestratorError::AlreadyTerminal(_) | OrchestratorError::Event(_)) => {}
                    Err(error) => {
                        tracing::error!(job_id = %id, %error, "cancel_previous failed");
                    }
                }
            }
        }
        Ok(Fired::Created { job_id, cancelled })
    }

    /// A record (API §8.2) as every finished job is stored: its errors masked, its mask record
    /// sealed (WF §16.3). Its input is the trigger's as written, so its secret fields are the
    /// task's. Without a plan the record keeps no mask record and its views show nothing.
    fn sealed(&self, revision: &Revision, mut record: JobState) -> JobState {
        if let Ok(plan) = self.inner.plans.task(revision, &record.task) {
            let mask = self.job_masker(revision, &engine::mask_record(&plan, &record.input, &[]));
            engine::protect(&mut record, &plan, &mask);
        }
        record
    }

    async fn store_tick(
        &self,
        revision: &Revision,
        trigger: &str,
        tick: DateTime<Utc>,
        fired_at: DateTime<Utc>,
        record: &JobState,
    ) -> Result<bool> {
        let routing = JobRouting::default();
        Ok(self
            .inner
            .store
            .fire_tick(
                &revision.workspace,
                trigger,
                tick,
                fired_at,
                Some((record, &routing)),
            )
            .await?)
    }

    /// Moves a trigger's checkpoint to `tick` without a job: a tick of a disabled trigger, or
    /// one missed while no scheduler ran (`catch_up: none`). False when the checkpoint was
    /// already there.
    pub async fn pass_over_tick(
        &self,
        workspace: &str,
        trigger: &str,
        tick: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        Ok(self
            .inner
            .store
            .fire_tick(workspace, trigger, tick, now, None)
            .await?)
    }

    /// The webhook trigger served at `/hooks/{name}` by some workspace's active revision, with
    /// its secret rendered (WF §15.2: a template with the `secret` context).
    pub fn webhook(&self, name: &str) -> Result<Option<WebhookRequest>> {
        let workspaces = &self.inner.workspaces;
        for ws in workspaces.names() {
            let Some(revision) = workspaces.get(&ws) else {
                continue;
            };
            let Some((key, trigger, hook)) =
                revision
                    .def
                    .triggers
                    .iter()
                    .find_map(|(key, trigger)| match &trigger.kind {
                        TriggerKind::Webhook(hook) if hook.name == name => {
                            Some((key, trigger, hook))
                        }
                        _ => None,
                    })
            else {
                continue;
            };
            let secret = match &hook.secret {
                Some(template) => Some(
                    self.inner
                        .templates
                        .render_string(template, &json!({ "secret": revision.secrets }))
                        .map_err(|error| OrchestratorError::WebhookSecret {
                            trigger: format!("{ws}/{key}"),
                            message: error.to_string(),
                        })?,
                ),
                None => None,
            };
            let fired_by = FiredBy {
                trigger: key,
                kind: "webhook",
                scheduled_at: None,
            };
            let input = self.trigger_input(&revision, trigger, &fired_by);
            return Ok(Some(webhook_request(
                &ws, key, trigger, hook, secret, input,
            )));
        }
        Ok(None)
    }

    /// Creates the job of a webhook call: the request's `{body, headers, method, query}` with
    /// the trigger's `input` merged at the top level, validated per WF §3.2.
    pub async fn fire_webhook(
        &self,
        hook: &WebhookRequest,
        request: Map<String, Value>,
    ) -> Result<JobState> {
        let mut input = request;
        let own = hook
            .input
            .as_ref()
            .map_err(|errors| OrchestratorError::InvalidInput(errors.clone()))?;
        for (key, value) in own {
            if !REQUEST_KEYS.contains(&key.as_str()) {
                input.insert(key.clone(), value.clone());
            }
        }
        let source = JobSource {
            source_type: "webhook".to_owned(),
            source_id: Some(format!("{}/{}", hook.workspace, hook.trigger)),
        };
        self.create_job(&hook.workspace, &hook.task, Value::Object(input), source)
            .await
    }
}

/// What fired a trigger: the `trigger` variable of its input templates (WF §12.2).
struct FiredBy<'a> {
    trigger: &'a str,
    kind: &'static str,
    /// The tick of a scheduler trigger; null for a webhook call.
    scheduled_at: Option<DateTime<Utc>>,
}

impl Orchestrator {
    /// A trigger's `input` rendered for one firing with `secret` and `trigger` (WF §12.2); a
    /// field that fails to render is an input error naming `triggers.<key>.input.<field>`.
    fn trigger_input(
        &self,
        revision: &Revision,
        trigger: &Trigger,
        fired_by: &FiredBy<'_>,
    ) -> Result<Map<String, Value>> {
        let context = json!({
            "secret": revision.secrets,
            "trigger": {
                "name": fired_by.trigger,
                "type": fired_by.kind,
                "scheduled_at": fired_by.scheduled_at.as_ref().map(crate::api::time::format),
            },
        });
        let mut rendered = Map::new();
        let mut errors = Vec::new();
        for (key, value) in &trigger.input {
            match self.inner.templates.render_tree(value, &context) {
                Ok(value) => {
                    rendered.insert(key.clone(), value);
                }
                // A render error may quote the value it failed on, a secret included; a
                // webhook answers with it, so it is masked like any job error.
                Err(error) => errors.push(FieldError {
                    field: format!("triggers.{}.input.{key}", fired_by.trigger),
                    message: self
                        .job_masker(revision, &engine::MaskRecord::default())
                        .mask(&error.to_string())
                        .into_owned(),
                }),
            }
        }
        if errors.is_empty() {
            Ok(rendered)
        } else {
            Err(OrchestratorError::InvalidInput(errors))
        }
    }
}

fn webhook_request(
    ws: &str,
    key: &str,
    trigger: &Trigger,
    hook: &Webhook,
    secret: Option<String>,
    input: Result<Map<String, Value>>,
) -> WebhookRequest {
    WebhookRequest {
        workspace: ws.to_owned(),
        trigger: key.to_owned(),
        task: trigger.task.clone(),
        enabled: trigger.enabled,
        secret,
        input: input.map_err(|error| match error {
            OrchestratorError::InvalidInput(errors) => errors,
            other => vec![FieldError {
                field: "input".to_owned(),
                message: other.to_string(),
            }],
        }),
        mode: hook.mode,
        timeout_secs: hook.timeout_secs,
    }
}

fn top_level_meta(revision: &Revision, source: JobSource, raw_input: Value) -> JobMeta {
    JobMeta {
        source_job_id: None,
        retry_of: None,
        id: Uuid::now_v7(),
        workspace: revision.workspace.clone(),
        revision: revision.revision.clone(),
        source_type: source.source_type,
        source_id: source.source_id,
        parent_job_id: None,
        parent_step_name: None,
        depth: 0,
        raw_input,
        inherited_mask: Vec::new(),
    }
}

/// A terminal job without steps (API §8.2): the `skipped` placeholder of `concurrency: skip`,
/// or the `failed` record of a tick whose input was rejected. Its input is the trigger's input
/// as written, since it never passed validation.
fn record(meta: JobMeta, task: &str, status: JobStatus, error: Option<String>) -> JobState {
    let now = Utc::now();
    JobState {
        id: meta.id,
        workspace: meta.workspace,
        task: task.to_owned(),
        status,
        input: meta.raw_input.clone(),
        raw_input: meta.raw_input,
        output: Value::Null,
        error,
        created_at: now,
        started_at: None,
        completed_at: Some(now),
        source_type: meta.source_type,
        source_id: meta.source_id,
        priority: 0,
        retry_of_job_id: None,
        retry_attempt: 1,
        retry_due_at: None,
        retry_job_id: None,
        queued: false,
        parent_job_id: None,
        parent_step_name: None,
        revision: meta.revision,
        depth: 0,
        timeout_secs: None,
        source_job_id: None,
        mode: crate::workflow::model::TaskMode::Distributed,
        pinned_worker: None,
        steps: Steps::default(),
        mask: None,
    }
}
