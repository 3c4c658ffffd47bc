//! Static checks of literal input values against a field definition (WF §3.1, §3.2 step 4):
//! what validation can know before anything is rendered, checked by the very procedure job
//! creation runs ([`enforce`]). Values that contain a template are left to run time.

use serde_json::Value;

use crate::workflow::input::{EnforceOptions, enforce};
use crate::workflow::model::{InputField, InputSchema};
use crate::workflow::template::is_template;

/// Whether any string leaf of `value` is a template.
pub(crate) fn contains_template(value: &Value) -> bool {
    match value {
        Value::String(text) => is_template(text),
        Value::Array(items) => items.iter().any(contains_template),
        Value::Object(map) => map.values().any(contains_template),
        _ => false,
    }
}

/// Checks a literal, non-null value of the input key `name` against `field` with the same
/// procedure job creation runs (WF §3.2 steps 3–4); returns the problem, or `None` when the
/// value would be accepted.
pub(crate) fn check(name: &str, field: &InputField, value: &Value) -> Option<String> {
    let schema: InputSchema = [(name.to_owned(), field.clone())].into_iter().collect();
    let raw = Value::Object([(name.to_owned(), value.clone())].into_iter().collect());
    // The value is present, so no default is rendered.
    let no_defaults = |_: &str| Ok(Value::Null);
    let errors = enforce(Some(&schema), &raw, EnforceOptions::default(), &no_defaults).err()?;
    let messages: Vec<String> = errors.into_iter().map(|e| e.message).collect();
    Some(messages.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::model::FieldType;
    use serde_json::json;

    fn field(field_type: FieldType) -> InputField {
        InputField::of_type(field_type)
    }

    #[test]
    fn coerces_like_job_creation() {
        assert_eq!(check("f", &field(FieldType::Integer), &json!("42")), None);
        assert_eq!(check("f", &field(FieldType::Integer), &json!(2.0)), None);
        assert_eq!(
            check("f", &field(FieldType::Integer), &json!("4x")).as_deref(),
            Some("expected integer, got string")
        );
        assert_eq!(check("f", &field(FieldType::Boolean), &json!("TRUE")), None);
        assert_eq!(check("f", &field(FieldType::String), &json!(3)), None);
        assert_eq!(
            check("f", &field(FieldType::String), &json!([1])).as_deref(),
            Some("expected string, got array")
        );
        assert_eq!(
            check("f", &field(FieldType::Date), &json!("2026-02-30")).as_deref(),
            Some("expected a valid date written YYYY-MM-DD")
        );
    }

    #[test]
    fn checks_options_unless_custom_values_are_allowed() {
        let mut env = field(FieldType::String);
        env.options = Some(vec![json!("staging"), json!("production")]);
        assert_eq!(check("f", &env, &json!("staging")), None);
        assert_eq!(
            check("f", &env, &json!("prod")).as_deref(),
            Some("value 'prod' is not one of the options: staging, production")
        );
        env.allow_custom = true;
        assert_eq!(check("f", &env, &json!("prod")), None);
        env.allow_custom = false;
        env.multiple = true;
        assert_eq!(check("f", &env, &json!(["staging", "production"])), None);
        assert!(check("f", &env, &json!(["staging", "qa"])).is_some());
    }

    #[test]
    fn finds_templates_at_any_depth() {
        assert!(contains_template(&json!({"a": ["x", "{{ input.y }}"]})));
        assert!(!contains_template(&json!({"a": ["x", 1]})));
    }
}
