//! `GET /api/jobs/{id}/logs/stream`: a job's log over a WebSocket (API §4.3).
//!
//! Backfill and live lines come from one [`crate::logs::Follower`], which reads every batch from
//! the job's log file after the last seq it delivered: lines arrive exactly once, in seq order,
//! without a gap, and a slow subscriber only delays itself — the writer never waits for it. The
//! log is finished when the job has *finished* (all steps terminal, `completed_at` set), not
//! merely when its status is terminal: a cancelled job's steps go on printing while they stop.
//! Then the stream sends `{"event":"end","status":…}` and closes with 1000.
//!
//! Failures are answered before the upgrade with the JSON error body (400 bad parameter or not
//! a WebSocket request, 401 without credentials when authentication is on — `?token=` is
//! accepted here, see `gate` —, 404 unknown job or a job the access rules hide). A subscriber whose socket does not take a frame within
//! [`SEND_TIMEOUT`] is closed with 1013 and resumes with `after`; server shutdown closes every
//! stream with 1001. A subscriber that sends a message over [`CLIENT_MESSAGE_BYTES`] is closed
//! (1009): what clients send is ignored, and must not be buffered without bound.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::Response;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{ApiError, ApiPath, ApiQuery, AppState};
use crate::api::{FromParams, ParamError, Params};
use crate::engine::JobStatus;
use crate::logs::{LogStore, StoredLine};
use crate::orchestrator::Orchestrator;

/// How often the server pings an idle subscriber (API §4.3).
pub const PING_INTERVAL: Duration = Duration::from_secs(30);
/// A frame the subscriber's socket has not taken by then means it fell too far behind.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the job is checked besides the log's own end: a finished job whose log could not
/// be archived still ends its streams.
const STATUS_CHECK: Duration = Duration::from_secs(2);
/// Frames stay well under WebSocket message limits however long the lines are.
const FRAME_BYTES: usize = 1024 * 1024;
/// The largest message or frame a subscriber may send (pings, pongs, a close reason).
pub const CLIENT_MESSAGE_BYTES: usize = 4 * 1024;
/// Lines read per step of the end-of-job drain.
const DRAIN_LINES: usize = 1_000;

/// The server's shutdown signal, added as a request extension by [`super::serve`], so open
/// streams end when the server stops instead of outliving it.
#[derive(Debug, Clone)]
pub struct Shutdown(pub CancellationToken);

/// `?after=<seq>&step=<name>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamQuery {
    pub after: u64,
    pub step: Option<String>,
}

impl FromParams for StreamQuery {
    fn from_params(params: &Params) -> Result<Self, ParamError> {
        Ok(StreamQuery {
            after: params.count("after", 0)?,
            step: params.text("step"),
        })
    }
}

pub(super) async fn stream_logs(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<StreamQuery>,
    shutdown: Option<axum::Extension<Shutdown>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let orchestrator = state
        .orchestrator
        .clone()
        .ok_or_else(|| ApiError::unavailable("the job engine is not running"))?;
    // A job the caller may not view does not exist for them, live log included (issue #12).
    let job = state
        .find_job(&caller, &super::routes::job_ref(&id)?)
        .await?;
    if let Some(step) = &query.step {
        super::routes::known_step(&job, step)?;
    }
    let id = job.id;
    let upgrade = upgrade
        .map_err(|rejection| {
            ApiError::bad_request(format!("expected a WebSocket upgrade: {rejection}"))
        })?
        // Client frames are ignored (API §4.3), but tungstenite would buffer a message up to
        // 64 MiB before handing it over: a client that sends more than a few KiB is closed.
        .max_message_size(CLIENT_MESSAGE_BYTES)
        .max_frame_size(CLIENT_MESSAGE_BYTES);
    let shutdown = shutdown.map_or_else(CancellationToken::new, |extension| extension.0.0.clone());
    Ok(upgrade.on_upgrade(move |socket| async move {
        let stream = Stream {
            orchestrator,
            job_id: id,
            shutdown,
        };
        if let Err(error) = stream.run(socket, query).await {
            tracing::debug!(job_id = %id, %error, "log stream ended early");
        }
    }))
}

