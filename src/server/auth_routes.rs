//! `/api/auth/…` (API §5.3, §5.4): sign-in, token refresh, sign-out, the caller's account, own
//! API keys, and the OIDC redirects. Thin translations onto [`crate::auth::Auth`]. Every route
//! answers 404 `auth_disabled` on a server without authentication.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use chrono::Utc;

use super::gate::{AuditNote, ClientIp, cookie, read_cookie};
use super::routes::{Entry, entry};
use super::{ApiError, ApiJson, ApiPath, ApiQuery, AppState, ConflictKind};
use crate::api::ParamError;
use crate::api::auth::{
    ApiKeyCreatedReply, ApiKeyRequest, ApiKeyView, LoginRequest, PasswordChange, RefreshRequest,
    TokenReply, UserView,
};
use crate::api::execute::OkReply;
use crate::api::query::{FromParams, Params};
use crate::auth::oidc::{STATE_COOKIE, STATE_COOKIE_PATH, STATE_TTL_SECS};
use crate::auth::{
    Auth, AuthError, Caller, Principal, REFRESH_COOKIE, REFRESH_COOKIE_PATH, Session,
    normalise_email,
};
use crate::store::UserRecord;

pub(super) fn table() -> Vec<Entry> {
    vec![
        entry(Method::POST, "/auth/login", "auth.login", post(login)),
        entry(Method::POST, "/auth/refresh", "auth.refresh", post(refresh)),
        entry(Method::POST, "/auth/logout", "auth.logout", post(logout)),
        entry(Method::GET, "/auth/me", "auth.me", get(me)),
        entry(
            Method::POST,
            "/auth/password",
            "auth.password",
            post(change_password),
        ),
        entry(
            Method::GET,
            "/auth/api-keys",
            "api_key.list",
            get(list_api_keys),
        ),
        entry(
            Method::POST,
            "/auth/api-keys",
            "api_key.create",
            post(create_api_key),
        ),
        entry(
            Method::DELETE,
            "/auth/api-keys/{prefix}",
            "api_key.revoke",
            delete(revoke_api_key),
        ),
        entry(
            Method::GET,
            "/auth/oidc/{provider}",
            "auth.oidc_start",
            get(oidc_start),
        ),
        entry(
            Method::GET,
            "/auth/oidc/{provider}/callback",
            "auth.oidc",
            get(oidc_callback),
        ),
    ]
}

impl AppState {
    /// The authentication service, or 404 `auth_disabled` (API §5.1).
    pub(super) fn auth(&self) -> Result<&Auth, ApiError> {
        self.security.auth.as_ref().ok_or(ApiError::AuthDisabled)
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        use super::AuthFailure;
        match error {
            AuthError::InvalidCredentials => ApiError::Unauthorized {
                reason: AuthFailure::InvalidCredentials,
                message: error.to_string(),
            },
            AuthError::Unauthorized(message) => ApiError::unauthorized(message),
            AuthError::RefreshTokenReused => ApiError::Unauthorized {
                reason: AuthFailure::RefreshTokenReused,
                message: error.to_string(),
            },
            AuthError::Forbidden(message) => ApiError::forbidden(message),
            AuthError::NotFound(what) => ApiError::not_found(what),
            AuthError::Conflict { field, message } => ApiError::Conflict {
                kind: ConflictKind::Conflict,
                message,
                field: Some(field.to_owned()),
            },
            AuthError::BadRequest { field, message } => ApiError::bad_field(field, message),
            AuthError::NoInternalLogin => ApiError::AuthDisabled,
            AuthError::RateLimited(retry_after_secs) => ApiError::RateLimited { retry_after_secs },
            AuthError::Internal(error) => ApiError::internal(error),
        }
    }
}

/// The signed-in user, or 401 (a public route or a server without authentication).
pub(super) fn signed_in(caller: &Caller) -> Result<&Principal, ApiError> {
    caller
        .principal()
        .ok_or_else(|| ApiError::unauthorized("this route needs a signed-in user"))
}

/// A user as the API shows it (API §5.5).
pub(super) fn user_view(user: &UserRecord) -> UserView {
    let mut auth_methods = Vec::new();
    if user.password_hash.is_some() {
        auth_methods.push("password".to_owned());
    }
    auth_methods.extend(user.providers.iter().cloned());
    UserView {
        user_id: user.user_id,
        name: user.name.clone(),
        email: user.email.clone(),
        is_admin: user.is_admin,
        groups: user.groups.clone(),
        auth_methods,
        created_at: user.created_at,
        last_login_at: user.last_login_at,
    }
}

/// Attaches the audit note to any response.
fn noted(mut response: Response, note: AuditNote) -> Response {
    response.extensions_mut().insert(note);
    response
}

