//! `ApiError`: every way a request can fail, as typed kinds. Each kind fixes its status and
//! `code` (API §1.3) in one `match`, so the status is never derived from message text, and
//! every error — from a handler, an extractor or the fallback — gets the same JSON body.
//!
//! Internal errors keep their cause for the log (with the request id, see [`super::request_id`])
//! and show the client only a generic message carrying the request id.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::request_id;
use crate::api::{ErrorBody, ErrorDetail, ParamError};
use crate::workflow::input::FieldError;

/// The `code` of an error response, as a response extension: the audit trail records it as
/// the outcome without reading the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode(pub &'static str);

/// The `Retry-After` of a 503: the database or the server should be back by then.
pub const UNAVAILABLE_RETRY_SECS: u64 = 2;

/// Why a request failed. Construct with the variants or the small helpers below.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed body or parameter; `field` names the parameter when one is to blame.
    #[error("{message}")]
    BadRequest {
        message: String,
        field: Option<String>,
    },
    /// A partial id (a job's short id) that matches several: the candidates, newest first.
    #[error("{message}")]
    Ambiguous {
        field: String,
        message: String,
        candidates: Vec<String>,
    },
    /// Job or approval input violates its schema (WF §3.2): every problem at once.
    #[error("{}", invalid_input_message(.0))]
    InvalidInput(Vec<FieldError>),
    /// Missing, invalid or expired credentials.
    #[error("{message}")]
    Unauthorized {
        reason: AuthFailure,
        message: String,
    },
    #[error("{message}")]
    Forbidden { message: String },
    /// An unknown resource; `what` reads `job 0195…`, `workspace 'prod'`.
    #[error("{what} not found")]
    NotFound { what: String },
    /// An unknown route under `/api`, `/hooks` or `/worker`.
    #[error("no route for {method} {path}")]
    NoRoute { method: String, path: String },
    /// The route exists but not for this method.
    #[error("method {method} is not allowed for {path}")]
    MethodNotAllowed { method: String, path: String },
    /// Auth routes while authentication is off.
    #[error("authentication is disabled on this server")]
    AuthDisabled,
    /// The resource's state forbids the operation.
    #[error("{message}")]
    Conflict {
        kind: ConflictKind,
        message: String,
        /// For unique-key clashes: the field that clashed.
        field: Option<String>,
    },
    /// A retired route, or a workspace revision no longer retained.
    #[error("{message}")]
    Gone { message: String },
    #[error("request body is too large{}", limit_text(*.limit))]
    PayloadTooLarge {
        /// The limit in bytes, when known.
        limit: Option<usize>,
    },
    #[error("request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    /// The client sent its body too slowly, or the answer took longer than
    /// `http.request_timeout_secs` (docs/security.md).
    #[error("the request took too long (a stalled body or a slow answer); try again")]
    RequestTimeout,
    /// The request was valid but a workflow template failed while creating the job.
    #[error("{message}")]
    RenderError { message: String },
    /// [P2] per-client rate limits.
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// The database is unreachable or the server is shutting down.
    #[error("{message}")]
    Unavailable { message: String },
    /// Anything unexpected. Logged with its cause; the client sees a generic message.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Which 401 it is (API §1.3 and §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    Unauthorized,
    InvalidCredentials,
    RefreshTokenReused,
}

/// Which 409 it is (API §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictKind {
    /// Cancelling a job that already ended.
    AlreadyTerminal,
    /// [P2] deciding an approval that is not waiting.
    NotSuspended,
    /// Restarting a job that has not finished yet (docs/restart.md).
    NotTerminal,
    /// A worker request whose lease is not the step's current active lease (API §7.4).
    StaleLease,
    /// A unique-key clash or another state conflict.
    Conflict,
}

