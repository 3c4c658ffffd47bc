//! The public `/api` routes of API §3 and §4.2: thin translations between the wire types of
//! [`crate::api`] and the [`Orchestrator`], which does the work.

use std::sync::LazyLock;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde_json::Value;
use uuid::Uuid;

use super::{ApiError, ApiJson, ApiPath, ApiQuery, AppState, ConflictKind, Paginated, views};
use crate::api::ParamError;
use crate::api::execute::{
    ApproveRequest, DecisionReply, ExecuteRequest, JobStatusReply, MAX_REJECTION_REASON,
    RejectRequest,
};
use crate::api::job::{JobDetail, JobMode, JobSummary};
use crate::api::job_ref::{self, JobRef};
use crate::api::query::{FromParams, JobListQuery, LogQuery, Page, Params};
use crate::api::{WorkerDetail, WorkerView};
use crate::auth::Caller;
use crate::config::Access;
use crate::engine::{JobState, JobStatus};
use crate::orchestrator::{Decision, JobSource, Orchestrator, OrchestratorError};
use crate::store::{JobFilter, Visibility};
use crate::workspace::manager::{TaskDetail, TaskSummary, TriggerView, WorkspaceView};

/// One `/api` route: what the gate's audit trail calls it, and whether it needs credentials.
#[derive(Debug, Clone)]
pub(super) struct ApiRoute {
    pub method: Method,
    /// The axum pattern below `/api` (`/jobs/{id}/cancel`).
    pub path: &'static str,
    /// The audit trail's `action` (`job.cancel`).
    pub action: &'static str,
}

/// A route of the table with its handler.
pub(super) struct Entry {
    pub route: ApiRoute,
    pub handler: MethodRouter<AppState>,
}

pub(super) fn entry(
    method: Method,
    path: &'static str,
    action: &'static str,
    handler: MethodRouter<AppState>,
) -> Entry {
    Entry {
        route: ApiRoute {
            method,
            path,
            action,
        },
        handler,
    }
}

/// Every `/api` route (API §3, §5): the router is built from this table, the audit trail names
/// actions from it, and a test walks it to prove that each route needs credentials.
pub(super) fn table() -> Vec<Entry> {
    let mut table = vec![
        entry(
            Method::GET,
            "/config",
            "config.read",
            get(super::ui::get_config),
        ),
        entry(Method::GET, "/stats", "stats.read", get(stats)),
        entry(
            Method::GET,
            "/workspaces",
            "workspace.list",
            get(list_workspaces),
        ),
        entry(
            Method::GET,
            "/workspaces/{ws}",
            "workspace.read",
            get(get_workspace),
        ),
        entry(Method::GET, "/tasks", "task.list", get(list_all_tasks)),
        entry(
            Method::GET,
            "/workspaces/{ws}/tasks",
            "task.list",
            get(list_tasks),
        ),
        entry(
            Method::GET,
            "/workspaces/{ws}/tasks/{name}",
            "task.read",
            get(get_task),
        ),
        entry(
            Method::POST,
            "/workspaces/{ws}/tasks/{name}/execute",
            "job.trigger",
            post(execute_task),
        ),
        entry(
            Method::GET,
            "/workspaces/{ws}/triggers",
            "trigger.list",
            get(list_triggers),
        ),
        entry(Method::GET, "/jobs", "job.list", get(list_jobs)),
        entry(Method::GET, "/jobs/{id}", "job.read", get(get_job)),
        entry(
            Method::POST,
            "/jobs/{id}/cancel",
            "job.cancel",
            post(cancel_job),
        ),
        entry(
            Method::POST,
            "/jobs/{id}/steps/{step}/approve",
            "job.approve",
            post(approve_step),
        ),
        entry(
            Method::POST,
            "/jobs/{id}/steps/{step}/reject",
            "job.reject",
            post(reject_step),
        ),
        entry(Method::GET, "/jobs/{id}/logs", "log.read", get(job_logs)),
        entry(
            Method::GET,
            "/jobs/{id}/logs/stream",
            "log.stream",
            get(super::stream::stream_logs),
        ),
        entry(
            Method::GET,
            "/jobs/{id}/steps/{step}/logs",
            "log.read",
            get(step_logs),
        ),
        entry(Method::GET, "/workers", "worker.list", get(list_workers)),
        entry(Method::GET, "/workers/{id}", "worker.read", get(get_worker)),
    ];
    table.extend(super::auth_routes::table());
    table.extend(super::accounts::table());
    table.extend(super::refresh::table());
    table
}

