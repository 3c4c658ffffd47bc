//! Hooks in `stroem run` (WF §14): when a job ends, its `on_success` / `on_error` / `on_cancel`
//! entries become jobs of their own, run in-process like child jobs, so a workflow behaves the
//! same on a laptop as on the server. What fires and with which input is decided by
//! [`engine::prepare_hooks`], shared with the server.
//!
//! Hooks are best effort: a hook whose input cannot be rendered or validated is not created, and
//! a `_server` line on the original job says why; a failed hook job never changes the original.

use std::collections::VecDeque;

use uuid::Uuid;

use super::executor::{Executor, LOCAL_WORKSPACE, Origin};
use crate::engine::{self, Effect, EvalContext, HookTarget, JobMeta, JobPlan};

impl Executor {
    /// Creates the hook jobs of a job that just finished, if any fire.
    pub(super) fn fire_hooks(&mut self, job_id: Uuid, queue: &mut VecDeque<(Uuid, Effect)>) {
        let prepared = {
            let job = &self.jobs[&job_id];
            let ctx = EvalContext {
                templates: &self.templates,
                secrets: &self.workspace.secrets,
                mask: &job.mask,
            };
            engine::prepare_hooks(&self.workspace.def, &job.state, &job.plan, &ctx)
        };
        self.create_hook_jobs(job_id, prepared, queue);
    }

    /// Creates the `on_suspended` hook jobs of a job whose `step` became `suspended`.
    pub(super) fn fire_suspended_hooks(
        &mut self,
        job_id: Uuid,
        step: &str,
        message: &str,
        queue: &mut VecDeque<(Uuid, Effect)>,
    ) {
        let prepared = {
            let job = &self.jobs[&job_id];
            let ctx = EvalContext {
                templates: &self.templates,
                secrets: &self.workspace.secrets,
                mask: &job.mask,
            };
            engine::prepare_suspended_hooks(
                &self.workspace.def,
                &job.state,
                &job.plan,
                &ctx,
                step,
                message,
            )
        };
        self.create_hook_jobs(job_id, prepared, queue);
    }

    fn create_hook_jobs(
        &mut self,
        job_id: Uuid,
        prepared: Vec<Result<engine::PreparedHook, engine::RefusedHook>>,
        queue: &mut VecDeque<(Uuid, Effect)>,
    ) {
        for hook in prepared {
            let outcome = hook
                .map_err(|refused| (refused.label, refused.reason))
                .and_then(|hook| {
                    let label = hook.label.clone();
                    self.create_hook_job(job_id, hook, queue)
                        .map_err(|reason| (label, reason))
                });
            if let Err((label, reason)) = outcome {
                self.server_line(job_id, &format!("hook {label} was not created: {reason}"));
            }
        }
    }

    fn create_hook_job(
        &mut self,
        original: Uuid,
        hook: engine::PreparedHook,
        queue: &mut VecDeque<(Uuid, Effect)>,
    ) -> Result<(), String> {
        let plan = match hook.target {
            HookTarget::Task(task) => {
                JobPlan::new(&self.workspace.def, &task).map_err(|error| error.to_string())?
            }
            HookTarget::SingleStep(plan) => *plan,
        };
        let job = &self.jobs[&original];
        let inherited_mask = engine::record_of(&job.state, &job.plan).values;
        let meta = JobMeta {
            source_job_id: None,
            retry_of: None,
            id: Uuid::now_v7(),
            workspace: LOCAL_WORKSPACE.to_owned(),
            revision: job.state.revision.clone(),
            source_type: "hook".to_owned(),
            source_id: Some(format!("{original}/{}", hook.event_key)),
            parent_job_id: None,
            parent_step_name: None,
            depth: job.state.depth,
            raw_input: hook.input.clone(),
            inherited_mask: inherited_mask.clone(),
        };
        let origin = Origin {
            mask: inherited_mask,
            prefix: format!("{}{}/", job.prefix, hook.event_key),
            hook_of: Some(original),
        };
        self.create_job(plan, meta, &hook.input, origin, queue)
            .map(|_| ())
            .map_err(|errors| {
                let joined: Vec<String> = errors.iter().map(ToString::to_string).collect();
                joined.join("; ")
            })
    }
}