/// 200 with the tokens and the refresh cookie (API §5.2, §5.3).
fn token_response(auth: &Auth, session: Session) -> Response {
    let reply = TokenReply {
        access_token: session.access_token,
        refresh_token: session.refresh_token.clone(),
        token_type: "Bearer".to_owned(),
        expires_in: session.expires_in,
    };
    let mut response = Json(reply).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        refresh_cookie(auth, &session.refresh_token),
    );
    response
}

fn refresh_cookie(auth: &Auth, token: &str) -> HeaderValue {
    cookie(
        REFRESH_COOKIE,
        token,
        REFRESH_COOKIE_PATH,
        auth.refresh_ttl().num_seconds(),
        "Strict",
        auth.secure_cookies(),
    )
}

fn clear_refresh_cookie(auth: &Auth) -> HeaderValue {
    cookie(
        REFRESH_COOKIE,
        "",
        REFRESH_COOKIE_PATH,
        0,
        "Strict",
        auth.secure_cookies(),
    )
}

async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let auth = state.auth()?;
    let mut email = normalise_email(&request.email);
    email.truncate(254);
    let note = AuditNote {
        actor: Some(email),
        via: Some("password".to_owned()),
        ..AuditNote::default()
    };
    let response = match auth
        .login(&request.email, &request.password, ip, Utc::now())
        .await
    {
        Ok(session) => token_response(auth, session),
        Err(error) => ApiError::from(error).into_response(),
    };
    Ok(noted(response, note))
}

/// The refresh token of a request: the body's, else the cookie's (API §5.3: the body wins).
fn presented_refresh(request: RefreshRequest, headers: &HeaderMap) -> Option<String> {
    request
        .refresh_token
        .filter(|token| !token.is_empty())
        .or_else(|| read_cookie(headers, REFRESH_COOKIE).filter(|token| !token.is_empty()))
}

async fn refresh(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(request): ApiJson<RefreshRequest>,
) -> Result<Response, ApiError> {
    let auth = state.auth()?;
    let Some(token) = presented_refresh(request, &headers) else {
        return Err(ApiError::unauthorized(
            "no refresh token: send {\"refresh_token\": …} or the stroem_refresh cookie",
        ));
    };
    let mut note = AuditNote {
        via: Some("refresh".to_owned()),
        ..AuditNote::default()
    };
    let response = match auth.refresh(&token, ip, Utc::now()).await {
        Ok(session) => {
            note.actor = Some(session.user.email.clone());
            token_response(auth, session)
        }
        Err(error) => {
            let rate_limited = matches!(error, AuthError::RateLimited(_));
            let mut response = ApiError::from(error).into_response();
            if !rate_limited {
                response
                    .headers_mut()
                    .append(header::SET_COOKIE, clear_refresh_cookie(auth));
            }
            response
        }
    };
    Ok(noted(response, note))
}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<RefreshRequest>,
) -> Result<Response, ApiError> {
    let auth = state.auth()?;
    let mut note = AuditNote::default();
    if let Some(token) = presented_refresh(request, &headers) {
        note.actor = auth.logout(&token, Utc::now()).await?;
    }
    let mut response = Json(OkReply::OK).into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, clear_refresh_cookie(auth));
    Ok(noted(response, note))
}

async fn me(State(state): State<AppState>, caller: Caller) -> Result<Json<UserView>, ApiError> {
    let auth = state.auth()?;
    let principal = signed_in(&caller)?;
    Ok(Json(user_view(&auth.user(principal.user_id).await?)))
}

async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<PasswordChange>,
) -> Result<Json<OkReply>, ApiError> {
    let auth = state.auth()?;
    let principal = signed_in(&caller)?;
    auth.change_password(
        principal,
        &request.current_password,
        &request.new_password,
        Utc::now(),
    )
    .await
    .map_err(|error| match error {
        // The new password's field is `new_password` in this body.
        AuthError::BadRequest { message, .. } => ApiError::bad_field("new_password", message),
        other => other.into(),
    })?;
    Ok(Json(OkReply::OK))
}

fn key_view(record: crate::store::ApiKeyRecord) -> ApiKeyView {
    ApiKeyView {
        prefix: record.prefix,
        name: record.name,
        created_at: record.created_at,
        expires_at: record.expires_at,
        last_used_at: record.last_used_at,
    }
}

