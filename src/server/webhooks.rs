//! `GET|POST /hooks/{name}` (API §6): find the enabled webhook trigger with that name, check
//! the caller with [`crate::webhook::authenticate`], turn the request into job input with
//! [`crate::webhook::input`] and create the job through the orchestrator. Every refusal happens
//! before anything is written.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::StatusCode;
use axum::routing::get;

use super::extract::body_error;
use super::{ApiError, ApiPath, AppState, BodyLimit};
use crate::api::WebhookReply;
use crate::webhook::{self, Call};

/// The `/hooks` routes.
pub(super) fn webhook_routes() -> Router<AppState> {
    Router::new().route("/{name}", get(call_webhook).post(call_webhook))
}

async fn call_webhook(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    request: Request,
) -> Result<(StatusCode, Json<WebhookReply>), ApiError> {
    let orchestrator = state.jobs()?;
    // A disabled hook answers exactly like an unknown one (WF §15: "its webhook answers 404").
    let hook = orchestrator
        .webhook(&name)?
        .filter(|hook| hook.enabled)
        .ok_or_else(|| ApiError::not_found(format!("webhook '{name}'")))?;

    let method = request.method().as_str().to_owned();
    let headers: Vec<(String, Vec<u8>)> = request
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    let Query(query) =
        Query::<Vec<(String, String)>>::try_from_uri(request.uri()).map_err(|rejection| {
            ApiError::bad_request(format!("malformed query string: {}", rejection.body_text()))
        })?;
    let limit = request.extensions().get::<BodyLimit>().map(|limit| limit.0);
    let body = Bytes::from_request(request, &state)
        .await
        .map_err(|rejection| body_error(&rejection, limit))?;

    let call = Call {
        method: &method,
        headers: &headers,
        query: &query,
        body: &body,
    };
    webhook::authenticate(hook.secret.as_deref(), &call)
        .map_err(|error| ApiError::unauthorized(error.to_string()))?;
    let input = webhook::input(&call).map_err(|error| ApiError::bad_field("body", error))?;
    let job = orchestrator.fire_webhook(&hook, input).await?;
    tracing::info!(job_id = %job.id, webhook = %name, workspace = %hook.workspace, "webhook fired");
    Ok((
        StatusCode::ACCEPTED,
        Json(WebhookReply {
            job_id: job.id,
            trigger: hook.trigger,
            task: hook.task,
            workspace: hook.workspace,
        }),
    ))
}
