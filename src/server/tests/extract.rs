//! The extractors turn every malformed request into the JSON error body: broken JSON, unknown
//! fields, wrong types, wrong content type, oversized bodies, bad path and query parameters.

use axum::body::Body;
use axum::http::Request;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{get as get_request, post_json, send, state};
use crate::api::{ExecuteRequest, JobListQuery, LogQuery, limits};
use crate::server::{ApiJson, ApiPath, ApiQuery, AppState, Paginated, assemble};

async fn execute(ApiJson(request): ApiJson<ExecuteRequest>) -> Json<Value> {
    Json(request.input_value())
}

async fn job(ApiPath(id): ApiPath<Uuid>) -> String {
    id.to_string()
}

async fn step(ApiPath((id, step)): ApiPath<(Uuid, String)>) -> String {
    format!("{id} {step}")
}

async fn jobs(ApiQuery(query): ApiQuery<JobListQuery>) -> Paginated<String> {
    let statuses = query.status.iter().map(|status| status.as_str().to_owned());
    let mut items: Vec<String> = statuses.collect();
    items.push(format!(
        "limit={} offset={}",
        query.page.limit, query.page.offset
    ));
    Paginated::new(items, 123)
}

async fn logs(ApiQuery(query): ApiQuery<LogQuery>) -> String {
    format!("{query:?}")
}

fn app() -> Router {
    let routes = Router::<AppState>::new()
        .route("/test/execute", post(execute))
        .route("/test/jobs", get(jobs))
        .route("/test/jobs/{id}", get(job))
        .route("/test/jobs/{id}/steps/{step}", get(step))
        .route("/test/logs", get(logs));
    assemble(state(true), routes)
}

