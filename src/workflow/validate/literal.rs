//! Static checks of literal input values against a field definition (WF §3.1, §3.2 step 4):
//! what validation can know before anything is rendered. Values that contain a template are
//! left to the run-time enforcement.

use serde_json::Value;

use crate::workflow::model::{FieldType, InputField};
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

/// Checks a literal, non-null value against `field`; returns the problem as a phrase
/// (`expected integer, got "abc"`), or `None` when the value would be accepted.
pub(crate) fn check(field: &InputField, value: &Value) -> Option<String> {
    if field.multiple {
        let items: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            Value::String(_) => vec![value],
            other => return Some(format!("expected a list of strings, got {}", show(other))),
        };
        return items.into_iter().find_map(|item| check_one(field, item));
    }
    check_one(field, value)
}

fn check_one(field: &InputField, value: &Value) -> Option<String> {
    let coerced = match coerce(&field.field_type, value) {
        Ok(coerced) => coerced,
        Err(expected) => return Some(format!("expected {expected}, got {}", show(value))),
    };
    let listed = |option: &Value| {
        coerce(&field.field_type, option).is_ok_and(|option| same(&option, &coerced))
    };
    match &field.options {
        Some(options) if !field.allow_custom && !options.iter().any(listed) => {
            let listed: Vec<String> = options.iter().map(show).collect();
            Some(format!(
                "{} is not one of {}",
                show(value),
                listed.join(", ")
            ))
        }
        _ => None,
    }
}

/// Applies the coercions of WF §3.1; `Err` carries the expected kind for the message.
fn coerce(field_type: &FieldType, value: &Value) -> Result<Value, &'static str> {
    match (field_type, value) {
        (FieldType::String | FieldType::Text, Value::String(_)) => Ok(value.clone()),
        (FieldType::String | FieldType::Text, Value::Number(_) | Value::Bool(_)) => {
            Ok(Value::String(value.to_string()))
        }
        (FieldType::String | FieldType::Text, _) => Err("a string"),
        (FieldType::Integer, Value::Number(n)) => match n.as_i64() {
            Some(i) => Ok(Value::from(i)),
            None => n
                .as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                .map(|f| Value::from(f as i64))
                .ok_or("an integer"),
        },
        (FieldType::Integer, Value::String(s)) => {
            s.parse::<i64>().map(Value::from).map_err(|_| "an integer")
        }
        (FieldType::Integer, _) => Err("an integer"),
        (FieldType::Number, Value::Number(_)) => Ok(value.clone()),
        (FieldType::Number, Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or("a number"),
        (FieldType::Number, _) => Err("a number"),
        (FieldType::Boolean, Value::Bool(_)) => Ok(value.clone()),
        (FieldType::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("true") => {
            Ok(Value::Bool(true))
        }
        (FieldType::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("false") => {
            Ok(Value::Bool(false))
        }
        (FieldType::Boolean, _) => Err("a boolean"),
        (FieldType::Date, Value::String(s))
            if chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() =>
        {
            Ok(value.clone())
        }
        (FieldType::Date, _) => Err("a date (YYYY-MM-DD)"),
        (FieldType::Datetime, Value::String(s))
            if chrono::DateTime::parse_from_rfc3339(s).is_ok() =>
        {
            Ok(value.clone())
        }
        (FieldType::Datetime, _) => Err("an RFC 3339 date-time with offset"),
        (FieldType::Array, Value::Array(_)) | (FieldType::Object, Value::Object(_)) => {
            Ok(value.clone())
        }
        (FieldType::Array, _) => Err("an array"),
        (FieldType::Object, _) => Err("an object"),
        // Connection-typed fields [P3] are rejected elsewhere; nothing to compare here.
        (FieldType::Connection(_), _) => Ok(value.clone()),
    }
}

/// Option membership compares coerced values; numbers compare by value (`1` = `1.0`).
fn same(option: &Value, value: &Value) -> bool {
    match (option, value) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => option == value,
    }
}

/// A value as it appears in a message: strings quoted, others as JSON.
pub(crate) fn show(value: &Value) -> String {
    match value {
        Value::String(s) => format!("'{s}'"),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "a map".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(field_type: FieldType) -> InputField {
        InputField {
            field_type,
            name: None,
            description: None,
            required: false,
            default: None,
            options: None,
            allow_custom: false,
            multiple: false,
            secret: false,
            order: None,
        }
    }

    #[test]
    fn coerces_like_job_creation() {
        assert_eq!(check(&field(FieldType::Integer), &json!("42")), None);
        assert_eq!(check(&field(FieldType::Integer), &json!(2.0)), None);
        assert_eq!(
            check(&field(FieldType::Integer), &json!("4x")).as_deref(),
            Some("expected an integer, got '4x'")
        );
        assert_eq!(check(&field(FieldType::Boolean), &json!("TRUE")), None);
        assert_eq!(check(&field(FieldType::String), &json!(3)), None);
        assert_eq!(
            check(&field(FieldType::String), &json!([1])).as_deref(),
            Some("expected a string, got a list")
        );
        assert_eq!(
            check(&field(FieldType::Date), &json!("2026-02-30")).as_deref(),
            Some("expected a date (YYYY-MM-DD), got '2026-02-30'")
        );
    }

    #[test]
    fn checks_options_unless_custom_values_are_allowed() {
        let mut env = field(FieldType::String);
        env.options = Some(vec![json!("staging"), json!("production")]);
        assert_eq!(check(&env, &json!("staging")), None);
        assert_eq!(
            check(&env, &json!("prod")).as_deref(),
            Some("'prod' is not one of 'staging', 'production'")
        );
        env.allow_custom = true;
        assert_eq!(check(&env, &json!("prod")), None);
        env.allow_custom = false;
        env.multiple = true;
        assert_eq!(check(&env, &json!(["staging", "production"])), None);
        assert!(check(&env, &json!(["staging", "qa"])).is_some());
    }

    #[test]
    fn finds_templates_at_any_depth() {
        assert!(contains_template(&json!({"a": ["x", "{{ input.y }}"]})));
        assert!(!contains_template(&json!({"a": ["x", 1]})));
    }
}
