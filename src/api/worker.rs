//! Workers as the public API shows them (API §2.6, §3.5). The protocol workers speak is in
//! [`super::protocol`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::protocol::Capability;
use crate::engine::StepStatus;

/// `active` while heartbeats arrive; `inactive` after the heartbeat timeout or deregistration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkerStatus {
    Active,
    Inactive,
}

/// One worker (API §2.6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkerView {
    pub worker_id: Uuid,
    pub name: String,
    pub status: WorkerStatus,
    pub version: String,
    pub capabilities: Vec<Capability>,
    pub tags: Vec<String>,
    pub max_concurrent: u32,
    pub running_steps: u32,
    #[serde(with = "super::time::option")]
    pub last_heartbeat: Option<DateTime<Utc>>,
    #[serde(with = "super::time")]
    pub registered_at: DateTime<Utc>,
}

/// `GET /api/workers/{id}`: the worker and its 50 most recent steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkerDetail {
    #[serde(flatten)]
    pub worker: WorkerView,
    pub steps: Vec<WorkerStep>,
}

/// One step a worker ran or runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkerStep {
    pub job_id: Uuid,
    pub workspace: String,
    pub task_name: String,
    pub step_name: String,
    pub action_type: String,
    pub status: StepStatus,
    #[serde(with = "super::time::option")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(with = "super::time::option")]
    pub completed_at: Option<DateTime<Utc>>,
    pub error_message: Option<String>,
}
