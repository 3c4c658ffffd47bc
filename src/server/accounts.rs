//! The admin routes (API §5.5): users, groups and the audit trail. Every route is for admins
//! only (403 otherwise) and answers 404 `auth_disabled` without authentication.

use axum::Json;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use chrono::Utc;
use uuid::Uuid;

use super::auth_routes::user_view;
use super::gate::AuditNote;
use super::routes::{Entry, entry};
use super::{ApiError, ApiJson, ApiPath, ApiQuery, AppState, Paginated};
use crate::api::ParamError;
use crate::api::auth::{AdminFlag, AuditView, CreateUserRequest, Groups, PasswordReset, UserView};
use crate::api::execute::OkReply;
use crate::api::query::{DEFAULT_LIMIT, FromParams, MAX_LIMIT, Page, Params};
use crate::auth::{Auth, Caller, NewAccount, normalise_email};
use crate::store::AuditFilter;

pub(super) fn table() -> Vec<Entry> {
    vec![
        entry(Method::GET, "/users", "user.list", get(list_users)),
        entry(
            Method::POST,
            "/users",
            "user.create",
            axum::routing::post(create_user),
        ),
        entry(Method::GET, "/users/{id}", "user.read", get(get_user)),
        entry(
            Method::DELETE,
            "/users/{id}",
            "user.delete",
            axum::routing::delete(delete_user),
        ),
        entry(
            Method::PUT,
            "/users/{id}/admin",
            "user.admin",
            put(set_admin),
        ),
        entry(
            Method::PUT,
            "/users/{id}/password",
            "user.password",
            put(reset_password),
        ),
        entry(
            Method::GET,
            "/users/{id}/groups",
            "user.groups_read",
            get(get_groups),
        ),
        entry(
            Method::PUT,
            "/users/{id}/groups",
            "user.groups",
            put(set_groups),
        ),
        entry(Method::GET, "/groups", "group.list", get(list_groups)),
        entry(Method::GET, "/audit", "audit.list", get(list_audit)),
    ]
}

/// The service, for an admin; 404 without authentication, 403 for others.
fn admin<'s>(state: &'s AppState, caller: &Caller) -> Result<&'s Auth, ApiError> {
    let auth = state.auth()?;
    auth.require_admin(caller)?;
    Ok(auth)
}

/// The target of an audit entry about a user: their e-mail.
fn about(email: &str) -> AuditNote {
    AuditNote {
        target: Some(email.to_owned()),
        ..AuditNote::default()
    }
}

fn noted(mut response: Response, note: AuditNote) -> Response {
    response.extensions_mut().insert(note);
    response
}

async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Paginated<UserView>, ApiError> {
    let auth = admin(&state, &caller)?;
    let (users, total) = auth
        .store()
        .list_users(page.limit, page.offset)
        .await
        .map_err(ApiError::internal)?;
    Ok(Paginated::new(users.iter().map(user_view).collect(), total))
}

async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<CreateUserRequest>,
) -> Result<Response, ApiError> {
    let auth = admin(&state, &caller)?;
    let user = auth
        .create_user(
            NewAccount {
                email: request.email,
                name: request.name,
                password: request.password,
                is_admin: request.is_admin,
                groups: request.groups,
            },
            Utc::now(),
        )
        .await?;
    let note = about(&user.email);
    Ok(noted(
        (StatusCode::CREATED, Json(user_view(&user))).into_response(),
        note,
    ))
}

async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<UserView>, ApiError> {
    let auth = admin(&state, &caller)?;
    Ok(Json(user_view(&auth.user(id).await?)))
}

async fn delete_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let auth = admin(&state, &caller)?;
    let email = auth.delete_user(&caller, id).await?;
    Ok(noted(StatusCode::NO_CONTENT.into_response(), about(&email)))
}

async fn set_admin(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<AdminFlag>,
) -> Result<Response, ApiError> {
    let auth = admin(&state, &caller)?;
    let user = auth.set_admin(&caller, id, request.is_admin).await?;
    let note = about(&user.email);
    Ok(noted(Json(user_view(&user)).into_response(), note))
}

async fn reset_password(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<PasswordReset>,
) -> Result<Response, ApiError> {
    let auth = admin(&state, &caller)?;
    let user = auth.user(id).await?;
    auth.set_password(id, &request.password, Utc::now()).await?;
    let reply = Json(OkReply::OK);
    Ok(noted(reply.into_response(), about(&user.email)))
}

async fn get_groups(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Groups>, ApiError> {
    let auth = admin(&state, &caller)?;
    Ok(Json(Groups {
        groups: auth.user(id).await?.groups,
    }))
}

async fn set_groups(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<Groups>,
) -> Result<Response, ApiError> {
    let auth = admin(&state, &caller)?;
    let user = auth.user(id).await?;
    let groups = auth.set_groups(id, &request.groups).await?;
    Ok(noted(
        Json(Groups { groups }).into_response(),
        about(&user.email),
    ))
}

async fn list_groups(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<String>>, ApiError> {
    let auth = admin(&state, &caller)?;
    Ok(Json(
        auth.store()
            .list_groups()
            .await
            .map_err(ApiError::internal)?,
    ))
}

/// `GET /api/audit?actor=&action=&since=&until=&limit=&offset=`.
struct AuditQuery(AuditFilter);

impl FromParams for AuditQuery {
    fn from_params(params: &Params) -> Result<Self, ParamError> {
        let time = |name: &str| {
            params
                .text(name)
                .map(|text| {
                    crate::api::time::parse(&text).map_err(|_| {
                        ParamError::new(
                            name,
                            "must be an RFC 3339 time such as 2026-03-01T12:00:00Z",
                        )
                    })
                })
                .transpose()
        };
        Ok(AuditQuery(AuditFilter {
            actor: params.text("actor").map(|actor| normalise_email(&actor)),
            action: params.text("action"),
            since: time("since")?,
            until: time("until")?,
            limit: params.number("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)?,
            offset: params.count("offset", 0)?,
        }))
    }
}

async fn list_audit(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(AuditQuery(filter)): ApiQuery<AuditQuery>,
) -> Result<Paginated<AuditView>, ApiError> {
    let auth = admin(&state, &caller)?;
    let (entries, total) = auth
        .store()
        .list_audit(&filter)
        .await
        .map_err(ApiError::internal)?;
    let items = entries
        .into_iter()
        .map(|entry| AuditView {
            audit_id: entry.audit_id,
            at: entry.at,
            actor: entry.actor,
            via: entry.via,
            source_ip: entry.source_ip,
            action: entry.action,
            target: entry.target,
            outcome: entry.outcome,
            status: entry.status,
            request_id: entry.request_id,
        })
        .collect();
    Ok(Paginated::new(items, total))
}
