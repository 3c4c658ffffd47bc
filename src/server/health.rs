//! `GET /healthz` (API §3.6). The check itself belongs to whoever owns the database; the
//! server only needs something it can ask "does the database answer?", bounded in time so a
//! hung database makes the probe fail instead of hang.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::api::HealthReply;

/// A probe longer than this counts as a database failure.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// The boxed future a [`HealthCheck`] returns.
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = bool> + Send + 'a>>;

/// Answers whether the database is reachable. Closures returning a future implement it.
pub trait HealthCheck: Send + Sync + 'static {
    fn database_ok(&self) -> CheckFuture<'_>;
}

impl<F, Fut> HealthCheck for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    fn database_ok(&self) -> CheckFuture<'_> {
        Box::pin(self())
    }
}

/// The shared health check held in the server state.
#[derive(Clone)]
pub struct Health {
    check: Arc<dyn HealthCheck>,
    timeout: Duration,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Health(..)")
    }
}

impl Health {
    /// A check bounded by [`CHECK_TIMEOUT`].
    pub fn new(check: impl HealthCheck) -> Self {
        Health::with_timeout(check, CHECK_TIMEOUT)
    }

    pub fn with_timeout(check: impl HealthCheck, timeout: Duration) -> Self {
        Health {
            check: Arc::new(check),
            timeout,
        }
    }

    /// Runs the check; one that does not answer within the timeout failed.
    pub async fn check(&self) -> HealthReply {
        let ok = tokio::time::timeout(self.timeout, self.check.database_ok())
            .await
            .unwrap_or(false);
        HealthReply::for_db(ok)
    }
}

/// 200 `{"status": "ok", "db": "ok"}` or 503 `{"status": "unhealthy", "db": "error"}`.
pub async fn healthz(State(health): State<Health>) -> Response {
    let reply = health.check().await;
    let status = if reply.is_healthy() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(reply)).into_response()
}
