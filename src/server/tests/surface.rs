//! The surfaces of API §1.1: JSON 404/405 under `/api`, `/hooks` and `/worker`, the UI
//! fallback elsewhere, `X-Request-Id` on every response, and `/healthz`.

use axum::body::Body;
use axum::http::Request;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{get, send, state};
use crate::server::router;

#[tokio::test]
async fn unknown_machine_paths_are_json_404() {
    let mut all = Map::new();
    for uri in [
        "/api/nope",
        "/api",
        "/hooks/site-push/deliveries",
        "/worker/nope",
    ] {
        let reply = send(router(state(true)), get(uri)).await;
        assert_eq!(reply.status.as_u16(), 404, "{uri}");
        assert_eq!(
            reply.header("content-type"),
            Some("application/json"),
            "{uri}"
        );
        all.insert(uri.to_owned(), reply.body);
    }
    insta::assert_json_snapshot!(Value::Object(all));
}

#[tokio::test]
async fn a_wrong_method_on_a_known_path_is_json_405() {
    let request = Request::delete("/healthz")
        .body(Body::empty())
        .expect("request builds");
    let reply = send(router(state(true)), request).await;
    assert_eq!(reply.status.as_u16(), 405);
    assert_eq!(reply.header("x-request-id").map(str::len), Some(36));
}

#[tokio::test]
async fn other_paths_fall_through_to_the_ui() {
    let reply = send(router(state(true)), get("/jobs/123")).await;
    assert_eq!(reply.status.as_u16(), 200);
    let text = reply.body.as_str().expect("HTML");
    assert!(text.contains("web UI is not built"), "{text}");
    assert!(reply.header("x-request-id").is_some());
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let request = Request::get("/api/nope")
        .header("x-request-id", "client-abc.123")
        .body(Body::empty())
        .expect("request builds");
    let reply = send(router(state(true)), request).await;
    assert_eq!(reply.header("x-request-id"), Some("client-abc.123"));

    let reply = send(router(state(true)), get("/healthz")).await;
    let generated = reply.header("x-request-id").expect("generated id");
    assert!(Uuid::parse_str(generated).is_ok(), "{generated}");

    // An id that could forge log lines is replaced, not echoed.
    let request = Request::get("/healthz")
        .header("x-request-id", "evil id")
        .body(Body::empty())
        .expect("request builds");
    let reply = send(router(state(true)), request).await;
    let replaced = reply.header("x-request-id").expect("replacement id");
    assert!(Uuid::parse_str(replaced).is_ok(), "{replaced}");
}

#[tokio::test]
async fn healthz_reports_the_database() {
    let healthy = send(router(state(true)), get("/healthz")).await;
    assert_eq!(
        (healthy.status.as_u16(), healthy.body),
        (200, json!({"status": "ok", "db": "ok"}))
    );
    let unhealthy = send(router(state(false)), get("/healthz")).await;
    assert_eq!(
        (unhealthy.status.as_u16(), unhealthy.body),
        (503, json!({"status": "unhealthy", "db": "error"}))
    );
}

#[tokio::test]
async fn a_hung_database_check_is_unhealthy() {
    let hung = || std::future::pending::<bool>();
    let app = router(crate::server::AppState {
        health: crate::server::Health::with_timeout(hung, std::time::Duration::from_millis(50)),
        orchestrator: None,
        workers: crate::server::WorkerAccess::default(),
        ui: crate::server::UiBundle::default(),
        security: crate::server::Security::default(),
        http: crate::server::HttpPolicy::default(),
        metrics: crate::server::MetricsAccess::default(),
    });
    let reply = send(app, get("/healthz")).await;
    assert_eq!(reply.status.as_u16(), 503);
}
