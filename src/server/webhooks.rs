//! `GET|POST /hooks/{name}` (API §6): find the enabled webhook trigger with that name, check
//! the caller with [`crate::webhook::authenticate`], turn the request into job input with
//! [`crate::webhook::input`] and create the job through the orchestrator. Every refusal happens
//! before anything is written. `mode: async` answers 202 at once; `mode: sync` [P2] waits up to
//! the trigger's `timeout_secs` and answers 200 with the job's status and output once it ended,
//! else 202 with its status.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::StatusCode;
use axum::routing::get;

use std::time::Duration;

use super::extract::body_error;
use super::stream::Shutdown;
use super::{ApiError, ApiPath, AppState, BodyLimit};
use crate::api::WebhookReply;
use crate::engine::{JobState, mask_value};
use crate::orchestrator::Orchestrator;
use crate::webhook::{self, Call};
use crate::workflow::model::WebhookMode;

/// How often `mode: sync` looks at the job while it waits.
const SYNC_POLL: Duration = Duration::from_millis(100);

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
    let shutdown = request.extensions().get::<Shutdown>().cloned();
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
    let mut reply = WebhookReply {
        job_id: job.id,
        trigger: hook.trigger.clone(),
        task: hook.task.clone(),
        workspace: hook.workspace.clone(),
        status: None,
        output: None,
    };
    if hook.mode == WebhookMode::Async {
        return Ok((StatusCode::ACCEPTED, Json(reply)));
    }
    let wait = Duration::from_secs(hook.timeout_secs);
    let job = wait_for_end(orchestrator, job, wait, shutdown).await?;
    reply.status = Some(job.status);
    if job.is_finished() {
        reply.output = Some(mask_value(&job.output, &orchestrator.mask_of(&job)));
        return Ok((StatusCode::OK, Json(reply)));
    }
    Ok((StatusCode::ACCEPTED, Json(reply)))
}

/// `mode: sync` [P2]: the job once it ended, or as it is after `wait` (or at shutdown).
async fn wait_for_end(
    orchestrator: &Orchestrator,
    mut job: JobState,
    wait: Duration,
    shutdown: Option<Shutdown>,
) -> Result<JobState, ApiError> {
    let deadline = tokio::time::Instant::now() + wait;
    let stopping = async {
        match shutdown {
            Some(Shutdown(token)) => token.cancelled_owned().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stopping);
    while !job.is_finished() {
        let pause = SYNC_POLL.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
        if pause.is_zero() {
            break;
        }
        tokio::select! {
            () = &mut stopping => break,
            () = tokio::time::sleep(pause) => {}
        }
        job = orchestrator
            .store()
            .get_job(job.id)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::not_found(format!("job {}", job.id)))?;
    }
    Ok(job)
}
