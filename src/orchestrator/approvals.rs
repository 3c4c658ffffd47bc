//! Deciding approval steps (WF §6.8, API §3.4): approve with the approver's form, or reject
//! with a reason. The decision is checked and recorded in one transaction on the locked job, so
//! of two concurrent decisions exactly one wins and the other finds the step no longer
//! `suspended`.

use chrono::Utc;
use serde_json::Value;
use uuid::Uuid;

use super::{Orchestrator, OrchestratorError, Result};
use crate::engine::{self, Event, JobState, StepStatus};
use crate::workflow::input::FieldError;

/// What the approver decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// The approver's form values, merged over the step's input and validated.
    Approve(Value),
    Reject(Option<String>),
}

impl Orchestrator {
    /// Decides the `suspended` approval step `step` of job `job_id` as `by` (an e-mail, or
    /// `anonymous`). Errors: `JobNotFound`, `UnknownStep`, `NotSuspended` (also for a step that
    /// is no approval), `InvalidInput` (approve only). A refused decision changes nothing.
    pub async fn decide_approval(
        &self,
        job_id: Uuid,
        step: &str,
        decision: Decision,
        by: &str,
    ) -> Result<JobState> {
        let context = self.context_by_id(job_id).await?;
        let templates = &self.inner.templates;
        let (effects, job) = self
            .inner
            .store
            .with_job(job_id, |job| {
                let Some(state) = job.step(step) else {
                    return Err(OrchestratorError::UnknownStep {
                        job: job_id,
                        step: step.to_owned(),
                    });
                };
                let approval = context
                    .plan
                    .step(state.flow_name())
                    .is_some_and(|planned| planned.approval().is_some());
                if state.status != StepStatus::Suspended || !approval || job.is_halted() {
                    return Err(OrchestratorError::NotSuspended {
                        step: step.to_owned(),
                        status: state.status.as_str(),
                    });
                }
                let ctx = context.eval(templates);
                let event = match decision {
                    Decision::Approve(values) => {
                        let input = engine::approval_input(job, &context.plan, step, &values, &ctx)
                            .map_err(|errors| {
                                OrchestratorError::InvalidInput(
                                    errors
                                        .into_iter()
                                        .map(|error| FieldError {
                                            message: ctx.mask.mask(&error.message).into_owned(),
                                            ..error
                                        })
                                        .collect(),
                                )
                            })?;
                        Event::StepApproved {
                            step: step.to_owned(),
                            by: by.to_owned(),
                            input,
                        }
                    }
                    Decision::Reject(reason) => Event::StepDeclined {
                        step: step.to_owned(),
                        by: by.to_owned(),
                        reason,
                    },
                };
                let mut jitter = || rand::random::<f64>();
                engine::apply(job, &context.plan, event, Utc::now(), &ctx, &mut jitter)
                    .map_err(OrchestratorError::from)
            })
            .await?;
        self.tick_when_a_task_retry_is_due(&job);
        self.carry_out(effects.into_iter().map(|effect| (job_id, effect)).collect())
            .await;
        Ok(job)
    }
}