/// The `/api` router built from [`table`].
pub(super) fn api_routes() -> Router<AppState> {
    table().into_iter().fold(Router::new(), |router, entry| {
        router.route(entry.route.path, entry.handler)
    })
}

/// The routes of the table, without handlers, for matching requests against.
static ROUTES: LazyLock<Vec<ApiRoute>> =
    LazyLock::new(|| table().into_iter().map(|entry| entry.route).collect());

/// What a request to `path` (below `/api`) with `method` is: its action and its target (the
/// path parameters joined with `/`: `default/hello-world`, a job id).
pub(super) struct Matched {
    pub action: &'static str,
    pub target: Option<String>,
}

pub(super) fn find(method: &Method, path: &str) -> Option<Matched> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    ROUTES.iter().find_map(|route| {
        if route.method != *method {
            return None;
        }
        let pattern: Vec<&str> = route.path.split('/').collect();
        if pattern.len() != segments.len() {
            return None;
        }
        let mut params = Vec::new();
        for (want, have) in pattern.iter().zip(&segments) {
            if want.starts_with('{') {
                params.push(*have);
            } else if want != have {
                return None;
            }
        }
        Some(Matched {
            action: route.action,
            target: (!params.is_empty()).then(|| params.join("/")),
        })
    })
}

/// All routes of the table, for tests.
#[cfg(test)]
pub(super) fn all() -> &'static [ApiRoute] {
    &ROUTES
}

impl AppState {
    pub(super) fn jobs(&self) -> Result<&Orchestrator, ApiError> {
        self.orchestrator
            .as_ref()
            .ok_or_else(|| ApiError::unavailable("the job engine is not running"))
    }

    /// What `caller` may do with a task (access rules; everything without authentication).
    pub(super) fn access(&self, caller: &Caller, workspace: &str, task: &str) -> Access {
        match &self.security.auth {
            Some(auth) => auth.acl().access(caller, workspace, task),
            None => Access::Run,
        }
    }

    /// Which jobs `caller` sees in lists and counts; `None` sees all.
    pub(super) fn visibility(&self, caller: &Caller) -> Option<Visibility> {
        self.security
            .auth
            .as_ref()
            .and_then(|auth| auth.acl().visibility(caller))
    }

    /// The job a user named by its id or a part of it (issue #15: the short id the UI shows,
    /// any longer start or end), if `caller` may see it: 404 when no visible job matches,
    /// 400 `ambiguous` listing the candidates when several do.
    pub(super) async fn find_job(
        &self,
        caller: &Caller,
        part: &JobRef,
    ) -> Result<JobState, ApiError> {
        let id = self.resolve_job_id(caller, part).await?;
        self.visible_job(caller, id).await
    }

    /// The id of the one visible job `part` names (see [`AppState::find_job`]).
    pub(super) async fn resolve_job_id(
        &self,
        caller: &Caller,
        part: &JobRef,
    ) -> Result<Uuid, ApiError> {
        if let Some(id) = part.exact() {
            return Ok(id);
        }
        let ids = self
            .jobs()?
            .store()
            .find_job_ids(
                part.start_range(),
                part.digits(),
                self.visibility(caller).as_ref(),
                None,
                job_ref::MAX_CANDIDATES + 1,
            )
            .await
            .map_err(ApiError::internal)?;
        one_job(part, ids, "")
    }

