//! The bodies of the worker protocol (API §7): register, heartbeat, claim, start, log batches
//! and complete. The server, the remote worker's HTTP client and the embedded worker's
//! in-process transport all use these types, so the three cannot drift apart.
//!
//! A claim hands out a rendered [`StepSpec`] — the same contract the local runner executes —
//! and a completion carries the fields of the runner's [`AttemptResult`], so nothing is lost
//! between what the runner observed and what the engine decides on.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::error::ParamError;
use super::execute::OkStatus;
use super::job::JobMode;
use crate::runner::spec::{AttemptResult, Outcome, StepSpec, Stream};

/// Longest a claim may wait for work (API §7.3).
pub const MAX_CLAIM_WAIT_SECS: u32 = 30;

/// What a worker can run (API §7.2, §7.5).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// `type: script` with `runner: local` (legacy `shell` too).
    Script,
    Docker,
    Kubernetes,
}

impl Capability {
    /// The capability a word names; `shell` is the legacy name of `script`.
    pub fn from_word(word: &str) -> Option<Capability> {
        match word {
            "script" | "shell" => Some(Capability::Script),
            "docker" => Some(Capability::Docker),
            "kubernetes" => Some(Capability::Kubernetes),
            _ => None,
        }
    }
}

/// `POST /worker/register`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub name: String,
    pub version: String,
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub max_concurrent: u32,
}

/// A registration with its capabilities understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub name: String,
    pub version: String,
    /// Sorted, without duplicates, never empty.
    pub capabilities: Vec<Capability>,
    /// The routing tags, without capability words.
    pub tags: Vec<String>,
    pub max_concurrent: u32,
}

impl RegisterRequest {
    /// Applies API §7.2: `shell` means `script`, capability words found in `tags` move to the
    /// capabilities, any other capability word is an error, and at least one must remain.
    pub fn normalize(&self) -> Result<Registration, ParamError> {
        let mut capabilities = Vec::new();
        for word in &self.capabilities {
            let capability = Capability::from_word(word).ok_or_else(|| {
                ParamError::new(
                    "capabilities",
                    format!("unknown capability '{word}' (expected script, docker or kubernetes)"),
                )
            })?;
            capabilities.push(capability);
        }
        let mut tags = Vec::new();
        for tag in &self.tags {
            match Capability::from_word(tag) {
                Some(capability) => capabilities.push(capability),
                None if !tags.contains(tag) => tags.push(tag.clone()),
                None => {}
            }
        }
        capabilities.sort();
        capabilities.dedup();
        if capabilities.is_empty() {
            return Err(ParamError::new(
                "capabilities",
                "at least one of script, docker or kubernetes is required",
            ));
        }
        if self.max_concurrent == 0 {
            return Err(ParamError::new("max_concurrent", "must be at least 1"));
        }
        if self.name.trim().is_empty() {
            return Err(ParamError::new("name", "must not be empty"));
        }
        Ok(Registration {
            name: self.name.clone(),
            version: self.version.clone(),
            capabilities,
            tags,
            max_concurrent: self.max_concurrent,
        })
    }
}

/// 200 answer to a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterReply {
    pub worker_id: Uuid,
    pub heartbeat_interval_secs: u64,
    pub lease_timeout_secs: u64,
}

/// `POST /worker/heartbeat`: every lease the worker holds, at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatRequest {
    pub worker_id: Uuid,
    #[serde(default)]
    pub leases: Vec<Uuid>,
    /// [P2] local-mode jobs whose working directory the worker keeps.
    #[serde(default)]
    pub pinned_jobs: Vec<Uuid>,
}

impl HeartbeatRequest {
    /// At most [`MAX_HEARTBEAT_LEASES`] lease ids (and as many pinned jobs): a worker holds
    /// one lease per running step, and a list without bound would hold the database's write
    /// lock for as long as the sender likes.
    pub fn validate(&self) -> Result<(), ParamError> {
        for (field, count) in [
            ("leases", self.leases.len()),
            ("pinned_jobs", self.pinned_jobs.len()),
        ] {
            if count > MAX_HEARTBEAT_LEASES {
                return Err(ParamError::new(
                    field,
                    format!("at most {MAX_HEARTBEAT_LEASES} ids per heartbeat, found {count}"),
                ));
            }
        }
        Ok(())
    }
}

