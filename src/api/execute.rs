//! Creating and cancelling jobs (API §3.3, §3.4): the execute request and the small
//! `{job_id, status}` reply both routes answer with.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::engine::JobStatus;

/// `POST /api/workspaces/{ws}/tasks/{name}/execute`. Unknown fields are rejected (API §1.2) so a
/// misspelt `inputs` fails loudly instead of running the task with defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteRequest {
    /// The job input; absent or null means `{}`. Validated against the task's schema (WF §3.2).
    #[serde(default, deserialize_with = "object_or_null")]
    #[schema(value_type = Object)]
    pub input: Map<String, Value>,
    /// [P2] re-run of this job: `••••••` in a secret field means "the source job's value".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_job_id: Option<Uuid>,
}

impl ExecuteRequest {
    /// The input as the value the workflow layer validates.
    pub fn input_value(&self) -> Value {
        Value::Object(self.input.clone())
    }
}

/// The longest `rejection_reason` (API §3.4).
pub const MAX_REJECTION_REASON: usize = 4096;

/// `POST /api/jobs/{id}/steps/{step}/approve` [P2] (API §3.4): `approved: true` with the
/// approver's form `input`, or `approved: false` with a `rejection_reason`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveRequest {
    pub approved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub input: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection_reason: Option<String>,
}

/// `POST /api/jobs/{id}/steps/{step}/reject` (an addition to API §3.4, docs/deviations.md): the
/// same as `approve` with `approved: false`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `{"status": "approved"}` or `{"status": "rejected"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DecisionReply {
    pub status: String,
}

/// `{"job_id": "…", "status": "pending"}`: the answer to execute and cancel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobStatusReply {
    pub job_id: Uuid,
    pub status: JobStatus,
}

/// `{"job_id", "trigger", "task", "workspace"}`: a webhook call's answer (API §6). In
/// `mode: sync` it adds `status`, and `output` once the job ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookReply {
    pub job_id: Uuid,
    pub trigger: String,
    pub task: String,
    pub workspace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<JobStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<serde_json::Value>,
}

/// `GET /hooks/{name}/jobs/{job_id}` [P2] (API §6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookJobReply {
    pub job_id: Uuid,
    pub trigger: String,
    pub task: String,
    pub status: JobStatus,
    pub output: Value,
    #[serde(with = "super::time")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "super::time::option")]
    pub completed_at: Option<DateTime<Utc>>,
}

/// `{"status": "ok"}`, with `duplicate: true` when a retried worker `complete` was already
/// applied (API §7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OkReply {
    pub status: OkStatus,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
}

impl OkReply {
    pub const OK: OkReply = OkReply {
        status: OkStatus::Ok,
        duplicate: false,
    };
    pub const DUPLICATE: OkReply = OkReply {
        status: OkStatus::Ok,
        duplicate: true,
    };
}

/// The only status of [`OkReply`]; an enum so a client rejects anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OkStatus {
    Ok,
}

fn object_or_null<'de, D>(deserializer: D) -> Result<Map<String, Value>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(Option::<Map<String, Value>>::deserialize(deserializer)?.unwrap_or_default())
}
