//! Every `ApiError` kind through the real router: status, code, body and special headers.

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use serde_json::{Map, Value};

use super::{send, state};
use crate::server::{ApiError, ApiPath, AppState, AuthFailure, ConflictKind, assemble};
use crate::workflow::input::FieldError;

const KINDS: [&str; 19] = [
    "bad_request",
    "bad_field",
    "invalid_input",
    "unauthorized",
    "invalid_credentials",
    "refresh_token_reused",
    "forbidden",
    "not_found",
    "auth_disabled",
    "already_terminal",
    "not_suspended",
    "stale_lease",
    "conflict",
    "gone",
    "payload_too_large",
    "unsupported_media_type",
    "render_error",
    "rate_limited",
    "unavailable",
];

fn error_of(kind: &str) -> ApiError {
    match kind {
        "bad_request" => ApiError::bad_request("the job is not a loop step"),
        "bad_field" => ApiError::bad_field("wait_secs", "must be from 0 to 30"),
        "invalid_input" => ApiError::InvalidInput(vec![
            FieldError {
                field: "input.version".to_owned(),
                message: "required field is missing".to_owned(),
            },
            FieldError {
                field: "input.replicas".to_owned(),
                message: "expected an integer, got \"three\"".to_owned(),
            },
        ]),
        "unauthorized" => ApiError::unauthorized("missing bearer token"),
        "invalid_credentials" => ApiError::Unauthorized {
            reason: AuthFailure::InvalidCredentials,
            message: "wrong e-mail or password".to_owned(),
        },
        "refresh_token_reused" => ApiError::Unauthorized {
            reason: AuthFailure::RefreshTokenReused,
            message: "refresh token was already used; log in again".to_owned(),
        },
        "forbidden" => ApiError::forbidden("only admins may list users"),
        "not_found" => ApiError::not_found("workspace 'prod'"),
        "auth_disabled" => ApiError::AuthDisabled,
        "already_terminal" => {
            ApiError::conflict(ConflictKind::AlreadyTerminal, "job is already completed")
        }
        "not_suspended" => ApiError::conflict(
            ConflictKind::NotSuspended,
            "step 'approve' is not suspended",
        ),
        "stale_lease" => ApiError::stale_lease(),
        "conflict" => ApiError::Conflict {
            kind: ConflictKind::Conflict,
            message: "a user with this e-mail already exists".to_owned(),
            field: Some("email".to_owned()),
        },
        "gone" => ApiError::gone("whole-job completion was retired; the server owns the DAG"),
        "payload_too_large" => ApiError::PayloadTooLarge {
            limit: Some(1024 * 1024),
        },
        "unsupported_media_type" => ApiError::UnsupportedMediaType,
        "render_error" => ApiError::render_error("input.tag: undefined variable 'secret.TAG'"),
        "rate_limited" => ApiError::RateLimited {
            retry_after_secs: 3,
        },
        "unavailable" => ApiError::unavailable("database unreachable"),
        _ => ApiError::internal(anyhow::anyhow!("database password is hunter2")),
    }
}

async fn fail(ApiPath(kind): ApiPath<String>) -> ApiError {
    error_of(&kind)
}

async fn panic() -> &'static str {
    panic!("the handler has a bug")
}

fn app() -> Router {
    let routes = Router::<AppState>::new()
        .route("/test/errors/{kind}", get(fail))
        .route("/test/panic", get(panic));
    assemble(state(true), routes)
}

fn request(kind: &str) -> Request<Body> {
    Request::get(format!("/api/test/errors/{kind}"))
        .header("x-request-id", "req-1")
        .body(Body::empty())
        .expect("request builds")
}

#[tokio::test]
async fn every_kind_has_its_status_and_code() {
    let mut all = Map::new();
    for kind in KINDS {
        let reply = send(app(), request(kind)).await;
        let expected = if kind == "bad_field" {
            "bad_request"
        } else {
            kind
        };
        assert_eq!(reply.body["code"], expected, "{kind}");
        all.insert(kind.to_owned(), reply.snapshot());
    }
    insta::assert_json_snapshot!(Value::Object(all));
}

#[tokio::test]
async fn internal_errors_hide_their_cause_and_name_the_request() {
    let reply = send(app(), request("internal")).await;
    insta::assert_json_snapshot!(reply.snapshot());
    assert!(!reply.body.to_string().contains("hunter2"));
}

#[tokio::test]
async fn a_panicking_handler_answers_500_json_with_the_request_id() {
    let request = Request::get("/api/test/panic")
        .header("x-request-id", "req-2")
        .body(Body::empty())
        .expect("request builds");
    let reply = send(app(), request).await;
    assert_eq!(reply.header("x-request-id"), Some("req-2"));
    assert_eq!(
        (reply.status.as_u16(), reply.body),
        (
            500,
            serde_json::json!({"error": "internal server error (request id req-2)", "code": "internal"})
        )
    );
}

#[tokio::test]
async fn auth_and_rate_limit_errors_carry_their_headers() {
    let unauthorized = send(app(), request("unauthorized")).await;
    assert_eq!(unauthorized.header("www-authenticate"), Some("Bearer"));
    let limited = send(app(), request("rate_limited")).await;
    assert_eq!(limited.header("retry-after"), Some("3"));
    let other = send(app(), request("forbidden")).await;
    assert_eq!(other.header("www-authenticate"), None);
    assert_eq!(other.header("retry-after"), None);
}

#[test]
fn status_comes_from_the_kind_not_the_message() {
    // A message that reads like another kind changes nothing.
    let error = ApiError::bad_request("not found: job is already terminal (internal)");
    assert_eq!(error.status_and_code().0.as_u16(), 400);
    let error = ApiError::not_found("bad request");
    assert_eq!(error.status_and_code().0.as_u16(), 404);
}

/// A tracing writer that keeps everything in memory.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut buffer) = self.0.lock() {
            buffer.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn internal_errors_are_logged_with_cause_and_request_id() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // The test runtime is single-threaded, so the router runs under this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);
    send(app(), request("internal")).await;
    let log = String::from_utf8_lossy(&captured.0.lock().expect("log buffer")).into_owned();
    assert!(
        log.contains("internal error: database password is hunter2"),
        "{log}"
    );
    assert!(log.contains("req-1"), "{log}");
}
