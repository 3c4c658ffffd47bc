//! Conversions between JSON (`serde_json::Value`, the currency of the rest of Strøm) and
//! minijinja values, and the text form of a value inside a rendered string (WF §12.1).
//!
//! Conversion is done by hand rather than through minijinja's `serde` feature so that the
//! mapping is explicit: JSON `null` is minijinja `none`, object key order is kept, and values
//! with no JSON counterpart (functions, macros, loop objects) degrade predictably.

use minijinja::value::{Value as JinjaValue, ValueKind};
use serde_json::{Map as JsonMap, Number, Value};

/// Converts a JSON value into a minijinja value. Strings stay plain strings, so whatever they
/// contain is data and never template syntax.
pub(crate) fn to_jinja(value: &Value) -> JinjaValue {
    match value {
        Value::Null => JinjaValue::from(()),
        Value::Bool(b) => JinjaValue::from(*b),
        Value::Number(n) => number_to_jinja(n),
        Value::String(s) => JinjaValue::from(s.as_str()),
        Value::Array(items) => items.iter().map(to_jinja).collect(),
        Value::Object(map) => {
            JinjaValue::from_pairs(map.iter().map(|(k, v)| (k.as_str(), to_jinja(v))))
        }
    }
}

fn number_to_jinja(n: &Number) -> JinjaValue {
    if let Some(i) = n.as_i64() {
        JinjaValue::from(i)
    } else if let Some(u) = n.as_u64() {
        JinjaValue::from(u)
    } else {
        JinjaValue::from(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// Converts a minijinja value back into JSON. Undefined becomes `null`; map keys that are not
/// strings are written as their text; objects that are neither maps nor sequences (functions,
/// macros) become their display text.
pub(crate) fn to_json(value: &JinjaValue) -> Value {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None | ValueKind::Invalid => Value::Null,
        ValueKind::Bool => Value::Bool(value.is_true()),
        ValueKind::Number => number_to_json(value),
        ValueKind::String => Value::String(value.as_str().unwrap_or_default().to_owned()),
        ValueKind::Bytes => Value::String(
            String::from_utf8_lossy(value.as_bytes().unwrap_or_default()).into_owned(),
        ),
        ValueKind::Seq | ValueKind::Iterable => match value.try_iter() {
            Ok(items) => Value::Array(items.map(|item| to_json(&item)).collect()),
            Err(_) => Value::String(value.to_string()),
        },
        ValueKind::Map => {
            let mut map = JsonMap::new();
            if let Ok(keys) = value.try_iter() {
                for key in keys {
                    let item = value.get_item(&key).unwrap_or_default();
                    let key = match key.as_str() {
                        Some(s) => s.to_owned(),
                        None => key_text(&key),
                    };
                    map.insert(key, to_json(&item));
                }
            }
            Value::Object(map)
        }
        ValueKind::Plain => Value::String(value.to_string()),
        // `ValueKind` is non-exhaustive; anything new is shown as text rather than lost.
        _ => Value::String(value.to_string()),
    }
}

fn key_text(key: &JinjaValue) -> String {
    match to_json(key) {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

fn number_to_json(value: &JinjaValue) -> Value {
    if value.is_integer() {
        if let Ok(i) = i64::try_from(value.clone()) {
            return Value::from(i);
        }
        if let Ok(u) = u64::try_from(value.clone()) {
            return Value::from(u);
        }
    }
    f64::try_from(value.clone())
        .ok()
        .and_then(Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

/// The text of a value inside a larger string (WF §12.1): strings verbatim, numbers and booleans
/// as JSON text, `null` as the empty string, objects and arrays as compact JSON.
pub(crate) fn json_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// [`json_text`] of a minijinja value.
pub(crate) fn text(value: &JinjaValue) -> String {
    match value.as_str() {
        Some(s) if value.kind() == ValueKind::String => s.to_owned(),
        _ => json_text(&to_json(value)),
    }
}

/// JSON truthiness (WF §10.2): `false`, `null`, `0`, `""`, `[]` and `{}` are false.
pub(crate) fn json_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trips_through_minijinja_keeping_key_order() {
        let value = json!({"z": 1, "a": [true, null, 1.5, "x"], "m": {"k": -3}, "big": u64::MAX});
        assert_eq!(to_json(&to_jinja(&value)), value);
        let keys: Vec<_> = to_json(&to_jinja(&value))
            .as_object()
            .expect("object")
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, ["z", "a", "m", "big"]);
    }

    #[test]
    fn text_follows_the_string_rendering_rules() {
        assert_eq!(json_text(&json!("a \"b\"")), "a \"b\"");
        assert_eq!(json_text(&json!(null)), "");
        assert_eq!(json_text(&json!(true)), "true");
        assert_eq!(json_text(&json!(2.5)), "2.5");
        assert_eq!(json_text(&json!({"a": [1, "x"]})), r#"{"a":[1,"x"]}"#);
    }

    #[test]
    fn truthiness_is_json_truthiness() {
        for falsy in [
            json!(false),
            json!(null),
            json!(0),
            json!(0.0),
            json!(""),
            json!([]),
        ] {
            assert!(!json_truthy(&falsy), "{falsy} should be false");
        }
        assert!(!json_truthy(&json!({})));
        for truthy in [
            json!(true),
            json!(1),
            json!("false"),
            json!([0]),
            json!({"a": 0}),
        ] {
            assert!(json_truthy(&truthy), "{truthy} should be true");
        }
    }
}
