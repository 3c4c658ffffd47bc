//! Engine tests in the meilisearch style: build a small workspace from model values, step a job
//! through events at fixed times with fixed jitter, and snapshot a text transcript holding the
//! whole job state after every transition.

mod approval;
mod cancel;
mod fixtures;
mod flow;
mod hooks;
mod loops;
mod render;
mod retry;
mod tasks;

use std::fmt::Write as _;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    Effect, EvalContext, Event, JobMeta, JobPlan, JobState, apply, create, job_masker, mask_record,
};
use crate::mask::Masker;
use crate::runner::spec::{AttemptResult, Outcome};
use crate::workflow::model::WorkspaceDef;
use crate::workflow::template::Templates;

/// Every test's clock starts here; the transcript shows times relative to it.
pub(super) fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
        .expect("fixed timestamp parses")
        .with_timezone(&Utc)
}

fn at(secs: f64) -> DateTime<Utc> {
    #[allow(clippy::cast_possible_truncation)]
    let millis = (secs * 1_000.0) as i64;
    t0() + TimeDelta::milliseconds(millis)
}

/// `+5s`, `+37.5s`, or `-` for no time.
fn rel(time: Option<DateTime<Utc>>) -> String {
    match time {
        None => "-".to_owned(),
        Some(time) => {
            let millis = (time - t0()).num_milliseconds();
            if millis % 1_000 == 0 {
                format!("+{}s", millis / 1_000)
            } else {
                format!("+{}s", millis as f64 / 1_000.0)
            }
        }
    }
}

pub(super) fn job_id() -> Uuid {
    Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef)
}

pub(super) fn child_id(n: u128) -> Uuid {
    Uuid::from_u128(0xc000 + n)
}

/// One job under test and the transcript of everything that happened to it.
pub(super) struct Harness {
    pub plan: JobPlan,
    pub job: JobState,
    pub templates: Templates,
    pub secrets: Value,
    /// The job's full mask set.
    pub mask: Masker,
    /// What the jitter source returns on every call.
    pub jitter: f64,
    transcript: String,
}

impl Harness {
    pub fn new(def: &WorkspaceDef, task: &str, input: Value) -> Self {
        Self::with_depth(def, task, input, 0)
    }

    pub fn with_depth(def: &WorkspaceDef, task: &str, input: Value, depth: u32) -> Self {
        let plan = JobPlan::new(def, task).expect("test workspace plans");
        let templates = Templates::new();
        let secrets = json!({"TOKEN": "s3cr3t-token"});
        let meta = JobMeta {
            source_job_id: None,
            id: job_id(),
            workspace: "default".to_owned(),
            revision: "3f2a9c".to_owned(),
            source_type: "user".to_owned(),
            source_id: Some("alice@example.com".to_owned()),
            parent_job_id: None,
            parent_step_name: None,
            depth,
            raw_input: input.clone(),
            inherited_mask: Vec::new(),
        };
        let mask = job_masker(
            &Masker::of_leaves(&secrets),
            &mask_record(&plan, &input, &[]),
        );
        let ctx = EvalContext {
            templates: &templates,
            secrets: &secrets,
            mask: &mask,
        };
        let (job, effects) = create(&plan, meta, input, t0(), &ctx);
        let mut harness = Harness {
            plan,
            job,
            templates,
            secrets,
            mask,
            jitter: 0.5,
            transcript: String::new(),
        };
        harness.record("+0s create", &effects);
        harness
    }

    /// Applies an event at `secs` after t0 and records it; a rejected event is recorded too.
    pub fn event(&mut self, secs: f64, event: Event) -> &mut Self {
        let label = format!("{} {}", rel(Some(at(secs))), describe(&event)).replace('\n', "\\n");
        let ctx = EvalContext {
            templates: &self.templates,
            secrets: &self.secrets,
            mask: &self.mask,
        };
        let jitter = self.jitter;
        let mut source = move || jitter;
        match apply(
            &mut self.job,
            &self.plan,
            event,
            at(secs),
            &ctx,
            &mut source,
        ) {
            Ok(effects) => self.record(&label, &effects),
            Err(error) => {
                let _ = writeln!(self.transcript, "## {label}\nrejected: {error}\n");
            }
        }
        self
    }

    /// Claim and start in one go, as an idle local worker does.
    pub fn run(&mut self, secs: f64, step: &str) -> &mut Self {
        let ctx = EvalContext {
            templates: &self.templates,
            secrets: &self.secrets,
            mask: &self.mask,
        };
        let jitter = self.jitter;
        let mut source = move || jitter;
        let claimed = Event::StepClaimed {
            step: step.to_owned(),
        };
        let result = apply(
            &mut self.job,
            &self.plan,
            claimed,
            at(secs),
            &ctx,
            &mut source,
        );
        if let Err(error) = result {
            let label = format!("{} claim {step}", rel(Some(at(secs))));
            let _ = writeln!(self.transcript, "## {label}\nrejected: {error}\n");
            return self;
        }
        self.event(
            secs,
            Event::StepStarted {
                step: step.to_owned(),
            },
        )
    }

    pub fn succeed(&mut self, secs: f64, step: &str, output: Value) -> &mut Self {
        self.finish(secs, step, Outcome::Succeeded, output, None)
    }

    pub fn fail(&mut self, secs: f64, step: &str, error: &str) -> &mut Self {
        self.finish(secs, step, Outcome::Failed, Value::Null, Some(error))
    }