#[tokio::test]
async fn bodies_that_are_not_the_expected_json_are_400_naming_the_field() {
    let cases = [
        ("malformed", r#"{"input": "#),
        ("trailing_garbage", r#"{"input": {}} x"#),
        ("unknown_field", r#"{"inputs": {"version": "1.4.0"}}"#),
        ("wrong_type", r#"{"input": [1, 2]}"#),
        ("bad_uuid_field", r#"{"source_job_id": "nope"}"#),
        ("not_an_object", r#"[1]"#),
    ];
    let mut all = Map::new();
    for (name, body) in cases {
        let reply = send(app(), post_json("/api/test/execute", body)).await;
        assert_eq!(reply.status.as_u16(), 400, "{name}");
        all.insert(name.to_owned(), reply.body);
    }
    insta::assert_json_snapshot!(Value::Object(all));
}

#[tokio::test]
async fn a_valid_body_and_an_empty_one_are_accepted() {
    let reply = send(
        app(),
        post_json("/api/test/execute", r#"{"input": {"version": "1.4.0"}}"#),
    )
    .await;
    assert_eq!(reply.status.as_u16(), 200);
    assert_eq!(reply.body, json!({"version": "1.4.0"}));

    // An empty body reads as `{}`; it still declares JSON (docs/security.md), and without
    // the declaration it is 415 like any other state-changing request.
    let empty = send(app(), post_json("/api/test/execute", "")).await;
    assert_eq!((empty.status.as_u16(), empty.body), (200, json!({})));
    let bare = Request::post("/api/test/execute")
        .body(Body::empty())
        .expect("request builds");
    let reply = send(app(), bare).await;
    assert_eq!(reply.status.as_u16(), 415);
    assert_eq!(reply.body["code"], "unsupported_media_type");

    let null_input = send(app(), post_json("/api/test/execute", r#"{"input": null}"#)).await;
    assert_eq!(
        (null_input.status.as_u16(), null_input.body),
        (200, json!({}))
    );

    let vendor = Request::post("/api/test/execute")
        .header("content-type", "application/vnd.stroem+json; charset=utf-8")
        .body(Body::from("{}"))
        .expect("request builds");
    assert_eq!(send(app(), vendor).await.status.as_u16(), 200);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415() {
    let text = Request::post("/api/test/execute")
        .header("content-type", "text/plain")
        .body(Body::from("{}"))
        .expect("request builds");
    let reply = send(app(), text).await;
    insta::assert_json_snapshot!(reply.snapshot());

    let untyped = Request::post("/api/test/execute")
        .body(Body::from("{}"))
        .expect("request builds");
    let reply = send(app(), untyped).await;
    assert_eq!(reply.status.as_u16(), 415);
    assert_eq!(reply.body["code"], "unsupported_media_type");
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_413() {
    let padding = "x".repeat(limits::API_BODY);
    let body = format!(r#"{{"input": {{"blob": "{padding}"}}}}"#);
    let reply = send(app(), post_json("/api/test/execute", body)).await;
    insta::assert_json_snapshot!(reply.snapshot());

    // Just under the limit still goes through.
    let padding = "x".repeat(limits::API_BODY - 100);
    let body = format!(r#"{{"input": {{"blob": "{padding}"}}}}"#);
    let reply = send(app(), post_json("/api/test/execute", body)).await;
    assert_eq!(reply.status.as_u16(), 200);
}

#[tokio::test]
async fn a_malformed_uuid_in_the_path_is_400_naming_the_parameter() {
    let id = "0195f3a0-0000-7000-8000-000000000001";
    let reply = send(app(), get_request(&format!("/api/test/jobs/{id}"))).await;
    assert_eq!((reply.status.as_u16(), reply.body), (200, json!(id)));

    let mut all = Map::new();
    for (name, uri) in [
        ("job", "/api/test/jobs/not-a-uuid".to_owned()),
        ("step", "/api/test/jobs/1234/steps/deploy%5B2%5D".to_owned()),
    ] {
        let reply = send(app(), get_request(&uri)).await;
        assert_eq!(reply.status.as_u16(), 400, "{name}");
        all.insert(name.to_owned(), reply.body);
    }
    insta::assert_json_snapshot!(Value::Object(all));

    // Loop-instance names arrive percent-decoded.
    let reply = send(
        app(),
        get_request(&format!("/api/test/jobs/{id}/steps/deploy%5B2%5D")),
    )
    .await;
    assert_eq!(reply.body, json!(format!("{id} deploy[2]")));
}

#[tokio::test]
async fn bad_query_parameters_are_400_naming_the_parameter() {
    let mut all = Map::new();
    for (name, query) in [
        ("limit_zero", "limit=0"),
        ("limit_too_big", "limit=501"),
        ("limit_not_a_number", "limit=ten"),
        ("negative_offset", "offset=-1"),
        ("unknown_status", "status=running,finished"),
        ("task_without_workspace", "task_name=release"),
        ("bad_parent", "parent_job_id=42"),
        ("long_search", &format!("search={}", "a".repeat(201))),
    ] {
        let reply = send(app(), get_request(&format!("/api/test/jobs?{query}"))).await;
        assert_eq!(reply.status.as_u16(), 400, "{name}");
        all.insert(name.to_owned(), reply.body);
    }
    let reply = send(app(), get_request("/api/test/logs?limit=100001")).await;
    all.insert("log_limit".to_owned(), reply.body);
    insta::assert_json_snapshot!(Value::Object(all));
}

#[tokio::test]
async fn lists_carry_the_total_count_header() {
    let reply = send(
        app(),
        get_request("/api/test/jobs?status=failed,%20running,failed&limit=500&offset=20&workspace=default&task=release&x=1"),
    )
    .await;
    assert_eq!(reply.status.as_u16(), 200);
    assert_eq!(reply.header("x-total-count"), Some("123"));
    assert_eq!(
        reply.body,
        json!(["failed", "running", "limit=500 offset=20"])
    );

    let defaults = send(app(), get_request("/api/test/jobs")).await;
    assert_eq!(defaults.body, json!(["limit=50 offset=0"]));
    let logs = send(app(), get_request("/api/test/logs?after=42&step=deploy")).await;
    assert_eq!(
        logs.body,
        json!("LogQuery { after: 42, limit: 10000, step: Some(\"deploy\") }")
    );
}

#[test]
fn the_bearer_scheme_is_read_in_any_case() {
    use crate::server::bearer_credentials;
    for value in ["Bearer t0k", "bearer t0k", "BEARER  t0k ", " bEaReR t0k"] {
        assert_eq!(bearer_credentials(value), Some("t0k"), "{value:?}");
    }
    for value in [
        "Basic dXNlcg==",
        "Bearer",
        "Bearer   ",
        "Bearert0k",
        "t0k",
        "",
    ] {
        assert_eq!(bearer_credentials(value), None, "{value:?}");
    }
}