impl ConflictKind {
    fn code(self) -> &'static str {
        match self {
            ConflictKind::AlreadyTerminal => "already_terminal",
            ConflictKind::NotSuspended => "not_suspended",
            ConflictKind::NotTerminal => "not_terminal",
            ConflictKind::StaleLease => "stale_lease",
            ConflictKind::Conflict => "conflict",
        }
    }
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            message: message.into(),
            field: None,
        }
    }

    /// A bad parameter or body field, named in `field` and prefixed to the message.
    pub fn bad_field(field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        let field = field.into();
        ApiError::BadRequest {
            message: format!("{field}: {message}"),
            field: Some(field),
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        ApiError::NotFound { what: what.into() }
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::Unauthorized {
            reason: AuthFailure::Unauthorized,
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::Forbidden {
            message: message.into(),
        }
    }

    pub fn conflict(kind: ConflictKind, message: impl Into<String>) -> Self {
        ApiError::Conflict {
            kind,
            message: message.into(),
            field: None,
        }
    }

    pub fn stale_lease() -> Self {
        ApiError::conflict(
            ConflictKind::StaleLease,
            "the lease is not the step's current active lease",
        )
    }

    pub fn gone(message: impl Into<String>) -> Self {
        ApiError::Gone {
            message: message.into(),
        }
    }

    pub fn render_error(message: impl Into<String>) -> Self {
        ApiError::RenderError {
            message: message.into(),
        }
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError::Unavailable {
            message: message.into(),
        }
    }

    /// An unexpected failure (500) — unless the database is only out of reach for now (a
    /// locked SQLite file, no free connection), which is 503 `unavailable` with `Retry-After`.
    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        let error = error.into();
        if error.chain().any(crate::store::is_unavailable) {
            tracing::warn!("database unavailable: {error:#}");
            return ApiError::unavailable("the database is busy or unreachable; retry shortly");
        }
        ApiError::Internal(error)
    }

    /// The status and stable code of this kind.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest { .. } => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::InvalidInput(_) => (StatusCode::BAD_REQUEST, "invalid_input"),
            ApiError::Ambiguous { .. } => (StatusCode::BAD_REQUEST, "ambiguous"),
            ApiError::Unauthorized { reason, .. } => (
                StatusCode::UNAUTHORIZED,
                match reason {
                    AuthFailure::Unauthorized => "unauthorized",
                    AuthFailure::InvalidCredentials => "invalid_credentials",
                    AuthFailure::RefreshTokenReused => "refresh_token_reused",
                },
            ),
            ApiError::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound { .. } | ApiError::NoRoute { .. } => {
                (StatusCode::NOT_FOUND, "not_found")
            }
            ApiError::MethodNotAllowed { .. } => {
                (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
            }
            ApiError::AuthDisabled => (StatusCode::NOT_FOUND, "auth_disabled"),
            ApiError::Conflict { kind, .. } => (StatusCode::CONFLICT, kind.code()),
            ApiError::Gone { .. } => (StatusCode::GONE, "gone"),
            ApiError::PayloadTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            }
            ApiError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::RequestTimeout => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::RenderError { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "render_error"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// The JSON body (API §1.3). For internal errors the message hides the cause.
    pub fn body(&self, request_id: Option<&str>) -> ErrorBody {
        let (_, code) = self.status_and_code();
        let error = match self {
            ApiError::Internal(_) => match request_id {
                Some(id) => format!("internal server error (request id {id})"),
                None => "internal server error".to_owned(),
            },
            other => other.to_string(),
        };
        let (field, details) = match self {
            ApiError::BadRequest { field, .. } | ApiError::Conflict { field, .. } => {
                (field.clone(), None)
            }
            ApiError::InvalidInput(errors) => (
                errors.first().map(|error| error.field.clone()),
                Some(errors.iter().map(ErrorDetail::from).collect()),
            ),
            ApiError::Ambiguous { field, .. } => (Some(field.clone()), None),
            _ => (None, None),
        };
        let retry_after_secs = match self {
            ApiError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        };
        let candidates = match self {
            ApiError::Ambiguous { candidates, .. } => Some(candidates.clone()),
            _ => None,
        };
        ErrorBody {
            error,
            code: code.to_owned(),
            field,
            details,
            candidates,
            retry_after_secs,
        }
    }
}

impl From<ParamError> for ApiError {
    fn from(error: ParamError) -> Self {
        ApiError::bad_field(error.field, error.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let request_id = request_id::current();
        match &self {
            ApiError::Internal(cause) => {
                tracing::error!(
                    request_id = request_id.as_deref(),
                    code,
                    "internal error: {cause:#}"
                );
            }
            ApiError::Unavailable { message } => {
                tracing::warn!(
                    request_id = request_id.as_deref(),
                    code,
                    "unavailable: {}",
                    request_id::escape_control(message)
                );
            }
            _ => tracing::debug!(
                request_id = request_id.as_deref(),
                code,
                "request failed: {}",
                request_id::escape_control(&self.to_string())
            ),
        }
        let mut response = (status, Json(self.body(request_id.as_deref()))).into_response();
        response.extensions_mut().insert(ErrorCode(code));
        let headers = response.headers_mut();
        match &self {
            ApiError::Unauthorized { .. } => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::RateLimited { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            ApiError::Unavailable { .. } => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(UNAVAILABLE_RETRY_SECS),
                );
            }
            // What is left of a stalled body must not be read as the next request.
            ApiError::RequestTimeout => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}

/// The answer to a handler that panicked (installed with tower-http's `CatchPanicLayer`): an
/// internal error like any other, so the client still gets the JSON body and the request id.
pub(super) fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("non-string panic payload");
    ApiError::internal(anyhow::anyhow!("handler panicked: {message}")).into_response()
}

fn invalid_input_message(errors: &[FieldError]) -> String {
    match errors {
        [] => "invalid input".to_owned(),
        [only] => only.to_string(),
        [first, rest @ ..] => format!("{first} (and {} more)", rest.len()),
    }
}

fn limit_text(limit: Option<usize>) -> String {
    match limit {
        Some(bytes) if bytes % (1024 * 1024) == 0 => {
            format!(" (limit {} MiB)", bytes / (1024 * 1024))
        }
        Some(bytes) if bytes % 1024 == 0 => format!(" (limit {} KiB)", bytes / 1024),
        Some(bytes) => format!(" (limit {bytes} bytes)"),
        None => String::new(),
    }
}
