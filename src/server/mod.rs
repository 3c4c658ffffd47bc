//! The HTTP edge of `stroem serve`: the router, its state, error responses, extractors and
//! the serve loop. Routes translate between the wire types of [`crate::api`] and the modules
//! that do the work; no business rule lives here.
//!
//! *Invariant*: this is the only module that imports axum. [`router`] is a pure function of
//! [`AppState`], so tests drive it with `tower::ServiceExt::oneshot` without a socket, and
//! [`serve`] takes an already bound listener (port 0 in tests) and a shutdown token.
//!
//! Surfaces (API §1.1): `/api`, `/hooks` and `/worker` answer unknown paths with JSON 404;
//! `/healthz` is public, `/metrics` has its own token ([`metrics`]); everything else falls through to the embedded web UI ([`ui`]).

mod accounts;
mod auth_routes;
mod connection;
mod edge;
mod error;
mod extract;
mod fallback;
mod gate;
mod health;
mod metrics;
mod openapi;
mod pagination;
mod refresh;
mod request_id;
mod routes;
mod stream;
mod ui;
mod views;
mod webhooks;
mod worker_routes;

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Extension, FromRef};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;

pub use edge::HttpPolicy;
pub use error::{ApiError, AuthFailure, ConflictKind, UNAVAILABLE_RETRY_SECS};
pub use extract::{
    ApiJson, ApiPath, ApiQuery, BodyLimit, bearer_credentials, bearer_token, parse_json,
};
pub use gate::{ClientIp, Security};
pub use health::{CHECK_TIMEOUT, CheckFuture, Health, HealthCheck, healthz};
pub use metrics::MetricsAccess;
pub use openapi::{DOCUMENT as OPENAPI, reference_markdown};
pub use pagination::{Paginated, X_TOTAL_COUNT};
pub use request_id::{RequestId, X_REQUEST_ID};
pub use ui::UiBundle;
pub use worker_routes::WorkerAccess;

use crate::api::limits;

/// How long [`serve`] lets in-flight requests finish after shutdown is signalled. Long polls
/// (≤ 30 s) and log streams should watch the shutdown token themselves; this bound only makes
/// sure a stuck connection cannot keep the process alive.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything handlers share. Cheap to clone: every field is a handle. Handlers take only the
/// part they need (`State<Health>`) through [`FromRef`].
#[derive(Debug, Clone)]
pub struct AppState {
    pub health: Health,
    /// The job engine; `None` only in tests of the HTTP edge itself.
    pub orchestrator: Option<crate::orchestrator::Orchestrator>,
    /// The worker token and what else the `/worker` routes need.
    pub workers: WorkerAccess,
    /// The web UI's files: [`UiBundle::embedded`] in `serve`, a fixture or nothing in tests.
    pub ui: UiBundle,
    /// Authentication (none: off) and the trusted proxies.
    pub security: Security,
    /// Timeouts and allowed origins (the `http` section).
    pub http: HttpPolicy,
    /// Who may scrape `/metrics`, and the metrics HTTP requests are counted in.
    pub metrics: MetricsAccess,
}

impl FromRef<AppState> for HttpPolicy {
    fn from_ref(state: &AppState) -> Self {
        state.http.clone()
    }
}

impl FromRef<AppState> for Health {
    fn from_ref(state: &AppState) -> Self {
        state.health.clone()
    }
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    assemble(state, api_routes())
}

/// The surfaces around a set of `/api` routes; tests assemble their own routes with it.
fn assemble(state: AppState, api: Router<AppState>) -> Router {
    let workers = worker_routes::worker_routes(&state);
    // The gate wraps the whole `/api` surface, unknown paths and methods included, so every
    // route — also one added later — needs credentials unless it is public (API §5.1). It is
    // outside everything but CORS (whose preflights carry no credentials), so nothing about a
    // route shows before sign-in and the audit trail also records writes the same-origin check
    // refuses.
    let api = machine_surface(api, limits::API_BODY)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            edge::same_origin_writes,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            gate::gate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            edge::cors,
        ))
        .route_layer(axum::middleware::from_fn(metrics::label_route));
    let hooks = machine_surface(webhooks::webhook_routes(), limits::WEBHOOK_BODY)
        .route_layer(axum::middleware::from_fn(metrics::label_route));
    let workers = machine_surface(workers, limits::LOG_BATCH)
        .route_layer(axum::middleware::from_fn(metrics::label_route));
    // `/metrics` has its own credentials (API §3.6), like `/worker`: outside the `/api` gate.
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::get_metrics))
        .route_layer(axum::middleware::from_fn(metrics::label_route))
        .nest("/api", api)
        .nest("/hooks", hooks)
        .nest("/worker", workers)
        .fallback(ui::serve_ui)
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            edge::request_deadline,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::record_http,
        ))
        .layer(axum::middleware::from_fn(request_id::layer))
        .with_state(state)
}

/// Every route of the machine surfaces — the `/api` table, the worker protocol and the
/// webhooks — as method and path pattern (`/api/jobs/{id}/cancel`), for tests that walk them
/// all (issue #16 item 20).
pub fn route_patterns() -> Vec<(String, String)> {
    let api = routes::table().into_iter().map(|entry| {
        (
            entry.route.method.to_string(),
            format!("/api{}", entry.route.path),
        )
    });
    let workers = worker_routes::PATTERNS
        .iter()
        .map(|(method, path)| ((*method).to_owned(), format!("/worker{path}")));
    let hooks = [
        ("GET", "/hooks/{name}"),
        ("POST", "/hooks/{name}"),
        ("GET", "/hooks/{name}/jobs/{job_id}"),
    ]
    .into_iter()
    .map(|(method, path)| (method.to_owned(), path.to_owned()));
    api.chain(workers).chain(hooks).collect()
}

/// The `/api` routes (API §3, §5).
fn api_routes() -> Router<AppState> {
    routes::api_routes()
}

/// A machine-facing route group: JSON 404/405 for what it does not know and its body limit.
fn machine_surface(routes: Router<AppState>, body_limit: usize) -> Router<AppState> {
    routes
        .fallback(fallback::no_route)
        .method_not_allowed_fallback(fallback::method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(Extension(BodyLimit(body_limit)))
}

/// Serves `state` on `listener` until `shutdown` is cancelled, then drains in-flight requests
/// for at most [`DRAIN_TIMEOUT`].
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let address = listener.local_addr()?;
    tracing::info!(%address, "serving HTTP");
    let policy = state.http.clone();
    let app = router(state).layer(Extension(stream::Shutdown(shutdown.clone())));
    let server = connection::accept(listener, app, policy, shutdown.clone());
    tokio::pin!(server);
    tokio::select! {
        () = &mut server => {}
        () = shutdown.cancelled() => {
            if tokio::time::timeout(DRAIN_TIMEOUT, &mut server).await.is_err() {
                tracing::warn!(
                    "HTTP connections still open {DRAIN_TIMEOUT:?} after shutdown; closing"
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
