//! The types that go on the wire: request and response bodies of the public API (API §2–§4)
//! and of the worker protocol (API §7), the error body (API §1.3), validated query parameters
//! and the time format. The server, the CLI's client verbs and the workers all use these, so a
//! field renamed here is renamed everywhere at once.
//!
//! *Invariant*: only these types go on the wire, and this module knows nothing of HTTP — no
//! axum, no status codes — so a client can use it without pulling in the server.

pub mod auth;
pub mod error;
pub mod execute;
pub mod health;
pub mod job;
pub mod job_ref;
pub mod logs;
pub mod protocol;
pub mod query;
pub mod stats;
pub mod time;
pub mod worker;

pub use error::{ErrorBody, ErrorDetail, ParamError};
pub use execute::{
    ExecuteRequest, JobStatusReply, OkReply, OkStatus, WebhookJobReply, WebhookReply,
};
pub use health::{DbStatus, HealthReply, HealthStatus};
pub use job::{ChainJob, JobDetail, JobMode, JobSummary, JobView, RetryView, StepView};
pub use job_ref::{JobRef, JobRefError};
pub use logs::LogsReply;
pub use protocol::{
    BatchLine, Capability, ClaimReply, ClaimRequest, CompleteRequest, HeartbeatReply,
    HeartbeatRequest, LogBatch, LogBatchReply, RegisterReply, RegisterRequest, Registration,
    StartRequest,
};
pub use query::{FromParams, JobListQuery, LogQuery, Page, Params};
pub use stats::{ConfigReply, OidcProvider, StatsReply};
pub use worker::{WorkerDetail, WorkerStatus, WorkerStep, WorkerView};

/// Body limits (API §1.4), in bytes.
pub mod limits {
    /// `/api` request bodies, job input.
    pub const API_BODY: usize = 1024 * 1024;
    /// A webhook call's body (API §6).
    pub const WEBHOOK_BODY: usize = 1024 * 1024;
    /// A worker log batch.
    pub const LOG_BATCH: usize = 4 * 1024 * 1024;
    /// A worker `complete` body.
    pub const COMPLETE_BODY: usize = 2 * 1024 * 1024;
}

#[cfg(test)]
mod tests;
