//! The remote worker's transport (`stroem work`): the worker protocol of API §7 over HTTP with
//! `ureq`. Calls are blocking, so each runs on tokio's blocking pool.
//!
//! The server is the one that decides; this side only keeps trying sensibly:
//! - a 404 for the worker id (the server forgot it) makes the transport register again and
//!   speak for the new id from then on; the leases of the old one are given up;
//! - `start`, `logs` and `complete` are retried while the server is unreachable or answers 5xx,
//!   with a pause doubling from `poll_interval_secs` to 30 s, until they are acknowledged,
//!   rejected, or the lease must have expired anyway;
//! - 409 `stale_lease` means the lease is gone: the step must not run (`start`), must stop
//!   (`logs`), and its report is dropped (`complete`).
//!
//! Remote workers cannot read the server's revision snapshots, so the revision of each claimed
//! step is downloaded once as a tarball and cached ([`RevisionCache`]).

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::revisions::{RevisionCache, RevisionError};
use super::{ClaimedStep, Heartbeat, MAX_RETRY_PAUSE, Transport};
use crate::api::ErrorBody;
use crate::api::protocol::{
    BatchLine, ClaimReply, ClaimRequest, CompleteRequest, DeregisterRequest, HeartbeatReply,
    HeartbeatRequest, LogBatch, LogBatchReply, MAX_HEARTBEAT_LEASES, RegisterReply,
    RegisterRequest, StartRequest,
};
use crate::runner::spec::{AttemptResult, LogLine};
use crate::store::{Lease, LeaseKey, LeaseStatus};

/// How long an ordinary request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A claim waits this much longer than its `wait_secs` before giving up on the answer.
const CLAIM_GRACE: Duration = Duration::from_secs(15);
/// Downloading a revision may take longer than a report.
const TARBALL_TIMEOUT: Duration = Duration::from_secs(600);
/// Largest revision archive accepted (compressed).
const MAX_TARBALL_BYTES: u64 = 1024 * 1024 * 1024;
/// Lease lifetime assumed until the server has told it.
const DEFAULT_LEASE_TIMEOUT: Duration = Duration::from_secs(60);