    /// The job `id` if `caller` may see it; a job they may not see is "not found" (issue #12:
    /// its existence is not revealed).
    pub(super) async fn visible_job(
        &self,
        caller: &Caller,
        id: Uuid,
    ) -> Result<JobState, ApiError> {
        let job = self
            .jobs()?
            .store()
            .get_job(id)
            .await
            .map_err(ApiError::internal)?
            .filter(|job| self.access(caller, &job.workspace, &job.task) >= Access::View)
            .ok_or_else(|| ApiError::not_found(format!("job {id}")))?;
        Ok(job)
    }
}

/// A job id path parameter, whole or in part: 400 naming `id` when it is neither.
pub(super) fn job_ref(text: &str) -> Result<JobRef, ApiError> {
    text.parse()
        .map_err(|error| ApiError::bad_field("id", error))
}

/// The one job of `ids` (those whose id `part` starts or ends, at most
/// [`job_ref::MAX_CANDIDATES`] + 1): 404 naming `part` (and `of`, ` of webhook 'x'`) when there
/// is none, 400 `ambiguous` listing them when there are several.
pub(super) fn one_job(part: &JobRef, mut ids: Vec<Uuid>, of: &str) -> Result<Uuid, ApiError> {
    ids.retain(|id| part.matches(*id));
    match ids.as_slice() {
        [] => Err(ApiError::not_found(format!("job '{part}'{of}"))),
        [id] => Ok(*id),
        several => {
            let mut candidates: Vec<String> = several.iter().map(Uuid::to_string).collect();
            let more = candidates.len() > job_ref::MAX_CANDIDATES;
            candidates.truncate(job_ref::MAX_CANDIDATES);
            Err(ApiError::Ambiguous {
                field: "id".to_owned(),
                message: format!(
                    "job id '{part}' is ambiguous: it matches {}{}; give more of the id",
                    candidates.join(", "),
                    if more { " and more" } else { "" }
                ),
                candidates,
            })
        }
    }
}

/// `Forbidden` for a caller who may see but not run a task.
fn require_run(access: Access, what: &str) -> Result<(), ApiError> {
    if access >= Access::Run {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "you may view {what} but not run or cancel it (access rules)"
        )))
    }
}

/// The job source of a request (API §2.4): `api` without authentication, else `user` with the
/// e-mail or `api-key:<prefix>`.
fn job_source(caller: &Caller) -> JobSource {
    match caller.principal() {
        Some(principal) => JobSource {
            source_type: "user".to_owned(),
            source_id: Some(principal.source_id()),
        },
        None => JobSource::api(),
    }
}

impl From<OrchestratorError> for ApiError {
    fn from(error: OrchestratorError) -> Self {
        match error {
            // `NotFound` adds "not found" itself: it gets only what was looked for.
            OrchestratorError::UnknownWorkspace(workspace) => {
                ApiError::not_found(format!("workspace '{workspace}'"))
            }
            OrchestratorError::UnknownTask { workspace, task } => {
                ApiError::not_found(format!("task '{task}' in workspace '{workspace}'"))
            }
            OrchestratorError::JobNotFound(id) => ApiError::not_found(format!("job {id}")),
            OrchestratorError::InvalidInput(errors) => ApiError::InvalidInput(errors),
            OrchestratorError::AlreadyTerminal(_) => {
                ApiError::conflict(ConflictKind::AlreadyTerminal, error.to_string())
            }
            OrchestratorError::StaleLease { .. } => ApiError::stale_lease(),
            OrchestratorError::UnknownStep { job, step } => {
                ApiError::not_found(format!("step '{step}' in job {job}"))
            }
            OrchestratorError::NotSuspended { .. } => {
                ApiError::conflict(ConflictKind::NotSuspended, error.to_string())
            }
            other => ApiError::internal(anyhow::Error::new(other)),
        }
    }
}

/// `?workspace=` of `GET /api/tasks` and `GET /api/stats` (API §3.1, §3.5).
struct WorkspaceFilter {
    workspace: Option<String>,
}

