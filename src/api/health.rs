//! `GET /healthz` (API §3.6): the body operators and load balancers read.

use serde::{Deserialize, Serialize};

/// `{"status": "ok", "db": "ok"}` (200) or `{"status": "unhealthy", "db": "error"}` (503).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HealthReply {
    pub status: HealthStatus,
    pub db: DbStatus,
}

impl HealthReply {
    /// The reply for a database check's result: healthy exactly when the database answered.
    pub fn for_db(db_ok: bool) -> Self {
        if db_ok {
            HealthReply {
                status: HealthStatus::Ok,
                db: DbStatus::Ok,
            }
        } else {
            HealthReply {
                status: HealthStatus::Unhealthy,
                db: DbStatus::Error,
            }
        }
    }

    pub fn is_healthy(&self) -> bool {
        self.status == HealthStatus::Ok
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Ok,
    Unhealthy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DbStatus {
    Ok,
    Error,
}
