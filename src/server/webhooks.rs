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
use crate::api::{Params, WebhookJobReply, WebhookReply};
use crate::engine::JobState;
use crate::orchestrator::{Orchestrator, WebhookRequest};
use crate::webhook::{self, Call};
use crate::workflow::model::WebhookMode;

/// How often `mode: sync` looks at the job while it waits.
const SYNC_POLL: Duration = Duration::from_millis(100);

/// The `/hooks` routes.
pub(super) fn webhook_routes() -> Router<AppState> {
    Router::new()
        .route("/{name}", get(call_webhook).post(call_webhook))
        .route("/{name}/jobs/{job_id}", get(webhook_job))
        // `_` starts no trigger name (WF §2.3), so this path never shadows a trigger's hook.
        .route(
            "/_workspaces/{ws}/refresh",
            axum::routing::post(super::refresh::push_hook),
        )
}

/// A webhook request that passed authentication, with the parts job input is made of.
struct Received {
    hook: WebhookRequest,
    method: String,
    headers: Vec<(String, Vec<u8>)>,
    query: Vec<(String, String)>,
    body: Bytes,
    /// The `Authorization: Bearer` token, if any.
    bearer: Option<String>,
    shutdown: Option<Shutdown>,
}

impl Received {
    fn call(&self) -> Call<'_> {
        Call {
            method: &self.method,
            headers: &self.headers,
            query: &self.query,
            body: &self.body,
            bearer: self.bearer.as_deref(),
        }
    }
}

/// Finds the enabled hook `name`, reads the request (body limit) and checks the caller.
async fn receive(state: &AppState, name: &str, request: Request) -> Result<Received, ApiError> {
    // A disabled hook answers exactly like an unknown one (WF §15: "its webhook answers 404").
    let hook = state
        .jobs()?
        .webhook(name)?
        .filter(|hook| hook.enabled)
        .ok_or_else(|| ApiError::not_found(format!("webhook '{name}'")))?;
    let method = request.method().as_str().to_owned();
    let headers = request
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
    let shutdown = request.extensions().get::<Shutdown>().cloned();
    let body = Bytes::from_request(request, state)
        .await
        .map_err(|rejection| body_error(&rejection, limit))?;
    let received = Received {
        hook,
        method,
        headers,
        query,
        body,
        bearer,
        shutdown,
    };
    webhook::authenticate(received.hook.secret.as_deref(), &received.call())
        .map_err(|error| ApiError::unauthorized(error.to_string()))?;
    Ok(received)
}

async fn call_webhook(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    request: Request,
) -> Result<(StatusCode, Json<WebhookReply>), ApiError> {
    let answer = answer_webhook(&state, &name, request).await;
    // By outcome only: a label per hook name would let callers of unknown names add series.
    let outcome = match &answer {
        Ok((StatusCode::OK, _)) => "completed",
        Ok(_) => "accepted",
        Err(error) => error.status_and_code().1,
    };
    state.metrics.metrics.webhook_call(outcome);
    answer
}

async fn answer_webhook(
    state: &AppState,
    name: &str,
    request: Request,
) -> Result<(StatusCode, Json<WebhookReply>), ApiError> {
    let orchestrator = state.jobs()?;
    let received = receive(state, name, request).await?;
    let call = received.call();
    let hook = &received.hook;
    let input = webhook::input(&call).map_err(|error| ApiError::bad_field("body", error))?;
    let job = orchestrator.fire_webhook(hook, input).await?;
    tracing::info!(
        job_id = %job.id,
        webhook = %super::request_id::escape_control(name),
        workspace = %hook.workspace,
        "webhook fired"
    );
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
    let job = wait_for_end(orchestrator, job, wait, received.shutdown.clone()).await?;
    reply.status = Some(job.status);
    if job.is_finished() {
        reply.output = Some(orchestrator.view_mask(&job).value(&job.output));
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

/// `GET /hooks/{name}/jobs/{job_id}?wait=true&timeout=30` [P2]: a job this webhook created, with
/// the webhook's own authentication — its Bearer token, since a `GET` has no body to sign
/// (docs/deviations.md). Other jobs are 404.
async fn webhook_job(
    State(state): State<AppState>,
    ApiPath((name, part)): ApiPath<(String, String)>,
    request: Request,
) -> Result<(StatusCode, Json<WebhookJobReply>), ApiError> {
    let orchestrator = state.jobs()?;
    let received = receive(&state, &name, request).await?;
    let params = Params::new(received.query.clone());
    let wait = match params.get("wait") {
        None | Some("false" | "0") => false,
        Some("true" | "1") => true,
        Some(other) => {
            return Err(ApiError::bad_field(
                "wait",
                format!("must be true or false, found '{other}'"),
            ));
        }
    };
    let timeout: u64 = params.number("timeout", 30, 1, 300)?;
    let hook = &received.hook;
    let source = format!("{}/{}", hook.workspace, hook.trigger);
    // Only this webhook's jobs are candidates: a partial id reveals no other job.
    let of = format!(" of webhook '{name}'");
    let part = super::routes::job_ref(&part)?;
    let job_id = match part.exact() {
        Some(id) => id,
        None => {
            let ids = orchestrator
                .store()
                .find_job_ids(
                    part.start_range(),
                    part.digits(),
                    None,
                    Some(("webhook", &source)),
                    crate::api::job_ref::MAX_CANDIDATES + 1,
                )
                .await
                .map_err(ApiError::internal)?;
            super::routes::one_job(&part, ids, &of)?
        }
    };
    let job = orchestrator
        .store()
        .get_job(job_id)
        .await
        .map_err(ApiError::internal)?
        .filter(|job| job.source_type == "webhook" && job.source_id.as_deref() == Some(&source))
        .ok_or_else(|| ApiError::not_found(format!("job {job_id}{of}")))?;
    let job = if wait {
        let wait = Duration::from_secs(timeout);
        wait_for_end(orchestrator, job, wait, received.shutdown.clone()).await?
    } else {
        job
    };
    let status = if wait && !job.is_finished() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(WebhookJobReply {
            job_id: job.id,
            trigger: hook.trigger.clone(),
            task: hook.task.clone(),
            status: job.status,
            output: orchestrator.view_mask(&job).value(&job.output),
            created_at: job.created_at,
            completed_at: job.completed_at,
        }),
    ))
}
