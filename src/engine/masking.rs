//! What the engine masks (WF §16.2, §16.3), with the one [`Masker`] of `crate::mask`.
//!
//! A job's *full* mask set is its revision's (resolved workspace secrets and the literal values
//! of `secret: true` fields, `Revision::mask`) plus the values of its [`MaskRecord`]: its own
//! secret input values and those handed on by its parent or hooked job. Callers build it with
//! [`job_masker`] and pass it in [`EvalContext::mask`](super::EvalContext).
//!
//! The engine keeps what it stores masked where nothing needs the clear text: recorded step
//! inputs, and every error message (a step's, its retries', the job's), after each change
//! ([`protect`]), so lists that show errors need no mask set at all. Step and job outputs and the
//! job input stay as they are, since later steps, parents and hooks render with them; when the
//! job finishes, [`protect`] *seals* its record with every mask value its data contains, so its
//! views never need the revision again.

use std::collections::BTreeSet;

use serde_json::Value;

use super::plan::JobPlan;
use super::state::{JobState, MaskRecord, StepState};
use crate::mask::{MASK, Masker};
use crate::workflow::model::InputSchema;

/// The record a new job starts with: its secret input fields, their values, and the values
/// `inherited` from the job that led to it.
pub fn mask_record(plan: &JobPlan, input: &Value, inherited: &[String]) -> MaskRecord {
    let fields = secret_field_names(plan.task_input.as_ref());
    let mut values = secret_field_values(plan.task_input.as_ref(), input);
    values.extend(inherited.iter().cloned());
    let values: BTreeSet<String> = Masker::new(&values).pieces().iter().cloned().collect();
    MaskRecord {
        fields,
        values: values.into_iter().collect(),
        sealed: false,
    }
}

/// The record of a job stored before records were kept: rebuilt from its plan and input.
pub fn record_of(job: &JobState, plan: &JobPlan) -> MaskRecord {
    job.mask
        .clone()
        .unwrap_or_else(|| mask_record(plan, &job.input, &[]))
}

/// A job's full mask set: its revision's and its record's.
pub fn job_masker(revision: &Masker, record: &MaskRecord) -> Masker {
    if record.values.is_empty() {
        return revision.clone();
    }
    revision.union(&Masker::new(&record.values))
}

/// Names of the fields of `schema` marked `secret: true`.
pub fn secret_field_names(schema: Option<&InputSchema>) -> Vec<String> {
    schema
        .into_iter()
        .flatten()
        .filter(|(_, field)| field.secret)
        .map(|(name, _)| name.clone())
        .collect()
}

/// Values of `secret: true` fields of `input` under `schema`, as text.
pub fn secret_field_values(schema: Option<&InputSchema>, input: &Value) -> Vec<String> {
    secret_field_names(schema)
        .iter()
        .filter_map(|name| match input.get(name) {
            Some(Value::Null) | None => None,
            Some(Value::String(text)) => Some(text.clone()),
            Some(other) => Some(other.to_string()),
        })
        .collect()
}

/// `input` with `fields` shown as [`MASK`] whatever their value, and everything else masked
/// with `mask`: how inputs are shown (WF §16.3).
pub fn show_input(input: &Value, fields: &[String], mask: &Masker) -> Value {
    let mut shown = input.clone();
    if let Value::Object(map) = &mut shown {
        for field in fields {
            if let Some(value) = map.get_mut(field)
                && !value.is_null()
            {
                *value = Value::String(MASK.to_owned());
            }
        }
    }
    mask.mask_value_in_place(&mut shown);
    shown
}

/// After each change: masks every error message of the job with its full mask set, and seals
/// the job's record once it has finished. Steps whose errors are clean are left shared.
pub fn protect(job: &mut JobState, plan: &JobPlan, mask: &Masker) {
    if !mask.is_empty() {
        if let Some(error) = &job.error
            && mask.matches(error)
        {
            job.error = mask.mask_opt(Some(error));
        }
        for position in 0..job.steps.len() {
            if needs_masking(&job.steps[position], mask) {
                let state = &mut job.steps[position];
                state.error_message = mask.mask_opt(state.error_message.as_deref());
                for record in &mut state.retry_history {
                    record.error_message = mask.mask_opt(record.error_message.as_deref());
                }
            }
        }
    }
    if job.is_finished() && !job.mask.as_ref().is_some_and(|record| record.sealed) {
        seal(job, plan, mask);
    }
}

fn needs_masking(state: &StepState, mask: &Masker) -> bool {
    let mut errors = state
        .retry_history
        .iter()
        .filter_map(|record| record.error_message.as_deref())
        .chain(state.error_message.as_deref());
    errors.any(|error| mask.matches(error))
}

/// Keeps in the job's record every piece of `mask` its data contains.
fn seal(job: &mut JobState, plan: &JobPlan, mask: &Masker) {
    let mut record = record_of(job, plan);
    let mut found = BTreeSet::new();
    for value in [&job.input, &job.raw_input, &job.output] {
        mask.collect_found_in_value(value, &mut found);
    }
    if let Some(error) = &job.error {
        mask.collect_found(error, &mut found);
    }
    for state in &job.steps {
        mask.collect_found_in_value(&state.output, &mut found);
        for value in state.input.iter().chain(&state.for_each) {
            mask.collect_found_in_value(value, &mut found);
        }
        let errors = state
            .retry_history
            .iter()
            .filter_map(|record| record.error_message.as_deref())
            .chain(state.error_message.as_deref());
        for error in errors {
            mask.collect_found(error, &mut found);
        }
    }
    record.values = found.into_iter().collect();
    record.sealed = true;
    job.mask = Some(record);
}

/// How a job is shown (WF §16.3): masked with a set that is known to cover it, or — when that
/// cannot be known — with nothing of any value shown at all (fail closed).
#[derive(Debug, Clone)]
pub enum ViewMask {
    /// Mask with `mask`; the input `fields` read `••••••` whatever their value.
    Known {
        mask: std::sync::Arc<Masker>,
        fields: Vec<String>,
    },
    /// A job stored before masks were kept with jobs, whose revision is gone: every value and
    /// every message reads `••••••`.
    Unknown,
}

impl ViewMask {
    /// The view of a sealed job: its record is all it needs.
    pub fn sealed(record: &MaskRecord) -> ViewMask {
        ViewMask::Known {
            mask: std::sync::Arc::new(Masker::new(&record.values)),
            fields: record.fields.clone(),
        }
    }

    pub fn text(&self, text: Option<&str>) -> Option<String> {
        match self {
            ViewMask::Known { mask, .. } => mask.mask_opt(text),
            ViewMask::Unknown => crate::mask::redact_text(text),
        }
    }

    pub fn value(&self, value: &Value) -> Value {
        match self {
            ViewMask::Known { mask, .. } => mask.mask_value(value),
            ViewMask::Unknown => crate::mask::redact(value),
        }
    }

    /// A job input: [`ViewMask::value`], with the secret fields read `••••••`.
    pub fn input(&self, input: &Value) -> Value {
        match self {
            ViewMask::Known { mask, fields } => show_input(input, fields, mask),
            ViewMask::Unknown => crate::mask::redact(input),
        }
    }
}