/// The most lease ids one heartbeat may renew.
pub const MAX_HEARTBEAT_LEASES: usize = 400;

/// What the worker must do about its leases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatReply {
    pub status: OkStatus,
    /// Stop these processes now and report them with `cancelled: true`.
    pub cancel: Vec<Uuid>,
    /// The server no longer honours these: kill their processes, report nothing.
    pub unknown: Vec<Uuid>,
    /// [P2] terminal local-mode jobs whose directories may go.
    #[serde(default)]
    pub release_jobs: Vec<Uuid>,
}

/// `POST /worker/jobs/claim` (long poll).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    pub worker_id: Uuid,
    /// 0–30; answered with 204 after this long without work.
    #[serde(default)]
    pub wait_secs: u32,
}

impl ClaimRequest {
    pub fn validate(&self) -> Result<(), ParamError> {
        if self.wait_secs > MAX_CLAIM_WAIT_SECS {
            return Err(ParamError::new(
                "wait_secs",
                format!("must be from 0 to {MAX_CLAIM_WAIT_SECS}"),
            ));
        }
        Ok(())
    }
}

/// 200 answer to a claim: the lease and the fully rendered step. The job, step, attempt,
/// input and mask values are those of `spec`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimReply {
    pub lease_id: Uuid,
    pub lease_timeout_secs: u64,
    /// When the lease expires unless a heartbeat renews it.
    #[serde(with = "super::time")]
    pub lease_expires_at: DateTime<Utc>,
    pub revision: String,
    pub mode: JobMode,
    pub action_type: String,
    pub runner: String,
    pub action_image: Option<String>,
    /// [P3] Pod steps only: grants this revision's tarball while the lease lives (API §7.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_token: Option<String>,
    pub spec: StepSpec,
}

/// `POST /worker/deregister` [P2]: a worker shutting down says goodbye (API §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeregisterRequest {
    pub worker_id: Uuid,
}

/// `POST /worker/jobs/{id}/steps/{step}/start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    pub worker_id: Uuid,
    pub lease_id: Uuid,
}

/// `POST /worker/jobs/{id}/logs`: a batch of lines of one lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogBatch {
    pub worker_id: Uuid,
    pub lease_id: Uuid,
    /// Must be the lease's step.
    pub step_name: String,
    /// 0-based index, within the lease, of the first line: lines already held are ignored, so a
    /// retried batch is stored once.
    pub offset: u64,
    pub lines: Vec<BatchLine>,
}

/// One captured line, already masked by the worker with the claim's mask values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchLine {
    #[serde(with = "super::time")]
    pub ts: DateTime<Utc>,
    pub stream: Stream,
    pub line: String,
}

/// Answer to a log batch; `cancel: true` means the same as a heartbeat's `cancel` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogBatchReply {
    pub status: OkStatus,
    pub cancel: bool,
}

/// `POST /worker/jobs/{id}/steps/{step}/complete`, sent after every log line of the lease. The
/// fields are the runner's [`AttemptResult`], with wire-format times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    pub worker_id: Uuid,
    pub lease_id: Uuid,
    /// What the runner observed; a `cancelling` lease makes the step `cancelled` whatever it
    /// says.
    pub outcome: Outcome,
    /// The validated output on success, else null.
    pub output: Value,
    /// The worker's failure summary (WF §11.4); null on success.
    pub error_message: Option<String>,
    #[serde(with = "super::time")]
    pub started_at: DateTime<Utc>,
    #[serde(with = "super::time")]
    pub finished_at: DateTime<Utc>,
}

impl CompleteRequest {
    pub fn new(worker_id: Uuid, lease_id: Uuid, result: AttemptResult) -> Self {
        CompleteRequest {
            worker_id,
            lease_id,
            outcome: result.outcome,
            output: result.output,
            error_message: result.error_message,
            started_at: result.started_at,
            finished_at: result.finished_at,
        }
    }

    /// The report as the engine's `StepFinished` takes it.
    pub fn result(&self) -> AttemptResult {
        AttemptResult {
            outcome: self.outcome,
            output: self.output.clone(),
            error_message: self.error_message.clone(),
            started_at: self.started_at,
            finished_at: self.finished_at,
        }
    }
}