impl FromParams for WorkspaceFilter {
    fn from_params(params: &Params) -> Result<Self, ParamError> {
        Ok(WorkspaceFilter {
            workspace: params.text("workspace"),
        })
    }
}

async fn stats(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<WorkspaceFilter>,
) -> Result<Json<Value>, ApiError> {
    let visibility = state.visibility(&caller);
    let counts = state
        .jobs()?
        .store()
        .job_counts(filter.workspace.as_deref(), visibility.as_ref())
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(
        serde_json::to_value(counts).map_err(ApiError::internal)?,
    ))
}

async fn list_workspaces(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<WorkspaceView>>, ApiError> {
    let mut views = state.jobs()?.workspaces().list();
    for view in &mut views {
        count_visible(&state, &caller, view)?;
    }
    Ok(Json(views))
}

async fn get_workspace(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(ws): ApiPath<String>,
) -> Result<Json<WorkspaceView>, ApiError> {
    let mut view = state
        .jobs()?
        .workspaces()
        .view(&ws)
        .ok_or_else(|| ApiError::not_found(format!("workspace '{ws}'")))?;
    count_visible(&state, &caller, &mut view)?;
    Ok(Json(view))
}

/// A workspace's task and trigger counts as the caller sees them (issue #12: tasks they may
/// not view are left out of every count).
pub(super) fn count_visible(
    state: &AppState,
    caller: &Caller,
    view: &mut WorkspaceView,
) -> Result<(), ApiError> {
    if state.visibility(caller).is_none() {
        return Ok(());
    }
    let workspaces = state.jobs()?.workspaces();
    let visible = |task: &str| state.access(caller, &view.name, task) >= Access::View;
    view.tasks_count = workspaces
        .tasks(&view.name)
        .unwrap_or_default()
        .iter()
        .filter(|task| visible(&task.name))
        .count();
    view.triggers_count = workspaces
        .triggers(&view.name, chrono::Utc::now())
        .unwrap_or_default()
        .iter()
        .filter(|trigger| visible(&trigger.task))
        .count();
    Ok(())
}

async fn list_all_tasks(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<WorkspaceFilter>,
) -> Result<Json<Vec<TaskSummary>>, ApiError> {
    let mut tasks = state.jobs()?.workspaces().all_tasks();
    if let Some(workspace) = &filter.workspace {
        tasks.retain(|task| &task.workspace == workspace);
    }
    tasks.retain(|task| state.access(&caller, &task.workspace, &task.name) >= Access::View);
    Ok(Json(tasks))
}

async fn list_tasks(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(ws): ApiPath<String>,
) -> Result<Json<Vec<TaskSummary>>, ApiError> {
    let mut tasks = state
        .jobs()?
        .workspaces()
        .tasks(&ws)
        .ok_or_else(|| ApiError::not_found(format!("workspace '{ws}'")))?;
    tasks.retain(|task| state.access(&caller, &ws, &task.name) >= Access::View);
    Ok(Json(tasks))
}

async fn get_task(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((ws, name)): ApiPath<(String, String)>,
) -> Result<Json<TaskDetail>, ApiError> {
    let orchestrator = state.jobs()?;
    let mut task = orchestrator
        .workspaces()
        .task(&ws, &name, chrono::Utc::now())
        .filter(|_| state.access(&caller, &ws, &name) >= Access::View)
        .ok_or_else(|| ApiError::not_found(format!("task '{name}' in workspace '{ws}'")))?;
    fill_last_runs(orchestrator, &ws, &mut task.triggers).await?;
    Ok(Json(task))
}

async fn list_triggers(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(ws): ApiPath<String>,
) -> Result<Json<Vec<TriggerView>>, ApiError> {
    let orchestrator = state.jobs()?;
    let mut triggers = orchestrator
        .workspaces()
        .triggers(&ws, chrono::Utc::now())
        .ok_or_else(|| ApiError::not_found(format!("workspace '{ws}'")))?;
    triggers.retain(|trigger| state.access(&caller, &ws, &trigger.task) >= Access::View);
    fill_last_runs(orchestrator, &ws, &mut triggers).await?;
    Ok(Json(triggers))
}

/// `last_run_at` of scheduler triggers comes from the scheduler's checkpoints (API §2.3).
async fn fill_last_runs(
    orchestrator: &Orchestrator,
    ws: &str,
    triggers: &mut [TriggerView],
) -> Result<(), ApiError> {
    if !triggers.iter().any(|trigger| trigger.kind == "scheduler") {
        return Ok(());
    }
    let ticks = orchestrator
        .store()
        .trigger_ticks(Some(ws))
        .await
        .map_err(ApiError::internal)?;
    for trigger in triggers.iter_mut().filter(|t| t.kind == "scheduler") {
        trigger.last_run_at = ticks
            .iter()
            .find(|tick| tick.trigger == trigger.name)
            .and_then(|tick| tick.last_run_at);
    }
    Ok(())
}

async fn execute_task(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((ws, name)): ApiPath<(String, String)>,
    ApiJson(request): ApiJson<ExecuteRequest>,
) -> Result<Json<JobStatusReply>, ApiError> {
    let access = state.access(&caller, &ws, &name);
    if access < Access::View {
        return Err(ApiError::not_found(format!(
            "task '{name}' in workspace '{ws}'"
        )));
    }
    require_run(access, &format!("task '{name}'"))?;
    let source_job = match request.source_job_id {
        Some(id) => Some(state.visible_job(&caller, id).await?),
        None => None,
    };
    let job = state
        .jobs()?
        .create_job_from(
            &ws,
            &name,
            request.input_value(),
            job_source(&caller),
            source_job.as_ref(),
        )
        .await?;
    Ok(Json(JobStatusReply {
        job_id: job.id,
        status: job.status,
    }))
}

async fn list_jobs(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<JobListQuery>,
) -> Result<Paginated<JobSummary>, ApiError> {
    let Page { limit, offset } = query.page;
    let filter = JobFilter {
        workspace: query.workspace,
        task_name: query.task_name,
        statuses: query.status,
        source_type: query.source_type,
        parent_job_id: query.parent_job_id,
        search: query.search,
        visibility: state.visibility(&caller),
        limit,
        offset,
        ..JobFilter::default()
    };
    let (rows, total) = state
        .jobs()?
        .store()
        .list_jobs(&filter)
        .await
        .map_err(ApiError::internal)?;
    let items = rows
        .into_iter()
        .map(|row| JobSummary {
            job_id: row.job_id,
            workspace: row.workspace,
            task_name: row.task_name,
            mode: JobMode::from(row.mode),
            status: row.status,
            source_type: row.source_type,
            source_id: row.source_id,
            revision: row.revision,
            priority: row.priority,
            parent_job_id: row.parent_job_id,
            retry_of_job_id: None,
            retry_attempt: 1,
            created_at: row.created_at,
            started_at: row.started_at,
            completed_at: row.completed_at,
            error: views::stored_error(row.error, row.masked),
        })
        .collect();
    Ok(Paginated { items, total })
}

async fn get_job(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<JobDetail>, ApiError> {
    let orchestrator = state.jobs()?;
    let job = state.find_job(&caller, &job_ref(&id)?).await?;
    let detail = views::job_detail(orchestrator, &job)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(detail))
}

async fn cancel_job(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<JobStatusReply>, ApiError> {
    let orchestrator = state.jobs()?;
    let job = state.find_job(&caller, &job_ref(&id)?).await?;
    let id = job.id;
    require_run(
        state.access(&caller, &job.workspace, &job.task),
        &format!("job {id}"),
    )?;
    let job = match orchestrator.cancel_job(id, None).await {
        Ok(job) => job,
        // API §3.4: the message gives the current status.
        Err(OrchestratorError::AlreadyTerminal(_)) => {
            let status = orchestrator
                .store()
                .get_job(id)
                .await
                .map_err(ApiError::internal)?
                .map_or("finished", |job| job.status.as_str());
            return Err(ApiError::conflict(
                ConflictKind::AlreadyTerminal,
                format!("job {id} is already {status}"),
            ));
        }
        Err(error) => return Err(error.into()),
    };
    Ok(Json(JobStatusReply {
        job_id: job.id,
        status: if job.status == JobStatus::Failed {
            job.status
        } else {
            JobStatus::Cancelled
        },
    }))
}

/// `POST /api/jobs/{id}/steps/{step}/approve` (API §3.4): deciding needs `run` on the task.
async fn approve_step(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, step)): ApiPath<(String, String)>,
    ApiJson(request): ApiJson<ApproveRequest>,
) -> Result<Json<DecisionReply>, ApiError> {
    let decision = if request.approved {
        Decision::Approve(request.input.map_or(Value::Null, Value::Object))
    } else {
        Decision::Reject(request.rejection_reason)
    };
    decide(&state, &caller, id, &step, decision).await
}

