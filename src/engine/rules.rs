//! Job re-evaluation (WF §10): after every event, R1–R7 are applied to pending steps in
//! topological order until nothing changes, loops are expanded and settled, due task-step
//! retries are dispatched, and the job outcome is decided once every step is terminal.

use chrono::{DateTime, Utc};
use serde_json::{Map as JsonMap, Value};

use super::event::Effect;
use super::masking::{secret_field_names, show_input};
use super::plan::{JobPlan, PlannedStep};
use super::render::{EvalContext, context_for, job_input, render_approval, render_step_input};
use super::state::{JobState, JobStatus, StepState, StepStatus};
use crate::workflow::model::{ForEach, When};

/// The most instances one loop step may expand to (WF §10.3).
pub const MAX_LOOP_ITEMS: usize = 10_000;

/// The deepest a child job may be nested; the top-level job is depth 0 (WF §6.7).
pub const MAX_DEPTH: u32 = 10;

/// Everything one re-evaluation needs besides the job.
pub(crate) struct Settle<'a> {
    pub plan: &'a JobPlan,
    pub ctx: &'a EvalContext<'a>,
    pub now: DateTime<Utc>,
    pub effects: &'a mut Vec<Effect>,
}

/// Position in `job.steps` of every flow step, by the step's position in the plan, so a sweep
/// costs O(steps + dependencies), not O(steps²), and building it copies no name: it is rebuilt
/// on every event, and the orchestration overhead must stay linear up to 1 000 steps (DESIGN
/// §9).
struct Index(Vec<Option<usize>>);

impl Index {
    fn of(job: &JobState, plan: &JobPlan) -> Index {
        let mut positions = vec![None; plan.steps.len()];
        let mut expected = 0;
        for (position, state) in job.steps.iter().enumerate() {
            if state.is_instance() {
                continue;
            }
            // Flow steps are stored in the plan's order (the `JobState` invariant), so the name
            // is looked up only when that does not hold.
            let at = match plan.steps.get(expected) {
                Some(planned) if planned.name == state.step_name => Some(expected),
                _ => plan.position(&state.step_name),
            };
            if let Some(at) = at {
                positions[at] = Some(position);
                expected = at + 1;
            }
        }
        Index(positions)
    }

    /// The position of flow step `name` in `job.steps`.
    fn get(&self, plan: &JobPlan, name: &str) -> Option<usize> {
        plan.position(name).and_then(|at| self.0[at])
    }
}

