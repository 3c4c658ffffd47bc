//! The `/worker` routes of API §7: registration, heartbeats, long-poll claims, the fenced
//! start / logs / complete reports, and revision tarballs. Each is a thin translation onto the
//! orchestrator's worker functions — the same calls the embedded worker makes in-process — so
//! remote and embedded workers take one path (STYLE §11).
//!
//! Every route requires `Authorization: Bearer <worker_token>`, compared in constant time; a
//! server without `worker_token` refuses them all with 401 (API §7.1). Unknown `/worker` paths
//! still answer the JSON 404 of the machine surface.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Extension, FromRef, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{ApiError, ApiJson, ApiPath, ApiQuery, AppState, BodyLimit};
use crate::api::execute::OkReply;
use crate::api::job::JobMode;
use crate::api::limits;
use crate::api::protocol::{
    Capability, ClaimReply, ClaimRequest, CompleteRequest, DeregisterRequest, HeartbeatReply,
    HeartbeatRequest, LogBatch, LogBatchReply, RegisterReply, RegisterRequest, StartRequest,
};
use crate::api::query::{FromParams, Params};
use crate::api::{OkStatus, ParamError};
use crate::config::Secret;
use crate::orchestrator::workspace_token;
use crate::orchestrator::{Completion, OrchestratorError, StartOutcome};
use crate::runner::spec::{LogLine, Program};
use crate::store::{LeaseKey, StoreError, WorkerRegistration};
use crate::workspace::manager::{Encoding, TarballError};

/// The heartbeat interval suggested to workers (API §7.2), unless the lease timeout is so short
/// that three heartbeats would not fit in it.
const HEARTBEAT_INTERVAL_SECS: u64 = 5;

/// What the `/worker` surface needs besides the orchestrator.
#[derive(Debug, Clone)]
pub struct WorkerAccess {
    /// `worker_token`; `None` refuses every `/worker` request (API §7.1).
    pub token: Option<Secret>,
    /// `recovery.heartbeat_timeout_secs`: how long a lease lives without a heartbeat.
    pub lease_timeout_secs: u64,
    /// Cancelled when the server shuts down, so long-polling claims answer at once.
    pub shutdown: CancellationToken,
}

impl Default for WorkerAccess {
    fn default() -> Self {
        WorkerAccess {
            token: None,
            lease_timeout_secs: 60,
            shutdown: CancellationToken::new(),
        }
    }
}

impl FromRef<AppState> for WorkerAccess {
    fn from_ref(state: &AppState) -> Self {
        state.workers.clone()
    }
}

/// The `/worker` routes (API §7): method and path below `/worker`. The router is built from
/// this list, and tests walk it (issue #16 item 20).
pub(super) const PATTERNS: [(&str, &str); 9] = [
    ("POST", "/register"),
    ("POST", "/heartbeat"),
    ("POST", "/deregister"),
    ("POST", "/jobs/claim"),
    ("POST", "/jobs/{id}/steps/{step}/start"),
    ("POST", "/jobs/{id}/logs"),
    ("POST", "/jobs/{id}/steps/{step}/complete"),
    ("POST", "/jobs/{id}/complete"),
    ("GET", "/workspace/{file}"),
];

/// The handler of each of [`PATTERNS`].
fn handler(path: &str) -> MethodRouter<AppState> {
    match path {
        "/register" => post(register),
        "/heartbeat" => post(heartbeat),
        "/deregister" => post(deregister),
        "/jobs/claim" => post(claim),
        "/jobs/{id}/steps/{step}/start" => post(start),
        "/jobs/{id}/logs" => post(logs),
        "/jobs/{id}/steps/{step}/complete" => post(complete)
            .layer::<_, Infallible>(DefaultBodyLimit::max(limits::COMPLETE_BODY))
            .layer::<_, Infallible>(Extension(BodyLimit(limits::COMPLETE_BODY))),
        "/jobs/{id}/complete" => post(retired_job_complete),
        _ => get(tarball),
    }
}

/// The `/worker` routes, behind the worker-token check.
pub(super) fn worker_routes(state: &AppState) -> Router<AppState> {
    PATTERNS
        .iter()
        .fold(Router::new(), |router, (_, path)| {
            router.route(path, handler(path))
        })
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_worker_token,
        ))
}

