//! Input and output schemas (WF §3, §4; rules 15–19 of §18.2).
//!
//! Literal `default` and `options` values are checked against the field's type with the
//! coercions of §3.1; string defaults containing a template are checked when rendered, not
//! here.

use std::collections::HashMap;

use serde_json::Value;

use super::super::diagnostic::{Diagnostic, suggest};
use super::super::model::{FieldType, InputField, InputSchema};
use super::super::template::is_template;
use super::super::yaml::{Mark, Node};
use super::fields::{Ctx, Fields};
use super::names::{self, NameKind};

const INPUT_KEYS: [&str; 10] = [
    "type",
    "name",
    "description",
    "required",
    "default",
    "options",
    "allow_custom",
    "multiple",
    "secret",
    "order",
];
const OUTPUT_KEYS: [&str; 5] = ["type", "description", "required", "default", "options"];
const TYPES: [&str; 10] = [
    "string", "text", "integer", "number", "boolean", "bool", "date", "datetime", "array", "object",
];

/// An `input:` block.
pub fn input(cx: &mut Ctx, node: &Node, path: &str) -> Option<InputSchema> {
    schema(cx, node, path, false)
}

/// An `output:` block: the same definitions with fewer keys.
pub fn output(cx: &mut Ctx, node: &Node, path: &str) -> Option<InputSchema> {
    schema(cx, node, path, true)
}

fn schema(cx: &mut Ctx, node: &Node, path: &str, output: bool) -> Option<InputSchema> {
    let entries = cx.named_entries(node, path);
    node.as_map()?;
    let mut schema = InputSchema::new();
    let mut variables: HashMap<String, (String, Mark)> = HashMap::new();
    for (name, key, value) in entries {
        let field_path = super::super::source::join(path, &name);
        if let Err(message) = names::check(NameKind::Field, &name) {
            cx.error("invalid-name", message, key.mark, &field_path);
        }
        if !output {
            let variable = names::input_variable(&name);
            if let Some((other, other_mark)) = variables.get(&variable) {
                let message =
                    format!("input fields '{other}' and '{name}' are both passed as ${variable}");
                let diagnostic = Diagnostic::error(
                    "input-variable-collision",
                    message,
                    &cx.at(key.mark),
                    &field_path,
                )
                .with_related(format!("'{other}' is declared here"), &cx.at(*other_mark));
                cx.push(diagnostic);
            } else {
                variables.insert(variable, (name.clone(), key.mark));
            }
        }
        if let Some(definition) = field(cx, value, &field_path, output) {
            schema.insert(name, definition);
        }
    }
    Some(schema)
}

fn field(cx: &mut Ctx, node: &Node, path: &str, output: bool) -> Option<InputField> {
    let mut f = Fields::open(cx, node, path)?;
    let field_type = match f.text(cx, "type") {
        None => FieldType::String,
        Some(name) => field_type(cx, &name, f.get("type").map(|n| n.mark), path),
    };
    let mut def = InputField {
        name: if output { None } else { f.text(cx, "name") },
        description: f.text(cx, "description"),
        required: f.bool(cx, "required").unwrap_or(false),
        ..InputField::of_type(field_type)
    };
    if !output {
        def.allow_custom = f.bool(cx, "allow_custom").unwrap_or(false);
        def.multiple = f.bool(cx, "multiple").unwrap_or(false);
        def.secret = f.bool(cx, "secret").unwrap_or(false);
        def.order = f.int(cx, "order");
    }
    let options_node = f.get("options");
    if let Some(node) = options_node {
        match node.as_seq() {
            Some(items) => {
                cx.record_tree(&f.path_of("options"), node);
                def.options = Some(items.iter().map(Node::to_json).collect());
            }
            None => cx.wrong_type(node, &f.path_of("options"), "a list"),
        }
    }
    let default_node = f.get("default");
    if let Some(node) = default_node {
        cx.record_tree(&f.path_of("default"), node);
        def.default = Some(node.to_json());
    }
    let valid: &[&str] = if output { &OUTPUT_KEYS } else { &INPUT_KEYS };
    f.finish(cx, valid, &|key| {
        (output && INPUT_KEYS.contains(&key))
            .then(|| format!("'{key}' is not allowed in an output schema"))
    });
    check_values(cx, &def, path, node.mark, options_node, default_node);
    Some(def)
}

fn field_type(cx: &mut Ctx, name: &str, mark: Option<Mark>, path: &str) -> FieldType {
    match name {
        "string" => FieldType::String,
        "text" => FieldType::Text,
        "integer" => FieldType::Integer,
        "number" => FieldType::Number,
        "boolean" | "bool" => FieldType::Boolean,
        "date" => FieldType::Date,
        "datetime" => FieldType::Datetime,
        "array" => FieldType::Array,
        "object" => FieldType::Object,
        other => {
            let message = match suggest(other, TYPES) {
                Some(close) => format!("unknown type '{other}' — did you mean '{close}'?"),
                None => format!(
                    "unknown type '{other}'; valid types are {} (connection types are not supported in this version)",
                    TYPES.join(", ")
                ),
            };
            let at = mark.unwrap_or(Mark { line: 1, column: 1 });
            cx.error("unknown-type", message, at, &format!("{path}.type"));
            FieldType::Connection(other.to_owned())
        }
    }
}