impl Settle<'_> {
    /// Applies the rules until a fixed point, then decides the job outcome.
    pub fn run(&mut self, job: &mut JobState) {
        if job.is_finished() {
            return;
        }
        // A queued job promotes nothing (WF §8 [P2]); cancelling it still finishes it.
        if job.queued {
            self.finish_if_done(job);
            return;
        }
        let mut index = Index::of(job, self.plan);
        loop {
            let mut changed = false;
            // Loop expansion inserts instances right after their loop step, so the length is
            // re-read on every iteration and the new instances are visited in the same sweep.
            let mut position = 0;
            while position < job.steps.len() {
                let before = job.steps.len();
                changed |= self.visit(job, &index, position);
                if job.steps.len() != before {
                    index = Index::of(job, self.plan);
                }
                position += 1;
            }
            if !changed {
                break;
            }
        }
        self.finish_if_done(job);
    }

    fn visit(&mut self, job: &mut JobState, index: &Index, position: usize) -> bool {
        let state = &job.steps[position];
        // Most steps of a large job are finished or waiting: no rule applies to a finished one.
        if state.status.is_terminal() {
            return false;
        }
        let Some(planned) = self.plan.step(state.flow_name()) else {
            return false;
        };
        let halted = job.is_halted();
        match state.status {
            StepStatus::Pending if halted => false,
            StepStatus::Pending if state.is_instance() => {
                self.promote_instance(job, index, position)
            }
            StepStatus::Pending => self.promote(job, index, planned, position),
            StepStatus::Running if planned.is_loop() && !state.is_instance() => {
                self.settle_loop(job, planned, position)
            }
            // A task step waiting out its retry delay is dispatched by the server, not claimed.
            StepStatus::Ready
                if !halted
                    && planned.child_task().is_some()
                    && state.retry_at.is_none_or(|at| at <= self.now) =>
            {
                self.start_child(job, planned, position);
                true
            }
            _ => false,
        }
    }

    /// R1–R6 for a pending flow step.
    fn promote(
        &mut self,
        job: &mut JobState,
        index: &Index,
        planned: &PlannedStep,
        position: usize,
    ) -> bool {
        let mut statuses = Vec::with_capacity(planned.depends_on.len());
        for dependency in &planned.depends_on {
            match index.get(self.plan, dependency) {
                Some(at) => statuses.push((dependency, job.steps[at].status)),
                None => return false,
            }
        }
        // R1 wait.
        if statuses.iter().any(|(_, status)| !status.is_terminal()) {
            return false;
        }
        let tolerant = planned.step.continue_on_failure;
        if !tolerant {
            // R2 failure propagation.
            let failed = statuses
                .iter()
                .find(|(_, status)| matches!(status, StepStatus::Failed | StepStatus::Cancelled));
            if let Some((dependency, _)) = failed {
                let reason = format!("dependency '{dependency}' failed");
                self.skip(job, position, Some(reason));
                return true;
            }
            // R3 cascade skip.
            if !statuses.is_empty()
                && statuses
                    .iter()
                    .all(|(_, status)| *status == StepStatus::Skipped)
            {
                self.skip(job, position, None);
                return true;
            }
        }
        // R4 convergence: the step proceeds. R5 condition.
        match &planned.step.when {
            None | Some(When::Constant(true)) => {}
            Some(When::Constant(false)) => {
                self.skip(job, position, None);
                return true;
            }
            Some(When::Template(template)) => {
                let input = job_input(job, self.plan);
                let scope = context_for(job, self.ctx, &input, None, [template.as_str()]);
                match self.ctx.templates.condition(template, &scope) {
                    Ok(true) => {}
                    Ok(false) => {
                        self.skip(job, position, None);
                        return true;
                    }
                    Err(error) => {
                        self.fail(job, position, format!("when: {error}"));
                        return true;
                    }
                }
            }
        }
        // R6 dispatch.
        if planned.is_loop() {
            self.expand(job, planned, position);
        } else {
            self.dispatch(job, planned, position);
        }
        true
    }

    /// R6 for a single step or loop instance: task steps start their child job, worker steps
    /// become claimable.
    fn dispatch(&mut self, job: &mut JobState, planned: &PlannedStep, position: usize) {
        if planned.child_task().is_some() {
            self.start_child(job, planned, position);
            return;
        }
        if planned.approval().is_some() {
            return self.suspend(job, planned, position);
        }
        // An action kind this version cannot run must not reach a worker.
        if !planned.action.runs_on_worker() {
            let error = format!(
                "{} actions are not supported in this version",
                planned.action.type_name()
            );
            return self.fail(job, position, error);
        }
        let state = &mut job.steps[position];
        state.status = StepStatus::Ready;
        state.ready_at = Some(self.now);
        self.effects.push(Effect::StepReady {
            step: state.step_name.clone(),
            not_before: None,
        });
    }

    /// R6 for an approval step (WF §6.8): renders its input and `message` and waits for a
    /// decision, `suspended`; `on_suspended` hooks fire from [`Effect::StepSuspended`].
    fn suspend(&mut self, job: &mut JobState, planned: &PlannedStep, position: usize) {
        let Some(approval) = planned.approval() else {
            return;
        };
        let mut state = job.steps[position].clone();
        state.attempt = 1;
        let (input, message) = match render_approval(job, self.plan, &state, approval, self.ctx) {
            Ok(rendered) => rendered,
            Err(error) => return self.fail(job, position, error),
        };
        let fields = secret_field_names(planned.action.input.as_ref());
        let message = self.ctx.mask.mask(&message).into_owned();
        state.status = StepStatus::Suspended;
        state.input = Some(show_input(&input, &fields, self.ctx.mask));
        state.started_at = Some(self.now);
        state.suspended_at = Some(self.now);
        state.approval_message = Some(message.clone());
        self.effects.push(Effect::Log {
            line: format!("step '{}' waits for approval: {message}", state.step_name),
        });
        self.effects.push(Effect::StepSuspended {
            step: state.step_name.clone(),
            message,
        });
        job.steps[position] = state;
        mark_running(job, self.now);
    }

    /// Dispatches one attempt of a task step: renders its input and asks for a child job.
    fn start_child(&mut self, job: &mut JobState, planned: &PlannedStep, position: usize) {
        let Some(task) = planned.child_task() else {
            return;
        };
        if job.depth + 1 > MAX_DEPTH {
            let error = format!("nesting depth exceeds the limit of {MAX_DEPTH}");
            self.fail(job, position, error);
            return;
        }
        let mut state = job.steps[position].clone();
        state.attempt += 1;
        let input = match render_step_input(job, self.plan, &state, self.ctx) {
            Ok(input) => input,
            Err(error) => {
                self.fail(job, position, error);
                return;
            }
        };
        state.status = StepStatus::Running;
        state.input = Some(self.ctx.mask.mask_value(&input));
        state.retry_at = None;
        state.started_at = Some(self.now);
        state.child_job_id = None;
        self.effects.push(Effect::StartChildJob {
            step: state.step_name.clone(),
            task: task.to_owned(),
            input,
            depth: job.depth + 1,
        });
        job.steps[position] = state;
        mark_running(job, self.now);
    }

    /// WF §10.3 expansion of a loop step that may proceed.
    fn expand(&mut self, job: &mut JobState, planned: &PlannedStep, position: usize) {
        let items = match &planned.step.for_each {
            Some(ForEach::Items(items)) => items.clone(),
            Some(ForEach::Template(template)) => {
                let input = job_input(job, self.plan);
                let scope = context_for(job, self.ctx, &input, None, [template.as_str()]);
                match self.ctx.templates.render(template, &scope) {
                    Ok(value) => match as_array(value) {
                        Ok(items) => items,
                        Err(error) => return self.fail(job, position, error),
                    },
                    Err(error) => {
                        return self.fail(job, position, format!("for_each: {error}"));
                    }
                }
            }
            None => Vec::new(),
        };
        if items.len() > MAX_LOOP_ITEMS {
            let error = format!(
                "for_each: {} items exceed the limit of {MAX_LOOP_ITEMS}",
                items.len()
            );
            return self.fail(job, position, error);
        }
        if items.is_empty() {
            return self.skip(job, position, None);
        }
        let total = u32::try_from(items.len()).expect("at most MAX_LOOP_ITEMS items");
        let loop_state = &mut job.steps[position];
        loop_state.status = StepStatus::Running;
        loop_state.started_at = Some(self.now);
        loop_state.loop_total = Some(total);
        loop_state.for_each = Some(Value::Array(items));
        let instances: Vec<StepState> = (0..total)
            .map(|index| {
                let mut instance = loop_state.clone();
                instance.step_name = format!("{}[{index}]", planned.name);
                instance.status = StepStatus::Pending;
                instance.started_at = None;
                instance.for_each = None;
                instance.depends_on = Vec::new();
                instance.loop_source = Some(planned.name.clone());
                instance.loop_index = Some(index);
                instance
            })
            .collect();
        job.steps.insert_all(position + 1, instances);
        mark_running(job, self.now);
    }

    /// Dispatch of a pending loop instance: all at once, or one at a time when `sequential`.
    fn promote_instance(&mut self, job: &mut JobState, index: &Index, position: usize) -> bool {
        let flow_name = job.steps[position].flow_name();
        let Some(planned) = self.plan.step(flow_name) else {
            return false;
        };
        let loop_running = index
            .get(self.plan, flow_name)
            .is_some_and(|at| job.steps[at].status == StepStatus::Running);
        if !loop_running {
            return false;
        }
        let first = job.steps[position].loop_index == Some(0);
        if planned.step.sequential && !first {
            // Instances are contiguous, so the previous state is the previous instance. In a
            // sequential loop an instance is only ever skipped because an earlier one failed
            // untolerated, so a skip passes straight on down the line.
            let previous = &job.steps[position - 1];
            let reason = match previous.status {
                status if !status.is_terminal() => return false,
                StepStatus::Skipped => Some(previous.error_message.clone()),
                status if is_failure(status) && !planned.step.continue_on_failure => {
                    Some(Some(format!("instance '{}' failed", previous.step_name)))
                }
                _ => None,
            };
            if let Some(reason) = reason {
                self.skip(job, position, reason);
                return true;
            }
        }
        self.dispatch(job, planned, position);
        true
    }

    /// A running loop step ends when all its instances are terminal (WF §10.3).
    fn settle_loop(&mut self, job: &mut JobState, planned: &PlannedStep, position: usize) -> bool {
        let instances: Vec<&StepState> = job
            .steps
            .iter()
            .skip(position + 1)
            .take_while(|state| state.loop_source.as_deref() == Some(planned.name.as_str()))
            .collect();
        if instances.iter().any(|state| !state.status.is_terminal()) {
            return false;
        }
        let failed: Vec<String> = instances
            .iter()
            .filter(|state| is_failure(state.status))
            .filter_map(|state| state.loop_index.map(|index| index.to_string()))
            .collect();
        if !failed.is_empty() && !planned.step.continue_on_failure {
            let error = format!("for_each: instances [{}] failed", failed.join(", "));
            self.fail(job, position, error);
            return true;
        }
        let outputs = instances
            .iter()
            .map(|state| match state.status {
                StepStatus::Completed => state.output.clone(),
                _ => Value::Null,
            })
            .collect();
        let state = &mut job.steps[position];
        state.status = StepStatus::Completed;
        state.output = Value::Array(outputs);
        state.completed_at = Some(self.now);
        true
    }

    fn skip(&mut self, job: &mut JobState, position: usize, reason: Option<String>) {
        let state = &mut job.steps[position];
        state.status = StepStatus::Skipped;
        state.error_message = reason;
        state.completed_at = Some(self.now);
    }

    /// An orchestration failure: never retried, and logged on `_server`.
    fn fail(&mut self, job: &mut JobState, position: usize, error: String) {
        let state = &mut job.steps[position];
        self.effects.push(Effect::Log {
            line: format!("step '{}' failed: {error}", state.step_name),
        });
        state.status = StepStatus::Failed;
        state.error_message = Some(error);
        state.completed_at = Some(self.now);
    }

    /// WF §10.4: once every step is terminal the job gets its final status, output and error.
    fn finish_if_done(&mut self, job: &mut JobState) {
        if job.steps.iter().any(|state| !state.status.is_terminal()) {
            return;
        }
        if !job.is_halted() {
            match first_untolerated_failure(job, self.plan) {
                Some(state) => {
                    let reason = state
                        .error_message
                        .as_deref()
                        .and_then(|message| message.lines().next())
                        .unwrap_or(state.status.as_str());
                    job.error = Some(format!("step '{}' failed: {reason}", state.step_name));
                    job.status = JobStatus::Failed;
                }
                None => {
                    job.error = None;
                    job.status = JobStatus::Completed;
                }
            }
        }
        job.output = sink_output(job, self.plan);
        job.completed_at = Some(self.now);
        self.effects
            .push(Effect::JobFinished { status: job.status });
    }
}