async fn require_worker_token(
    State(access): State<WorkerAccess>,
    mut request: Request,
    next: Next,
) -> Response {
    // A pod's workspace token (API §7.3) opens the tarball route only; the tarball handler
    // checks what it grants.
    let presented = super::bearer_token(request.headers());
    if let Some(presented) = presented
        && presented.starts_with(workspace_token::PREFIX)
    {
        let tarball = request
            .extensions()
            .get::<MatchedPath>()
            .is_some_and(|matched| matched.as_str().ends_with("/workspace/{file}"));
        if !tarball {
            return ApiError::unauthorized("a workspace token grants only a workspace tarball")
                .into_response();
        }
        let grant = WorkspaceTokenGrant(presented.to_owned());
        request.extensions_mut().insert(grant);
        return next.run(request).await;
    }
    let Some(token) = &access.token else {
        return ApiError::unauthorized(
            "remote workers are disabled: the server has no worker_token",
        )
        .into_response();
    };
    match presented {
        Some(presented) if same_secret(presented, token.expose()) => next.run(request).await,
        Some(_) => ApiError::unauthorized("invalid worker token").into_response(),
        None => ApiError::unauthorized("a worker token is required (Authorization: Bearer …)")
            .into_response(),
    }
}

/// Compares two secrets in constant time: both are hashed first, so neither the length nor
/// the position of the first difference shows in the timing.
pub(super) fn same_secret(presented: &str, expected: &str) -> bool {
    use sha2::{Digest, Sha256};
    let a = Sha256::digest(presented.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Errors of the worker routes: an unknown worker is 404 so the worker registers again
/// (API §7.2); a report about a job that does not exist has no current lease (409).
fn worker_error(error: OrchestratorError) -> ApiError {
    match error {
        OrchestratorError::Store(StoreError::WorkerNotFound(id)) => {
            ApiError::not_found(format!("worker {id}"))
        }
        OrchestratorError::JobNotFound(_) => ApiError::stale_lease(),
        other => ApiError::from(other),
    }
}

async fn register(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<RegisterRequest>,
) -> Result<Json<RegisterReply>, ApiError> {
    let registration = request.normalize()?;
    let capabilities = registration
        .capabilities
        .iter()
        .map(|capability| {
            match capability {
                Capability::Script => "script",
                Capability::Docker => "docker",
                Capability::Kubernetes => "kubernetes",
            }
            .to_owned()
        })
        .collect();
    let worker = state
        .jobs()?
        .register_worker(&WorkerRegistration {
            name: registration.name,
            version: registration.version,
            capabilities,
            tags: registration.tags,
            max_concurrent: registration.max_concurrent,
        })
        .await
        .map_err(worker_error)?;
    let lease_timeout_secs = state.workers.lease_timeout_secs;
    Ok(Json(RegisterReply {
        worker_id: worker.worker_id,
        heartbeat_interval_secs: HEARTBEAT_INTERVAL_SECS.min((lease_timeout_secs / 3).max(1)),
        lease_timeout_secs,
    }))
}

async fn heartbeat(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<HeartbeatRequest>,
) -> Result<Json<HeartbeatReply>, ApiError> {
    request.validate()?;
    let reply = state
        .jobs()?
        .heartbeat(request.worker_id, &request.leases, &request.pinned_jobs)
        .await
        .map_err(worker_error)?;
    Ok(Json(HeartbeatReply {
        status: OkStatus::Ok,
        cancel: reply.cancel,
        unknown: reply.unknown,
        release_jobs: reply.release_jobs,
    }))
}

/// A worker shutting down (API §7.2): it becomes `inactive`, its leases are lost at once, and
/// a claim of it still pending never gets a step.
async fn deregister(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<DeregisterRequest>,
) -> Result<Json<OkReply>, ApiError> {
    state
        .jobs()?
        .deregister_worker(request.worker_id)
        .await
        .map_err(worker_error)?;
    Ok(Json(OkReply::OK))
}

/// Long poll (API §7.3): answers as soon as a step is claimable, after `wait_secs` with 204,
/// or at once with 204 when the server shuts down.
async fn claim(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<ClaimRequest>,
) -> Result<Response, ApiError> {
    request.validate()?;
    let orchestrator = state.jobs()?;
    let wait = Duration::from_secs(u64::from(request.wait_secs));
    let claimed = tokio::select! {
        claimed = orchestrator.claim(request.worker_id, wait) => claimed.map_err(worker_error)?,
        () = state.workers.shutdown.cancelled() => None,
    };
    let Some(claimed) = claimed else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    Ok(Json(ClaimReply {
        lease_id: claimed.lease.lease_id,
        lease_timeout_secs: state.workers.lease_timeout_secs,
        lease_expires_at: claimed.lease.expires_at,
        revision: claimed.revision,
        mode: JobMode::from(claimed.mode),
        action_type: match claimed.spec.program {
            Program::Script { .. } => "script",
            Program::Container { .. } => claimed.spec.runner.as_str(),
        }
        .to_owned(),
        runner: claimed.spec.runner.as_str().to_owned(),
        action_image: claimed.spec.image.clone(),
        workspace_token: claimed.workspace_token,
        spec: claimed.spec,
    })
    .into_response())
}

fn lease_key(job_id: Uuid, step_name: String, worker_id: Uuid, lease_id: Uuid) -> LeaseKey {
    LeaseKey {
        lease_id,
        worker_id,
        job_id,
        step_name,
    }
}

async fn start(
    State(state): State<AppState>,
    ApiPath((job_id, step)): ApiPath<(Uuid, String)>,
    ApiJson(request): ApiJson<StartRequest>,
) -> Result<Json<OkReply>, ApiError> {
    let key = lease_key(job_id, step, request.worker_id, request.lease_id);
    match state.jobs()?.start_step(&key).await.map_err(worker_error)? {
        StartOutcome::Started => Ok(Json(OkReply::OK)),
        // The job was cancelled after the claim: the worker must not run the step.
        StartOutcome::Cancelled => Err(ApiError::stale_lease()),
    }
}

async fn logs(
    State(state): State<AppState>,
    ApiPath(job_id): ApiPath<Uuid>,
    ApiJson(batch): ApiJson<LogBatch>,
) -> Result<Json<LogBatchReply>, ApiError> {
    let lines = batch
        .lines
        .into_iter()
        .map(|line| LogLine {
            ts: line.ts,
            stream: line.stream,
            step: batch.step_name.clone(),
            attempt: None,
            line: line.line,
        })
        .collect();
    let key = lease_key(job_id, batch.step_name, batch.worker_id, batch.lease_id);
    let ack = state
        .jobs()?
        .append_logs(&key, batch.offset, lines)
        .await
        .map_err(worker_error)?;
    Ok(Json(LogBatchReply {
        status: OkStatus::Ok,
        cancel: ack.cancel,
    }))
}

async fn complete(
    State(state): State<AppState>,
    ApiPath((job_id, step)): ApiPath<(Uuid, String)>,
    ApiJson(request): ApiJson<CompleteRequest>,
) -> Result<Json<OkReply>, ApiError> {
    let key = lease_key(job_id, step, request.worker_id, request.lease_id);
    let completion = state
        .jobs()?
        .complete_step(&key, request.result())
        .await
        .map_err(worker_error)?;
    Ok(Json(match completion {
        Completion::Applied => OkReply::OK,
        Completion::Duplicate => OkReply::DUPLICATE,
    }))
}

/// The whole-job completion of earlier releases (API §7.6): the server owns the DAG now.
async fn retired_job_complete() -> ApiError {
    ApiError::gone("whole-job completion is retired: report each step's complete instead")
}

/// A tarball request that presented a workspace token instead of the worker token.
#[derive(Debug, Clone)]
struct WorkspaceTokenGrant(String);

/// `?revision=<rev>` of a tarball request.
#[derive(Debug)]
struct TarballQuery {
    revision: Option<String>,
}

impl FromParams for TarballQuery {
    fn from_params(params: &Params) -> Result<Self, ParamError> {
        Ok(TarballQuery {
            revision: params.text("revision"),
        })
    }
}

/// `GET /worker/workspace/{ws}.tar.zst|.tar.gz[?revision=]` (API §7.7), with the revision as
/// ETag.
async fn tarball(
    State(state): State<AppState>,
    ApiPath(file): ApiPath<String>,
    ApiQuery(query): ApiQuery<TarballQuery>,
    grant: Option<Extension<WorkspaceTokenGrant>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (ws, encoding) = Encoding::ALL
        .iter()
        .find_map(|encoding| {
            file.strip_suffix(&format!(".{}", encoding.extension()))
                .map(|ws| (ws.to_owned(), *encoding))
        })
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "archive '{file}' (ask for <workspace>.tar.zst or <workspace>.tar.gz)"
            ))
        })?;
    if let Some(Extension(WorkspaceTokenGrant(token))) = &grant {
        state
            .jobs()?
            .check_workspace_token(token, &ws, query.revision.as_deref())
            .await
            .map_err(ApiError::unauthorized)?;
    }
    let workspaces = std::sync::Arc::clone(state.jobs()?.workspaces());
    if !workspaces.names().contains(&ws) {
        return Err(ApiError::not_found(format!("workspace '{ws}'")));
    }
    let revision = match &query.revision {
        Some(revision) => workspaces.revision(&ws, revision).ok_or_else(|| {
            ApiError::gone(format!(
                "revision {revision} of workspace '{ws}' is no longer retained"
            ))
        })?,
        None => workspaces
            .get(&ws)
            .ok_or_else(|| ApiError::not_found(format!("a loaded revision of workspace '{ws}'")))?,
    };
    let etag = format!("\"{}\"", revision.revision);
    let etag_value = HeaderValue::from_str(&etag).map_err(ApiError::internal)?;
    let revision_value = HeaderValue::from_str(&revision.revision).map_err(ApiError::internal)?;
    if if_none_match(&headers, &etag) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        response.headers_mut().insert(header::ETAG, etag_value);
        response.headers_mut().insert("x-revision", revision_value);
        return Ok(response);
    }
    let built = {
        let revision = std::sync::Arc::clone(&revision);
        tokio::task::spawn_blocking(move || workspaces.tarball(&revision, encoding))
            .await
            .map_err(ApiError::internal)?
    };
    let gone = || {
        ApiError::gone(format!(
            "revision {} of workspace '{ws}' is no longer retained",
            revision.revision
        ))
    };
    let path = match built {
        Ok(path) => path,
        Err(TarballError::Gone(_)) => return Err(gone()),
        Err(error) => return Err(ApiError::internal(error)),
    };
    // Opened before answering: a file pruned meanwhile is gone, one pruned later still reads.
    let file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Err(gone()),
        Err(error) => return Err(ApiError::internal(error)),
    };
    let length = file.metadata().await.map_err(ApiError::internal)?.len();
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    let mut response = body.into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(header::ETAG, etag_value);
    response_headers.insert("x-revision", revision_value);
    response_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(encoding.content_type()),
    );
    response_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    Ok(response)
}

