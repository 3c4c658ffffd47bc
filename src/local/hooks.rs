//! Hooks in `stroem run` (WF §14): when a job ends, its `on_success` / `on_error` / `on_cancel`
//! entries become jobs of their own, run in-process like child jobs, so a workflow behaves the
//! same on a laptop as on the server.
//!
//! Hooks are best effort: a hook whose input cannot be rendered or validated is not created, and
//! a `_server` line on the original job says why; a failed hook job never changes the original.

use std::collections::VecDeque;

use serde_json::{Value, json};
use uuid::Uuid;

use super::executor::{Executor, LOCAL_WORKSPACE, Origin};
use crate::engine::{self, Effect, HookTarget, JobMeta, JobPlan};
use crate::workflow::input::{self, EnforceOptions};
use crate::workflow::model::{ActionKind, ActionRef, Hook};

impl Executor {
    /// Creates the hook jobs of a job that just finished, if any fire.
    pub(super) fn fire_hooks(&mut self, job_id: Uuid, queue: &mut VecDeque<(Uuid, Effect)>) {
        let job = &self.jobs[&job_id];
        let Some(event) = engine::hook_event(&job.state) else {
            return;
        };
        let hooks: Vec<Hook> =
            engine::hooks_to_fire(&self.workspace.def, &job.state, event).to_vec();
        if hooks.is_empty() {
            return;
        }
        let scope = json!({
            "hook": engine::hook_variable(&job.state, &job.plan, event),
            "secret": self.workspace.secrets,
            "job": engine::job_variable(&job.state),
        });
        for (index, hook) in hooks.iter().enumerate() {
            let label = format!("{}[{index}]", event.key());
            if let Err(reason) = self.fire_hook(job_id, hook, event.key(), &scope, queue) {
                self.server_line(job_id, &format!("hook {label} was not created: {reason}"));
            }
        }
    }

    fn fire_hook(
        &mut self,
        original: Uuid,
        hook: &Hook,
        event_key: &str,
        scope: &Value,
        queue: &mut VecDeque<(Uuid, Effect)>,
    ) -> Result<(), String> {
        let rendered = self
            .templates
            .render_tree(
                &Value::Object(hook.input.clone().into_iter().collect()),
                scope,
            )
            .map_err(|error| format!("input: {error}"))?;
        let keys: Vec<String> = rendered
            .as_object()
            .map(|object| object.keys().cloned().collect())
            .unwrap_or_default();
        let plan = match engine::hook_target(&self.workspace.def, hook, &keys)
            .map_err(|error| error.to_string())?
        {
            HookTarget::Task(task) => {
                JobPlan::new(&self.workspace.def, &task).map_err(|error| error.to_string())?
            }
            HookTarget::SingleStep(plan) => {
                // A single-step job has no schema of its own: check the hook's input against the
                // action's now, so a bad hook is refused instead of failing later.
                self.check_action_input(hook, &rendered)?;
                *plan
            }
        };
        let job = &self.jobs[&original];
        let meta = JobMeta {
            id: Uuid::now_v7(),
            workspace: LOCAL_WORKSPACE.to_owned(),
            revision: job.state.revision.clone(),
            source_type: "hook".to_owned(),
            source_id: Some(format!("{original}/{event_key}")),
            parent_job_id: None,
            parent_step_name: None,
            depth: job.state.depth,
            raw_input: rendered.clone(),
        };
        let origin = Origin {
            mask: job.mask.clone(),
            prefix: format!("{}{event_key}/", job.prefix),
            hook_of: Some(original),
        };
        self.create_job(plan, meta, &rendered, origin, queue)
            .map(|_| ())
            .map_err(|errors| {
                let joined: Vec<String> = errors.iter().map(ToString::to_string).collect();
                joined.join("; ")
            })
    }

    fn check_action_input(&self, hook: &Hook, rendered: &Value) -> Result<(), String> {
        let action = match &hook.action {
            ActionRef::Named(name) => self.workspace.def.actions.get(name),
            ActionRef::Inline { action, .. } => Some(&**action),
        };
        let Some(action) = action else {
            return Ok(());
        };
        if matches!(action.kind, ActionKind::Task(_)) {
            return Ok(());
        }
        let render_default = |template: &str| {
            self.templates
                .render(template, &json!({"secret": self.workspace.secrets}))
                .map_err(|error| error.to_string())
        };
        input::enforce(
            action.input.as_ref(),
            rendered,
            EnforceOptions::default(),
            &render_default,
        )
        .map(|_| ())
        .map_err(|errors| {
            let joined: Vec<String> = errors.iter().map(ToString::to_string).collect();
            joined.join("; ")
        })
    }
}
