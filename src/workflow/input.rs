//! Input and output schema enforcement (WF §3.2, §4): one procedure every entry point calls
//! before a job or attempt is created.
//!
//! Fields are checked one by one in schema order and every problem is collected, so a caller
//! can show the whole list at once. Coercion rules live in [`coerce`].
//!
//! CONTRACT (signatures other modules build on).

mod coerce;

use serde::Serialize;
use serde_json::Value;

use super::diagnostic::suggest;
use super::model::{InputField, InputSchema, Map, OutputSchema};

/// Keys a webhook job always accepts, whatever the task's schema (WF §3.2 step 1).
const WEBHOOK_KEYS: [&str; 4] = ["body", "headers", "method", "query"];

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
    let empty = serde_json::Map::new();
    let given = match raw {
        Value::Null => &empty,
        Value::Object(map) => map,
        other => {
            return Err(vec![FieldError {
                field: "input".to_owned(),
                message: format!("expected an object, got {}", coerce::json_type(other)),
            }]);
        }
    };
    let Some(schema) = schema else {
        return Ok(given.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
    };

    let mut errors = Vec::new();
    let mut validated = Map::new();
    for (name, field) in schema {
        match check_field(field, given.get(name), Some(render_default)) {
            Ok(Some(value)) => {
                validated.insert(name.clone(), value);
            }
            Ok(None) => {}
            Err(message) => errors.push(FieldError {
                field: format!("input.{name}"),
                message,
            }),
        }
    }
    for (key, value) in given {
        if schema.contains_key(key) {
            continue;
        }
        if options.webhook && WEBHOOK_KEYS.contains(&key.as_str()) {
            validated.insert(key.clone(), value.clone());
            continue;
        }
        let message = match suggest(key, schema.keys().map(String::as_str)) {
            Some(near) => format!("unknown field, did you mean '{near}'?"),
            None => "unknown field: the input schema does not declare it".to_owned(),
        };
        errors.push(FieldError {
            field: format!("input.{key}"),
            message,
        });
    }
    if errors.is_empty() {
        Ok(validated)
    } else {
        Err(errors)
    }
}

/// Checks a successful attempt's output against a declared output schema (WF §4), applying
/// coercion and defaults. Errors are prefixed `output.`.
pub fn check_output(schema: &OutputSchema, output: &Value) -> Result<Value, Vec<FieldError>> {
    let Value::Object(given) = output else {
        return Err(vec![FieldError {
            field: "output".to_owned(),
            message: format!("expected object, got {}", coerce::json_type(output)),
        }]);
    };
    let mut checked = given.clone();
    let mut errors = Vec::new();
    for (name, field) in schema {
        // Output defaults are literal values: there is no context to render them in.
        match check_field(field, given.get(name), None) {
            Ok(Some(value)) => {
                checked.insert(name.clone(), value);
            }
            Ok(None) => {}
            Err(message) => errors.push(FieldError {
                field: format!("output.{name}"),
                message,
            }),
        }
    }
    if errors.is_empty() {
        Ok(Value::Object(checked))
    } else {
        Err(errors)
    }
}

/// The caller's renderer of templated string defaults.
type RenderDefault<'a> = dyn Fn(&str) -> Result<Value, String> + 'a;

/// One declared field: default, coercion, `required`, `options`. `None` means the field stays
/// absent.
fn check_field(
    field: &InputField,
    given: Option<&Value>,
    render_default: Option<&RenderDefault<'_>>,
) -> Result<Option<Value>, String> {
    let value = match given.filter(|value| !value.is_null()) {
        Some(value) => value.clone(),
        None => match (&field.default, render_default) {
            (Some(Value::String(template)), Some(render)) if template.contains("{{") => {
                render(template).map_err(|e| format!("cannot render the default: {e}"))?
            }
            (Some(default), _) => default.clone(),
            (None, _) => Value::Null,
        },
    };
    if value.is_null() {
        return if field.required {
            Err("required field is missing".to_owned())
        } else {
            Ok(None)
        };
    }
    let value = coerce::coerce(field, value)?;
    coerce::check_required(field, &value)?;
    coerce::check_options(field, &value)?;
    Ok(Some(value))
}

/// The `input` variable of a template context (WF §12.1): the validated input plus `null` for
/// every field `schema` declares that the input leaves absent, so `{{ input.optional }}` reads
/// as null instead of failing as undefined.
pub fn template_input(schema: Option<&InputSchema>, input: &Map<Value>) -> Value {
    let mut object: serde_json::Map<String, Value> =
        input.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for name in schema.into_iter().flat_map(|schema| schema.keys()) {
        object.entry(name.clone()).or_insert(Value::Null);
    }
    Value::Object(object)
}

/// The environment variable that carries input `field` to a step (WF §11.1): upper-cased, every
/// character outside `[A-Z0-9]` replaced by `_`, prefixed `INPUT_` (`release-tag` →
/// `INPUT_RELEASE_TAG`).
pub fn env_name(field: &str) -> String {
    let name: String = field
        .chars()
        .map(|c| {
            let upper = c.to_ascii_uppercase();
            if upper.is_ascii_uppercase() || upper.is_ascii_digit() {
                upper
            } else {
                '_'
            }
        })
        .collect();
    format!("INPUT_{name}")
}

#[cfg(test)]
mod tests;