/// Whether `If-None-Match` names `etag` (or `*`); weak tags compare equal (RFC 9110 §13.1.2).
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == etag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::router;
    use crate::server::tests::{post_json, send, state};

    #[tokio::test]
    async fn without_a_configured_token_every_worker_route_is_401() {
        let request = post_json("/worker/register", "{}");
        let reply = send(router(state(true)), request).await;
        assert_eq!(reply.status.as_u16(), 401);
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
        assert_eq!(reply.body["code"], "unauthorized");
    }

    #[tokio::test]
    async fn a_complete_report_is_limited_to_2_mib() {
        let mut with_token = state(true);
        with_token.workers.token = Some(Secret::new("t"));
        let id = Uuid::new_v4();
        let body = format!("{{\"output\": \"{}\"}}", "x".repeat(3 * 1024 * 1024));
        let request = axum::http::Request::post(format!("/worker/jobs/{id}/steps/s/complete"))
            .header("content-type", "application/json")
            .header("authorization", "Bearer t")
            .body(axum::body::Body::from(body))
            .expect("request builds");
        let reply = send(router(with_token), request).await;
        assert_eq!(reply.status.as_u16(), 413);
        assert_eq!(
            reply.body["error"],
            "request body is too large (limit 2 MiB)"
        );
    }

    fn with_token() -> AppState {
        let mut state = state(true);
        state.workers.token = Some(Secret::new("t"));
        state
    }

    #[tokio::test]
    async fn the_bearer_scheme_is_case_insensitive() {
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            let body = serde_json::json!({"worker_id": Uuid::new_v4()}).to_string();
            let request = axum::http::Request::post("/worker/deregister")
                .header("content-type", "application/json")
                .header("authorization", format!("{scheme} t"))
                .body(axum::body::Body::from(body))
                .expect("request builds");
            let reply = send(router(with_token()), request).await;
            // Past the token check: this test state has no job engine.
            assert_eq!(
                reply.body["code"], "unavailable",
                "{scheme}: {:?}",
                reply.body
            );
        }
    }

    #[tokio::test]
    async fn a_heartbeat_renews_at_most_400_leases() {
        let heartbeat = |count: usize| {
            let leases: Vec<Uuid> = (0..count).map(|_| Uuid::new_v4()).collect();
            let body = serde_json::json!({"worker_id": Uuid::new_v4(), "leases": leases});
            axum::http::Request::post("/worker/heartbeat")
                .header("content-type", "application/json")
                .header("authorization", "Bearer t")
                .body(axum::body::Body::from(body.to_string()))
                .expect("request builds")
        };
        let refused = send(router(with_token()), heartbeat(401)).await;
        assert_eq!(refused.status.as_u16(), 400, "{:?}", refused.body);
        assert_eq!(refused.body["field"], "leases");
        assert_eq!(refused.body["code"], "bad_request");
        let allowed = send(router(with_token()), heartbeat(400)).await;
        assert_eq!(allowed.body["code"], "unavailable", "{:?}", allowed.body);
    }

    #[test]
    fn secrets_compare_by_content_only() {
        assert!(same_secret("a-long-worker-token", "a-long-worker-token"));
        assert!(!same_secret("a-long-worker-token", "a-long-worker-tokeN"));
        assert!(!same_secret("", "x"));
    }

    #[test]
    fn if_none_match_accepts_lists_weak_tags_and_star() {
        let mut headers = HeaderMap::new();
        assert!(!if_none_match(&headers, "\"ab\""));
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"cd\", W/\"ab\""),
        );
        assert!(if_none_match(&headers, "\"ab\""));
        assert!(!if_none_match(&headers, "\"ef\""));
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(if_none_match(&headers, "\"ef\""));
    }
}
