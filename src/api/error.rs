//! The one error body every failing request gets (API §1.3), whatever produced it: a handler, a
//! rejected body, an unknown route. Clients (the CLI, the worker) parse it back with the same
//! type, so `error` is what they print and `code` what they branch on.

use serde::{Deserialize, Serialize};

use crate::workflow::input::FieldError;

/// `{"error": "...", "code": "...", "field": "...", "details": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Human-readable message; seed clients print this field.
    pub error: String,
    /// Stable machine code (`bad_request`, `not_found`, `stale_lease`, …).
    pub code: String,
    /// Path of the offending parameter, when one is to blame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every problem, when there are several (input validation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<ErrorDetail>>,
    /// 400 `ambiguous` only: the ids a partial job id matched (at most ten).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidates: Option<Vec<String>>,
    /// 429 only: seconds until the client may try again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
}

/// One entry of `details`: a field path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub field: String,
    pub message: String,
}

impl From<&FieldError> for ErrorDetail {
    fn from(error: &FieldError) -> Self {
        ErrorDetail {
            field: error.field.clone(),
            message: error.message.clone(),
        }
    }
}

/// A query or path parameter, or a field of a small request body, that does not hold a usable
/// value. The server answers it with 400 `bad_request` naming `field`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ParamError {
    pub field: String,
    pub message: String,
}

impl ParamError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ParamError {
            field: field.into(),
            message: message.into(),
        }
    }
}
