//! Reloading a workspace from its source on request: `POST /api/workspaces/{ws}/refresh`
//! (API §3.2) for people and scripts, and `POST /hooks/_workspaces/{ws}/refresh` for a git
//! host's push webhook.
//!
//! *Who may refresh* (docs/authentication.md): without authentication anyone; with it an admin,
//! or a user who may `run` at least one task of the workspace — a refresh changes what those
//! tasks do, and nothing a viewer could not cause by waiting for the next poll. The push hook
//! has no user: it needs the workspace's `webhook_secret`, checked like a trigger's secret
//! (`Authorization: Bearer`, or an HMAC-SHA256 body signature in `X-Hub-Signature-256` /
//! `X-Stroem-Signature`), or GitLab's `X-Gitlab-Token`. It answers 202 at once and leaves the
//! fetch to the poller's next round (within a second): a git host waits only seconds for an
//! answer, and a burst of pushes makes one fetch.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{Method, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};

use super::extract::body_error;
use super::routes::{Entry, entry};
use super::{ApiError, ApiPath, AppState, BodyLimit};
use crate::auth::Caller;
use crate::config::Access;
use crate::webhook::{self, Call};
use crate::workspace::manager::{ManagerError, WorkspaceView, log_outcome};

/// The `/api` routes of this module, for the route table.
pub(super) fn table() -> Vec<Entry> {
    vec![entry(
        Method::POST,
        "/workspaces/{ws}/refresh",
        "workspace.refresh",
        post(refresh_workspace),
    )]
}

async fn refresh_workspace(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(ws): ApiPath<String>,
) -> Result<Json<WorkspaceView>, ApiError> {
    let workspaces = state.jobs()?.workspaces();
    let unknown = || ApiError::not_found(format!("workspace '{ws}'"));
    workspaces.view(&ws).ok_or_else(unknown)?;
    if !may_refresh(&state, &caller, &ws) {
        return Err(ApiError::forbidden(format!(
            "refreshing workspace '{ws}' needs 'run' access to one of its tasks, or an admin"
        )));
    }
    let registry = std::sync::Arc::clone(workspaces);
    let name = ws.clone();
    let refreshed =
        tokio::task::spawn_blocking(move || registry.refresh(&name, chrono::Utc::now()))
            .await
            .map_err(ApiError::internal)?;
    match refreshed {
        Ok(Some(outcome)) => log_outcome(&outcome),
        Ok(None) => return Err(unknown()),
        Err(ManagerError::TooSoon(_)) => {
            return Err(ApiError::RateLimited {
                retry_after_secs: 5,
            });
        }
        Err(other) => return Err(ApiError::internal(other)),
    }
    let mut view = workspaces.view(&ws).ok_or_else(unknown)?;
    super::routes::count_visible(&state, &caller, &mut view)?;
    Ok(Json(view))
}

fn may_refresh(state: &AppState, caller: &Caller, ws: &str) -> bool {
    if state.security.auth.is_none() || caller.is_admin() {
        return true;
    }
    let Ok(orchestrator) = state.jobs() else {
        return false;
    };
    orchestrator
        .workspaces()
        .tasks(ws)
        .unwrap_or_default()
        .iter()
        .any(|task| state.access(caller, ws, &task.name) >= Access::Run)
}

/// `POST /hooks/_workspaces/{ws}/refresh`: a push webhook. 404 for an unknown workspace and
/// for one without `webhook_secret` (like an unknown hook), 401 for a wrong secret.
pub(super) async fn push_hook(
    State(state): State<AppState>,
    ApiPath(ws): ApiPath<String>,
    request: Request,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let workspaces = state.jobs()?.workspaces();
    let secret = workspaces
        .push_secret(&ws)
        .ok_or_else(|| ApiError::not_found(format!("push webhook of workspace '{ws}'")))?;
    // GitLab sends its secret token as it is, in its own header.
    let gitlab_token = request
        .headers()
        .get("x-gitlab-token")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let headers: Vec<(String, Vec<u8>)> = request
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    let Query(query) =
        Query::<Vec<(String, String)>>::try_from_uri(request.uri()).map_err(|rejection| {
            ApiError::bad_request(format!("malformed query string: {}", rejection.body_text()))
        })?;
    let bearer = super::bearer_token(request.headers()).map(str::to_owned);
    let limit = request.extensions().get::<BodyLimit>().map(|limit| limit.0);
    let method = request.method().as_str().to_owned();
    let body = Bytes::from_request(request, &state)
        .await
        .map_err(|rejection| body_error(&rejection, limit))?;
    let call = Call {
        method: &method,
        headers: &headers,
        query: &query,
        body: &body,
        bearer: bearer.as_deref(),
    };
    let by_gitlab = gitlab_token.is_some_and(|token| webhook::token_matches(&token, &secret));
    if !by_gitlab {
        webhook::authenticate(Some(&secret), &call)
            .map_err(|error| ApiError::unauthorized(error.to_string()))?;
    }
    workspaces.poll_soon(&ws);
    tracing::info!(workspace = %ws, "push webhook: the workspace is fetched at the next poll");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"workspace": ws, "status": "queued"})),
    ))
}