/// The job becomes `running` when its first step starts or is dispatched (WF §10.4).
pub(crate) fn mark_running(job: &mut JobState, now: DateTime<Utc>) {
    if job.status == JobStatus::Pending {
        job.status = JobStatus::Running;
        job.started_at = Some(now);
    }
}

/// Failed or cancelled: both stop dependants (R2) and count against the job.
fn is_failure(status: StepStatus) -> bool {
    matches!(status, StepStatus::Failed | StepStatus::Cancelled)
}

/// The step that decides a failed job's error: the first untolerated failure in step order,
/// preferring a loop's failed instance over the loop step's own summary.
fn first_untolerated_failure<'j>(job: &'j JobState, plan: &JobPlan) -> Option<&'j StepState> {
    job.steps.iter().find(|state| {
        let tolerated = plan
            .step(state.flow_name())
            .is_some_and(|planned| planned.step.continue_on_failure);
        let summarised_by_instances = !state.is_instance()
            && job.steps.iter().any(|other| {
                other.loop_source.as_deref() == Some(state.step_name.as_str())
                    && is_failure(other.status)
            });
        is_failure(state.status) && !tolerated && !summarised_by_instances
    })
}

/// Outputs of sink steps that have one, keyed by step name; null when there is none.
fn sink_output(job: &JobState, plan: &JobPlan) -> Value {
    let mut output = JsonMap::new();
    for planned in plan.steps.iter().filter(|planned| planned.is_sink) {
        if let Some(state) = job.step(&planned.name)
            && !state.output.is_null()
        {
            output.insert(planned.name.clone(), state.output.clone());
        }
    }
    if output.is_empty() {
        Value::Null
    } else {
        Value::Object(output)
    }
}

/// A `for_each` template's value: an array, or text that parses as a JSON array.
fn as_array(value: Value) -> Result<Vec<Value>, String> {
    match value {
        Value::Array(items) => Ok(items),
        Value::String(text) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Array(items)) => Ok(items),
            _ => Err("for_each: expected an array, got a string".to_owned()),
        },
        other => Err(format!(
            "for_each: expected an array, got {}",
            json_type(&other)
        )),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
