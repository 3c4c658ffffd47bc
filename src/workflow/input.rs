//! Input and output schema enforcement (WF §3.2, §4): one procedure every entry point calls
//! before a job or attempt is created.
//!
//! CONTRACT (signatures other modules build on).

use serde::Serialize;
use serde_json::Value;

use super::model::{InputSchema, Map, OutputSchema};

/// One problem with one field: `input.version: required field is missing`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Field path with its prefix: `input.version`, `output.services`.
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// How a caller runs the procedure.
#[derive(Debug, Clone, Copy, Default)]
pub struct EnforceOptions {
    /// Webhook jobs always accept the keys `body`, `headers`, `method`, `query`.
    pub webhook: bool,
}

/// Runs WF §3.2 steps 1–4 on `raw` (must be a JSON object or null) against `schema`.
/// `render_default` renders a string default containing `{{` (the caller supplies the context).
/// Returns the validated input (declared fields that stay absent are omitted) or every problem.
pub fn enforce(
    schema: Option<&InputSchema>,
    raw: &Value,
    options: EnforceOptions,
    render_default: &dyn Fn(&str) -> Result<Value, String>,
) -> Result<Map<Value>, Vec<FieldError>> {
    let _ = (schema, raw, options, render_default);
    Err(vec![FieldError {
        field: "input".to_owned(),
        message: "input enforcement is not built yet".to_owned(),
    }])
}

/// Checks a successful attempt's output against a declared output schema (WF §4), applying
/// coercion and defaults. Errors are prefixed `output.`.
pub fn check_output(schema: &OutputSchema, output: &Value) -> Result<Value, Vec<FieldError>> {
    let _ = (schema, output);
    Ok(Value::Null)
}