    pub fn finish(
        &mut self,
        secs: f64,
        step: &str,
        outcome: Outcome,
        output: Value,
        error: Option<&str>,
    ) -> &mut Self {
        let started_at = self
            .job
            .step(step)
            .and_then(|state| state.started_at)
            .unwrap_or_else(t0);
        let result = AttemptResult {
            outcome,
            output,
            error_message: error.map(str::to_owned),
            started_at,
            finished_at: at(secs),
        };
        self.event(
            secs,
            Event::StepFinished {
                step: step.to_owned(),
                result,
            },
        )
    }

    pub fn transcript(&self) -> &str {
        &self.transcript
    }

    fn record(&mut self, label: &str, effects: &[Effect]) {
        let _ = writeln!(self.transcript, "## {label}");
        if !effects.is_empty() {
            let listed: Vec<String> = effects.iter().map(effect_text).collect();
            let _ = writeln!(self.transcript, "effects: {}", listed.join(" | "));
        }
        self.transcript.push_str(&render_state(&self.job));
        self.transcript.push('\n');
    }
}

fn describe(event: &Event) -> String {
    match event {
        Event::StepClaimed { step } => format!("claim {step}"),
        Event::StepStarted { step } => format!("start {step}"),
        Event::StepFinished { step, result } => {
            let outcome = serde_json::to_value(result.outcome).unwrap_or_default();
            let outcome = outcome.as_str().unwrap_or_default();
            match &result.error_message {
                Some(error) => format!("finish {step} {outcome}: {error}"),
                None => format!("finish {step} {outcome}"),
            }
        }
        Event::StepRejected { step, error } => format!("reject {step}: {error}"),
        Event::StepTimedOut { step } => format!("timeout {step}"),
        Event::ChildJobCreated { step, child_job_id } => {
            format!("child created {step} {}", short(child_job_id))
        }
        Event::ChildJobRejected { step, error } => format!("child rejected {step}: {error}"),
        Event::ChildJobFinished {
            step,
            child_job_id,
            status,
            ..
        } => format!(
            "child finished {step} {} {}",
            short(child_job_id),
            status.as_str()
        ),
        Event::StepApproved { step, by, input } => format!("approve {step} by {by} input={input}"),
        Event::StepDeclined { step, by, reason } => {
            format!(
                "decline {step} by {by}: {}",
                reason.as_deref().unwrap_or("-")
            )
        }
        Event::Tick => "tick".to_owned(),
        Event::CancelRequested { by } => format!("cancel by {}", by.as_deref().unwrap_or("-")),
        Event::JobTimedOut => "job timeout".to_owned(),
        Event::PinnedWorkerLost => "pinned worker lost".to_owned(),
    }
}

fn short(id: &Uuid) -> String {
    format!("child-{:x}", id.as_u128() & 0xfff)
}

fn effect_text(effect: &Effect) -> String {
    match effect {
        Effect::StepReady { step, not_before } => match not_before {
            Some(at) => format!("ready {step} after {}", rel(Some(*at))),
            None => format!("ready {step}"),
        },
        Effect::StartChildJob {
            step,
            task,
            input,
            depth,
        } => format!("start child {step} task={task} depth={depth} input={input}"),
        Effect::CancelChildJob { step, child_job_id } => {
            format!("cancel child {step} {}", short(child_job_id))
        }
        Effect::StopStep { step } => format!("stop {step}"),
        Effect::Log { line } => format!("log \"{line}\""),
        Effect::StepSuspended { step, message } => format!("suspended {step} \"{message}\""),
        Effect::JobFinished { status } => format!("job finished {}", status.as_str()),
    }
}

/// The whole job as a compact table: a job line, then one line per step.
pub(super) fn render_state(job: &JobState) -> String {
    let mut out = format!(
        "job {} started={} completed={}",
        job.status.as_str(),
        rel(job.started_at),
        rel(job.completed_at)
    );
    if let Some(error) = &job.error {
        let _ = write!(out, " error=\"{error}\"");
    }
    if !job.output.is_null() {
        let _ = write!(out, " output={}", job.output);
    }
    out.push('\n');
    for step in &job.steps {
        let _ = write!(
            out,
            "  {:<12} {:<9} {}/{}",
            step.step_name,
            step.status.as_str(),
            step.attempt,
            step.max_attempts
        );
        if let Some(retry_at) = step.retry_at {
            let _ = write!(out, " retry_at={}", rel(Some(retry_at)));
        }
        if let Some(input) = &step.input {
            let _ = write!(out, " in={input}");
        }
        if !step.output.is_null() {
            let _ = write!(out, " out={}", step.output);
        }
        if let Some(error) = &step.error_message {
            let _ = write!(out, " err=\"{}\"", error.replace('\n', "\\n"));
        }
        if let Some(at) = step.suspended_at {
            let _ = write!(out, " suspended_at={}", rel(Some(at)));
        }
        if let Some(message) = &step.approval_message {
            let _ = write!(out, " msg=\"{message}\"");
        }
        if let Some(child) = &step.child_job_id {
            let _ = write!(out, " child={}", short(child));
        }
        for record in &step.retry_history {
            let _ = write!(
                out,
                " [#{} {}..{} {}]",
                record.attempt,
                rel(record.started_at),
                rel(Some(record.completed_at)),
                record
                    .error_message
                    .as_deref()
                    .unwrap_or("-")
                    .replace('\n', "\\n")
            );
        }
        out.push('\n');
    }
    out
}
