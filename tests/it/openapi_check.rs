//! Every JSON body the serve tests receive from `/api` is checked against the OpenAPI document
//! (`GET /api/openapi.json`, issue #17 item 13): the schema of its route, method and status,
//! else the operation's `default` (the error body). A body that does not match fails the test
//! that received it, so the document cannot drift from what the server sends.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use serde_json::Value;

/// Compiled validators by the JSON pointer of their schema in the document.
static VALIDATORS: LazyLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> =
    LazyLock::new(Mutex::default);

/// The document path (`/api/jobs/{id}`) that `path` (no query) matches, with its item.
fn operation_path<'a>(document: &'a Value, path: &str) -> Option<(&'a String, &'a Value)> {
    let segments: Vec<&str> = path.split('/').collect();
    document["paths"].as_object()?.iter().find(|(pattern, _)| {
        let pattern: Vec<&str> = pattern.split('/').collect();
        pattern.len() == segments.len()
            && pattern
                .iter()
                .zip(&segments)
                .all(|(want, have)| want.starts_with('{') || want == have)
    })
}

/// A JSON pointer as a URI fragment: percent-encoded where a fragment may not hold a character
/// (the braces of path templates).
fn fragment(pointer: &str) -> String {
    pointer
        .chars()
        .map(|c| match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '/' | '~' | '-' | '.' | '_' => c.to_string(),
            other => other
                .to_string()
                .bytes()
                .map(|byte| format!("%{byte:02X}"))
                .collect(),
        })
        .collect()
}

fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Panics, naming the request and what does not match, when `body` is JSON from `/api` that its
/// operation's schema refuses.
pub fn check(method: &str, path: &str, status: u16, content_type: Option<&str>, body: &str) {
    let path = path.split('?').next().unwrap_or(path);
    if !path.starts_with("/api/")
        || body.is_empty()
        || !content_type.is_some_and(|kind| kind.starts_with("application/json"))
    {
        return;
    }
    let Ok(instance) = serde_json::from_str::<Value>(body) else {
        panic!("{method} {path} answered {status} with application/json that is not JSON: {body}");
    };
    let document = &*stroem::server::OPENAPI;
    let method = method.to_lowercase();
    let pointer = match operation_path(document, path) {
        Some((pattern, item)) if item.get(&method).is_some() => {
            let responses = &item[&method]["responses"];
            let key = if responses.get(status.to_string()).is_some() {
                status.to_string()
            } else {
                "default".to_owned()
            };
            let schema = format!(
                "/paths/{}/{method}/responses/{key}/content/application~1json/schema",
                escape(pattern)
            );
            if document.pointer(&schema).is_none() {
                assert!(
                    responses[&key].get("content").is_some(),
                    "{method} {path} answered {status} with a JSON body its operation does not \
                     describe: {body}"
                );
                return;
            }
            schema
        }
        // An unknown route or method: the JSON 404/405 error body.
        _ => "/components/schemas/ErrorBody".to_owned(),
    };
    let cached = VALIDATORS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&pointer)
        .cloned();
    let validator = match cached {
        Some(validator) => validator,
        None => {
            let mut root = document.clone();
            root["$ref"] = Value::String(format!("#{}", fragment(&pointer)));
            let validator = Arc::new(
                jsonschema::draft202012::new(&root)
                    .unwrap_or_else(|error| panic!("the schema at {pointer} compiles: {error}")),
            );
            VALIDATORS
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(pointer.clone(), Arc::clone(&validator));
            validator
        }
    };
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|error| format!("{} at '{}'", error, error.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} answered {status} with a body that does not match the OpenAPI \
         document ({pointer}): {}\nbody: {body}",
        errors.join("; ")
    );
}

#[test]
fn a_body_that_does_not_match_its_schema_fails_the_test() {
    let job = r#"{"job_id": 5, "status": "running"}"#;
    let refused = std::panic::catch_unwind(|| {
        check(
            "POST",
            "/api/jobs/abc/cancel",
            200,
            Some("application/json"),
            job,
        )
    });
    let message = refused.expect_err("refused");
    let message = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        message.contains("/api/jobs/abc/cancel") && message.contains("job_id"),
        "{message}"
    );
    // Errors are checked against the error body.
    let error = r#"{"error": "job abc not found", "code": "not_found"}"#;
    check(
        "POST",
        "/api/jobs/abc/cancel",
        404,
        Some("application/json"),
        error,
    );
    check(
        "GET",
        "/api/no/such/route",
        404,
        Some("application/json"),
        error,
    );
    assert!(
        std::panic::catch_unwind(|| {
            check(
                "GET",
                "/api/no/such/route",
                404,
                Some("application/json"),
                r#"{"code": 1}"#,
            )
        })
        .is_err()
    );
}
