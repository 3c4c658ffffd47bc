//! Router tests in the crates.io style: build the real router around test routes, send
//! requests with `oneshot`, and snapshot the JSON that comes back.

mod errors;
mod extract;
mod gate;
mod openapi;
mod serve;
mod surface;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

use super::{AppState, Health};

/// A state whose database check answers `db_ok`.
pub(super) fn state(db_ok: bool) -> AppState {
    AppState {
        health: Health::new(move || async move { db_ok }),
        orchestrator: None,
        workers: super::WorkerAccess::default(),
        ui: super::UiBundle::default(),
        security: super::Security::default(),
        http: super::HttpPolicy::default(),
        metrics: super::MetricsAccess::default(),
    }
}

/// What came back: status, headers, and the body as JSON (or as a JSON string when it is not
/// JSON, so tests can still look at it).
pub(super) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Status and body together, for snapshots.
    pub fn snapshot(&self) -> Value {
        serde_json::json!({"status": self.status.as_u16(), "body": self.body})
    }
}

pub(super) async fn send(app: Router, request: Request<Body>) -> Reply {
    let response = app.oneshot(request).await.expect("router is infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body reads");
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Reply {
        status,
        headers,
        body,
    }
}

pub(super) fn get(uri: &str) -> Request<Body> {
    Request::get(uri)
        .body(Body::empty())
        .expect("request builds")
}

pub(super) fn post_json(uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(uri)
        .header("content-type", "application/json")
        .body(body.into())
        .expect("request builds")
}