/// `POST /api/jobs/{id}/steps/{step}/reject`: `approve` with `approved: false`.
async fn reject_step(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, step)): ApiPath<(String, String)>,
    ApiJson(request): ApiJson<RejectRequest>,
) -> Result<Json<DecisionReply>, ApiError> {
    decide(&state, &caller, id, &step, Decision::Reject(request.reason)).await
}

async fn decide(
    state: &AppState,
    caller: &Caller,
    id: String,
    step: &str,
    decision: Decision,
) -> Result<Json<DecisionReply>, ApiError> {
    if let Decision::Reject(Some(reason)) = &decision
        && reason.chars().count() > MAX_REJECTION_REASON
    {
        return Err(ApiError::bad_field(
            "rejection_reason",
            format!("longer than {MAX_REJECTION_REASON} characters"),
        ));
    }
    let orchestrator = state.jobs()?;
    // The UI's short id, or any unique part, as on every job route.
    let job = state.find_job(caller, &job_ref(&id)?).await?;
    let id = job.id;
    require_run(
        state.access(caller, &job.workspace, &job.task),
        &format!("job {id}"),
    )?;
    let by = caller.principal().map_or_else(
        || "anonymous".to_owned(),
        |principal| principal.email.clone(),
    );
    let status = match decision {
        Decision::Approve(_) => "approved",
        Decision::Reject(_) => "rejected",
    };
    orchestrator
        .decide_approval(id, step, decision, &by)
        .await?;
    Ok(Json(DecisionReply {
        status: status.to_owned(),
    }))
}

