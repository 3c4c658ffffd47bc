//! `--input JSON|@FILE|-` and `--set KEY=VALUE`, shared by `run` and `trigger` (API §9.2).

use std::io::Read;

use serde_json::{Map, Value};

/// Why the command-line input could not be built; rendered as a usage error (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum InputArgError {
    #[error("--input: cannot read '{path}': {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("--input: not valid JSON: {0}")]
    Json(serde_json::Error),
    #[error("--input: expected a JSON object, got {0}")]
    NotAnObject(&'static str),
    #[error("--set '{0}': expected KEY=VALUE")]
    Set(String),
}

/// Builds the job input: `--input` first (an object, `@file` or `-` for stdin), then each
/// `--set KEY=VALUE` on top. A `--set` value is parsed as JSON when it parses, else taken as a
/// string, so `--set count=3` is a number and `--set name=World` a string.
pub fn build(input: Option<&str>, sets: &[String]) -> Result<Map<String, Value>, InputArgError> {
    let mut object = match input {
        None => Map::new(),
        Some(spec) => parse_object(&read_spec(spec)?)?,
    };
    for set in sets {
        let (key, raw) = set
            .split_once('=')
            .filter(|(key, _)| !key.is_empty())
            .ok_or_else(|| InputArgError::Set(set.clone()))?;
        let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()));
        object.insert(key.to_owned(), value);
    }
    Ok(object)
}

fn read_spec(spec: &str) -> Result<String, InputArgError> {
    if spec == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|source| InputArgError::Read {
                path: "-".to_owned(),
                source,
            })?;
        return Ok(text);
    }
    match spec.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map_err(|source| InputArgError::Read {
            path: path.to_owned(),
            source,
        }),
        None => Ok(spec.to_owned()),
    }
}

fn parse_object(text: &str) -> Result<Map<String, Value>, InputArgError> {
    match serde_json::from_str(text).map_err(InputArgError::Json)? {
        Value::Object(object) => Ok(object),
        Value::Null => Ok(Map::new()),
        Value::Array(_) => Err(InputArgError::NotAnObject("an array")),
        Value::String(_) => Err(InputArgError::NotAnObject("a string")),
        Value::Number(_) => Err(InputArgError::NotAnObject("a number")),
        Value::Bool(_) => Err(InputArgError::NotAnObject("a boolean")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_values_parse_as_json_when_they_can() {
        let input = build(
            Some(r#"{"name": "x", "keep": 1}"#),
            &["name=World".into(), "count=3".into(), "flag=true".into()],
        )
        .unwrap();
        assert_eq!(
            Value::Object(input),
            json!({"name": "World", "keep": 1, "count": 3, "flag": true})
        );
    }

    #[test]
    fn set_keeps_everything_after_the_first_equals() {
        let input = build(None, &["query=a=b".into()]).unwrap();
        assert_eq!(input["query"], json!("a=b"));
    }

    #[test]
    fn rejects_non_objects_and_bad_sets() {
        assert!(matches!(
            build(Some("[1]"), &[]),
            Err(InputArgError::NotAnObject("an array"))
        ));
        assert!(matches!(build(Some("{"), &[]), Err(InputArgError::Json(_))));
        assert!(matches!(
            build(None, &["novalue".into()]),
            Err(InputArgError::Set(_))
        ));
        assert!(matches!(
            build(None, &["=x".into()]),
            Err(InputArgError::Set(_))
        ));
    }

    #[test]
    fn reads_input_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("input.json");
        std::fs::write(&path, r#"{"a": [1, 2]}"#).unwrap();
        let input = build(Some(&format!("@{}", path.display())), &[]).unwrap();
        assert_eq!(input["a"], json!([1, 2]));
        assert!(matches!(
            build(Some("@/nonexistent/file.json"), &[]),
            Err(InputArgError::Read { .. })
        ));
    }
}