/// What the HTTP transport needs from the worker configuration (API §10.2).
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// `server_url`, without the `/worker` path.
    pub server_url: String,
    pub worker_token: crate::config::Secret,
    pub registration: RegisterRequest,
    /// `workspace_cache_dir`: extracted revisions.
    pub cache_dir: PathBuf,
    /// `workspace_cache_max_bytes`, `workspace_cache_max_file_bytes`.
    pub revision_limits: super::RevisionLimits,
    /// `poll_interval_secs`: the first pause between retries of a report.
    pub retry_pause: Duration,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// No answer: connection refused, reset or timed out.
    #[error("server unreachable: {0}")]
    Unreachable(#[from] ureq::Error),
    /// The server answered with an error (API §1.3).
    #[error("server answered {status} {code}: {message}")]
    Status {
        status: u16,
        code: String,
        message: String,
    },
    #[error("unexpected answer from the server: {0}")]
    Decode(String),
    #[error(transparent)]
    Revision(#[from] RevisionError),
    #[error("request task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl HttpError {
    fn status(&self) -> Option<u16> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Worth trying again later: the server may come back.
    fn is_transient(&self) -> bool {
        match self {
            HttpError::Unreachable(_) => true,
            HttpError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// An answer: status and body.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

/// The worker protocol over HTTP.
pub struct HttpTransport {
    agent: ureq::Agent,
    base: String,
    authorization: String,
    registration: RegisterRequest,
    cache: RevisionCache,
    /// The revision each running attempt copies its files from, by lease: pruning keeps them.
    in_use: Mutex<std::collections::HashMap<Uuid, (String, String)>>,
    retry_pause: Duration,
    /// The id the server knows this worker by; replaced by a re-registration.
    worker_id: Mutex<Option<Uuid>>,
    lease_timeout: Mutex<Duration>,
    /// Serialises re-registrations, so slots that all hear 404 register only once.
    registering: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransport")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl HttpTransport {
    pub fn new(settings: HttpSettings) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .user_agent(concat!("stroem-worker/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        HttpTransport {
            agent,
            base: settings.server_url.trim_end_matches('/').to_owned(),
            authorization: format!("Bearer {}", settings.worker_token.expose()),
            registration: settings.registration,
            cache: RevisionCache::with_limits(settings.cache_dir, settings.revision_limits),
            in_use: Mutex::default(),
            retry_pause: settings.retry_pause.max(Duration::from_millis(100)),
            worker_id: Mutex::new(None),
            lease_timeout: Mutex::new(DEFAULT_LEASE_TIMEOUT),
            registering: tokio::sync::Mutex::new(()),
        }
    }

    /// The id to speak for: the latest registration's, else the one the loop holds.
    fn current_id(&self, given: Uuid) -> Uuid {
        self.worker_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .unwrap_or(given)
    }

    fn lease_timeout(&self) -> Duration {
        *self
            .lease_timeout
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// One POST of a JSON body on the blocking pool.
    async fn send(
        &self,
        path: String,
        body: Vec<u8>,
        timeout: Duration,
        limit: u64,
    ) -> Result<Answer, HttpError> {
        let agent = self.agent.clone();
        let url = format!("{}{path}", self.base);
        let authorization = self.authorization.clone();
        tokio::task::spawn_blocking(move || {
            let mut response = agent
                .post(&url)
                .header("Authorization", &authorization)
                .content_type("application/json")
                .config()
                .timeout_global(Some(timeout))
                .build()
                .send(&body[..])?;
            let status = response.status().as_u16();
            let body = response
                .body_mut()
                .with_config()
                .limit(limit)
                .read_to_vec()?;
            Ok(Answer { status, body })
        })
        .await?
    }

    /// POSTs `body` and decodes a 200 answer; 204 is `None`; anything else is an error.
    async fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        path: String,
        body: &B,
        timeout: Duration,
    ) -> Result<Option<R>, HttpError> {
        let bytes =
            serde_json::to_vec(body).map_err(|error| HttpError::Decode(error.to_string()))?;
        let answer = self.send(path, bytes, timeout, 16 * 1024 * 1024).await?;
        match answer.status {
            200 => serde_json::from_slice(&answer.body)
                .map(Some)
                .map_err(|error| HttpError::Decode(error.to_string())),
            204 => Ok(None),
            status => Err(error_of(status, &answer.body)),
        }
    }

    /// A report under a lease, retried while the server is unreachable or failing, for at most
    /// the lease's lifetime: after that the server has expired the lease anyway.
    async fn report<B: Serialize, R: DeserializeOwned>(
        &self,
        path: String,
        body: &B,
    ) -> Result<Option<R>, HttpError> {
        let deadline = tokio::time::Instant::now() + self.lease_timeout();
        let mut pause = self.retry_pause;
        loop {
            match self.post(path.clone(), body, REQUEST_TIMEOUT).await {
                Err(error) if error.is_transient() && tokio::time::Instant::now() < deadline => {
                    tracing::warn!(%path, "report failed, retrying in {pause:?}: {error}");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_RETRY_PAUSE);
                }
                other => return other,
            }
        }
    }

    /// Registers again after the server answered 404 for `stale`, unless another task did so
    /// already.
    async fn reregister(&self, stale: Uuid) -> Result<(), HttpError> {
        let _guard = self.registering.lock().await;
        if self.current_id(stale) != stale {
            return Ok(());
        }
        tracing::warn!(worker_id = %stale, "the server does not know this worker; registering again");
        self.register_now().await.map(|_| ())
    }

    async fn register_now(&self) -> Result<Uuid, HttpError> {
        let reply: RegisterReply = self
            .post(
                "/worker/register".to_owned(),
                &self.registration,
                REQUEST_TIMEOUT,
            )
            .await?
            .ok_or_else(|| HttpError::Decode("empty answer to a registration".to_owned()))?;
        *self
            .worker_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(reply.worker_id);
        *self
            .lease_timeout
            .lock()
            .unwrap_or_else(PoisonError::into_inner) =
            Duration::from_secs(reply.lease_timeout_secs);
        Ok(reply.worker_id)
    }

    /// Downloads a revision the cache does not have yet and extracts it as it arrives, so the
    /// archive is never held in memory.
    async fn fetch_revision(&self, ws: &str, revision: &str) -> Result<PathBuf, HttpError> {
        let url = format!(
            "{}/worker/workspace/{}.tar.zst?revision={revision}",
            self.base,
            encode_segment(ws)
        );
        let agent = self.agent.clone();
        let authorization = self.authorization.clone();
        let cache = self.cache.clone();
        let (ws, revision) = (ws.to_owned(), revision.to_owned());
        tokio::task::spawn_blocking(move || {
            let mut response = agent
                .get(&url)
                .header("Authorization", &authorization)
                .config()
                .timeout_global(Some(TARBALL_TIMEOUT))
                .build()
                .call()?;
            let status = response.status().as_u16();
            if status != 200 {
                let body = response
                    .body_mut()
                    .with_config()
                    .limit(64 * 1024)
                    .read_to_vec()?;
                return Err(error_of(status, &body));
            }
            let etag = response
                .headers()
                .get("etag")
                .and_then(|value| value.to_str().ok());
            let expected = format!("\"{revision}\"");
            if etag != Some(expected.as_str()) {
                return Err(HttpError::Decode(format!(
                    "the archive of revision {revision} came with ETag {etag:?}"
                )));
            }
            let body = response
                .into_body()
                .into_with_config()
                .limit(MAX_TARBALL_BYTES)
                .reader();
            let tar = zstd::Decoder::new(body).map_err(RevisionError::Io)?;
            Ok(cache.extract(&ws, &revision, tar)?)
        })
        .await?
    }
}

/// The error of a non-success answer, from its JSON body when it has one.
fn error_of(status: u16, body: &[u8]) -> HttpError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(error) => HttpError::Status {
            status,
            code: error.code,
            message: error.error,
        },
        Err(_) => HttpError::Status {
            status,
            code: String::new(),
            message: String::from_utf8_lossy(body).chars().take(200).collect(),
        },
    }
}

/// Percent-encodes a path segment (API §1.2): loop instances like `deploy[2]` must be encoded.
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn step_path(key: &LeaseKey, action: &str) -> String {
    format!(
        "/worker/jobs/{}/steps/{}/{action}",
        key.job_id,
        encode_segment(&key.step_name)
    )
}

impl Transport for HttpTransport {
    async fn register(&self) -> anyhow::Result<Uuid> {
        let _guard = self.registering.lock().await;
        Ok(self.register_now().await?)
    }

    async fn heartbeat(
        &self,
        worker_id: Uuid,
        leases: &[Uuid],
        pinned_jobs: &[Uuid],
    ) -> anyhow::Result<Heartbeat> {
        let worker_id = self.current_id(worker_id);
        let mut reply = Heartbeat::default();
        // The server takes at most 400 lease ids (and as many pinned jobs) per heartbeat; a
        // worker with more sends several. One request even without either marks it active.
        let lease_chunks: Vec<&[Uuid]> = leases.chunks(MAX_HEARTBEAT_LEASES).collect();
        let pinned_chunks: Vec<&[Uuid]> = pinned_jobs.chunks(MAX_HEARTBEAT_LEASES).collect();
        let requests = lease_chunks.len().max(pinned_chunks.len()).max(1);
        for index in 0..requests {
            let request = HeartbeatRequest {
                worker_id,
                leases: lease_chunks
                    .get(index)
                    .map_or_else(Vec::new, |c| c.to_vec()),
                pinned_jobs: pinned_chunks
                    .get(index)
                    .map_or_else(Vec::new, |c| c.to_vec()),
            };
            let sent: Result<Option<HeartbeatReply>, _> = self
                .post("/worker/heartbeat".to_owned(), &request, REQUEST_TIMEOUT)
                .await;
            match sent {
                Ok(Some(answer)) => {
                    reply.cancel.extend(answer.cancel);
                    reply.unknown.extend(answer.unknown);
                    reply.release_jobs.extend(answer.release_jobs);
                }
                Ok(None) => {
                    return Err(HttpError::Decode("empty answer to a heartbeat".to_owned()).into());
                }
                Err(error) if error.status() == Some(404) => {
                    // The old leases expire on the server: stop their processes (API §7.2).
                    // The jobs pinned to the old id are released by the next heartbeat.
                    self.reregister(worker_id).await?;
                    return Ok(Heartbeat {
                        unknown: leases.to_vec(),
                        ..Heartbeat::default()
                    });
                }
                Err(error) => return Err(error.into()),
            }
        }
        Ok(reply)
    }

    async fn claim(&self, worker_id: Uuid, wait: Duration) -> anyhow::Result<Option<ClaimedStep>> {
        let worker_id = self.current_id(worker_id);
        let wait_secs = u32::try_from(wait.as_secs())
            .unwrap_or(u32::MAX)
            .min(crate::api::protocol::MAX_CLAIM_WAIT_SECS);
        let request = ClaimRequest {
            worker_id,
            wait_secs,
        };
        let timeout = Duration::from_secs(u64::from(wait_secs)) + CLAIM_GRACE;
        let sent: Result<Option<ClaimReply>, _> = self
            .post("/worker/jobs/claim".to_owned(), &request, timeout)
            .await;
        let reply = match sent {
            Ok(Some(reply)) => reply,
            Ok(None) => return Ok(None),
            Err(error) if error.status() == Some(404) => {
                self.reregister(worker_id).await?;
                return Ok(None);
            }
            Err(error) => return Err(error.into()),
        };
        let now = chrono::Utc::now();
        let lease = Lease {
            lease_id: reply.lease_id,
            job_id: reply.spec.job_id,
            step_name: reply.spec.step.clone(),
            attempt: reply.spec.attempt,
            worker_id,
            state: LeaseStatus::Active,
            claimed_at: now,
            started_at: None,
            expires_at: reply.lease_expires_at,
            report_digest: None,
        };
        Ok(Some(ClaimedStep {
            lease,
            spec: reply.spec,
            revision: reply.revision,
            workspace_token: reply.workspace_token,
            mode: reply.mode.into(),
        }))
    }

    /// The cached tree of the revision, downloaded first if this worker has not seen it.
    async fn revision_files(&self, claimed: &ClaimedStep) -> anyhow::Result<PathBuf> {
        let ws = &claimed.spec.workspace;
        // In use until the attempt's complete report: pruning leaves it alone meanwhile.
        self.in_use
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                claimed.lease.lease_id,
                (ws.clone(), claimed.revision.clone()),
            );
        if let Some(path) = self.cache.cached(ws, &claimed.revision)? {
            if let Err(error) = self.cache.touch(ws, &claimed.revision) {
                tracing::debug!(workspace = %ws, %error, "cannot mark a revision as used");
            }
            return Ok(path);
        }
        let path = self.fetch_revision(ws, &claimed.revision).await?;
        let in_use: std::collections::HashSet<String> = self
            .in_use
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|(used_ws, _)| used_ws == ws)
            .map(|(_, revision)| revision.clone())
            .collect();
        match self.cache.prune(ws, &in_use) {
            Ok(0) => {}
            Ok(removed) => tracing::debug!(workspace = %ws, removed, "pruned cached revisions"),
            Err(error) => tracing::warn!(workspace = %ws, %error, "cannot prune cached revisions"),
        }
        Ok(path)
    }

    async fn start(&self, key: &LeaseKey) -> anyhow::Result<bool> {
        let request = StartRequest {
            worker_id: self.current_id(key.worker_id),
            lease_id: key.lease_id,
        };
        let sent: Result<Option<serde_json::Value>, _> =
            self.report(step_path(key, "start"), &request).await;
        match sent {
            Ok(_) => Ok(true),
            // Cancelled after the claim, or the lease is gone: do not run the step.
            Err(error) if error.status() == Some(409) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    async fn logs(&self, key: &LeaseKey, offset: u64, lines: Vec<LogLine>) -> anyhow::Result<bool> {
        let batch = LogBatch {
            worker_id: self.current_id(key.worker_id),
            lease_id: key.lease_id,
            step_name: key.step_name.clone(),
            offset,
            lines: lines
                .into_iter()
                .map(|line| BatchLine {
                    ts: line.ts,
                    stream: line.stream,
                    line: line.line,
                })
                .collect(),
        };
        let path = format!("/worker/jobs/{}/logs", key.job_id);
        let sent: Result<Option<LogBatchReply>, _> = self.report(path, &batch).await;
        match sent {
            Ok(reply) => Ok(reply.is_some_and(|reply| reply.cancel)),
            // The server no longer honours the lease: stop the process (API §7.4).
            Err(error) if error.status() == Some(409) => Ok(true),
            Err(error) => Err(error.into()),
        }
    }

    async fn complete(&self, key: &LeaseKey, result: AttemptResult) -> anyhow::Result<()> {
        // The working copy is gone by now: the revision is no longer in use by this attempt.
        self.in_use
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key.lease_id);
        let request = CompleteRequest::new(self.current_id(key.worker_id), key.lease_id, result);
        let sent: Result<Option<serde_json::Value>, _> =
            self.report(step_path(key, "complete"), &request).await;
        match sent {
            Ok(_) => Ok(()),
            Err(error) if error.status() == Some(409) => {
                tracing::warn!(step = %key.step_name, "the server rejected the report of a lease it no longer honours; dropping it");
                Ok(())
            }
            Err(error) => Err(error.into()),
        }
    }

    /// One try, no retries: the worker is exiting, and if the server does not hear it, its
    /// leases expire on their own (API §8.5).
    async fn deregister(&self, worker_id: Uuid) -> anyhow::Result<()> {
        let request = DeregisterRequest {
            worker_id: self.current_id(worker_id),
        };
        let sent: Result<Option<serde_json::Value>, _> = self
            .post("/worker/deregister".to_owned(), &request, REQUEST_TIMEOUT)
            .await;
        match sent {
            // An unknown worker has nothing to give up.
            Ok(_) => Ok(()),
            Err(error) if error.status() == Some(404) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names_are_percent_encoded() {
        assert_eq!(encode_segment("deploy[2]"), "deploy%5B2%5D");
        assert_eq!(encode_segment("a b/c"), "a%20b%2Fc");
        assert_eq!(encode_segment("build-1_x.y"), "build-1_x.y");
    }
}