async fn job_logs(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<LogQuery>,
) -> Result<Response, ApiError> {
    let job = state.find_job(&caller, &job_ref(&id)?).await?;
    if let Some(step) = &query.step {
        known_step(&job, step)?;
    }
    read_logs(
        &state,
        job.id,
        query.after,
        query.limit as usize,
        query.step,
    )
    .await
}

async fn step_logs(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, step)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<LogQuery>,
) -> Result<Response, ApiError> {
    let job = state.find_job(&caller, &job_ref(&id)?).await?;
    known_step(&job, &step)?;
    read_logs(
        &state,
        job.id,
        query.after,
        query.limit as usize,
        Some(step),
    )
    .await
}

/// A log filter must name a step of the job (a loop step's name covers its instances) or the
/// server's own lines: anything else would read as a step that printed nothing (issue #15).
pub(super) fn known_step(job: &JobState, step: &str) -> Result<(), ApiError> {
    let steps: Vec<&str> = job.steps.iter().map(|s| s.step_name.as_str()).collect();
    if step == crate::logs::SERVER_STEP
        || steps
            .iter()
            .any(|name| crate::logs::step_matches(step, name))
    {
        return Ok(());
    }
    let mut names: Vec<&str> = steps
        .into_iter()
        .filter(|name| !name.ends_with(']'))
        .collect();
    names.push(crate::logs::SERVER_STEP);
    Err(ApiError::bad_field(
        "step",
        format!(
            "job {} has no step '{step}' (its steps: {})",
            job.id,
            names.join(", ")
        ),
    ))
}

