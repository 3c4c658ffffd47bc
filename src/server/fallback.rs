//! What answers when no route matches. Under `/api`, `/hooks` and `/worker` that is always a
//! JSON 404 (API §1.1) — a client mistyping a path must never get the web UI's HTML back — and
//! a wrong method gets a JSON 405. Everything else belongs to the web UI
//! (`super::ui`).

use axum::extract::OriginalUri;
use axum::http::Method;

use super::error::ApiError;

/// JSON 404 for unknown paths on the machine surfaces.
pub async fn no_route(method: Method, OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::NoRoute {
        method: method.to_string(),
        path: uri.path().to_owned(),
    }
}

/// JSON 405 for a known path with another method.
pub async fn method_not_allowed(method: Method, OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_owned(),
    }
}
