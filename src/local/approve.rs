//! Approval steps in `stroem run` (WF §6.8, API §9.2): a suspended step is decided by whoever
//! runs the command, through the [`Approver`] the caller hands in (the CLI's terminal prompt).
//! Without one — stdin is no terminal — the step fails at once with an error that says how to
//! run the task instead.

use std::sync::Arc;

use serde_json::Value;
use uuid::Uuid;

use super::executor::Executor;
use crate::engine::{self, Event};
use crate::workflow::model::InputSchema;

/// How many times the approver is asked again after a form the schema refuses.
const MAX_TRIES: usize = 3;

/// What the approver is asked: the rendered message, the form and its pre-filled values, and
/// the problems of the previous answer, if it was refused.
#[derive(Debug, Clone)]
pub struct ApprovalRequest {
    pub step: String,
    pub message: String,
    pub fields: Option<InputSchema>,
    /// The step's rendered input (masked), which pre-fills the form.
    pub prefill: Value,
    pub problems: Vec<String>,
}

/// The approver's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum ApprovalAnswer {
    /// The form values (merged over the pre-filled ones and validated by the engine).
    Approve(Value),
    Reject(Option<String>),
}

/// Who decides approval steps of a local run, and how they are asked.
#[derive(Clone)]
pub struct Approver {
    /// Recorded as `approved_by` / `rejected by`.
    pub name: String,
    pub ask: Arc<dyn Fn(&ApprovalRequest) -> ApprovalAnswer + Send + Sync>,
}

impl std::fmt::Debug for Approver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Approver")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The error of an approval step in a run without a terminal.
pub const NO_TERMINAL: &str = "approval steps need a terminal to ask on (stdin is not a \
     terminal); run the task on a terminal, or on a server and decide with `stroem approve`";

impl Executor {
    /// Decides a step that became `suspended`.
    pub(super) fn decide(&mut self, job_id: Uuid, step: String, message: String) {
        let Some(approver) = self.approver() else {
            let error = NO_TERMINAL.to_owned();
            return self.apply(job_id, Event::StepRejected { step, error });
        };
        let Some(job) = self.jobs.get(&job_id) else {
            return;
        };
        let fields = job
            .state
            .step(&step)
            .and_then(|state| job.plan.step(state.flow_name()))
            .and_then(|planned| planned.action.input.clone());
        let prefill = job
            .state
            .step(&step)
            .and_then(|state| state.input.clone())
            .unwrap_or(Value::Null);
        let mut request = ApprovalRequest {
            step: step.clone(),
            message,
            fields,
            prefill,
            problems: Vec::new(),
        };
        let by = approver.name.clone();
        for _ in 0..MAX_TRIES {
            match (approver.ask)(&request) {
                ApprovalAnswer::Reject(reason) => {
                    return self.apply(job_id, Event::StepDeclined { step, by, reason });
                }
                ApprovalAnswer::Approve(values) => {
                    let job = &self.jobs[&job_id];
                    let checked = engine::approval_input(
                        &job.state,
                        &job.plan,
                        &step,
                        &values,
                        &self.eval(&job.mask),
                    );
                    match checked {
                        Ok(input) => {
                            return self.apply(job_id, Event::StepApproved { step, by, input });
                        }
                        Err(errors) => {
                            request.problems = errors.iter().map(ToString::to_string).collect();
                        }
                    }
                }
            }
        }
        let reason = Some(format!(
            "the form was refused {MAX_TRIES} times: {}",
            request.problems.join("; ")
        ));
        self.apply(job_id, Event::StepDeclined { step, by, reason });
    }
}
