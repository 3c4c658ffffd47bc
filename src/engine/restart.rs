//! Restart from the failed step (docs/restart.md): a new job of the source job's plan — the same
//! pinned revision, the same validated input — whose steps that completed in the source start
//! `completed` with the source's outputs, so only what did not succeed runs again.
//!
//! A completed step is reused only when every step it depends on is reused too, or was skipped
//! in the source for a reason the reused outputs decide again the same way (a `when`, a cascade
//! of skips, an empty loop): a step that saw the output of a step that runs again may see a
//! different one this time, so it runs again as well. Everything not reused starts `pending`
//! and goes through R1–R7 as in any job; the first settle sees the reused outputs exactly as the
//! source's later steps did.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::event::Effect;
use super::job::{first_settle, initial_job, initial_step};
use super::plan::{JobPlan, PlannedStep};
use super::render::EvalContext;
use super::state::{JobMeta, JobState, StepState, StepStatus, Steps};

/// Creates the restart of `source` (a finished job of `plan`'s task that did not complete)
/// with `input`, the source's validated input, and applies the rules once, like
/// [`super::create`]. Reused steps carry `reused_from: source.id`, no input and no times; a
/// reused loop step keeps its evaluated items and its instances as they ended; a reused task
/// step links the source's child job.
pub fn create_restart(
    plan: &JobPlan,
    meta: JobMeta,
    input: Value,
    source: &JobState,
    now: DateTime<Utc>,
    ctx: &EvalContext<'_>,
) -> (JobState, Vec<Effect>) {
    let mut job = initial_job(plan, meta, input, now);
    let reused = reused_steps(plan, source);
    let mut steps = Steps::with_capacity(source.steps.len().max(plan.steps.len()));
    for planned in &plan.steps {
        let original = source
            .step(&planned.name)
            .filter(|_| reused.contains(planned.name.as_str()));
        let Some(original) = original else {
            steps.push(initial_step(planned));
            continue;
        };
        steps.push(reused_step(planned, original, source));
        if planned.is_loop() {
            let instances = source
                .steps
                .iter()
                .filter(|state| state.loop_source.as_deref() == Some(planned.name.as_str()));
            for instance in instances {
                steps.push(reused_step(planned, instance, source));
            }
        }
    }
    job.steps = steps;
    first_settle(job, plan, now, ctx)
}

/// The names of the flow steps a restart of `source` reuses (see the module documentation).
pub fn reused_steps<'p>(plan: &'p JobPlan, source: &JobState) -> HashSet<&'p str> {
    let mut reused = HashSet::new();
    // Steps whose outcome the restart decides the same way: reused, or skipped for a reason
    // only reused outputs decide.
    let mut settled: HashSet<&str> = HashSet::new();
    // The plan is in topological order, so every dependency was decided before its dependants.
    for planned in &plan.steps {
        let Some(state) = source
            .step(&planned.name)
            .filter(|state| !state.is_instance())
        else {
            continue;
        };
        let inputs_settled = planned
            .depends_on
            .iter()
            .all(|dependency| settled.contains(dependency.as_str()));
        if !inputs_settled {
            continue;
        }
        match state.status {
            StepStatus::Completed => {
                reused.insert(planned.name.as_str());
                settled.insert(planned.name.as_str());
            }
            // R2 skips carry the failed dependency as their reason; `when`, R3 and an empty
            // `for_each` skip without one.
            StepStatus::Skipped if state.error_message.is_none() => {
                settled.insert(planned.name.as_str());
            }
            _ => {}
        }
    }
    reused
}

/// A flow step or loop instance of the source as the restart starts it: as it ended, without
/// the input and times of a run that was not this job's.
fn reused_step(planned: &PlannedStep, original: &StepState, source: &JobState) -> StepState {
    let mut step = initial_step(planned);
    step.step_name = original.step_name.clone();
    step.status = original.status;
    step.output = original.output.clone();
    // A loop that tolerates failures may keep failed instances: their reason stays shown.
    step.error_message = original
        .error_message
        .clone()
        .filter(|_| original.is_instance());
    step.for_each = original.for_each.clone();
    step.loop_source = original.loop_source.clone();
    step.loop_index = original.loop_index;
    step.loop_total = original.loop_total;
    step.child_job_id = original.child_job_id;
    if original.is_instance() {
        step.depends_on = Vec::new();
    }
    step.reused_from = Some(source.id);
    step
}
