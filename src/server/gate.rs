//! The gate every `/api` request passes (issue #12): who is calling, and a record of what they
//! changed.
//!
//! With authentication off every request is [`Caller::Open`]. With it on, every path except
//! the public ones of API §5.1 needs `Authorization: Bearer <access JWT or API key>` (a
//! WebSocket upgrade may send `?token=` instead, API §4.3) and answers 401 without it — also
//! unknown paths and methods, so nothing about the routes shows before sign-in. The layer wraps
//! the whole `/api` surface, so a route added later is protected without anyone remembering to.
//!
//! With authentication on, every state-changing request (any method but GET, HEAD, OPTIONS),
//! and every request whose handler attached an [`AuditNote`] (the OIDC callback), is written to
//! the audit trail after it was answered: actor, source IP, action, target, outcome.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use uuid::Uuid;

use super::error::ErrorCode;
use super::{ApiError, AppState, bearer_token, request_id, routes};
use crate::auth::{Auth, Caller};
use crate::store::AuditEntry;

/// What the gate needs: the authentication service (none: auth off) and the proxies whose
/// `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct Security {
    pub auth: Option<Auth>,
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
}

/// The client's address (API §1.6), as a request extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

/// What a handler adds to the audit entry of its request, as a response extension: the actor
/// of a sign-in (nobody is signed in yet), how they proved it, what was acted on.
#[derive(Debug, Clone, Default)]
pub struct AuditNote {
    pub actor: Option<String>,
    pub via: Option<String>,
    pub target: Option<String>,
    /// The outcome when the status does not tell it (a redirect that reports a failure).
    pub outcome: Option<String>,
}

/// `/api` paths (below `/api`) that need no credentials (API §5.1), and the OpenAPI document,
/// which describes the API's shape and holds no data (docs/deviations.md).
pub fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/config" | "/openapi.json" | "/auth/login" | "/auth/refresh" | "/auth/logout"
    ) || path.starts_with("/auth/oidc/")
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    /// The caller the gate found. A request that bypassed the gate is nobody (fail closed).
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Caller>()
            .cloned()
            .unwrap_or(Caller::Anonymous))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ClientIp>()
            .copied()
            .unwrap_or(ClientIp(None)))
    }
}

/// The middleware on `/api` (installed by [`super::router`]).
pub(super) async fn gate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let security = &state.security;
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let forwarded = request
        .headers()
        .get("x-forwarded-for")
        .and_then(|value| value.to_str().ok());
    let ip = crate::auth::client_ip::client_ip(peer, forwarded, &security.trusted_proxies);
    request.extensions_mut().insert(ClientIp(ip));
    let Some(auth) = &security.auth else {
        request.extensions_mut().insert(Caller::Open);
        return next.run(request).await;
    };
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let caller = if is_public(&path) {
        Ok(Caller::Anonymous)
    } else {
        let credential = credential(&request);
        authenticate(auth, credential).await.map(Caller::User)
    };
    let (caller, response) = match caller {
        Ok(caller) => {
            request.extensions_mut().insert(caller.clone());
            (Some(caller), next.run(request).await)
        }
        Err(error) => (None, error.into_response()),
    };
    let note = response.extensions().get::<AuditNote>().cloned();
    let changes = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    if changes || note.is_some() {
        let entry = audit_entry(
            &method,
            &path,
            caller.as_ref(),
            note.unwrap_or_default(),
            ip,
            &response,
        );
        if let Err(error) = auth.store().insert_audit(&entry).await {
            tracing::error!(action = %entry.action, "cannot write the audit entry: {error}");
        }
    }
    response
}

/// The credential a request carries: the bearer token, or for a WebSocket upgrade `?token=`.
fn credential(request: &Request) -> Option<String> {
    let header = bearer_token(request.headers()).map(str::to_owned);
    // Browsers cannot set headers on a WebSocket, so the stream also takes `?token=` (API §4.3);
    // only there, and the request log never shows query strings.
    let query = if is_websocket_upgrade(request) {
        query_token(request.uri().query())
    } else {
        None
    };
    header.or(query)
}

/// The principal behind the request's credential, or the 401 to answer.
async fn authenticate(
    auth: &Auth,
    credential: Option<String>,
) -> Result<crate::auth::Principal, ApiError> {
    let Some(credential) = credential else {
        return Err(ApiError::unauthorized(
            "authentication required: send 'Authorization: Bearer <access token or API key>'",
        ));
    };
    auth.authenticate(&credential, Utc::now())
        .await
        .map_err(ApiError::from)
}

fn is_websocket_upgrade(request: &Request) -> bool {
    request
        .headers()
        .get(header::UPGRADE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("websocket"))
}

/// `token` of a query string, percent-decoded.
fn query_token(query: Option<&str>) -> Option<String> {
    let uri: axum::http::Uri = format!("/?{}", query?).parse().ok()?;
    let axum::extract::Query(pairs) =
        axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&uri).ok()?;
    pairs
        .into_iter()
        .rev()
        .find(|(name, value)| name == "token" && !value.is_empty())
        .map(|(_, value)| value)
}

fn audit_entry(
    method: &Method,
    path: &str,
    caller: Option<&Caller>,
    note: AuditNote,
    ip: Option<IpAddr>,
    response: &Response,
) -> AuditEntry {
    let route = routes::find(method, path);
    let principal = caller.and_then(Caller::principal);
    let status = response.status().as_u16();
    let outcome = if let Some(outcome) = note.outcome {
        outcome
    } else if status < 400 {
        "success".to_owned()
    } else {
        response
            .extensions()
            .get::<ErrorCode>()
            .map_or_else(|| format!("http_{status}"), |code| code.0.to_owned())
    };
    AuditEntry {
        audit_id: Uuid::now_v7(),
        at: Utc::now(),
        actor: principal
            .map(|principal| principal.email.clone())
            .or(note.actor),
        via: principal
            .map(crate::auth::Principal::via_label)
            .or(note.via),
        source_ip: ip.map(|ip| ip.to_string()),
        action: route.as_ref().map_or_else(
            || format!("{} /api{path}", method.as_str()),
            |route| route.action.to_owned(),
        ),
        target: note.target.or_else(|| route.and_then(|route| route.target)),
        outcome,
        status,
        request_id: request_id::current(),
    }
}

/// A `Set-Cookie` value; `secure` adds `Secure`.
pub(super) fn cookie(
    name: &str,
    value: &str,
    path: &str,
    max_age: i64,
    same_site: &str,
    secure: bool,
) -> HeaderValue {
    let mut text =
        format!("{name}={value}; HttpOnly; SameSite={same_site}; Path={path}; Max-Age={max_age}");
    if secure {
        text.push_str("; Secure");
    }
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The value of cookie `name` among the request's `Cookie` headers.
pub(super) fn read_cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}
