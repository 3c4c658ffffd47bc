//! The OpenAPI document (issue #17 item 13): it documents exactly the routes of the `/api`
//! table, every reference resolves, every schema compiles as JSON Schema 2020-12 (which
//! OpenAPI 3.1 uses), it is served without credentials, and `docs/api-reference.md` and
//! `docs/openapi.json` are its current rendering.

use std::collections::BTreeSet;

use serde_json::Value;

use super::super::{openapi, routes};

#[test]
fn every_api_route_is_documented_and_nothing_else() {
    let table: BTreeSet<(String, String)> = routes::all()
        .iter()
        .map(|route| (route.method.to_string(), route.path.to_owned()))
        .collect();
    let documented: BTreeSet<(String, String)> = openapi::documented().into_iter().collect();
    let missing: Vec<_> = table.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&table).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "routes without a description in src/server/openapi.rs: {missing:?}; described \
         routes that are not in the table: {extra:?}"
    );
}

fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(target)) => found.push(target),
                    _ => refs(value, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| refs(item, found)),
        _ => {}
    }
}

#[test]
fn the_document_is_openapi_3_1_and_every_schema_compiles() {
    let document = &*openapi::DOCUMENT;
    assert_eq!(document["openapi"], "3.1.0");
    let mut found = Vec::new();
    refs(document, &mut found);
    assert!(!found.is_empty());
    for target in found {
        let pointer = target.strip_prefix('#').expect("a local reference");
        assert!(
            document.pointer(pointer).is_some(),
            "{target} does not resolve"
        );
    }
    let schemas = document["components"]["schemas"]
        .as_object()
        .expect("schemas");
    for name in schemas.keys() {
        let mut schema = document.clone();
        schema["$ref"] = Value::String(format!("#/components/schemas/{name}"));
        jsonschema::draft202012::new(&schema)
            .unwrap_or_else(|error| panic!("schema {name} does not compile: {error}"));
    }
    // Nothing secret: no example or default values at all.
    let text = document.to_string();
    assert!(!text.contains("\"example"), "the document carries examples");
}

#[tokio::test]
async fn the_document_is_served_without_credentials() {
    let (state, _dir) = super::gate::secured().await;
    let reply = super::send(super::super::router(state), super::get("/api/openapi.json")).await;
    assert_eq!(reply.status.as_u16(), 200);
    assert_eq!(reply.body, *openapi::DOCUMENT);
}

#[test]
fn api_reference_is_current() {
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let mut json = serde_json::to_string_pretty(&*openapi::DOCUMENT).expect("serialises");
    json.push('\n');
    let files = [
        (
            docs.join("api-reference.md"),
            openapi::reference_markdown(&openapi::DOCUMENT),
        ),
        // The document as a file, for the web UI's generated types (web/src/api/schema.gen.ts).
        (docs.join("openapi.json"), json),
    ];
    let bless = std::env::var_os("STROEM_BLESS").is_some();
    for (path, rendered) in files {
        if bless {
            std::fs::write(&path, &rendered).expect("write the rendering");
            continue;
        }
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            current == rendered,
            "{} is not the rendering of the OpenAPI document: run \
             `STROEM_BLESS=1 cargo test --lib api_reference_is_current` and commit the result",
            path.display()
        );
    }
}