/// Why a stream stopped before its end frame; logged at debug level only, since subscribers
/// going away is normal.
#[derive(Debug, thiserror::Error)]
enum StreamError {
    #[error("socket: {0}")]
    Socket(#[from] axum::Error),
    #[error("log: {0}")]
    Log(#[from] crate::logs::LogError),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("the subscriber did not take a frame within {SEND_TIMEOUT:?}")]
    TooSlow,
    #[error("the subscriber closed the connection")]
    Closed,
    #[error("the server is shutting down")]
    Shutdown,
}

struct Stream {
    orchestrator: Orchestrator,
    job_id: Uuid,
    shutdown: CancellationToken,
}

/// What woke the stream up.
enum Wake {
    Lines(Result<Option<Vec<StoredLine>>, crate::logs::LogError>),
    Incoming(Option<Result<Message, axum::Error>>),
    Ping,
    CheckStatus,
    Shutdown,
}

impl Stream {
    async fn run(self, socket: WebSocket, query: StreamQuery) -> Result<(), StreamError> {
        let mut sink = socket;
        let logs = self.orchestrator.logs().clone();
        let mut follower = logs.follow(self.job_id, query.after, query.step.as_deref());
        let mut ping = tokio::time::interval(PING_INTERVAL);
        ping.reset();
        let mut status_check = tokio::time::interval(STATUS_CHECK);
        status_check.reset();
        // Whether an earlier status check found the job finished.
        let mut finished_seen = false;
        let result = loop {
            // `next_batch` is cancel-safe: it moves its position only when it returns lines.
            let wake = tokio::select! {
                biased;
                () = self.shutdown.cancelled() => Wake::Shutdown,
                batch = follower.next_batch() => Wake::Lines(batch),
                message = sink.recv() => Wake::Incoming(message),
                _ = ping.tick() => Wake::Ping,
                _ = status_check.tick() => Wake::CheckStatus,
            };
            match wake {
                Wake::Lines(Ok(Some(lines))) => send_lines(&mut sink, &lines).await?,
                Wake::Lines(Ok(None)) => break Ok(()),
                Wake::Lines(Err(error)) => break Err(error.into()),
                // Frames sent by the client are ignored; only its close matters.
                Wake::Incoming(None | Some(Err(_) | Ok(Message::Close(_)))) => {
                    return Err(StreamError::Closed);
                }
                Wake::Incoming(Some(Ok(_))) => {}
                Wake::Ping => send(&mut sink, Message::Ping(Vec::new().into())).await?,
                Wake::CheckStatus => {
                    // A terminal *status* is not the end: a cancelled job is `cancelled` at
                    // once while its steps are still stopping and printing (API §8.4). The job
                    // has finished when `completed_at` is set (every step terminal), and its
                    // log ends when `job_finished` archives it, which ends the follower above.
                    // Only if the log is still not finished a full check later (archiving
                    // failed, or the server stopped in between) is the rest sent straight from
                    // the file.
                    if self.finished().await? {
                        if finished_seen {
                            let rest =
                                drain(&logs, self.job_id, follower.last_seq(), &query).await?;
                            send_lines(&mut sink, &rest).await?;
                            break Ok(());
                        }
                        finished_seen = true;
                    }
                }
                Wake::Shutdown => break Err(StreamError::Shutdown),
            }
        };
        match result {
            Ok(()) => {
                let status = self.status().await?.map_or("unknown", JobStatus::as_str);
                let end = serde_json::json!({"event": "end", "status": status}).to_string();
                send(&mut sink, Message::Text(format!("{end}\n").into())).await?;
                close(&mut sink, close_code::NORMAL, "end of log").await;
                Ok(())
            }
            Err(error) => {
                let code = match error {
                    StreamError::Shutdown => close_code::AWAY,
                    StreamError::TooSlow => close_code::AGAIN,
                    _ => close_code::ERROR,
                };
                close(&mut sink, code, &error.to_string()).await;
                Err(error)
            }
        }
    }

    /// Whether the job has finished: every step terminal and `completed_at` set.
    async fn finished(&self) -> Result<bool, StreamError> {
        Ok(self
            .orchestrator
            .store()
            .job_finished(self.job_id)
            .await?
            .unwrap_or(true))
    }

    /// The job's status when it is terminal.
    async fn status(&self) -> Result<Option<JobStatus>, StreamError> {
        Ok(self
            .orchestrator
            .store()
            .get_job(self.job_id)
            .await?
            .map(|job| job.status)
            .filter(|status| !matches!(status, JobStatus::Pending | JobStatus::Running)))
    }
}

type Sink = WebSocket;

/// Sends `lines` as newline-terminated JSONL in frames of about [`FRAME_BYTES`].
async fn send_lines(sink: &mut Sink, lines: &[StoredLine]) -> Result<(), StreamError> {
    let mut frame = String::new();
    for line in lines {
        frame.push_str(&line.to_json());
        frame.push('\n');
        if frame.len() >= FRAME_BYTES {
            send(sink, Message::Text(std::mem::take(&mut frame).into())).await?;
        }
    }
    if !frame.is_empty() {
        send(sink, Message::Text(frame.into())).await?;
    }
    Ok(())
}

async fn send(sink: &mut Sink, message: Message) -> Result<(), StreamError> {
    match tokio::time::timeout(SEND_TIMEOUT, sink.send(message)).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(StreamError::TooSlow),
    }
}

/// Best effort: the peer may already be gone.
async fn close(sink: &mut Sink, code: u16, reason: &str) {
    // Close reasons are limited to 123 bytes; ours are short, cut anyway on a char boundary.
    let reason: String = reason.chars().take(100).collect();
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        sink.send(Message::Close(Some(frame))),
    )
    .await;
}

/// Every stored line after `after` matching the query's step, read page by page.
async fn drain(
    logs: &LogStore,
    job_id: Uuid,
    after: u64,
    query: &StreamQuery,
) -> Result<Vec<StoredLine>, StreamError> {
    let logs = logs.clone();
    let step = query.step.clone();
    let lines = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        let mut after = after;
        loop {
            let page = logs.read_page(job_id, after, DRAIN_LINES, step.as_deref())?;
            if page.scanned_to <= after {
                return Ok(lines);
            }
            after = page.scanned_to;
            lines.extend(page.lines);
        }
    })
    .await
    .map_err(crate::logs::LogError::from)?;
    lines.map_err(StreamError::Log)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_reads_after_and_step() {
        let params = |pairs: &[(&str, &str)]| {
            Params::new(
                pairs
                    .iter()
                    .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                    .collect(),
            )
        };
        assert_eq!(
            StreamQuery::from_params(&params(&[])),
            Ok(StreamQuery::default())
        );
        assert_eq!(
            StreamQuery::from_params(&params(&[("after", "7"), ("step", "deploy")])),
            Ok(StreamQuery {
                after: 7,
                step: Some("deploy".to_owned())
            })
        );
        let error = StreamQuery::from_params(&params(&[("after", "-1")]));
        assert_eq!(error.map_err(|error| error.field), Err("after".to_owned()));
    }
}
