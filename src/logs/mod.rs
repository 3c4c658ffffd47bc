//! The server's job log storage (API §4, DESIGN §5): one append-only JSON-lines file per job,
//! with seqs assigned here, server-side masking (WF §16.3), line and per-job size caps,
//! exactly-once storage of retried worker batches (API §7.6), reads by seq range that seek
//! instead of scanning, zstd compression when the job ends, and live following for the
//! WebSocket stream and `stroem logs --follow`. No HTTP: the server module wraps it.
//!
//! Files under the log directory, per job:
//! - `<job>.jsonl` — the live log, one API §4.1 record per line, in seq order;
//! - `<job>.idx` — its sparse index, one `(seq, byte offset)` record per ~64 KiB chunk
//!   (`index.rs`), so a read from any seq seeks to its chunk;
//! - `<job>.batches` — which worker batches it holds (`batches.rs`);
//! - `<job>.jsonl.zst` — the finished log, replacing the three above: one zstd frame per
//!   ~64 KiB of lines plus a seek table, so finished logs seek as cheaply (`archive.rs`).
//!
//! Memory does not grow with a log: writers keep counters and per-lease counts, reads hold one
//! chunk and the lines asked for, compression one frame and the frame table (16 bytes per
//! 64 KiB of log). Disk use per job is capped by [`LogConfig::max_job_bytes`].
//!
//! The API is synchronous and does blocking file I/O: appends are short writes, reads are
//! bounded by `limit` lines plus one chunk, and [`LogStore::finish`] compresses the whole log
//! once, so async callers run reads and `finish` on `spawn_blocking`. [`Follower`] does so
//! itself.

mod archive;
mod batches;
mod follow;
mod index;
mod line;
mod reader;
mod store;
mod writer;

#[cfg(test)]
mod follow_tests;
#[cfg(test)]
mod tests;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use uuid::Uuid;

pub use batches::BatchKey;
pub use follow::{Follower, Notice, Subscription};
pub use line::{LINE_LIMIT, SERVER_STEP, StoredLine, step_matches};
pub use reader::Page;
pub use store::LogStore;
pub use writer::CAP_NOTICE;

/// Limits of the store.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Largest plain log of one job, in bytes. Past it lines are dropped and one `_server` line
    /// says so. 100 MiB holds about a million ordinary lines — far more than anyone reads in a
    /// browser — while a step flooding its output cannot fill the disk.
    pub max_job_bytes: u64,
    /// Bytes of log per sparse index record: a read from any seq scans at most about this much.
    pub chunk_bytes: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            max_job_bytes: 100 * 1024 * 1024,
            chunk_bytes: 64 * 1024,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("log file {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("log file {path} is corrupt: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    /// The job's log was finished (compressed); it takes no more lines.
    #[error("the job's log is finished and takes no more lines")]
    Finished,
    /// A read on the blocking pool panicked or was cancelled.
    #[error("log read task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl LogError {
    pub(crate) fn io(path: &Path, source: io::Error) -> LogError {
        LogError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// The seqs an append gave its stored lines: `first_seq..=last_seq`, empty when
/// `last_seq < first_seq` (every line was a duplicate or dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    pub first_seq: u64,
    pub last_seq: u64,
    /// Lines of a retried worker batch the log already held.
    pub duplicates: usize,
    /// Lines dropped because the job's log reached its size cap.
    pub dropped: usize,
}

impl AppendResult {
    /// How many lines were stored (including a size-cap notice).
    pub fn stored(&self) -> u64 {
        (self.last_seq + 1).saturating_sub(self.first_seq)
    }
}

/// The files of one job's log.
#[derive(Debug, Clone)]
pub(crate) struct JobPaths {
    pub plain: PathBuf,
    pub index: PathBuf,
    pub batches: PathBuf,
    pub archive: PathBuf,
    pub archive_tmp: PathBuf,
}

impl JobPaths {
    pub(crate) fn new(dir: &Path, job_id: Uuid) -> JobPaths {
        let file = |suffix: &str| dir.join(format!("{job_id}{suffix}"));
        JobPaths {
            plain: file(".jsonl"),
            index: file(".idx"),
            batches: file(".batches"),
            archive: file(".jsonl.zst"),
            archive_tmp: file(".jsonl.zst.tmp"),
        }
    }
}

/// Removes a file, ignoring one that does not exist.
pub(crate) fn remove_file(path: &Path) -> Result<(), LogError> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(LogError::io(path, error)),
        _ => Ok(()),
    }
}
