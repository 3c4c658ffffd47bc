//! `GET /metrics` (API §3.6, issue #17 item 7) and the HTTP request metrics.
//!
//! Access: `Authorization: Bearer <metrics.token>` or `<worker_token>` (compared in constant
//! time), or anyone with `metrics.public: true`. With neither token set and `public` off — the
//! default — every scrape is refused with 401: metrics name workspaces and tasks, so they are
//! not shown until an operator decides who may see them. The route sits beside `/healthz`,
//! outside the `/api` gate: a scraper holds a metrics token, not a user's credentials, whether
//! or not `auth` is on.
//!
//! HTTP requests are counted by route *template* (`/api/jobs/{id}`), never by raw path, so the
//! number of series is bounded by the route table: [`label_route`] (inside each surface, where
//! axum knows the matched route) stamps the response with the template, and [`record_http`]
//! (outermost) counts it; a request no route matched counts as `unmatched` on the machine
//! surfaces and `ui` elsewhere.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::{ApiError, AppState};
use crate::config::Secret;
use crate::metrics::{CONTENT_TYPE, Gauges, Metrics};

/// Who may scrape, and the metrics of this process.
#[derive(Debug, Clone, Default)]
pub struct MetricsAccess {
    /// `metrics.public`: anyone may scrape.
    pub public: bool,
    /// `metrics.token`; the worker token is accepted too (API §3.6).
    pub token: Option<Secret>,
    pub metrics: Metrics,
}

/// The matched route template of a request, as a response extension.
#[derive(Debug, Clone)]
struct RouteLabel(String);

/// `GET /metrics`: the database gauges read now, then this process's counters.
pub(super) async fn get_metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let gauges = match &state.orchestrator {
        Some(orchestrator) => orchestrator
            .store()
            .gauges(Utc::now())
            .await
            .map_err(ApiError::internal)?,
        None => Gauges::default(),
    };
    let body = state.metrics.metrics.render(&gauges);
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response())
}

fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let access = &state.metrics;
    if access.public {
        return Ok(());
    }
    let tokens: Vec<&Secret> = access
        .token
        .iter()
        .chain(state.workers.token.iter())
        .collect();
    if tokens.is_empty() {
        return Err(ApiError::unauthorized(
            "metrics are not shown: set 'metrics.token' (or 'worker_token') and scrape with \
             'Authorization: Bearer <token>', or set 'metrics.public: true'",
        ));
    }
    match super::bearer_token(headers) {
        // Every token is compared, so the time taken does not tell which one matched.
        Some(presented) => {
            let matched = tokens.iter().fold(false, |any, token| {
                super::worker_routes::same_secret(presented, token.expose()) | any
            });
            if matched {
                Ok(())
            } else {
                Err(ApiError::unauthorized("invalid metrics token"))
            }
        }
        None => Err(ApiError::unauthorized(
            "a metrics token is required (Authorization: Bearer <metrics.token>)",
        )),
    }
}

/// Inside a surface: stamps the response with the matched route template.
pub(super) async fn label_route(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let mut response = next.run(request).await;
    if let Some(route) = route
        && response.extensions().get::<RouteLabel>().is_none()
    {
        response.extensions_mut().insert(RouteLabel(route));
    }
    response
}

/// Outermost: counts every answered request by method, route template and status, and times
/// it to the response head.
pub(super) async fn record_http(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let path = request.uri().path();
    let machine = ["/api", "/hooks", "/worker"].iter().any(|surface| {
        path.strip_prefix(surface)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    });
    let response = next.run(request).await;
    let route = match response.extensions().get::<RouteLabel>() {
        Some(RouteLabel(route)) => route.as_str(),
        None if machine => "unmatched",
        None => "ui",
    };
    state.metrics.metrics.http_request(
        method,
        route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// The standard methods by name; anything else (an extension method) as `other`, so a client
/// cannot create series at will.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