async fn list_api_keys(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<ApiKeyView>>, ApiError> {
    let auth = state.auth()?;
    let keys = auth.list_api_keys(signed_in(&caller)?).await?;
    Ok(Json(keys.into_iter().map(key_view).collect()))
}

async fn create_api_key(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiJson(request): ApiJson<ApiKeyRequest>,
) -> Result<Response, ApiError> {
    let auth = state.auth()?;
    let principal = signed_in(&caller)?;
    let created = auth
        .create_api_key(
            principal,
            &request.name,
            request.expires_in_days,
            ip,
            Utc::now(),
        )
        .await?;
    let note = AuditNote {
        target: Some(created.record.prefix.clone()),
        ..AuditNote::default()
    };
    let reply = ApiKeyCreatedReply {
        key: created.key,
        prefix: created.record.prefix,
        name: created.record.name,
        expires_at: created.record.expires_at,
    };
    Ok(noted(
        (StatusCode::CREATED, Json(reply)).into_response(),
        note,
    ))
}

async fn revoke_api_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(prefix): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let auth = state.auth()?;
    auth.revoke_api_key(signed_in(&caller)?, &prefix).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `?next=` of the OIDC start.
struct NextQuery {
    next: String,
}

impl FromParams for NextQuery {
    fn from_params(params: &Params) -> Result<Self, ParamError> {
        let next = params.text("next").unwrap_or_else(|| "/".to_owned());
        crate::auth::next::safe_next(&next).map_err(|why| ParamError::new("next", why))?;
        Ok(NextQuery { next })
    }
}

/// `?code=&state=` (or `?error=`) of the OIDC callback.
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

impl FromParams for CallbackQuery {
    fn from_params(params: &Params) -> Result<Self, ParamError> {
        Ok(CallbackQuery {
            code: params.text("code"),
            state: params.text("state"),
            error: params.text("error"),
        })
    }
}

/// 302 to `location`.
fn redirect(location: &str) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Where the UI picks up the result of an OIDC sign-in (API §5.4).
const LOGIN_CALLBACK: &str = "/login/callback";

async fn oidc_start(
    State(state): State<AppState>,
    ApiPath(provider): ApiPath<String>,
    ApiQuery(query): ApiQuery<NextQuery>,
) -> Result<Response, ApiError> {
    let auth = state.auth()?;
    let provider = auth
        .provider(&provider)
        .ok_or_else(|| ApiError::not_found(format!("OIDC provider '{provider}'")))?;
    match auth.oidc_start(provider, &query.next, Utc::now()).await {
        Ok(started) => {
            let mut response = redirect(&started.location);
            response.headers_mut().append(
                header::SET_COOKIE,
                cookie(
                    STATE_COOKIE,
                    &started.cookie,
                    STATE_COOKIE_PATH,
                    STATE_TTL_SECS,
                    "Lax",
                    auth.secure_cookies(),
                ),
            );
            Ok(response)
        }
        Err(error) => {
            tracing::warn!(
                provider = provider.id(),
                "OIDC sign-in cannot start: {error}"
            );
            Ok(redirect(&format!(
                "{LOGIN_CALLBACK}#error={}",
                error.code()
            )))
        }
    }
}

async fn oidc_callback(
    State(state): State<AppState>,
    ApiPath(provider): ApiPath<String>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<CallbackQuery>,
) -> Result<Response, ApiError> {
    let auth = state.auth()?;
    let provider = auth
        .provider(&provider)
        .ok_or_else(|| ApiError::not_found(format!("OIDC provider '{provider}'")))?;
    let mut note = AuditNote {
        via: Some(format!("oidc:{}", provider.id())),
        ..AuditNote::default()
    };
    let outcome = match (&query.error, &query.code, &query.state) {
        (Some(error), _, _) => Err(crate::auth::oidc::OidcError::Denied(error.clone())),
        (None, Some(code), Some(flow_state)) => {
            let cookie = read_cookie(&headers, STATE_COOKIE);
            auth.oidc_callback(provider, code, flow_state, cookie.as_deref(), Utc::now())
                .await
        }
        _ => Err(crate::auth::oidc::OidcError::InvalidState),
    };
    let mut response = match outcome {
        Ok(signed_in) => {
            note.actor = Some(signed_in.user.email.clone());
            if signed_in.created {
                note.target = Some(format!("created {}", signed_in.user.email));
            }
            let session = auth.start_session(signed_in.user, Utc::now()).await?;
            let fragment = format!(
                "access_token={}&token_type=Bearer&expires_in={}&next={}",
                session.access_token,
                session.expires_in,
                encode_component(&signed_in.next)
            );
            let mut response = redirect(&format!("{LOGIN_CALLBACK}#{fragment}"));
            response.headers_mut().append(
                header::SET_COOKIE,
                refresh_cookie(auth, &session.refresh_token),
            );
            response
        }
        Err(error) => {
            tracing::info!(provider = provider.id(), "OIDC sign-in failed: {error}");
            note.outcome = Some(error.code().to_owned());
            redirect(&format!("{LOGIN_CALLBACK}#error={}", error.code()))
        }
    };
    // The flow's state is spent either way.
    response.headers_mut().append(
        header::SET_COOKIE,
        cookie(
            STATE_COOKIE,
            "",
            STATE_COOKIE_PATH,
            0,
            "Lax",
            auth.secure_cookies(),
        ),
    );
    Ok(noted(response, note))
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn encode_component(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}