/// Rules 16–18: defaults and options against the type, `multiple`, and the warnings.
fn check_values(
    cx: &mut Ctx,
    def: &InputField,
    path: &str,
    mark: Mark,
    options_node: Option<&Node>,
    default_node: Option<&Node>,
) {
    let ty = &def.field_type;
    let textual = matches!(ty, FieldType::String | FieldType::Text);
    if def.multiple && !textual {
        let message = format!(
            "'multiple' is only allowed on string and text fields, not on {}",
            ty.as_str()
        );
        cx.error("invalid-multiple", message, mark, path);
    }
    if def.multiple && def.secret {
        cx.error(
            "invalid-multiple",
            "'secret' cannot be combined with 'multiple'",
            mark,
            path,
        );
    }
    if let (Some(options), Some(node)) = (&def.options, options_node) {
        let items = node.as_seq().unwrap_or_default();
        let mut seen: Vec<&Value> = Vec::new();
        for (i, (value, item)) in options.iter().zip(items).enumerate() {
            let item_path = format!("{path}.options[{i}]");
            if let Err(why) = coerce(ty, value) {
                cx.error(
                    "invalid-option",
                    format!("option {value} {why}"),
                    item.mark,
                    &item_path,
                );
            }
            if value.as_str() == Some("") {
                cx.warning(
                    "empty-option",
                    "an option is the empty string",
                    item.mark,
                    &item_path,
                );
            }
            if seen.contains(&value) {
                cx.warning(
                    "duplicate-option",
                    format!("option {value} is listed twice"),
                    item.mark,
                    &item_path,
                );
            }
            seen.push(value);
        }
        if options.is_empty() {
            cx.warning(
                "empty-options",
                "'options' is empty",
                node.mark,
                &format!("{path}.options"),
            );
        }
    } else {
        for key in ["allow_custom", "multiple"] {
            let set = if key == "multiple" {
                def.multiple
            } else {
                def.allow_custom
            };
            if set {
                cx.warning(
                    "options-missing",
                    format!("'{key}' has no effect without 'options'"),
                    mark,
                    path,
                );
            }
        }
    }
    let (Some(default), Some(node)) = (&def.default, default_node) else {
        return;
    };
    let default_path = format!("{path}.default");
    if def.required {
        cx.warning(
            "required-with-default",
            "a required field with a default never needs a value; drop one of them",
            node.mark,
            &default_path,
        );
    }
    let values: Vec<&Value> = if def.multiple {
        match default {
            Value::Array(items) => items.iter().collect(),
            _ => {
                cx.error(
                    "invalid-default",
                    "the default of a 'multiple' field must be a list",
                    node.mark,
                    &default_path,
                );
                return;
            }
        }
    } else {
        vec![default]
    };
    for value in values {
        if value.as_str().is_some_and(is_template) {
            continue;
        }
        if let Err(why) = coerce(ty, value) {
            cx.error(
                "invalid-default",
                format!("the default {value} {why}"),
                node.mark,
                &default_path,
            );
            continue;
        }
        let listed = def.options.as_ref().is_none_or(|options| {
            let wanted = coerce(ty, value).ok();
            options.iter().any(|o| coerce(ty, o).ok() == wanted)
        });
        if !listed && !def.allow_custom {
            let message = format!(
                "the default {value} is not one of the options; set allow_custom: true to allow it"
            );
            cx.error("invalid-default", message, node.mark, &default_path);
        }
    }
}

/// Converts a literal per WF §3.1, or says why it does not fit.
pub fn coerce(ty: &FieldType, value: &Value) -> Result<Value, String> {
    let fail = || Err(format!("is not of type {}", ty.as_str()));
    match (ty, value) {
        (FieldType::String | FieldType::Text, Value::String(_)) => Ok(value.clone()),
        (FieldType::String | FieldType::Text, Value::Number(n)) => Ok(Value::String(n.to_string())),
        (FieldType::String | FieldType::Text, Value::Bool(b)) => Ok(Value::String(b.to_string())),
        (FieldType::Integer, Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(Value::from(i)),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(Value::from(f as i64)),
            _ => fail(),
        },
        (FieldType::Integer, Value::String(s)) => {
            s.parse::<i64>().map(Value::from).or_else(|_| fail())
        }
        (FieldType::Number, Value::Number(_)) => Ok(value.clone()),
        (FieldType::Number, Value::String(s)) => match s.trim().parse::<f64>() {
            Ok(f) if f.is_finite() => {
                Ok(serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number))
            }
            _ => fail(),
        },
        (FieldType::Boolean, Value::Bool(_)) => Ok(value.clone()),
        (FieldType::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("true") => {
            Ok(Value::Bool(true))
        }
        (FieldType::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("false") => {
            Ok(Value::Bool(false))
        }
        (FieldType::Date, Value::String(s)) => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .filter(|_| s.len() == 10)
            .map(|_| value.clone())
            .ok_or_else(|| "is not a date (YYYY-MM-DD)".to_owned()),
        (FieldType::Datetime, Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|_| value.clone())
            .map_err(|_| "is not an RFC 3339 date-time with offset".to_owned()),
        (FieldType::Array, Value::Array(_)) | (FieldType::Object, Value::Object(_)) => {
            Ok(value.clone())
        }
        (FieldType::Connection(_), _) => Ok(value.clone()),
        _ => fail(),
    }
}
