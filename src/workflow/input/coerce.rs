//! Coercion and checks of one field's value (WF §3.1, §3.2 steps 3–4), shared by input and
//! output schemas. Every function returns the one message that describes the field's problem;
//! the caller prefixes it with the field path.
//!
//! Messages never quote a value of a `secret: true` field, because they reach API responses.

use chrono::{DateTime, NaiveDate};
use serde_json::{Number, Value};

use crate::workflow::model::{FieldType, InputField};

/// The JSON type name users see in `expected …, got …`.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn expected(field_type: &FieldType, value: &Value) -> String {
    format!("expected {}, got {}", field_type.as_str(), json_type(value))
}

/// Converts `value` (never null) to the field's type, a list of them with `multiple`.
pub(crate) fn coerce(field: &InputField, value: Value) -> Result<Value, String> {
    if !field.multiple {
        return coerce_value(&field.field_type, value);
    }
    let items = match value {
        Value::Array(items) => items,
        single @ (Value::String(_) | Value::Number(_) | Value::Bool(_)) => vec![single],
        other => {
            return Err(format!(
                "expected a list of {} values, got {}",
                field.field_type.as_str(),
                json_type(&other)
            ));
        }
    };
    let mut coerced = Vec::with_capacity(items.len());
    let mut problems = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        match coerce_value(&field.field_type, item) {
            Ok(item) => coerced.push(item),
            Err(message) => problems.push(format!("item {index}: {message}")),
        }
    }
    if problems.is_empty() {
        Ok(Value::Array(coerced))
    } else {
        Err(problems.join("; "))
    }
}

/// The §3.1 table for a single value.
pub(crate) fn coerce_value(field_type: &FieldType, value: Value) -> Result<Value, String> {
    match (field_type, value) {
        (FieldType::String | FieldType::Text, value) => match value {
            Value::String(_) => Ok(value),
            Value::Number(_) | Value::Bool(_) => Ok(Value::String(value.to_string())),
            other => Err(expected(field_type, &other)),
        },
        (FieldType::Integer, Value::Number(n)) => integer_from_number(&n),
        (FieldType::Integer, Value::String(s)) if is_integer_text(&s) => s
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| "integer out of the 64-bit range".to_owned()),
        (FieldType::Number, value @ Value::Number(_)) => Ok(value),
        (FieldType::Number, Value::String(s)) if is_numeric_text(&s) => number_from_text(&s)
            .map(Value::Number)
            .ok_or_else(|| "number out of range".to_owned()),
        (FieldType::Boolean, value @ Value::Bool(_)) => Ok(value),
        (FieldType::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("true") => {
            Ok(Value::Bool(true))
        }
        (FieldType::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("false") => {
            Ok(Value::Bool(false))
        }
        (FieldType::Date, Value::String(s)) => {
            if is_date(&s) {
                Ok(Value::String(s))
            } else {
                Err("expected a valid date written YYYY-MM-DD".to_owned())
            }
        }
        (FieldType::Datetime, Value::String(s)) => {
            if DateTime::parse_from_rfc3339(&s).is_ok() {
                Ok(Value::String(s))
            } else {
                Err("expected an RFC 3339 datetime with offset (2024-05-01T12:00:00Z)".to_owned())
            }
        }
        (FieldType::Array, value @ Value::Array(_)) => Ok(value),
        (FieldType::Object, value @ Value::Object(_)) => Ok(value),
        // Connection names are resolved in a later version [P3]; an object is taken as given.
        (FieldType::Connection(_), value @ Value::Object(_)) => Ok(value),
        (field_type, other) => Err(expected(field_type, &other)),
    }
}

fn integer_from_number(n: &Number) -> Result<Value, String> {
    if let Some(i) = n.as_i64() {
        return Ok(Value::from(i));
    }
    if n.as_u64().is_some() {
        return Err("integer out of the 64-bit range".to_owned());
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    // i64::MAX is not exactly representable; 2^63 as f64 is the first value out of range.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f) {
        // Whole and in range (checked above), so the cast is exact.
        Ok(Value::from(f as i64))
    } else if f.fract() == 0.0 {
        Err("integer out of the 64-bit range".to_owned())
    } else {
        Err("expected integer, got a number with a fraction".to_owned())
    }
}

/// `-?[0-9]+`.
fn is_integer_text(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// A decimal number as JSON writes it, optionally with a leading `+`: no `inf`, `NaN`, hex or
/// surrounding spaces.
fn is_numeric_text(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    body.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        && body.parse::<f64>().is_ok_and(f64::is_finite)
}

fn number_from_text(s: &str) -> Option<Number> {
    let unsigned = s.strip_prefix('+').unwrap_or(s);
    if is_integer_text(unsigned)
        && let Ok(i) = unsigned.parse::<i64>()
    {
        return Some(Number::from(i));
    }
    Number::from_f64(unsigned.parse::<f64>().ok()?)
}

/// `YYYY-MM-DD`, zero-padded, and a real calendar date.
fn is_date(s: &str) -> bool {
    let shape = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    shape && NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
}

/// `required`: present (the caller has handled null), and non-empty for strings and lists of
/// `multiple` fields.
pub(crate) fn check_required(field: &InputField, value: &Value) -> Result<(), String> {
    if !field.required {
        return Ok(());
    }
    let empty = match value {
        Value::String(s) => {
            s.is_empty() && matches!(field.field_type, FieldType::String | FieldType::Text)
        }
        Value::Array(items) => items.is_empty() && field.multiple,
        _ => false,
    };
    if empty {
        Err("required field is empty".to_owned())
    } else {
        Ok(())
    }
}

/// `options` membership unless `allow_custom`; each element with `multiple`. Options are
/// compared after the same coercion as the value, so `options: [1, 2]` matches a string "1" of
/// a `string` field.
pub(crate) fn check_options(field: &InputField, value: &Value) -> Result<(), String> {
    let Some(options) = field.options.as_ref().filter(|_| !field.allow_custom) else {
        return Ok(());
    };
    let allowed: Vec<Value> = options
        .iter()
        .map(|option| coerce_value(&field.field_type, option.clone()).unwrap_or(option.clone()))
        .collect();
    let values = match value {
        Value::Array(items) if field.multiple => items.iter().collect(),
        single => vec![single],
    };
    let outside: Vec<&Value> = values
        .into_iter()
        .filter(|value| !allowed.contains(value))
        .collect();
    if outside.is_empty() {
        return Ok(());
    }
    let listed = allowed.iter().map(text).collect::<Vec<_>>().join(", ");
    if field.secret {
        return Err(format!("value is not one of the options: {listed}"));
    }
    let quoted = outside
        .iter()
        .map(|value| format!("'{}'", text(value)))
        .collect::<Vec<_>>()
        .join(", ");
    if outside.len() == 1 {
        Err(format!(
            "value {quoted} is not one of the options: {listed}"
        ))
    } else {
        Err(format!(
            "values {quoted} are not among the options: {listed}"
        ))
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