/// The most JSONL text one log read returns. A read stops before the line that would go past
/// it (a read always returns at least one line), answers `has_more: true`, and the client
/// goes on with `after` = `last_seq` (API §4.2; docs/deviations.md).
pub const LOG_READ_BYTES: usize = 8 * 1024 * 1024;
/// Lines read from the log file per step of a read.
const LOG_READ_PAGE: usize = 1_000;

/// `{"logs": "…", "last_seq": N, "has_more": b}` (API §4.2), streamed as the log is read, so a
/// large range is never held in memory. The job must exist; an error after the first byte can
/// only cut the answer short (and is logged). The caller checked that the job is visible.
async fn read_logs(
    state: &AppState,
    id: Uuid,
    after: u64,
    limit: usize,
    step: Option<String>,
) -> Result<Response, ApiError> {
    let orchestrator = state.jobs()?;
    let logs = orchestrator.logs().clone();
    let (reader, mut writer) = tokio::io::duplex(64 * 1024);
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut emit = |bytes: &[u8]| {
            use tokio::io::AsyncWriteExt;
            runtime.block_on(writer.write_all(bytes))
        };
        if let Err(error) = write_logs(&logs, id, after, limit, step.as_deref(), &mut emit) {
            tracing::warn!(job_id = %id, "log read ended early: {error}");
        }
    });
    let mut response = Body::from_stream(tokio_util::io::ReaderStream::new(reader)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// Why a streamed log read stopped early.
#[derive(Debug, thiserror::Error)]
enum LogReadError {
    #[error(transparent)]
    Log(#[from] crate::logs::LogError),
    #[error("the client went away: {0}")]
    Gone(#[from] std::io::Error),
}

/// Writes the answer of a log read through `emit`, page by page (blocking).
fn write_logs(
    logs: &crate::logs::LogStore,
    id: Uuid,
    after: u64,
    limit: usize,
    step: Option<&str>,
    emit: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<(), LogReadError> {
    emit(b"{\"logs\":\"")?;
    let (mut sent, mut bytes, mut last_seq) = (0usize, 0usize, after);
    let has_more = 'read: loop {
        let want = LOG_READ_PAGE.min(limit - sent);
        if want == 0 {
            break 'read !logs.read(id, last_seq, 1, step)?.is_empty();
        }
        let lines = logs.read(id, last_seq, want, step)?;
        if lines.is_empty() {
            break 'read false;
        }
        for line in lines {
            if bytes >= LOG_READ_BYTES {
                break 'read true;
            }
            let mut text = line.to_json();
            text.push('\n');
            // The JSONL text goes inside a JSON string: escape it, without the quotes.
            let escaped = serde_json::to_string(&text).unwrap_or_else(|_| "\"\"".to_owned());
            emit(&escaped.as_bytes()[1..escaped.len() - 1])?;
            bytes += text.len();
            sent += 1;
            last_seq = line.seq;
        }
    };
    let tail = format!("\",\"last_seq\":{last_seq},\"has_more\":{has_more}}}");
    emit(tail.as_bytes())?;
    Ok(())
}

async fn list_workers(
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Paginated<WorkerView>, ApiError> {
    let (workers, total) = state
        .jobs()?
        .store()
        .list_workers(page.limit, page.offset)
        .await
        .map_err(ApiError::internal)?;
    let items = workers.into_iter().map(views::worker_view).collect();
    Ok(Paginated { items, total })
}

async fn get_worker(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<WorkerDetail>, ApiError> {
    let visibility = state.visibility(&caller);
    let store = state.jobs()?.store();
    let worker = store
        .get_worker(id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("worker {id}")))?;
    let steps = store
        .worker_steps(id, 50, visibility.as_ref())
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(WorkerDetail {
        worker: views::worker_view(worker),
        steps: steps.into_iter().map(views::worker_step).collect(),
    }))
}
